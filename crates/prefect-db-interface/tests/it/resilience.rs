//! Transient failures, made real: what each becomes (`Error`'s class), how
//! `transaction_retrying` carries writes through them, and that what a caller is told committed
//! is stored exactly once.
//!
//! - PostgreSQL: a deadlock, a serialization failure, a statement timeout and a lock timeout
//!   (each caused by real concurrent transactions or a real `pg_sleep`), a backend terminated
//!   by the server; and a throwaway cluster of the test's own restarted (`pg_ctl restart -m
//!   fast`) while 8 tasks run 1,500 write transactions.
//! - SQLite: a writer holding the write lock past the busy timeout, first seen as the transient
//!   error it is, then ridden out by 8 writing tasks.

use prefect_db_interface::config::{DatabaseConfig, DatabaseUrl, RetryPolicy, admin};
use prefect_db_interface::migrate::{self, UpgradeTarget};
use prefect_db_interface::prelude::*;
use prefect_db_test::{Dialect, TestDatabase, TestResult};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

async fn migrated(dialect: Dialect) -> Result<TestDatabase, prefect_db_test::TestDbError> {
    TestDatabase::from_template(dialect, "migrated", |c| async move { migrate::upgrade(&c, UpgradeTarget::Latest).await.map(drop) })
        .await
}

/// Two flows to lock.
async fn two_flows(db: &Database) -> Result<(Uuid, Uuid), Error> {
    let a = db.insert(NewFlow::new(format!("a-{}", Uuid::new_v4()))).await?;
    let b = db.insert(NewFlow::new(format!("b-{}", Uuid::new_v4()))).await?;
    Ok((a.id, b.id))
}

fn touch(id: Uuid) -> String {
    format!("UPDATE flow SET name = name WHERE id = '{id}'")
}

/// Two transactions lock two rows in opposite orders: PostgreSQL breaks the deadlock by failing
/// one of them, which is transient (run again, it succeeds) and leaves its connection usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deadlock_is_transient_postgres() -> TestResult {
    let t = migrated(Dialect::Postgres).await?;
    let db = database_for(&t.config())?;
    let (a, b) = two_flows(&db).await?;
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let run = |first: Uuid, second: Uuid| {
        let (db, barrier) = (db.clone(), barrier.clone());
        tokio::spawn(async move {
            db.transaction(TxMode::Write, async |tx| {
                tx.batch_execute(&touch(first)).await?;
                barrier.wait().await;
                tx.batch_execute(&touch(second)).await?;
                Ok(())
            })
            .await
        })
    };
    let (one, two) = (run(a, b), run(b, a));
    let results = [one.await?, two.await?];
    let failed: Vec<&Error> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(failed.len(), 1, "PostgreSQL fails exactly one of the two: {results:?}");
    assert!(failed[0].to_string().contains("deadlock detected"), "{}", failed[0]);
    assert_eq!(failed[0].kind(), ErrorKind::Unavailable, "{}", failed[0]);
    assert!(failed[0].is_retryable());
    // The same work, retried, goes through.
    db.transaction_retrying(TxMode::Write, async move |tx| Ok(tx.batch_execute(&touch(a)).await?)).await?;
    Ok(())
}

/// A REPEATABLE READ transaction updating a row another transaction changed after its
/// snapshot: PostgreSQL's serialization failure (40001), transient.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_serialization_failure_is_transient_postgres() -> TestResult {
    let t = migrated(Dialect::Postgres).await?;
    let db = database_for(&t.config())?;
    let (a, _) = two_flows(&db).await?;
    let other = db.clone();
    let result = db
        .transaction(TxMode::Write, async |tx| {
            tx.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").await?;
            let _: Flow = tx.get(a).await?; // the snapshot is taken here
            other.transaction(TxMode::Write, async |tx2| Ok(tx2.batch_execute(&touch(a)).await?)).await?;
            tx.batch_execute(&touch(a)).await?;
            Ok(())
        })
        .await;
    let e = result.expect_err("the update after a concurrent commit fails");
    assert!(e.to_string().contains("could not serialize access"), "{e}");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    Ok(())
}

