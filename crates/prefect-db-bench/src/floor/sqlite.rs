//! The SQLite floor: diesel's sync `SqliteConnection`, hand-written SQL with binds.
//!
//! diesel never caches `sql_query` statements (it marks them unsafe to cache), so the floor
//! sends its SQL through [`Raw`], a query fragment diesel *does* cache by SQL text: each
//! statement is prepared once per connection and reused, as a prepared-statement floor should.

use super::{Answer, FLOW_RUN_COLUMNS, FloorHistoryRow, FloorLog, FloorRun, LOG_COLUMNS, ScaleRead, in_id_order, STATE_COLUMNS, W1_RUN_COLUMNS, multi_insert, set_state_id_sql};
use crate::{Fixture, Measurement, Workload, plan, sqlite_interval, sqlite_time};
use anyhow::{Context as _, Result};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::connection::SimpleConnection;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{Connection, QueryResult, QueryableByName, RunQueryDsl, SqliteConnection};
use std::time::Instant;
use uuid::Uuid;

/// A bound value.
#[derive(Debug, Clone)]
pub enum V {
    /// Text (timestamps, UUIDs, JSON, enums are all text in Prefect's SQLite databases).
    T(String),
    /// An integer (booleans are 0/1).
    I(i64),
    /// NULL.
    N,
}

static NULL_TEXT: Option<String> = None;

/// Hand-written SQL with numbered placeholders (`?1`, `?2`, …, each may appear more than once),
/// prepared once per connection: diesel caches it by its SQL text.
pub struct Raw<'a> {
    sql: &'a str,
    binds: &'a [V],
}

/// `Raw { sql, binds }`.
pub fn raw<'a>(sql: &'a str, binds: &'a [V]) -> Raw<'a> {
    Raw { sql, binds }
}

impl QueryId for Raw<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Raw<'_> {
    type SqlType = Untyped;
}

impl<C> RunQueryDsl<C> for Raw<'_> {}

impl QueryFragment<Sqlite> for Raw<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Sqlite>) -> QueryResult<()> {
        // `?N` becomes `?` with the N-th value bound in its place.
        let bytes = self.sql.as_bytes();
        let (mut last, mut i) = (0, 0);
        while i < bytes.len() {
            if bytes[i] != b'?' {
                i += 1;
                continue;
            }
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let n: usize = self.sql[start + 1..i]
                .parse()
                .map_err(|_| diesel::result::Error::QueryBuilderError("unnumbered placeholder".into()))?;
            out.push_sql(&self.sql[last..start]);
            match self.binds.get(n.wrapping_sub(1)) {
                Some(V::T(s)) => out.push_bind_param::<Text, String>(s)?,
                Some(V::I(x)) => out.push_bind_param::<BigInt, i64>(x)?,
                Some(V::N) => out.push_bind_param::<Nullable<Text>, Option<String>>(&NULL_TEXT)?,
                None => return Err(diesel::result::Error::QueryBuilderError(format!("no value for ?{n}").into())),
            }
            last = i;
        }
        out.push_sql(&self.sql[last..]);
        Ok(())
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

/// A flow as stored (text, as SQLite gives it).
#[derive(QueryableByName)]
#[allow(dead_code)]
struct FlowRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    created: String,
    #[diesel(sql_type = Text)]
    updated: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    tags: String,
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    labels: Option<String>,
}

#[derive(QueryableByName)]
struct PolledRow {
    #[diesel(sql_type = Text)]
    run_work_pool_id: String,
    #[diesel(sql_type = Text)]
    run_work_queue_id: String,
    #[diesel(sql_type = Text)]
    run_id: String,
}

