//! The data-access API a server's handlers use: methods on the connection of a transaction
//! (`tx.get::<FlowRun>(id)`, `tx.insert(new_run)`, `tx.update(id, changes)`,
//! `tx.create_flow(..)`, …) that take and return plain Rust values and the models, and fail with
//! the one server-facing [`Error`].
//!
//! The per-table work is done by `prefect_orm::access` (generated for every table, with
//! Prefect's semantics where Prefect has them); this trait gives it one vocabulary and one error.

use crate::error::Error;
use prefect_db_config::Conn;
use prefect_orm::access::{self as orm, Created, NewRecord, OnConflict, Record, RecordChangeset};
use prefect_orm::models::{
    Artifact, BlockDocument, ConcurrencyLimit, Deployment, Flow, FlowRun, NewArtifact, NewBlockDocument,
    NewConcurrencyLimit, NewDeployment, NewDeploymentSchedule, NewFlow, NewFlowRun, NewLog, NewSavedSearch, NewTaskRun,
    NewVariable, NewWorkPool, NewWorkQueue, SavedSearch, TaskRun, Variable, WorkPool, WorkQueue, Worker,
};
use std::future::Future;
use uuid::Uuid;

/// Typed data access on a connection (inside a transaction or not), for every table.
///
/// Rows are the models of `prefect_orm::models` (`FlowRun`, `NewFlowRun`,
/// `FlowRunChangeset`, …); the table follows from the type. Errors are [`Error`]: a missing
/// row is [`Error::NotFound`], a unique or foreign-key violation [`Error::Conflict`] naming the
/// constraint, an unreachable database [`Error::Unavailable`].
///
/// ```no_run
/// use prefect_db_interface::prelude::*;
///
/// async fn rename_run(db: &Database, id: Uuid, name: &str) -> Result<FlowRun, Error> {
///     db.transaction(TxMode::Write, async |tx| {
///         let run: FlowRun = tx.get(id).await?;
///         let mut changes = FlowRunChangeset::new();
///         changes.name = Some(format!("{name} (was {})", run.name));
///         tx.update(id, changes).await
///     })
///     .await
/// }
/// ```
pub trait DataAccess {
    /// The row with this id; [`Error::NotFound`] when there is none.
    fn get<R: Record>(&mut self, id: Uuid) -> impl Future<Output = Result<R, Error>> + Send;

    /// The row with this id, if any.
    fn find<R: Record>(&mut self, id: Uuid) -> impl Future<Output = Result<Option<R>, Error>> + Send;

    /// The rows with these ids, in the order given (missing ones skipped, repeats once).
    fn get_many<R: Record>(&mut self, ids: &[Uuid]) -> impl Future<Output = Result<Vec<R>, Error>> + Send;

    /// Inserts one row and returns it as stored (database defaults filled in).
    fn insert<N: NewRecord>(&mut self, row: N) -> impl Future<Output = Result<N::Record, Error>> + Send;

    /// Inserts rows in one batch (all-or-nothing) and returns them as stored, in order.
    fn insert_many<N: NewRecord>(&mut self, rows: Vec<N>) -> impl Future<Output = Result<Vec<N::Record>, Error>> + Send;

    /// Inserts rows in one batch (all-or-nothing) and returns only their ids, in order: for
    /// bulk writes whose rows the caller already holds.
    fn insert_many_ids<N: NewRecord>(&mut self, rows: Vec<N>) -> impl Future<Output = Result<Vec<Uuid>, Error>> + Send;

    /// Inserts rows with a conflict policy on the table's conflict target (Prefect's upsert
    /// columns of the ORM configuration; the primary key for other tables): skipped rows are
    /// not returned, updated rows are returned in place of the given ones.
    fn insert_many_on_conflict<N: NewRecord>(
        &mut self,
        rows: Vec<N>,
        on_conflict: OnConflict,
    ) -> impl Future<Output = Result<Vec<N::Record>, Error>> + Send;

    /// Applies a changeset (`FlowRunChangeset`, …; its `updated` is now unless changed) to the
    /// row with this id and returns the updated row; [`Error::NotFound`] when there is none.
    fn update<C: RecordChangeset>(&mut self, id: Uuid, changes: C) -> impl Future<Output = Result<C::Record, Error>> + Send;

    /// As [`DataAccess::update`] without reading the row back (one `UPDATE`, nothing decoded):
    /// for writes that do not answer with the row, such as Prefect's `PATCH` endpoints (204).
    /// [`Error::NotFound`] when there is no such row.
    fn update_no_return<C: RecordChangeset>(&mut self, id: Uuid, changes: C) -> impl Future<Output = Result<(), Error>> + Send;

    /// Deletes the row with this id (rows that depend on it follow the schema's foreign keys);
    /// [`Error::NotFound`] when there is none.
    fn delete<R: Record>(&mut self, id: Uuid) -> impl Future<Output = Result<(), Error>> + Send;

    /// Deletes the rows with these ids; how many there were.
    fn delete_many<R: Record>(&mut self, ids: &[Uuid]) -> impl Future<Output = Result<usize, Error>> + Send;

