//! Data access with the meaning Prefect's server models give it: where creating a row is more
//! than an `INSERT` (a flow found or created by name, a flow run made idempotent by its key, a
//! deployment upserted by flow and name, a work pool created with its default queue, …). Each
//! function names the Prefect 3.9.1 model function it follows and says where it differs.
//!
//! Orchestration (proposing states, events, encryption of block data) is the server's job and is
//! not done here: these functions write rows.
//!
//! Call them inside a transaction when they run several statements (each says so): they belong
//! together, as in Prefect.

use super::{AccessError, AccessResult, NewRecord, OnConflict, Record};
use crate::models::{
    Artifact, BlockDocument, ConcurrencyLimit, Deployment, DeploymentChangeset, Flow, FlowRun, NewArtifact,
    NewArtifactCollection, NewBlockDocument, NewConcurrencyLimit, NewDeployment, NewDeploymentSchedule, NewFlow,
    NewFlowRun, NewLog, NewSavedSearch, NewTaskRun, NewVariable, NewWorkPool, NewWorkQueue, NewWorker, SavedSearch,
    TaskRun, Variable, WorkPool, WorkPoolChangeset, WorkQueue, Worker,
};
use crate::schema::{block_type, deployment, deployment_schedule, flow, flow_run, task_run, work_queue};
use crate::types::{StateType, Val, WorkPoolStatus, WorkerStatus};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use prefect_db_conn::{Conn, dispatch};
use serde_json::Value;
use uuid::Uuid;

/// A row that was either created by the call or found (or updated) in its place: what Prefect's
/// create endpoints answer with 201 or 200.
#[derive(Debug, Clone, PartialEq)]
pub struct Created<R> {
    /// The row as stored.
    pub row: R,
    /// Whether this call inserted it (`false`: it existed already).
    pub inserted: bool,
}

/// `base ∪ extra ∪ user` as one JSON object (later keys win); non-objects count as empty.
/// Prefect's label inheritance (`flow.labels | {"prefect.flow.id": …} | labels`).
fn merge_labels(base: Option<&Value>, extra: &[(&str, String)], user: Option<&Value>) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(Value::Object(b)) = base {
        out.extend(b.clone());
    }
    for (k, v) in extra {
        out.insert((*k).to_owned(), Value::String(v.clone()));
    }
    if let Some(Value::Object(u)) = user {
        out.extend(u.clone());
    }
    Value::Object(out)
}

async fn insert_one<N: NewRecord>(conn: &mut Conn<'_>, row: N, on_conflict: OnConflict) -> AccessResult<Option<N::Record>> {
    Ok(N::insert_rows(conn, vec![row], on_conflict).await?.into_iter().next())
}

/// Prefect's `models.flows.create_flow`: inserts the flow, or finds the flow of that name
/// (`ON CONFLICT (name) DO NOTHING`, then a read by name). An existing flow is returned
/// unchanged (its tags and labels are not updated).
pub async fn create_flow(conn: &mut Conn<'_>, row: NewFlow) -> AccessResult<Created<Flow>> {
    let name = row.name.clone();
    if let Some(flow) = insert_one(conn, row, OnConflict::DoNothing).await? {
        return Ok(Created { row: flow, inserted: true });
    }
    let found: Option<Flow> = dispatch!(conn, |c| flow::table
        .filter(flow::name.eq(&name))
        .select(Flow::as_select())
        .first::<Flow>(c)
        .await
        .optional())
    .map_err(AccessError::on("flow"))?;
    found
        .map(|row| Created { row, inserted: false })
        .ok_or_else(|| AccessError::Query { table: "flow", source: diesel::result::Error::NotFound })
}

