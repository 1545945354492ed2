//! Prefect's read API beyond the golden cases, on both dialects: run history with each filter kind
//! (expected buckets worked out from the seeded runs), keyset pages that return every run once
//! while runs keep arriving, and refused bodies as invalid-input errors.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use prefect_db_interface::config::Dialect;
use prefect_db_interface::migrate::{self, UpgradeTarget};
use prefect_db_interface::prelude::*;
use prefect_db_interface::read::{FlowRunSort, HistoryBucket, LogSort};
use prefect_db_test::{TestDatabase, TestResult, conformance};
use serde_json::{Value, json};

async fn database(dialect: Dialect) -> Result<(TestDatabase, Database), Box<dyn std::error::Error + Send + Sync>> {
    let db = TestDatabase::from_template(dialect, "migrated-latest", |config| async move {
        migrate::upgrade(&config, UpgradeTarget::Latest).await.map(|_| ())
    })
    .await?;
    let interface = database_for(&db.config())?;
    Ok((db, interface))
}

/// 2026-01-01T00:00:00Z plus `minutes`.
fn at(minutes: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600 + minutes * 60, 0).expect("in range")
}

struct Seeded {
    deployment_a: Uuid,
    deployment_b: Uuid,
}

/// Two flows (`etl`, `report`), pools `pool-a` (queues `default`, `gpu`) and `pool-b`
/// (`default`), deployments A (etl, pool-a/default) and B (report, pool-b/default), and runs in
/// the two hours from 00:00:
///
/// | run | flow   | deployment | queue        | state     | expected | started | run time | task (expected, state, run time) |
/// |-----|--------|------------|--------------|-----------|----------|---------|----------|-----------------------------------|
/// | r1  | etl    | A          | pool-a/default | COMPLETED | 00:10  | 00:11   | 30 s     | `load` 00:12 COMPLETED 3 s        |
/// | r2  | etl    | —          | pool-a/gpu   | FAILED    | 01:10    | 01:10   | 10 s     | `train` 01:12 FAILED 2 s          |
/// | r3  | report | B          | pool-b/default | COMPLETED | 00:20  | 00:20   | 5.5 s    | `load` 00:25 COMPLETED 1 s        |
/// | r4  | report | —          | —            | SCHEDULED | 01:20    | —       | 0        | —                                  |
async fn seed(tx: &mut Conn<'_>) -> Result<Seeded, Error> {
    let etl = tx.create_flow(NewFlow::new("etl")).await?.row;
    let report = tx.create_flow(NewFlow::new("report")).await?.row;
    let pool_a = tx.create_work_pool(NewWorkPool::new("pool-a", "process")).await?;
    let pool_b = tx.create_work_pool(NewWorkPool::new("pool-b", "process")).await?;
    let gpu = tx.create_work_queue(NewWorkQueue::new("gpu", pool_a.id)).await?;
    let (qa, qb) = (pool_a.default_queue_id.expect("default"), pool_b.default_queue_id.expect("default"));
    let mut d = NewDeployment::new("a", etl.id);
    d.work_queue_id = Some(qa);
    let deployment_a = tx.upsert_deployment(d, vec![]).await?.row.id;
    let mut d = NewDeployment::new("b", report.id);
    d.work_queue_id = Some(qb);
    let deployment_b = tx.upsert_deployment(d, vec![]).await?.row.id;

    struct Run<'a> {
        flow: Uuid,
        deployment: Option<Uuid>,
        queue: Option<Uuid>,
        state: StateType,
        expected: i64,
        started: Option<i64>,
        run_us: i64,
        task: Option<(&'a str, i64, StateType, i64)>,
    }
    let runs = [
        Run { flow: etl.id, deployment: Some(deployment_a), queue: Some(qa), state: StateType::Completed, expected: 10, started: Some(11), run_us: 30_000_000, task: Some(("load", 12, StateType::Completed, 3_000_000)) },
        Run { flow: etl.id, deployment: None, queue: Some(gpu.id), state: StateType::Failed, expected: 70, started: Some(70), run_us: 10_000_000, task: Some(("train", 72, StateType::Failed, 2_000_000)) },
        Run { flow: report.id, deployment: Some(deployment_b), queue: Some(qb), state: StateType::Completed, expected: 20, started: Some(20), run_us: 5_500_000, task: Some(("load", 25, StateType::Completed, 1_000_000)) },
        Run { flow: report.id, deployment: None, queue: None, state: StateType::Scheduled, expected: 80, started: None, run_us: 0, task: None },
    ];
    for r in runs {
        let name = |s: StateType| {
            let l = s.as_str();
            format!("{}{}", &l[..1], l[1..].to_lowercase())
        };
        let mut run = NewFlowRun::new(format!("run-{}", r.expected), r.flow);
        run.deployment_id = r.deployment;
        run.work_queue_id = r.queue;
        run.state_type = Some(r.state);
        run.state_name = Some(name(r.state));
        run.expected_start_time = Some(at(r.expected));
        run.start_time = r.started.map(at);
        run.total_run_time = TimeDelta::microseconds(r.run_us);
        let run = tx.insert(run).await?;
        if let Some((task_name, expected, state, run_us)) = r.task {
            let mut task = NewTaskRun::new(task_name, task_name, format!("{}", r.expected));
            task.flow_run_id = Some(run.id);
            task.state_type = Some(state);
            task.state_name = Some(name(state));
            task.expected_start_time = Some(at(expected));
            task.start_time = Some(at(expected));
            task.total_run_time = TimeDelta::microseconds(run_us);
            tx.insert(task).await?;
        }
    }
    Ok(Seeded { deployment_a, deployment_b })
}

