//! The scale dataset at a tiny size on both dialects: the answers of W7–W11 through the read
//! API are checked against plain SQL written here (or against each other: the keyset page after
//! the row before offset N is the page at offset N), and every scale read runs through the
//! layer and the floor.

use chrono::TimeDelta;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use prefect_db_bench::scale::{self, requests};
use prefect_db_bench::{Fixture, Impl, Sizes, Workload};
use prefect_db_config::dispatch;
use prefect_db_interface::prelude::*;
use prefect_db_test::{Dialect, TestResult, conformance};

conformance!(scale_reads);

#[derive(QueryableByName)]
struct N {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = Text)]
    id: String,
}

async fn plain_count(db: &Database, sql: String) -> Result<i64, Box<dyn std::error::Error + Send + Sync>> {
    let mut pooled = db.connection().await?;
    let mut conn = pooled.conn();
    let c = &mut conn;
    let rows: Vec<N> = dispatch!(c, |c| diesel::sql_query(sql.clone()).load(c).await)?;
    Ok(rows.iter().next().map_or(-1, |r| r.n))
}

async fn plain_ids(db: &Database, sql: String) -> Result<Vec<Uuid>, Box<dyn std::error::Error + Send + Sync>> {
    let mut pooled = db.connection().await?;
    let mut conn = pooled.conn();
    let c = &mut conn;
    let rows: Vec<Id> = dispatch!(c, |c| diesel::sql_query(sql.clone()).load(c).await)?;
    Ok(rows.iter().map(|r| Uuid::parse_str(&r.id)).collect::<Result<_, _>>()?)
}

/// A timestamp literal comparable with the stored column on both dialects.
fn lit(dialect: Dialect, t: DateTime<Utc>) -> String {
    match dialect {
        Dialect::Postgres => format!("TIMESTAMPTZ '{}'", t.format("%Y-%m-%d %H:%M:%S%.6f+00")),
        Dialect::Sqlite => format!("'{}'", prefect_db_bench::sqlite_time(&t)),
    }
}

fn id_text(dialect: Dialect, col: &str) -> String {
    match dialect {
        Dialect::Postgres => format!("CAST({col} AS TEXT)"),
        Dialect::Sqlite => col.to_owned(),
    }
}

async fn scale_reads(dialect: Dialect) -> TestResult {
    let dir = tempfile::tempdir()?;
    let sizes = Sizes::tiny(20); // 800 runs, W10 at offset 100
    let fx = prefect_db_bench::prepare_scale(dialect, 1, sizes, dir.path()).await?;
    let outcome = Box::pin(check(dialect, &fx)).await;
    prefect_db_bench::drop_fixture(&fx).await?;
    outcome
}

