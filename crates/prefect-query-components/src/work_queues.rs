//! `get_scheduled_flow_runs_from_work_queues`: the legacy work-queue poll (spec §8.3).
//!
//! Runs belong to queues by **name** (`flow_run.work_queue_name = work_queue.name`), as in
//! Prefect: a run is offered once for every unpaused queue of that name, and a queue's
//! concurrency slots are taken by the RUNNING/PENDING/CANCELLING runs carrying its name. The
//! candidate runs of each queue are taken as in the worker poll (the same dialect-specific
//! join), and PostgreSQL locks them (`FOR UPDATE SKIP LOCKED`).

use crate::QueryResult;
use crate::sql::{Bind, Binder, SqlDialect, load_raw};
use crate::worker_poll::{STATE_TYPE_INDEX, candidate_join};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use prefect_db_config::Conn;
use prefect_orm::models::FlowRun;
use prefect_orm::types::PUuid;
use uuid::Uuid;

/// The arguments of [`get_scheduled_flow_runs_from_work_queues`](crate::QueryComponents::get_scheduled_flow_runs_from_work_queues).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkQueuesPoll {
    /// At most this many runs per queue (`None`: no limit beyond the queue's free slots).
    pub limit_per_queue: Option<i64>,
    /// Only these queues (`None` or empty: every queue).
    pub work_queue_ids: Option<Vec<Uuid>>,
    /// Only runs with `next_scheduled_start_time <= scheduled_before`.
    pub scheduled_before: Option<DateTime<Utc>>,
}

/// One run offered by a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueFlowRun {
    /// The queue (Prefect's `wq_id`).
    pub work_queue_id: Uuid,
    /// The run.
    pub flow_run: FlowRun,
}

#[derive(QueryableByName, Debug)]
struct Row {
    #[diesel(sql_type = PUuid)]
    wq_id: Uuid,
    #[diesel(sql_type = PUuid)]
    run_id: Uuid,
}

pub(crate) fn legacy_sql(
    dialect: prefect_db_config::Dialect,
    args: &WorkQueuesPoll,
) -> (String, Vec<Bind>) {
    let d = SqlDialect(dialect);
    let mut b = Binder::new(d);
    let cap = b.bind(Bind::Int(
        args.limit_per_queue.map_or(i64::MAX, |l| l.max(0)),
    ));
    let mut filters = "fr.state_type = 'SCHEDULED'".to_owned();
    if let Some(before) = args.scheduled_before {
        filters += &format!(
            " AND fr.next_scheduled_start_time <= {}",
            b.bind(Bind::Time(before))
        );
    }
    let mut queue_filter = String::new();
    if let Some(ids) = args.work_queue_ids.as_ref().filter(|ids| !ids.is_empty()) {
        queue_filter = format!(
            " AND wq.id IN ({})",
            b.bind_list(ids.iter().copied().map(Bind::Uuid))
        );
    }
    let free = d.greatest("0", "wq.concurrency_limit - COALESCE(a.n, 0)");
    let candidates = candidate_join(
        d,
        "work_queue_name",
        "wq.name",
        &filters,
        &cap,
        args.scheduled_before.is_some(),
        true,
    );
    let state_index = d.indexed_by(STATE_TYPE_INDEX);
    let sql = format!(
        "WITH active_runs AS (\
           SELECT fr.work_queue_name AS work_queue_name, COUNT(fr.id) AS n FROM flow_run fr{state_index} \
           WHERE fr.state_type IN ('RUNNING', 'PENDING', 'CANCELLING') GROUP BY fr.work_queue_name), \
         concurrency_queues AS (\
           SELECT wq.id AS work_queue_id, {free} AS available_slots FROM work_queue wq \
           LEFT JOIN active_runs a ON a.work_queue_name = wq.name \
           WHERE wq.concurrency_limit IS NOT NULL AND NOT wq.is_paused{queue_filter}), \
         candidates AS (\
           SELECT wq.id AS wq_id, c.id AS run_id, c.next_scheduled_start_time AS run_time, \
                  qs.available_slots AS queue_slots, \
                  ROW_NUMBER() OVER (PARTITION BY wq.id ORDER BY c.next_scheduled_start_time ASC NULLS LAST, c.id ASC) AS queue_rank \
           FROM work_queue wq LEFT JOIN concurrency_queues qs ON qs.work_queue_id = wq.id \
           {candidates} \
           WHERE NOT wq.is_paused{queue_filter}) \
         SELECT c.wq_id, c.run_id FROM candidates c \
         WHERE c.queue_rank <= COALESCE(c.queue_slots, {cap}) \
         ORDER BY c.run_time ASC NULLS LAST, c.run_id ASC, c.wq_id ASC"
    );
    (sql, b.binds)
}

pub(crate) async fn get_scheduled_flow_runs_from_work_queues(
    conn: &mut Conn<'_>,
    args: &WorkQueuesPoll,
) -> QueryResult<Vec<QueueFlowRun>> {
    let (sql, binds) = legacy_sql(conn.dialect(), args);
    let rows: Vec<Row> = load_raw(conn, sql, binds).await?;
    let runs = crate::load::flow_runs_by_id(conn, rows.iter().map(|r| r.run_id).collect()).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            runs.get(&r.run_id).map(|run| QueueFlowRun {
                work_queue_id: r.wq_id,
                flow_run: run.clone(),
            })
        })
        .collect())
}

/// The SQL text of a legacy poll (binds as numbered placeholders), for plan inspection.
#[doc(hidden)]
pub fn legacy_sql_text(dialect: prefect_db_config::Dialect, args: &WorkQueuesPoll) -> String {
    legacy_sql(dialect, args).0
}
