//! The legacy `get_scheduled_flow_runs_from_work_queues` on both dialects, same seeded data.
//! Expectations are worked out by hand from the seed described on [`seed`].


use crate::common::{BoxError, S, flow, migrated, named_run, pool, queue, t};
use prefect_db_config::{Conn, TxMode};
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_orm::types::StateType::{Cancelling, Pending, Running, Scheduled};
use prefect_query_components::{QueryComponents, QueryError, WorkQueuesPoll};
use std::collections::HashMap;
use uuid::Uuid;

conformance!(legacy_poll);

/// Queues: P1/"default" (no limit), P2/"default" (limit 3), P1/"fast" (limit 1), P1/"paused"
/// (paused), P1/"slow" (no limit). Runs belong to queues by name:
/// - "default": RUNNING and CANCELLING runs (2 slots taken in *both* default queues, so P2's
///   has 1 free), SCHEDULED `d1` @1s, `d2` @2s, `d3` @4s.
/// - "fast": a PENDING run (full), SCHEDULED `f1` @0s.
/// - "paused": SCHEDULED `p1` @0s. "slow": SCHEDULED `s1` @3s, `s2` @5s. "nowhere": `n1` @0s.
async fn seed(
    conn: &mut Conn<'_>,
) -> Result<(HashMap<Uuid, &'static str>, HashMap<&'static str, Uuid>), BoxError> {
    let f = flow(conn, "f").await?;
    let p1 = pool(conn, "P1", None, false).await?;
    let p2 = pool(conn, "P2", None, false).await?;
    let mut queues = HashMap::new();
    queues.insert(
        "default@P1",
        queue(conn, p1, "default", 1, None, false).await?,
    );
    queues.insert(
        "default@P2",
        queue(conn, p2, "default", 1, Some(3), false).await?,
    );
    queues.insert("fast", queue(conn, p1, "fast", 1, Some(1), false).await?);
    queues.insert("paused", queue(conn, p1, "paused", 1, None, true).await?);
    queues.insert("slow", queue(conn, p1, "slow", 1, None, false).await?);
    let mut runs = HashMap::new();
    for (name, q, state, at) in [
        ("d_running", "default", Running, 0),
        ("d_cancelling", "default", Cancelling, 0),
        ("d1", "default", Scheduled, S),
        ("d2", "default", Scheduled, 2 * S),
        ("d3", "default", Scheduled, 4 * S),
        ("f_pending", "fast", Pending, 0),
        ("f1", "fast", Scheduled, 0),
        ("p1", "paused", Scheduled, 0),
        ("s1", "slow", Scheduled, 3 * S),
        ("s2", "slow", Scheduled, 5 * S),
        ("n1", "nowhere", Scheduled, 0),
    ] {
        runs.insert(named_run(conn, f, q, name, state, t(at)).await?, name);
    }
    Ok((runs, queues))
}

