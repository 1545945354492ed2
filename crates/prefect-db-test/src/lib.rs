//! Test databases for both dialects: each test gets its own isolated database, an SQLite file in
//! a temporary folder or a fresh PostgreSQL database, removed when the handle is dropped. No
//! test shares mutable state with another, so tests run in parallel without ordering tricks.
//!
//! PostgreSQL is found through `PREFECT_TEST_POSTGRES_URL` (a URL to a maintenance database of
//! a server where the user may create databases), else a server at `127.0.0.1:5432` (user
//! `postgres`), else a throwaway cluster started from the system's PostgreSQL binaries (kept
//! running under the temporary folder for the next test process to reuse). When none of these
//! works, asking for a PostgreSQL database fails with the reasons: tests never silently pass.
//!
//! Migrated databases come from a template made once per process and key ([`TestDatabase::from_template`]):
//! PostgreSQL clones it with `CREATE DATABASE … TEMPLATE`, SQLite copies the file.

#[cfg(feature = "postgres")]
pub mod cluster;
#[cfg(feature = "postgres")]
pub mod pgbouncer;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "postgres")]
pub mod replica;

use prefect_db_config::{DatabaseConfig, DatabaseUrl, PostgresUrl, SqliteTarget};
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Why a test database could not be provided.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TestDbError {
    /// No PostgreSQL server could be found or started.
    #[error("no PostgreSQL server for tests: {0}")]
    NoPostgres(String),
    /// A database could not be created.
    #[error("cannot create a test database: {0}")]
    Create(String),
    /// Preparing the template failed.
    #[error("cannot prepare the test template {key}: {reason}")]
    Template {
        /// The template key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The test primary and streaming replica could not be started.
    #[error("no streaming replica for tests: {0}")]
    NoReplica(String),
    /// A throwaway cluster of a test's own could not be started (or restarted).
    #[error("no throwaway PostgreSQL cluster for tests: {0}")]
    NoCluster(String),
    /// The test PgBouncer could not be started.
    #[error("no PgBouncer for tests: {0}")]
    NoPgBouncer(String),
    /// This build lacks the dialect's feature.
    #[error("this build has no `{0}` feature")]
    FeatureMissing(&'static str),
}

enum Cleanup {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres(#[allow(dead_code)] postgres::DropOnExit),
}

/// One isolated database, removed on drop.
pub struct TestDatabase {
    url: DatabaseUrl,
    /// The URL [`TestDatabase::config`] gives when tests run through PgBouncer.
    pooled: Option<DatabaseUrl>,
    _cleanup: Cleanup,
}

/// Set to `1` to run the PostgreSQL tests through the test PgBouncer in transaction pooling
/// mode: [`TestDatabase::config`] then reaches each database through it with the statement
/// cache disabled (`cargo xtask test-all-dialects` runs the PostgreSQL suite once this way).
pub const VIA_PGBOUNCER_ENV: &str = "PREFECT_TEST_VIA_PGBOUNCER";

/// Whether this test process runs the PostgreSQL tests through PgBouncer.
pub fn via_pgbouncer() -> bool {
    std::env::var(VIA_PGBOUNCER_ENV).is_ok_and(|v| v == "1")
}

#[cfg(feature = "postgres")]
async fn postgres_database(url: PostgresUrl, guard: postgres::DropOnExit) -> Result<TestDatabase, TestDbError> {
    let pooled = if via_pgbouncer() { Some(pgbouncer::pgbouncer().await?.url_for(&url)?) } else { None };
    Ok(TestDatabase { url: DatabaseUrl::Postgres(url), pooled, _cleanup: Cleanup::Postgres(guard) })
}

impl TestDatabase {
    /// A fresh, empty database of the given dialect.
    pub async fn empty(dialect: Dialect) -> Result<TestDatabase, TestDbError> {
        match dialect {
            Dialect::Sqlite => {
                let dir = tempdir()?;
                let path = dir.path().join("prefect.db");
                Ok(TestDatabase { url: DatabaseUrl::Sqlite(SqliteTarget::File(path)), pooled: None, _cleanup: Cleanup::Sqlite(dir) })
            }
            Dialect::Postgres => {
                #[cfg(feature = "postgres")]
                {
                    let (url, guard) = postgres::create_database(None).await?;
                    postgres_database(url, guard).await
                }
                #[cfg(not(feature = "postgres"))]
                Err(TestDbError::FeatureMissing("postgres"))
            }
        }
    }

    /// A database prepared by `prepare` (typically: run the migrations), made once per process
    /// and `key` and then copied (SQLite) or cloned as a template (PostgreSQL) for each caller.
    pub async fn from_template<F, Fut, E>(dialect: Dialect, key: &str, prepare: F) -> Result<TestDatabase, TestDbError>
    where
        F: FnOnce(DatabaseConfig) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let cell = template_cell(dialect, key);
        let template = cell
            .get_or_init(|| async {
                let db = TestDatabase::empty(dialect).await.map_err(|e| e.to_string())?;
                // Directly, not through PgBouncer: a template must have no connections when
                // it is cloned, and PgBouncer keeps its server connections open.
                prepare(db.direct_config()).await.map_err(|e| e.to_string())?;
                Ok(Arc::new(db))
            })
            .await
            .clone()
            .map_err(|reason| TestDbError::Template { key: key.to_owned(), reason })?;
        match template.url() {
            DatabaseUrl::Sqlite(SqliteTarget::File(src)) => {
                let dir = tempdir()?;
                let path = dir.path().join("prefect.db");
                std::fs::copy(src, &path).map_err(|e| TestDbError::Create(format!("copy {}: {e}", src.display())))?;
                Ok(TestDatabase { url: DatabaseUrl::Sqlite(SqliteTarget::File(path)), pooled: None, _cleanup: Cleanup::Sqlite(dir) })
            }
            #[cfg(feature = "postgres")]
            DatabaseUrl::Postgres(src) => {
                let (url, guard) = postgres::create_database(Some(&src.database())).await?;
                postgres_database(url, guard).await
            }
            _ => Err(TestDbError::Create("unsupported template".to_owned())),
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.url.dialect()
    }

    /// The database URL.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// A configuration with Prefect's defaults for this database (a small pool timeout so a
    /// broken test fails fast).
    ///
    /// When the tests run through PgBouncer ([`VIA_PGBOUNCER_ENV`]), a PostgreSQL database is
    /// reached through it with the statement cache disabled.
    pub fn config(&self) -> DatabaseConfig {
        let mut config = DatabaseConfig::new(self.pooled.clone().unwrap_or_else(|| self.url.clone()));
        config.sqlite.busy_timeout_ms = 30_000; // Prefect's unit-test value
        if self.pooled.is_some() {
            config.statement_cache_size = Some(0);
        }
        config
    }

    /// A configuration for this PostgreSQL database reached through the test PgBouncer in
    /// transaction pooling mode, with the statement cache disabled (how a Prefect user
    /// configures a server behind one). Fails with the reason when PgBouncer cannot start.
    #[cfg(feature = "postgres")]
    pub async fn via_pgbouncer(&self) -> Result<DatabaseConfig, TestDbError> {
        let direct = self.postgres_url().ok_or_else(|| TestDbError::NoPgBouncer("not a PostgreSQL database".to_owned()))?;
        let bouncer = pgbouncer::pgbouncer().await?;
        let mut config = DatabaseConfig::new(bouncer.url_for(direct)?);
        config.statement_cache_size = Some(0);
        Ok(config)
    }

    /// [`TestDatabase::config`] reaching the database directly (never through PgBouncer).
    pub fn direct_config(&self) -> DatabaseConfig {
        let mut config = self.config();
        config.url = self.url.clone();
        config.statement_cache_size = None;
        config
    }

    /// The SQLite file, for SQLite databases.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.url {
            DatabaseUrl::Sqlite(SqliteTarget::File(p)) => Some(p),
            _ => None,
        }
    }

    /// The PostgreSQL URL, for PostgreSQL databases.
    pub fn postgres_url(&self) -> Option<&PostgresUrl> {
        match &self.url {
            DatabaseUrl::Postgres(u) => Some(u),
            DatabaseUrl::Sqlite(_) => None,
        }
    }

    /// Where the PostgreSQL test server came from (environment, local server or throwaway
    /// cluster), once it has been found.
    pub async fn postgres_source() -> Result<String, TestDbError> {
        #[cfg(feature = "postgres")]
        {
            postgres::server().await.map(|s| s.source.clone())
        }
        #[cfg(not(feature = "postgres"))]
        Err(TestDbError::FeatureMissing("postgres"))
    }
}

type TemplateCell = Arc<tokio::sync::OnceCell<Result<Arc<TestDatabase>, String>>>;

fn template_cell(dialect: Dialect, key: &str) -> TemplateCell {
    static TEMPLATES: OnceLock<Mutex<HashMap<(Dialect, String), TemplateCell>>> = OnceLock::new();
    let map = TEMPLATES.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    guard.entry((dialect, key.to_owned())).or_default().clone()
}

fn tempdir() -> Result<tempfile::TempDir, TestDbError> {
    tempfile::Builder::new()
        .prefix("prefect-db-test-")
        .tempdir()
        .map_err(|e| TestDbError::Create(format!("temporary folder: {e}")))
}

/// A folder for test scratch files that lives as long as the process.
pub fn scratch_dir() -> PathBuf {
    std::env::temp_dir()
}

/// The error type of conformance test bodies.
pub type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// Runs each named test body once per dialect: `conformance!(body_a, body_b);` with
/// `async fn body_a(dialect: Dialect) -> TestResult` generates the tests `body_a::sqlite` and
/// `body_a::postgres` (multi-thread runtimes, as SQLite's blocking connections need). The caller
/// needs `tokio` (macros, rt-multi-thread) among its dev-dependencies.
#[macro_export]
macro_rules! conformance {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    if let Err(e) = super::$name($crate::Dialect::Sqlite).await {
                        panic!("{} on sqlite: {e}", stringify!($name));
                    }
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    if let Err(e) = super::$name($crate::Dialect::Postgres).await {
                        panic!("{} on postgres: {e}", stringify!($name));
                    }
                }
            }
        )+
    };
}

