//! Timestamp intervals, bucket indexes and run history, on both dialects where the database is
//! involved. Expected buckets are worked out by hand from the seeded times.


use chrono::TimeDelta;
use crate::common::{S, flow, migrated, t};
use diesel_async::RunQueryDsl;
use prefect_db_config::dispatch;
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_orm::models::NewFlowRun;
use prefect_orm::schema::flow_run;
use prefect_orm::types::StateType;
use prefect_query_components::{
    QueryComponents, QueryError, RunHistoryState, RunHistoryTable, TimestampInterval,
    make_timestamp_intervals,
};

conformance!(
    bucket_index_is_exact_to_the_microsecond,
    run_history_counts_per_bucket_and_state
);

const MIN: i64 = 60 * S;

fn iv(a: i64, b: i64) -> TimestampInterval {
    TimestampInterval {
        interval_start: t(a),
        interval_end: t(b),
    }
}

#[test]
fn intervals_cover_the_range_and_keep_microseconds() -> TestResult {
    let minute = TimeDelta::minutes(1);
    assert_eq!(
        make_timestamp_intervals(t(0), t(3 * MIN), minute)?,
        [iv(0, MIN), iv(MIN, 2 * MIN), iv(2 * MIN, 3 * MIN)]
    );
    // One microsecond past a boundary opens one more interval.
    assert_eq!(
        make_timestamp_intervals(t(0), t(2 * MIN + 1), minute)?.len(),
        3
    );
    assert!(
        make_timestamp_intervals(t(0), t(0), minute)?.is_empty(),
        "empty range: no rows"
    );
    assert!(
        make_timestamp_intervals(t(MIN), t(0), minute)?.is_empty(),
        "reversed range: no rows"
    );
    // Microseconds are kept in the boundaries.
    assert_eq!(
        make_timestamp_intervals(t(7), t(7 + 2), TimeDelta::microseconds(1))?,
        [iv(7, 8), iv(8, 9)]
    );
    assert_eq!(
        make_timestamp_intervals(t(0), t(1000 * S), TimeDelta::seconds(1))?.len(),
        500,
        "at most 500"
    );
    assert!(matches!(
        make_timestamp_intervals(t(0), t(S), TimeDelta::zero()),
        Err(QueryError::InvalidArgument(_))
    ));
    Ok(())
}

async fn bucket_index_is_exact_to_the_microsecond(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let qc = QueryComponents::new();
    let minute = TimeDelta::minutes(1);
    // (timestamp offset, expected bucket). t(0) is 23:59:50, so t(MIN) is on the next day.
    for (at, expected) in [
        (0, 0),
        (MIN - 1, 0), // …:00:49.999999 stays in bucket 0 (Prefect's SQLite rounds it to 1)
        (MIN - 500, 0), // .9995 s before the boundary: rounding to ms would say 1
        (MIN, 1),
        (MIN + 1, 1),
        (499 * MIN + 1, 499),
        (-1, -1), // floor, not truncation
        (-MIN, -1),
        (-MIN - 1, -2),
    ] {
        assert_eq!(
            qc.timestamp_bucket_index(conn, t(at), t(0), minute).await?,
            expected,
            "offset {at} µs"
        );
    }
    // A start with microseconds and an odd interval: (t(1_000_003) - t(3)) / 0.5 s = 2.
    assert_eq!(
        qc.timestamp_bucket_index(conn, t(1_000_003), t(3), TimeDelta::milliseconds(500))
            .await?,
        2
    );
    assert_eq!(
        qc.timestamp_bucket_index(conn, t(1_000_002), t(3), TimeDelta::milliseconds(500))
            .await?,
        1
    );
    Ok(())
}

async fn run_history_counts_per_bucket_and_state(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let f = flow(conn, "f").await?;
    for (name, state, label, at) in [
        ("a", StateType::Completed, "Completed", 0),
        ("b", StateType::Completed, "Completed", MIN - 1),
        ("c", StateType::Failed, "Failed", MIN - 1),
        ("d", StateType::Scheduled, "Late", MIN),
        ("e", StateType::Running, "Running", 3 * MIN - 1),
        ("f", StateType::Running, "Running", 3 * MIN),
        ("g", StateType::Running, "Running", -1),
    ] {
        let mut row = NewFlowRun::new(name, f);
        row.state_type = Some(state);
        row.state_name = Some(label.to_owned());
        row.expected_start_time = Some(t(at));
        dispatch!(conn, |c| diesel::insert_into(flow_run::table)
            .values(row)
            .execute(c)
            .await)?;
    }
    let st = |ty: &str, name: &str, count: i64| RunHistoryState {
        state_type: Some(ty.to_owned()),
        state_name: Some(name.to_owned()),
        count,
    };
    let qc = QueryComponents::new();
    // end = 2.5 min: three intervals, so runs up to (not including) t(3 min) count; "f" is on
    // that end and "g" before the start.
    let history = qc
        .run_history(
            conn,
            RunHistoryTable::FlowRuns,
            t(0),
            t(5 * MIN / 2),
            TimeDelta::minutes(1),
        )
        .await?;
    let got: Vec<(TimestampInterval, Vec<RunHistoryState>)> = history
        .into_iter()
        .map(|b| (b.interval, b.states))
        .collect();
    assert_eq!(
        got,
        [
            (
                iv(0, MIN),
                vec![st("COMPLETED", "Completed", 2), st("FAILED", "Failed", 1)]
            ),
            (iv(MIN, 2 * MIN), vec![st("SCHEDULED", "Late", 1)]),
            (iv(2 * MIN, 3 * MIN), vec![st("RUNNING", "Running", 1)]),
        ]
    );
    // An empty bucket is still returned.
    let history = qc
        .run_history(
            conn,
            RunHistoryTable::FlowRuns,
            t(-2 * MIN),
            t(0),
            TimeDelta::minutes(1),
        )
        .await?;
    assert_eq!(history.len(), 2);
    assert!(history[0].states.is_empty());
    assert_eq!(
        history[1].states,
        [st("RUNNING", "Running", 1)],
        "g at t(-1 µs)"
    );
    assert!(
        qc.run_history(
            conn,
            RunHistoryTable::TaskRuns,
            t(0),
            t(MIN),
            TimeDelta::minutes(1)
        )
        .await?[0]
            .states
            .is_empty()
    );
    Ok(())
}

#[test]
fn the_time_origin_is_the_documented_one() {
    assert_eq!(t(0).to_rfc3339(), "2026-01-09T23:59:50+00:00");
}