    /// Finds the flow of this name or creates it (Prefect's `create_flow`); see
    /// [`prefect_orm::access::prefect::create_flow`].
    fn create_flow(&mut self, row: NewFlow) -> impl Future<Output = Result<Created<Flow>, Error>> + Send;

    /// Creates a flow run with inherited labels, idempotent by its key (Prefect's
    /// `create_flow_run` without orchestration); see [`prefect_orm::access::prefect::create_flow_run`].
    fn create_flow_run(&mut self, row: NewFlowRun) -> impl Future<Output = Result<Created<FlowRun>, Error>> + Send;

    /// Creates a task run, or finds it by flow run, task key and dynamic key (Prefect's
    /// `create_task_run` without orchestration); see [`prefect_orm::access::prefect::create_task_run`].
    fn create_task_run(&mut self, row: NewTaskRun) -> impl Future<Output = Result<Created<TaskRun>, Error>> + Send;

    /// Upserts a deployment by flow and name and replaces its schedules (Prefect's
    /// `create_deployment`); see [`prefect_orm::access::prefect::upsert_deployment`].
    fn upsert_deployment(
        &mut self,
        row: NewDeployment,
        schedules: Vec<NewDeploymentSchedule>,
    ) -> impl Future<Output = Result<Created<Deployment>, Error>> + Send;

    /// Creates a variable; a name in use is [`Error::Conflict`] on `uq_variable__name` with
    /// Prefect's message.
    fn create_variable(&mut self, row: NewVariable) -> impl Future<Output = Result<Variable, Error>> + Send;

    /// Creates a block document (anonymous ones named, the type's name copied); a name in use
    /// for its block type is [`Error::Conflict`] on `uq_block__type_id_name` with Prefect's
    /// message. See [`prefect_orm::access::prefect::create_block_document`].
    fn create_block_document(&mut self, row: NewBlockDocument) -> impl Future<Output = Result<BlockDocument, Error>> + Send;

    /// Creates a work pool with its default queue; a name in use is [`Error::Conflict`] on
    /// `uq_work_pool__name` with Prefect's message.
    fn create_work_pool(&mut self, row: NewWorkPool) -> impl Future<Output = Result<WorkPool, Error>> + Send;

    /// Creates a work queue in its pool, at the first free priority when none is given; a
    /// name in use in the pool is [`Error::Conflict`] on `uq_work_queue__work_pool_id_name`.
    fn create_work_queue(&mut self, row: NewWorkQueue) -> impl Future<Output = Result<WorkQueue, Error>> + Send;

    /// Records a worker's heartbeat (upserted by pool and name; the pool becomes `READY`).
    fn worker_heartbeat(
        &mut self,
        work_pool_id: Uuid,
        name: &str,
        heartbeat_interval_seconds: Option<i32>,
    ) -> impl Future<Output = Result<Worker, Error>> + Send;

    /// Creates or replaces a saved search by name.
    fn upsert_saved_search(&mut self, row: NewSavedSearch) -> impl Future<Output = Result<Created<SavedSearch>, Error>> + Send;

    /// Creates a tag's (v1) concurrency limit or sets its limit.
    fn upsert_concurrency_limit(
        &mut self,
        row: NewConcurrencyLimit,
    ) -> impl Future<Output = Result<Created<ConcurrencyLimit>, Error>> + Send;

    /// Creates an artifact, and upserts its key's collection when it has a key.
    fn create_artifact(&mut self, row: NewArtifact) -> impl Future<Output = Result<Artifact, Error>> + Send;

    /// Writes logs (NUL characters removed) in one batch; how many.
    fn create_logs(&mut self, logs: Vec<NewLog>) -> impl Future<Output = Result<usize, Error>> + Send;
}

