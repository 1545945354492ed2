//! The workloads through the layer's public API, as a server's handlers would write them: the
//! interface (`database_for`), one transaction per request (`Database::transaction`), the typed
//! data access (`DataAccess`) and the query components.

use crate::{Fixture, Measurement, Workload, plan};
use anyhow::{Context as _, Result};
use prefect_db_interface::prelude::*;
use prefect_query_components::WorkPoolPoll;
use std::time::Instant;

/// Runs `fx`'s workload through the layer; only the workload is timed.
pub async fn run(fx: &Fixture) -> Result<Measurement> {
    let db = prefect_db_interface::database_for(&fx.layer_config()?)?;
    // Open the pool's first connection before the clock starts (both sides connect untimed).
    drop(db.connection().await?);
    let qc = QueryComponents::new();
    let s = fx.sizes;
    // The scale reads' request bodies and W10K's cursor, before the clock starts.
    let prepared_body = if Workload::SCALE.contains(&fx.workload) && fx.scale.is_some() { scale_body_of(fx).ok() } else { None };
    let cursor = if fx.workload == Workload::W10K { Some(w10_cursor(fx, &db).await?) } else { None };
    let scale_body = |_: &Fixture| prepared_body.clone().context("not a scale fixture");
    let started = Instant::now();
    let mut budget = crate::OpBudget::new(s.read_ops);
    match fx.workload {
        Workload::W1 => {
            let flow_id = fx.flow()?;
            let deployment = fx.deployment_id.context("no deployment")?;
            let mut i = 0;
            while i < s.w1_runs {
                let end = (i + s.w1_batch).min(s.w1_runs);
                let now = plan::now();
                let mut runs = Vec::with_capacity(end - i);
                let mut states = Vec::with_capacity(end - i);
                for k in i..end {
                    let at = plan::w1_time(k);
                    let mut r = NewFlowRun::new(format!("bench-run-{k}"), flow_id);
                    r.deployment_id = Some(deployment);
                    r.state_type = Some(StateType::Scheduled);
                    r.state_name = Some("Scheduled".to_owned());
                    r.expected_start_time = Some(at);
                    r.next_scheduled_start_time = Some(at);
                    r.idempotency_key = Some(plan::w1_key(deployment, k));
                    r.auto_scheduled = Some(true);
                    r.parameters = Some(serde_json::json!({}));
                    r.empirical_policy = Some(serde_json::json!({}));
                    r.tags = Some(serde_json::json!(["auto-scheduled"]));
                    r.state_timestamp = Some(now);
                    let mut st = NewFlowRunState::new(StateType::Scheduled, "Scheduled", r.id);
                    st.timestamp = Some(now);
                    st.state_details = Some(serde_json::json!({}));
                    runs.push(r);
                    states.push(st);
                }
                db.transaction(TxMode::Write, async |tx| Ok(qc.set_state_id_on_inserted_flow_runs(tx, runs, states).await?))
                    .await?;
                i = end;
            }
        }
        Workload::W2 => {
            for _ in 0..s.w2_polls {
                let args = WorkPoolPoll {
                    limit: Some(s.w2_limit),
                    respect_queue_priorities: true,
                    scheduled_before: Some(plan::now()),
                    ..Default::default()
                };
                let runs = db
                    .transaction(TxMode::Read, async |tx| Ok(qc.get_scheduled_flow_runs_from_work_pool(tx, &args).await?))
                    .await?;
                std::hint::black_box(runs);
            }
        }
        Workload::W3 => {
            for &task in &fx.task_run_ids {
                let start = plan::now();
                transition(&db, task, StateType::Running, "Running", start, None, 1).await?;
                let end = plan::after(start);
                transition(&db, task, StateType::Completed, "Completed", start, Some(end), 1).await?;
            }
        }
        Workload::W4 => {
            let flow_run_id = fx.flow_run_id;
            let mut i = 0;
            while i < s.w4_logs {
                let end = (i + s.w4_batch).min(s.w4_logs);
                let logs: Vec<NewLog> = (i..end)
                    .map(|k| {
                        let mut l = NewLog::new("prefect.flow_runs", 20, plan::w4_message(k), plan::now());
                        l.flow_run_id = flow_run_id;
                        l
                    })
                    .collect();
                db.transaction(TxMode::Write, async |tx| tx.create_logs(logs).await).await?;
                i = end;
            }
        }
        Workload::W5 => {
            for i in 0..s.w5_reads {
                let queue = fx.queue_ids[i % fx.queue_ids.len()];
                let mut pooled = db.connection().await?;
                let rows: Vec<FlowRun> =
                    qc.read_work_queue_flow_runs(&mut pooled.conn(), queue, &[StateType::Scheduled], s.w5_limit).await?;
                std::hint::black_box(rows);
            }
        }
        Workload::W7 | Workload::W10 => {
            let body = scale_body(fx)?;
            while budget.next() {
                let request: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &body)?;
                let mut pooled = db.connection().await?;
                let rows = read::flow_runs(&mut pooled.conn(), &request).await?;
                std::hint::black_box(rows);
            }
        }
        Workload::W8 => {
            let body = scale_body(fx)?;
            while budget.next() {
                let request: Read<read::NoSort> = Read::parse(Endpoint::FlowRunsCount, &body)?;
                let mut pooled = db.connection().await?;
                let n = read::count_flow_runs(&mut pooled.conn(), &request.filters).await?;
                std::hint::black_box(n);
            }
        }
        Workload::W9 => {
            let body = scale_body(fx)?;
            while budget.next() {
                let request = HistoryRead::parse(Endpoint::FlowRunsHistory, &body)?;
                let mut pooled = db.connection().await?;
                let buckets = read::flow_run_history(&mut pooled.conn(), &request).await?;
                std::hint::black_box(buckets);
            }
        }
        Workload::W10K => {
            let body = scale_body(fx)?;
            let cursor = cursor.context("no cursor")?;
            while budget.next() {
                let request: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &body)?;
                let mut pooled = db.connection().await?;
                let page = read::flow_runs_page(&mut pooled.conn(), &request, Some(&cursor)).await?;
                std::hint::black_box(page);
            }
        }
        Workload::W11 => {
            let body = scale_body(fx)?;
            while budget.next() {
                let request: Read<read::LogSort> = Read::parse(Endpoint::LogsFilter, &body)?;
                let mut pooled = db.connection().await?;
                let rows = read::logs(&mut pooled.conn(), &request).await?;
                std::hint::black_box(rows);
            }
        }
        Workload::W6 => {
            for i in 0..s.w6_upserts {
                let name = plan::w6_name(i);
                let id: Uuid =
                    db.transaction(TxMode::Write, async |tx| Ok(tx.create_flow(NewFlow::new(name)).await?.row.id)).await?;
                std::hint::black_box(id);
            }
        }
    }
    if crate::floor::SCALE_READS.contains(&fx.workload) {
        return Ok(budget.measurement());
    }
    Ok(Measurement { n: s.ops(fx.workload), seconds: started.elapsed().as_secs_f64() })
}

