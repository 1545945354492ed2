//! The PostgreSQL floor: tokio-postgres, statements prepared once per connection and reused.

use super::{Answer, FLOW_RUN_COLUMNS, FloorHistoryRow, FloorLog, FloorRun, LOG_COLUMNS, ScaleRead, in_id_order, STATE_COLUMNS, W1_RUN_COLUMNS, multi_insert, set_state_id_sql};
use crate::{Fixture, Measurement, Workload, pg_connect, plan};
use anyhow::{Context as _, Result};
use bytes::{Buf as _, BufMut as _, BytesMut};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::HashMap;
use std::error::Error as StdError;
use std::time::Instant;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use tokio_postgres::{Client, Row, Statement};
use uuid::Uuid;

type BoxErr = Box<dyn StdError + Sync + Send>;

/// A value of a PostgreSQL enum (`state_type`), sent as its label.
#[derive(Debug)]
pub struct PgEnum(pub &'static str);

impl ToSql for PgEnum {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
    }
    to_sql_checked!();
}

/// An enum label read back.
#[derive(Debug)]
pub struct EnumText(pub String);

impl<'a> FromSql<'a> for EnumText {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, BoxErr> {
        Ok(EnumText(std::str::from_utf8(raw)?.to_owned()))
    }
    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Enum(_))
    }
}

/// An `interval` in PostgreSQL's binary form (microseconds, days, months), split as Python's
/// `timedelta` is (whole days, then the microseconds left).
#[derive(Debug)]
pub struct PgInterval(pub TimeDelta);

impl ToSql for PgInterval {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
        const DAY: i64 = 86_400_000_000;
        let total = self.0.num_microseconds().ok_or("interval out of range")?;
        out.put_i64(total.rem_euclid(DAY));
        out.put_i32(i32::try_from(total.div_euclid(DAY))?);
        out.put_i32(0);
        Ok(IsNull::No)
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
    to_sql_checked!();
}