/// A statement running past the statement timeout is cancelled: a typed timeout, transient, and
/// the connection it ran on serves the next transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_timeout_is_a_typed_timeout_postgres() -> TestResult {
    let t = migrated(Dialect::Postgres).await?;
    let mut config = t.config();
    config.pool_size = 1;
    config.max_overflow = 0;
    config.statement_timeout = Some(Duration::from_millis(200));
    let db = database_for(&config)?;
    let started = Instant::now();
    let e = db
        .transaction(TxMode::Read, async |tx| Ok(tx.batch_execute("SELECT pg_sleep(5)").await?))
        .await
        .expect_err("pg_sleep(5) runs past a 200 ms statement timeout");
    assert!(started.elapsed() < Duration::from_secs(4), "cancelled at the timeout, not after the sleep");
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(matches!(e, Error::Timeout { .. }) && e.is_retryable(), "{e}");
    // The pool's one connection still works.
    let n = db.transaction(TxMode::Read, async |tx| Ok(read::count_flows(tx, &Default::default()).await?)).await?;
    assert_eq!(n, 0);
    Ok(())
}

/// Waiting for a row lock past `lock_timeout` is a typed timeout too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lock_timeout_is_a_typed_timeout_postgres() -> TestResult {
    let t = migrated(Dialect::Postgres).await?;
    let db = database_for(&t.config())?;
    let (a, _) = two_flows(&db).await?;
    let (locked_tx, locked_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let db = db.clone();
        tokio::spawn(async move {
            db.transaction(TxMode::Write, async |tx| {
                tx.batch_execute(&touch(a)).await?;
                let _ = locked_tx.send(());
                let _ = release_rx.await;
                Ok(())
            })
            .await
        })
    };
    locked_rx.await?;
    let e = db
        .transaction(TxMode::Write, async |tx| {
            tx.batch_execute("SET LOCAL lock_timeout = '100ms'").await?;
            Ok(tx.batch_execute(&touch(a)).await?)
        })
        .await
        .expect_err("the row is locked past the lock timeout");
    let _ = release_tx.send(());
    holder.await??;
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    assert!(e.to_string().contains("lock timeout"), "{e}");
    Ok(())
}

/// A backend the server terminates mid-transaction (as a restart or an administrator does):
/// unavailable, transient; the broken connection is discarded and the pool serves again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminated_connection_is_transient_and_discarded_postgres() -> TestResult {
    let t = migrated(Dialect::Postgres).await?;
    let mut config = t.config();
    config.pool_size = 1;
    config.max_overflow = 0;
    let db = database_for(&config)?;
    let admin_db = database_for(&t.direct_config())?;
    let e = db
        .transaction(TxMode::Write, async |tx| {
            #[derive(diesel::QueryableByName)]
            struct Pid {
                #[diesel(sql_type = diesel::sql_types::Integer)]
                pid: i32,
            }
            let pid: Pid = prefect_db_interface::config::dispatch!(tx, |c| {
                diesel_async::RunQueryDsl::get_result(diesel::sql_query("SELECT pg_backend_pid() AS pid"), c).await
            })?;
            admin_db
                .transaction(TxMode::Read, async |a| Ok(a.batch_execute(&format!("SELECT pg_terminate_backend({})", pid.pid)).await?))
                .await?;
            Ok(tx.batch_execute("SELECT 1").await?)
        })
        .await
        .expect_err("the backend was terminated");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable(), "{e}");
    let n = db.transaction(TxMode::Read, async |tx| Ok(read::count_flows(tx, &Default::default()).await?)).await?;
    assert_eq!(n, 0, "the pool's only connection was replaced");
    Ok(())
}

/// A connection the server refuses for good (a role that does not exist) is not retried: the
/// error comes at once, not after the retry budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_role_is_not_retried_postgres() -> TestResult {
    let t = TestDatabase::empty(Dialect::Postgres).await?;
    let pg = t.postgres_url().ok_or("not postgres")?;
    let mut config = t.config();
    let url = pg.expose().replacen("://", "://no_such_role_for_prefect_db@", 1);
    let url = match url.split_once('@') {
        // drop any user the URL already had
        Some((head, rest)) if rest.contains('@') => format!("{head}@{}", rest.split_once('@').map_or(rest, |(_, r)| r)),
        _ => url,
    };
    config.url = DatabaseUrl::parse(&url, "test")?;
    let started = Instant::now();
    let e = database_for(&config)?.get::<Flow>(Uuid::new_v4()).await.expect_err("the role does not exist");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(started.elapsed() < Duration::from_secs(3), "answered after {:?}: retried", started.elapsed());
    Ok(())
}