/// Prefect's `models.flow_runs.create_flow_run`, without orchestration: the run's labels
/// inherit its deployment's (when it has one that exists) or its flow's, plus
/// `prefect.flow.id` (and `prefect.deployment.id`), then its own; with an idempotency key (not
/// empty) the run is inserted `ON CONFLICT (flow_id, idempotency_key) DO NOTHING` and an
/// existing run with that key is returned unchanged. Two statements or three: run it in a
/// transaction. Setting the run's first state is the caller's (orchestration).
pub async fn create_flow_run(conn: &mut Conn<'_>, mut row: NewFlowRun) -> AccessResult<Created<FlowRun>> {
    let flow_id = row.flow_id;
    let deployment_labels: Option<Option<Value>> = match row.deployment_id {
        Some(d) => dispatch!(conn, |c| deployment::table
            .find(Val(d))
            .select(deployment::labels)
            .first::<Val<Option<Value>>>(c)
            .await
            .optional())
        .map_err(AccessError::on("deployment"))?
        .map(|v| v.0),
        None => None,
    };
    row.labels = Some(match (deployment_labels, row.deployment_id) {
        (Some(labels), Some(d)) => merge_labels(
            labels.as_ref(),
            &[("prefect.flow.id", flow_id.to_string()), ("prefect.deployment.id", d.to_string())],
            row.labels.as_ref(),
        ),
        _ => {
            let flow_labels: Option<Value> = dispatch!(conn, |c| flow::table
                .find(Val(flow_id))
                .select(flow::labels)
                .first::<Val<Option<Value>>>(c)
                .await
                .optional())
            .map_err(AccessError::on("flow"))?
            .and_then(|v| v.0);
            merge_labels(flow_labels.as_ref(), &[("prefect.flow.id", flow_id.to_string())], row.labels.as_ref())
        }
    });
    let key = row.idempotency_key.clone().filter(|k| !k.is_empty());
    let Some(key) = key else {
        let run = insert_one(conn, row, OnConflict::Fail).await?;
        return run
            .map(|row| Created { row, inserted: true })
            .ok_or_else(|| AccessError::Query { table: "flow_run", source: diesel::result::Error::NotFound });
    };
    if let Some(run) = insert_one(conn, row, OnConflict::DoNothing).await? {
        return Ok(Created { row: run, inserted: true });
    }
    let found: Option<FlowRun> = dispatch!(conn, |c| flow_run::table
        .filter(flow_run::flow_id.eq(Val(flow_id)))
        .filter(flow_run::idempotency_key.eq(&key))
        .select(FlowRun::as_select())
        .first::<FlowRun>(c)
        .await
        .optional())
    .map_err(AccessError::on("flow_run"))?;
    found
        .map(|row| Created { row, inserted: false })
        .ok_or_else(|| AccessError::Query { table: "flow_run", source: diesel::result::Error::NotFound })
}

/// Prefect's `models.task_runs.create_task_run`, without orchestration: labels inherit the flow
/// run's plus `prefect.flow-run.id`; a task run of a flow run is inserted `ON CONFLICT
/// (flow_run_id, task_key, dynamic_key) DO NOTHING` and an existing one is returned unchanged;
/// one without a flow run is looked up by `task_key` and `dynamic_key` first (the unique index
/// cannot hold NULLs to each other), as Prefect does. Run it in a transaction.
pub async fn create_task_run(conn: &mut Conn<'_>, mut row: NewTaskRun) -> AccessResult<Created<TaskRun>> {
    let (task_key, dynamic_key) = (row.task_key.clone(), row.dynamic_key.clone());
    match row.flow_run_id {
        Some(fr) => {
            let parent: Option<Value> = dispatch!(conn, |c| flow_run::table
                .find(Val(fr))
                .select(flow_run::labels)
                .first::<Val<Option<Value>>>(c)
                .await
                .optional())
            .map_err(AccessError::on("flow_run"))?
            .and_then(|v| v.0);
            row.labels = Some(merge_labels(parent.as_ref(), &[("prefect.flow-run.id", fr.to_string())], row.labels.as_ref()));
            if let Some(run) = insert_one(conn, row, OnConflict::DoNothing).await? {
                return Ok(Created { row: run, inserted: true });
            }
            let found: Option<TaskRun> = dispatch!(conn, |c| task_run::table
                .filter(task_run::flow_run_id.eq(Val(fr)))
                .filter(task_run::task_key.eq(&task_key))
                .filter(task_run::dynamic_key.eq(&dynamic_key))
                .select(TaskRun::as_select())
                .first::<TaskRun>(c)
                .await
                .optional())
            .map_err(AccessError::on("task_run"))?;
            found
                .map(|row| Created { row, inserted: false })
                .ok_or_else(|| AccessError::Query { table: "task_run", source: diesel::result::Error::NotFound })
        }
        None => {
            let found: Option<TaskRun> = dispatch!(conn, |c| task_run::table
                .filter(task_run::flow_run_id.is_null())
                .filter(task_run::task_key.eq(&task_key))
                .filter(task_run::dynamic_key.eq(&dynamic_key))
                .select(TaskRun::as_select())
                .first::<TaskRun>(c)
                .await
                .optional())
            .map_err(AccessError::on("task_run"))?;
            if let Some(row) = found {
                return Ok(Created { row, inserted: false });
            }
            row.labels = Some(merge_labels(None, &[], row.labels.as_ref()));
            let run = insert_one(conn, row, OnConflict::Fail).await?;
            run.map(|row| Created { row, inserted: true })
                .ok_or_else(|| AccessError::Query { table: "task_run", source: diesel::result::Error::NotFound })
        }
    }
}

