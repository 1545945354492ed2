//! Multi-row inserts for every model, with Prefect's upserts (spec §7, §8.2 `insert`).
//!
//! [`BulkInsert`] is implemented for every `NewFoo` of `prefect_orm::models`. Rows go in one
//! statement per [`PG_ROWS_PER_STATEMENT`] rows on PostgreSQL (`INSERT … VALUES (…), (…)
//! [ON CONFLICT … DO NOTHING | DO UPDATE SET …] RETURNING id`);
//! on SQLite, which has no `DEFAULT` keyword in `VALUES`, consecutive rows that leave the same
//! columns to their defaults share one multi-row statement (at most [`SQLITE_MAX_BINDS`] bind
//! parameters each); a batch of several statements runs inside one savepoint, so it is
//! all-or-nothing. Both return the ids of the rows actually inserted, in input order.

use crate::{QueryError, QueryResult};
use chrono::{DateTime, Utc};
use prefect_db_config::Conn;
use prefect_orm::types::{PTimestamp, Val};
use std::future::Future;
use std::marker::PhantomData;
use uuid::Uuid;

/// Rows per PostgreSQL statement: at most 64 columns each keeps a statement under the
/// protocol's 65,535 bind parameters. A batch over this size is several statements, run in a
/// transaction (a savepoint inside the caller's) so it stays all-or-nothing.
pub const PG_ROWS_PER_STATEMENT: usize = 1_000;

/// Bind parameters per SQLite statement: SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (32,766 since
/// SQLite 3.32). A batch needing more is several statements.
pub const SQLITE_MAX_BINDS: usize = 32_766;

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

/// `INSERT INTO table (cols) VALUES (…), (…) [ON CONFLICT (target) DO NOTHING | DO UPDATE SET …]
/// RETURNING id` over rows that all name the same columns (SQLite).
#[cfg(feature = "sqlite")]
struct SqliteRows<'a, V, T> {
    table: &'static str,
    rows: &'a [diesel::query_builder::ValuesClause<V, T>],
    /// `None`: a plain insert; `Some((target, None))`: DO NOTHING; `Some((target, Some(set)))`:
    /// DO UPDATE.
    conflict: Option<(&'static [&'static str], Option<&'a ExcludedSet<T>>)>,
}

#[cfg(feature = "sqlite")]
impl<V, T> diesel::query_builder::QueryId for SqliteRows<'_, V, T> {
    type QueryId = ();
    // Prepared statements are cached by their SQL text (one per shape and row count).
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(feature = "sqlite")]
impl<V, T> diesel::query_builder::Query for SqliteRows<'_, V, T> {
    type SqlType = prefect_orm::types::PUuid;
}

#[cfg(feature = "sqlite")]
impl<V, T> diesel::RunQueryDsl<diesel::SqliteConnection> for SqliteRows<'_, V, T> {}

#[cfg(feature = "sqlite")]
impl<V, T> diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for SqliteRows<'_, V, T>
where
    diesel::query_builder::ValuesClause<V, T>: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    V: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    ExcludedSet<T>: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("INSERT INTO ");
        out.push_identifier(self.table)?;
        out.push_sql(" ");
        let mut rows = self.rows.iter();
        if let Some(first) = rows.next() {
            // `(cols) VALUES (…)`, or `DEFAULT VALUES` for a row of defaults (always alone).
            first.walk_ast(out.reborrow())?;
        }
        for row in rows {
            out.push_sql(", (");
            row.values.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        if let Some((target, set)) = self.conflict {
            out.push_sql(" ON CONFLICT (");
            for (i, column) in target.iter().enumerate() {
                if i > 0 {
                    out.push_sql(", ");
                }
                out.push_identifier(column)?;
            }
            match set {
                Some(set) => {
                    out.push_sql(") DO UPDATE SET ");
                    set.walk_ast(out.reborrow())?;
                }
                None => out.push_sql(") DO NOTHING"),
            }
        }
        out.push_sql(" RETURNING ");
        out.push_identifier("id")
    }
}

