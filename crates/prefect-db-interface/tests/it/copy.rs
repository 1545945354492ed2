//! `copy`: a whole Prefect database from one backend to the other, on the real Prefect 3.9.1
//! fixtures: the round trip gives the original values in every table, a non-empty target and a
//! source not at Prefect 3.9.1's schema are refused with nothing changed, and an interrupted copy
//! leaves an empty target that a later copy fills.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use prefect_db_interface::config::{DatabaseConfig, DbPool, Dialect};
use prefect_db_interface::copy::{CopyError, CopyEvent, CopyOptions, copy_database, summarize};
use prefect_db_interface::tables::{PrefectTable, RowBatch};
use prefect_db_test::{TestDatabase, TestResult, conformance};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn fixture_db(dialect: Dialect) -> Result<TestDatabase, BoxError> {
    Ok(TestDatabase::prefect_fixture(dialect).await?)
}

fn other(dialect: Dialect) -> Dialect {
    match dialect {
        Dialect::Sqlite => Dialect::Postgres,
        Dialect::Postgres => Dialect::Sqlite,
    }
}

/// Every table's typed rows, in id order.
async fn all_rows(config: &DatabaseConfig) -> Result<Vec<RowBatch>, BoxError> {
    let pool = DbPool::build(config)?;
    let mut obj = pool.get().await?;
    let mut conn = obj.conn();
    let mut out = Vec::new();
    for &table in PrefectTable::ALL {
        out.push(table.read_all(&mut conn, 500).await?);
    }
    Ok(out)
}

async fn total_rows(config: &DatabaseConfig) -> Result<i64, BoxError> {
    let pool = DbPool::build(config)?;
    let mut obj = pool.get().await?;
    let mut conn = obj.conn();
    let mut n = 0;
    for &table in PrefectTable::ALL {
        n += table.count(&mut conn).await?;
    }
    Ok(n)
}

fn quiet() -> impl FnMut(&CopyEvent) -> Result<(), String> + Send {
    |_| Ok(())
}

/// Fixture of `dialect` → the other dialect → `dialect` again: every table's typed rows equal
/// the original's, and the checksums of every step agree.
async fn round_trip_keeps_every_value(dialect: Dialect) -> TestResult {
    let original = fixture_db(dialect).await?;
    let middle = TestDatabase::empty(other(dialect)).await?;
    let back = TestDatabase::empty(dialect).await?;
    let options = CopyOptions { replace: false, batch_size: 200 };

    let there = copy_database(&original.config(), &middle.config(), &options, &mut quiet()).await?;
    let again = copy_database(&middle.config(), &back.config(), &options, &mut quiet()).await?;
    eprintln!(
        "{dialect:?} -> {:?}: {} rows in {:?} ({:.0} rows/s); back: {} rows in {:?} ({:.0} rows/s)",
        other(dialect),
        there.rows,
        there.elapsed,
        there.rows_per_second(),
        again.rows,
        again.elapsed,
        again.rows_per_second()
    );
    assert!(there.rows > 2000, "the fixture has thousands of rows");
    assert_eq!(there.tables, again.tables, "same counts and checksums both ways");

    let a = all_rows(&original.config()).await?;
    let b = all_rows(&middle.config()).await?;
    let c = all_rows(&back.config()).await?;
    for ((x, y), z) in a.iter().zip(&b).zip(&c) {
        assert_eq!(x.len(), z.len(), "{}: row count", x.table());
        assert!(x == y, "{}: values differ after the first copy", x.table());
        assert!(x == z, "{}: values differ after the round trip", x.table());
    }
    let pool = DbPool::build(&back.config())?;
    let mut obj = pool.get().await?;
    assert_eq!(summarize(&mut obj.conn(), 100).await?, there.tables);
    Ok(())
}

/// A non-empty target is refused (nothing changed); `replace` empties and refills it.
async fn non_empty_target_is_refused(dialect: Dialect) -> TestResult {
    let source = fixture_db(Dialect::Sqlite).await?;
    let target = TestDatabase::empty(dialect).await?;
    let first = copy_database(&source.config(), &target.config(), &CopyOptions::default(), &mut quiet()).await?;
    let before = all_rows(&target.config()).await?;

    let err = copy_database(&source.config(), &target.config(), &CopyOptions::default(), &mut quiet())
        .await
        .expect_err("a non-empty target must be refused");
    assert!(matches!(err, CopyError::TargetNotEmpty { .. }), "{err}");
    assert!(err.to_string().contains("--replace"), "{err}");
    assert!(all_rows(&target.config()).await? == before, "nothing changed");

    let replaced = copy_database(&source.config(), &target.config(), &CopyOptions { replace: true, batch_size: 333 }, &mut quiet()).await?;
    assert_eq!(replaced.tables, first.tables);
    assert!(all_rows(&target.config()).await? == before);
    Ok(())
}