/// Prefect's `models.deployments.create_deployment`: upserts the deployment by `(flow_id,
/// name)`, then replaces its schedules with `schedules` (their `deployment_id` is set here) and
/// deletes its auto-scheduled runs that have not started (`SCHEDULED`, not
/// `AwaitingConcurrencySlot`, never run, scheduled in the future), so the scheduler makes them
/// again from the new definition.
///
/// Labels are the flow's, plus `prefect.flow.id`, then the deployment's own. On a conflict the
/// stored deployment takes every column the given row sets (a required column, or an optional
/// one that is `Some`), its labels, and `updated`; `id`, `created`, `created_by`, `status` and
/// `concurrency_limit` are never changed. Prefect updates the fields its client sent; a Rust
/// row cannot tell "not sent" from NULL, so `None` means "not sent" here (set a column to NULL
/// with an update). Prefect's handling of `concurrency_limit` (a v2 limit of the deployment) is
/// the caller's. Several statements: run it in a transaction.
pub async fn upsert_deployment(
    conn: &mut Conn<'_>,
    mut row: NewDeployment,
    schedules: Vec<NewDeploymentSchedule>,
) -> AccessResult<Created<Deployment>> {
    let (flow_id, name) = (row.flow_id, row.name.clone());
    let flow_labels: Option<Value> = dispatch!(conn, |c| flow::table
        .find(Val(flow_id))
        .select(flow::labels)
        .first::<Val<Option<Value>>>(c)
        .await
        .optional())
    .map_err(AccessError::on("flow"))?
    .and_then(|v| v.0);
    row.labels = Some(merge_labels(flow_labels.as_ref(), &[("prefect.flow.id", flow_id.to_string())], row.labels.as_ref()));
    let changes = deployment_changes(&row);
    let created = match insert_one(conn, row, OnConflict::DoNothing).await? {
        Some(d) => Created { row: d, inserted: true },
        None => {
            let updated: Option<Deployment> = dispatch!(conn, |c| crate::prepared::Prepared::new(
                diesel::update(deployment::table.filter(deployment::flow_id.eq(Val(flow_id))).filter(deployment::name.eq(&name)))
                    .set(changes)
                    .returning(Deployment::as_returning())
            )
            .get_result::<Deployment>(c)
            .await
            .optional())
            .map_err(AccessError::on("deployment"))?;
            let row = updated.ok_or_else(|| AccessError::Query { table: "deployment", source: diesel::result::Error::NotFound })?;
            Created { row, inserted: false }
        }
    };
    let id = created.row.id;
    let now = Val(crate::types::now());
    dispatch!(conn, |c| diesel::delete(
        flow_run::table
            .filter(flow_run::deployment_id.eq(Val(id)))
            .filter(flow_run::state_type.eq(StateType::Scheduled))
            .filter(flow_run::state_name.ne("AwaitingConcurrencySlot"))
            .filter(flow_run::run_count.eq(0))
            .filter(flow_run::auto_scheduled.eq(true))
            .filter(flow_run::next_scheduled_start_time.gt(now))
    )
    .execute(c)
    .await)
    .map_err(AccessError::on("flow_run"))?;
    dispatch!(conn, |c| diesel::delete(deployment_schedule::table.filter(deployment_schedule::deployment_id.eq(Val(id))))
        .execute(c)
        .await)
    .map_err(AccessError::on("deployment_schedule"))?;
    let schedules: Vec<NewDeploymentSchedule> = schedules.into_iter().map(|s| NewDeploymentSchedule { deployment_id: id, ..s }).collect();
    NewDeploymentSchedule::insert_rows_returning_ids(conn, schedules, OnConflict::Fail).await?;
    Ok(created)
}

