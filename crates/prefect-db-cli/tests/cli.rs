//! The `prefect-db` binary, run as a child process on an isolated database per test (both
//! dialects) with `--url`, an isolated `PREFECT_HOME` and working directory, and stdin that is
//! not a terminal: every command's happy path, the refusal of destructive commands without
//! `-y` (database unchanged, checked by querying it), `check`'s exit statuses, `ping`, and `copy`.
//!
//! Expected names come from the migration tree (`00000000000001_prefect_3_9_1_baseline`) and
//! Prefect 3.9.1's documented alembic heads (`27d8f4e1a6c9` on SQLite, `91e2b8f3d6a4` on
//! PostgreSQL); exit statuses from the documented table (0 ok, 1 error, 3 pending, 4 ahead or
//! unknown, 5 unreachable, 6 refused).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use prefect_db_interface::config::{DatabaseConfig, DatabaseUrl, DbPool, Dialect, TxMode};
use prefect_db_test::{TestDatabase, TestResult, conformance};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const BASELINE: &str = "00000000000001_prefect_3_9_1_baseline";
const BASELINE_VERSION: &str = "00000000000001";

fn alembic_head(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "27d8f4e1a6c9",
        Dialect::Postgres => "91e2b8f3d6a4",
    }
}

const OK: i32 = 0;
const ERROR: i32 = 1;
const PENDING: i32 = 3;
const AHEAD: i32 = 4;
const UNREACHABLE: i32 = 5;
const REFUSED: i32 = 6;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/prefect-3.9.1.sqlite.db")
}

/// The outcome of one run of the binary.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A `prefect-db` command isolated from the user's settings: `PREFECT_HOME` and the working
/// directory are `home`, the database settings of the environment are removed, stdin is not a
/// terminal.
fn command(home: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_prefect-db"));
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LOG")
        .env_remove("PREFECT_PROFILE")
        .env_remove("PREFECT_SERVER_DATABASE_CONNECTION_URL")
        .env_remove("PREFECT_API_DATABASE_CONNECTION_URL")
        .env_remove("PREFECT_SERVER_DATABASE_READ_REPLICA_CONNECTION_URL")
        .env_remove("PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT")
        .env_remove("PREFECT_API_DATABASE_CONNECTION_TIMEOUT")
        .env("PREFECT_HOME", home)
        .current_dir(home)
        .stdin(Stdio::null());
    cmd
}

