//! The untimed data each workload starts from, written through the layer.

use crate::{Fixture, Workload, plan};
use anyhow::Result;
use diesel_async::RunQueryDsl;
use prefect_db_config::{Conn, TxMode, dispatch};
use prefect_orm::models::{NewDeployment, NewFlow, NewFlowRun, NewTaskRun, NewWorkPool, NewWorkQueue};
use prefect_orm::schema::{deployment, flow, work_pool, work_queue};
use prefect_orm::types::StateType;
use prefect_query_components::{OnConflict, QueryComponents};
use uuid::Uuid;

/// W2/W5: queue priorities with a concurrency limit, and the limit.
pub const LIMITED_QUEUES: [(i32, i32); 3] = [(3, 5), (6, 10), (9, 20)];
/// W2/W5: RUNNING runs seeded in each limited queue (taking some of its slots).
pub const RUNNING_PER_LIMITED_QUEUE: usize = 2;

/// Seeds `fx`'s database for its workload and records the ids in `fx`.
pub async fn seed(fx: &mut Fixture) -> Result<()> {
    let db = prefect_db_interface::database_for(&fx.config()?)?;
    let mut pooled = db.connection().await?;
    let mut conn = pooled.conn();
    let conn = &mut conn;
    let qc = QueryComponents::new();
    let sizes = fx.sizes;
    match fx.workload {
        Workload::W1 => {
            let f = flow_row(conn, "bench-flow").await?;
            let d = NewDeployment::new("bench-deployment", f);
            let d_id = d.id;
            dispatch!(conn, |c| diesel::insert_into(deployment::table).values(d).execute(c).await)?;
            fx.flow_id = Some(f);
            fx.deployment_id = Some(d_id);
        }
        Workload::W2 | Workload::W5 => {
            let f = flow_row(conn, "bench-flow").await?;
            let pool = NewWorkPool::new("bench-pool", "process");
            let pool_id = pool.id;
            dispatch!(conn, |c| diesel::insert_into(work_pool::table).values(pool).execute(c).await)?;
            let mut queues = Vec::new();
            for priority in 1..=10 {
                let mut q = NewWorkQueue::new(format!("queue-{priority}"), pool_id);
                q.priority = Some(priority);
                q.concurrency_limit = LIMITED_QUEUES.iter().find(|(p, _)| *p == priority).map(|(_, l)| *l);
                queues.push(q.id);
                dispatch!(conn, |c| diesel::insert_into(work_queue::table).values(q).execute(c).await)?;
            }
            let now = plan::now();
            let mut runs = Vec::with_capacity(sizes.w2_runs);
            for i in 0..sizes.w2_runs {
                let at = plan::w2_time(now, i);
                runs.push(run_row(f, queues[i % queues.len()], &format!("scheduled-{i}"), StateType::Scheduled, at));
            }
            for (priority, _) in LIMITED_QUEUES {
                for k in 0..RUNNING_PER_LIMITED_QUEUE {
                    let q = queues[(priority - 1) as usize];
                    runs.push(run_row(f, q, &format!("running-{priority}-{k}"), StateType::Running, now));
                }
            }
            insert_all(conn, &qc, runs).await?;
            fx.flow_id = Some(f);
            fx.work_pool_id = Some(pool_id);
            fx.queue_ids = queues;
        }
        Workload::W3 => {
            let f = flow_row(conn, "bench-flow").await?;
            let run = run_row(f, Uuid::nil(), "bench-run", StateType::Running, plan::now());
            let mut run = run;
            run.work_queue_id = None;
            let run_id = run.id;
            insert_all(conn, &qc, vec![run]).await?;
            let mut tasks = Vec::with_capacity(sizes.w3_tasks);
            for i in 0..sizes.w3_tasks {
                let mut t = NewTaskRun::new(format!("task-{i}"), "bench.task", i.to_string());
                t.flow_run_id = Some(run_id);
                t.state_type = Some(StateType::Pending);
                t.state_name = Some("Pending".to_owned());
                fx.task_run_ids.push(t.id);
                tasks.push(t);
            }
            insert_all(conn, &qc, tasks).await?;
            fx.flow_id = Some(f);
            fx.flow_run_id = Some(run_id);
        }
        Workload::W4 => {
            // Logs have no foreign keys: they name a flow run that need not exist.
            fx.flow_run_id = Some(Uuid::new_v4());
        }
        Workload::W6 => {
            let flows: Vec<NewFlow> = (0..sizes.w6_upserts.div_ceil(2)).map(|i| NewFlow::new(plan::w6_name(2 * i))).collect();
            insert_all(conn, &qc, flows).await?;
        }
        other => anyhow::bail!("{} reads the scale dataset (prepare --scale)", other.code()),
    }
    Ok(())
}

async fn flow_row(conn: &mut Conn<'_>, name: &str) -> Result<Uuid> {
    let row = NewFlow::new(name);
    let id = row.id;
    dispatch!(conn, |c| diesel::insert_into(flow::table).values(row).execute(c).await)?;
    Ok(id)
}

fn run_row(flow_id: Uuid, queue: Uuid, name: &str, state: StateType, at: chrono::DateTime<chrono::Utc>) -> NewFlowRun {
    let mut row = NewFlowRun::new(name, flow_id);
    row.state_type = Some(state);
    row.state_name = Some(if state == StateType::Running { "Running" } else { "Scheduled" }.to_owned());
    row.next_scheduled_start_time = Some(at);
    row.expected_start_time = Some(at);
    row.work_queue_id = Some(queue);
    row.empirical_policy = Some(serde_json::json!({}));
    row
}

async fn insert_all<R: prefect_query_components::NewRecord>(conn: &mut Conn<'_>, qc: &QueryComponents, rows: Vec<R>) -> Result<()> {
    conn.transaction(TxMode::Write, async |tx| qc.insert(tx, rows, OnConflict::Fail).await.map(|_| ())).await?;
    Ok(())
}
