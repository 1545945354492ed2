//! The embedded migrations against real databases of both dialects: the baseline equals Prefect
//! 3.9.1's schema, up → down → up round-trips, databases written by real Prefect 3.9.1 are
//! adopted untouched, foreign databases are refused untouched, and concurrent migrators apply
//! the baseline once; stamping rewrites the bookkeeping without running anything.
//!
//! Each body runs once per dialect (`conformance!`), on its own database from `prefect-db-test`.

use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use prefect_db_test::{Dialect, TestDatabase, TestResult, conformance};
use prefect_orm::migrations::{
    BASELINE_NAME, BASELINE_VERSION, DatabaseState, DowngradeTarget, MigrationError, MigrationInfo,
    MigrationStatus, POSTGRES_ALEMBIC_HEAD, PgMigrator, SQLITE_ALEMBIC_HEAD, StampReport,
    StampTarget, UpgradeReport, UpgradeTarget, downgrade_sqlite, stamp_sqlite, status_sqlite,
    upgrade_sqlite,
};
use prefect_orm::schema_check::{
    LiveConnection, canonical_postgres, canonical_sqlite, check_against_prefect_3_9_1, diff,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

conformance!(
    migrating_an_empty_database_gives_prefect_3_9_1,
    up_down_up_round_trips,
    adopts_a_real_prefect_3_9_1_database,
    refuses_another_alembic_revision,
    refuses_a_foreign_database,
    concurrent_migrators_apply_the_baseline_once,
    stamp_records_without_running,
);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn head(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => SQLITE_ALEMBIC_HEAD,
        Dialect::Postgres => POSTGRES_ALEMBIC_HEAD,
    }
}