/// A source that is not at Prefect 3.9.1's schema is refused, with its first differences, and
/// the target is left untouched.
async fn wrong_schema_source_is_refused(dialect: Dialect) -> TestResult {
    let source = fixture_db(dialect).await?;
    {
        let pool = DbPool::build(&source.config())?;
        let mut obj = pool.get().await?;
        obj.conn().batch_execute("ALTER TABLE flow ADD COLUMN surprise TEXT").await?;
    }
    let target = TestDatabase::empty(other(dialect)).await?;
    let err = copy_database(&source.config(), &target.config(), &CopyOptions::default(), &mut quiet())
        .await
        .expect_err("a source with another schema must be refused");
    match &err {
        CopyError::SourceSchema { differences } => {
            assert!(differences.iter().any(|d| d.contains("surprise")), "{differences:?}");
        }
        other => return Err(format!("expected SourceSchema, got {other}").into()),
    }
    assert!(err.to_string().contains("surprise"), "{err}");
    // Nothing was created in the target: not even our migrations ran.
    let pool = DbPool::build(&target.config())?;
    let mut obj = pool.get().await?;
    let status = PrefectTable::Flow.count(&mut obj.conn()).await;
    assert!(status.is_err(), "the target has no tables");

    // An empty database is not a Prefect database either.
    let empty = TestDatabase::empty(dialect).await?;
    prefect_db_interface::config::admin::create_database(&empty.config()).await?;
    let err = copy_database(&empty.config(), &target.config(), &CopyOptions::default(), &mut quiet())
        .await
        .expect_err("an empty source must be refused");
    assert!(matches!(err, CopyError::SourceSchema { .. }), "{err}");
    Ok(())
}

/// A copy stopped mid-way (the progress callback fails while `task_run` is being copied,
/// after most tables are filled) leaves the target without a single row; a later copy succeeds.
async fn interrupted_copy_leaves_nothing(dialect: Dialect) -> TestResult {
    let source = fixture_db(other(dialect)).await?;
    let target = TestDatabase::empty(dialect).await?;
    let mut seen = 0u64;
    let mut stop = |event: &CopyEvent| match event {
        CopyEvent::Rows { table: PrefectTable::TaskRun, copied, .. } => {
            seen = *copied;
            Err("simulated interruption".to_owned())
        }
        _ => Ok(()),
    };
    let options = CopyOptions { replace: false, batch_size: 10 };
    let err = copy_database(&source.config(), &target.config(), &options, &mut stop)
        .await
        .expect_err("the callback stops the copy");
    assert!(matches!(err, CopyError::Interrupted(_)), "{err}");
    assert!(seen > 0);
    assert_eq!(total_rows(&target.config()).await?, 0, "an interrupted copy leaves no row");

    let report = copy_database(&source.config(), &target.config(), &options, &mut quiet()).await?;
    assert_eq!(total_rows(&target.config()).await?, report.rows as i64);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_database_and_missing_source_are_refused() -> TestResult {
    let db = fixture_db(Dialect::Sqlite).await?;
    let err = copy_database(&db.config(), &db.config(), &CopyOptions::default(), &mut quiet()).await.expect_err("same");
    assert!(matches!(err, CopyError::SameDatabase(_)), "{err}");
    let missing = DatabaseConfig::new(prefect_db_interface::config::DatabaseUrl::parse(
        &format!("sqlite:///{}", db.sqlite_path().expect("sqlite").with_file_name("nope.db").display()),
        "test",
    )?);
    let err = copy_database(&missing, &db.config(), &CopyOptions { replace: true, batch_size: 10 }, &mut quiet())
        .await
        .expect_err("missing");
    assert!(matches!(err, CopyError::SourceMissing(_)), "{err}");
    Ok(())
}

conformance!(
    round_trip_keeps_every_value,
    non_empty_target_is_refused,
    wrong_schema_source_is_refused,
    interrupted_copy_leaves_nothing
);