pub use prefect_db_config::Dialect;

/// The real Prefect 3.9.1 databases carried in the repository (`tests/fixtures/`), written by a
/// real Prefect server.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

/// Fills the (empty) database of `config` with the real Prefect 3.9.1 fixture of its dialect:
/// copies the SQLite file, or restores the PostgreSQL dump with `psql`.
pub async fn load_prefect_fixture(config: DatabaseConfig) -> Result<(), TestDbError> {
    let fail = |what: String| TestDbError::Template { key: "prefect-3.9.1-fixture".to_owned(), reason: what };
    match &config.url {
        DatabaseUrl::Sqlite(SqliteTarget::File(path)) => {
            std::fs::copy(fixture_path("prefect-3.9.1.sqlite.db"), path).map_err(|e| fail(format!("copy: {e}")))?;
        }
        DatabaseUrl::Postgres(url) => {
            let out = tokio::process::Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url.expose(), "-f"])
                .arg(fixture_path("prefect-3.9.1.postgres.sql"))
                .output()
                .await
                .map_err(|e| fail(format!("psql: {e}")))?;
            if !out.status.success() {
                return Err(fail(format!("psql restore failed: {}", String::from_utf8_lossy(&out.stderr))));
            }
        }
        DatabaseUrl::Sqlite(SqliteTarget::Memory) => return Err(fail("an in-memory database cannot hold the fixture".to_owned())),
    }
    Ok(())
}

impl TestDatabase {
    /// A copy of the real Prefect 3.9.1 fixture of `dialect` (restored once per process).
    pub async fn prefect_fixture(dialect: Dialect) -> Result<TestDatabase, TestDbError> {
        TestDatabase::from_template(dialect, "prefect-3.9.1-fixture", load_prefect_fixture).await
    }
}