fn baseline() -> MigrationInfo {
    MigrationInfo {
        version: BASELINE_VERSION.to_owned(),
        name: BASELINE_NAME.to_owned(),
    }
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// A test database and the dialect-specific ways to reach it.
struct Db {
    _db: TestDatabase,
    target: Target,
}

#[derive(Clone)]
enum Target {
    Sqlite(String),
    Postgres(String),
}

impl Db {
    async fn empty(dialect: Dialect) -> Result<Db, BoxError> {
        let db = TestDatabase::empty(dialect).await?;
        let target = match dialect {
            Dialect::Sqlite => Target::Sqlite(
                db.sqlite_path()
                    .ok_or("no sqlite path")?
                    .to_string_lossy()
                    .into_owned(),
            ),
            Dialect::Postgres => Target::Postgres(
                db.postgres_url()
                    .ok_or("no postgres url")?
                    .expose()
                    .to_owned(),
            ),
        };
        Ok(Db { _db: db, target })
    }

    /// A database holding the fixture written by real Prefect 3.9.1.
    async fn prefect_3_9_1(dialect: Dialect) -> Result<Db, BoxError> {
        let db = Db::empty(dialect).await?;
        match &db.target {
            Target::Sqlite(path) => {
                std::fs::copy(fixture("prefect-3.9.1.sqlite.db"), path)?;
            }
            Target::Postgres(url) => {
                let out = tokio::process::Command::new("psql")
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
                    .arg(fixture("prefect-3.9.1.postgres.sql"))
                    .output()
                    .await?;
                if !out.status.success() {
                    return Err(format!(
                        "psql restore failed: {}",
                        String::from_utf8_lossy(&out.stderr)
                    )
                    .into());
                }
            }
        }
        Ok(db)
    }

    fn sqlite(path: &str) -> Result<SqliteConnection, BoxError> {
        let mut conn = SqliteConnection::establish(path)?;
        diesel::connection::SimpleConnection::batch_execute(
            &mut conn,
            "PRAGMA busy_timeout = 30000; PRAGMA foreign_keys = ON;",
        )?;
        Ok(conn)
    }

    async fn pg(url: &str) -> Result<AsyncPgConnection, BoxError> {
        Ok(AsyncPgConnection::establish(url).await?)
    }

    async fn upgrade(&self, target: UpgradeTarget) -> Result<UpgradeReport, MigrationError> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut conn = Db::sqlite(path).map_err(|e| MigrationError::Task(e.to_string()))?;
                upgrade_sqlite(&mut conn, &target)
            }
            Target::Postgres(url) => {
                let conn = Db::pg(url)
                    .await
                    .map_err(|e| MigrationError::Task(e.to_string()))?;
                PgMigrator::new(conn).upgrade(target).await
            }
        }
    }

    async fn downgrade(
        &self,
        target: DowngradeTarget,
    ) -> Result<Vec<MigrationInfo>, MigrationError> {
        match &self.target {
            Target::Sqlite(path) => {
                let mut conn = Db::sqlite(path).map_err(|e| MigrationError::Task(e.to_string()))?;
                downgrade_sqlite(&mut conn, &target)
            }
            Target::Postgres(url) => {
                let conn = Db::pg(url)
                    .await
                    .map_err(|e| MigrationError::Task(e.to_string()))?;
                PgMigrator::new(conn).downgrade(target).await
            }
        }
    }

    async fn stamp(&self, target: StampTarget) -> Result<StampReport, BoxError> {
        Ok(match &self.target {
            Target::Sqlite(path) => stamp_sqlite(&mut Db::sqlite(path)?, &target)?,
            Target::Postgres(url) => PgMigrator::new(Db::pg(url).await?).stamp(target).await?,
        })
    }

    async fn status(&self) -> Result<MigrationStatus, BoxError> {
        Ok(match &self.target {
            Target::Sqlite(path) => status_sqlite(&mut Db::sqlite(path)?)?,
            Target::Postgres(url) => PgMigrator::new(Db::pg(url).await?).status().await?,
        })
    }

    /// The canonical schema dump.
    async fn dump(&self) -> Result<Value, BoxError> {
        Ok(match &self.target {
            Target::Sqlite(path) => canonical_sqlite(&mut Db::sqlite(path)?)?,
            Target::Postgres(url) => canonical_postgres(&mut Db::pg(url).await?).await?,
        })
    }

    /// Differences from Prefect 3.9.1's schema.
    async fn differences(&self) -> Result<Vec<String>, BoxError> {
        Ok(match &self.target {
            Target::Sqlite(path) => {
                check_against_prefect_3_9_1(LiveConnection::Sqlite(&mut Db::sqlite(path)?)).await?
            }
            Target::Postgres(url) => {
                check_against_prefect_3_9_1(LiveConnection::Postgres(&mut Db::pg(url).await?))
                    .await?
            }
        })
    }

    async fn strings(&self, sql: &str) -> Result<Vec<String>, BoxError> {
        let rows: Vec<TextRow> = match &self.target {
            Target::Sqlite(path) => diesel::sql_query(sql).load(&mut Db::sqlite(path)?)?,
            Target::Postgres(url) => {
                diesel_async::RunQueryDsl::load(diesel::sql_query(sql), &mut Db::pg(url).await?)
                    .await?
            }
        };
        Ok(rows.into_iter().map(|r| r.v).collect())
    }

    async fn count(&self, sql: &str) -> Result<i64, BoxError> {
        let row: CountRow = match &self.target {
            Target::Sqlite(path) => diesel::sql_query(sql).get_result(&mut Db::sqlite(path)?)?,
            Target::Postgres(url) => {
                diesel_async::RunQueryDsl::get_result(
                    diesel::sql_query(sql),
                    &mut Db::pg(url).await?,
                )
                .await?
            }
        };
        Ok(row.n)
    }

    async fn execute(&self, sql: &str) -> Result<(), BoxError> {
        match &self.target {
            Target::Sqlite(path) => {
                diesel::connection::SimpleConnection::batch_execute(&mut Db::sqlite(path)?, sql)?
            }
            Target::Postgres(url) => Db::pg(url).await?.batch_execute(sql).await?,
        }
        Ok(())
    }

    /// Every table and view (diesel's bookkeeping included), sorted.
    async fn tables(&self) -> Result<Vec<String>, BoxError> {
        self.strings(match self.target {
            Target::Sqlite(_) => {
                "SELECT name AS v FROM sqlite_master WHERE type IN ('table', 'view') \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            }
            Target::Postgres(_) => {
                "SELECT c.relname::text AS v FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r','p','v','m','f') \
                 ORDER BY 1"
            }
        })
        .await
    }

    /// Tables other than diesel's bookkeeping.
    async fn user_tables(&self) -> Result<Vec<String>, BoxError> {
        Ok(self
            .tables()
            .await?
            .into_iter()
            .filter(|t| t != "__diesel_schema_migrations")
            .collect())
    }

    /// The row count of every table.
    async fn row_counts(&self) -> Result<BTreeMap<String, i64>, BoxError> {
        let mut counts = BTreeMap::new();
        for t in self.tables().await? {
            let n = self
                .count(&format!("SELECT count(*) AS n FROM \"{t}\""))
                .await?;
            counts.insert(t, n);
        }
        Ok(counts)
    }

    async fn alembic(&self) -> Result<Vec<String>, BoxError> {
        self.strings("SELECT version_num AS v FROM alembic_version")
            .await
    }

    async fn bookkeeping(&self) -> Result<Vec<String>, BoxError> {
        self.strings("SELECT version AS v FROM __diesel_schema_migrations ORDER BY version")
            .await
    }

    /// Everything a refusal must leave alone.
    async fn snapshot(&self) -> Result<(Value, BTreeMap<String, i64>), BoxError> {
        Ok((self.dump().await?, self.row_counts().await?))
    }
}

