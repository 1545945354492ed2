//! The workloads through the layer's public APIs: the interface's pool (`database_for`), one
//! checked-out connection per transaction as a server request would, `Conn::transaction`, the
//! typed models and `QueryComponents`.

use crate::{Fixture, Measurement, Workload, plan};
use anyhow::{Context as _, Result};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prefect_db_config::{DbError, TxMode, dispatch};
use prefect_orm::models::{FlowRun, NewFlow, NewFlowRun, NewFlowRunState, NewLog, NewTaskRunState, TaskRunChangeset};
use prefect_orm::schema::{flow, task_run, task_run_state};
use prefect_orm::types::{StateType, Val};
use prefect_query_components::prepared::Prepared;
use prefect_query_components::{OnConflict, QueryComponents, QueryError, WorkPoolPoll};
use std::time::Instant;
use uuid::Uuid;

/// Runs `fx`'s workload through the layer; only the workload is timed.
pub async fn run(fx: &Fixture) -> Result<Measurement> {
    let db = prefect_db_interface::database_for(&fx.config()?)?;
    // Open the pool's first connection before the clock starts (both sides connect untimed).
    drop(db.connection().await?);
    let qc = QueryComponents::new();
    let s = fx.sizes;
    let started = Instant::now();
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
                let mut pooled = db.connection().await?;
                pooled
                    .conn()
                    .transaction(TxMode::Write, async |tx| qc.set_state_id_on_inserted_flow_runs(tx, runs, states).await)
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
                let mut pooled = db.connection().await?;
                let runs = pooled
                    .conn()
                    .transaction(TxMode::Read, async |tx| qc.get_scheduled_flow_runs_from_work_pool(tx, &args).await)
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
                let mut pooled = db.connection().await?;
                pooled.conn().transaction(TxMode::Write, async |tx| qc.insert(tx, logs, OnConflict::Fail).await).await?;
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
        Workload::W6 => {
            for i in 0..s.w6_upserts {
                let name = plan::w6_name(i);
                let mut pooled = db.connection().await?;
                let id: Uuid = pooled
                    .conn()
                    .transaction(TxMode::Write, async |tx| {
                        let row = NewFlow::new(name.clone());
                        // One statement text: kept prepared on the connection.
                        dispatch!(tx, |c| Prepared::new(
                            diesel::insert_into(flow::table).values(row).on_conflict(flow::name).do_nothing()
                        )
                        .execute(c)
                        .await)?;
                        let id: Val<Uuid> = dispatch!(tx, |c| flow::table
                            .filter(flow::name.eq(&name))
                            .select(flow::id)
                            .first(c)
                            .await)?;
                        Ok::<_, DbError>(id.0)
                    })
                    .await?;
                std::hint::black_box(id);
            }
        }
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
    let mut pooled = db.connection().await?;
    pooled
        .conn()
        .transaction(TxMode::Write, async |tx| {
            // Two statement texts per transition kind: kept prepared on the connection.
            dispatch!(tx, |c| Prepared::new(diesel::insert_into(task_run_state::table).values(row)).execute(c).await)?;
            dispatch!(tx, |c| Prepared::new(diesel::update(task_run::table.find(Val(task))).set(cs)).execute(c).await)?;
            Ok::<_, QueryError>(())
        })
        .await?;
    Ok(())
}