async fn legacy_poll(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let (runs, queues) = seed(conn).await?;
    let queue_name: HashMap<Uuid, &str> = queues.iter().map(|(k, v)| (*v, *k)).collect();
    // d1 is offered by both "default" queues: ties are broken by queue id.
    let (first_default, second_default) = {
        let (a, b) = (queues["default@P1"], queues["default@P2"]);
        if a < b {
            ("default@P1", "default@P2")
        } else {
            ("default@P2", "default@P1")
        }
    };
    let qc = QueryComponents::new();
    // Each poll without `scheduled_before` is repeated with a bound after every seeded run
    // (the latest is s2 @5s): same answer, but SQLite then walks the time index per queue
    // instead of ranking every scheduled run, so the expectations hold for both shapes.
    let mut poll = async |args: WorkQueuesPoll| -> Result<Vec<(&'static str, &str)>, BoxError> {
        let got = qc
            .get_scheduled_flow_runs_from_work_queues(conn, &args)
            .await?;
        let named = |got: &[prefect_query_components::QueueFlowRun]| -> Vec<(&'static str, &str)> {
            got.iter()
                .map(|r| (runs[&r.flow_run.id], queue_name[&r.work_queue_id]))
                .collect()
        };
        if args.scheduled_before.is_none() {
            let bounded = WorkQueuesPoll {
                scheduled_before: Some(t(1000 * S)),
                ..args
            };
            let again = qc
                .get_scheduled_flow_runs_from_work_queues(conn, &bounded)
                .await?;
            assert_eq!(named(&again), named(&got), "bounded and unbounded polls differ");
        }
        Ok(named(&got))
    };

    // default@P1: d1, d2, d3; default@P2: one free slot, d1; slow: s1, s2; fast full, paused
    // skipped, "nowhere" has no queue.
    assert_eq!(
        poll(WorkQueuesPoll::default()).await?,
        [
            ("d1", first_default),
            ("d1", second_default),
            ("d2", "default@P1"),
            ("s1", "slow"),
            ("d3", "default@P1"),
            ("s2", "slow")
        ]
    );
    assert_eq!(
        poll(WorkQueuesPoll {
            limit_per_queue: Some(1),
            ..Default::default()
        })
        .await?,
        [
            ("d1", first_default),
            ("d1", second_default),
            ("s1", "slow")
        ]
    );
    assert_eq!(
        poll(WorkQueuesPoll {
            work_queue_ids: Some(vec![queues["default@P2"], queues["slow"]]),
            ..Default::default()
        })
        .await?,
        [("d1", "default@P2"), ("s1", "slow"), ("s2", "slow")]
    );
    // d3 is exactly at scheduled_before (included), s2 after it.
    assert_eq!(
        poll(WorkQueuesPoll {
            scheduled_before: Some(t(4 * S)),
            ..Default::default()
        })
        .await?,
        [
            ("d1", first_default),
            ("d1", second_default),
            ("d2", "default@P1"),
            ("s1", "slow"),
            ("d3", "default@P1")
        ]
    );
    assert!(
        poll(WorkQueuesPoll {
            work_queue_ids: Some(vec![queues["paused"], queues["fast"]]),
            ..Default::default()
        })
        .await?
        .is_empty()
    );
    assert!(
        poll(WorkQueuesPoll {
            limit_per_queue: Some(0),
            ..Default::default()
        })
        .await?
        .is_empty()
    );
    Ok(())
}

/// Two legacy pollers in open transactions never receive the same run (PostgreSQL's row
/// locks, `FOR UPDATE SKIP LOCKED` as in Prefect).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_legacy_pollers_get_disjoint_runs() -> TestResult {
    let (_db, p) = migrated(Dialect::Postgres).await?;
    let (runs, queues) = {
        let mut pc = p.get().await?;
        seed(&mut pc.conn()).await?
    };
    let one_each = WorkQueuesPoll {
        limit_per_queue: Some(1),
        ..Default::default()
    };
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let (p1, args) = (p.clone(), one_each.clone());
    let first = tokio::spawn(async move {
        let mut pc = p1.get().await?;
        let got = pc
            .conn()
            .transaction(TxMode::Write, async |tx| {
                let got = QueryComponents::new()
                    .get_scheduled_flow_runs_from_work_queues(tx, &args)
                    .await?;
                let _ = locked_tx.send(());
                // Keep the transaction (and its row locks) open until the second poller is done.
                let _ = done_rx.await;
                Ok::<_, QueryError>(got)
            })
            .await?;
        Ok::<_, BoxError>(got)
    });
    locked_rx.await?;
    let second = {
        let mut pc = p.get().await?;
        pc.conn()
            .transaction(TxMode::Write, async |tx| {
                QueryComponents::new()
                    .get_scheduled_flow_runs_from_work_queues(tx, &one_each)
                    .await
            })
            .await?
    };
    let _ = done_tx.send(());
    let first = first.await??;
    let queue_name: HashMap<Uuid, &str> = queues.iter().map(|(k, v)| (*v, *k)).collect();
    let named = |got: &[prefect_query_components::QueueFlowRun]| -> Vec<(&'static str, &str)> {
        let mut v: Vec<_> = got
            .iter()
            .map(|r| (runs[&r.flow_run.id], queue_name[&r.work_queue_id]))
            .collect();
        v.sort();
        v
    };
    // One run per queue. The first poller takes (and locks) d1 for both "default" queues
    // (default@P2 has one free slot) and s1 for "slow"; "fast" is full, "paused" skipped.
    assert_eq!(
        named(&first),
        [("d1", "default@P1"), ("d1", "default@P2"), ("s1", "slow")]
    );
    // The second skips the locked d1 and s1: d2 for both "default" queues, s2 for "slow".
    assert_eq!(
        named(&second),
        [("d2", "default@P1"), ("d2", "default@P2"), ("s2", "slow")]
    );
    Ok(())
}
