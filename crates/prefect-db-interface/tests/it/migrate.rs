//! The migration functions shared by `prefect-db` and `cargo xtask migrate`: what `check`
//! decides, `stamp`, `reset`, `current`, `history` and `ping`, on both dialects.
//!
//! Expected names: the baseline migration folder (`00000000000001_prefect_3_9_1_baseline`) and
//! Prefect 3.9.1's documented alembic heads.

use prefect_db_config::{DatabaseConfig, DatabaseUrl, Dialect};
use prefect_db_interface::migrate::{
    self, CheckOutcome, DatabaseState, HistoryState, StampTarget, UpgradeTarget,
};
use prefect_db_interface::{InterfaceError, database_for};
use prefect_db_test::{TestDatabase, TestResult, conformance};
use std::time::{Duration, Instant};

const BASELINE: &str = "00000000000001_prefect_3_9_1_baseline";
const BASELINE_VERSION: &str = "00000000000001";

fn alembic_head(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "27d8f4e1a6c9",
        Dialect::Postgres => "91e2b8f3d6a4",
    }
}

async fn exec(config: &DatabaseConfig, sql: &str) -> TestResult {
    let interface = database_for(config)?;
    let mut pooled = interface.connection().await?;
    let mut conn = pooled.conn();
    prefect_db_interface::config::dispatch!(&mut conn, |c| {
        diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), c).await
    })?;
    Ok(())
}

async fn check_current_and_history_follow_the_migrations(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let config = db.config();
    let head = alembic_head(dialect);

    match migrate::check(&config).await? {
        CheckOutcome::Pending { pending, adopt } => {
            assert_eq!(
                pending.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
                [BASELINE]
            );
            assert!(!adopt);
        }
        other => panic!("an empty database has pending migrations, got {other:?}"),
    }
    let history = migrate::history(&config).await?;
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].migration.name.as_str(),
            history[0].alembic_revision,
            history[0].state
        ),
        (BASELINE, Some(head), HistoryState::Pending)
    );
    let current = migrate::current(&config).await?;
    assert!(
        current.applied.is_empty() && !current.at_head && current.state == DatabaseState::Empty
    );

    migrate::upgrade(&config, UpgradeTarget::Latest).await?;
    let outcome = migrate::check(&config).await?;
    assert!(outcome.is_up_to_date(), "{outcome:?}");
    assert_eq!(
        outcome,
        CheckOutcome::UpToDate {
            head: Some(migrate::MigrationInfo {
                version: BASELINE_VERSION.to_owned(),
                name: BASELINE.to_owned()
            })
        }
    );
    let current = migrate::current(&config).await?;
    assert!(current.at_head);
    assert_eq!(current.alembic_version, Some(vec![head.to_owned()]));
    assert_eq!(
        migrate::history(&config).await?[0].state,
        HistoryState::Applied
    );

    // alembic_version changed behind our back: a mismatch, not "up to date".
    exec(
        &config,
        "UPDATE alembic_version SET version_num = 'abcdef123456'",
    )
    .await?;
    assert_eq!(
        migrate::check(&config).await?,
        CheckOutcome::AlembicMismatch {
            found: vec!["abcdef123456".to_owned()],
            expected: head
        }
    );
    exec(
        &config,
        &format!("UPDATE alembic_version SET version_num = '{head}'"),
    )
    .await?;
    // A version this build does not know: ahead.
    exec(
        &config,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('99999999999999')",
    )
    .await?;
    assert_eq!(
        migrate::check(&config).await?,
        CheckOutcome::Ahead {
            unknown: vec!["99999999999999".to_owned()]
        }
    );
    let history = migrate::history(&config).await?;
    assert_eq!(
        history
            .last()
            .map(|e| (e.migration.version.as_str(), e.state)),
        Some(("99999999999999", HistoryState::Unknown))
    );
    Ok(())
}

