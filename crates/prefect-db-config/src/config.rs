//! The resolved configuration of one database: what tier 1 needs to build connections, as a
//! plain struct. Settings are loaded once at the edge ([`crate::settings`]) and resolved into
//! this; nothing below reads the environment.

use crate::url::{DatabaseUrl, Dialect};
use std::path::PathBuf;
use std::time::Duration;

/// Everything needed to connect to one database.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DatabaseConfig {
    /// Where the database is.
    pub url: DatabaseUrl,
    /// Log every statement (with its duration) through `tracing`.
    pub echo: bool,
    /// Per-statement timeout (PostgreSQL `statement_timeout`). `None` disables it.
    pub statement_timeout: Option<Duration>,
    /// Timeout for establishing one connection.
    pub connection_timeout: Duration,
    /// Statement timeout while migrating (`None`: no timeout).
    pub migration_timeout: Option<Duration>,
    /// Connections kept by the pool (PostgreSQL).
    pub pool_size: usize,
    /// Extra connections allowed above `pool_size` (PostgreSQL).
    pub max_overflow: usize,
    /// How long a caller waits for a pooled connection before a timeout error.
    pub pool_timeout: Duration,
    /// Connections older than this are replaced (`None`: never).
    pub pool_recycle: Option<Duration>,
    /// PostgreSQL `application_name`.
    pub application_name: Option<String>,
    /// PostgreSQL `search_path`.
    pub search_path: Option<String>,
    /// Prepared-statement cache size per connection; `Some(0)` disables the cache (PgBouncer).
    pub statement_cache_size: Option<u32>,
    /// TLS to the PostgreSQL server.
    pub tls: TlsConfig,
    /// Pragmas set on every SQLite connection.
    pub sqlite: SqlitePragmas,
    /// Whether a server should migrate at start-up (the layer never does so by itself).
    pub migrate_on_start: bool,
    /// A PostgreSQL streaming replica of the database (extension setting): read-only
    /// transactions may run there; everything else runs on `url`. Every other setting applies
    /// to it too.
    pub read_replica_url: Option<DatabaseUrl>,
    /// How transactions that fail for a transient reason are run again.
    pub retry: RetryPolicy,
    /// Statements slower than this are logged at WARN (target `prefect_db::slow`); `None`: off.
    pub slow_statement_threshold: Option<Duration>,
    /// Record metrics (statement durations, errors by class, retries, pool gauges) through the
    /// `metrics` crate (Prefect's `server.metrics_enabled`). Off, nothing is recorded.
    pub metrics: bool,
}

/// Bounded retry of transient failures: at most `max_attempts` attempts, the first included;
/// before attempt `n + 1` a sleep of `min(max_backoff, initial_backoff * 2^(n-1))`, of which the
/// upper half is random (so that clients that failed together do not come back together); no
/// attempt starts later than `budget` after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RetryPolicy {
    /// Attempts in all (1: never retry).
    pub max_attempts: u32,
    /// The sleep before the second attempt.
    pub initial_backoff: Duration,
    /// The longest sleep.
    pub max_backoff: Duration,
    /// The time after the first attempt past which none starts.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            budget: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub const fn none() -> Self {
        RetryPolicy { max_attempts: 1, initial_backoff: Duration::ZERO, max_backoff: Duration::ZERO, budget: Duration::ZERO }
    }

    /// The sleep after failed attempt `attempt` (1-based), with `unit` a random number in
    /// `[0, 1)` choosing where in the upper half it falls.
    ///
    /// ```
    /// use prefect_db_config::RetryPolicy;
    /// use std::time::Duration;
    /// let p = RetryPolicy::default();
    /// assert_eq!(p.backoff(1, 0.0), Duration::from_millis(50));
    /// assert_eq!(p.backoff(3, 0.5), Duration::from_millis(300));
    /// assert_eq!(p.backoff(30, 0.0), Duration::from_secs(1));
    /// ```
    pub fn backoff(&self, attempt: u32, unit: f64) -> Duration {
        let doubled = self.initial_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let ceiling = doubled.min(self.max_backoff);
        ceiling.div_f64(2.0) + ceiling.div_f64(2.0).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// TLS settings for PostgreSQL connections.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TlsConfig {
    /// Use TLS (certificate verification is always on when enabled).
    pub enabled: bool,
    /// CA bundle to trust instead of the built-in web roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate (used only together with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// Client key.
    pub key_file: Option<PathBuf>,
    /// Check that the server certificate names the host.
    pub check_hostname: bool,
}

/// The pragmas Prefect sets on every SQLite connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SqlitePragmas {
    /// `PRAGMA busy_timeout` in milliseconds (Prefect: 60000).
    pub busy_timeout_ms: u32,
    /// `PRAGMA cache_size` (Prefect: 20000).
    pub cache_size: i64,
    /// `PRAGMA synchronous` (Prefect: NORMAL).
    pub synchronous: String,
    /// `PRAGMA journal_mode` (Prefect: WAL).
    pub journal_mode: String,
}

impl Default for SqlitePragmas {
    fn default() -> Self {
        SqlitePragmas {
            busy_timeout_ms: 60_000,
            cache_size: 20_000,
            synchronous: "NORMAL".to_owned(),
            journal_mode: "WAL".to_owned(),
        }
    }
}

impl DatabaseConfig {
    /// A configuration for `url` with Prefect's defaults for everything else.
    pub fn new(url: DatabaseUrl) -> Self {
        DatabaseConfig {
            url,
            echo: false,
            statement_timeout: Some(Duration::from_secs(10)),
            connection_timeout: Duration::from_secs(5),
            migration_timeout: None,
            pool_size: 5,
            max_overflow: 10,
            pool_timeout: Duration::from_secs(30),
            pool_recycle: Some(Duration::from_secs(3600)),
            application_name: None,
            search_path: None,
            statement_cache_size: None,
            tls: TlsConfig { check_hostname: true, ..TlsConfig::default() },
            sqlite: SqlitePragmas::default(),
            migrate_on_start: true,
            read_replica_url: None,
            retry: RetryPolicy::default(),
            slow_statement_threshold: Some(Duration::from_secs(1)),
            metrics: false,
        }
    }

    /// Whether the server sits behind a transaction-mode pooler such as PgBouncer: Prefect's
    /// users say so by disabling the statement cache (`statement_cache_size` or
    /// `prepared_statement_cache_size` of 0). Then nothing the layer sends depends on server
    /// state that outlives a transaction: no `options` startup parameter, the session settings
    /// applied per transaction, statements prepared and closed inside their transaction, and
    /// the migration lock held per transaction.
    pub fn transaction_pooling(&self) -> bool {
        self.dialect() == Dialect::Postgres && self.statement_cache_size == Some(0)
    }

    /// The configuration of the read replica, if one is set: this one with the replica's URL.
    pub fn replica(&self) -> Option<DatabaseConfig> {
        let url = self.read_replica_url.clone()?;
        Some(DatabaseConfig { url, read_replica_url: None, ..self.clone() })
    }

    /// The dialect, from the URL.
    pub const fn dialect(&self) -> Dialect {
        self.url.dialect()
    }

    /// The most connections the pool may hold at once.
    pub fn max_connections(&self) -> usize {
        if self.url.is_in_memory() { 1 } else { (self.pool_size + self.max_overflow).max(1) }
    }
}