impl<'a> FromSql<'a> for PgInterval {
    fn from_sql(_ty: &Type, mut raw: &'a [u8]) -> Result<Self, BoxErr> {
        if raw.len() != 16 {
            return Err("bad interval".into());
        }
        let micros = raw.get_i64();
        let days = raw.get_i32();
        let months = raw.get_i32();
        Ok(PgInterval(TimeDelta::microseconds(micros) + TimeDelta::days(i64::from(days) + 30 * i64::from(months))))
    }
    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

fn decode(row: &Row) -> Result<FloorRun> {
    Ok(FloorRun {
        id: row.try_get(0)?,
        created: row.try_get(1)?,
        updated: row.try_get(2)?,
        name: row.try_get(3)?,
        state_type: row.try_get::<_, Option<EnumText>>(4)?.map(|e| e.0),
        run_count: row.try_get(5)?,
        expected_start_time: row.try_get(6)?,
        next_scheduled_start_time: row.try_get(7)?,
        start_time: row.try_get(8)?,
        end_time: row.try_get(9)?,
        total_run_time: row.try_get::<_, PgInterval>(10)?.0,
        flow_version: row.try_get(11)?,
        parameters: row.try_get(12)?,
        idempotency_key: row.try_get(13)?,
        context: row.try_get(14)?,
        empirical_policy: row.try_get(15)?,
        tags: row.try_get(16)?,
        auto_scheduled: row.try_get(17)?,
        flow_id: row.try_get(18)?,
        deployment_id: row.try_get(19)?,
        parent_task_run_id: row.try_get(20)?,
        state_id: row.try_get(21)?,
        state_name: row.try_get(22)?,
        infrastructure_document_id: row.try_get(23)?,
        work_queue_name: row.try_get(24)?,
        state_timestamp: row.try_get(25)?,
        created_by: row.try_get(26)?,
        infrastructure_pid: row.try_get(27)?,
        work_queue_id: row.try_get(28)?,
        job_variables: row.try_get(29)?,
        deployment_version: row.try_get(30)?,
        labels: row.try_get(31)?,
    })
}

fn d(n: usize) -> String {
    format!("${n}")
}

/// Statements prepared once per connection, by SQL text.
struct Prepared {
    client: Client,
    cache: HashMap<String, Statement>,
}

impl Prepared {
    async fn get(&mut self, sql: &str, types: &[Type]) -> Result<Statement> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare_typed(sql, types).await.with_context(|| format!("preparing {sql:.200}"))?;
        self.cache.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

type P<'a> = &'a (dyn ToSql + Sync);

/// Runs `fx`'s workload; only the workload is timed.
pub async fn run(fx: &Fixture, scale: Option<ScaleRead>) -> Result<Measurement> {
    let client = pg_connect(&fx.url).await?;
    let mut db = Prepared { client, cache: HashMap::new() };
    let s = fx.sizes;
    if let Some(read) = scale {
        return scale_reads(&mut db, fx, read).await;
    }
    let started = Instant::now();
    match fx.workload {
        Workload::W1 => {
            let flow_id = fx.flow()?;
            let deployment = Some(fx.deployment_id.context("no deployment")?);
            let mut state_cols = STATE_COLUMNS.to_vec();
            state_cols.push("flow_run_id");
            let mut i = 0;
            while i < s.w1_runs {
                let end = (i + s.w1_batch).min(s.w1_runs);
                let rows = end - i;
                let now = plan::now();
                let ids: Vec<Uuid> = (0..rows).map(|_| Uuid::new_v4()).collect();
                let names: Vec<String> = (i..end).map(|k| format!("bench-run-{k}")).collect();
                let times: Vec<Option<DateTime<Utc>>> = (i..end).map(|k| Some(plan::w1_time(k))).collect();
                let keys: Vec<Option<String>> = (i..end).map(|k| Some(plan::w1_key(flow_id_or(deployment, flow_id), k))).collect();
                let scheduled = PgEnum("SCHEDULED");
                let zero = PgInterval(TimeDelta::zero());
                let empty = serde_json::json!({});
                let tags = serde_json::json!(["auto-scheduled"]);
                let state_name = Some("Scheduled".to_owned());
                let now_opt = Some(now);
                let yes = true;
                let mut params: Vec<P<'_>> = Vec::with_capacity(rows * W1_RUN_COLUMNS.len());
                for r in 0..rows {
                    params.extend([
                        &ids[r] as P<'_>,
                        &now,
                        &now,
                        &names[r],
                        &scheduled,
                        &times[r],
                        &times[r],
                        &zero,
                        &empty,
                        &keys[r],
                        &empty,
                        &tags,
                        &yes,
                        &flow_id,
                        &deployment,
                        &state_name,
                        &now_opt,
                    ]);
                }
                let run_sql = multi_insert(
                    "flow_run",
                    W1_RUN_COLUMNS,
                    rows,
                    d,
                    " ON CONFLICT (flow_id, idempotency_key) DO NOTHING RETURNING id",
                );
                let run_stmt = db.get(&run_sql, &[]).await?;
                db.client.batch_execute("BEGIN").await?;
                let inserted: Vec<Uuid> =
                    db.client.query(&run_stmt, &params).await?.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
                let state_ids: Vec<Uuid> = inserted.iter().map(|_| Uuid::new_v4()).collect();
                if !inserted.is_empty() {
                    let state_sql = multi_insert("flow_run_state", &state_cols, inserted.len(), d, "");
                    let state_stmt = db.get(&state_sql, &[]).await?;
                    let name = "Scheduled".to_owned();
                    let mut sp: Vec<P<'_>> = Vec::with_capacity(inserted.len() * state_cols.len());
                    for (r, run) in inserted.iter().enumerate() {
                        sp.extend([&state_ids[r] as P<'_>, &now, &now, &scheduled, &now, &name, &empty, run]);
                    }
                    db.client.execute(&state_stmt, &sp).await?;
                    let upd_sql = set_state_id_sql(inserted.len(), state_ids.len(), d);
                    let upd_stmt = db.get(&upd_sql, &[]).await?;
                    let at = plan::now();
                    let mut up: Vec<P<'_>> = vec![&at];
                    up.extend(inserted.iter().map(|x| x as P<'_>));
                    up.extend(state_ids.iter().map(|x| x as P<'_>));
                    db.client.execute(&upd_stmt, &up).await?;
                }
                db.client.batch_execute("COMMIT").await?;
                i = end;
            }
        }
        Workload::W2 => {
            let args = super::w2_args(s.w2_limit);
            let poll_sql = prefect_query_components::worker_poll::poll_sql_text(prefect_db_config::Dialect::Postgres, &args);
            let poll = db.get(&poll_sql, &[Type::INT8, Type::INT8, Type::INT8, Type::TIMESTAMPTZ]).await?;
            let by_ids = db.get(&format!("SELECT {FLOW_RUN_COLUMNS} FROM flow_run WHERE flow_run.id = ANY($1)"), &[]).await?;
            // The layer's second statement: lock the runs the ranking chose (no contention here,
            // so one round).
            let lock = db
                .get("SELECT fr.id AS id FROM flow_run fr WHERE fr.id = ANY($1) AND fr.state_type = 'SCHEDULED' FOR UPDATE OF fr SKIP LOCKED", &[])
                .await?;
            let cap = s.w2_limit.min(prefect_query_components::DEFAULT_POLL_LIMIT);
            let worker_limit = prefect_query_components::DEFAULT_POLL_LIMIT;
            for _ in 0..s.w2_polls {
                let before = plan::now();
                db.client.batch_execute("BEGIN").await?;
                let polled = db.client.query(&poll, &[&cap, &s.w2_limit, &worker_limit, &before]).await?;
                let mut out = Vec::with_capacity(polled.len());
                if !polled.is_empty() {
                    let keys: Vec<(Uuid, Uuid, Uuid)> = polled
                        .iter()
                        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                        .collect::<Result<_, tokio_postgres::Error>>()?;
                    let ids: Vec<Uuid> = keys.iter().map(|k| k.2).collect();
                    let locked = db.client.query(&lock, &[&ids]).await?;
                    std::hint::black_box(locked.len());
                    let rows = db.client.query(&by_ids, &[&ids]).await?;
                    let mut by_id = HashMap::with_capacity(rows.len());
                    for row in &rows {
                        let run = decode(row)?;
                        by_id.insert(run.id, run);
                    }
                    for (pool, queue, id) in keys {
                        if let Some(run) = by_id.remove(&id) {
                            out.push((pool, queue, run));
                        }
                    }
                }
                db.client.batch_execute("COMMIT").await?;
                std::hint::black_box(out);
            }
        }
        Workload::W3 => {
            let mut cols = STATE_COLUMNS.to_vec();
            cols.push("task_run_id");
            // The layer inserts the state returning its id (it answers with neither row).
            let insert = db.get(&multi_insert("task_run_state", &cols, 1, d, " RETURNING id"), &[]).await?;
            let update = db
                .get(
                    "UPDATE task_run SET updated = $1, state_id = $2, state_type = $3, state_name = $4, \
                     state_timestamp = $5, start_time = $6, end_time = $7, run_count = $8, total_run_time = $9 \
                     WHERE task_run.id = $10",
                    &[],
                )
                .await?;
            let empty = serde_json::json!({});
            let one: i32 = 1;
            for &task in &fx.task_run_ids {
                let start = plan::now();
                for (state, name, done) in [("RUNNING", "Running", false), ("COMPLETED", "Completed", true)] {
                    // The end is read after the RUNNING transaction, as the layer does.
                    let end = done.then(|| crate::plan::after(start));
                    let now = end.unwrap_or(start);
                    let id = Uuid::new_v4();
                    let ty = PgEnum(state);
                    let name = name.to_owned();
                    let start_opt = Some(start);
                    let total = PgInterval(end.map(|e| e - start).unwrap_or_default());
                    db.client.batch_execute("BEGIN").await?;
                    let ids = db.client.query(&insert, &[&id, &now, &now, &ty, &now, &name, &empty, &task]).await?;
                    std::hint::black_box(ids.first().map(|r| r.try_get::<_, Uuid>(0)).transpose()?);
                    db.client
                        .execute(&update, &[&now, &id, &ty, &name, &now, &start_opt, &end, &one, &total, &task])
                        .await?;
                    db.client.batch_execute("COMMIT").await?;
                }
            }
        }
        Workload::W4 => {
            let flow_run = fx.flow_run_id;
            let no_task: Option<Uuid> = None;
            let name = "prefect.flow_runs".to_owned();
            let level: i16 = 20;
            let mut i = 0;
            while i < s.w4_logs {
                let end = (i + s.w4_batch).min(s.w4_logs);
                let rows = end - i;
                let stmt = db.get(&multi_insert("log", LOG_COLUMNS, rows, d, ""), &[]).await?;
                let ids: Vec<Uuid> = (0..rows).map(|_| Uuid::new_v4()).collect();
                let nows: Vec<DateTime<Utc>> = (0..rows).map(|_| plan::now()).collect();
                let messages: Vec<String> = (i..end).map(plan::w4_message).collect();
                let mut params: Vec<P<'_>> = Vec::with_capacity(rows * LOG_COLUMNS.len());
                for r in 0..rows {
                    params.extend([
                        &ids[r] as P<'_>,
                        &nows[r],
                        &nows[r],
                        &name,
                        &level,
                        &flow_run,
                        &no_task,
                        &messages[r],
                        &nows[r],
                    ]);
                }
                db.client.batch_execute("BEGIN").await?;
                db.client.execute(&stmt, &params).await?;
                db.client.batch_execute("COMMIT").await?;
                i = end;
            }
        }
        Workload::W5 => {
            // The layer's statement, as diesel writes it for PostgreSQL.
            let sql = prefect_query_components::reads::read_work_queue_flow_runs_sql(prefect_db_config::Dialect::Postgres)?;
            let stmt = db.get(&sql, &[]).await?;
            let scheduled = vec![PgEnum("SCHEDULED")];
            for i in 0..s.w5_reads {
                let queue = fx.queue_ids[i % fx.queue_ids.len()];
                let rows = db.client.query(&stmt, &[&queue, &scheduled, &s.w5_limit]).await?;
                let runs = rows.iter().map(decode).collect::<Result<Vec<_>>>()?;
                std::hint::black_box(runs);
            }
        }
        Workload::W6 => {
            // The layer's statements: the flow inserted unless its name exists, returned either way.
            let insert = db
                .get(
                    "INSERT INTO flow (id, created, updated, name, tags, labels) VALUES ($1, $2, $3, $4, DEFAULT, $5) \
                     ON CONFLICT (name) DO NOTHING RETURNING id, created, updated, name, tags, labels",
                    &[],
                )
                .await?;
            let select = db.get("SELECT id, created, updated, name, tags, labels FROM flow WHERE flow.name = $1 LIMIT $2", &[]).await?;
            let one: i64 = 1;
            let no_labels: Option<serde_json::Value> = None;
            for i in 0..s.w6_upserts {
                let name = plan::w6_name(i);
                let now = plan::now();
                db.client.batch_execute("BEGIN").await?;
                let inserted = db.client.query(&insert, &[&Uuid::new_v4(), &now, &now, &name, &no_labels]).await?;
                let row = match inserted.into_iter().next() {
                    Some(row) => row,
                    None => db.client.query_one(&select, &[&name, &one]).await?,
                };
                let flow: (Uuid, chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>, String, serde_json::Value, Option<serde_json::Value>) =
                    (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, row.try_get(5)?);
                db.client.batch_execute("COMMIT").await?;
                std::hint::black_box(flow);
            }
        }
        other => anyhow::bail!("{} runs from a scale fixture", other.code()),
    }
    Ok(Measurement { n: s.ops(fx.workload), seconds: started.elapsed().as_secs_f64() })
}

fn flow_id_or(deployment: Option<Uuid>, flow: Uuid) -> Uuid {
    deployment.unwrap_or(flow)
}

/// Text bound to a parameter of any text-like type (`text`, `varchar`, an enum): its UTF-8 bytes.
#[derive(Debug)]
pub struct AnyText(pub String);

impl ToSql for AnyText {
    fn to_sql(&self, _ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxErr> {
        out.put_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
    to_sql_checked!();
}

fn bind_params(binds: &[prefect_query_components::read::Bind]) -> (Vec<Type>, Vec<Box<dyn ToSql + Sync + Send>>) {
    use prefect_query_components::read::Bind;
    binds
        .iter()
        .map(|b| -> (Type, Box<dyn ToSql + Sync + Send>) {
            match b {
                Bind::Uuid(u) => (Type::UUID, Box::new(*u)),
                Bind::Time(t) => (Type::TIMESTAMPTZ, Box::new(*t)),
                Bind::Int(n) => (Type::INT8, Box::new(*n)),
                Bind::Text(t) => (Type::TEXT, Box::new(AnyText(t.clone()))),
            }
        })
        .unzip()
}

fn decode_log(row: &Row) -> Result<FloorLog> {
    Ok(FloorLog {
        id: row.try_get(0)?,
        created: row.try_get(1)?,
        updated: row.try_get(2)?,
        name: row.try_get(3)?,
        level: row.try_get(4)?,
        flow_run_id: row.try_get(5)?,
        task_run_id: row.try_get(6)?,
        message: row.try_get(7)?,
        timestamp: row.try_get(8)?,
    })
}

/// W7–W11: the read API's statement (typed as the layer binds it), then the rows by id.
async fn scale_reads(db: &mut Prepared, fx: &Fixture, read: ScaleRead) -> Result<Measurement> {
    let (types, values) = bind_params(&read.statement.binds);
    let stmt = db.get(&read.statement.sql, &types).await?;
    let runs_by_id = db.get(&format!("SELECT {FLOW_RUN_COLUMNS} FROM flow_run WHERE flow_run.id = ANY($1)"), &[]).await?;
    let logs_by_id = db.get(&format!("SELECT {} FROM log WHERE log.id = ANY($1)", LOG_COLUMNS.join(", ")), &[]).await?;
    let params: Vec<P<'_>> = values.iter().map(|v| v.as_ref() as P<'_>).collect();
    let mut budget = crate::OpBudget::new(fx.sizes.read_ops);
    while budget.next() {
        let rows = db.client.query(&stmt, &params).await?;
        match read.answer {
            Answer::FlowRunIds => {
                let ids: Vec<Uuid> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
                let found = db.client.query(&runs_by_id, &[&ids]).await?;
                let runs = found.iter().map(decode).collect::<Result<Vec<_>>>()?;
                std::hint::black_box(in_id_order(&ids, runs, |r| r.id));
            }
            Answer::LogIds => {
                let ids: Vec<Uuid> = rows.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
                let found = db.client.query(&logs_by_id, &[&ids]).await?;
                let logs = found.iter().map(decode_log).collect::<Result<Vec<_>>>()?;
                std::hint::black_box(in_id_order(&ids, logs, |l| l.id));
            }
            Answer::Count => {
                let n: i64 = rows.first().context("no count")?.try_get(0)?;
                std::hint::black_box(n);
            }
            Answer::History => {
                let out: Vec<FloorHistoryRow> = rows
                    .iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?, r.try_get(5)?)))
                    .collect::<Result<_, tokio_postgres::Error>>()?;
                std::hint::black_box(out);
            }
        }
    }
    Ok(budget.measurement())
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of a scale read, typed as the layer binds it.
pub async fn explain(fx: &Fixture, read: &ScaleRead) -> Result<Vec<String>> {
    let client = pg_connect(&fx.url).await?;
    let (types, values) = bind_params(&read.statement.binds);
    let stmt = client.prepare_typed(&format!("EXPLAIN (ANALYZE, BUFFERS) {}", read.statement.sql), &types).await?;
    let params: Vec<P<'_>> = values.iter().map(|v| v.as_ref() as P<'_>).collect();
    let rows = client.query(&stmt, &params).await?;
    Ok(rows.iter().map(|r| r.try_get::<_, String>(0)).collect::<Result<_, _>>()?)
}