/// Inserts `rows` on SQLite: consecutive rows naming the same columns share a statement; more
/// than one statement, and upserts, run inside a savepoint. Returns the ids of the rows inserted or updated,
/// in input order; an id returned twice (an upsert hitting one row twice) is refused.
#[cfg(feature = "sqlite")]
fn sqlite_insert<V, T>(
    c: &mut diesel::SqliteConnection,
    table: &'static str,
    rows: Vec<diesel::query_builder::ValuesClause<V, T>>,
    conflict: Option<(&'static [&'static str], Option<&ExcludedSet<T>>)>,
) -> Result<Vec<Val<Uuid>>, BatchError>
where
    diesel::query_builder::ValuesClause<V, T>: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    V: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    ExcludedSet<T>: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
{
    use diesel::query_builder::{QueryBuilder as _, QueryFragment as _};
    // Split into statements: a new one where a row names other columns than the previous one,
    // where the bind parameters would pass SQLite's limit, and around rows of defaults only.
    let mut statements: Vec<std::ops::Range<usize>> = Vec::new();
    let mut shape = String::new();
    let mut binds_per_row = 0;
    for (i, row) in rows.iter().enumerate() {
        let mut qb = diesel::sqlite::SqliteQueryBuilder::new();
        row.to_sql(&mut qb, &diesel::sqlite::Sqlite)?;
        let sql = qb.finish();
        let binds = sql.bytes().filter(|&b| b == b'?').count();
        let default_values = binds == 0;
        match statements.last_mut() {
            Some(last)
                if !default_values && sql == shape && (last.len() + 1) * binds_per_row <= SQLITE_MAX_BINDS =>
            {
                last.end = i + 1;
            }
            _ => {
                statements.push(i..i + 1);
                shape = if default_values { String::new() } else { sql };
                binds_per_row = binds;
            }
        }
    }
    let run = |c: &mut diesel::SqliteConnection| -> Result<Vec<Val<Uuid>>, BatchError> {
        let mut ids: Vec<Val<Uuid>> = Vec::with_capacity(rows.len());
        for range in &statements {
            let statement = SqliteRows { table, rows: &rows[range.clone()], conflict };
            ids.extend(diesel::RunQueryDsl::load::<Val<Uuid>>(statement, c)?);
        }
        let mut seen = std::collections::HashSet::with_capacity(ids.len());
        if let Some(twice) = ids.iter().find(|id| !seen.insert(id.0)) {
            return Err(BatchError::Twice(twice.0));
        }
        Ok(ids)
    };
    let updates = matches!(conflict, Some((_, Some(_))));
    if statements.len() == 1 && !updates {
        // One statement is atomic by itself: its own error rolls it back. An upsert is checked
        // for rows hit twice after it ran, so it always runs inside the savepoint.
        return run(c);
    }
    diesel::Connection::transaction(c, run)
}