async fn check(dialect: Dialect, fx: &Fixture) -> TestResult {
    let db = prefect_db_interface::database_for(&fx.config()?)?;
    let now = fx.now()?;
    let runs = i64::try_from(fx.sizes.scale_runs)?;
    assert_eq!(plain_count(&db, "SELECT count(*) AS n FROM flow_run".into()).await?, runs);
    assert_eq!(plain_count(&db, "SELECT count(*) AS n FROM task_run".into()).await?, runs / 2);
    assert_eq!(plain_count(&db, "SELECT count(*) AS n FROM log".into()).await?, 2 * runs + scale::TARGET_LOGS);

    // W7/W8: terminal runs whose start (or expected start) is in the last day, newest first.
    let day_ago = lit(dialect, now - TimeDelta::days(1));
    let terminal = "'COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED'";
    let filter = format!("COALESCE(start_time, expected_start_time) >= {day_ago} AND state_type IN ({terminal})");
    let expected_count = plain_count(&db, format!("SELECT count(*) AS n FROM flow_run WHERE {filter}")).await?;
    // 800 runs over 30 days: about 27 in the last day, 95% of them terminal.
    assert!((15..=40).contains(&expected_count), "{expected_count} runs in the last day");
    let expected_ids = plain_ids(
        &db,
        format!(
            "SELECT {} AS id FROM flow_run WHERE {filter} ORDER BY COALESCE(start_time, expected_start_time) DESC, id DESC LIMIT 200",
            id_text(dialect, "id")
        ),
    )
    .await?;
    let w7: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &requests::w7(now))?;
    let got: Vec<Uuid> = db.transaction(TxMode::Read, async |tx| Ok(read::flow_runs(tx, &w7).await?)).await?.iter().map(|r| r.id).collect();
    assert_eq!(got, expected_ids, "W7");
    let w8: Read<read::NoSort> = Read::parse(Endpoint::FlowRunsCount, &requests::w8(now))?;
    let count = db.transaction(TxMode::Read, async |tx| Ok(read::count_flow_runs(tx, &w8.filters).await?)).await?;
    assert_eq!(count, expected_count, "W8");

    // The same reads split by state type (see the read API's split module) in other shapes:
    // ascending, bounded above only, unbounded with runs that have no time at all (NULL keys sort
    // first descending, last ascending), deep offsets, and a count with both bounds and another
    // filter. Each answer is checked against plain SQL with the NULL placement spelled out.
    let mut timeless = Vec::new();
    for (k, state) in [StateType::Completed, StateType::Failed, StateType::Completed].into_iter().enumerate() {
        let mut run = NewFlowRun::new(format!("timeless-{k}"), fx.flow()?);
        run.state_type = Some(state);
        run.state_name = Some(state.as_str().to_owned());
        timeless.push(run);
    }
    db.transaction(TxMode::Write, async |tx| Ok(tx.insert_many(timeless).await?)).await?;
    let ten_days_ago = now - TimeDelta::days(10);
    let iso = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
    let key = "COALESCE(start_time, expected_start_time)";
    let variants: Vec<(serde_json::Value, &str, String, i64, i64)> = vec![
        (
            serde_json::json!({"start_time": {"after_": iso(now - TimeDelta::days(2))}, "state": {"type": {"any_": ["FAILED", "COMPLETED"]}}}),
            "START_TIME_ASC",
            format!("{key} >= {} AND state_type IN ('FAILED', 'COMPLETED')", lit(dialect, now - TimeDelta::days(2))),
            7,
            3,
        ),
        (
            serde_json::json!({"start_time": {"before_": iso(ten_days_ago)}, "state": {"type": {"any_": ["COMPLETED", "CRASHED", "CANCELLED"]}}}),
            "START_TIME_DESC",
            format!("{key} <= {} AND state_type IN ('COMPLETED', 'CRASHED', 'CANCELLED')", lit(dialect, ten_days_ago)),
            10,
            5,
        ),
        (
            serde_json::json!({"state": {"type": {"any_": ["COMPLETED", "FAILED", "SCHEDULED"]}}}),
            "START_TIME_DESC",
            "state_type IN ('COMPLETED', 'FAILED', 'SCHEDULED')".to_owned(),
            20,
            0,
        ),
        (
            serde_json::json!({"state": {"type": {"any_": ["COMPLETED", "FAILED"]}}}),
            "START_TIME_ASC",
            "state_type IN ('COMPLETED', 'FAILED')".to_owned(),
            20,
            i64::try_from(fx.sizes.scale_runs)? * 89 / 100 - 10,
        ),
    ];
    for (filter, sort, condition, limit, offset) in variants {
        let body = serde_json::json!({"flow_runs": filter, "sort": sort, "limit": limit, "offset": offset});
        let request: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &body)?;
        let got: Vec<Uuid> = db.transaction(TxMode::Read, async |tx| Ok(read::flow_runs(tx, &request).await?)).await?.iter().map(|r| r.id).collect();
        let (nulls, dir) = if sort.ends_with("ASC") { ("1 ELSE 0", "ASC") } else { ("0 ELSE 1", "DESC") };
        let expected = plain_ids(
            &db,
            format!(
                "SELECT {} AS id FROM flow_run WHERE {condition} ORDER BY CASE WHEN {key} IS NULL THEN {nulls} END, {key} {dir}, id {dir} LIMIT {limit} OFFSET {offset}",
                id_text(dialect, "id")
            ),
        )
        .await?;
        assert!(!expected.is_empty(), "{body}: the variant selects nothing");
        assert_eq!(got, expected, "{body}");
    }
    let count_body = serde_json::json!({"flow_runs": {
        "start_time": {"after_": iso(now - TimeDelta::days(5)), "before_": iso(now - TimeDelta::days(1))},
        "state": {"type": {"any_": ["COMPLETED", "FAILED", "RUNNING"]}},
        "deployment_id": {"any_": [fx.deployment_ids[0]]},
    }});
    let request: Read<read::NoSort> = Read::parse(Endpoint::FlowRunsCount, &count_body)?;
    let got = db.transaction(TxMode::Read, async |tx| Ok(read::count_flow_runs(tx, &request.filters).await?)).await?;
    let busy = match dialect {
        Dialect::Postgres => format!("'{}'", fx.deployment_ids[0]),
        Dialect::Sqlite => format!("'{}'", fx.deployment_ids[0].hyphenated()),
    };
    let expected = plain_count(
        &db,
        format!(
            "SELECT count(*) AS n FROM flow_run WHERE {key} >= {} AND {key} <= {} AND state_type IN ('COMPLETED', 'FAILED', 'RUNNING') AND deployment_id = {busy}",
            lit(dialect, now - TimeDelta::days(5)),
            lit(dialect, now - TimeDelta::days(1))
        ),
    )
    .await?;
    assert!(expected > 0);
    assert_eq!(got, expected, "{count_body}");

    // W9: every run of the deployment expected in the last day is in one bucket.
    let typical = fx.deployment_ids[1];
    let w9 = HistoryRead::parse(Endpoint::FlowRunsHistory, &requests::w9(now, typical))?;
    let buckets = db.transaction(TxMode::Read, async |tx| Ok(read::flow_run_history(tx, &w9).await?)).await?;
    assert_eq!(buckets.len(), 24);
    let in_buckets: i64 = buckets.iter().flat_map(|b| &b.states).map(|s| s.count_runs).sum();
    let dep = match dialect {
        Dialect::Postgres => format!("'{typical}'"),
        Dialect::Sqlite => format!("'{}'", typical.hyphenated()),
    };
    let expected_w9 = plain_count(
        &db,
        format!(
            "SELECT count(*) AS n FROM flow_run WHERE deployment_id = {dep} AND expected_start_time >= {} AND expected_start_time < {}",
            lit(dialect, w9.start),
            lit(dialect, buckets.last().map_or(w9.end, |b| b.interval_end))
        ),
    )
    .await?;
    assert_eq!(in_buckets, expected_w9, "W9");

    // W10/W10K: the page at the offset, and the same page after the cursor of the row before it.
    let busy = fx.deployment_ids[0];
    let w10: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &requests::w10(busy, fx.sizes.w10_offset))?;
    let offset_page: Vec<Uuid> = db.transaction(TxMode::Read, async |tx| Ok(read::flow_runs(tx, &w10).await?)).await?.iter().map(|r| r.id).collect();
    // Half of the runs are the busy deployment's: 400, so the page at 100 is full (200 rows).
    assert_eq!(offset_page.len(), 200);
    let cursor = prefect_db_bench::layer::w10_cursor(fx, &db).await?;
    let w10k: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &requests::w10(busy, 0))?;
    let keyset = db.transaction(TxMode::Read, async |tx| Ok(read::flow_runs_page(tx, &w10k, Some(&cursor)).await?)).await?;
    let keyset_page: Vec<Uuid> = keyset.rows.iter().map(|r| r.id).collect();
    assert_eq!(keyset_page, offset_page, "W10K");

    // W11: the first 200 of the target run's 1,002 logs, oldest first.
    let target = fx.flow_run_id.ok_or("no target run")?;
    let w11: Read<read::LogSort> = Read::parse(Endpoint::LogsFilter, &requests::w11(target))?;
    let logs = db.transaction(TxMode::Read, async |tx| Ok(read::logs(tx, &w11).await?)).await?;
    assert_eq!(logs.len(), 200);
    assert!(logs.iter().all(|l| l.flow_run_id == Some(target)));
    assert!(logs.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));

    // Every scale read runs through both sides.
    for w in Workload::SCALE {
        for imp in [Impl::Layer, Impl::Floor] {
            let m = prefect_db_bench::run(&fx.for_workload(w), imp).await.map_err(|e| format!("{} {}: {e:#}", w.code(), imp.name()))?;
            assert_eq!(m.n, fx.sizes.ops(w));
        }
    }
    Ok(())
}
