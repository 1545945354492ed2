//! `get_scheduled_flow_runs_from_work_pool`: what workers poll (spec §8.4).
//!
//! One ranking query on both dialects. Only the way candidate runs are taken per queue differs
//! (see `candidate_join`): PostgreSQL takes them in a `LATERAL` subquery, SQLite (which has no
//! `LATERAL`) in a correlated subquery. Either way each queue yields at most `min(queue_limit,
//! worker_limit, limit)` candidates, read in scheduled-time order through Prefect's time index,
//! so a poll reads about as many runs as it returns (times the number of queues sharing the
//! index), not every scheduled run.
//!
//! On PostgreSQL the ranking locks nothing; the runs it chose are then locked with
//! `FOR UPDATE SKIP LOCKED` (and only while still SCHEDULED). When a concurrent poller holds
//! some of them, those are left out and the ranking runs again without them, topping the
//! answer up from the next candidates (a few rounds at most). So a poll locks the runs it
//! returns and no others, and two pollers in open transactions never receive the same run.

use crate::QueryResult;
use crate::sql::{Bind, Binder, SqlDialect, load_raw};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use prefect_db_config::{Conn, Dialect};
use prefect_orm::models::FlowRun;
use prefect_orm::types::PUuid;
use uuid::Uuid;

/// Prefect's default for `limit`, `worker_limit` and `queue_limit`.
pub const DEFAULT_POLL_LIMIT: i64 = 1000;

/// The arguments of [`get_scheduled_flow_runs_from_work_pool`](crate::QueryComponents::get_scheduled_flow_runs_from_work_pool).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkPoolPoll {
    /// At most this many runs in all (default 1000).
    pub limit: Option<i64>,
    /// At most this many runs per work pool (default 1000).
    pub worker_limit: Option<i64>,
    /// At most this many runs per work queue (default 1000).
    pub queue_limit: Option<i64>,
    /// Only these pools (`None` or empty: every pool, as Prefect).
    pub work_pool_ids: Option<Vec<Uuid>>,
    /// Only these queues (`None` or empty: every queue, as Prefect).
    pub work_queue_ids: Option<Vec<Uuid>>,
    /// Only runs with `next_scheduled_start_time <= scheduled_before`.
    pub scheduled_before: Option<DateTime<Utc>>,
    /// Only runs with `next_scheduled_start_time >= scheduled_after`.
    pub scheduled_after: Option<DateTime<Utc>>,
    /// Order by queue priority first (lower number first), then scheduled time.
    pub respect_queue_priorities: bool,
}

/// One polled run: Prefect's `WorkerFlowRunResponse`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerFlowRun {
    /// The pool of the run's queue.
    pub work_pool_id: Uuid,
    /// The run's queue.
    pub work_queue_id: Uuid,
    /// The run (its `state` relationship is not loaded, as in Prefect).
    pub flow_run: FlowRun,
}

#[derive(QueryableByName, Debug)]
struct PolledRow {
    #[diesel(sql_type = PUuid)]
    run_work_pool_id: Uuid,
    #[diesel(sql_type = PUuid)]
    run_work_queue_id: Uuid,
    #[diesel(sql_type = PUuid)]
    run_id: Uuid,
}