async fn check_classifies_prefect_and_foreign_databases(dialect: Dialect) -> TestResult {
    let fixture = TestDatabase::prefect_fixture(dialect).await?;
    let config = fixture.config();
    assert!(matches!(
        migrate::check(&config).await?,
        CheckOutcome::Pending { adopt: true, .. }
    ));
    exec(
        &config,
        "UPDATE alembic_version SET version_num = 'abcdef123456'",
    )
    .await?;
    assert_eq!(
        migrate::check(&config).await?,
        CheckOutcome::UnknownAlembicRevision {
            found: vec!["abcdef123456".to_owned()],
            supported: vec![alembic_head(dialect)]
        }
    );

    let foreign = TestDatabase::empty(dialect).await?;
    let config = foreign.config();
    migrate::status(&config).await?; // creates the database
    exec(&config, "CREATE TABLE not_prefect (id INTEGER)").await?;
    assert_eq!(
        migrate::check(&config).await?,
        CheckOutcome::NotManaged {
            tables: vec!["not_prefect".to_owned()]
        }
    );
    Ok(())
}

async fn stamp_rewrites_the_bookkeeping_only(dialect: Dialect) -> TestResult {
    let head = alembic_head(dialect);
    let db = TestDatabase::empty(dialect).await?;
    let config = db.config();

    // By alembic revision, on an empty database: recorded, nothing created.
    let report = migrate::stamp(&config, StampTarget::To(head.to_owned())).await?;
    assert_eq!(
        report
            .recorded
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        [BASELINE]
    );
    assert_eq!(report.alembic_version.as_deref(), Some(head));
    let status = migrate::status(&config).await?;
    assert_eq!(status.state, DatabaseState::Managed);
    assert_eq!(status.alembic_version, Some(vec![head.to_owned()]));
    assert!(status.pending.is_empty());

    // Unknown versions are removed by a stamp; base empties everything.
    exec(
        &config,
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('99999999999999')",
    )
    .await?;
    let report = migrate::stamp(&config, StampTarget::Base).await?;
    assert_eq!(report.removed, ["99999999999999", BASELINE_VERSION]);
    assert_eq!(report.alembic_version, None);
    let status = migrate::status(&config).await?;
    assert!(status.applied.is_empty() && status.unknown_applied.is_empty());
    assert_eq!(status.alembic_version, Some(vec![]));

    // By name and by head: the same bookkeeping.
    let by_name = migrate::stamp(&config, StampTarget::To(BASELINE.to_owned())).await?;
    assert_eq!(by_name.recorded.len(), 1);
    let again = migrate::stamp(&config, StampTarget::Head).await?;
    assert!(
        again.recorded.is_empty() && again.removed.is_empty(),
        "already there: {again:?}"
    );
    assert_eq!(again.alembic_version.as_deref(), Some(head));

    let err = migrate::stamp(&config, StampTarget::To("nope".to_owned()))
        .await
        .err()
        .ok_or("unknown target accepted")?;
    assert!(err.to_string().contains("nope"), "{err}");
    Ok(())
}

async fn reset_drops_data_and_migrates(dialect: Dialect) -> TestResult {
    let db = TestDatabase::prefect_fixture(dialect).await?;
    let config = db.config();
    let report = migrate::reset(&config).await?;
    assert!(
        report.dropped.iter().any(|t| t == "flow_run")
            && report.dropped.iter().any(|t| t == "alembic_version")
    );
    assert_eq!(
        report
            .upgrade
            .applied
            .iter()
            .map(|m| m.name.as_str())
            .collect::<Vec<_>>(),
        [BASELINE]
    );
    assert!(migrate::check(&config).await?.is_up_to_date());
    let interface = database_for(&config)?;
    let mut pooled = interface.connection().await?;
    let mut conn = pooled.conn();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let count: Count = prefect_db_interface::config::dispatch!(&mut conn, |c| {
        diesel_async::RunQueryDsl::get_result(
            diesel::sql_query("SELECT COUNT(*) AS n FROM flow_run"),
            c,
        )
        .await
    })?;
    assert_eq!(count.n, 0, "the fixture's flow runs are gone");
    Ok(())
}