/// The update of an existing deployment from a row given to [`upsert_deployment`].
fn deployment_changes(row: &NewDeployment) -> DeploymentChangeset {
    let mut c = DeploymentChangeset::new();
    c.updated = row.updated;
    c.tags.clone_from(&row.tags);
    c.parameters.clone_from(&row.parameters);
    c.infra_overrides.clone_from(&row.infra_overrides);
    c.enforce_parameter_schema = row.enforce_parameter_schema;
    c.paused = row.paused;
    c.infrastructure_document_id = row.infrastructure_document_id.map(Some);
    c.description = row.description.clone().map(Some);
    c.parameter_openapi_schema = row.parameter_openapi_schema.clone().map(Some);
    c.storage_document_id = row.storage_document_id.map(Some);
    c.version = row.version.clone().map(Some);
    c.path = row.path.clone().map(Some);
    c.entrypoint = row.entrypoint.clone().map(Some);
    c.work_queue_name = row.work_queue_name.clone().map(Some);
    c.updated_by = row.updated_by.clone().map(Some);
    c.work_queue_id = row.work_queue_id.map(Some);
    c.pull_steps = row.pull_steps.clone().map(Some);
    c.last_polled = row.last_polled.map(Some);
    c.concurrency_options = row.concurrency_options.clone().map(Some);
    c.concurrency_limit_id = row.concurrency_limit_id.map(Some);
    c.labels = Some(row.labels.clone());
    c.version_id = row.version_id.map(Some);
    c
}

/// Prefect's `models.variables.create_variable`: a plain insert; a variable of the same name
/// makes it fail on `uq_variable__name` (Prefect's API answers 409).
pub async fn create_variable(conn: &mut Conn<'_>, row: NewVariable) -> AccessResult<Variable> {
    insert_one(conn, row, OnConflict::Fail)
        .await?
        .ok_or_else(|| AccessError::Query { table: "variable", source: diesel::result::Error::NotFound })
}

/// Prefect's `models.block_documents.create_block_document`, for the row: an anonymous
/// document without a name is named `anonymous-<uuid>`, and `block_type_name` (Prefect's
/// denormalised copy) is filled from the block type when not given. A document of the same
/// name and type makes it fail on `uq_block__type_id_name` (Prefect's API answers 409). The
/// data is stored as given: encrypting it, and the references, are the caller's.
pub async fn create_block_document(conn: &mut Conn<'_>, mut row: NewBlockDocument) -> AccessResult<BlockDocument> {
    if row.is_anonymous == Some(true) && row.name.is_empty() {
        row.name = format!("anonymous-{}", Uuid::new_v4());
    }
    if row.block_type_name.is_none() {
        let type_id = row.block_type_id;
        row.block_type_name = dispatch!(conn, |c| block_type::table
            .find(Val(type_id))
            .select(block_type::name)
            .first::<String>(c)
            .await
            .optional())
        .map_err(AccessError::on("block_type"))?;
    }
    insert_one(conn, row, OnConflict::Fail)
        .await?
        .ok_or_else(|| AccessError::Query { table: "block_document", source: diesel::result::Error::NotFound })
}

/// Prefect's `models.workers.create_work_pool`: the pool (status `PAUSED` when created paused,
/// `NOT_READY` otherwise, unless given), then its queue `default` ("The work pool's default
/// queue.", priority 1), then the pool's `default_queue_id`. Returns the pool as stored. A pool
/// of the same name makes it fail on `uq_work_pool__name`. Three statements: run it in a
/// transaction.
pub async fn create_work_pool(conn: &mut Conn<'_>, mut row: NewWorkPool) -> AccessResult<WorkPool> {
    if row.status.is_none() && row.type_ != "prefect-agent" {
        row.status = Some(if row.is_paused == Some(true) { WorkPoolStatus::Paused } else { WorkPoolStatus::NotReady });
    }
    row.default_queue_id = None;
    let pool = insert_one(conn, row, OnConflict::Fail)
        .await?
        .ok_or_else(|| AccessError::Query { table: "work_pool", source: diesel::result::Error::NotFound })?;
    let mut queue = NewWorkQueue::new("default", pool.id);
    queue.description = Some("The work pool's default queue.".to_owned());
    queue.priority = Some(1);
    let queue = insert_one(conn, queue, OnConflict::Fail)
        .await?
        .ok_or_else(|| AccessError::Query { table: "work_queue", source: diesel::result::Error::NotFound })?;
    let mut changes = WorkPoolChangeset::new();
    changes.default_queue_id = Some(Some(queue.id));
    WorkPool::update(conn, pool.id, changes)
        .await?
        .ok_or_else(|| AccessError::Query { table: "work_pool", source: diesel::result::Error::NotFound })
}