/// The join that takes the candidate runs of queue `wq` (with its free slots in `qs`) as rows
/// `c(id, next_scheduled_start_time)`, at most `cap` per queue in scheduled-time order: the one
/// place where the dialects differ. `run_key = queue_key` ties a run to its queue
/// (`fr.work_queue_id = wq.id`); `filters` are the other conditions on `fr`; `bounded` says
/// that `filters` hold `fr.next_scheduled_start_time <= …` (every worker poll does).
///
/// The work done follows the runs returned, not the runs stored, through the one index of
/// Prefect's schema that orders runs by scheduled time, `ix_flow_run__next_scheduled_start_time_asc`
/// (Prefect clears `next_scheduled_start_time` when a run leaves SCHEDULED, so that index holds
/// the scheduled runs): each queue walks it in time order and stops after `cap` matches.
///
/// - PostgreSQL: a `LATERAL` subquery per queue, `LIMIT`ed by the queue's free slots, locking
///   its rows (`FOR UPDATE SKIP LOCKED`); the planner picks the time index from its statistics.
/// - SQLite has neither `LATERAL` nor row locks nor statistics in a Prefect database. With a
///   time bound, a correlated `IN (… LIMIT cap)` subquery per queue walks the time index
///   (`INDEXED BY`, as SQLite would otherwise pick the `state_type` index and read every
///   scheduled run). Without one, runs without a scheduled time must come last, which the
///   index (NULLs first) cannot give in order: one pass over the scheduled runs (through the
///   `state_type` index) ranks them per queue with a window, as Prefect's template does.
pub(crate) fn candidate_join(
    d: SqlDialect,
    run_key: &str,
    queue_key: &str,
    filters: &str,
    cap: &str,
    bounded: bool,
    lock: bool,
) -> String {
    let order = "ORDER BY fr.next_scheduled_start_time ASC NULLS LAST, fr.id ASC";
    match d.0 {
        Dialect::Postgres => {
            let limit = d.least(cap, &format!("COALESCE(qs.available_slots, {cap})"));
            format!(
                "CROSS JOIN LATERAL (SELECT fr.id, fr.next_scheduled_start_time FROM flow_run fr \
                 WHERE fr.{run_key} = {queue_key} AND {filters} {order} LIMIT {limit}{lock}) c",
                lock = if lock { d.skip_locked("fr") } else { String::new() },
            )
        }
        Dialect::Sqlite if bounded => format!(
            "JOIN flow_run c ON c.id IN (SELECT fr.id FROM flow_run fr{time_index} \
               WHERE fr.{run_key} = {queue_key} AND {filters} {order} LIMIT {cap})",
            time_index = d.indexed_by(TIME_INDEX),
        ),
        Dialect::Sqlite => format!(
            "JOIN (SELECT fr.id, fr.next_scheduled_start_time, fr.{run_key} AS run_key, \
                   ROW_NUMBER() OVER (PARTITION BY fr.{run_key} {order}) AS run_rank \
                   FROM flow_run fr{state_index} WHERE {filters}) c \
             ON c.run_key = {queue_key} AND c.run_rank <= {cap}",
            state_index = d.indexed_by(STATE_TYPE_INDEX),
        ),
    }
}

/// Prefect's index on `flow_run.next_scheduled_start_time`.
pub(crate) const TIME_INDEX: &str = "ix_flow_run__next_scheduled_start_time_asc";
/// Prefect's index on `flow_run.state_type` (what counting RUNNING/PENDING runs reads).
pub(crate) const STATE_TYPE_INDEX: &str = "ix_flow_run__state_type";