fn no_differences(what: &str, differences: &[String]) -> TestResult {
    if differences.is_empty() {
        return Ok(());
    }
    for d in differences {
        eprintln!("{d}");
    }
    Err(format!(
        "{what}: {} differences from Prefect 3.9.1 (listed above)",
        differences.len()
    )
    .into())
}

fn ensure(cond: bool, msg: impl Into<String>) -> TestResult {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

async fn migrating_an_empty_database_gives_prefect_3_9_1(dialect: Dialect) -> TestResult {
    let db = Db::empty(dialect).await?;
    let status = db.status().await?;
    ensure(
        status.state == DatabaseState::Empty,
        format!("fresh: {status:?}"),
    )?;
    ensure(
        status.pending == vec![baseline()],
        format!("pending: {:?}", status.pending),
    )?;

    let report = db.upgrade(UpgradeTarget::Latest).await?;
    ensure(
        report
            == UpgradeReport {
                adopted: vec![],
                applied: vec![baseline()],
            },
        format!("report: {report:?}"),
    )?;
    no_differences("migrated empty database", &db.differences().await?)?;
    ensure(
        db.alembic().await? == [head(dialect)],
        "alembic_version is not the 3.9.1 head",
    )?;
    ensure(db.bookkeeping().await? == [BASELINE_VERSION], "bookkeeping")?;

    let status = db.status().await?;
    ensure(
        status.state == DatabaseState::Managed
            && status.applied == vec![baseline()]
            && status.pending.is_empty()
            && status.unknown_applied.is_empty()
            && status.alembic_version == Some(vec![head(dialect).to_owned()]),
        format!("status: {status:?}"),
    )?;

    // Running again changes nothing.
    let again = db.upgrade(UpgradeTarget::Latest).await?;
    ensure(
        again == UpgradeReport::default(),
        format!("second run: {again:?}"),
    )?;

    if let Target::Postgres(url) = &db.target {
        // The session's statement_timeout is restored and the advisory lock released.
        let mut conn = Db::pg(url).await?;
        conn.batch_execute("SET statement_timeout = '12345ms'")
            .await?;
        let mut migrator =
            PgMigrator::new(conn).with_statement_timeout(Some(std::time::Duration::from_secs(60)));
        migrator.upgrade(UpgradeTarget::Latest).await?;
        let mut conn = migrator.into_inner().ok_or("connection lost")?;
        let rows: Vec<TextRow> = diesel_async::RunQueryDsl::load(
            diesel::sql_query("SELECT current_setting('statement_timeout') AS v"),
            &mut conn,
        )
        .await?;
        ensure(
            rows.first().map(|r| r.v.as_str()) == Some("12345ms"),
            "statement_timeout",
        )?;
        let locks = db
            .count("SELECT count(*) AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database WHERE l.locktype = 'advisory' AND d.datname = current_database()")
            .await?;
        ensure(locks == 0, format!("{locks} advisory locks left"))?;
    }
    Ok(())
}

async fn up_down_up_round_trips(dialect: Dialect) -> TestResult {
    let db = Db::empty(dialect).await?;
    // Upgrading to a named target.
    let report = db
        .upgrade(UpgradeTarget::To(BASELINE_NAME.to_owned()))
        .await?;
    ensure(report.applied == vec![baseline()], format!("{report:?}"))?;
    let first = db.dump().await?;

    // Downgrade targets that do nothing or cannot be met.
    ensure(
        db.downgrade(DowngradeTarget::To(BASELINE_VERSION.into()))
            .await?
            .is_empty(),
        "to",
    )?;
    ensure(
        matches!(
            db.downgrade(DowngradeTarget::Steps(2)).await,
            Err(MigrationError::TooManySteps {
                requested: 2,
                applied: 1
            })
        ),
        "two steps of one",
    )?;
    ensure(
        matches!(
            db.upgrade(UpgradeTarget::To("99999999999999".into())).await,
            Err(MigrationError::UnknownTarget { .. })
        ),
        "unknown target",
    )?;

    let reverted = db.downgrade(DowngradeTarget::Steps(1)).await?;
    ensure(
        reverted == vec![baseline()],
        format!("reverted: {reverted:?}"),
    )?;
    let left = db.user_tables().await?;
    ensure(left.is_empty(), format!("tables left after down: {left:?}"))?;
    ensure(
        db.bookkeeping().await?.is_empty(),
        "bookkeeping rows left after down",
    )?;
    if dialect == Dialect::Postgres {
        let types = db
            .count(
                "SELECT count(*) AS n FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 WHERE n.nspname = current_schema() AND t.typtype = 'e'",
            )
            .await?;
        let trgm = db
            .count("SELECT count(*) AS n FROM pg_extension WHERE extname = 'pg_trgm'")
            .await?;
        ensure(
            types == 0 && trgm == 0,
            format!("{types} enum types, {trgm} pg_trgm left"),
        )?;
    }
    let status = db.status().await?;
    ensure(
        status.state == DatabaseState::Empty,
        format!("after down: {status:?}"),
    )?;

    let report = db.upgrade(UpgradeTarget::Latest).await?;
    ensure(report.applied == vec![baseline()], format!("{report:?}"))?;
    let second = db.dump().await?;
    no_differences("up → down → up", &diff(&second, &first))?;
    no_differences("up → down → up vs golden", &db.differences().await?)?;

    let reverted = db.downgrade(DowngradeTarget::Base).await?;
    ensure(reverted == vec![baseline()], format!("base: {reverted:?}"))?;
    ensure(
        db.user_tables().await?.is_empty(),
        "tables left after down to base",
    )?;
    Ok(())
}

async fn adopts_a_real_prefect_3_9_1_database(dialect: Dialect) -> TestResult {
    let db = Db::prefect_3_9_1(dialect).await?;
    let (dump_before, counts_before) = db.snapshot().await?;
    ensure(
        counts_before.get("flow_run") == Some(&21),
        "fixture has 21 flow runs",
    )?;
    ensure(
        counts_before.get("events") == Some(&450),
        "fixture has 450 events",
    )?;
    let status = db.status().await?;
    ensure(
        status.state
            == DatabaseState::Adoptable {
                alembic_revision: head(dialect).to_owned(),
            },
        format!("status: {status:?}"),
    )?;

    let report = db.upgrade(UpgradeTarget::Latest).await?;
    ensure(
        report
            == UpgradeReport {
                adopted: vec![baseline()],
                applied: vec![],
            },
        format!("report: {report:?}"),
    )?;
    ensure(
        db.bookkeeping().await? == [BASELINE_VERSION],
        "baseline not recorded",
    )?;
    ensure(
        db.alembic().await? == [head(dialect)],
        "alembic_version changed",
    )?;

    let (dump_after, mut counts_after) = db.snapshot().await?;
    no_differences(
        "schema changed by adoption",
        &diff(&dump_after, &dump_before),
    )?;
    let recorded = counts_after.remove("__diesel_schema_migrations");
    ensure(
        recorded == Some(1),
        format!("bookkeeping rows: {recorded:?}"),
    )?;
    ensure(
        counts_after == counts_before,
        "row counts changed by adoption",
    )?;
    no_differences("adopted Prefect 3.9.1 database", &db.differences().await?)?;

    let status = db.status().await?;
    ensure(
        status.state == DatabaseState::Managed,
        format!("after: {status:?}"),
    )?;
    let again = db.upgrade(UpgradeTarget::Latest).await?;
    ensure(
        again == UpgradeReport::default(),
        format!("second run: {again:?}"),
    )?;
    Ok(())
}

async fn refuses_another_alembic_revision(dialect: Dialect) -> TestResult {
    let db = Db::prefect_3_9_1(dialect).await?;
    // The head before 3.9.1's, as a Prefect 3.8 database would carry.
    let older = match dialect {
        Dialect::Sqlite => "f416ea180ae1",
        Dialect::Postgres => "9e9dadc36797",
    };
    db.execute(&format!(
        "UPDATE alembic_version SET version_num = '{older}'"
    ))
    .await?;
    let before = db.snapshot().await?;
    let tables_before = db.tables().await?;

    let status = db.status().await?;
    ensure(
        status.state
            == DatabaseState::UnsupportedAlembicRevision {
                found: vec![older.into()],
            },
        format!("status: {status:?}"),
    )?;
    for result in [
        db.upgrade(UpgradeTarget::Latest).await.map(drop),
        db.downgrade(DowngradeTarget::Base).await.map(drop),
    ] {
        match result {
            Err(e @ MigrationError::UnsupportedAlembicRevision { .. }) => {
                let message = e.to_string();
                ensure(
                    message.contains(older) && message.contains("prefect server database upgrade"),
                    format!("message: {message}"),
                )?;
            }
            other => return Err(format!("expected a refusal, got {other:?}").into()),
        }
    }
    ensure(
        db.tables().await? == tables_before,
        "tables changed (bookkeeping created?)",
    )?;
    ensure(
        db.snapshot().await? == before,
        "schema or rows changed by a refusal",
    )?;
    ensure(db.alembic().await? == [older], "alembic_version changed")?;
    Ok(())
}

async fn refuses_a_foreign_database(dialect: Dialect) -> TestResult {
    let db = Db::empty(dialect).await?;
    db.execute(
        "CREATE TABLE inventory (id INTEGER PRIMARY KEY, item VARCHAR(20)); \
         INSERT INTO inventory (id, item) VALUES (1, 'apples'), (2, 'pears');",
    )
    .await?;
    let before = db.snapshot().await?;
    let tables_before = db.tables().await?;
    match db.upgrade(UpgradeTarget::Latest).await {
        Err(e @ MigrationError::NotEmpty { .. }) => {
            let message = e.to_string();
            ensure(message.contains("inventory"), format!("message: {message}"))?;
        }
        other => return Err(format!("expected a refusal, got {other:?}").into()),
    }
    ensure(
        db.tables().await? == tables_before,
        "tables changed (bookkeeping created?)",
    )?;
    ensure(
        db.snapshot().await? == before,
        "schema or rows changed by a refusal",
    )?;
    let status = db.status().await?;
    ensure(
        status.state
            == DatabaseState::Unmanaged {
                tables: vec!["inventory".into()],
            },
        format!("status: {status:?}"),
    )?;
    Ok(())
}

async fn concurrent_migrators_apply_the_baseline_once(dialect: Dialect) -> TestResult {
    let db = Db::empty(dialect).await?;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let target = db.target.clone();
        tasks.push(tokio::spawn(async move {
            match target {
                Target::Sqlite(path) => {
                    tokio::task::spawn_blocking(move || {
                        let mut conn = Db::sqlite(&path)?;
                        Ok::<_, BoxError>(upgrade_sqlite(&mut conn, &UpgradeTarget::Latest)?)
                    })
                    .await?
                }
                Target::Postgres(url) => {
                    let conn = Db::pg(&url).await?;
                    Ok(PgMigrator::new(conn).upgrade(UpgradeTarget::Latest).await?)
                }
            }
        }));
    }
    let mut applied = 0;
    for task in tasks {
        let report = task.await??;
        applied += report.applied.len();
    }
    ensure(
        applied == 1,
        format!("the baseline was applied {applied} times"),
    )?;
    ensure(db.bookkeeping().await? == [BASELINE_VERSION], "bookkeeping")?;
    no_differences("concurrently migrated database", &db.differences().await?)?;
    Ok(())
}