#[derive(QueryableByName)]
struct RunRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    created: String,
    #[diesel(sql_type = Text)]
    updated: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Nullable<Text>)]
    state_type: Option<String>,
    #[diesel(sql_type = Integer)]
    run_count: i32,
    #[diesel(sql_type = Nullable<Text>)]
    expected_start_time: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    next_scheduled_start_time: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    start_time: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    end_time: Option<String>,
    #[diesel(sql_type = Text)]
    total_run_time: String,
    #[diesel(sql_type = Nullable<Text>)]
    flow_version: Option<String>,
    #[diesel(sql_type = Text)]
    parameters: String,
    #[diesel(sql_type = Nullable<Text>)]
    idempotency_key: Option<String>,
    #[diesel(sql_type = Text)]
    context: String,
    #[diesel(sql_type = Text)]
    empirical_policy: String,
    #[diesel(sql_type = Text)]
    tags: String,
    #[diesel(sql_type = Bool)]
    auto_scheduled: bool,
    #[diesel(sql_type = Text)]
    flow_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    deployment_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    parent_task_run_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    state_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    state_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    infrastructure_document_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    work_queue_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    state_timestamp: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    created_by: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    infrastructure_pid: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    work_queue_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    job_variables: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    deployment_version: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    labels: Option<String>,
}

