//! The scale dataset (`cargo xtask bench --scale N`): `20,000 × N` flow runs with a task run for
//! every other run and two logs per run, spread as a busy Prefect server's are, generated in SQL
//! (untimed) so that the same rows exist on both dialects; and the read requests of W7–W11.
//!
//! The shape of the data does not change with the scale, only its density: every scale spans
//! the same 30 days ending at the seed's `now`, so at scale 100 the last 24 hours hold 100 times
//! the runs of scale 1. A read whose answer has a fixed size (a page, the logs of one run) must
//! cost the same at every scale; a count may grow with what it counts.
//!
//! - 50 flows, 200 deployments: deployment 0 holds half of all runs (a busy deployment, deep
//!   pages), deployments 1–199 share 45%, 5% of the runs have no deployment;
//! - one work pool of 10 queues (priorities 1–10; 3, 6 and 9 with concurrency limits); a run's
//!   queue is its deployment's;
//! - states by `i % 100`: 2% SCHEDULED (a fifth of them due, the rest up to 13 hours ahead),
//!   1% PENDING, 2% RUNNING, 80% COMPLETED, 9% FAILED, 4% CANCELLED (half before starting), 2%
//!   CRASHED; runs start up to two minutes late and run 30 s to 10 min;
//! - tags `["prod"]`, `["dev", "etl"]` or none; one run (W11's) has 1,000 extra logs.
//!
//! Ids are generated from the row number (`scale_uuid`), so both dialects hold the same ids and
//! the requests name the same rows.

use crate::{Fixture, plan};
use anyhow::{Context as _, Result};
use chrono::{DateTime, TimeDelta, Utc};
use prefect_db_config::Dialect;
use serde_json::{Value, json};
use uuid::Uuid;

/// Flow runs per unit of scale.
pub const RUNS_PER_SCALE: usize = 20_000;
/// Flows.
pub const FLOWS: i64 = 50;
/// Deployments.
pub const DEPLOYMENTS: i64 = 200;
/// Work queues of the pool.
pub const QUEUES: i64 = 10;
/// The span of the runs' times, ending at the seed's `now`.
pub const SPAN: TimeDelta = TimeDelta::days(30);
/// Extra logs of W11's run.
pub const TARGET_LOGS: i64 = 1_000;
/// Terminal state types (W7, W8).
pub const TERMINAL: [&str; 4] = ["COMPLETED", "FAILED", "CANCELLED", "CRASHED"];

/// What kind of row an id names (part of the id, so ids of different tables never collide).
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)]
pub enum Kind {
    FlowRun = 1,
    TaskRun = 2,
    Log = 3,
    Flow = 4,
    Deployment = 5,
    Queue = 6,
    TargetLog = 7,
    Pool = 8,
}

/// The id of row `i` of `kind`: a scrambled prefix (ids do not arrive in index order), the kind,
/// and `i` itself (unique).
pub fn scale_uuid(kind: Kind, i: i64) -> Uuid {
    let k = kind as i64;
    let prefix = (i.wrapping_mul(2_654_435_761).wrapping_add(k * 7_777)).rem_euclid(1 << 32);
    let text = format!("{prefix:08x}-0000-4000-8{k:03x}-{i:012x}");
    Uuid::parse_str(&text).unwrap_or_default()
}

/// The run whose logs W11 reads.
pub fn target_run(runs: i64) -> i64 {
    runs - 150
}

/// The requests of the scale workloads (the same bodies for the layer and the floor).
pub mod requests {
    use super::*;

    fn iso(t: DateTime<Utc>) -> String {
        t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
    }

    /// W7/W8: runs of the last 24 hours in terminal states.
    pub fn last_day_terminal(now: DateTime<Utc>) -> Value {
        json!({"start_time": {"after_": iso(now - TimeDelta::days(1))}, "state": {"type": {"any_": TERMINAL}}})
    }

    /// W7: the dashboard's list, newest first.
    pub fn w7(now: DateTime<Utc>) -> Value {
        json!({"flow_runs": last_day_terminal(now), "sort": "START_TIME_DESC", "limit": 200})
    }

    /// W8: the count of W7's filter.
    pub fn w8(now: DateTime<Utc>) -> Value {
        json!({"flow_runs": last_day_terminal(now)})
    }

    /// W9: the history of one deployment over the last 24 hours, in 1-hour buckets.
    pub fn w9(now: DateTime<Utc>, deployment: Uuid) -> Value {
        json!({
            "history_start": iso(now - TimeDelta::days(1)),
            "history_end": iso(now),
            "history_interval_seconds": 3600,
            "deployments": {"id": {"any_": [deployment]}},
        })
    }

