//! `get_scheduled_flow_runs_from_work_pool` on both dialects against the same seeded data.
//!
//! Every expectation below is worked out by hand from the seed (see [`Seed`]), not copied from
//! the code's output.


use crate::common::{BoxError, S, flow, migrated, pool, queue, run, run_with, t};
use prefect_db_config::{Conn, TxMode};
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_orm::types::StateType::{Cancelling, Completed, Pending, Running, Scheduled};
use prefect_query_components::{QueryComponents, QueryError, WorkPoolPoll};
use std::collections::HashMap;
use uuid::Uuid;

conformance!(
    default_poll_orders_by_time_and_respects_slots_and_pauses,
    queue_priorities_order_across_pools,
    limits,
    pool_and_queue_filters,
    scheduled_boundaries_are_inclusive,
    returns_pool_queue_and_typed_run,
    ties_are_broken_by_run_id,
);

/// The seed (times relative to `t(0)` = 2026-01-09 23:59:50, so `t(10*S)` is the next day):
///
/// Pool A (no limit):
/// - A1 priority 1, no limit: `a1_1` @1s, `a1_2` @3s, `a1_3` @5s, `a1_late` @100s (all SCHEDULED);
///   `a1_retry` @0s SCHEDULED but an in-process retry (never polled); `a1_done` @0s COMPLETED.
/// - A2 priority 2, limit 2: one RUNNING and one CANCELLING run (CANCELLING takes no slot here),
///   so 1 slot free; SCHEDULED `a2_1` @0.000009s and `a2_2` @0.1s: only `a2_1` fits. (Written
///   without zero padding, `.9` would sort after `.1`, picking `a2_2`.)
/// - A3 priority 0, paused: `a3_1` @0s SCHEDULED (never polled).
///
/// Pool B (limit 3):
/// - B1 priority 5, no limit: `b1_1` @2s, `b1_2` @4s, `b1_3` @6s.
/// - B2 priority 1, paused: one PENDING run (takes a pool slot even though B2 is paused) and
///   `b2_1` @0s SCHEDULED (never polled: paused queue).
/// - B3 priority 2, limit 1: one RUNNING run, so full; `b3_1` @1.5s SCHEDULED (never polled).
///
///   Pool B: 2 active runs (B2's PENDING, B3's RUNNING) of 3, so 1 slot free.
///
/// Pool C (paused): C1 with `c1_1` @0s. Pool D (limit 1): D1 with one RUNNING run, `d1_1` @0s.
struct Seed {
    ids: HashMap<Uuid, &'static str>,
    by_name: HashMap<&'static str, Uuid>,
    pools: HashMap<&'static str, Uuid>,
    queues: HashMap<&'static str, Uuid>,
}

impl Seed {
    fn names(&self, runs: &[prefect_query_components::WorkerFlowRun]) -> Vec<&'static str> {
        runs.iter()
            .map(|r| self.ids.get(&r.flow_run.id).copied().unwrap_or("<unknown>"))
            .collect()
    }
}

