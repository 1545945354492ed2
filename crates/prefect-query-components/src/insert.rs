//! Multi-row inserts for every model, with Prefect's upserts (spec §7, §8.2 `insert`).
//!
//! [`BulkInsert`] is implemented for every `NewFoo` of `prefect_orm::models`. Rows go in one
//! statement per [`PG_ROWS_PER_STATEMENT`] rows on PostgreSQL (`INSERT … VALUES (…), (…)
//! [ON CONFLICT … DO NOTHING | DO UPDATE SET …] RETURNING id`);
//! on SQLite, whose `NewFoo` rows may leave different columns to their defaults (SQLite has no
//! `DEFAULT` keyword in `VALUES`), one statement per row runs on the blocking connection inside
//! one savepoint, so the batch is all-or-nothing. Both return the ids of the rows actually
//! inserted, in input order.

use crate::{QueryError, QueryResult};
use chrono::{DateTime, Utc};
use prefect_db_config::Conn;
use prefect_orm::types::{PTimestamp, Val};
use std::future::Future;
use std::marker::PhantomData;
use uuid::Uuid;

/// Rows per PostgreSQL statement: at most 64 columns each keeps a statement under the
/// protocol's 65,535 bind parameters. A batch over this size is several statements; run it in
/// a transaction to keep it all-or-nothing.
pub const PG_ROWS_PER_STATEMENT: usize = 1_000;

/// What to do when a row conflicts with an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Fail the whole batch (a plain `INSERT`).
    #[default]
    Fail,
    /// `ON CONFLICT (<Prefect's upsert columns>) DO NOTHING`: rows that conflict are skipped and
    /// their ids are not returned. Tables without upsert columns in Prefect's ORM configuration
    /// use their primary key.
    DoNothing,
    /// `ON CONFLICT (<Prefect's upsert columns>) DO UPDATE SET col = excluded.col, …, updated =
    /// <now>`: a row that conflicts updates the listed columns of the existing row from the
    /// row given (and `updated`, when the table has it, to the current time); the existing
    /// row's id is returned in its place. Columns are named as in SQL (`"type"`, not
    /// `"type_"`); `id` and unknown columns are refused ([`QueryError::UpsertColumn`]). Two
    /// rows of one batch sharing a conflict key are refused on both dialects
    /// ([`QueryError::UpsertRowTwice`]), as PostgreSQL does.
    DoUpdate(&'static [&'static str]),
}

/// The `SET` list of an `ON CONFLICT … DO UPDATE`: each listed column from `excluded`, then
/// `updated` bound to one timestamp.
#[derive(Debug, Clone)]
pub(crate) struct ExcludedSet<T> {
    columns: Vec<&'static str>,
    updated: Option<Val<DateTime<Utc>>>,
    table: PhantomData<T>,
}

impl<T> ExcludedSet<T> {
    /// Checks `columns` against the schema of `table`.
    pub(crate) fn new(table: &'static str, columns: &'static [&'static str]) -> QueryResult<Self> {
        let has = |name: &str| {
            prefect_orm::schema::COLUMNS
                .iter()
                .any(|(t, c, _, _)| *t == table && *c == name)
        };
        let mut set = Vec::with_capacity(columns.len());
        for &column in columns {
            if !has(column) {
                return Err(QueryError::UpsertColumn {
                    table,
                    column: column.to_owned(),
                    reason: "no such column",
                });
            }
            if column == "id" {
                return Err(QueryError::UpsertColumn {
                    table,
                    column: column.to_owned(),
                    reason: "the primary key is never updated",
                });
            }
            if column != "updated" && !set.contains(&column) {
                set.push(column);
            }
        }
        Ok(ExcludedSet {
            columns: set,
            updated: has("updated").then(|| Val(prefect_orm::types::now())),
            table: PhantomData,
        })
    }
}

impl<T: diesel::QuerySource> diesel::query_builder::AsChangeset for ExcludedSet<T> {
    type Target = T;
    type Changeset = Self;
    fn as_changeset(self) -> Self {
        self
    }
}

impl<T> diesel::query_builder::QueryId for ExcludedSet<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T, DB> diesel::query_builder::QueryFragment<DB> for ExcludedSet<T>
where
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<PTimestamp>,
    Val<DateTime<Utc>>: diesel::serialize::ToSql<PTimestamp, DB>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, DB>,
    ) -> diesel::QueryResult<()> {
        let mut first = true;
        for column in &self.columns {
            if !first {
                out.push_sql(", ");
            }
            first = false;
            out.push_identifier(column)?;
            out.push_sql(" = excluded.");
            out.push_identifier(column)?;
        }
        if let Some(updated) = &self.updated {
            if !first {
                out.push_sql(", ");
            }
            out.push_identifier("updated")?;
            out.push_sql(" = ");
            out.push_bind_param::<PTimestamp, _>(updated)?;
        }
        Ok(())
    }

    fn is_noop(&self, _backend: &DB) -> diesel::QueryResult<bool> {
        Ok(self.columns.is_empty() && self.updated.is_none())
    }
}