    /// W10: a page deep in the busy deployment's runs (`offset`; 0 for the keyset form).
    pub fn w10(deployment: Uuid, offset: i64) -> Value {
        json!({
            "flow_runs": {"deployment_id": {"any_": [deployment]}},
            "sort": "EXPECTED_START_TIME_DESC",
            "offset": offset,
            "limit": 200,
        })
    }

    /// W11: the logs of one run, oldest first.
    pub fn w11(run: Uuid) -> Value {
        json!({"logs": {"flow_run_id": {"any_": [run]}}, "sort": "TIMESTAMP_ASC", "limit": 200})
    }
}

/// The SQL spelling of the generators, per dialect.
struct Gen(Dialect);

impl Gen {
    /// `scale_uuid(kind, i)` as an SQL expression of the integer expression `i`.
    fn uuid(&self, kind: Kind, i: &str) -> String {
        let k = kind as i64;
        let prefix = format!("((({i}) * 2654435761 + {}) % 4294967296)", k * 7_777);
        match self.0 {
            Dialect::Postgres => format!(
                "CAST(lpad(to_hex({prefix}), 8, '0') || '-0000-4000-8{k:03x}-' || lpad(to_hex(CAST({i} AS bigint)), 12, '0') AS uuid)"
            ),
            Dialect::Sqlite => format!("printf('%08x-0000-4000-8{k:03x}-%012x', {prefix}, {i})"),
        }
    }

    /// A timestamp from microseconds since the epoch (Prefect's SQLite text on SQLite).
    fn ts(&self, us: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("(TIMESTAMPTZ '1970-01-01 00:00:00+00' + ({us}) * INTERVAL '1 microsecond')"),
            Dialect::Sqlite => {
                format!("(strftime('%Y-%m-%d %H:%M:%S', ({us}) / 1000000, 'unixepoch') || printf('.%06d', ({us}) % 1000000))")
            }
        }
    }

    /// An interval of `us` microseconds (SQLite: the epoch plus the duration, as Prefect stores it).
    fn interval(&self, us: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("(({us}) * INTERVAL '1 microsecond')"),
            Dialect::Sqlite => self.ts(us),
        }
    }

    fn json(&self, text: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("CAST({text} AS jsonb)"),
            Dialect::Sqlite => text.to_owned(),
        }
    }

    fn state(&self, text: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("CAST({text} AS state_type)"),
            Dialect::Sqlite => text.to_owned(),
        }
    }

    fn boolean(&self, cond: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("({cond})"),
            Dialect::Sqlite => format!("(CASE WHEN {cond} THEN 1 ELSE 0 END)"),
        }
    }

    fn text(&self, int: &str) -> String {
        format!("CAST({int} AS TEXT)")
    }

    /// `{head} {select}` with `g(i)`, the rows numbered 0 to n-1, in scope of `select`.
    fn insert_series(&self, n: i64, head: &str, select: &str) -> String {
        match self.0 {
            // `bigint` rows: the arithmetic on them (times in microseconds) stays in 64 bits.
            Dialect::Postgres => {
                format!("WITH g(i) AS (SELECT generate_series(CAST(0 AS bigint), {})) {head} {select}", n - 1)
            }
            Dialect::Sqlite => format!(
                "WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i < {}) {head} {select}",
                n - 1
            ),
        }
    }
}

