//! Every workload at a tiny size, through the layer and the floor, on both dialects: the rows it
//! leaves behind are checked (no timing assertions).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prefect_db_bench::{Fixture, Impl, Sizes, Workload};
use prefect_db_config::dispatch;
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_orm::schema::{flow, flow_run, flow_run_state, log, task_run, task_run_state};
use prefect_orm::types::{StateType, Val};
use std::collections::HashMap;
use uuid::Uuid;

const N: usize = 20;

conformance!(
    insert_flow_runs,
    worker_poll,
    task_state_transitions,
    log_ingest,
    read_flow_runs,
    upsert_flows,
);

async fn both(dialect: Dialect, workload: Workload, check: impl AsyncFn(&Fixture) -> TestResult) -> TestResult {
    let dir = tempfile::tempdir()?;
    for imp in [Impl::Layer, Impl::Floor] {
        let fx = prefect_db_bench::prepare(dialect, workload, Sizes::tiny(N), dir.path()).await?;
        let outcome: TestResult = async {
            let m = prefect_db_bench::run(&fx, imp).await?;
            assert_eq!(m.n, Sizes::tiny(N).ops(workload));
            check(&fx).await.map_err(|e| format!("{} ({}): {e}", workload.name(), imp.name()))?;
            Ok(())
        }
        .await;
        prefect_db_bench::drop_fixture(&fx).await?;
        outcome?;
    }
    Ok(())
}

async fn count(fx: &Fixture, table: &str) -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
    let db = prefect_db_interface::database_for(&fx.config()?)?;
    let mut pooled = db.connection().await?;
    let mut conn = pooled.conn();
    let c = &mut conn;
    Ok(match table {
        "flow" => dispatch!(c, |c| flow::table.count().get_result(c).await)?,
        "flow_run" => dispatch!(c, |c| flow_run::table.count().get_result(c).await)?,
        "flow_run_state" => dispatch!(c, |c| flow_run_state::table.count().get_result(c).await)?,
        "task_run_state" => dispatch!(c, |c| task_run_state::table.count().get_result(c).await)?,
        "log" => dispatch!(c, |c| log::table.count().get_result(c).await)?,
        other => return Err(format!("no count for {other}").into()),
    })
}

async fn insert_flow_runs(dialect: Dialect) -> TestResult {
    both(dialect, Workload::W1, async |fx| {
        assert_eq!(count(fx, "flow_run").await?, N as i64);
        assert_eq!(count(fx, "flow_run_state").await?, N as i64);
        let db = prefect_db_interface::database_for(&fx.config()?)?;
        let mut pooled = db.connection().await?;
        let mut conn = pooled.conn();
        let c = &mut conn;
        let runs: Vec<(Val<Uuid>, Val<Option<Uuid>>)> =
            dispatch!(c, |c| flow_run::table.select((flow_run::id, flow_run::state_id)).load(c).await)?;
        let states: Vec<(Val<Uuid>, Val<Uuid>, StateType)> = dispatch!(c, |c| flow_run_state::table
            .select((flow_run_state::id, flow_run_state::flow_run_id, flow_run_state::type_))
            .load(c)
            .await)?;
        let states: HashMap<Uuid, (Uuid, StateType)> = states.into_iter().map(|(id, run, ty)| (id.0, (run.0, ty))).collect();
        for (run, state) in runs {
            let state = state.0.ok_or("a run without state_id")?;
            assert_eq!(states.get(&state), Some(&(run.0, StateType::Scheduled)), "run {} points at its SCHEDULED state", run.0);
        }
        Ok(())
    })
    .await
}

async fn worker_poll(dialect: Dialect) -> TestResult {
    both(dialect, Workload::W2, async |fx| {
        // Read-only: the seed is untouched.
        let running = prefect_db_bench::seed::LIMITED_QUEUES.len() * prefect_db_bench::seed::RUNNING_PER_LIMITED_QUEUE;
        assert_eq!(count(fx, "flow_run").await?, (N + running) as i64);
        Ok(())
    })
    .await
}

async fn task_state_transitions(dialect: Dialect) -> TestResult {
    both(dialect, Workload::W3, async |fx| {
        assert_eq!(count(fx, "task_run_state").await?, 2 * N as i64);
        let db = prefect_db_interface::database_for(&fx.config()?)?;
        let mut pooled = db.connection().await?;
        let mut conn = pooled.conn();
        let c = &mut conn;
        let done: i64 = dispatch!(c, |c| task_run::table
            .filter(task_run::state_type.eq(StateType::Completed))
            .filter(task_run::end_time.is_not_null())
            .filter(task_run::start_time.is_not_null())
            .filter(task_run::run_count.eq(1))
            .count()
            .get_result(c)
            .await)?;
        assert_eq!(done, N as i64, "every task run COMPLETED with its times set");
        Ok(())
    })
    .await
}

async fn log_ingest(dialect: Dialect) -> TestResult {
    both(dialect, Workload::W4, async |fx| {
        assert_eq!(count(fx, "log").await?, N as i64);
        Ok(())
    })
    .await
}

async fn read_flow_runs(dialect: Dialect) -> TestResult {
    both(dialect, Workload::W5, async |fx| {
        let running = prefect_db_bench::seed::LIMITED_QUEUES.len() * prefect_db_bench::seed::RUNNING_PER_LIMITED_QUEUE;
        assert_eq!(count(fx, "flow_run").await?, (N + running) as i64);
        Ok(())
    })
    .await
}

async fn upsert_flows(dialect: Dialect) -> TestResult {
    both(dialect, Workload::W6, async |fx| {
        // N/2 seeded, N/2 new, none duplicated.
        assert_eq!(count(fx, "flow").await?, N as i64);
        Ok(())
    })
    .await
}