async fn run_in(home: &Path, args: &[&str]) -> Result<Run, BoxError> {
    let out = command(home).args(args).output().await?;
    Ok(Run {
        code: out.status.code().ok_or("killed by a signal")?,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// One test's database and an isolated home folder.
struct Env {
    db: TestDatabase,
    home: tempfile::TempDir,
    url: String,
}

impl Env {
    async fn empty(dialect: Dialect) -> Result<Env, BoxError> {
        Env::new(TestDatabase::empty(dialect).await?)
    }

    fn new(db: TestDatabase) -> Result<Env, BoxError> {
        let url = match db.url() {
            DatabaseUrl::Postgres(u) => u.expose().to_owned(),
            DatabaseUrl::Sqlite(_) => format!(
                "sqlite+aiosqlite:///{}",
                db.sqlite_path().ok_or("no file")?.display()
            ),
        };
        Ok(Env {
            db,
            home: tempfile::tempdir()?,
            url,
        })
    }

    /// Runs `prefect-db --url <this database> args…`.
    async fn run(&self, args: &[&str]) -> Result<Run, BoxError> {
        let mut all = vec!["--url", self.url.as_str()];
        all.extend_from_slice(args);
        run_in(self.home.path(), &all).await
    }

    /// Runs and requires the exit status.
    async fn expect(&self, code: i32, args: &[&str]) -> Result<Run, BoxError> {
        let run = self.run(args).await?;
        if run.code != code {
            return Err(format!("prefect-db {args:?}: expected exit {code}, got {run}").into());
        }
        Ok(run)
    }

    fn config(&self) -> DatabaseConfig {
        self.db.config()
    }

    async fn migrated(dialect: Dialect) -> Result<Env, BoxError> {
        let env = Env::empty(dialect).await?;
        env.expect(OK, &["upgrade"]).await?;
        Ok(env)
    }
}

/// What the database holds, read with plain SQL: its tables, diesel's bookkeeping rows and
/// `alembic_version` rows (`None` for a missing table), and the `configuration` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    tables: Vec<String>,
    diesel: Option<Vec<String>>,
    alembic: Option<Vec<String>>,
    configuration_keys: Option<Vec<String>>,
}

async fn strings(config: &DatabaseConfig, sql: &str) -> Result<Vec<String>, BoxError> {
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        v: String,
    }
    // In a transaction: the same on every set-up, a transaction-mode pooler included.
    let pool = DbPool::build(config)?;
    let mut pooled = pool.get().await?;
    let rows: Vec<Row> = pooled
        .conn()
        .transaction(TxMode::Read, async |conn| {
            prefect_db_interface::config::dispatch!(conn, |c| diesel_async::RunQueryDsl::load(diesel::sql_query(sql), c).await)
        })
        .await?;
    Ok(rows.into_iter().map(|r| r.v).collect())
}

async fn exec(config: &DatabaseConfig, sql: &str) -> TestResult {
    let pool = DbPool::build(config)?;
    let mut pooled = pool.get().await?;
    pooled
        .conn()
        .transaction(TxMode::Write, async |conn| {
            prefect_db_interface::config::dispatch!(conn, |c| diesel_async::RunQueryDsl::execute(diesel::sql_query(sql), c).await)
        })
        .await?;
    Ok(())
}

async fn snapshot(config: &DatabaseConfig) -> Result<Snapshot, BoxError> {
    let list = match config.dialect() {
        Dialect::Sqlite => {
            "SELECT name AS v FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1"
        }
        Dialect::Postgres => {
            "SELECT c.relname::text AS v FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1"
        }
    };
    let mut tables = strings(config, list).await?;
    tables.sort(); // the same order on both dialects, whatever the collation
    let has = |t: &str| tables.iter().any(|x| x == t);
    let diesel = if has("__diesel_schema_migrations") {
        Some(
            strings(
                config,
                "SELECT version AS v FROM __diesel_schema_migrations ORDER BY 1",
            )
            .await?,
        )
    } else {
        None
    };
    let alembic = if has("alembic_version") {
        Some(
            strings(
                config,
                "SELECT version_num AS v FROM alembic_version ORDER BY 1",
            )
            .await?,
        )
    } else {
        None
    };
    let configuration_keys = if has("configuration") {
        Some(strings(config, "SELECT key AS v FROM configuration ORDER BY 1").await?)
    } else {
        None
    };
    Ok(Snapshot {
        tables,
        diesel,
        alembic,
        configuration_keys,
    })
}

fn owned(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| (*s).to_owned()).collect())
}

// ------------------------------------------------------------------------------------------
// Both dialects
// ------------------------------------------------------------------------------------------