/// PostgreSQL only: with a non-`public` schema first on the `search_path`, everything lands in
/// that schema and still equals Prefect 3.9.1's schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_migrates_into_the_current_schema() -> TestResult {
    let db = Db::empty(Dialect::Postgres).await?;
    let Target::Postgres(url) = &db.target else {
        return Err("not postgres".into());
    };
    let mut conn = Db::pg(url).await?;
    conn.batch_execute("CREATE SCHEMA prefect; SET search_path = prefect")
        .await?;
    let mut migrator = PgMigrator::new(conn);
    let report = migrator.upgrade(UpgradeTarget::Latest).await?;
    ensure(report.applied == vec![baseline()], format!("{report:?}"))?;
    let mut conn = migrator.into_inner().ok_or("connection lost")?;
    no_differences(
        "schema prefect",
        &check_against_prefect_3_9_1(LiveConnection::Postgres(&mut conn)).await?,
    )?;
    let in_public = db
        .count(
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public'",
        )
        .await?;
    ensure(
        in_public == 0,
        format!("{in_public} relations created in public"),
    )?;
    let mut migrator = PgMigrator::new(conn);
    let reverted = migrator.downgrade(DowngradeTarget::Base).await?;
    ensure(reverted == vec![baseline()], format!("{reverted:?}"))?;
    Ok(())
}