fn time(s: &str) -> Result<DateTime<Utc>> {
    Ok(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").with_context(|| format!("timestamp {s:?}"))?.and_utc())
}

fn opt_time(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.as_deref().map(time).transpose()
}

fn uuid(s: &str) -> Result<Uuid> {
    Ok(Uuid::parse_str(s)?)
}

fn opt_uuid(s: Option<String>) -> Result<Option<Uuid>> {
    s.as_deref().map(uuid).transpose()
}

fn json(s: &str) -> Result<serde_json::Value> {
    Ok(serde_json::from_str(s)?)
}

fn opt_json(s: Option<String>) -> Result<Option<serde_json::Value>> {
    s.as_deref().map(json).transpose()
}

impl RunRow {
    fn decode(self) -> Result<FloorRun> {
        Ok(FloorRun {
            id: uuid(&self.id)?,
            created: time(&self.created)?,
            updated: time(&self.updated)?,
            name: self.name,
            state_type: self.state_type,
            run_count: self.run_count,
            expected_start_time: opt_time(self.expected_start_time)?,
            next_scheduled_start_time: opt_time(self.next_scheduled_start_time)?,
            start_time: opt_time(self.start_time)?,
            end_time: opt_time(self.end_time)?,
            total_run_time: if self.total_run_time == "0" {
                TimeDelta::zero()
            } else {
                time(&self.total_run_time)? - DateTime::<Utc>::UNIX_EPOCH
            },
            flow_version: self.flow_version,
            parameters: json(&self.parameters)?,
            idempotency_key: self.idempotency_key,
            context: json(&self.context)?,
            empirical_policy: json(&self.empirical_policy)?,
            tags: json(&self.tags)?,
            auto_scheduled: self.auto_scheduled,
            flow_id: uuid(&self.flow_id)?,
            deployment_id: opt_uuid(self.deployment_id)?,
            parent_task_run_id: opt_uuid(self.parent_task_run_id)?,
            state_id: opt_uuid(self.state_id)?,
            state_name: self.state_name,
            infrastructure_document_id: opt_uuid(self.infrastructure_document_id)?,
            work_queue_name: self.work_queue_name,
            state_timestamp: opt_time(self.state_timestamp)?,
            created_by: opt_json(self.created_by)?,
            infrastructure_pid: self.infrastructure_pid,
            work_queue_id: opt_uuid(self.work_queue_id)?,
            job_variables: opt_json(self.job_variables)?,
            deployment_version: self.deployment_version,
            labels: opt_json(self.labels)?,
        })
    }
}

fn q(n: usize) -> String {
    format!("?{n}")
}

fn t(v: &DateTime<Utc>) -> V {
    V::T(sqlite_time(v))
}

fn u(v: Uuid) -> V {
    V::T(v.hyphenated().to_string())
}

/// Opens one connection with the layer's pragmas (WAL, `synchronous`, `cache_size`, …).
pub fn connect(fx: &Fixture) -> Result<SqliteConnection> {
    let config = fx.config()?;
    let mut conn = SqliteConnection::establish(&fx.sqlite_path()?.to_string_lossy())?;
    for pragma in prefect_db_config::sqlite::pragma_statements(&config) {
        conn.batch_execute(&pragma)?;
    }
    Ok(conn)
}

fn tx<R>(c: &mut SqliteConnection, begin: &str, body: impl FnOnce(&mut SqliteConnection) -> Result<R>) -> Result<R> {
    c.batch_execute(begin)?;
    match body(c) {
        Ok(r) => {
            c.batch_execute("COMMIT")?;
            Ok(r)
        }
        Err(e) => {
            let _ = c.batch_execute("ROLLBACK");
            Err(e)
        }
    }
}

/// Runs `fx`'s workload (blocking); only the workload is timed.
pub fn run(fx: &Fixture, scale: Option<ScaleRead>) -> Result<Measurement> {
    let c = &mut connect(fx)?;
    let s = fx.sizes;
    if let Some(read) = scale {
        return scale_reads(c, fx, read);
    }
    let started = Instant::now();
    match fx.workload {
        Workload::W1 => {
            let flow_id = fx.flow()?;
            let deployment = fx.deployment_id.context("no deployment")?;
            let mut state_cols = STATE_COLUMNS.to_vec();
            state_cols.push("flow_run_id");
            let mut i = 0;
            while i < s.w1_runs {
                let end = (i + s.w1_batch).min(s.w1_runs);
                let now = plan::now();
                // One multi-row statement per table, as the layer sends.
                let run_sql = multi_insert(
                    "flow_run",
                    W1_RUN_COLUMNS,
                    end - i,
                    q,
                    " ON CONFLICT (flow_id, idempotency_key) DO NOTHING RETURNING id",
                );
                tx(c, "BEGIN IMMEDIATE", |c| {
                    let mut binds = Vec::with_capacity((end - i) * W1_RUN_COLUMNS.len());
                    for k in i..end {
                        let at = t(&plan::w1_time(k));
                        binds.extend([
                            u(Uuid::new_v4()),
                            t(&now),
                            t(&now),
                            V::T(format!("bench-run-{k}")),
                            V::T("SCHEDULED".into()),
                            at.clone(),
                            at,
                            V::T(sqlite_interval(TimeDelta::zero())),
                            V::T("{}".into()),
                            V::T(plan::w1_key(deployment, k)),
                            V::T("{}".into()),
                            V::T("[\"auto-scheduled\"]".into()),
                            V::I(1),
                            u(flow_id),
                            u(deployment),
                            V::T("Scheduled".into()),
                            t(&now),
                        ]);
                    }
                    let got: Vec<IdRow> = raw(&run_sql, &binds).load(c)?;
                    let inserted = got.iter().map(|row| uuid(&row.id)).collect::<Result<Vec<_>>>()?;
                    if inserted.is_empty() {
                        return Ok(());
                    }
                    let mut state_ids = Vec::with_capacity(inserted.len());
                    let mut binds = Vec::with_capacity(inserted.len() * state_cols.len());
                    for &run in &inserted {
                        let id = Uuid::new_v4();
                        binds.extend([
                            u(id),
                            t(&now),
                            t(&now),
                            V::T("SCHEDULED".into()),
                            t(&now),
                            V::T("Scheduled".into()),
                            V::T("{}".into()),
                            u(run),
                        ]);
                        state_ids.push(id);
                    }
                    raw(&multi_insert("flow_run_state", &state_cols, inserted.len(), q, ""), &binds).execute(c)?;
                    let sql = set_state_id_sql(inserted.len(), state_ids.len(), q);
                    let mut binds = vec![t(&plan::now())];
                    binds.extend(inserted.iter().map(|&r| u(r)));
                    binds.extend(state_ids.iter().map(|&r| u(r)));
                    raw(&sql, &binds).execute(c)?;
                    Ok(())
                })?;
                i = end;
            }
        }
        Workload::W2 => {
            let args = super::w2_args(s.w2_limit);
            let poll_sql = prefect_query_components::worker_poll::poll_sql_text(prefect_db_config::Dialect::Sqlite, &args);
            let cap = s.w2_limit.min(prefect_query_components::DEFAULT_POLL_LIMIT);
            for _ in 0..s.w2_polls {
                let binds = [V::I(cap), V::I(s.w2_limit), V::I(prefect_query_components::DEFAULT_POLL_LIMIT), t(&plan::now())];
                let runs = tx(c, "BEGIN DEFERRED", |c| {
                    let polled: Vec<PolledRow> = raw(&poll_sql, &binds).load(c)?;
                    if polled.is_empty() {
                        return Ok(Vec::new());
                    }
                    let list: Vec<String> = (1..=polled.len()).map(q).collect();
                    let sql = format!("SELECT {FLOW_RUN_COLUMNS} FROM flow_run WHERE flow_run.id IN ({})", list.join(", "));
                    let ids: Vec<V> = polled.iter().map(|p| V::T(p.run_id.clone())).collect();
                    let rows: Vec<RunRow> = raw(&sql, &ids).load(c)?;
                    let mut by_id = std::collections::HashMap::with_capacity(rows.len());
                    for row in rows {
                        let run = row.decode()?;
                        by_id.insert(run.id, run);
                    }
                    let mut out = Vec::with_capacity(polled.len());
                    for p in polled {
                        if let Some(run) = by_id.remove(&uuid(&p.run_id)?) {
                            out.push((uuid(&p.run_work_pool_id)?, uuid(&p.run_work_queue_id)?, run));
                        }
                    }
                    Ok(out)
                })?;
                std::hint::black_box(runs);
            }
        }
        Workload::W3 => {
            let mut cols = STATE_COLUMNS.to_vec();
            cols.push("task_run_id");
            // The layer inserts the state returning its id (it answers with neither row).
            let insert = multi_insert("task_run_state", &cols, 1, q, " RETURNING id");
            let update = "UPDATE task_run SET updated = ?1, state_id = ?2, state_type = ?3, state_name = ?4, \
                          state_timestamp = ?5, start_time = ?6, end_time = ?7, run_count = ?8, total_run_time = ?9 \
                          WHERE task_run.id = ?10";
            for &task in &fx.task_run_ids {
                let start = plan::now();
                for (state, name, done) in [("RUNNING", "Running", false), ("COMPLETED", "Completed", true)] {
                    // The end is read after the RUNNING transaction, as the layer does.
                    let end = done.then(|| crate::plan::after(start));
                    let now = end.unwrap_or(start);
                    let id = Uuid::new_v4();
                    let ins = [u(id), t(&now), t(&now), V::T(state.into()), t(&now), V::T(name.into()), V::T("{}".into()), u(task)];
                    let upd = [
                        t(&now),
                        u(id),
                        V::T(state.into()),
                        V::T(name.into()),
                        t(&now),
                        t(&start),
                        end.as_ref().map(t).unwrap_or(V::N),
                        V::I(1),
                        V::T(sqlite_interval(end.map(|e| e - start).unwrap_or_default())),
                        u(task),
                    ];
                    tx(c, "BEGIN IMMEDIATE", |c| {
                        let ids: Vec<IdRow> = raw(&insert, &ins).load(c)?;
                        std::hint::black_box(ids.len());
                        raw(update, &upd).execute(c)?;
                        Ok(())
                    })?;
                }
            }
        }
        Workload::W4 => {
            let flow_run = fx.flow_run_id.map(u).unwrap_or(V::N);
            let mut i = 0;
            while i < s.w4_logs {
                let end = (i + s.w4_batch).min(s.w4_logs);
                let insert = multi_insert("log", LOG_COLUMNS, end - i, q, "");
                tx(c, "BEGIN IMMEDIATE", |c| {
                    let mut binds = Vec::with_capacity((end - i) * LOG_COLUMNS.len());
                    for k in i..end {
                        let now = plan::now();
                        binds.extend([
                            u(Uuid::new_v4()),
                            t(&now),
                            t(&now),
                            V::T("prefect.flow_runs".into()),
                            V::I(20),
                            flow_run.clone(),
                            V::N,
                            V::T(plan::w4_message(k)),
                            t(&now),
                        ]);
                    }
                    raw(&insert, &binds).execute(c)?;
                    Ok(())
                })?;
                i = end;
            }
        }
        Workload::W5 => {
            // The layer's statement, as diesel writes it for SQLite (its `?`s numbered in order).
            let sql = number_placeholders(&prefect_query_components::reads::read_work_queue_flow_runs_sql(
                prefect_db_config::Dialect::Sqlite,
            )?);
            for i in 0..s.w5_reads {
                let queue = fx.queue_ids[i % fx.queue_ids.len()];
                let binds = [u(queue), V::T("SCHEDULED".into()), V::I(s.w5_limit)];
                let rows: Vec<RunRow> = raw(&sql, &binds).load(c)?;
                let runs = rows.into_iter().map(RunRow::decode).collect::<Result<Vec<_>>>()?;
                std::hint::black_box(runs);
            }
        }
        Workload::W6 => {
            // The layer's statements: the flow inserted unless its name exists, returned either way.
            let insert = "INSERT INTO flow (id, created, updated, name, labels) VALUES (?1, ?2, ?3, ?4, ?5) \
                          ON CONFLICT (name) DO NOTHING RETURNING id, created, updated, name, tags, labels";
            let select = "SELECT id, created, updated, name, tags, labels FROM flow WHERE flow.name = ?1 LIMIT ?2";
            for i in 0..s.w6_upserts {
                let name = plan::w6_name(i);
                let now = plan::now();
                let id = tx(c, "BEGIN IMMEDIATE", |c| {
                    let inserted: Vec<FlowRow> = raw(insert, &[u(Uuid::new_v4()), t(&now), t(&now), V::T(name.clone()), V::N]).load(c)?;
                    let row = match inserted.into_iter().next() {
                        Some(row) => row,
                        None => raw(select, &[V::T(name.clone()), V::I(1)]).get_result(c)?,
                    };
                    uuid(&row.id)
                })?;
                std::hint::black_box(id);
            }
        }
        other => anyhow::bail!("{} runs from a scale fixture", other.code()),
    }
    Ok(Measurement { n: s.ops(fx.workload), seconds: started.elapsed().as_secs_f64() })
}

#[derive(QueryableByName)]
struct LogRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    created: String,
    #[diesel(sql_type = Text)]
    updated: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::SmallInt)]
    level: i16,
    #[diesel(sql_type = Nullable<Text>)]
    flow_run_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    task_run_id: Option<String>,
    #[diesel(sql_type = Text)]
    message: String,
    #[diesel(sql_type = Text)]
    timestamp: String,
}