/// `check` before and after `upgrade`, with `current` and `history` on both sides.
async fn upgrade_check_current_history(dialect: Dialect) -> TestResult {
    let env = Env::empty(dialect).await?;
    let head = alembic_head(dialect);

    let before = env.expect(PENDING, &["check"]).await?;
    assert!(
        before.stdout.contains("pending: 1 migration(s)") && before.stdout.contains(BASELINE),
        "{before}"
    );
    let current = env.expect(OK, &["current"]).await?;
    assert!(current.stdout.contains("applied: (none)"), "{current}");
    let history = env.expect(OK, &["history"]).await?;
    assert!(
        history.stdout.contains(&format!(
            "[pending] {BASELINE} (Prefect alembic revision {head})"
        )),
        "{history}"
    );

    let up = env.expect(OK, &["upgrade"]).await?;
    assert!(up.stdout.contains(&format!("applied  {BASELINE}")), "{up}");
    let snap = snapshot(&env.config()).await?;
    assert_eq!(snap.diesel, owned(&[BASELINE_VERSION]));
    assert_eq!(snap.alembic, owned(&[head]));
    assert!(snap.tables.iter().any(|t| t == "flow_run"), "{snap:?}");

    let after = env.expect(OK, &["check"]).await?;
    assert!(
        after.stdout.contains(&format!("up to date: {BASELINE}")),
        "{after}"
    );
    let current = env.expect(OK, &["current"]).await?;
    assert!(
        current
            .stdout
            .contains(&format!("applied: {BASELINE} (head)")),
        "{current}"
    );
    assert!(
        current.stdout.contains(&format!("alembic_version: {head}")),
        "{current}"
    );
    let history = env.expect(OK, &["history"]).await?;
    assert!(
        history.stdout.contains(&format!(
            "[applied] {BASELINE} (Prefect alembic revision {head})"
        )),
        "{history}"
    );
    assert!(!history.stdout.contains("[pending]"), "{history}");

    let again = env.expect(OK, &["upgrade", "-y"]).await?;
    assert!(again.stdout.contains("already up to date"), "{again}");
    assert_eq!(
        snapshot(&env.config()).await?,
        snap,
        "a second upgrade changes nothing"
    );
    Ok(())
}

/// `downgrade` is refused without `-y` (nothing changes), and with it reverts the baseline.
async fn downgrade_refused_then_confirmed(dialect: Dialect) -> TestResult {
    let env = Env::migrated(dialect).await?;
    exec(
        &env.config(),
        "INSERT INTO configuration (key, value) VALUES ('keep-me', '{}')",
    )
    .await?;
    let before = snapshot(&env.config()).await?;

    for args in [
        &["downgrade"][..],
        &["downgrade", "--steps", "1"],
        &["downgrade", "--revision", "base"],
    ] {
        let refused = env.expect(REFUSED, args).await?;
        assert!(
            refused.stderr.contains("refused") && refused.stderr.contains("-y"),
            "{refused}"
        );
        assert_eq!(
            snapshot(&env.config()).await?,
            before,
            "{args:?} refused: nothing changed"
        );
    }

    let done = env.expect(OK, &["downgrade", "-y"]).await?;
    assert!(
        done.stdout.contains(&format!("reverted {BASELINE}"))
            && done.stdout.contains("1 migration(s) reverted"),
        "{done}"
    );
    let after = snapshot(&env.config()).await?;
    assert_eq!(after.diesel, owned(&[]), "{after:?}");
    assert_eq!(
        after.alembic, None,
        "the baseline's revert drops alembic_version"
    );
    assert_eq!(after.tables, vec!["__diesel_schema_migrations".to_owned()]);
    env.expect(PENDING, &["check"]).await?;
    // Nothing left to revert: an error, not a refusal.
    let none = env.expect(ERROR, &["downgrade", "-y"]).await?;
    assert!(none.stderr.contains("only 0 applied"), "{none}");
    Ok(())
}