/// Prefect's `models.workers.create_work_queue`: without a priority the queue takes the first
/// free one of its pool (the lowest `n ≥ 1` no queue has, counting from the sorted
/// priorities; else the highest plus one). A given priority is stored as given (Prefect then
/// shifts the pool's other queues; that is the caller's). A queue of the same name in the pool
/// makes it fail on `uq_work_queue__work_pool_id_name`.
pub async fn create_work_queue(conn: &mut Conn<'_>, mut row: NewWorkQueue) -> AccessResult<WorkQueue> {
    if row.priority.is_none() {
        let pool = row.work_pool_id;
        let mut taken: Vec<i32> = dispatch!(conn, |c| work_queue::table
            .filter(work_queue::work_pool_id.eq(Val(pool)))
            .select(work_queue::priority)
            .load::<i32>(c)
            .await)
        .map_err(AccessError::on("work_queue"))?;
        taken.sort_unstable();
        row.priority = Some(first_free_priority(&taken));
    }
    insert_one(conn, row, OnConflict::Fail)
        .await?
        .ok_or_else(|| AccessError::Query { table: "work_queue", source: diesel::result::Error::NotFound })
}

/// Prefect's rule: the first 1-based position whose sorted priority differs from the position,
/// else the highest priority plus one.
fn first_free_priority(sorted: &[i32]) -> i32 {
    for (i, p) in sorted.iter().enumerate() {
        let position = i32::try_from(i + 1).unwrap_or(i32::MAX);
        if *p != position {
            return position;
        }
    }
    sorted.last().map_or(1, |p| p.saturating_add(1))
}

/// Prefect's `models.workers.worker_heartbeat` and `record_worker_heartbeat`: upserts the worker
/// by `(work_pool_id, name)` with `last_heartbeat_time` now and status `ONLINE` (and the
/// interval when given), then marks its pool `READY` (with `last_transitioned_status_at`) when
/// it was `NOT_READY`. Returns the worker. Run it in a transaction.
pub async fn worker_heartbeat(
    conn: &mut Conn<'_>,
    work_pool_id: Uuid,
    name: &str,
    heartbeat_interval_seconds: Option<i32>,
) -> AccessResult<Worker> {
    let now = crate::types::now();
    let mut row = NewWorker::new(name, work_pool_id);
    row.last_heartbeat_time = Some(now);
    row.status = Some(WorkerStatus::Online);
    row.heartbeat_interval_seconds = heartbeat_interval_seconds;
    let set: &'static [&'static str] = if heartbeat_interval_seconds.is_some() {
        &["last_heartbeat_time", "status", "heartbeat_interval_seconds"]
    } else {
        &["last_heartbeat_time", "status"]
    };
    let worker = insert_one(conn, row, OnConflict::DoUpdate(set))
        .await?
        .ok_or_else(|| AccessError::Query { table: "worker", source: diesel::result::Error::NotFound })?;
    if let Some(pool) = WorkPool::find(conn, work_pool_id).await? {
        if pool.status == WorkPoolStatus::NotReady {
            let mut changes = WorkPoolChangeset::new();
            changes.status = Some(WorkPoolStatus::Ready);
            changes.last_transitioned_status_at = Some(Some(now));
            changes.last_status_event_id = Some(Some(Uuid::now_v7()));
            WorkPool::update(conn, work_pool_id, changes).await?;
        }
    }
    Ok(worker)
}