/// Opens a plain connection of its own to an SQLite file and holds its write lock for `hold`.
fn hold_sqlite_lock(path: std::path::PathBuf, hold: Duration) -> (std::thread::JoinHandle<()>, std::sync::mpsc::Receiver<()>) {
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        use diesel::Connection as _;
        use diesel::connection::SimpleConnection as _;
        let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy()).expect("open the file");
        c.batch_execute("BEGIN IMMEDIATE").expect("take the write lock");
        let _ = locked_tx.send(());
        std::thread::sleep(hold);
        c.batch_execute("COMMIT").expect("release it");
    });
    (handle, locked_rx)
}

/// A writer holding SQLite's write lock past the busy timeout: a write is unavailable
/// (transient) rather than an internal error, and with retries every one of 8 writing tasks
/// gets through once the lock is released, each write stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_held_write_lock_is_ridden_out_sqlite() -> TestResult {
    let t = migrated(Dialect::Sqlite).await?;
    let path = t.sqlite_path().ok_or("no file")?.to_path_buf();
    let mut config = t.config();
    config.sqlite.busy_timeout_ms = 100;
    config.retry = RetryPolicy { budget: Duration::from_secs(20), max_attempts: 50, ..RetryPolicy::default() };
    let db = database_for(&config)?;
    let flow = db.insert(NewFlow::new("locked")).await?;

    let (holder, locked) = hold_sqlite_lock(path.clone(), Duration::from_millis(600));
    locked.recv()?;
    let e = db.transaction(TxMode::Write, async |tx| tx.insert(NewFlowRun::new("once", flow.id)).await).await.expect_err("locked");
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable() && e.to_string().contains("locked"), "{e}");
    holder.join().map_err(|_| "the lock holder panicked")?;

    // Now 8 tasks write while the lock is held for 1.5 s (15 busy timeouts).
    let (holder, locked) = hold_sqlite_lock(path, Duration::from_millis(1500));
    locked.recv()?;
    let outcome = write_load(&db, flow.id, 8, 200, Arc::default()).await;
    holder.join().map_err(|_| "the lock holder panicked")?;
    outcome.check(&db).await?;
    assert_eq!(outcome.committed.len(), 200, "every write got through: {:?}", outcome.failures);
    Ok(())
}

/// What a write load reported.
struct Outcome {
    committed: Vec<String>,
    failures: Vec<Error>,
    first_success_after: Vec<Instant>,
}

impl Outcome {
    /// Failures are only transient ones, and every run reported committed is stored exactly
    /// once (its id is made inside the transaction body, so a second commit of one logical
    /// write would store its name twice).
    async fn check(&self, db: &Database) -> TestResult {
        for e in &self.failures {
            assert!(matches!(e.kind(), ErrorKind::Unavailable | ErrorKind::Timeout), "a failure other than unavailable: {e}");
        }
        #[derive(diesel::QueryableByName)]
        struct Name {
            #[diesel(sql_type = diesel::sql_types::Text)]
            name: String,
        }
        let stored: Vec<Name> = db
            .transaction(TxMode::Read, async |tx| {
                Ok(prefect_db_interface::config::dispatch!(tx, |c| {
                    diesel_async::RunQueryDsl::load(diesel::sql_query("SELECT name FROM flow_run WHERE name LIKE 'load-%'"), c).await
                })?)
            })
            .await?;
        let stored: Vec<String> = stored.into_iter().map(|n| n.name).collect();
        let mut counts = std::collections::HashMap::new();
        for name in &stored {
            *counts.entry(name.as_str()).or_insert(0usize) += 1;
        }
        for name in &self.committed {
            assert_eq!(counts.get(name.as_str()), Some(&1), "{name}, reported committed, is stored exactly once");
        }
        assert!(counts.values().all(|&n| n == 1), "no write is stored twice");
        Ok(())
    }
}