/// `reset` is refused without `-y`; with it every table (and row) is dropped and the database
/// migrated again.
async fn reset_refused_then_confirmed(dialect: Dialect) -> TestResult {
    let env = Env::migrated(dialect).await?;
    exec(
        &env.config(),
        "INSERT INTO configuration (key, value) VALUES ('keep-me', '{}')",
    )
    .await?;
    let before = snapshot(&env.config()).await?;
    assert_eq!(before.configuration_keys, owned(&["keep-me"]));

    let refused = env.expect(REFUSED, &["reset"]).await?;
    assert!(refused.stderr.contains("pass -y"), "{refused}");
    assert_eq!(
        snapshot(&env.config()).await?,
        before,
        "refused: the row and the schema are still there"
    );

    let done = env.expect(OK, &["reset", "--yes"]).await?;
    assert!(
        done.stdout.contains(&format!("applied  {BASELINE}")) && done.stdout.contains("reset"),
        "{done}"
    );
    let after = snapshot(&env.config()).await?;
    assert_eq!(after.configuration_keys, owned(&[]), "the data is gone");
    assert_eq!(after.tables, before.tables, "the same schema again");
    assert_eq!(after.diesel, before.diesel);
    assert_eq!(after.alembic, before.alembic);
    env.expect(OK, &["check"]).await?;
    Ok(())
}

/// `stamp` is refused without `-y`; `stamp base` / `stamp head` / `stamp <alembic revision>`
/// rewrite the bookkeeping and run nothing.
async fn stamp_refused_then_confirmed(dialect: Dialect) -> TestResult {
    let head = alembic_head(dialect);
    let env = Env::migrated(dialect).await?;
    let before = snapshot(&env.config()).await?;

    let refused = env.expect(REFUSED, &["stamp", "base"]).await?;
    assert!(refused.stderr.contains("-y"), "{refused}");
    assert_eq!(snapshot(&env.config()).await?, before);

    let base = env.expect(OK, &["stamp", "base", "-y"]).await?;
    assert!(
        base.stdout
            .contains(&format!("removed  {BASELINE_VERSION}"))
            && base.stdout.contains("alembic_version: (empty)"),
        "{base}"
    );
    let after = snapshot(&env.config()).await?;
    assert_eq!(
        after.tables, before.tables,
        "nothing was run: every table is still there"
    );
    assert_eq!(after.diesel, owned(&[]));
    assert_eq!(after.alembic, owned(&[]));
    // Tables but an empty alembic_version: not something this build migrates.
    env.expect(AHEAD, &["check"]).await?;

    let stamped = env.expect(OK, &["stamp", "head", "-y"]).await?;
    assert!(
        stamped.stdout.contains(&format!("recorded {BASELINE}"))
            && stamped.stdout.contains(&format!("alembic_version: {head}")),
        "{stamped}"
    );
    assert_eq!(
        snapshot(&env.config()).await?,
        before,
        "back to the migrated bookkeeping"
    );
    env.expect(OK, &["check"]).await?;

    // On an empty database, stamping by the mirrored alembic revision records the baseline
    // without creating any of its tables.
    let fresh = Env::empty(dialect).await?;
    fresh.expect(OK, &["stamp", head, "-y"]).await?;
    let snap = snapshot(&fresh.config()).await?;
    assert_eq!(snap.diesel, owned(&[BASELINE_VERSION]));
    assert_eq!(snap.alembic, owned(&[head]));
    assert_eq!(
        snap.tables,
        vec![
            "__diesel_schema_migrations".to_owned(),
            "alembic_version".to_owned()
        ],
        "no table of the baseline was created"
    );
    let unknown = fresh
        .expect(ERROR, &["stamp", "no-such-revision", "-y"])
        .await?;
    assert!(unknown.stderr.contains("no-such-revision"), "{unknown}");
    Ok(())
}

/// A database that records a migration this build does not know is "ahead": `check` exits 4
/// naming it, `current` and `history` show it, `upgrade` refuses.
async fn check_reports_a_database_ahead(dialect: Dialect) -> TestResult {
    let env = Env::migrated(dialect).await?;
    exec(
        &env.config(),
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('99999999999999')",
    )
    .await?;
    let check = env.expect(AHEAD, &["check"]).await?;
    assert!(
        check.stdout.contains("ahead") && check.stdout.contains("99999999999999"),
        "{check}"
    );
    let current = env.expect(OK, &["current"]).await?;
    assert!(
        current
            .stdout
            .contains("applied: 99999999999999 (unknown to this build)"),
        "{current}"
    );
    let history = env.expect(OK, &["history"]).await?;
    assert!(
        history.stdout.contains("[unknown] 99999999999999"),
        "{history}"
    );
    let before = snapshot(&env.config()).await?;
    let upgrade = env.expect(ERROR, &["upgrade"]).await?;
    assert!(
        upgrade.stderr.contains("99999999999999") && upgrade.stderr.contains("does not know"),
        "{upgrade}"
    );
    assert_eq!(snapshot(&env.config()).await?, before);
    Ok(())
}