/// Prefect's `models.saved_searches.create_saved_search`: `ON CONFLICT (name) DO UPDATE SET
/// filters` (and `updated`, which Prefect leaves unchanged there).
pub async fn upsert_saved_search(conn: &mut Conn<'_>, row: NewSavedSearch) -> AccessResult<Created<SavedSearch>> {
    upsert_returning(conn, row, &["filters"], "saved_search").await
}

/// Prefect's `models.concurrency_limits.create_concurrency_limit` (the v1 table): `ON CONFLICT
/// (tag) DO UPDATE SET concurrency_limit, updated`.
pub async fn upsert_concurrency_limit(conn: &mut Conn<'_>, row: NewConcurrencyLimit) -> AccessResult<Created<ConcurrencyLimit>> {
    upsert_returning(conn, row, &["concurrency_limit"], "concurrency_limit").await
}

async fn upsert_returning<N: NewRecord>(
    conn: &mut Conn<'_>,
    row: N,
    set: &'static [&'static str],
    table: &'static str,
) -> AccessResult<Created<N::Record>> {
    let id = row.id();
    let stored = insert_one(conn, row, OnConflict::DoUpdate(set))
        .await?
        .ok_or_else(|| AccessError::Query { table, source: diesel::result::Error::NotFound })?;
    let inserted = stored.id() == id;
    Ok(Created { row: stored, inserted })
}

/// Prefect's `models.artifacts.create_artifact`: an artifact with a key first upserts its
/// collection (`ON CONFLICT (key) DO UPDATE`: `latest_id` this artifact, every described column
/// from it, `updated`; `created` kept), then the artifact is inserted. Run it in a transaction.
pub async fn create_artifact(conn: &mut Conn<'_>, row: NewArtifact) -> AccessResult<Artifact> {
    if let Some(key) = row.key.clone() {
        let mut collection = NewArtifactCollection::new(key, row.id);
        collection.created = row.created;
        collection.updated = row.created;
        collection.type_.clone_from(&row.type_);
        collection.description.clone_from(&row.description);
        collection.data.clone_from(&row.data);
        collection.metadata_.clone_from(&row.metadata_);
        collection.flow_run_id = row.flow_run_id;
        collection.task_run_id = row.task_run_id;
        NewArtifactCollection::insert_rows_returning_ids(
            conn,
            vec![collection],
            OnConflict::DoUpdate(&["latest_id", "type", "description", "data", "metadata_", "flow_run_id", "task_run_id"]),
        )
        .await?;
    }
    insert_one(conn, row, OnConflict::Fail)
        .await?
        .ok_or_else(|| AccessError::Query { table: "artifact", source: diesel::result::Error::NotFound })
}

/// Prefect's `models.logs.create_logs`: NUL characters are removed from each log's `name` and
/// `message` (PostgreSQL text cannot hold them), then the logs are inserted in one batch
/// (all-or-nothing). Returns how many were written.
pub async fn create_logs(conn: &mut Conn<'_>, logs: Vec<NewLog>) -> AccessResult<usize> {
    let logs: Vec<NewLog> = logs
        .into_iter()
        .map(|mut l| {
            if l.message.contains('\0') {
                l.message = l.message.replace('\0', "");
            }
            if l.name.contains('\0') {
                l.name = l.name.replace('\0', "");
            }
            l
        })
        .collect();
    Ok(NewLog::insert_rows_returning_ids(conn, logs, OnConflict::Fail).await?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_priorities_follow_prefect() {
        assert_eq!(first_free_priority(&[]), 1);
        assert_eq!(first_free_priority(&[1, 2, 3]), 4);
        assert_eq!(first_free_priority(&[1, 3, 4]), 2, "the first gap");
        assert_eq!(first_free_priority(&[2, 3]), 1);
        assert_eq!(first_free_priority(&[1, 1, 2]), 2, "a repeat is a gap at its position");
    }

    #[test]
    fn labels_merge_later_wins_and_ignores_non_objects() {
        let flow = serde_json::json!({"team": "a", "prefect.flow.id": "old"});
        let user = serde_json::json!({"team": "b"});
        let merged = merge_labels(Some(&flow), &[("prefect.flow.id", "new".to_owned())], Some(&user));
        assert_eq!(merged, serde_json::json!({"team": "b", "prefect.flow.id": "new"}));
        assert_eq!(merge_labels(Some(&serde_json::json!([1])), &[], None), serde_json::json!({}));
    }
}
