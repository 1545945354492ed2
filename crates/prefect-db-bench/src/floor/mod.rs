//! The floor: every workload's statements sent straight through the driver (tokio-postgres for
//! PostgreSQL, diesel's sync `SqliteConnection` with hand-written SQL for SQLite), prepared once
//! and reused, on one connection, no pool, no models. Values are written in Prefect's on-disk
//! formats (SQLite: `YYYY-MM-DD HH:MM:SS.ffffff` text timestamps, lowercase hyphenated UUID
//! text, JSON text; PostgreSQL: native types).

pub mod pg;
pub mod sqlite;

use crate::{Fixture, Measurement, Workload};
use anyhow::{Context as _, Result};
use prefect_query_components::read::{self, Endpoint, HistoryRead, Read};
use chrono::{DateTime, TimeDelta, Utc};
use prefect_db_config::Dialect;
use uuid::Uuid;

/// Runs `fx`'s workload on the floor; only the workload is timed.
pub async fn run(fx: &Fixture) -> Result<Measurement> {
    let scale = if SCALE_READS.contains(&fx.workload) { Some(scale_read(fx).await?) } else { None };
    match fx.dialect()? {
        Dialect::Postgres => pg::run(fx, scale).await,
        Dialect::Sqlite => {
            let fx = fx.clone();
            tokio::task::spawn_blocking(move || sqlite::run(&fx, scale)).await?
        }
    }
}

/// The scale reads whose SQL comes from the read API.
pub const SCALE_READS: [Workload; 6] = [Workload::W7, Workload::W8, Workload::W9, Workload::W10, Workload::W10K, Workload::W11];

/// What a scale read's statement answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Flow run ids in order; the runs are then read by id.
    FlowRunIds,
    /// Log ids in order; the logs are then read by id.
    LogIds,
    /// One count.
    Count,
    /// History rows (bucket, state type, state name, count, run time, lateness).
    History,
}

/// A scale read for the floor: the statement the layer's read API sends for the workload's
/// request (built by the read API itself, before the clock starts, so that both sides send the
/// same SQL with the same values) and what it answers.
#[derive(Debug, Clone)]
pub struct ScaleRead {
    /// The statement.
    pub statement: read::Statement,
    /// What it answers.
    pub answer: Answer,
}

/// The scale read of `fx`'s workload (see [`ScaleRead`]).
pub async fn scale_read(fx: &Fixture) -> Result<ScaleRead> {
    let dialect = fx.dialect()?;
    let body = crate::layer::scale_body_of(fx)?;
    let (statement, answer) = match fx.workload {
        Workload::W7 | Workload::W10 => {
            let request: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &body)?;
            (read::flow_runs_statement(dialect, &request), Answer::FlowRunIds)
        }
        Workload::W8 => {
            let request: Read<read::NoSort> = Read::parse(Endpoint::FlowRunsCount, &body)?;
            (read::count_flow_runs_statement(dialect, &request.filters), Answer::Count)
        }
        Workload::W9 => {
            let request = HistoryRead::parse(Endpoint::FlowRunsHistory, &body)?;
            (read::flow_run_history_statement(dialect, &request)?.context("the history request has no buckets")?, Answer::History)
        }
        Workload::W10K => {
            let db = prefect_db_interface::database_for(&fx.config()?)?;
            let cursor = crate::layer::w10_cursor(fx, &db).await?;
            let request: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &body)?;
            (read::flow_runs_page_statement(dialect, &request, Some(&cursor)), Answer::FlowRunIds)
        }
        Workload::W11 => {
            let request: Read<read::LogSort> = Read::parse(Endpoint::LogsFilter, &body)?;
            (read::logs_statement(dialect, &request), Answer::LogIds)
        }
        other => anyhow::bail!("{} is not a scale read", other.code()),
    };
    Ok(ScaleRead { statement, answer })
}

/// A log decoded by the floor.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct FloorLog {
    pub id: Uuid,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub name: String,
    pub level: i16,
    pub flow_run_id: Option<Uuid>,
    pub task_run_id: Option<Uuid>,
    pub message: String,
    pub timestamp: DateTime<Utc>,
}

/// A history row decoded by the floor.
pub type FloorHistoryRow = (i64, Option<String>, Option<String>, i64, i64, i64);

/// `rows` in the order of `ids` (rows read by id come back in the database's order).
pub fn in_id_order<R>(ids: &[Uuid], rows: Vec<R>, id: impl Fn(&R) -> Uuid) -> Vec<R> {
    let mut by_id: std::collections::HashMap<Uuid, R> = rows.into_iter().map(|r| (id(&r), r)).collect();
    ids.iter().filter_map(|i| by_id.remove(i)).collect()
}