/// Runs `statements` in a transaction (a savepoint inside an open one).
#[cfg(feature = "postgres")]
async fn pg_atomically<T>(
    c: &mut diesel_async::AsyncPgConnection,
    statements: impl AsyncFnOnce(&mut diesel_async::AsyncPgConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    AnsiTransactionManager::begin_transaction(c).await?;
    match statements(c).await {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(c).await?;
            Ok(value)
        }
        Err(error) => {
            // The statements' error is the one to report; a failed rollback leaves the
            // connection marked broken and the pool drops it.
            let _ = AnsiTransactionManager::rollback_transaction(c).await;
            Err(error)
        }
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
    ($($new:ident => $table:ident on $target:expr, named $names:expr;)+) => {$(
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
                        use crate::prepared::Prepared;
                        use diesel_async::RunQueryDsl;
                        let c: &mut diesel_async::AsyncPgConnection = &mut **c;
                        let several = rows.len() > PG_ROWS_PER_STATEMENT;
                        let statements = async |c: &mut diesel_async::AsyncPgConnection| -> QueryResult<Vec<Val<Uuid>>> {
                            let mut ids: Vec<Val<Uuid>> = Vec::with_capacity(rows.len());
                            let mut rest = rows;
                            while !rest.is_empty() {
                                let tail = rest.split_off(rest.len().min(PG_ROWS_PER_STATEMENT));
                                let chunk = std::mem::replace(&mut rest, tail);
                                let keep = crate::prepared::worth_preparing(chunk.len());
                                let got: Vec<Val<Uuid>> = match on_conflict {
                                    OnConflict::Fail => Prepared::when(keep, diesel::insert_into($table::table)
                                        .values(chunk)
                                        .returning($table::id))
                                        .get_results(c)
                                        .await?,
                                    OnConflict::DoNothing => Prepared::when(keep, diesel::insert_into($table::table)
                                        .values(chunk)
                                        .on_conflict($target)
                                        .do_nothing()
                                        .returning($table::id))
                                        .get_results(c)
                                        .await?,
                                    OnConflict::DoUpdate(_) => {
                                        let Some(set) = set.clone() else { break };
                                        Prepared::when(keep, diesel::insert_into($table::table)
                                            .values(chunk)
                                            .on_conflict($target)
                                            .do_update()
                                            .set(set)
                                            .returning($table::id))
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
                            Ok(ids)
                        };
                        if several {
                            // All-or-nothing across statements, as on SQLite: a transaction, or
                            // a savepoint inside the caller's.
                            pg_atomically(c, statements).await?
                        } else {
                            statements(c).await?
                        }
                    }
                    #[cfg(feature = "sqlite")]
                    Conn::Sqlite(c) => {
                        let done = c.spawn_blocking(move |c| {
                            use diesel::Insertable;
                            let target: &'static [&'static str] = $names;
                            let conflict = match on_conflict {
                                OnConflict::Fail => None,
                                OnConflict::DoNothing => Some((target, None)),
                                OnConflict::DoUpdate(_) => Some((target, set.as_ref())),
                            };
                            let values: Vec<_> = rows.into_iter().map(Insertable::values).collect();
                            Ok(sqlite_insert(c, stringify!($table), values, conflict))
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
    NewFlow => flow on FLOW_UPSERT_COLUMNS, named FLOW_UPSERT.columns;
    NewFlowRun => flow_run on FLOW_RUN_UPSERT_COLUMNS, named FLOW_RUN_UPSERT.columns;
    NewFlowRunState => flow_run_state on flow_run_state::id, named &["id"];
    NewTaskRun => task_run on TASK_RUN_UPSERT_COLUMNS, named TASK_RUN_UPSERT.columns;
    NewTaskRunState => task_run_state on task_run_state::id, named &["id"];
    NewDeployment => deployment on DEPLOYMENT_UPSERT_COLUMNS, named DEPLOYMENT_UPSERT.columns;
    NewDeploymentSchedule => deployment_schedule on deployment_schedule::id, named &["id"];
    NewDeploymentVersion => deployment_version on deployment_version::id, named &["id"];
    NewConcurrencyLimit => concurrency_limit on CONCURRENCY_LIMIT_UPSERT_COLUMNS, named CONCURRENCY_LIMIT_UPSERT.columns;
    NewConcurrencyLimitV2 => concurrency_limit_v2 on concurrency_limit_v2::id, named &["id"];
    NewBlockType => block_type on BLOCK_TYPE_UPSERT_COLUMNS, named BLOCK_TYPE_UPSERT.columns;
    NewBlockSchema => block_schema on BLOCK_SCHEMA_UPSERT_COLUMNS, named BLOCK_SCHEMA_UPSERT.columns;
    NewBlockSchemaReference => block_schema_reference on block_schema_reference::id, named &["id"];
    NewBlockDocument => block_document on BLOCK_DOCUMENT_UPSERT_COLUMNS, named BLOCK_DOCUMENT_UPSERT.columns;
    NewBlockDocumentReference => block_document_reference on block_document_reference::id, named &["id"];
    NewArtifact => artifact on artifact::id, named &["id"];
    NewArtifactCollection => artifact_collection on ARTIFACT_COLLECTION_UPSERT_COLUMNS, named ARTIFACT_COLLECTION_UPSERT.columns;
    NewSavedSearch => saved_search on SAVED_SEARCH_UPSERT_COLUMNS, named SAVED_SEARCH_UPSERT.columns;
    NewLog => log on log::id, named &["id"];
    NewVariable => variable on variable::id, named &["id"];
    NewConfiguration => configuration on configuration::id, named &["id"];
    NewWorkPool => work_pool on work_pool::id, named &["id"];
    NewWorkQueue => work_queue on work_queue::id, named &["id"];
    NewWorker => worker on worker::id, named &["id"];
    NewAgent => agent on agent::id, named &["id"];
    NewFlowRunInput => flow_run_input on flow_run_input::id, named &["id"];
    NewAutomation => automation on automation::id, named &["id"];
    NewAutomationBucket => automation_bucket on automation_bucket::id, named &["id"];
    NewAutomationRelatedResource => automation_related_resource on automation_related_resource::id, named &["id"];
    NewCompositeTriggerChildFiring => composite_trigger_child_firing on composite_trigger_child_firing::id, named &["id"];
    NewCsrfToken => csrf_token on csrf_token::id, named &["id"];
    NewEventResource => event_resources on event_resources::id, named &["id"];
    NewEvent => events on events::id, named &["id"];
    NewTaskRunStateCache => task_run_state_cache on task_run_state_cache::id, named &["id"];
    NewAutomationEventFollower => automation_event_follower on automation_event_follower::id, named &["id"];
    NewAutomationHeldEvent => automation_held_event on automation_held_event::id, named &["id"];
}