/// `[bucket index, state name, count, run seconds, late seconds]` rows of a history, the sums
/// of `Scheduled` (late as of now) left out.
fn rows(buckets: &[HistoryBucket]) -> Vec<(usize, String, i64, Option<f64>)> {
    let mut out = Vec::new();
    for (i, b) in buckets.iter().enumerate() {
        for s in &b.states {
            let name = s.state_name.clone().unwrap_or_default();
            let run = s.sum_estimated_run_time.num_microseconds().expect("fits") as f64 / 1e6;
            let late = s.sum_estimated_lateness.num_microseconds().expect("fits") as f64 / 1e6;
            let sums = (name != "Scheduled").then_some(run + 1000.0 * late);
            out.push((i, name, s.count_runs, sums));
        }
    }
    out
}

async fn history_takes_every_filter_kind(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    let seeded = db.transaction(TxMode::Write, async |tx| seed(tx).await).await?;
    let window = json!({"history_start": "2026-01-01T00:00:00Z", "history_end": "2026-01-01T02:00:00Z", "history_interval_seconds": 3600});
    let with = |extra: Value| -> Value {
        let mut body = window.clone();
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let flow_history = async |extra: Value| -> Result<Vec<(usize, String, i64, Option<f64>)>, Error> {
        let request = HistoryRead::parse(Endpoint::FlowRunsHistory, &with(extra))?;
        db.transaction(TxMode::Read, async |tx| Ok(rows(&read::flow_run_history(tx, &request).await?))).await
    };
    let c = |i: usize, name: &str, n: i64, sums: Option<f64>| (i, name.to_owned(), n, sums);
    // Sums: run seconds + 1000 × late seconds (r1 started a minute late).
    assert_eq!(
        flow_history(json!({})).await?,
        [c(0, "Completed", 2, Some(35.5 + 60_000.0)), c(1, "Failed", 1, Some(10.0)), c(1, "Scheduled", 1, None)],
        "every run, summed to the microsecond"
    );
    assert_eq!(flow_history(json!({"flows": {"name": {"any_": ["etl"]}}})).await?, [c(0, "Completed", 1, Some(30.0 + 60_000.0)), c(1, "Failed", 1, Some(10.0))]);
    assert_eq!(flow_history(json!({"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}})).await?, [c(0, "Completed", 2, Some(35.5 + 60_000.0))]);
    assert_eq!(flow_history(json!({"task_runs": {"name": {"any_": ["train"]}}})).await?, [c(1, "Failed", 1, Some(10.0))]);
    assert_eq!(
        flow_history(json!({"deployments": {"id": {"any_": [seeded.deployment_b]}}})).await?,
        [c(0, "Completed", 1, Some(5.5))]
    );
    assert_eq!(
        flow_history(json!({"work_pools": {"name": {"any_": ["pool-a"]}}})).await?,
        [c(0, "Completed", 1, Some(30.0 + 60_000.0)), c(1, "Failed", 1, Some(10.0))],
        "runs of any queue of the pool"
    );
    assert_eq!(flow_history(json!({"work_queues": {"name": {"any_": ["gpu"]}}})).await?, [c(1, "Failed", 1, Some(10.0))]);

    let task_history = async |extra: Value| -> Result<Vec<(usize, String, i64, Option<f64>)>, Error> {
        let request = HistoryRead::parse(Endpoint::TaskRunsHistory, &with(extra))?;
        db.transaction(TxMode::Read, async |tx| Ok(rows(&read::task_run_history(tx, &request).await?))).await
    };
    assert_eq!(task_history(json!({})).await?, [c(0, "Completed", 2, Some(4.0)), c(1, "Failed", 1, Some(2.0))]);
    assert_eq!(task_history(json!({"flows": {"name": {"any_": ["report"]}}})).await?, [c(0, "Completed", 1, Some(1.0))]);
    assert_eq!(
        task_history(json!({"deployments": {"id": {"any_": [seeded.deployment_a]}}})).await?,
        [c(0, "Completed", 1, Some(3.0))]
    );
    assert_eq!(task_history(json!({"flow_runs": {"state": {"type": {"any_": ["FAILED"]}}}})).await?, [c(1, "Failed", 1, Some(2.0))]);
    assert_eq!(task_history(json!({"task_runs": {"name": {"like_": "LOA"}}})).await?, [c(0, "Completed", 2, Some(4.0))]);

    // The query components answer the same (Prefect's `db.queries` view of it).
    let request = HistoryRead::parse(Endpoint::FlowRunsHistory, &with(json!({"work_pools": {"name": {"any_": ["pool-b"]}}})))?;
    let via_components = db.transaction(TxMode::Read, async |tx| Ok(rows(&db.queries().flow_run_history(tx, &request).await?))).await?;
    assert_eq!(via_components, [c(0, "Completed", 1, Some(5.5))]);
    Ok(())
}

async fn keyset_pages_return_each_run_once_while_runs_arrive(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    let (deployment, originals) = db
        .transaction(TxMode::Write, async |tx| {
            let flow = tx.create_flow(NewFlow::new("etl")).await?.row;
            let deployment = tx.upsert_deployment(NewDeployment::new("d", flow.id), vec![]).await?.row;
            let mut runs = Vec::new();
            for i in 0..53 {
                let mut r = NewFlowRun::new(format!("r{i}"), flow.id);
                r.deployment_id = Some(deployment.id);
                // Pairs share a time (ties broken by id); three runs have none (they come last).
                r.expected_start_time = (i < 50).then(|| at(i / 2));
                runs.push(r);
            }
            let other = tx.insert(NewFlowRun::new("other deployment", flow.id)).await?;
            let _ = other;
            Ok((deployment.id, tx.insert_many_ids(runs).await?))
        })
        .await?;
    let body = json!({"deployments": {"id": {"any_": [deployment]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 7});
    let request: Read<FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &body)?;
    let mut seen: Vec<FlowRun> = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = db.transaction(TxMode::Read, async |tx| Ok(read::flow_runs_page(tx, &request, cursor.as_ref()).await?)).await?;
        pages += 1;
        seen.extend(page.rows);
        let Some(next) = page.next else { break };
        cursor = Some(next);
        // Runs arrive between pages: one before the page just read, one far after.
        let flow_id = seen[0].flow_id;
        db.transaction(TxMode::Write, async |tx| {
            for minutes in [-5, 10_000 + pages] {
                let mut r = NewFlowRun::new(format!("late-{pages}-{minutes}"), flow_id);
                r.deployment_id = Some(deployment);
                r.expected_start_time = Some(at(minutes));
                tx.insert(r).await?;
            }
            Ok(())
        })
        .await?;
        assert!(pages < 100, "the walk ends");
    }
    let ids: Vec<Uuid> = seen.iter().map(|r| r.id).collect();
    let distinct: std::collections::HashSet<Uuid> = ids.iter().copied().collect();
    assert_eq!(distinct.len(), ids.len(), "no run is returned twice");
    for id in &originals {
        assert_eq!(ids.iter().filter(|x| *x == id).count(), 1, "every run present at the start is returned once");
    }
    // In order: by expected start (NULLs last), then id.
    let key = |r: &FlowRun| (r.expected_start_time.is_none(), r.expected_start_time, r.id);
    assert!(seen.windows(2).all(|w| key(&w[0]) < key(&w[1])), "pages follow the sort");
    assert!(seen.iter().all(|r| r.deployment_id == Some(deployment)), "the filter holds on every page");
    assert!(seen.iter().any(|r| r.name.starts_with("late-") && r.expected_start_time > Some(at(100))), "runs after the cursor are reached");

    // Logs page the same way, by timestamp.
    let logs: Vec<NewLog> = (0..25).map(|i| NewLog::new("l", 20, format!("m{i}"), at(i / 3))).collect();
    db.transaction(TxMode::Write, async |tx| tx.create_logs(logs).await).await?;
    let request: Read<LogSort> = Read::parse(Endpoint::LogsFilter, &json!({"limit": 4}))?;
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        let page = db.transaction(TxMode::Read, async |tx| Ok(read::logs_page(tx, &request, cursor.as_ref()).await?)).await?;
        all.extend(page.rows.into_iter().map(|l| (l.timestamp, l.id)));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(all.len(), 25);
    assert!(all.windows(2).all(|w| w[0] < w[1]));
    Ok(())
}

async fn refused_bodies_are_invalid_input(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    let err = Read::<FlowRunSort>::parse(Endpoint::FlowRunsFilter, &json!({"sort": "START_TIME", "flow_runs": {"nope": 1}}))
        .map_err(Error::from)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(matches!(&err, Error::InvalidInput { field, reason, .. } if field == "body.flow_runs.nope" && reason.contains("body.sort (enum)")), "{err:?}");
    let err = Read::<FlowRunSort>::parse(Endpoint::FlowRunsFilter, &json!({"limit": 500})).map_err(Error::from).unwrap_err();
    assert!(err.to_string().contains("Invalid limit: must be less than or equal to 200."), "{err}");
    // An unknown pool is not found.
    let request = Read::parse(Endpoint::WorkPoolQueuesFilter, &json!({}))?;
    let err = db.transaction(TxMode::Read, async |tx| Ok(read::work_pool_queues(tx, "no-such-pool", &request).await?)).await.unwrap_err();
    assert!(matches!(&err, Error::NotFound { table: "work_pool", key } if key == "no-such-pool"), "{err:?}");
    Ok(())
}

conformance!(history_takes_every_filter_kind, keyset_pages_return_each_run_once_while_runs_arrive, refused_bodies_are_invalid_input);
