//! Typed data access for every table, next to the models: read by primary key, insert one or
//! many rows (returning the rows, or only their ids), update by changeset, delete, and the
//! upserts of Prefect's ORM configuration; written once for both dialects.
//!
//! Every table with an `id` primary key (all 36 of a Prefect 3.9.1 database) implements:
//! - [`Record`] on its row model (`FlowRun`): [`Record::find`], [`Record::find_many`],
//!   [`Record::update`], [`Record::delete`], [`Record::delete_many`];
//! - [`NewRecord`] on its insert model (`NewFlowRun`): [`NewRecord::insert_rows`] and
//!   [`NewRecord::insert_rows_returning_ids`], with an [`OnConflict`] policy on Prefect's
//!   conflict target for the table ([`crate::orm_config`]; `worker`: `(work_pool_id, name)` and
//!   `csrf_token`: `(client)` as Prefect's models upsert them; the primary key elsewhere);
//! - [`RecordChangeset`] on its changeset (`FlowRunChangeset`), which names the row it updates.
//!
//! The implementations are generated from the list of tables the models were generated from
//! (`for_each_table!`), so no table is left out. Operations where Prefect's server gives a
//! table a meaning of its own (a flow found or created by name, a deployment upserted by flow
//! and name, …) are in [`prefect`].
//!
//! Statements are kept prepared on the connection where their text comes from a small set
//! (single-row inserts and updates, batches of round sizes; see [`crate::prepared`]); callers
//! wrap nothing. Values are plain Rust values (`Uuid`, `DateTime<Utc>`, `serde_json::Value`, the
//! enums, the models): the portable-type binding happens inside.
//!
//! Server code normally reaches this through `prefect-db-interface`'s prelude, whose methods on
//! the connection return the server-facing error; the functions here return [`AccessError`].

pub(crate) mod insert;
pub mod prefect;

pub use insert::{OnConflict, PG_ROWS_PER_STATEMENT, SQLITE_MAX_BINDS};
pub use prefect::Created;

use prefect_db_conn::Conn;
use std::future::Future;
use uuid::Uuid;

/// Why a data-access operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// A statement on `table` failed (the database refused it, or the connection failed).
    #[error("{table}: {source}")]
    Query {
        /// The table the statement was on.
        table: &'static str,
        /// diesel's error.
        #[source]
        source: diesel::result::Error,
    },
    /// An upsert names a column its table does not have, or one it may not update.
    #[error("cannot upsert column {column:?} of table {table}: {reason}")]
    UpsertColumn {
        /// The table.
        table: &'static str,
        /// The column named.
        column: String,
        /// Why it cannot be updated.
        reason: &'static str,
    },
    /// One `ON CONFLICT … DO UPDATE` batch would update the same row twice (two rows of the
    /// batch share a conflict key); the batch is refused on both dialects.
    #[error("an upsert batch into {table} hits the same row twice (conflict key shared by two rows){}", id.map(|id| format!(": row {id}")).unwrap_or_default())]
    UpsertRowTwice {
        /// The table.
        table: &'static str,
        /// The row hit twice, when known (SQLite, or PostgreSQL across statements).
        id: Option<Uuid>,
    },
    /// An argument makes no sense for the operation (it names the field and the value).
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        /// The field (`table.column`, or the argument's name).
        field: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl AccessError {
    /// A `map_err` for statements on `table`.
    pub fn on(table: &'static str) -> impl FnOnce(diesel::result::Error) -> AccessError {
        move |source| AccessError::Query { table, source }
    }

    /// The table the failed operation was on.
    pub fn table(&self) -> Option<&'static str> {
        match self {
            AccessError::Query { table, .. }
            | AccessError::UpsertColumn { table, .. }
            | AccessError::UpsertRowTwice { table, .. } => Some(table),
            AccessError::InvalidInput { .. } => None,
        }
    }
}

/// The result of a data-access operation.
pub type AccessResult<T> = Result<T, AccessError>;

