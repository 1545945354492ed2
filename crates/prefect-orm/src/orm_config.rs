//! Prefect's ORM configuration (`BaseORMConfiguration`, spec §7): the conflict targets of the
//! upserts Prefect runs, what it does on a conflict, and where each dialect's migrations live.
//!
//! Prefect's two configurations (`AsyncPostgresORMConfiguration`, `AioSqliteORMConfiguration`)
//! differ only in their migrations directory; the upsert columns are the same on both dialects,
//! and every conflict target is backed by a unique constraint or index on both, as
//! `INSERT … ON CONFLICT (cols)` requires (PostgreSQL, SQLite ≥ 3.24).
//!
//! Each target is a typed tuple of diesel columns, usable directly as a conflict target:
//!
//! ```
//! use diesel::prelude::*;
//! use prefect_orm::models::NewFlow;
//! use prefect_orm::orm_config::{FLOW_UPSERT, FLOW_UPSERT_COLUMNS, ConflictAction};
//! use prefect_orm::schema::flow;
//!
//! assert_eq!(FLOW_UPSERT.action, ConflictAction::DoNothing);
//! let insert = diesel::insert_into(flow::table)
//!     .values(NewFlow::new("my-flow"))
//!     .on_conflict(FLOW_UPSERT_COLUMNS)
//!     .do_nothing();
//! # let _ = insert;
//! ```

use crate::schema::{
    artifact_collection, block_document, block_schema, block_type, concurrency_limit, deployment,
    flow, flow_run, saved_search, task_run,
};

/// What Prefect's upsert does when the conflict target is hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConflictAction {
    /// `ON CONFLICT (…) DO NOTHING` (and, where Prefect needs the row, a select afterwards).
    DoNothing,
    /// `ON CONFLICT (…) DO UPDATE SET …`.
    DoUpdate,
    /// The columns are declared but Prefect runs no upsert with them.
    Unused,
}

/// One upsert of Prefect's ORM configuration, described by name (for docs, checks and logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpsertTarget {
    /// The `BaseORMConfiguration` property.
    pub property: &'static str,
    /// The table.
    pub table: &'static str,
    /// The conflict columns, in Prefect's order.
    pub columns: &'static [&'static str],
    /// What Prefect does on a conflict.
    pub action: ConflictAction,
}