impl LogRow {
    fn decode(self) -> Result<FloorLog> {
        Ok(FloorLog {
            id: uuid(&self.id)?,
            created: time(&self.created)?,
            updated: time(&self.updated)?,
            name: self.name,
            level: self.level,
            flow_run_id: opt_uuid(self.flow_run_id)?,
            task_run_id: opt_uuid(self.task_run_id)?,
            message: self.message,
            timestamp: time(&self.timestamp)?,
        })
    }
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = Nullable<Text>)]
    state_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    state_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    run_us: i64,
    #[diesel(sql_type = BigInt)]
    late_us: i64,
}

/// `?1, ?2, …, ?n`.
fn placeholders(n: usize) -> String {
    (1..=n).map(q).collect::<Vec<_>>().join(", ")
}

/// W7–W11: the read API's statement with its values as Prefect stores them, then the rows by id.
fn scale_reads(c: &mut SqliteConnection, fx: &Fixture, read: ScaleRead) -> Result<Measurement> {
    use prefect_query_components::read::Bind;
    let binds: Vec<V> = read
        .statement
        .binds
        .iter()
        .map(|b| match b {
            Bind::Uuid(x) => u(*x),
            Bind::Time(x) => t(x),
            Bind::Int(x) => V::I(*x),
            Bind::Text(x) => V::T(x.clone()),
        })
        .collect();
    let sql = read.statement.sql.as_str();
    let mut budget = crate::OpBudget::new(fx.sizes.read_ops);
    while budget.next() {
        match read.answer {
            Answer::FlowRunIds => {
                let ids: Vec<IdRow> = raw(sql, &binds).load(c)?;
                let ids: Vec<V> = ids.into_iter().map(|r| V::T(r.id)).collect();
                let by_id = format!("SELECT {FLOW_RUN_COLUMNS} FROM flow_run WHERE flow_run.id IN ({})", placeholders(ids.len()));
                let rows: Vec<RunRow> = if ids.is_empty() { Vec::new() } else { raw(&by_id, &ids).load(c)? };
                let runs = rows.into_iter().map(RunRow::decode).collect::<Result<Vec<_>>>()?;
                let order: Vec<Uuid> = ids.iter().filter_map(|v| if let V::T(s) = v { Uuid::parse_str(s).ok() } else { None }).collect();
                std::hint::black_box(in_id_order(&order, runs, |r| r.id));
            }
            Answer::LogIds => {
                let ids: Vec<IdRow> = raw(sql, &binds).load(c)?;
                let ids: Vec<V> = ids.into_iter().map(|r| V::T(r.id)).collect();
                let by_id = format!("SELECT {} FROM log WHERE log.id IN ({})", LOG_COLUMNS.join(", "), placeholders(ids.len()));
                let rows: Vec<LogRow> = if ids.is_empty() { Vec::new() } else { raw(&by_id, &ids).load(c)? };
                let logs = rows.into_iter().map(LogRow::decode).collect::<Result<Vec<_>>>()?;
                let order: Vec<Uuid> = ids.iter().filter_map(|v| if let V::T(s) = v { Uuid::parse_str(s).ok() } else { None }).collect();
                std::hint::black_box(in_id_order(&order, logs, |l| l.id));
            }
            Answer::Count => {
                let rows: Vec<CountRow> = raw(sql, &binds).load(c)?;
                std::hint::black_box(rows.first().map(|r| r.n));
            }
            Answer::History => {
                let rows: Vec<HistoryRow> = raw(sql, &binds).load(c)?;
                let out: Vec<FloorHistoryRow> =
                    rows.into_iter().map(|r| (r.bucket, r.state_type, r.state_name, r.n, r.run_us, r.late_us)).collect();
                std::hint::black_box(out);
            }
        }
    }
    Ok(budget.measurement())
}

/// `?`, `?`, … numbered `?1`, `?2`, … in order (the text has no `?` in a literal).
fn number_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    for ch in sql.chars() {
        out.push(ch);
        if ch == '?' {
            n += 1;
            out.push_str(&n.to_string());
        }
    }
    out
}

#[derive(QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// `EXPLAIN QUERY PLAN` of a scale read.
pub fn explain(fx: &Fixture, read: &ScaleRead) -> Result<Vec<String>> {
    use prefect_query_components::read::Bind;
    let c = &mut connect(fx)?;
    let binds: Vec<V> = read
        .statement
        .binds
        .iter()
        .map(|b| match b {
            Bind::Uuid(x) => u(*x),
            Bind::Time(x) => t(x),
            Bind::Int(x) => V::I(*x),
            Bind::Text(x) => V::T(x.clone()),
        })
        .collect();
    let sql = format!("EXPLAIN QUERY PLAN {}", read.statement.sql);
    let rows: Vec<PlanRow> = raw(&sql, &binds).load(c)?;
    Ok(rows.into_iter().map(|r| r.detail).collect())
}