/// A table's full row, with typed access by primary key.
///
/// ```
/// use prefect_db_conn::Conn;
/// use prefect_orm::access::{AccessResult, Record};
/// use prefect_orm::models::FlowRun;
///
/// async fn rename(conn: &mut Conn<'_>, id: uuid::Uuid) -> AccessResult<Option<FlowRun>> {
///     let mut changes = prefect_orm::models::FlowRunChangeset::new();
///     changes.name = Some("renamed".to_owned());
///     FlowRun::update(conn, id, changes).await
/// }
/// ```
pub trait Record: Sized + Send + 'static {
    /// The table's name.
    const TABLE: &'static str;
    /// The insert model.
    type New: NewRecord<Record = Self>;
    /// The changeset model.
    type Changeset: RecordChangeset<Record = Self>;

    /// The row's primary key.
    fn id(&self) -> Uuid;

    /// The row with this id, if any.
    fn find(conn: &mut Conn<'_>, id: Uuid) -> impl Future<Output = AccessResult<Option<Self>>> + Send;

    /// The rows with these ids, in the order of `ids` (missing ids are skipped; an id given
    /// twice gives its row once).
    fn find_many(conn: &mut Conn<'_>, ids: &[Uuid]) -> impl Future<Output = AccessResult<Vec<Self>>> + Send;

    /// Applies `changes` to the row with this id (its `updated` set as the changeset says: now,
    /// unless changed) and returns the updated row; `None` when there is no such row.
    fn update(conn: &mut Conn<'_>, id: Uuid, changes: Self::Changeset) -> impl Future<Output = AccessResult<Option<Self>>> + Send;

    /// Applies `changes` to the row with this id without reading it back (one `UPDATE`, nothing
    /// decoded); whether there was such a row.
    fn update_no_return(conn: &mut Conn<'_>, id: Uuid, changes: Self::Changeset) -> impl Future<Output = AccessResult<bool>> + Send;

    /// Deletes the row with this id; whether there was one. Rows referencing it follow the
    /// schema's foreign keys (Prefect's `ON DELETE CASCADE` / `SET NULL`).
    fn delete(conn: &mut Conn<'_>, id: Uuid) -> impl Future<Output = AccessResult<bool>> + Send;

    /// Deletes the rows with these ids; how many there were.
    fn delete_many(conn: &mut Conn<'_>, ids: &[Uuid]) -> impl Future<Output = AccessResult<usize>> + Send;
}

/// A table's insert model.
pub trait NewRecord: Sized + Send + 'static {
    /// The row it becomes.
    type Record: Record<New = Self>;

    /// The id the row will have.
    fn id(&self) -> Uuid;

    /// Inserts `rows` and returns them as stored (database defaults filled in), in input order;
    /// under [`OnConflict::DoNothing`] conflicting rows are skipped, under
    /// [`OnConflict::DoUpdate`] the existing row is updated and returned in its place. The batch
    /// is all-or-nothing.
    fn insert_rows(conn: &mut Conn<'_>, rows: Vec<Self>, on_conflict: OnConflict) -> impl Future<Output = AccessResult<Vec<Self::Record>>> + Send;

    /// As [`NewRecord::insert_rows`], returning only the ids (cheaper for bulk writes such as
    /// logs, whose rows the caller already has).
    fn insert_rows_returning_ids(conn: &mut Conn<'_>, rows: Vec<Self>, on_conflict: OnConflict) -> impl Future<Output = AccessResult<Vec<Uuid>>> + Send;
}

/// A table's changeset model.
pub trait RecordChangeset: Send + 'static {
    /// The row it updates.
    type Record: Record<Changeset = Self>;
}

/// The conflict target of a table's upserts: Prefect's upsert columns from the ORM
/// configuration, the columns Prefect's models upsert `worker` and `csrf_token` on, else the
/// primary key. (A typed tuple for diesel, and the names for SQL text.)
macro_rules! conflict_target {
    (flow) => {
        ($crate::orm_config::FLOW_UPSERT_COLUMNS, $crate::orm_config::FLOW_UPSERT.columns)
    };
    (flow_run) => {
        ($crate::orm_config::FLOW_RUN_UPSERT_COLUMNS, $crate::orm_config::FLOW_RUN_UPSERT.columns)
    };
    (task_run) => {
        ($crate::orm_config::TASK_RUN_UPSERT_COLUMNS, $crate::orm_config::TASK_RUN_UPSERT.columns)
    };
    (deployment) => {
        ($crate::orm_config::DEPLOYMENT_UPSERT_COLUMNS, $crate::orm_config::DEPLOYMENT_UPSERT.columns)
    };
    (concurrency_limit) => {
        ($crate::orm_config::CONCURRENCY_LIMIT_UPSERT_COLUMNS, $crate::orm_config::CONCURRENCY_LIMIT_UPSERT.columns)
    };
    (block_type) => {
        ($crate::orm_config::BLOCK_TYPE_UPSERT_COLUMNS, $crate::orm_config::BLOCK_TYPE_UPSERT.columns)
    };
    (block_schema) => {
        ($crate::orm_config::BLOCK_SCHEMA_UPSERT_COLUMNS, $crate::orm_config::BLOCK_SCHEMA_UPSERT.columns)
    };
    (block_document) => {
        ($crate::orm_config::BLOCK_DOCUMENT_UPSERT_COLUMNS, $crate::orm_config::BLOCK_DOCUMENT_UPSERT.columns)
    };
    (artifact_collection) => {
        ($crate::orm_config::ARTIFACT_COLLECTION_UPSERT_COLUMNS, $crate::orm_config::ARTIFACT_COLLECTION_UPSERT.columns)
    };
    (saved_search) => {
        ($crate::orm_config::SAVED_SEARCH_UPSERT_COLUMNS, $crate::orm_config::SAVED_SEARCH_UPSERT.columns)
    };
    // Not in the ORM configuration, but the conflict targets of Prefect's own upserts of these
    // tables (`models/workers.py:worker_heartbeat`, `models/csrf_token.py`).
    (worker) => {
        (($crate::schema::worker::work_pool_id, $crate::schema::worker::name), &["work_pool_id", "name"])
    };
    (csrf_token) => {
        ($crate::schema::csrf_token::client, &["client"])
    };
    ($table:ident) => {
        ($crate::schema::$table::id, &["id"])
    };
}

/// Implements [`Record`], [`NewRecord`] and [`RecordChangeset`] for each listed table.
macro_rules! impl_records {
    ($($table:ident => $Row:ident, $New:ident, $Changeset:ident;)+) => {$(
        impl Record for $crate::models::$Row {
            const TABLE: &'static str = stringify!($table);
            type New = $crate::models::$New;
            type Changeset = $crate::models::$Changeset;

            fn id(&self) -> Uuid {
                self.id
            }

            async fn find(conn: &mut Conn<'_>, id: Uuid) -> AccessResult<Option<Self>> {
                use $crate::schema::$table;
                use diesel::{OptionalExtension as _, QueryDsl as _, SelectableHelper as _};
                use diesel_async::RunQueryDsl as _;
                prefect_db_conn::dispatch!(conn, |c| $table::table
                    .find($crate::types::Val(id))
                    .select(Self::as_select())
                    .first::<Self>(c)
                    .await
                    .optional())
                .map_err(AccessError::on(Self::TABLE))
            }

            async fn find_many(conn: &mut Conn<'_>, ids: &[Uuid]) -> AccessResult<Vec<Self>> {
                use $crate::schema::$table;
                use diesel::{ExpressionMethods as _, QueryDsl as _, SelectableHelper as _};
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let mut found: Vec<Self> = Vec::with_capacity(ids.len());
                // Bounded lists keep the statement text within a small set. SQLite spells a list
                // as one placeholder per id: it is padded to a round length (its last id
                // repeated, which matches nothing new) so that a page's statement stays prepared.
                let pad = conn.dialect() == prefect_db_conn::Dialect::Sqlite;
                for chunk in ids.chunks(insert::PG_ROWS_PER_STATEMENT) {
                    let mut vals: Vec<$crate::types::Val<Uuid>> = chunk.iter().copied().map($crate::types::Val).collect();
                    if pad {
                        if let Some(&last) = vals.last() {
                            vals.resize($crate::prepared::round_list_len(vals.len()), last);
                        }
                    }
                    let keep = $crate::prepared::worth_preparing(vals.len());
                    let rows: Vec<Self> = match conn {
                        #[cfg(feature = "postgres")]
                        prefect_db_conn::Conn::Postgres(c) => diesel_async::RunQueryDsl::load::<Self>(
                            $crate::prepared::Prepared::when(
                                keep,
                                $table::table.filter($table::id.eq_any(&vals)).select(Self::as_select()),
                            ),
                            &mut **c,
                        )
                        .await,
                        // One hop to the connection's thread, rows decoded where SQLite returns
                        // them (no copy of each row to carry it across threads).
                        #[cfg(feature = "sqlite")]
                        prefect_db_conn::Conn::Sqlite(c) => c
                            .spawn_blocking(move |c| {
                                diesel::RunQueryDsl::load::<Self>(
                                    $crate::prepared::Prepared::when(
                                        keep,
                                        $table::table.filter($table::id.eq_any(vals)).select(Self::as_select()),
                                    ),
                                    c,
                                )
                            })
                            .await,
                    }
                    .map_err(AccessError::on(Self::TABLE))?;
                    found.extend(rows);
                }
                Ok(in_order(ids, found))
            }

            async fn update(conn: &mut Conn<'_>, id: Uuid, changes: Self::Changeset) -> AccessResult<Option<Self>> {
                use $crate::schema::$table;
                use diesel::{OptionalExtension as _, QueryDsl as _, SelectableHelper as _};
                use diesel_async::RunQueryDsl as _;
                // The statement's text depends on which columns change: few shapes per server,
                // so it stays prepared on the connection.
                prefect_db_conn::dispatch!(conn, |c| $crate::prepared::Prepared::new(
                    diesel::update($table::table.find($crate::types::Val(id)))
                        .set(changes)
                        .returning(Self::as_returning())
                )
                .get_result::<Self>(c)
                .await
                .optional())
                .map_err(AccessError::on(Self::TABLE))
            }

            async fn update_no_return(conn: &mut Conn<'_>, id: Uuid, changes: Self::Changeset) -> AccessResult<bool> {
                use $crate::schema::$table;
                use diesel::QueryDsl as _;
                use diesel_async::RunQueryDsl as _;
                let n = prefect_db_conn::dispatch!(conn, |c| $crate::prepared::Prepared::new(
                    diesel::update($table::table.find($crate::types::Val(id))).set(changes)
                )
                .execute(c)
                .await)
                .map_err(AccessError::on(Self::TABLE))?;
                Ok(n > 0)
            }

            async fn delete(conn: &mut Conn<'_>, id: Uuid) -> AccessResult<bool> {
                use $crate::schema::$table;
                use diesel::QueryDsl as _;
                use diesel_async::RunQueryDsl as _;
                let n = prefect_db_conn::dispatch!(conn, |c| diesel::delete($table::table.find($crate::types::Val(id)))
                    .execute(c)
                    .await)
                .map_err(AccessError::on(Self::TABLE))?;
                Ok(n > 0)
            }

            async fn delete_many(conn: &mut Conn<'_>, ids: &[Uuid]) -> AccessResult<usize> {
                use $crate::schema::$table;
                use diesel::{ExpressionMethods as _, QueryDsl as _};
                use diesel_async::RunQueryDsl as _;
                let mut n = 0;
                for chunk in ids.chunks(insert::PG_ROWS_PER_STATEMENT) {
                    let vals: Vec<$crate::types::Val<Uuid>> = chunk.iter().copied().map($crate::types::Val).collect();
                    n += prefect_db_conn::dispatch!(conn, |c| diesel::delete($table::table.filter($table::id.eq_any(&vals)))
                        .execute(c)
                        .await)
                    .map_err(AccessError::on(Self::TABLE))?;
                }
                Ok(n)
            }
        }

        impl NewRecord for $crate::models::$New {
            type Record = $crate::models::$Row;

            fn id(&self) -> Uuid {
                self.id
            }

            async fn insert_rows(conn: &mut Conn<'_>, rows: Vec<Self>, on_conflict: OnConflict) -> AccessResult<Vec<$crate::models::$Row>> {
                #[allow(unused_imports)]
                use $crate::schema::$table;
                use diesel::SelectableHelper as _;
                // PostgreSQL names the conflict target by columns, SQLite by their names: a
                // build with one backend uses one of the two.
                #[allow(unused_variables)]
                let (target, names) = conflict_target!($table);
                insert::insert_rows!(
                    conn, rows, on_conflict, $table, target, names,
                    returning $crate::models::$Row::as_returning() => $crate::models::$Row,
                    id |row: &$crate::models::$Row| row.id
                )
            }

            async fn insert_rows_returning_ids(conn: &mut Conn<'_>, rows: Vec<Self>, on_conflict: OnConflict) -> AccessResult<Vec<Uuid>> {
                #[allow(unused_imports)]
                use $crate::schema::$table;
                // PostgreSQL names the conflict target by columns, SQLite by their names: a
                // build with one backend uses one of the two.
                #[allow(unused_variables)]
                let (target, names) = conflict_target!($table);
                let ids: AccessResult<Vec<$crate::types::Val<Uuid>>> = async {
                    insert::insert_rows!(
                        conn, rows, on_conflict, $table, target, names,
                        returning $table::id => $crate::types::Val<Uuid>,
                        id |v: &$crate::types::Val<Uuid>| v.0
                    )
                }
                .await;
                Ok(ids?.into_iter().map(|v| v.0).collect())
            }
        }

        impl RecordChangeset for $crate::models::$Changeset {
            type Record = $crate::models::$Row;
        }
    )+};
}

crate::for_each_table!(impl_records);

/// `rows` (in any order) arranged in the order of `ids`; an id mentioned twice gives its row
/// once, at its first mention, and ids without a row are skipped.
fn in_order<R: Record>(ids: &[Uuid], rows: Vec<R>) -> Vec<R> {
    if rows.len() <= 1 {
        return rows;
    }
    let mut by_id: std::collections::HashMap<Uuid, R> = rows.into_iter().map(|r| (r.id(), r)).collect();
    ids.iter().filter_map(|id| by_id.remove(id)).collect()
}