/// The statements that fill a migrated database with the scale dataset of `runs` flow runs,
/// ending at `now_us` (microseconds since the epoch).
pub fn seed_sql(dialect: Dialect, runs: i64, now_us: i64) -> Vec<String> {
    let g = Gen(dialect);
    let span = SPAN.num_microseconds().unwrap_or(0);
    let step = span / runs.max(1);
    let start = now_us - span;
    let mut out = Vec::new();

    let pool = g.uuid(Kind::Pool, "0");
    out.push(format!("INSERT INTO work_pool (id, name, type) VALUES ({pool}, 'scale-pool', 'process')"));
    out.push(g.insert_series(
        QUEUES,
        "INSERT INTO work_queue (id, name, work_pool_id, priority, concurrency_limit)",
        &format!(
            "SELECT {}, 'queue-' || {}, {pool}, i + 1, CASE i + 1 WHEN 3 THEN 5 WHEN 6 THEN 10 WHEN 9 THEN 20 END FROM g",
            g.uuid(Kind::Queue, "i"),
            g.text("i + 1")
        ),
    ));
    out.push(format!("UPDATE work_pool SET default_queue_id = {} WHERE id = {pool}", g.uuid(Kind::Queue, "0")));
    out.push(g.insert_series(
        FLOWS,
        "INSERT INTO flow (id, name)",
        &format!("SELECT {}, 'scale-flow-' || {} FROM g", g.uuid(Kind::Flow, "i"), g.text("i")),
    ));
    out.push(g.insert_series(
        DEPLOYMENTS,
        "INSERT INTO deployment (id, name, flow_id, work_queue_id, work_queue_name)",
        &format!(
            "SELECT {}, 'scale-deployment-' || {}, {}, {}, 'queue-' || {} FROM g",
            g.uuid(Kind::Deployment, "i"),
            g.text("i"),
            g.uuid(Kind::Flow, &format!("i % {FLOWS}")),
            g.uuid(Kind::Queue, &format!("i % {QUEUES}")),
            g.text(&format!("i % {QUEUES} + 1"))
        ),
    ));

    // Flow runs: the derived values per row first, then the columns.
    let derived = format!(
        "SELECT i, k, dep, q, exp_us, start_us, \
         CASE WHEN k < 5 THEN NULL WHEN start_us IS NULL THEN exp_us ELSE start_us + (30 + i % 600) * 1000000 END AS end_us \
         FROM (SELECT i, k, dep, (CASE WHEN dep >= 0 THEN dep ELSE i END) % {QUEUES} AS q, exp_us, \
               CASE WHEN k >= 3 AND k NOT IN (94, 95) THEN exp_us + (i % 120) * 1000000 END AS start_us \
               FROM (SELECT i, i % 100 AS k, \
                     CASE WHEN i % 20 = 19 THEN -1 WHEN i % 20 < 10 THEN 0 ELSE 1 + i % 199 END AS dep, \
                     CASE WHEN i % 100 < 2 THEN {now_us} + ((i % 1000) - 200) * {minute} ELSE {start} + i * {step} END AS exp_us \
                     FROM g) AS a) AS b",
        minute = 60_000_000_i64
    );
    let state_type = "CASE WHEN k < 2 THEN 'SCHEDULED' WHEN k = 2 THEN 'PENDING' WHEN k < 5 THEN 'RUNNING' \
         WHEN k < 85 THEN 'COMPLETED' WHEN k < 94 THEN 'FAILED' WHEN k < 98 THEN 'CANCELLED' ELSE 'CRASHED' END";
    let state_name = "CASE WHEN k < 2 THEN 'Scheduled' WHEN k = 2 THEN 'Pending' WHEN k < 5 THEN 'Running' \
         WHEN k < 85 THEN 'Completed' WHEN k < 94 THEN 'Failed' WHEN k < 98 THEN 'Cancelled' ELSE 'Crashed' END";
    let runs_select = format!(
        "SELECT {id}, 'run-' || {name}, {flow}, CASE WHEN dep >= 0 THEN {dep} END, {queue}, 'queue-' || {qname}, \
         {st}, {sn}, {sts}, CASE WHEN start_us IS NULL THEN 0 ELSE 1 END, {exp}, CASE WHEN k < 2 THEN {exp} END, \
         CASE WHEN start_us IS NOT NULL THEN {start_ts} END, CASE WHEN end_us IS NOT NULL THEN {end_ts} END, \
         {total}, {tags}, {auto}, {created}, {sts}",
        id = g.uuid(Kind::FlowRun, "i"),
        name = g.text("i"),
        flow = g.uuid(Kind::Flow, &format!("(CASE WHEN dep >= 0 THEN dep ELSE i END) % {FLOWS}")),
        dep = g.uuid(Kind::Deployment, "dep"),
        queue = g.uuid(Kind::Queue, "q"),
        qname = g.text("q + 1"),
        st = g.state(state_type),
        sn = state_name,
        sts = g.ts("COALESCE(end_us, start_us, exp_us)"),
        exp = g.ts("exp_us"),
        start_ts = g.ts("start_us"),
        end_ts = g.ts("end_us"),
        total = g.interval("CASE WHEN start_us IS NOT NULL AND end_us IS NOT NULL THEN end_us - start_us ELSE 0 END"),
        tags = g.json("CASE i % 3 WHEN 0 THEN '[\"prod\"]' WHEN 1 THEN '[\"dev\", \"etl\"]' ELSE '[]' END"),
        auto = g.boolean("dep >= 0 AND k < 2"),
        created = g.ts(&format!("CASE WHEN k < 2 THEN {now_us} - 86400000000 ELSE exp_us - 3600000000 END")),
    );
    out.push(g.insert_series(
        runs,
        "INSERT INTO flow_run (id, name, flow_id, deployment_id, work_queue_id, work_queue_name, state_type, state_name, \
         state_timestamp, run_count, expected_start_time, next_scheduled_start_time, start_time, end_time, total_run_time, \
         tags, auto_scheduled, created, updated)",
        &format!("{runs_select} FROM ({derived}) AS x"),
    ));

    // A completed task run for every other flow run.
    let task_exp = format!("({start} + 2 * i * {step})");
    out.push(g.insert_series(
        runs / 2,
        "INSERT INTO task_run (id, name, task_key, dynamic_key, flow_run_id, state_type, state_name, state_timestamp, \
         run_count, expected_start_time, start_time, end_time, total_run_time, created, updated)",
        &format!(
            "SELECT {}, 'task-' || {}, 'bench.task', {}, {}, {}, 'Completed', {end}, 1, {exp}, {exp}, {end}, {dur}, {exp}, {end} FROM g",
            g.uuid(Kind::TaskRun, "i"),
            g.text("i"),
            g.text("i"),
            g.uuid(Kind::FlowRun, "2 * i"),
            g.state("'COMPLETED'"),
            exp = g.ts(&task_exp),
            end = g.ts(&format!("{task_exp} + 5000000")),
            dur = g.interval("5000000"),
        ),
    ));

    // Two logs per flow run, then W11's run's extra logs.
    let log_ts = g.ts(&format!("({start} + (i / 2) * {step} + (i % 2) * 1000000)"));
    out.push(g.insert_series(
        2 * runs,
        "INSERT INTO log (id, name, level, flow_run_id, message, timestamp, created, updated)",
        &format!(
            "SELECT {}, 'prefect.flow_runs', 20, {}, 'Log ' || {}, {log_ts}, {log_ts}, {log_ts} FROM g",
            g.uuid(Kind::Log, "i"),
            g.uuid(Kind::FlowRun, "i / 2"),
            g.text("i"),
        ),
    ));
    let target = target_run(runs);
    let target_ts = g.ts(&format!("({start} + CAST({target} AS BIGINT) * {step} + 2000000 + i * 1000)"));
    out.push(g.insert_series(
        TARGET_LOGS,
        "INSERT INTO log (id, name, level, flow_run_id, message, timestamp, created, updated)",
        &format!(
            "SELECT {}, 'prefect.task_runs', 20, {}, 'Step ' || {}, {target_ts}, {target_ts}, {target_ts} FROM g",
            g.uuid(Kind::TargetLog, "i"),
            g.uuid(Kind::FlowRun, &target.to_string()),
            g.text("i"),
        ),
    ));
    out
}