async fn ping_answers(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let config = db.config();
    migrate::status(&config).await?; // creates the SQLite file
    let report = migrate::ping(&config).await?;
    assert!(report.elapsed <= config.connection_timeout);
    Ok(())
}

conformance!(
    check_current_and_history_follow_the_migrations,
    check_classifies_prefect_and_foreign_databases,
    stamp_rewrites_the_bookkeeping_only,
    reset_drops_data_and_migrates,
    ping_answers,
);

#[tokio::test(flavor = "multi_thread")]
async fn ping_is_unreachable_within_the_timeout() -> TestResult {
    let mut config = DatabaseConfig::new(DatabaseUrl::parse(
        "postgresql://postgres:s3cret@192.0.2.1:5432/prefect",
        "test",
    )?);
    config.connection_timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = migrate::ping(&config)
        .await
        .err()
        .ok_or("a non-routable address answered")?;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.is_unreachable(), "{err}");
    assert!(matches!(err, InterfaceError::Unreachable { .. }));
    assert!(!err.to_string().contains("s3cret"), "{err}");

    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("missing.db");
    let config = DatabaseConfig::new(DatabaseUrl::parse(
        &format!("sqlite:///{}", missing.display()),
        "test",
    )?);
    assert!(
        migrate::ping(&config)
            .await
            .err()
            .is_some_and(|e| e.is_unreachable())
    );
    assert!(!missing.exists(), "ping creates nothing");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn looking_at_a_missing_database_creates_nothing() -> TestResult {
    // SQLite: a missing file reads as the empty database `upgrade` would create.
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("nested/missing.db");
    let config = DatabaseConfig::new(DatabaseUrl::parse(&format!("sqlite:///{}", missing.display()), "test")?);
    match migrate::check(&config).await? {
        CheckOutcome::Pending { pending, adopt } => {
            assert_eq!(pending.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), [BASELINE]);
            assert!(!adopt);
        }
        other => panic!("a missing file has everything pending, got {other:?}"),
    }
    let history = migrate::history(&config).await?;
    assert_eq!(history.iter().map(|h| h.state).collect::<Vec<_>>(), [HistoryState::Pending]);
    let current = migrate::current(&config).await?;
    assert!(current.applied.is_empty() && !current.at_head);
    assert!(!missing.exists() && !missing.parent().is_some_and(|p| p.exists()), "neither the file nor its folder");

    // PostgreSQL: a missing database is the connection's error, and stays missing.
    let db = TestDatabase::empty(Dialect::Postgres).await?;
    let Some(url) = db.postgres_url() else { return Err("no PostgreSQL URL".into()) };
    let name = format!("prefect_db_missing_{}", uuid::Uuid::new_v4().simple());
    let mut config = db.config();
    config.url = DatabaseUrl::Postgres(url.with_database(&name));
    for outcome in [
        migrate::check(&config).await.err(),
        migrate::history(&config).await.err(),
        migrate::current(&config).await.err(),
    ] {
        let err = outcome.ok_or("a missing database answered")?;
        assert!(err.to_string().contains(&format!("database \"{name}\" does not exist")), "the server's reason: {err}");
    }
    let exists: i64 = {
        use diesel::prelude::*;
        use diesel_async::RunQueryDsl;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let pool = prefect_db_config::DbPool::build(&db.config())?;
        let mut pooled = pool.get().await?;
        let prefect_db_config::Conn::Postgres(c) = &mut pooled.conn() else { return Err("not PostgreSQL".into()) };
        let row: N = diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
            .bind::<diesel::sql_types::Text, _>(&name)
            .get_result(&mut **c)
            .await?;
        row.n
    };
    assert_eq!(exists, 0, "the database was not created");
    Ok(())
}