/// `writes` write transactions from `tasks` tasks through `transaction_retrying`, each a run
/// named `load-{task}-{i}` with an id drawn inside the body.
async fn write_load(db: &Database, flow_id: Uuid, tasks: usize, writes: usize, done: Arc<AtomicUsize>) -> Outcome {
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (db, done) = (db.clone(), done.clone());
        let share = writes / tasks + usize::from(task < writes % tasks);
        handles.push(tokio::spawn(async move {
            let mut committed = Vec::new();
            let mut failures = Vec::new();
            let mut successes = Vec::new();
            for i in 0..share {
                let name = format!("load-{task}-{i}");
                let attempt_name = name.clone();
                let result = db
                    .transaction_retrying(TxMode::Write, async move |tx| {
                        // `new` draws the run's id: a fresh one per attempt.
                        tx.insert(NewFlowRun::new(attempt_name, flow_id)).await
                    })
                    .await;
                match result {
                    Ok(_) => {
                        committed.push(name);
                        successes.push(Instant::now());
                    }
                    Err(e) => failures.push(e),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            (committed, failures, successes)
        }));
    }
    let mut outcome = Outcome { committed: Vec::new(), failures: Vec::new(), first_success_after: Vec::new() };
    for h in handles {
        match h.await {
            Ok((c, f, s)) => {
                outcome.committed.extend(c);
                outcome.failures.extend(f);
                outcome.first_success_after.extend(s);
            }
            Err(e) => outcome.failures.push(Error::invalid("task", None, e.to_string())),
        }
    }
    outcome
}

/// A throwaway cluster restarted (`pg_ctl restart -m fast`) while 8 tasks run 1,500 write
/// transactions: no caller sees anything but success or "unavailable"; every transaction
/// reported committed is stored exactly once; and the layer commits again within 2 s of the
/// server accepting connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_ride_out_a_server_restart() -> TestResult {
    let cluster = prefect_db_test::cluster::Cluster::start().await?;
    let name = "prefect_restart";
    let config = DatabaseConfig::new(DatabaseUrl::Postgres(cluster.url.with_database(name)));
    admin::create_database(&config).await?;
    migrate::upgrade(&config, UpgradeTarget::Latest).await?;
    let db = database_for(&config)?;
    let flow = db.insert(NewFlow::new("restarted")).await?;

    let done = Arc::new(AtomicUsize::new(0));
    let load = {
        let (db, done) = (db.clone(), done.clone());
        tokio::spawn(async move { write_load(&db, flow.id, 8, 1_500, done).await })
    };
    // Restart with a fifth of the writes done: the rest must get through the restart.
    while done.load(Ordering::Relaxed) < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let restart_began = Instant::now();
    let accepting = cluster.restart().await?;
    let outcome = load.await?;
    let recovered = outcome.first_success_after.iter().filter(|t| **t >= accepting).min().copied();
    let last = outcome.first_success_after.iter().max().copied();
    eprintln!(
        "restart: server down and up in {:?}; {} committed, {} unavailable of 1,500; first commit {:?} after the server accepted connections; load ended {:?} after it",
        accepting.duration_since(restart_began),
        outcome.committed.len(),
        outcome.failures.len(),
        recovered.map(|r| r.duration_since(accepting)),
        last.map(|l| l.saturating_duration_since(accepting)),
    );
    let mut kinds = std::collections::BTreeMap::new();
    for e in &outcome.failures {
        *kinds.entry(e.to_string()).or_insert(0) += 1;
    }
    for (e, n) in &kinds {
        eprintln!("restart: {n} x {e}");
    }
    outcome.check(&db).await?;
    let gap = recovered.ok_or("no write committed after the restart")?.duration_since(accepting);
    assert_eq!(outcome.committed.len() + outcome.failures.len(), 1_500);
    assert!(gap <= Duration::from_secs(2), "the layer served again {gap:?} after the server came back");
    assert!(outcome.failures.len() <= 16, "retries carry writes over a fast restart: {} failed", outcome.failures.len());
    Ok(())
}