impl DataAccess for Conn<'_> {
    async fn get<R: Record>(&mut self, id: Uuid) -> Result<R, Error> {
        R::find(self, id).await?.ok_or_else(|| Error::not_found(R::TABLE, id))
    }

    async fn find<R: Record>(&mut self, id: Uuid) -> Result<Option<R>, Error> {
        Ok(R::find(self, id).await?)
    }

    async fn get_many<R: Record>(&mut self, ids: &[Uuid]) -> Result<Vec<R>, Error> {
        Ok(R::find_many(self, ids).await?)
    }

    async fn insert<N: NewRecord>(&mut self, row: N) -> Result<N::Record, Error> {
        let id = row.id();
        N::insert_rows(self, vec![row], OnConflict::Fail)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::not_found(N::Record::TABLE, id))
    }

    async fn insert_many<N: NewRecord>(&mut self, rows: Vec<N>) -> Result<Vec<N::Record>, Error> {
        Ok(N::insert_rows(self, rows, OnConflict::Fail).await?)
    }

    async fn insert_many_ids<N: NewRecord>(&mut self, rows: Vec<N>) -> Result<Vec<Uuid>, Error> {
        Ok(N::insert_rows_returning_ids(self, rows, OnConflict::Fail).await?)
    }

    async fn insert_many_on_conflict<N: NewRecord>(&mut self, rows: Vec<N>, on_conflict: OnConflict) -> Result<Vec<N::Record>, Error> {
        Ok(N::insert_rows(self, rows, on_conflict).await?)
    }

    async fn update<C: RecordChangeset>(&mut self, id: Uuid, changes: C) -> Result<C::Record, Error> {
        <C::Record as Record>::update(self, id, changes).await?.ok_or_else(|| Error::not_found(C::Record::TABLE, id))
    }

    async fn update_no_return<C: RecordChangeset>(&mut self, id: Uuid, changes: C) -> Result<(), Error> {
        if <C::Record as Record>::update_no_return(self, id, changes).await? {
            Ok(())
        } else {
            Err(Error::not_found(C::Record::TABLE, id))
        }
    }

    async fn delete<R: Record>(&mut self, id: Uuid) -> Result<(), Error> {
        if R::delete(self, id).await? { Ok(()) } else { Err(Error::not_found(R::TABLE, id)) }
    }

    async fn delete_many<R: Record>(&mut self, ids: &[Uuid]) -> Result<usize, Error> {
        Ok(R::delete_many(self, ids).await?)
    }

    async fn create_flow(&mut self, row: NewFlow) -> Result<Created<Flow>, Error> {
        Ok(orm::prefect::create_flow(self, row).await?)
    }

    async fn create_flow_run(&mut self, row: NewFlowRun) -> Result<Created<FlowRun>, Error> {
        Ok(orm::prefect::create_flow_run(self, row).await?)
    }

    async fn create_task_run(&mut self, row: NewTaskRun) -> Result<Created<TaskRun>, Error> {
        Ok(orm::prefect::create_task_run(self, row).await?)
    }

    async fn upsert_deployment(&mut self, row: NewDeployment, schedules: Vec<NewDeploymentSchedule>) -> Result<Created<Deployment>, Error> {
        Ok(orm::prefect::upsert_deployment(self, row, schedules).await?)
    }

    async fn create_variable(&mut self, row: NewVariable) -> Result<Variable, Error> {
        let name = row.name.clone();
        orm::prefect::create_variable(self, row).await.map_err(|e| {
            conflict_message(e, "uq_variable__name", format!("A variable with the name {} already exists.", python_repr(&name)))
        })
    }

    async fn create_block_document(&mut self, row: NewBlockDocument) -> Result<BlockDocument, Error> {
        orm::prefect::create_block_document(self, row)
            .await
            .map_err(|e| conflict_message(e, "uq_block__type_id_name", "Block already exists".to_owned()))
    }

    async fn create_work_pool(&mut self, row: NewWorkPool) -> Result<WorkPool, Error> {
        orm::prefect::create_work_pool(self, row)
            .await
            .map_err(|e| conflict_message(e, "uq_work_pool__name", "A work pool with this name already exists.".to_owned()))
    }

    async fn create_work_queue(&mut self, row: NewWorkQueue) -> Result<WorkQueue, Error> {
        orm::prefect::create_work_queue(self, row).await.map_err(|e| {
            conflict_message(
                e,
                "uq_work_queue__work_pool_id_name",
                "A work queue with this name already exists in work pool {work_pool_name!r}.".to_owned(),
            )
        })
    }

    async fn worker_heartbeat(&mut self, work_pool_id: Uuid, name: &str, heartbeat_interval_seconds: Option<i32>) -> Result<Worker, Error> {
        Ok(orm::prefect::worker_heartbeat(self, work_pool_id, name, heartbeat_interval_seconds).await?)
    }

    async fn upsert_saved_search(&mut self, row: NewSavedSearch) -> Result<Created<SavedSearch>, Error> {
        Ok(orm::prefect::upsert_saved_search(self, row).await?)
    }

    async fn upsert_concurrency_limit(&mut self, row: NewConcurrencyLimit) -> Result<Created<ConcurrencyLimit>, Error> {
        Ok(orm::prefect::upsert_concurrency_limit(self, row).await?)
    }

    async fn create_artifact(&mut self, row: NewArtifact) -> Result<Artifact, Error> {
        Ok(orm::prefect::create_artifact(self, row).await?)
    }

    async fn create_logs(&mut self, logs: Vec<NewLog>) -> Result<usize, Error> {
        Ok(orm::prefect::create_logs(self, logs).await?)
    }
}

/// The error of `e`, with Prefect's message when it is a conflict on `constraint`.
fn conflict_message(e: orm::AccessError, constraint: &str, message: String) -> Error {
    let e = Error::from(e);
    if e.constraint() == Some(constraint) { e.with_message(message) } else { e }
}

/// A string as Python's `repr` writes it (Prefect's messages use `{name!r}`): single quotes,
/// unless the text holds a single quote and no double quote.
fn python_repr(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn python_repr_quotes_like_python() {
        assert_eq!(super::python_repr("my_var"), "'my_var'");
        assert_eq!(super::python_repr("it's"), "\"it's\"");
        assert_eq!(super::python_repr("a'b\"c"), "'a\\'b\"c'");
    }
}