async fn seed(conn: &mut Conn<'_>) -> Result<Seed, BoxError> {
    let f = flow(conn, "f").await?;
    let mut s = Seed {
        ids: HashMap::new(),
        by_name: HashMap::new(),
        pools: HashMap::new(),
        queues: HashMap::new(),
    };
    let a = pool(conn, "A", None, false).await?;
    let b = pool(conn, "B", Some(3), false).await?;
    let c = pool(conn, "C", None, true).await?;
    let d = pool(conn, "D", Some(1), false).await?;
    s.pools.extend([("A", a), ("B", b), ("C", c), ("D", d)]);
    let a1 = queue(conn, a, "A1", 1, None, false).await?;
    let a2 = queue(conn, a, "A2", 2, Some(2), false).await?;
    let a3 = queue(conn, a, "A3", 0, None, true).await?;
    let b1 = queue(conn, b, "B1", 5, None, false).await?;
    let b2 = queue(conn, b, "B2", 1, None, true).await?;
    let b3 = queue(conn, b, "B3", 2, Some(1), false).await?;
    let c1 = queue(conn, c, "C1", 1, None, false).await?;
    let d1 = queue(conn, d, "D1", 1, None, false).await?;
    s.queues.extend([
        ("A1", a1),
        ("A2", a2),
        ("A3", a3),
        ("B1", b1),
        ("B2", b2),
        ("B3", b3),
        ("C1", c1),
        ("D1", d1),
    ]);
    let runs: Vec<(&'static str, Uuid, prefect_orm::types::StateType, i64)> = vec![
        ("a1_1", a1, Scheduled, S),
        ("a1_2", a1, Scheduled, 3 * S),
        ("a1_3", a1, Scheduled, 5 * S),
        ("a1_late", a1, Scheduled, 100 * S),
        ("a1_done", a1, Completed, 0),
        ("a2_running", a2, Running, 0),
        ("a2_cancelling", a2, Cancelling, 0),
        ("a2_1", a2, Scheduled, 9),
        ("a2_2", a2, Scheduled, S / 10),
        ("a3_1", a3, Scheduled, 0),
        ("b1_1", b1, Scheduled, 2 * S),
        ("b1_2", b1, Scheduled, 4 * S),
        ("b1_3", b1, Scheduled, 6 * S),
        ("b2_pending", b2, Pending, 0),
        ("b2_1", b2, Scheduled, 0),
        ("b3_running", b3, Running, 0),
        ("b3_1", b3, Scheduled, 3 * S / 2),
        ("c1_1", c1, Scheduled, 0),
        ("d1_running", d1, Running, 0),
        ("d1_1", d1, Scheduled, 0),
    ];
    for (name, q, state, at) in runs {
        let id = run(conn, f, q, name, state, t(at)).await?;
        s.ids.insert(id, name);
        s.by_name.insert(name, id);
    }
    let retry = run_with(
        conn,
        f,
        a1,
        "a1_retry",
        Scheduled,
        t(0),
        serde_json::json!({"retry_type": "in_process"}),
    )
    .await?;
    s.ids.insert(retry, "a1_retry");
    s.by_name.insert("a1_retry", retry);
    Ok(s)
}

/// Polls, and when `args` has no `scheduled_before`, polls again with a bound after every
/// seeded run (the latest is `a1_late` @100s) and checks that both answers are the same: the
/// bound changes nothing in the answer, but switches SQLite from ranking every scheduled run
/// to walking the time index per queue, so every expectation below holds for both shapes.
async fn poll(
    conn: &mut Conn<'_>,
    args: WorkPoolPoll,
) -> Result<Vec<prefect_query_components::WorkerFlowRun>, QueryError> {
    let qc = QueryComponents::new();
    let runs = qc.get_scheduled_flow_runs_from_work_pool(conn, &args).await?;
    if args.scheduled_before.is_none() {
        let bounded = WorkPoolPoll {
            scheduled_before: Some(t(1000 * S)),
            ..args
        };
        let again = qc.get_scheduled_flow_runs_from_work_pool(conn, &bounded).await?;
        let ids = |r: &[prefect_query_components::WorkerFlowRun]| {
            r.iter()
                .map(|r| (r.work_pool_id, r.work_queue_id, r.flow_run.id))
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&again), ids(&runs), "bounded and unbounded polls differ");
    }
    Ok(runs)
}

async fn default_poll_orders_by_time_and_respects_slots_and_pauses(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let s = seed(conn).await?;
    let runs = poll(conn, WorkPoolPoll::default()).await?;
    // A: a2_1 (A2's one free slot), a1_1, a1_2, a1_3, a1_late; B: b1_1 (one pool slot);
    // C paused, D full, A3/B2 paused, B3 full, a1_retry in-process. Ordered by time.
    assert_eq!(
        s.names(&runs),
        ["a2_1", "a1_1", "b1_1", "a1_2", "a1_3", "a1_late"]
    );
    Ok(())
}