/// PostgreSQL's refusal of an upsert statement that would update one row twice.
#[cfg(feature = "postgres")]
fn hits_row_twice(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::DatabaseError(_, info)
        if info.message().contains("cannot affect row a second time"))
}

/// The first id that occurs twice in `ids`.
#[cfg(feature = "postgres")]
fn first_repeated(ids: &[Val<Uuid>]) -> Option<Uuid> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().find(|v| !seen.insert(v.0)).map(|v| v.0)
}

/// Why a SQLite batch transaction failed.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
enum BatchError {
    Db(diesel::result::Error),
    Twice(Uuid),
}

#[cfg(feature = "sqlite")]
impl From<diesel::result::Error> for BatchError {
    fn from(e: diesel::result::Error) -> Self {
        BatchError::Db(e)
    }
}

/// A model that can be inserted many rows at a time.
pub trait BulkInsert: Sized + Send + 'static {
    /// Inserts `rows`, returning the ids of those inserted (conflicting rows are left out under
    /// [`OnConflict::DoNothing`]).
    fn insert_rows(
        conn: &mut Conn<'_>,
        rows: Vec<Self>,
        on_conflict: OnConflict,
    ) -> impl Future<Output = QueryResult<Vec<Uuid>>> + Send;
}

macro_rules! bulk_insert {
    ($($new:ident => $table:ident on $target:expr;)+) => {$(
        impl BulkInsert for prefect_orm::models::$new {
            async fn insert_rows(conn: &mut Conn<'_>, rows: Vec<Self>, on_conflict: OnConflict) -> QueryResult<Vec<Uuid>> {
                #[allow(unused_imports)]
                use prefect_orm::schema::$table;
                #[allow(unused_imports)]
                use prefect_orm::orm_config::*;
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let set = match on_conflict {
                    OnConflict::DoUpdate(columns) => Some(ExcludedSet::<$table::table>::new(stringify!($table), columns)?),
                    _ => None,
                };
                let ids: Vec<Val<Uuid>> = match conn {
                    #[cfg(feature = "postgres")]
                    Conn::Postgres(c) => {
                        use diesel_async::RunQueryDsl;
                        let c: &mut diesel_async::AsyncPgConnection = &mut **c;
                        let mut ids: Vec<Val<Uuid>> = Vec::with_capacity(rows.len());
                        let mut rest = rows;
                        while !rest.is_empty() {
                            let tail = rest.split_off(rest.len().min(PG_ROWS_PER_STATEMENT));
                            let chunk = std::mem::replace(&mut rest, tail);
                            let got: Vec<Val<Uuid>> = match on_conflict {
                                OnConflict::Fail => diesel::insert_into($table::table)
                                    .values(chunk)
                                    .returning($table::id)
                                    .get_results(c)
                                    .await?,
                                OnConflict::DoNothing => diesel::insert_into($table::table)
                                    .values(chunk)
                                    .on_conflict($target)
                                    .do_nothing()
                                    .returning($table::id)
                                    .get_results(c)
                                    .await?,
                                OnConflict::DoUpdate(_) => {
                                    let Some(set) = set.clone() else { break };
                                    diesel::insert_into($table::table)
                                        .values(chunk)
                                        .on_conflict($target)
                                        .do_update()
                                        .set(set)
                                        .returning($table::id)
                                        .get_results(c)
                                        .await
                                        .map_err(|e| if hits_row_twice(&e) {
                                            QueryError::UpsertRowTwice { table: stringify!($table), id: None }
                                        } else {
                                            e.into()
                                        })?
                                }
                            };
                            ids.extend(got);
                            if matches!(on_conflict, OnConflict::DoUpdate(_)) {
                                if let Some(id) = first_repeated(&ids) {
                                    return Err(QueryError::UpsertRowTwice { table: stringify!($table), id: Some(id) });
                                }
                            }
                        }
                        ids
                    }
                    #[cfg(feature = "sqlite")]
                    Conn::Sqlite(c) => {
                        let done = c.spawn_blocking(move |c| {
                            use diesel::{Connection, OptionalExtension, RunQueryDsl};
                            Ok(c.transaction::<_, BatchError, _>(|c| {
                                let mut ids: Vec<Val<Uuid>> = Vec::with_capacity(rows.len());
                                let mut seen = std::collections::HashSet::with_capacity(rows.len());
                                for row in rows {
                                    let id: Option<Val<Uuid>> = match on_conflict {
                                        OnConflict::Fail => Some(diesel::insert_into($table::table)
                                            .values(row)
                                            .returning($table::id)
                                            .get_result(c)?),
                                        OnConflict::DoNothing => diesel::insert_into($table::table)
                                            .values(row)
                                            .on_conflict($target)
                                            .do_nothing()
                                            .returning($table::id)
                                            .get_result(c)
                                            .optional()?,
                                        OnConflict::DoUpdate(_) => match &set {
                                            Some(set) => Some(diesel::insert_into($table::table)
                                                .values(row)
                                                .on_conflict($target)
                                                .do_update()
                                                .set(set.clone())
                                                .returning($table::id)
                                                .get_result(c)?),
                                            None => None,
                                        },
                                    };
                                    if let Some(id) = id {
                                        if !seen.insert(id.0) {
                                            return Err(BatchError::Twice(id.0));
                                        }
                                        ids.push(id);
                                    }
                                }
                                Ok(ids)
                            }))
                        })
                        .await?;
                        match done {
                            Ok(ids) => ids,
                            Err(BatchError::Db(e)) => return Err(e.into()),
                            Err(BatchError::Twice(id)) => {
                                return Err(QueryError::UpsertRowTwice { table: stringify!($table), id: Some(id) })
                            }
                        }
                    }
                };
                Ok(ids.into_iter().map(|v| v.0).collect())
            }
        }
    )+};
}