/// Seeds the scale dataset of `fx.sizes.scale_runs` runs into `fx`'s migrated database and
/// records its ids; PostgreSQL is then vacuumed and analyzed (as autovacuum leaves a table after
/// a bulk load), SQLite left as Prefect leaves it.
pub async fn seed(fx: &mut Fixture) -> Result<()> {
    let dialect = fx.dialect()?;
    let runs = i64::try_from(fx.sizes.scale_runs)?;
    let now = plan::now();
    let now_us = now.timestamp_micros();
    let statements = seed_sql(dialect, runs, now_us);
    match dialect {
        Dialect::Postgres => {
            let client = crate::pg_connect(&fx.url).await?;
            for sql in &statements {
                client.batch_execute(sql).await.with_context(|| format!("seeding: {sql:.300}"))?;
            }
            client.batch_execute("VACUUM ANALYZE").await.context("VACUUM ANALYZE")?;
        }
        Dialect::Sqlite => {
            let path = fx.sqlite_path()?;
            tokio::task::spawn_blocking(move || -> Result<()> {
                use diesel::Connection as _;
                use diesel::connection::SimpleConnection as _;
                let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy())?;
                c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON; BEGIN")?;
                for sql in &statements {
                    c.batch_execute(sql).with_context(|| format!("seeding: {sql:.300}"))?;
                }
                c.batch_execute("COMMIT; PRAGMA wal_checkpoint(TRUNCATE)")?;
                Ok(())
            })
            .await??;
        }
    }
    fx.now_us = Some(now_us);
    fx.flow_id = Some(scale_uuid(Kind::Flow, 0));
    fx.work_pool_id = Some(scale_uuid(Kind::Pool, 0));
    fx.queue_ids = (0..QUEUES).map(|q| scale_uuid(Kind::Queue, q)).collect();
    fx.deployment_ids = (0..DEPLOYMENTS).map(|d| scale_uuid(Kind::Deployment, d)).collect();
    fx.deployment_id = Some(scale_uuid(Kind::Deployment, 0));
    fx.flow_run_id = Some(scale_uuid(Kind::FlowRun, target_run(runs)));
    Ok(())
}