/// Stamping a database real Prefect wrote records the baseline (and `stamp base` removes it)
/// without touching its schema or rows.
async fn stamp_records_without_running(dialect: Dialect) -> TestResult {
    let db = Db::prefect_3_9_1(dialect).await?;
    // The schema dump ignores the bookkeeping; so do the row counts here.
    async fn data(db: &Db) -> Result<(Value, BTreeMap<String, i64>), BoxError> {
        let (dump, mut counts) = db.snapshot().await?;
        counts.retain(|t, _| t != "__diesel_schema_migrations" && t != "alembic_version");
        Ok((dump, counts))
    }
    let before = data(&db).await?;
    let report = db.stamp(StampTarget::Head).await?;
    ensure(
        report.recorded == vec![baseline()] && report.removed.is_empty(),
        format!("{report:?}"),
    )?;
    ensure(
        report.alembic_version.as_deref() == Some(head(dialect)),
        format!("{report:?}"),
    )?;
    ensure(data(&db).await? == before, "stamp head changed the schema or rows")?;
    ensure(db.bookkeeping().await? == [BASELINE_VERSION], "bookkeeping after stamp head")?;
    ensure(db.status().await?.state == DatabaseState::Managed, "managed after stamp head")?;

    let report = db.stamp(StampTarget::Base).await?;
    ensure(
        report.removed == [BASELINE_VERSION] && report.alembic_version.is_none(),
        format!("{report:?}"),
    )?;
    ensure(db.alembic().await?.is_empty(), "alembic_version emptied by stamp base")?;
    ensure(db.bookkeeping().await?.is_empty(), "bookkeeping emptied by stamp base")?;
    ensure(data(&db).await? == before, "stamp base changed the schema or rows")?;

    // By the mirrored alembic revision: the same as head.
    let report = db.stamp(StampTarget::To(head(dialect).to_owned())).await?;
    ensure(report.recorded == vec![baseline()], format!("{report:?}"))?;
    ensure(db.alembic().await? == [head(dialect)], "alembic_version back at the head")?;
    Ok(())
}