bulk_insert! {
    NewFlow => flow on FLOW_UPSERT_COLUMNS;
    NewFlowRun => flow_run on FLOW_RUN_UPSERT_COLUMNS;
    NewFlowRunState => flow_run_state on flow_run_state::id;
    NewTaskRun => task_run on TASK_RUN_UPSERT_COLUMNS;
    NewTaskRunState => task_run_state on task_run_state::id;
    NewDeployment => deployment on DEPLOYMENT_UPSERT_COLUMNS;
    NewDeploymentSchedule => deployment_schedule on deployment_schedule::id;
    NewDeploymentVersion => deployment_version on deployment_version::id;
    NewConcurrencyLimit => concurrency_limit on CONCURRENCY_LIMIT_UPSERT_COLUMNS;
    NewConcurrencyLimitV2 => concurrency_limit_v2 on concurrency_limit_v2::id;
    NewBlockType => block_type on BLOCK_TYPE_UPSERT_COLUMNS;
    NewBlockSchema => block_schema on BLOCK_SCHEMA_UPSERT_COLUMNS;
    NewBlockSchemaReference => block_schema_reference on block_schema_reference::id;
    NewBlockDocument => block_document on BLOCK_DOCUMENT_UPSERT_COLUMNS;
    NewBlockDocumentReference => block_document_reference on block_document_reference::id;
    NewArtifact => artifact on artifact::id;
    NewArtifactCollection => artifact_collection on ARTIFACT_COLLECTION_UPSERT_COLUMNS;
    NewSavedSearch => saved_search on SAVED_SEARCH_UPSERT_COLUMNS;
    NewLog => log on log::id;
    NewVariable => variable on variable::id;
    NewConfiguration => configuration on configuration::id;
    NewWorkPool => work_pool on work_pool::id;
    NewWorkQueue => work_queue on work_queue::id;
    NewWorker => worker on worker::id;
    NewAgent => agent on agent::id;
    NewFlowRunInput => flow_run_input on flow_run_input::id;
    NewAutomation => automation on automation::id;
    NewAutomationBucket => automation_bucket on automation_bucket::id;
    NewAutomationRelatedResource => automation_related_resource on automation_related_resource::id;
    NewCompositeTriggerChildFiring => composite_trigger_child_firing on composite_trigger_child_firing::id;
    NewCsrfToken => csrf_token on csrf_token::id;
    NewEventResource => event_resources on event_resources::id;
    NewEvent => events on events::id;
    NewTaskRunStateCache => task_run_state_cache on task_run_state_cache::id;
    NewAutomationEventFollower => automation_event_follower on automation_event_follower::id;
    NewAutomationHeldEvent => automation_held_event on automation_held_event::id;
}