/// The SQL text and binds of a poll's ranking, leaving out the runs of `exclude`.
pub(crate) fn poll_sql(dialect: Dialect, args: &WorkPoolPoll, exclude: &[Uuid]) -> (String, Vec<Bind>) {
    let d = SqlDialect(dialect);
    let mut b = Binder::new(d);
    let clamp = |v: Option<i64>| v.unwrap_or(DEFAULT_POLL_LIMIT).max(0);
    let (limit, worker_limit, queue_limit) = (
        clamp(args.limit),
        clamp(args.worker_limit),
        clamp(args.queue_limit),
    );
    // No queue can contribute more runs than any of the three limits allows.
    let cap = b.bind(Bind::Int(queue_limit.min(worker_limit).min(limit)));
    let limit = b.bind(Bind::Int(limit));
    let worker_limit = b.bind(Bind::Int(worker_limit));

    let retry_type = d.json_text_field("fr.empirical_policy", "retry_type");
    let mut filters = format!(
        "fr.state_type = 'SCHEDULED' \
         AND ({retry_type} IS NULL OR {retry_type} <> 'in_process')"
    );
    if let Some(after) = args.scheduled_after {
        filters += &format!(
            " AND fr.next_scheduled_start_time >= {}",
            b.bind(Bind::Time(after))
        );
    }
    if let Some(before) = args.scheduled_before {
        filters += &format!(
            " AND fr.next_scheduled_start_time <= {}",
            b.bind(Bind::Time(before))
        );
    }
    if !exclude.is_empty() {
        filters += &format!(" AND fr.id NOT IN ({})", b.bind_list(exclude.iter().copied().map(Bind::Uuid)));
    }
    let mut pool_filter = String::new();
    if let Some(ids) = args.work_pool_ids.as_ref().filter(|ids| !ids.is_empty()) {
        pool_filter = format!(
            " AND wp.id IN ({})",
            b.bind_list(ids.iter().copied().map(Bind::Uuid))
        );
    }
    let mut queue_filter = String::new();
    if let Some(ids) = args.work_queue_ids.as_ref().filter(|ids| !ids.is_empty()) {
        queue_filter = format!(
            " AND wq.id IN ({})",
            b.bind_list(ids.iter().copied().map(Bind::Uuid))
        );
    }
    let priority = if args.respect_queue_priorities {
        "work_queue_priority ASC, "
    } else {
        ""
    };
    let active = "fr.state_type IN ('RUNNING', 'PENDING')";
    let queue_free = d.greatest("0", "wq.concurrency_limit - COALESCE(a.n, 0)");
    let pool_free = d.greatest(
        "0",
        "wp.concurrency_limit - CAST(COALESCE(SUM(a.n), 0) AS BIGINT)",
    );
    let pool_take = d.least(
        &worker_limit,
        &format!("COALESCE(ps.available_slots, {worker_limit})"),
    );
    let candidates = candidate_join(
        d,
        "work_queue_id",
        "wq.id",
        &filters,
        &cap,
        args.scheduled_before.is_some(),
        false,
    );
    let state_index = d.indexed_by(STATE_TYPE_INDEX);

    let sql = format!(
        "WITH active_runs AS (\
           SELECT fr.work_queue_id AS work_queue_id, COUNT(fr.id) AS n FROM flow_run fr{state_index} \
           WHERE {active} GROUP BY fr.work_queue_id), \
         queue_slots AS (\
           SELECT wq.id AS work_queue_id, {queue_free} AS available_slots \
           FROM work_queue wq JOIN work_pool wp ON wp.id = wq.work_pool_id \
           LEFT JOIN active_runs a ON a.work_queue_id = wq.id \
           WHERE wq.concurrency_limit IS NOT NULL AND NOT wq.is_paused AND NOT wp.is_paused{pool_filter}{queue_filter}), \
         pool_slots AS (\
           SELECT wp.id AS work_pool_id, {pool_free} AS available_slots \
           FROM work_pool wp JOIN work_queue wq ON wq.work_pool_id = wp.id \
           LEFT JOIN active_runs a ON a.work_queue_id = wq.id \
           WHERE wp.concurrency_limit IS NOT NULL AND NOT wp.is_paused{pool_filter} \
           GROUP BY wp.id, wp.concurrency_limit), \
         candidates AS (\
           SELECT wp.id AS run_work_pool_id, wq.id AS run_work_queue_id, wq.priority AS work_queue_priority, \
                  c.id AS run_id, c.next_scheduled_start_time AS run_time, qs.available_slots AS queue_slots, \
                  ROW_NUMBER() OVER (PARTITION BY wq.id ORDER BY c.next_scheduled_start_time ASC NULLS LAST, c.id ASC) AS queue_rank \
           FROM work_pool wp JOIN work_queue wq ON wq.work_pool_id = wp.id \
           LEFT JOIN queue_slots qs ON qs.work_queue_id = wq.id \
           {candidates} \
           WHERE NOT wp.is_paused AND NOT wq.is_paused{pool_filter}{queue_filter}), \
         ranked AS (\
           SELECT k.*, ROW_NUMBER() OVER (PARTITION BY k.run_work_pool_id \
                  ORDER BY {priority}k.run_time ASC NULLS LAST, k.run_id ASC) AS pool_rank \
           FROM candidates k WHERE k.queue_rank <= COALESCE(k.queue_slots, {cap})) \
         SELECT r.run_work_pool_id, r.run_work_queue_id, r.run_id \
         FROM ranked r LEFT JOIN pool_slots ps ON ps.work_pool_id = r.run_work_pool_id \
         WHERE r.pool_rank <= {pool_take} \
         ORDER BY {priority}r.run_time ASC NULLS LAST, r.run_id ASC \
         LIMIT {limit}"
    );
    (sql, b.binds)
}