async fn queue_priorities_order_across_pools(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let s = seed(conn).await?;
    let runs = poll(
        conn,
        WorkPoolPoll {
            respect_queue_priorities: true,
            ..Default::default()
        },
    )
    .await?;
    // Priority 1 (A1) by time, then priority 2 (A2), then priority 5 (B1). Prefect's SQLite
    // template would put b1_1 second (rank 1 within pool B).
    assert_eq!(
        s.names(&runs),
        ["a1_1", "a1_2", "a1_3", "a1_late", "a2_1", "b1_1"]
    );
    // With a pool limit, priorities also decide which runs of a pool fit: pool B has one slot,
    // and B1 is its only pollable queue, so still b1_1.
    let only_b = poll(
        conn,
        WorkPoolPoll {
            respect_queue_priorities: true,
            work_pool_ids: Some(vec![s.pools["B"]]),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&only_b), ["b1_1"]);
    Ok(())
}

async fn limits(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let s = seed(conn).await?;
    let r = poll(
        conn,
        WorkPoolPoll {
            limit: Some(2),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&r), ["a2_1", "a1_1"], "the first two by time");
    let r = poll(
        conn,
        WorkPoolPoll {
            worker_limit: Some(2),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        s.names(&r),
        ["a2_1", "a1_1", "b1_1"],
        "two of pool A (a2_1, a1_1), pool B's one"
    );
    let r = poll(
        conn,
        WorkPoolPoll {
            queue_limit: Some(1),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        s.names(&r),
        ["a2_1", "a1_1", "b1_1"],
        "one per queue: A2, A1, B1"
    );
    let r = poll(
        conn,
        WorkPoolPoll {
            limit: Some(0),
            ..Default::default()
        },
    )
    .await?;
    assert!(r.is_empty());
    let r = poll(
        conn,
        WorkPoolPoll {
            worker_limit: Some(1),
            respect_queue_priorities: true,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        s.names(&r),
        ["a1_1", "b1_1"],
        "one per pool: A's best priority (A1), B's only run"
    );
    Ok(())
}

async fn pool_and_queue_filters(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let s = seed(conn).await?;
    let r = poll(
        conn,
        WorkPoolPoll {
            work_pool_ids: Some(vec![s.pools["B"]]),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&r), ["b1_1"]);
    let r = poll(
        conn,
        WorkPoolPoll {
            work_queue_ids: Some(vec![s.queues["A1"]]),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&r), ["a1_1", "a1_2", "a1_3", "a1_late"]);
    // Filtering to B1 does not free pool B's slots taken by B2 and B3.
    let r = poll(
        conn,
        WorkPoolPoll {
            work_queue_ids: Some(vec![s.queues["B1"], s.queues["A2"]]),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&r), ["a2_1", "b1_1"]);
    let r = poll(
        conn,
        WorkPoolPoll {
            work_pool_ids: Some(vec![s.pools["C"], s.pools["D"]]),
            ..Default::default()
        },
    )
    .await?;
    assert!(r.is_empty(), "C is paused, D is full");
    let r = poll(
        conn,
        WorkPoolPoll {
            work_queue_ids: Some(vec![s.queues["A3"], s.queues["B2"], s.queues["B3"]]),
            ..Default::default()
        },
    )
    .await?;
    assert!(r.is_empty(), "A3 and B2 are paused, B3 is full");
    let r = poll(
        conn,
        WorkPoolPoll {
            work_pool_ids: Some(vec![]),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(r.len(), 6, "an empty list filters nothing, as in Prefect");
    Ok(())
}

async fn scheduled_boundaries_are_inclusive(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let s = seed(conn).await?;
    let r = poll(
        conn,
        WorkPoolPoll {
            scheduled_before: Some(t(3 * S)),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(
        s.names(&r),
        ["a2_1", "a1_1", "b1_1", "a1_2"],
        "a1_2 is exactly at scheduled_before"
    );
    let r = poll(
        conn,
        WorkPoolPoll {
            scheduled_after: Some(t(3 * S)),
            ..Default::default()
        },
    )
    .await?;
    // A1: a1_2 (exactly at the bound), a1_3, a1_late; A2: nothing after 3 s; B: one slot, b1_2.
    assert_eq!(s.names(&r), ["a1_2", "b1_2", "a1_3", "a1_late"]);
    let r = poll(
        conn,
        WorkPoolPoll {
            scheduled_after: Some(t(S)),
            scheduled_before: Some(t(5 * S)),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&r), ["a1_1", "b1_1", "a1_2", "a1_3"]);
    // One microsecond inside each bound excludes the runs on it.
    let r = poll(
        conn,
        WorkPoolPoll {
            scheduled_after: Some(t(S + 1)),
            scheduled_before: Some(t(5 * S - 1)),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&r), ["b1_1", "a1_2"]);
    // Microsecond bounds: after 0.000009 s includes a2_1; after 0.000010 s leaves A2 with a2_2.
    let r = poll(
        conn,
        WorkPoolPoll {
            work_queue_ids: Some(vec![s.queues["A2"]]),
            scheduled_after: Some(t(9)),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&r), ["a2_1"]);
    let r = poll(
        conn,
        WorkPoolPoll {
            work_queue_ids: Some(vec![s.queues["A2"]]),
            scheduled_after: Some(t(10)),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&r), ["a2_2"]);
    // a1_late is on the next day (2026-01-10 00:01:30): before 2026-01-10 00:00:00 leaves it out.
    let r = poll(
        conn,
        WorkPoolPoll {
            work_queue_ids: Some(vec![s.queues["A1"]]),
            scheduled_before: Some(t(10 * S)),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(s.names(&r), ["a1_1", "a1_2", "a1_3"]);
    Ok(())
}

async fn returns_pool_queue_and_typed_run(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let s = seed(conn).await?;
    let r = poll(
        conn,
        WorkPoolPoll {
            limit: Some(1),
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].work_pool_id, s.pools["A"]);
    assert_eq!(r[0].work_queue_id, s.queues["A2"]);
    assert_eq!(r[0].flow_run.id, s.by_name["a2_1"]);
    assert_eq!(r[0].flow_run.name, "a2_1");
    assert_eq!(r[0].flow_run.next_scheduled_start_time, Some(t(9)));
    assert_eq!(r[0].flow_run.state_type, Some(Scheduled));
    Ok(())
}

async fn ties_are_broken_by_run_id(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let f = flow(conn, "f").await?;
    let a = pool(conn, "A", None, false).await?;
    let q1 = queue(conn, a, "Q1", 1, None, false).await?;
    let q2 = queue(conn, a, "Q2", 1, None, false).await?;
    let mut ids = Vec::new();
    for (i, q) in [q1, q2, q1, q2, q1].into_iter().enumerate() {
        ids.push(run(conn, f, q, &format!("r{i}"), Scheduled, t(7 * S)).await?);
    }
    ids.sort(); // same time, same priority: run id order (UUID byte order = hyphenated text order)
    let r = poll(conn, WorkPoolPoll::default()).await?;
    assert_eq!(r.iter().map(|w| w.flow_run.id).collect::<Vec<_>>(), ids);
    let r = poll(
        conn,
        WorkPoolPoll {
            respect_queue_priorities: true,
            ..Default::default()
        },
    )
    .await?;
    assert_eq!(r.iter().map(|w| w.flow_run.id).collect::<Vec<_>>(), ids);
    Ok(())
}

/// Two pollers in open transactions never receive the same run (PostgreSQL's row locks).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_concurrent_pollers_get_disjoint_runs() -> TestResult {
    let (_db, p) = migrated(Dialect::Postgres).await?;
    let s = {
        let mut pc = p.get().await?;
        seed(&mut pc.conn()).await?
    };
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let p1 = p.clone();
    let first = tokio::spawn(async move {
        let mut pc = p1.get().await?;
        let runs = pc
            .conn()
            .transaction(TxMode::Write, async |tx| {
                let runs = poll(
                    tx,
                    WorkPoolPoll {
                        limit: Some(2),
                        ..Default::default()
                    },
                )
                .await?;
                let _ = locked_tx.send(());
                // Keep the transaction (and its row locks) open until the second poller is done.
                let _ = done_rx.await;
                Ok::<_, QueryError>(runs)
            })
            .await?;
        Ok::<_, BoxError>(runs)
    });
    locked_rx.await?;
    let second = {
        let mut pc = p.get().await?;
        pc.conn()
            .transaction(TxMode::Write, async |tx| {
                poll(
                    tx,
                    WorkPoolPoll {
                        limit: Some(2),
                        ..Default::default()
                    },
                )
                .await
            })
            .await?
    };
    let _ = done_tx.send(());
    let first = first.await??;
    assert_eq!(s.names(&first), ["a2_1", "a1_1"]);
    // The first poller locked only the runs it returned (a2_1, a1_1). The second ranks the
    // same two first, finds them held, and ranks again without them: A2 → a2_2 (its one free
    // slot: a2_1 is not started), A1 → a1_2 (3 s), B1 → b1_1 (2 s, pool B's one slot). By time:
    // a2_2 (0.1 s), b1_1 (2 s).
    assert_eq!(s.names(&second), ["a2_2", "b1_1"]);
    Ok(())
}

/// `n` concurrent workers poll 1,000 scheduled runs (4 queues, no limits) until nothing is left,
/// each poll in a write transaction that starts the runs it received (PENDING): every run is
/// handed out exactly once — never twice, none left behind.
async fn concurrent_pollers_hand_out_each_run_once(dialect: Dialect, pollers: usize) -> TestResult {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use prefect_orm::schema::flow_run;
    use prefect_orm::types::{StateType, Val};
    let (_db, p) = migrated(dialect).await?;
    let all: Vec<Uuid> = {
        let mut pc = p.get().await?;
        let conn = &mut pc.conn();
        let f = flow(conn, "f").await?;
        let a = pool(conn, "A", None, false).await?;
        let mut queues = Vec::new();
        for (i, name) in ["Q1", "Q2", "Q3", "Q4"].into_iter().enumerate() {
            queues.push(queue(conn, a, name, i as i32 + 1, None, false).await?);
        }
        let mut runs = Vec::new();
        for i in 0..1000 {
            let mut r = prefect_orm::models::NewFlowRun::new(format!("r{i}"), f);
            r.state_type = Some(StateType::Scheduled);
            r.state_name = Some("Scheduled".into());
            r.work_queue_id = Some(queues[i % 4]);
            r.next_scheduled_start_time = Some(t((i as i64) * 1000));
            r.expected_start_time = r.next_scheduled_start_time;
            runs.push(r);
        }
        QueryComponents::new().insert(conn, runs, prefect_query_components::OnConflict::Fail).await?
    };
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..pollers {
        let p = p.clone();
        workers.spawn(async move {
            let mut got: Vec<Uuid> = Vec::new();
            loop {
                let mut pc = p.get().await?;
                let ids = pc
                    .conn()
                    .transaction(TxMode::Write, async |tx| {
                        // One poll (the bounded/unbounded double check of `poll` assumes no
                        // other poller commits in between).
                        let args = WorkPoolPoll { limit: Some(25), ..Default::default() };
                        let runs = QueryComponents::new().get_scheduled_flow_runs_from_work_pool(tx, &args).await?;
                        let ids: Vec<Val<Uuid>> = runs.iter().map(|r| Val(r.flow_run.id)).collect();
                        prefect_db_config::dispatch!(tx, |c| diesel::update(flow_run::table.filter(flow_run::id.eq_any(&ids)))
                            .set((flow_run::state_type.eq(StateType::Pending), flow_run::next_scheduled_start_time.eq(Val(None::<chrono::DateTime<chrono::Utc>>))))
                            .execute(c)
                            .await)
                        .map_err(QueryError::from)?;
                        Ok::<_, QueryError>(ids.into_iter().map(|v| v.0).collect::<Vec<_>>())
                    })
                    .await?;
                if ids.is_empty() {
                    return Ok::<_, BoxError>(got);
                }
                got.extend(ids);
            }
        });
    }
    let mut handed: Vec<Uuid> = Vec::new();
    let mut per_worker = Vec::new();
    while let Some(done) = workers.join_next().await {
        let got = done??;
        per_worker.push(got.len());
        handed.extend(got);
    }
    let distinct: std::collections::HashSet<Uuid> = handed.iter().copied().collect();
    assert_eq!(distinct.len(), handed.len(), "{pollers} pollers: a run was handed out twice");
    assert_eq!(distinct, all.into_iter().collect(), "{pollers} pollers: every run handed out (none starved)");
    assert_eq!(per_worker.len(), pollers);
    Ok(())
}

async fn two_concurrent_pollers_hand_out_each_run_once(dialect: Dialect) -> TestResult {
    concurrent_pollers_hand_out_each_run_once(dialect, 2).await
}

async fn eight_concurrent_pollers_hand_out_each_run_once(dialect: Dialect) -> TestResult {
    concurrent_pollers_hand_out_each_run_once(dialect, 8).await
}

conformance!(two_concurrent_pollers_hand_out_each_run_once, eight_concurrent_pollers_hand_out_each_run_once);

/// A PostgreSQL poll locks the runs it returns and no others: another transaction can lock
/// every other scheduled run while the poller's transaction is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_poll_locks_only_what_it_returns() -> TestResult {
    let (_db, p) = migrated(Dialect::Postgres).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let f = flow(conn, "f").await?;
    let a = pool(conn, "A", None, false).await?;
    let mut scheduled = 0;
    for (q, name) in ["Q1", "Q2", "Q3"].into_iter().enumerate() {
        let queue_id = queue(conn, a, name, q as i32 + 1, None, false).await?;
        for i in 0..20 {
            run(conn, f, queue_id, &format!("{name}-{i}"), Scheduled, t((i * 3 + q as i64) * S)).await?;
            scheduled += 1;
        }
    }
    let (held_tx, held_rx) = tokio::sync::oneshot::channel::<usize>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let p1 = p.clone();
    let poller = tokio::spawn(async move {
        let mut pc = p1.get().await?;
        pc.conn()
            .transaction(TxMode::Write, async |tx| {
                let runs = poll(tx, WorkPoolPoll { limit: Some(10), ..Default::default() }).await?;
                let _ = held_tx.send(runs.len());
                let _ = release_rx.await;
                Ok::<_, QueryError>(())
            })
            .await?;
        Ok::<_, BoxError>(())
    });
    let returned = held_rx.await?;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut other = p.get().await?;
    let free: Vec<N> = other
        .conn()
        .transaction(TxMode::Write, async |tx| {
            prefect_db_config::dispatch!(tx, |c| diesel_async::RunQueryDsl::load(
                diesel::sql_query(
                    "SELECT count(*) AS n FROM (SELECT id FROM flow_run WHERE state_type = 'SCHEDULED' FOR UPDATE SKIP LOCKED) x"
                ),
                c
            )
            .await)
            .map_err(QueryError::from)
        })
        .await?;
    let _ = release_tx.send(());
    poller.await??;
    assert_eq!(returned, 10);
    assert_eq!(free[0].n, scheduled - 10, "exactly the 10 returned runs are locked");
    Ok(())
}