/// A database real Prefect 3.9.1 wrote: pending (adoption) for `check`; at an alembic revision
/// this build does not know, exit 4 naming it.
async fn check_on_prefect_databases(dialect: Dialect) -> TestResult {
    let env = Env::new(TestDatabase::prefect_fixture(dialect).await?)?;
    let check = env.expect(PENDING, &["check"]).await?;
    assert!(
        check.stdout.contains(BASELINE) && check.stdout.contains("written by Prefect"),
        "{check}"
    );
    exec(
        &env.config(),
        "UPDATE alembic_version SET version_num = 'abcdef123456'",
    )
    .await?;
    let check = env.expect(AHEAD, &["check"]).await?;
    assert!(
        check.stdout.contains("abcdef123456") && check.stdout.contains(alembic_head(dialect)),
        "{check}"
    );
    let current = env.expect(OK, &["current"]).await?;
    assert!(
        current.stdout.contains("alembic_version: abcdef123456"),
        "{current}"
    );
    Ok(())
}

/// `ping` answers on a reachable database.
async fn ping_answers(dialect: Dialect) -> TestResult {
    let env = Env::migrated(dialect).await?;
    let ping = env.expect(OK, &["ping"]).await?;
    assert!(
        ping.stdout.starts_with("ok: ") && ping.stdout.contains("answered in"),
        "{ping}"
    );
    Ok(())
}

conformance!(
    upgrade_check_current_history,
    downgrade_refused_then_confirmed,
    reset_refused_then_confirmed,
    stamp_refused_then_confirmed,
    check_reports_a_database_ahead,
    check_on_prefect_databases,
    ping_answers,
);

// ------------------------------------------------------------------------------------------
// Without a database server
// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn help_lists_every_command_and_the_exit_statuses() -> TestResult {
    let home = tempfile::tempdir()?;
    let help = run_in(home.path(), &["--help"]).await?;
    assert_eq!(help.code, OK, "{help}");
    for command in [
        "upgrade",
        "downgrade",
        "reset",
        "stamp",
        "current",
        "history",
        "check",
        "ping",
        "copy",
        "--url",
    ] {
        assert!(help.stdout.contains(command), "{command} in {help}");
    }
    assert!(help.stdout.contains("Exit status:"), "{help}");
    for code in [
        "3  check: migrations are pending",
        "4  check:",
        "5  the database cannot be reached",
        "6  refused",
    ] {
        assert!(help.stdout.contains(code), "{code} in {help}");
    }
    for command in [
        "upgrade",
        "downgrade",
        "reset",
        "stamp",
        "current",
        "history",
        "check",
        "ping",
        "copy",
    ] {
        let sub = run_in(home.path(), &[command, "--help"]).await?;
        assert_eq!(sub.code, OK, "{command} --help: {sub}");
    }
    let downgrade = run_in(home.path(), &["downgrade", "--help"]).await?;
    for flag in ["--revision", "--steps", "--yes"] {
        assert!(downgrade.stdout.contains(flag), "{flag} in {downgrade}");
    }
    let copy = run_in(home.path(), &["copy", "--help"]).await?;
    for flag in ["--from", "--to", "--replace", "--batch-size"] {
        assert!(copy.stdout.contains(flag), "{flag} in {copy}");
    }
    // Usage errors are clap's status 2.
    assert_eq!(
        run_in(
            home.path(),
            &["downgrade", "--steps", "1", "--revision", "base"]
        )
        .await?
        .code,
        2
    );
    assert_eq!(run_in(home.path(), &["no-such-command"]).await?.code, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_where_nothing_listens_is_unreachable_within_the_timeout() -> TestResult {
    let home = tempfile::tempdir()?;
    // A refused port, and a non-routable address (TEST-NET-1) that can only time out.
    for url in [
        "postgresql+asyncpg://postgres:s3cret@127.0.0.1:9/prefect",
        "postgresql://postgres:s3cret@192.0.2.1:5432/prefect",
    ] {
        let started = Instant::now();
        let out = command(home.path())
            .env("PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT", "1")
            .args(["--url", url, "ping"])
            .output()
            .await?;
        let elapsed = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(UNREACHABLE), "{url}: {stderr}");
        assert!(stderr.contains("cannot reach"), "{stderr}");
        assert!(
            !stderr.contains("s3cret"),
            "the password is masked: {stderr}"
        );
        assert!(
            elapsed < Duration::from_secs(10),
            "{url}: took {elapsed:?} with a 1 s connection timeout"
        );
    }
    // Any other command that cannot connect (nor create the database) reports the same status.
    for command in ["upgrade", "check", "current"] {
        let out = command_in(
            home.path(),
            "postgresql://postgres:s3cret@127.0.0.1:9/prefect",
            command,
        )
        .await?;
        assert_eq!(out.code, UNREACHABLE, "{command}: {out}");
        assert!(
            out.stderr.contains("cannot reach") && !out.stderr.contains("s3cret"),
            "{out}"
        );
    }
    Ok(())
}