/// A flow run decoded by the floor into typed values (what the layer's `FlowRun` holds).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct FloorRun {
    pub id: Uuid,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub name: String,
    pub state_type: Option<String>,
    pub run_count: i32,
    pub expected_start_time: Option<DateTime<Utc>>,
    pub next_scheduled_start_time: Option<DateTime<Utc>>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub total_run_time: TimeDelta,
    pub flow_version: Option<String>,
    pub parameters: serde_json::Value,
    pub idempotency_key: Option<String>,
    pub context: serde_json::Value,
    pub empirical_policy: serde_json::Value,
    pub tags: serde_json::Value,
    pub auto_scheduled: bool,
    pub flow_id: Uuid,
    pub deployment_id: Option<Uuid>,
    pub parent_task_run_id: Option<Uuid>,
    pub state_id: Option<Uuid>,
    pub state_name: Option<String>,
    pub infrastructure_document_id: Option<Uuid>,
    pub work_queue_name: Option<String>,
    pub state_timestamp: Option<DateTime<Utc>>,
    pub created_by: Option<serde_json::Value>,
    pub infrastructure_pid: Option<String>,
    pub work_queue_id: Option<Uuid>,
    pub job_variables: Option<serde_json::Value>,
    pub deployment_version: Option<String>,
    pub labels: Option<serde_json::Value>,
}

/// The columns of `flow_run`, in [`FloorRun`]'s order.
pub const FLOW_RUN_COLUMNS: &str = "id, created, updated, name, state_type, run_count, expected_start_time, \
    next_scheduled_start_time, start_time, end_time, total_run_time, flow_version, parameters, idempotency_key, \
    context, empirical_policy, tags, auto_scheduled, flow_id, deployment_id, parent_task_run_id, state_id, \
    state_name, infrastructure_document_id, work_queue_name, state_timestamp, created_by, infrastructure_pid, \
    work_queue_id, job_variables, deployment_version, labels";

/// W1: the columns the scheduler writes for a run.
pub const W1_RUN_COLUMNS: &[&str] = &[
    "id",
    "created",
    "updated",
    "name",
    "state_type",
    "expected_start_time",
    "next_scheduled_start_time",
    "total_run_time",
    "parameters",
    "idempotency_key",
    "empirical_policy",
    "tags",
    "auto_scheduled",
    "flow_id",
    "deployment_id",
    "state_name",
    "state_timestamp",
];

/// W1/W3: the columns written for a state.
pub const STATE_COLUMNS: &[&str] = &["id", "created", "updated", "type", "timestamp", "name", "state_details"];

/// W4: the columns of a log row.
pub const LOG_COLUMNS: &[&str] =
    &["id", "created", "updated", "name", "level", "flow_run_id", "task_run_id", "message", "timestamp"];

/// `INSERT INTO table (cols) VALUES (…), (…)` for `rows` rows, with placeholders from `ph`
/// (1-based) and an optional tail.
pub fn multi_insert(table: &str, cols: &[&str], rows: usize, ph: impl Fn(usize) -> String, tail: &str) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for c in 0..cols.len() {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&ph(n));
            n += 1;
        }
        sql.push(')');
    }
    sql.push_str(tail);
    sql
}

/// The layer's `set_state_id_on_inserted_flow_runs_statement` SQL, written out: `now` is
/// placeholder 1, then the runs, then the states.
pub fn set_state_id_sql(runs: usize, states: usize, ph: impl Fn(usize) -> String) -> String {
    let now = ph(1);
    let runs_list: Vec<String> = (2..2 + runs).map(&ph).collect();
    let states_list: Vec<String> = (2 + runs..2 + runs + states).map(&ph).collect();
    let states_list = states_list.join(", ");
    let pick = format!(
        "SELECT s.id FROM flow_run_state s WHERE s.flow_run_id = flow_run.id AND s.id IN ({states_list}) \
         ORDER BY s.timestamp DESC, s.id DESC LIMIT 1"
    );
    format!(
        "UPDATE flow_run SET state_id = ({pick}), updated = {now} WHERE flow_run.id IN ({}) AND EXISTS ({pick})",
        runs_list.join(", ")
    )
}

/// The poll arguments of W2 (the same as the layer's).
pub fn w2_args(limit: i64) -> prefect_query_components::WorkPoolPoll {
    prefect_query_components::WorkPoolPoll {
        limit: Some(limit),
        respect_queue_priorities: true,
        scheduled_before: Some(crate::plan::now()),
        ..Default::default()
    }
}

/// The plan of `fx`'s scale read as the database runs it: PostgreSQL `EXPLAIN (ANALYZE,
/// BUFFERS)` (the statement is run), SQLite `EXPLAIN QUERY PLAN`.
pub async fn explain(fx: &Fixture) -> Result<Vec<String>> {
    let read = scale_read(fx).await?;
    match fx.dialect()? {
        Dialect::Postgres => pg::explain(fx, &read).await,
        Dialect::Sqlite => {
            let fx = fx.clone();
            tokio::task::spawn_blocking(move || sqlite::explain(&fx, &read)).await?
        }
    }
}
