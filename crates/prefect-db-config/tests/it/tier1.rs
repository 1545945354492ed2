//! Tier 1 on both dialects: connection settings read back from live sessions, pools, transactions.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use prefect_db_config::{Conn, DatabaseConfig, DatabaseUrl, DbError, DbPool, Dialect, TxMode, admin, cached_pool, dispatch};
use prefect_db_test::{TestDatabase, TestResult, conformance};
use std::sync::Arc;
use std::time::Duration;

#[derive(QueryableByName, Debug)]
struct TextValue {
    #[diesel(sql_type = Text)]
    v: String,
}

#[derive(QueryableByName, Debug)]
struct IntValue {
    #[diesel(sql_type = BigInt)]
    v: i64,
}

async fn text(conn: &mut Conn<'_>, sql: &str) -> Result<String, DbError> {
    let row: TextValue = dispatch!(conn, |c| diesel::sql_query(sql).get_result(c).await)?;
    Ok(row.v)
}

async fn int(conn: &mut Conn<'_>, sql: &str) -> Result<i64, DbError> {
    let row: IntValue = dispatch!(conn, |c| diesel::sql_query(sql).get_result(c).await)?;
    Ok(row.v)
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_pragmas_are_set_on_every_connection() -> TestResult {
    let db = TestDatabase::empty(Dialect::Sqlite).await?;
    let pool = DbPool::build(&db.config())?;
    // Two connections at once: the pragmas hold on each.
    let mut a = pool.get().await?;
    let mut b = pool.get().await?;
    for pooled in [&mut a, &mut b] {
        let mut c = pooled.conn();
        assert_eq!(text(&mut c, "SELECT journal_mode AS v FROM pragma_journal_mode").await?, "wal");
        assert_eq!(int(&mut c, "SELECT foreign_keys AS v FROM pragma_foreign_keys").await?, 1);
        assert_eq!(int(&mut c, "SELECT legacy_alter_table AS v FROM pragma_legacy_alter_table").await?, 0);
        assert_eq!(int(&mut c, "SELECT synchronous AS v FROM pragma_synchronous").await?, 1, "NORMAL is 1");
        assert_eq!(int(&mut c, "SELECT cache_size AS v FROM pragma_cache_size").await?, 20_000);
        assert_eq!(int(&mut c, "SELECT timeout AS v FROM pragma_busy_timeout").await?, 30_000);
    }
    Ok(())
}

/// The thread a statement on `conn` runs on.
async fn statement_thread(conn: &mut Conn<'_>) -> Result<std::thread::ThreadId, DbError> {
    let Conn::Sqlite(c) = conn else { unreachable!("SQLite test") };
    Ok(c.spawn_blocking(|_| Ok(std::thread::current().id())).await?)
}

#[tokio::test(flavor = "current_thread")]
async fn sqlite_statements_run_inline_only_under_the_write_lock() -> TestResult {
    let db = TestDatabase::empty(Dialect::Sqlite).await?;
    let pool = DbPool::build(&db.config())?;
    let here = std::thread::current().id();
    let mut pooled = pool.get().await?;
    let mut conn = pooled.conn();
    assert_ne!(statement_thread(&mut conn).await?, here, "outside a transaction: the blocking pool");
    let read = conn.transaction(TxMode::Read, async |tx| statement_thread(tx).await).await?;
    assert_ne!(read, here, "a read transaction may still wait for a lock when it writes");
    let write = conn.transaction(TxMode::Write, async |tx| statement_thread(tx).await).await?;
    assert_eq!(write, here, "under the write lock nothing waits: inline");
    assert_ne!(statement_thread(&mut conn).await?, here, "after COMMIT: the blocking pool again");
    let failed: Result<(), DbError> = conn
        .transaction(TxMode::Write, async |_| Err(DbError::Query(diesel::result::Error::RollbackTransaction)))
        .await;
    assert!(failed.is_err());
    assert_ne!(statement_thread(&mut conn).await?, here, "after ROLLBACK: the blocking pool again");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_write_transaction_waits_for_a_held_lock_with_the_busy_timeout() -> TestResult {
    let db = TestDatabase::empty(Dialect::Sqlite).await?;
    let pool = DbPool::build(&db.config())?;
    let mut setup = pool.get().await?;
    setup.conn().batch_execute("CREATE TABLE t (v INTEGER)").await?;
    // Another connection holds the write lock; our write transaction finds it taken without
    // waiting, then waits on the blocking pool until the holder commits.
    let mut holder = pool.get().await?;
    holder.conn().batch_execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)").await?;
    let mut writer = {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut pooled = pool.get().await?;
            pooled
                .conn()
                .transaction(TxMode::Write, async |tx| {
                    let n = int(tx, "SELECT count(*) AS v FROM t").await?;
                    tx.batch_execute("INSERT INTO t VALUES (2)").await?;
                    Ok::<_, DbError>(n)
                })
                .await
        })
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut writer).await.is_err(),
        "the writer waits while the lock is held"
    );
    holder.conn().batch_execute("COMMIT").await?;
    let seen = writer.await??;
    assert_eq!(seen, 1, "the writer began after the holder's commit and saw its row");
    assert_eq!(int(&mut setup.conn(), "SELECT count(*) AS v FROM t").await?, 2);
    assert_eq!(int(&mut setup.conn(), "SELECT timeout AS v FROM pragma_busy_timeout").await?, 30_000, "busy timeout restored");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_idle_connections_are_pinged_and_dead_ones_replaced() -> TestResult {
    let db = TestDatabase::empty(Dialect::Postgres).await?;
    let mut config = db.config();
    config.pool_size = 1;
    config.max_overflow = 0;
    let pool = DbPool::build(&config)?;
    let first = int(&mut pool.get().await?.conn(), "SELECT pg_backend_pid()::bigint AS v").await?;
    // Checked out again at once: the same connection, no ping needed.
    let again = int(&mut pool.get().await?.conn(), "SELECT pg_backend_pid()::bigint AS v").await?;
    assert_eq!(again, first);
    // The server ends the pooled connection while it sits idle (a restart, an idle timeout).
    let admin = DbPool::build(&db.config())?;
    let ended = int(&mut admin.get().await?.conn(), &format!("SELECT pg_terminate_backend({first})::int::bigint AS v")).await?;
    assert_eq!(ended, 1);
    // Idle past the threshold, the checkout finds it dead (the driver saw the socket close, or
    // the ping fails) and opens a new one: the caller never sees the dead connection.
    tokio::time::sleep(prefect_db_config::pool::PRE_PING_AFTER_IDLE + Duration::from_millis(100)).await;
    let replaced = int(&mut pool.get().await?.conn(), "SELECT pg_backend_pid()::bigint AS v").await?;
    assert_ne!(replaced, first, "a new server connection");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_file_and_folder_are_created() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("nested/deeper/prefect.db");
    let url = DatabaseUrl::parse(&format!("sqlite+aiosqlite:///{}", path.display()), "test")?;
    let config = DatabaseConfig::new(url);
    assert!(admin::create_database(&config).await?, "reports the file as created");
    assert!(path.exists());
    assert!(!admin::create_database(&config).await?, "second call finds it");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_memory_is_one_shared_connection() -> TestResult {
    let config = DatabaseConfig::new(DatabaseUrl::parse("sqlite+aiosqlite:///:memory:", "test")?);
    assert_eq!(config.max_connections(), 1);
    let pool = DbPool::build(&config)?;
    {
        let mut c = pool.get().await?;
        c.conn().batch_execute("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7);").await?;
    }
    let mut c = pool.get().await?;
    assert_eq!(int(&mut c.conn(), "SELECT x AS v FROM t").await?, 7, "the second checkout sees the same database");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_session_settings_are_read_back() -> TestResult {
    let db = TestDatabase::empty(Dialect::Postgres).await?;
    let mut config = db.config();
    // Prefect forces READ COMMITTED even when the URL asks for another isolation level.
    let DatabaseUrl::Postgres(pg) = &config.url else { return Err("not postgres".into()) };
    let sep = if pg.expose().contains('?') { '&' } else { '?' };
    config.url = DatabaseUrl::parse(&format!("{}{sep}default_transaction_isolation=serializable", pg.expose()), "test")?;
    config.application_name = Some("prefect db tests".to_owned());
    config.statement_timeout = Some(Duration::from_millis(1500));
    config.search_path = Some("custom_schema, public".to_owned());
    let pool = DbPool::build(&config)?;
    let mut pooled = pool.get().await?;
    // Inside a transaction on every set-up (behind a transaction-mode pooler the settings are
    // applied per transaction); outside one too when the session holds them.
    pooled
        .conn()
        .transaction(TxMode::Read, async |c| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
            check_session_settings(c, true).await
        })
        .await?;
    if !config.transaction_pooling() {
        check_session_settings(&mut pooled.conn(), false).await?;
    }
    Ok(())
}

async fn check_session_settings(c: &mut Conn<'_>, in_tx: bool) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    assert_eq!(text(c, "SELECT current_setting('application_name') AS v").await?, "prefect db tests");
    assert_eq!(text(c, "SELECT current_setting('statement_timeout') AS v").await?, "1500ms");
    assert_eq!(text(c, "SELECT current_setting('search_path') AS v").await?, "custom_schema, public");
    assert_eq!(text(c, "SELECT current_setting('transaction_isolation') AS v").await?, "read committed");
    // The statement timeout is enforced by the server (in a transaction, which it then aborts:
    // a savepoint keeps the caller's transaction usable).
    if in_tx {
        c.batch_execute("SAVEPOINT slow").await?;
    }
    let slow = dispatch!(c, |conn| diesel::sql_query("SELECT pg_sleep(5)").execute(conn).await);
    let message = slow.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("statement timeout"), "{message}");
    if in_tx {
        c.batch_execute("ROLLBACK TO SAVEPOINT slow").await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_tls_is_required_when_enabled() -> TestResult {
    let db = TestDatabase::empty(Dialect::Postgres).await?;
    let mut config = db.config();
    config.tls.enabled = true;
    let pool = DbPool::build(&config)?;
    let err = pool.get().await.err().map(|e| e.to_string()).unwrap_or_default();
    // The test server has no TLS: the connection must fail rather than fall back to plain text.
    assert!(err.contains("cannot connect"), "{err}");
    config.tls.ca_file = Some("/nonexistent/ca.pem".into());
    let pool = DbPool::build(&config)?;
    let err = pool.get().await.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_create_database_creates_once() -> TestResult {
    let db = TestDatabase::empty(Dialect::Postgres).await?;
    let Some(pg) = db.postgres_url() else { return Err("not postgres".into()) };
    let name = format!("prefect_test_{}_create_{}", std::process::id(), uuid::Uuid::new_v4().simple());
    let config = DatabaseConfig::new(DatabaseUrl::Postgres(pg.with_database(&name)));
    assert!(!admin::is_connectable(&config).await);
    assert!(admin::create_database(&config).await?);
    assert!(!admin::create_database(&config).await?);
    assert!(admin::is_connectable(&config).await);
    Ok(())
}

async fn pool_exhaustion_returns_a_timeout(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let mut config = db.config();
    config.pool_size = 1;
    config.max_overflow = 0;
    config.pool_timeout = Duration::from_millis(200);
    let pool = DbPool::build(&config)?;
    let held = pool.get().await?;
    match pool.get().await {
        Err(DbError::PoolTimeout { max_size: 1, .. }) => {}
        Err(other) => return Err(format!("expected a pool timeout, got {other}").into()),
        Ok(_) => return Err("a second connection was handed out from a pool of one".into()),
    }
    drop(held);
    let _again = pool.get().await?;
    Ok(())
}

async fn read_then_write_transactions_lose_nothing(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let pool = DbPool::build(&db.config())?;
    pool.get().await?.conn().batch_execute("CREATE TABLE counter (id INTEGER PRIMARY KEY, n BIGINT NOT NULL); INSERT INTO counter VALUES (1, 0);").await?;
    // Prefect's `with_for_update`: SQLite takes the write lock up front (BEGIN IMMEDIATE);
    // PostgreSQL locks the row it reads.
    let select = match dialect {
        Dialect::Sqlite => "SELECT n AS v FROM counter WHERE id = 1",
        Dialect::Postgres => "SELECT n AS v FROM counter WHERE id = 1 FOR UPDATE",
    };
    let (tasks, per_task) = (8, 200);
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let pool = pool.clone();
        handles.push(tokio::spawn(async move {
            let mut failures = 0u32;
            for _ in 0..per_task {
                let mut pooled = pool.get().await?;
                let result = pooled
                    .conn()
                    .transaction(TxMode::Write, async |tx| {
                        let n = int(tx, select).await?;
                        tx.batch_execute(&format!("UPDATE counter SET n = {} WHERE id = 1", n + 1)).await?;
                        Ok::<_, DbError>(())
                    })
                    .await;
                if result.is_err() {
                    failures += 1;
                }
            }
            Ok::<u32, DbError>(failures)
        }));
    }
    let mut failures = 0;
    for h in handles {
        failures += h.await??;
    }
    assert_eq!(failures, 0, "transactions failed (database is locked?)");
    let total = int(&mut pool.get().await?.conn(), "SELECT n AS v FROM counter WHERE id = 1").await?;
    assert_eq!(total, tasks * per_task, "lost updates");
    Ok(())
}

async fn cancelled_transaction_never_leaks_into_the_pool(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let mut config = db.config();
    config.pool_size = 1;
    config.max_overflow = 0;
    let pool = DbPool::build(&config)?;
    pool.get().await?.conn().batch_execute("CREATE TABLE t (x INTEGER)").await?;
    let cancelled = tokio::time::timeout(Duration::from_millis(300), async {
        let mut pooled = pool.get().await?;
        pooled
            .conn()
            .transaction(TxMode::Write, async |tx| {
                tx.batch_execute("INSERT INTO t VALUES (1)").await?;
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok::<_, DbError>(())
            })
            .await
    })
    .await;
    assert!(cancelled.is_err(), "the transaction future was cancelled");
    // The pool holds one connection at most: the next checkout must not be inside the
    // abandoned transaction, and the abandoned insert must not be committed.
    let mut pooled = pool.get().await?;
    let mut c = pooled.conn();
    c.transaction(TxMode::Write, async |tx| tx.batch_execute("INSERT INTO t VALUES (2)").await).await?;
    assert_eq!(int(&mut c, "SELECT count(*) AS v FROM t").await?, 1);
    assert_eq!(int(&mut c, "SELECT CAST(max(x) AS BIGINT) AS v FROM t").await?, 2);
    // Another connection can write: no lock was left behind.
    let other = DbPool::build(&config)?;
    other.get().await?.conn().batch_execute("INSERT INTO t VALUES (3)").await?;
    Ok(())
}

async fn rollback_on_error_keeps_nothing(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let pool = DbPool::build(&db.config())?;
    let mut pooled = pool.get().await?;
    let mut c = pooled.conn();
    c.batch_execute("CREATE TABLE t (x INTEGER)").await?;
    let failed = c
        .transaction(TxMode::Read, async |tx| {
            tx.batch_execute("INSERT INTO t VALUES (1)").await?;
            Err::<(), DbError>(DbError::PoolClosed { url: "forced failure".into() })
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(int(&mut c, "SELECT count(*) AS v FROM t").await?, 0);
    Ok(())
}

async fn drop_all_tables_leaves_an_empty_database(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let pool = DbPool::build(&db.config())?;
    let mut pooled = pool.get().await?;
    let mut c = pooled.conn();
    c.batch_execute("CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent (id)); INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1, 1);").await?;
    let mut dropped = admin::drop_all_tables(&mut c).await?;
    dropped.sort();
    assert_eq!(dropped, vec!["child".to_owned(), "parent".to_owned()]);
    assert!(admin::drop_all_tables(&mut c).await?.is_empty());
    Ok(())
}

async fn connectable_answers_within_the_timeout(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    assert!(admin::is_connectable(&db.config()).await);
    let unreachable = match dialect {
        Dialect::Postgres => "postgresql://postgres@127.0.0.1:1/nothing",
        Dialect::Sqlite => "sqlite:////proc/no-such-folder/x.db",
    };
    let mut config = DatabaseConfig::new(DatabaseUrl::parse(unreachable, "test")?);
    config.connection_timeout = Duration::from_secs(1);
    assert!(!admin::is_connectable(&config).await);
    Ok(())
}

async fn pools_are_cached_by_url_echo_and_timeout(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let config = db.config();
    let a = cached_pool(&config)?;
    let b = cached_pool(&config)?;
    assert!(prefect_db_config::pool::same_pool(&a, &b));
    let mut echoing = config.clone();
    echoing.echo = true;
    let c = cached_pool(&echoing)?;
    assert!(!prefect_db_config::pool::same_pool(&a, &c));
    let pools = Arc::new((a, c));
    assert_eq!(pools.0.dialect(), dialect);
    Ok(())
}

conformance!(
    pool_exhaustion_returns_a_timeout,
    read_then_write_transactions_lose_nothing,
    cancelled_transaction_never_leaks_into_the_pool,
    rollback_on_error_keeps_nothing,
    drop_all_tables_leaves_an_empty_database,
    connectable_answers_within_the_timeout,
    pools_are_cached_by_url_echo_and_timeout,
);