/// One state transition of a task run: insert the state, update the run's state columns.
async fn transition(
    db: &prefect_db_interface::Database,
    task: Uuid,
    state: StateType,
    name: &str,
    start: chrono::DateTime<chrono::Utc>,
    end: Option<chrono::DateTime<chrono::Utc>>,
    run_count: i32,
) -> Result<()> {
    let now = end.unwrap_or(start);
    let mut row = NewTaskRunState::new(state, name, task);
    row.timestamp = Some(now);
    row.state_details = Some(serde_json::json!({}));
    let state_id = row.id;
    let mut cs = TaskRunChangeset::new();
    cs.updated = now;
    cs.state_id = Some(Some(state_id));
    cs.state_type = Some(Some(state));
    cs.state_name = Some(Some(name.to_owned()));
    cs.state_timestamp = Some(Some(now));
    cs.start_time = Some(Some(start));
    cs.end_time = Some(end);
    cs.run_count = Some(run_count);
    cs.total_run_time = Some(end.map(|e| e - start).unwrap_or_default());
    // A transition answers with neither row: written without reading them back.
    db.transaction(TxMode::Write, async |tx| {
        tx.insert_many_ids(vec![row]).await?;
        tx.update_no_return(task, cs).await
    })
    .await?;
    Ok(())
}

/// The request body of a scale workload (W7–W11), the same for the layer and the floor.
pub fn scale_body_of(fx: &Fixture) -> Result<serde_json::Value> {
    use crate::scale::requests;
    let now = fx.now()?;
    let busy = fx.deployment_ids.first().copied().context("no deployments")?;
    let typical = fx.deployment_ids.get(1).copied().context("no second deployment")?;
    Ok(match fx.workload {
        Workload::W7 => requests::w7(now),
        Workload::W8 => requests::w8(now),
        Workload::W9 => requests::w9(now, typical),
        Workload::W10 => requests::w10(busy, fx.sizes.w10_offset),
        Workload::W10K => requests::w10(busy, 0),
        Workload::W11 => requests::w11(fx.flow_run_id.context("no target run")?),
        other => anyhow::bail!("{} is not a scale read", other.code()),
    })
}

/// W10K: the cursor of the row just before W10's page (found untimed, by an offset read).
pub async fn w10_cursor(fx: &Fixture, db: &prefect_db_interface::Database) -> Result<read::Cursor> {
    let busy = fx.deployment_ids.first().copied().context("no deployments")?;
    let mut body = crate::scale::requests::w10(busy, fx.sizes.w10_offset - 1);
    body["limit"] = serde_json::json!(1);
    let request: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &body)?;
    let mut pooled = db.connection().await?;
    let row = read::flow_runs(&mut pooled.conn(), &request).await?.into_iter().next().context("the busy deployment has too few runs")?;
    Ok(read::Cursor { key: row.expected_start_time.map(read::CursorKey::Time), id: row.id })
}