/// With a read replica (a real streaming standby of a throwaway primary the test tooling starts),
/// `ping` and `check` report it beside the database: in recovery and how far behind, at the same
/// migration head; a "replica" that is a primary is an error (reads there would miss the
/// primary's writes), one that does not answer is unreachable (5), masked.
#[tokio::test(flavor = "multi_thread")]
async fn ping_and_check_report_the_read_replica_postgres() -> TestResult {
    let pair = prefect_db_test::replica::replica_pair().await?;
    let name = format!("prefect_cli_replica_{}", std::process::id());
    let primary = pair.primary.with_database(&name);
    let replica = pair.replica.with_database(&name);
    let home = tempfile::tempdir()?;
    let (p, r) = (primary.expose(), replica.expose());
    let upgrade = run_in(home.path(), &["--url", p, "upgrade"]).await?;
    assert_eq!(upgrade.code, OK, "{upgrade}");

    // The standby replays the new database and its migrations; lag is real, so wait for it.
    let mut check = run_in(home.path(), &["--url", p, "--replica-url", r, "check"]).await?;
    let waited = Instant::now();
    while check.code != OK && waited.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        check = run_in(home.path(), &["--url", p, "--replica-url", r, "check"]).await?;
    }
    assert_eq!(check.code, OK, "{check}");
    assert!(
        check.stdout.contains(&format!("up to date: {BASELINE}"))
            && check.stdout.contains(&format!("replica: up to date: {BASELINE}")),
        "{check}"
    );

    let ping = run_in(home.path(), &["--url", p, "--replica-url", r, "ping"]).await?;
    assert_eq!(ping.code, OK, "{ping}");
    assert!(
        ping.stdout.contains("ok: replica ") && ping.stdout.contains("in recovery"),
        "{ping}"
    );
    assert!(
        ping.stdout.contains("behind the primary") || ping.stdout.contains("caught up"),
        "the replay position is measured against the primary's: {ping}"
    );

    // The primary named as its own replica: not in recovery.
    let wrong = run_in(home.path(), &["--url", p, "--replica-url", p, "ping"]).await?;
    assert_eq!(wrong.code, ERROR, "{wrong}");
    assert!(wrong.stderr.contains("not in recovery"), "{wrong}");

    // A replica where nothing listens: unreachable, its password masked.
    let gone = command(home.path())
        .env("PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT", "1")
        .args([
            "--url",
            p,
            "--replica-url",
            "postgresql://postgres:s3cret@127.0.0.1:9/prefect",
            "ping",
        ])
        .output()
        .await?;
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(UNREACHABLE), "{stderr}");
    assert!(
        stderr.contains("replica") && stderr.contains("cannot reach") && !stderr.contains("s3cret"),
        "{stderr}"
    );

    // A replica beside a SQLite database is refused before anything runs.
    let sqlite = format!("sqlite+aiosqlite:///{}", home.path().join("x.db").display());
    let refused = run_in(home.path(), &["--url", &sqlite, "--replica-url", r, "ping"]).await?;
    assert_eq!(refused.code, ERROR, "{refused}");
    assert!(refused.stderr.contains("--replica-url"), "{refused}");
    Ok(())
}