/// Rounds of ranking and locking a PostgreSQL poll makes at most when concurrent pollers hold
/// runs it chose (each round leaves out the runs found held and tops up from the next ones, so
/// every round but the last learns of at least one held run; with `k` pollers taking `n` runs
/// each, about `k` rounds).
pub const MAX_LOCK_ROUNDS: usize = 64;

#[derive(QueryableByName, Debug)]
struct LockedRow {
    #[diesel(sql_type = PUuid)]
    id: Uuid,
}

/// Locks the runs of `ids` that are still SCHEDULED and not held by another transaction
/// (PostgreSQL); returns those locked.
async fn lock_runs(conn: &mut Conn<'_>, ids: &[Uuid]) -> QueryResult<std::collections::HashSet<Uuid>> {
    let mut b = Binder::new(SqlDialect(conn.dialect()));
    let list = b.bind_list(ids.iter().copied().map(Bind::Uuid));
    let sql = format!(
        "SELECT fr.id AS id FROM flow_run fr WHERE fr.id IN ({list}) AND fr.state_type = 'SCHEDULED'{}",
        b.dialect.skip_locked("fr")
    );
    let rows: Vec<LockedRow> = load_raw(conn, sql, b.binds).await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// The ranked answer of a poll: on PostgreSQL only runs this transaction has locked.
async fn ranked_rows(conn: &mut Conn<'_>, args: &WorkPoolPoll) -> QueryResult<Vec<PolledRow>> {
    if conn.dialect() != Dialect::Postgres {
        let (sql, binds) = poll_sql(conn.dialect(), args, &[]);
        return load_raw(conn, sql, binds).await;
    }
    let mut excluded: Vec<Uuid> = Vec::new();
    let mut locked: std::collections::HashSet<Uuid> = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for _ in 0..MAX_LOCK_ROUNDS {
        let (sql, binds) = poll_sql(Dialect::Postgres, args, &excluded);
        rows = load_raw::<PolledRow>(conn, sql, binds).await?;
        let new: Vec<Uuid> = rows.iter().map(|r| r.run_id).filter(|id| !locked.contains(id)).collect();
        if new.is_empty() {
            break;
        }
        let got = lock_runs(conn, &new).await?;
        let held: Vec<Uuid> = new.iter().copied().filter(|id| !got.contains(id)).collect();
        locked.extend(got);
        if held.is_empty() {
            break;
        }
        // Held by a concurrent poller (or no longer scheduled): rank again without them.
        excluded.extend(held);
    }
    rows.retain(|r| locked.contains(&r.run_id));
    Ok(rows)
}

pub(crate) async fn get_scheduled_flow_runs_from_work_pool(
    conn: &mut Conn<'_>,
    args: &WorkPoolPoll,
) -> QueryResult<Vec<WorkerFlowRun>> {
    let rows = ranked_rows(conn, args).await?;
    let mut runs =
        crate::load::flow_runs_by_id(conn, rows.iter().map(|r| r.run_id).collect()).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        // A run deleted between the statements (possible only on PostgreSQL outside a
        // transaction) is left out.
        if let Some(flow_run) = runs.remove(&row.run_id) {
            out.push(WorkerFlowRun {
                work_pool_id: row.run_work_pool_id,
                work_queue_id: row.run_work_queue_id,
                flow_run,
            });
        }
    }
    Ok(out)
}

/// The SQL text of a poll (binds as numbered placeholders), for plan inspection (`EXPLAIN`).
#[doc(hidden)]
pub fn poll_sql_text(dialect: Dialect, args: &WorkPoolPoll) -> String {
    poll_sql(dialect, args, &[]).0
}

/// The ranking statement a poll sends first, with its values (for [`crate::read::explain`]).
pub fn poll_statement(dialect: Dialect, args: &WorkPoolPoll) -> crate::read::Statement {
    let (sql, binds) = poll_sql(dialect, args, &[]);
    crate::read::Statement { sql, binds }
}