macro_rules! upsert {
    (
        $(#[$doc:meta])*
        $alias:ident, $cols:ident, $target:ident, $property:literal,
        $table:ident ( $($col:ident),+ ), $action:ident
    ) => {
        $(#[$doc])*
        pub type $alias = ($($table::$col,)+);

        #[doc = concat!("The conflict target of `", $property, "`, as diesel columns.")]
        pub const $cols: $alias = ($($table::$col,)+);

        #[doc = concat!("`", $property, "` described by name.")]
        pub const $target: UpsertTarget = UpsertTarget {
            property: $property,
            table: stringify!($table),
            columns: &[$(stringify!($col)),+],
            action: ConflictAction::$action,
        };
    };
}

upsert! {
    /// `deployment_unique_upsert_columns`: `(flow_id, name)`; DO UPDATE (`models/deployments.py`).
    DeploymentUpsertColumns, DEPLOYMENT_UPSERT_COLUMNS, DEPLOYMENT_UPSERT,
    "deployment_unique_upsert_columns", deployment(flow_id, name), DoUpdate
}

upsert! {
    /// `concurrency_limit_unique_upsert_columns`: `(tag)`; DO UPDATE.
    ConcurrencyLimitUpsertColumns, CONCURRENCY_LIMIT_UPSERT_COLUMNS, CONCURRENCY_LIMIT_UPSERT,
    "concurrency_limit_unique_upsert_columns", concurrency_limit(tag), DoUpdate
}

upsert! {
    /// `flow_run_unique_upsert_columns`: `(flow_id, idempotency_key)`; DO NOTHING
    /// (`models/flow_runs.py`, and the scheduler's inserts in `models/deployments.py`).
    FlowRunUpsertColumns, FLOW_RUN_UPSERT_COLUMNS, FLOW_RUN_UPSERT,
    "flow_run_unique_upsert_columns", flow_run(flow_id, idempotency_key), DoNothing
}

upsert! {
    /// `block_type_unique_upsert_columns`: `(slug)`; DO UPDATE.
    BlockTypeUpsertColumns, BLOCK_TYPE_UPSERT_COLUMNS, BLOCK_TYPE_UPSERT,
    "block_type_unique_upsert_columns", block_type(slug), DoUpdate
}

upsert! {
    /// `artifact_collection_unique_upsert_columns`: `(key)`; DO UPDATE.
    ArtifactCollectionUpsertColumns, ARTIFACT_COLLECTION_UPSERT_COLUMNS, ARTIFACT_COLLECTION_UPSERT,
    "artifact_collection_unique_upsert_columns", artifact_collection(key), DoUpdate
}

upsert! {
    /// `block_schema_unique_upsert_columns`: `(checksum, version)`; DO UPDATE.
    BlockSchemaUpsertColumns, BLOCK_SCHEMA_UPSERT_COLUMNS, BLOCK_SCHEMA_UPSERT,
    "block_schema_unique_upsert_columns", block_schema(checksum, version), DoUpdate
}

upsert! {
    /// `flow_unique_upsert_columns`: `(name)`; DO NOTHING, then Prefect selects the row.
    FlowUpsertColumns, FLOW_UPSERT_COLUMNS, FLOW_UPSERT,
    "flow_unique_upsert_columns", flow(name), DoNothing
}

upsert! {
    /// `saved_search_unique_upsert_columns`: `(name)`; DO UPDATE.
    SavedSearchUpsertColumns, SAVED_SEARCH_UPSERT_COLUMNS, SAVED_SEARCH_UPSERT,
    "saved_search_unique_upsert_columns", saved_search(name), DoUpdate
}

upsert! {
    /// `task_run_unique_upsert_columns`: `(flow_run_id, task_key, dynamic_key)`; DO NOTHING
    /// (`models/task_runs.py`, and the bulk upserts of `services/task_run_recorder.py`).
    TaskRunUpsertColumns, TASK_RUN_UPSERT_COLUMNS, TASK_RUN_UPSERT,
    "task_run_unique_upsert_columns", task_run(flow_run_id, task_key, dynamic_key), DoNothing
}

upsert! {
    /// `block_document_unique_upsert_columns`: `(block_type_id, name)`; declared by Prefect but
    /// not used by any upsert.
    BlockDocumentUpsertColumns, BLOCK_DOCUMENT_UPSERT_COLUMNS, BLOCK_DOCUMENT_UPSERT,
    "block_document_unique_upsert_columns", block_document(block_type_id, name), Unused
}

/// Every upsert of the ORM configuration, in Prefect's declaration order.
pub const UPSERT_TARGETS: &[UpsertTarget] = &[
    DEPLOYMENT_UPSERT,
    CONCURRENCY_LIMIT_UPSERT,
    FLOW_RUN_UPSERT,
    BLOCK_TYPE_UPSERT,
    ARTIFACT_COLLECTION_UPSERT,
    BLOCK_SCHEMA_UPSERT,
    FLOW_UPSERT,
    SAVED_SEARCH_UPSERT,
    TASK_RUN_UPSERT,
    BLOCK_DOCUMENT_UPSERT,
];

/// The PostgreSQL migrations, relative to the workspace root (Prefect's `versions_dir` is
/// `server/database/_migrations/versions/postgresql`).
pub const POSTGRESQL_MIGRATIONS_DIR: &str = "migrations/postgresql";

/// The SQLite migrations, relative to the workspace root (Prefect's `versions_dir` is
/// `server/database/_migrations/versions/sqlite`).
pub const SQLITE_MIGRATIONS_DIR: &str = "migrations/sqlite";

/// The migrations directory of a dialect, named as in Prefect's versions directories
/// (`"postgresql"` or `"sqlite"`); `None` for any other name.
pub fn migrations_dir(dialect: &str) -> Option<&'static str> {
    match dialect {
        "postgresql" => Some(POSTGRESQL_MIGRATIONS_DIR),
        "sqlite" => Some(SQLITE_MIGRATIONS_DIR),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::Column;

    #[test]
    fn typed_columns_match_the_names() {
        fn names<A: Column, B: Column>(_: (A, B)) -> [&'static str; 2] {
            [A::NAME, B::NAME]
        }
        assert_eq!(names(DEPLOYMENT_UPSERT_COLUMNS), DEPLOYMENT_UPSERT.columns);
        assert_eq!(names(FLOW_RUN_UPSERT_COLUMNS), FLOW_RUN_UPSERT.columns);
        assert_eq!(
            names(BLOCK_SCHEMA_UPSERT_COLUMNS),
            BLOCK_SCHEMA_UPSERT.columns
        );
        assert_eq!(
            names(BLOCK_DOCUMENT_UPSERT_COLUMNS),
            BLOCK_DOCUMENT_UPSERT.columns
        );
        assert_eq!(UPSERT_TARGETS.len(), 10);
        assert_eq!(migrations_dir("sqlite"), Some("migrations/sqlite"));
        assert_eq!(migrations_dir("postgresql"), Some("migrations/postgresql"));
        assert_eq!(migrations_dir("mysql"), None);
    }
}