async fn command_in(home: &Path, url: &str, command: &str) -> Result<Run, BoxError> {
    let out = self::command(home)
        .env("PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT", "1")
        .args(["--url", url, command])
        .output()
        .await?;
    Ok(Run {
        code: out.status.code().ok_or("killed by a signal")?,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_of_a_missing_sqlite_file_is_unreachable_and_creates_nothing() -> TestResult {
    let home = tempfile::tempdir()?;
    let path = home.path().join("missing").join("prefect.db");
    let url = format!("sqlite:///{}", path.display());
    let ping = run_in(home.path(), &["--url", &url, "ping"]).await?;
    assert_eq!(ping.code, UNREACHABLE, "{ping}");
    assert!(ping.stderr.contains("does not exist"), "{ping}");
    assert!(!path.exists() && !path.parent().ok_or("no parent")?.exists());
    Ok(())
}

/// Without `--url` the settings decide; with none set, the default is the SQLite file
/// `$PREFECT_HOME/prefect.db`.
#[tokio::test(flavor = "multi_thread")]
async fn the_default_database_is_prefect_db_under_prefect_home() -> TestResult {
    let home = tempfile::tempdir()?;
    let check = run_in(home.path(), &["check"]).await?;
    assert_eq!(check.code, PENDING, "{check}");
    let up = run_in(home.path(), &["upgrade"]).await?;
    assert_eq!(up.code, OK, "{up}");
    assert!(home.path().join("prefect.db").is_file());
    assert_eq!(run_in(home.path(), &["check"]).await?.code, OK);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_sqlite_to_sqlite_and_refuses_a_full_target() -> TestResult {
    let home = tempfile::tempdir()?;
    let src = home.path().join("src.db");
    std::fs::copy(fixture(), &src)?;
    let dst = home.path().join("dst.db");
    let from = format!("sqlite+aiosqlite:///{}", src.display());
    let to = format!("sqlite:///{}", dst.display());

    let out = run_in(
        home.path(),
        &["copy", "--from", &from, "--to", &to, "--batch-size", "100"],
    )
    .await?;
    assert_eq!(out.code, OK, "{out}");
    assert!(
        out.stdout.contains("flow_run: done, 21 rows"),
        "plain lines when not a terminal: {out}"
    );
    assert!(out.stdout.contains("rows/s"), "{out}");
    assert!(
        out.stdout.contains("checksums of every table match"),
        "{out}"
    );

    let out = run_in(home.path(), &["copy", "--from", &from, "--to", &to]).await?;
    assert_eq!(out.code, ERROR, "{out}");
    assert!(
        out.stderr.contains("not empty") && out.stderr.contains("--replace"),
        "{out}"
    );

    let out = run_in(
        home.path(),
        &["copy", "--from", &from, "--to", &to, "--replace"],
    )
    .await?;
    assert_eq!(out.code, OK, "{out}");
    Ok(())
}
