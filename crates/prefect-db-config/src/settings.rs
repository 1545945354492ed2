//! Prefect's database settings (`server.database.*` and `home`), loaded with figment the way
//! Prefect 3.9.1 loads them, and resolved into a [`DatabaseConfig`].
//!
//! # Sources
//!
//! Highest precedence first (Prefect's own order):
//!
//! 1. the environment (canonical `PREFECT_SERVER_DATABASE_*` names, then the legacy aliases);
//! 2. `.env` in the working directory (same names as the environment);
//! 3. `prefect.toml` in the working directory (`[server.database]`, `[server.database.sqlalchemy]`,
//!    `[server.database.sqlalchemy.connect_args.tls]`, …, and a top-level `home`);
//! 4. `pyproject.toml` in the working directory (`[tool.prefect.server.database]`, …);
//! 5. the active profile of `profiles.toml` (`active = "name"`, overridden by the environment
//!    variable `PREFECT_PROFILE`; its `[profiles.name]` table holds environment-variable names);
//! 6. Prefect's defaults.
//!
//! Only the working directory itself is searched for project files, never its parents. The
//! profiles file is `PREFECT_PROFILES_PATH` (environment or `.env`), else `profiles_path` in
//! `prefect.toml` / `tool.prefect.profiles_path` in `pyproject.toml`, else
//! `$PREFECT_HOME/profiles.toml`, else `~/.prefect/profiles.toml`.
//!
//! Every environment name is listed once in [`ENV_SETTINGS`] (name → settings path, legacy or
//! not, value kind). Within one source a canonical name wins over a legacy alias (the alias is
//! then not even parsed, like pydantic's `AliasChoices`); across sources the higher source wins
//! whichever name it used. Values are parsed by this module, not by figment (figment would turn
//! a password `12345` into a number), and each bad value is reported as
//! [`ConfigError::InvalidValue`] naming the variable or file key it came from; secrets are
//! masked. figment only layers the already-typed values and extracts [`DatabaseSettings`].
//!
//! # Decisions where Prefect is silent or Python-specific
//!
//! * An empty (or blank) value in any source counts as unset.
//! * Environment names are matched case-sensitively (upper case).
//! * String settings read from TOML accept numbers and booleans and keep their text.
//! * Booleans accept `true/false`, `1/0`, `yes/no`, `on/off`, `t/f`, `y/n` (any case), as pydantic.
//! * `timeout` ≤ 0 disables the statement timeout; `connection_timeout` must be > 0;
//!   `migration_timeout` must be > 0 when set; `pool_timeout` must be ≥ 0; `pool_recycle` < 0
//!   disables recycling; `max_overflow` must be ≥ 0 (SQLAlchemy's unlimited `-1` is refused).
//! * A leading `~` is expanded (from `HOME`) in every path setting, not only `home`.
//! * An unreadable or malformed `profiles.toml`, or an active profile that does not exist, is
//!   logged as a warning and ignored (as Prefect does); a malformed `prefect.toml`,
//!   `pyproject.toml` or `.env` that cannot be read is an error. `.env` lines are `KEY=VALUE`
//!   (optional `export`, quotes, `#` comments); multi-line values are not supported.
//! * `PREFECT_TESTING_UNIT_TEST_MODE` is not read.

use crate::config::{DatabaseConfig, SqlitePragmas, TlsConfig};
use crate::error::ConfigError;
use crate::url::{mask_password, DatabaseUrl, SqliteTarget};
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Tag, Value};
use figment::Figment;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The PostgreSQL driver name accepted in `server.database.driver`.
pub const POSTGRES_DRIVER: &str = "postgresql+asyncpg";
/// The SQLite driver name accepted in `server.database.driver`.
pub const SQLITE_DRIVER: &str = "sqlite+aiosqlite";
/// The two accepted values of `server.database.driver`.
pub const DRIVERS: &[&str] = &[POSTGRES_DRIVER, SQLITE_DRIVER];
/// Accepted values of `PRAGMA synchronous` (extension of this project).
pub const SQLITE_SYNCHRONOUS_MODES: &[&str] = &["OFF", "NORMAL", "FULL", "EXTRA"];
/// Accepted values of `PRAGMA journal_mode` (extension of this project).
pub const SQLITE_JOURNAL_MODES: &[&str] = &["DELETE", "TRUNCATE", "PERSIST", "MEMORY", "WAL", "OFF"];

/// The placeholders Prefect replaces by the password in an explicit connection URL.
const PASSWORD_PLACEHOLDERS: [&str; 2] = ["PREFECT_API_DATABASE_PASSWORD", "PREFECT_SERVER_DATABASE_PASSWORD"];
/// Prefix of the settings paths of [`DatabaseSettings`]' fields.
const DATABASE_PREFIX: &str = "server.database.";

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

/// How the value of a setting is read and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SettingKind {
    /// Any text.
    Text,
    /// Secret text: shown as `***` in every error.
    Secret,
    /// A connection URL: its password is masked in every error.
    Url,
    /// A file or folder path; a leading `~` is replaced by the user's home folder.
    Path,
    /// A boolean (`true/false`, `1/0`, `yes/no`, `on/off`, `t/f`, `y/n`, any case).
    Bool,
    /// A TCP port (0 to 65535).
    Port,
    /// A whole number from 0 to `u32::MAX`.
    Count,
    /// A signed 64-bit whole number.
    Integer,
    /// A finite number of seconds, any sign.
    Seconds,
    /// A finite number of seconds greater than 0.
    PositiveSeconds,
    /// A finite number of seconds, 0 or more.
    NonNegativeSeconds,
    /// One of the listed words, compared case-insensitively and stored as listed.
    Choice(&'static [&'static str]),
}

/// One environment variable of the database settings: a row of [`ENV_SETTINGS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvSetting {
    /// The environment variable (also the key used in profiles and `.env`).
    pub env: &'static str,
    /// The settings path, which is also the key in `prefect.toml` (e.g. `server.database.port`).
    pub path: &'static str,
    /// Whether this is a legacy alias (a canonical name set in the same source wins).
    pub legacy: bool,
    /// How the value is parsed.
    pub kind: SettingKind,
}

impl EnvSetting {
    /// The path of the field inside [`DatabaseSettings`] (the settings path without
    /// `server.database.`, e.g. `sqlalchemy.pool_size`, or `home`).
    pub fn field(&self) -> &'static str {
        self.path.strip_prefix(DATABASE_PREFIX).unwrap_or(self.path)
    }
}

const fn canonical(env: &'static str, path: &'static str, kind: SettingKind) -> EnvSetting {
    EnvSetting { env, path, legacy: false, kind }
}

const fn legacy(env: &'static str, path: &'static str, kind: SettingKind) -> EnvSetting {
    EnvSetting { env, path, legacy: true, kind }
}

/// Every environment variable read by [`DatabaseSettings::load`]: Prefect 3.9.1's
/// `server.database.*` names and legacy aliases, `PREFECT_HOME`, and this project's
/// `server.database.sqlite.*` extension.
pub const ENV_SETTINGS: &[EnvSetting] = {
    use SettingKind::*;
    &[
        canonical("PREFECT_SERVER_DATABASE_CONNECTION_URL", "server.database.connection_url", Url),
        legacy("PREFECT_API_DATABASE_CONNECTION_URL", "server.database.connection_url", Url),
        canonical("PREFECT_SERVER_DATABASE_READ_REPLICA_CONNECTION_URL", "server.database.read_replica_connection_url", Url),
        canonical("PREFECT_SERVER_DATABASE_DRIVER", "server.database.driver", Choice(DRIVERS)),
        legacy("PREFECT_API_DATABASE_DRIVER", "server.database.driver", Choice(DRIVERS)),
        canonical("PREFECT_SERVER_DATABASE_HOST", "server.database.host", Text),
        legacy("PREFECT_API_DATABASE_HOST", "server.database.host", Text),
        canonical("PREFECT_SERVER_DATABASE_PORT", "server.database.port", Port),
        legacy("PREFECT_API_DATABASE_PORT", "server.database.port", Port),
        canonical("PREFECT_SERVER_DATABASE_USER", "server.database.user", Text),
        legacy("PREFECT_API_DATABASE_USER", "server.database.user", Text),
        canonical("PREFECT_SERVER_DATABASE_NAME", "server.database.name", Text),
        legacy("PREFECT_API_DATABASE_NAME", "server.database.name", Text),
        canonical("PREFECT_SERVER_DATABASE_PASSWORD", "server.database.password", Secret),
        legacy("PREFECT_API_DATABASE_PASSWORD", "server.database.password", Secret),
        canonical("PREFECT_SERVER_DATABASE_ECHO", "server.database.echo", Bool),
        legacy("PREFECT_API_DATABASE_ECHO", "server.database.echo", Bool),
        canonical("PREFECT_SERVER_DATABASE_MIGRATE_ON_START", "server.database.migrate_on_start", Bool),
        legacy("PREFECT_API_DATABASE_MIGRATE_ON_START", "server.database.migrate_on_start", Bool),
        canonical("PREFECT_SERVER_DATABASE_TIMEOUT", "server.database.timeout", Seconds),
        legacy("PREFECT_API_DATABASE_TIMEOUT", "server.database.timeout", Seconds),
        canonical("PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT", "server.database.connection_timeout", PositiveSeconds),
        legacy("PREFECT_API_DATABASE_CONNECTION_TIMEOUT", "server.database.connection_timeout", PositiveSeconds),
        canonical("PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT", "server.database.migration_timeout", PositiveSeconds),
        canonical("PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE", "server.database.sqlalchemy.pool_size", Count),
        legacy("PREFECT_SQLALCHEMY_POOL_SIZE", "server.database.sqlalchemy.pool_size", Count),
        canonical("PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW", "server.database.sqlalchemy.max_overflow", Count),
        legacy("PREFECT_SQLALCHEMY_MAX_OVERFLOW", "server.database.sqlalchemy.max_overflow", Count),
        canonical("PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_RECYCLE", "server.database.sqlalchemy.pool_recycle", Integer),
        canonical("PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_TIMEOUT", "server.database.sqlalchemy.pool_timeout", NonNegativeSeconds),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_APPLICATION_NAME",
            "server.database.sqlalchemy.connect_args.application_name",
            Text,
        ),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_SEARCH_PATH",
            "server.database.sqlalchemy.connect_args.search_path",
            Text,
        ),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_STATEMENT_CACHE_SIZE",
            "server.database.sqlalchemy.connect_args.statement_cache_size",
            Count,
        ),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_PREPARED_STATEMENT_CACHE_SIZE",
            "server.database.sqlalchemy.connect_args.prepared_statement_cache_size",
            Count,
        ),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_ENABLED",
            "server.database.sqlalchemy.connect_args.tls.enabled",
            Bool,
        ),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CA_FILE",
            "server.database.sqlalchemy.connect_args.tls.ca_file",
            Path,
        ),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CERT_FILE",
            "server.database.sqlalchemy.connect_args.tls.cert_file",
            Path,
        ),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_KEY_FILE",
            "server.database.sqlalchemy.connect_args.tls.key_file",
            Path,
        ),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CHECK_HOSTNAME",
            "server.database.sqlalchemy.connect_args.tls.check_hostname",
            Bool,
        ),
        canonical("PREFECT_SERVER_DATABASE_SQLITE_BUSY_TIMEOUT_MS", "server.database.sqlite.busy_timeout_ms", Count),
        canonical("PREFECT_SERVER_DATABASE_SQLITE_CACHE_SIZE", "server.database.sqlite.cache_size", Integer),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLITE_SYNCHRONOUS",
            "server.database.sqlite.synchronous",
            Choice(SQLITE_SYNCHRONOUS_MODES),
        ),
        canonical(
            "PREFECT_SERVER_DATABASE_SQLITE_JOURNAL_MODE",
            "server.database.sqlite.journal_mode",
            Choice(SQLITE_JOURNAL_MODES),
        ),
        canonical("PREFECT_SERVER_DATABASE_RETRY_MAX_ATTEMPTS", "server.database.retry.max_attempts", Count),
        canonical("PREFECT_SERVER_DATABASE_RETRY_INITIAL_BACKOFF", "server.database.retry.initial_backoff", NonNegativeSeconds),
        canonical("PREFECT_SERVER_DATABASE_RETRY_MAX_BACKOFF", "server.database.retry.max_backoff", NonNegativeSeconds),
        canonical("PREFECT_SERVER_DATABASE_RETRY_BUDGET", "server.database.retry.budget", NonNegativeSeconds),
        canonical("PREFECT_SERVER_DATABASE_SLOW_STATEMENT_THRESHOLD", "server.database.slow_statement_threshold", NonNegativeSeconds),
        canonical("PREFECT_SERVER_METRICS_ENABLED", "server.metrics_enabled", Bool),
        legacy("PREFECT_API_ENABLE_METRICS", "server.metrics_enabled", Bool),
        canonical("PREFECT_HOME", "home", Path),
    ]
};

/// The canonical row of a field of [`DatabaseSettings`] (e.g. `"sqlalchemy.pool_size"`).
fn canonical_row(field: &str) -> Option<&'static EnvSetting> {
    ENV_SETTINGS.iter().find(|row| !row.legacy && row.field() == field)
}

/// The canonical environment name of a field, for messages.
fn canonical_env(field: &str) -> &'static str {
    canonical_row(field).map_or("PREFECT_SERVER_DATABASE", |row| row.env)
}

// ---------------------------------------------------------------------------------------------
// The settings
// ---------------------------------------------------------------------------------------------

/// Prefect's `server.database.*` settings (plus `home`), as loaded, before resolution.
///
/// Build it with [`DatabaseSettings::load`] (the real process) or
/// [`DatabaseSettings::load_from`] (explicit sources), or in code from
/// [`DatabaseSettings::default`]; then call [`DatabaseSettings::resolve`].
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DatabaseSettings {
    /// `server.database.connection_url`: `PREFECT_SERVER_DATABASE_CONNECTION_URL`, legacy
    /// `PREFECT_API_DATABASE_CONNECTION_URL`. Default: none (built from the other settings, see
    /// [`DatabaseSettings::resolve`]). May contain `${PREFECT_SERVER_DATABASE_PASSWORD}` or
    /// `${PREFECT_API_DATABASE_PASSWORD}`, replaced by [`DatabaseSettings::password`].
    pub connection_url: Option<String>,
    /// `server.database.read_replica_connection_url`:
    /// `PREFECT_SERVER_DATABASE_READ_REPLICA_CONNECTION_URL` (extension of this project): a
    /// PostgreSQL streaming replica of the database, for read-only transactions. Default: none.
    pub read_replica_connection_url: Option<String>,
    /// `server.database.driver`: `PREFECT_SERVER_DATABASE_DRIVER`, legacy
    /// `PREFECT_API_DATABASE_DRIVER`. `"postgresql+asyncpg"` or `"sqlite+aiosqlite"`. Default: none.
    pub driver: Option<String>,
    /// `server.database.host`: `PREFECT_SERVER_DATABASE_HOST`, legacy `PREFECT_API_DATABASE_HOST`.
    /// Default: none.
    pub host: Option<String>,
    /// `server.database.port`: `PREFECT_SERVER_DATABASE_PORT`, legacy `PREFECT_API_DATABASE_PORT`.
    /// Default: none (5432 when a PostgreSQL URL is built).
    pub port: Option<u16>,
    /// `server.database.user`: `PREFECT_SERVER_DATABASE_USER`, legacy `PREFECT_API_DATABASE_USER`.
    /// Default: none.
    pub user: Option<String>,
    /// `server.database.name`: `PREFECT_SERVER_DATABASE_NAME`, legacy `PREFECT_API_DATABASE_NAME`.
    /// The database name, or the file path for SQLite. Default: none.
    pub name: Option<String>,
    /// `server.database.password`: `PREFECT_SERVER_DATABASE_PASSWORD`, legacy
    /// `PREFECT_API_DATABASE_PASSWORD`. Secret: never shown in errors or `Debug`. Default: none.
    pub password: Option<String>,
    /// `server.database.echo`: `PREFECT_SERVER_DATABASE_ECHO`, legacy `PREFECT_API_DATABASE_ECHO`.
    /// Log every statement. Default: `false`.
    pub echo: bool,
    /// `server.database.migrate_on_start`: `PREFECT_SERVER_DATABASE_MIGRATE_ON_START`, legacy
    /// `PREFECT_API_DATABASE_MIGRATE_ON_START`. Default: `true`.
    pub migrate_on_start: bool,
    /// `server.database.timeout`: `PREFECT_SERVER_DATABASE_TIMEOUT`, legacy
    /// `PREFECT_API_DATABASE_TIMEOUT`. Statement timeout in seconds; 0 or less disables it.
    /// Default: `10.0`.
    pub timeout: f64,
    /// `server.database.connection_timeout`: `PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT`, legacy
    /// `PREFECT_API_DATABASE_CONNECTION_TIMEOUT`. Connect timeout in seconds, > 0. Default: `5.0`.
    pub connection_timeout: f64,
    /// `server.database.migration_timeout`: `PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT` (no alias).
    /// Statement timeout while migrating, seconds, > 0 when set. Default: none (no timeout).
    pub migration_timeout: Option<f64>,
    /// `server.database.sqlalchemy.*`: pool and connection arguments.
    pub sqlalchemy: SqlAlchemySettings,
    /// `server.database.sqlite.*`: SQLite pragmas. An extension of this project (Prefect
    /// hard-codes these values).
    pub sqlite: SqliteSettings,
    /// `server.database.retry.*`: bounded retry of transient failures. An extension of this
    /// project.
    pub retry: RetrySettings,
    /// `server.database.slow_statement_threshold`:
    /// `PREFECT_SERVER_DATABASE_SLOW_STATEMENT_THRESHOLD` (extension of this project). Statements
    /// that take longer, in seconds, are logged at WARN under the target `prefect_db::slow`; 0
    /// turns the log off. Default: `1.0`.
    pub slow_statement_threshold: f64,
    /// `server.*` settings outside the database that the layer reads.
    pub server: ServerSettings,
    /// `home`: `PREFECT_HOME`. Prefect's home folder, where the default SQLite database
    /// `prefect.db` and `profiles.toml` live. Default: `~/.prefect`, `~` expanded from `HOME`
    /// by the loader (and by [`DatabaseSettings::resolve`] if still present).
    pub home: PathBuf,
    /// Where each value that is not a default came from: field path (e.g. `"connection_url"`,
    /// `"sqlalchemy.pool_size"`) → environment variable or file key. Filled by the loader, used
    /// in error messages; empty for settings built in code. Not a setting.
    #[serde(skip)]
    pub origins: BTreeMap<String, String>,
}

/// `server.database.sqlalchemy.*`. Applied to PostgreSQL only: SQLite file databases use
/// SQLAlchemy's defaults, which are the same numbers as these defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SqlAlchemySettings {
    /// `server.database.sqlalchemy.pool_size`: `PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE`,
    /// legacy `PREFECT_SQLALCHEMY_POOL_SIZE`. Connections kept by the pool. Default: `5`.
    pub pool_size: u32,
    /// `server.database.sqlalchemy.max_overflow`:
    /// `PREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW`, legacy `PREFECT_SQLALCHEMY_MAX_OVERFLOW`.
    /// Connections allowed above `pool_size`. Default: `10`.
    pub max_overflow: u32,
    /// `server.database.sqlalchemy.pool_recycle`:
    /// `PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_RECYCLE`. Seconds after which a connection is
    /// replaced; negative (`-1`) disables. Default: `3600`.
    pub pool_recycle: i64,
    /// `server.database.sqlalchemy.pool_timeout`:
    /// `PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_TIMEOUT`. Seconds to wait for a pooled
    /// connection, ≥ 0. Default: `30.0`.
    pub pool_timeout: f64,
    /// `server.database.sqlalchemy.connect_args.*`.
    pub connect_args: ConnectArgsSettings,
}

/// `server.database.sqlalchemy.connect_args.*` (PostgreSQL only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ConnectArgsSettings {
    /// `…connect_args.application_name`:
    /// `PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_APPLICATION_NAME`. Default: none.
    pub application_name: Option<String>,
    /// `…connect_args.search_path`: `PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_SEARCH_PATH`.
    /// Default: none.
    pub search_path: Option<String>,
    /// `…connect_args.statement_cache_size`:
    /// `PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_STATEMENT_CACHE_SIZE`. `0` disables the
    /// cache (PgBouncer transaction mode). Default: none.
    pub statement_cache_size: Option<u32>,
    /// `…connect_args.prepared_statement_cache_size`:
    /// `PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_PREPARED_STATEMENT_CACHE_SIZE`. `0`
    /// disables. Default: none.
    pub prepared_statement_cache_size: Option<u32>,
    /// `…connect_args.tls.*`.
    pub tls: TlsSettings,
}

/// `server.database.sqlalchemy.connect_args.tls.*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TlsSettings {
    /// `…tls.enabled`: `PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_ENABLED`.
    /// Default: `false`.
    pub enabled: bool,
    /// `…tls.ca_file`: `PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CA_FILE`.
    /// Default: none (built-in roots).
    pub ca_file: Option<PathBuf>,
    /// `…tls.cert_file`: `PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CERT_FILE`.
    /// Default: none.
    pub cert_file: Option<PathBuf>,
    /// `…tls.key_file`: `PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_KEY_FILE`.
    /// Default: none.
    pub key_file: Option<PathBuf>,
    /// `…tls.check_hostname`: `PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CHECK_HOSTNAME`.
    /// Default: `true`.
    pub check_hostname: bool,
}

/// `server.database.retry.*`: how transactions that fail for a transient reason (see
/// `Error::is_retryable` of the interface) are run again. An extension of this project.
///
/// The defaults cover a PostgreSQL fast restart or a managed failover of a few seconds (sleeps
/// of 0.1, 0.2, 0.4, 0.8, 1.6, 2, 2 s, each with up to half of it randomised, over at most 8
/// attempts) and give up within 10 s, well inside the 60 s Prefect's clients wait for an answer,
/// so that a longer outage reaches them as 503 and their own retries take over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RetrySettings {
    /// `…retry.max_attempts`: `PREFECT_SERVER_DATABASE_RETRY_MAX_ATTEMPTS`. Attempts in all,
    /// the first included; 1 (or 0) never retries. Default: `8`.
    pub max_attempts: u32,
    /// `…retry.initial_backoff`: `PREFECT_SERVER_DATABASE_RETRY_INITIAL_BACKOFF`. Seconds
    /// before the second attempt, doubled for each later one. Default: `0.1`.
    pub initial_backoff: f64,
    /// `…retry.max_backoff`: `PREFECT_SERVER_DATABASE_RETRY_MAX_BACKOFF`. The longest sleep
    /// between attempts, seconds. Default: `2.0`.
    pub max_backoff: f64,
    /// `…retry.budget`: `PREFECT_SERVER_DATABASE_RETRY_BUDGET`. No attempt starts later than
    /// this many seconds after the first. Default: `10.0`.
    pub budget: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        let policy = crate::config::RetryPolicy::default();
        RetrySettings {
            max_attempts: policy.max_attempts,
            initial_backoff: policy.initial_backoff.as_secs_f64(),
            max_backoff: policy.max_backoff.as_secs_f64(),
            budget: policy.budget.as_secs_f64(),
        }
    }
}

/// `server.*` settings outside `server.database` that the layer reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    /// `server.metrics_enabled`: `PREFECT_SERVER_METRICS_ENABLED`, legacy
    /// `PREFECT_API_ENABLE_METRICS` (Prefect's switch for its Prometheus metrics): the layer
    /// records its metrics through the `metrics` crate's recorder. Default: `false`.
    pub metrics_enabled: bool,
}

/// `server.database.sqlite.*`: the pragmas set on every SQLite connection. An extension of
/// this project; the defaults are the values Prefect hard-codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SqliteSettings {
    /// `server.database.sqlite.busy_timeout_ms`: `PREFECT_SERVER_DATABASE_SQLITE_BUSY_TIMEOUT_MS`.
    /// Default: `60000`.
    pub busy_timeout_ms: u32,
    /// `server.database.sqlite.cache_size`: `PREFECT_SERVER_DATABASE_SQLITE_CACHE_SIZE`.
    /// Default: `20000`.
    pub cache_size: i64,
    /// `server.database.sqlite.synchronous`: `PREFECT_SERVER_DATABASE_SQLITE_SYNCHRONOUS`, one of
    /// [`SQLITE_SYNCHRONOUS_MODES`]. Default: `"NORMAL"`.
    pub synchronous: String,
    /// `server.database.sqlite.journal_mode`: `PREFECT_SERVER_DATABASE_SQLITE_JOURNAL_MODE`, one
    /// of [`SQLITE_JOURNAL_MODES`]. Default: `"WAL"`.
    pub journal_mode: String,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            connection_url: None,
            read_replica_connection_url: None,
            driver: None,
            host: None,
            port: None,
            user: None,
            name: None,
            password: None,
            echo: false,
            migrate_on_start: true,
            timeout: 10.0,
            connection_timeout: 5.0,
            migration_timeout: None,
            sqlalchemy: SqlAlchemySettings::default(),
            sqlite: SqliteSettings::default(),
            retry: RetrySettings::default(),
            slow_statement_threshold: 1.0,
            server: ServerSettings::default(),
            home: PathBuf::from("~/.prefect"),
            origins: BTreeMap::new(),
        }
    }
}

impl Default for SqlAlchemySettings {
    fn default() -> Self {
        SqlAlchemySettings {
            pool_size: 5,
            max_overflow: 10,
            pool_recycle: 3600,
            pool_timeout: 30.0,
            connect_args: ConnectArgsSettings::default(),
        }
    }
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings { enabled: false, ca_file: None, cert_file: None, key_file: None, check_hostname: true }
    }
}

impl Default for SqliteSettings {
    fn default() -> Self {
        let pragmas = SqlitePragmas::default();
        SqliteSettings {
            busy_timeout_ms: pragmas.busy_timeout_ms,
            cache_size: pragmas.cache_size,
            synchronous: pragmas.synchronous,
            journal_mode: pragmas.journal_mode,
        }
    }
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("connection_url", &self.connection_url.as_deref().map(mask_password))
            .field("read_replica_connection_url", &self.read_replica_connection_url.as_deref().map(mask_password))
            .field("driver", &self.driver)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("name", &self.name)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("echo", &self.echo)
            .field("migrate_on_start", &self.migrate_on_start)
            .field("timeout", &self.timeout)
            .field("connection_timeout", &self.connection_timeout)
            .field("migration_timeout", &self.migration_timeout)
            .field("sqlalchemy", &self.sqlalchemy)
            .field("sqlite", &self.sqlite)
            .field("retry", &self.retry)
            .field("slow_statement_threshold", &self.slow_statement_threshold)
            .field("server", &self.server)
            .field("home", &self.home)
            .field("origins", &self.origins)
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Sources
// ---------------------------------------------------------------------------------------------

/// The inputs of the loader, so tests need not touch the real process.
#[derive(Clone, Default)]
pub struct SettingsSources {
    /// Environment variables, name → value.
    pub env: BTreeMap<String, String>,
    /// The folder searched for `.env`, `prefect.toml` and `pyproject.toml` (only this folder);
    /// relative profile paths are taken from here too. `None`: no project files.
    pub working_dir: Option<PathBuf>,
    /// The user's home folder, used to expand `~` (normally `$HOME`). `None`: `~` is kept.
    pub user_home: Option<PathBuf>,
}

impl fmt::Debug for SettingsSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SettingsSources")
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("working_dir", &self.working_dir)
            .field("user_home", &self.user_home)
            .finish()
    }
}

impl SettingsSources {
    /// The sources of this process: its environment, its current directory and `$HOME`
    /// (`%USERPROFILE%` when `HOME` is unset).
    pub fn from_process() -> Self {
        let mut env = BTreeMap::new();
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str().map(str::to_owned) else { continue };
            match value.into_string() {
                Ok(value) => {
                    env.insert(key, value);
                }
                Err(value) if key.starts_with("PREFECT_") => {
                    tracing::warn!(variable = %key, "environment variable is not valid UTF-8; invalid bytes replaced");
                    env.insert(key, value.to_string_lossy().into_owned());
                }
                Err(_) => {}
            }
        }
        let user_home = ["HOME", "USERPROFILE"]
            .iter()
            .filter_map(std::env::var_os)
            .find(|home| !home.is_empty())
            .map(PathBuf::from);
        SettingsSources { env, working_dir: std::env::current_dir().ok(), user_home }
    }

    /// Sources made of the given environment only (no project files, no user home).
    pub fn from_env<K: Into<String>, V: Into<String>>(env: impl IntoIterator<Item = (K, V)>) -> Self {
        SettingsSources {
            env: env.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
            working_dir: None,
            user_home: None,
        }
    }

    /// A non-blank environment variable.
    fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }

    /// Expands a leading `~` with [`SettingsSources::user_home`].
    fn expand(&self, raw: &str) -> PathBuf {
        expand_tilde(Path::new(raw), self.user_home.as_deref())
    }

    /// A path relative to the working directory.
    fn in_working_dir(&self, path: PathBuf) -> PathBuf {
        match &self.working_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        }
    }
}

/// Replaces a leading `~` component by `home` (when known).
fn expand_tilde(path: &Path, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~"), home) {
        (Ok(rest), Some(home)) if rest.as_os_str().is_empty() => home.to_path_buf(),
        (Ok(rest), Some(home)) => home.join(rest),
        _ => path.to_path_buf(),
    }
}

/// A value as found in a source, before it is parsed.
enum Raw {
    /// From the environment, `.env`: always text.
    Text(String),
    /// From a TOML file: a typed value.
    Toml(Value),
}

/// The typed values one source provides, ready for figment.
#[derive(Default)]
struct Layer {
    dict: Dict,
    origins: Vec<(&'static str, String)>,
}

impl Layer {
    fn has(&self, field: &str) -> bool {
        self.origins.iter().any(|(f, _)| *f == field)
    }

    /// Fills the layer from `lookup`, skipping the fields a higher source already set (`taken`)
    /// so that an overridden value is never parsed, as with pydantic. Canonical rows come
    /// first, so that an alias is consulted only when the canonical name is absent.
    fn build(
        sources: &SettingsSources,
        taken: &BTreeSet<&'static str>,
        with_aliases: bool,
        lookup: impl Fn(&EnvSetting) -> Option<(Raw, String)>,
    ) -> Result<Layer, ConfigError> {
        let mut layer = Layer::default();
        let rows = ENV_SETTINGS.iter().filter(|r| !r.legacy).chain(ENV_SETTINGS.iter().filter(|r| r.legacy && with_aliases));
        for row in rows {
            if taken.contains(row.field()) || layer.has(row.field()) {
                continue;
            }
            let Some((raw, origin)) = lookup(row) else { continue };
            let Some(value) = parse_value(row.kind, raw, &origin, sources)? else { continue };
            insert_path(&mut layer.dict, row.field(), value);
            layer.origins.push((row.field(), origin));
        }
        Ok(layer)
    }

    /// A layer from a map of environment-style names (environment, `.env`).
    fn from_names(
        sources: &SettingsSources,
        taken: &BTreeSet<&'static str>,
        names: &BTreeMap<String, String>,
        describe: impl Fn(&str) -> String,
    ) -> Result<Layer, ConfigError> {
        Layer::build(sources, taken, true, |row| {
            let value = names.get(row.env).filter(|v| !v.trim().is_empty())?;
            Some((Raw::Text(value.clone()), describe(row.env)))
        })
    }

    /// A layer from a parsed TOML file whose keys are settings paths under `prefix`.
    fn from_toml_paths(
        sources: &SettingsSources,
        taken: &BTreeSet<&'static str>,
        root: &Value,
        prefix: &str,
        file: &Path,
    ) -> Result<Layer, ConfigError> {
        Layer::build(sources, taken, false, |row| {
            let key = format!("{prefix}{}", row.path);
            let value = root.find_ref(&key)?.clone();
            Some((Raw::Toml(value), format!("{key} in {}", file.display())))
        })
    }
}

/// Inserts `value` at the dotted `path` of `dict`, creating the tables on the way.
fn insert_path(dict: &mut Dict, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            dict.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let entry = dict.entry(head.to_owned()).or_insert_with(|| Value::Dict(Tag::Default, Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::Dict(Tag::Default, Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// A scalar read from a source.
enum Scalar {
    Str(String),
    Bool(bool),
    Int(i128),
    Float(f64),
}

impl Scalar {
    fn text(&self) -> String {
        match self {
            Scalar::Str(s) => s.clone(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }
}

/// Parses one raw value according to `kind`. `Ok(None)`: the value counts as unset.
fn parse_value(kind: SettingKind, raw: Raw, origin: &str, sources: &SettingsSources) -> Result<Option<Value>, ConfigError> {
    let shown = |text: &str| match kind {
        SettingKind::Secret => "***".to_owned(),
        SettingKind::Url => mask_password(text),
        _ => text.to_owned(),
    };
    let invalid = |text: &str, reason: &str| ConfigError::InvalidValue {
        setting: origin.to_owned(),
        value: shown(text),
        reason: reason.to_owned(),
    };
    let scalar = match raw {
        Raw::Text(s) => Scalar::Str(s),
        Raw::Toml(value) => match value {
            Value::String(_, s) => Scalar::Str(s),
            Value::Char(_, c) => Scalar::Str(c.to_string()),
            Value::Bool(_, b) => Scalar::Bool(b),
            Value::Num(_, n) => match (n.to_u128(), n.to_i128(), n.to_f64()) {
                (Some(u), _, _) => Scalar::Int(i128::try_from(u).unwrap_or(i128::MAX)),
                (_, Some(i), _) => Scalar::Int(i),
                (_, _, Some(f)) => Scalar::Float(f),
                _ => return Err(invalid("(number)", "unsupported number")),
            },
            Value::Empty(..) => return Ok(None),
            Value::Dict(..) => return Err(invalid("(table)", "expected a single value, found a table")),
            Value::Array(..) => return Err(invalid("(array)", "expected a single value, found an array")),
        },
    };
    if let Scalar::Str(s) = &scalar {
        if s.trim().is_empty() {
            return Ok(None);
        }
    }
    let text = scalar.text();
    let integer = |min: i128, max: i128, what: &str| -> Result<i128, ConfigError> {
        let n = match &scalar {
            Scalar::Int(i) => Some(*i),
            Scalar::Float(f) if f.fract() == 0.0 && f.is_finite() && f.abs() < 1e30 => Some(*f as i128),
            Scalar::Str(s) => s.trim().parse::<i128>().ok(),
            _ => None,
        };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(invalid(&text, &format!("expected {what}"))),
        }
    };
    let seconds = |min_exclusive: Option<f64>, min_inclusive: Option<f64>, what: &str| -> Result<f64, ConfigError> {
        let n = match &scalar {
            Scalar::Int(i) => Some(*i as f64),
            Scalar::Float(f) => Some(*f),
            Scalar::Str(s) => s.trim().parse::<f64>().ok(),
            Scalar::Bool(_) => None,
        };
        match n {
            Some(n)
                if n.is_finite()
                    && min_exclusive.is_none_or(|m| n > m)
                    && min_inclusive.is_none_or(|m| n >= m) =>
            {
                Ok(n)
            }
            _ => Err(invalid(&text, &format!("expected {what}"))),
        }
    };
    let value = match kind {
        SettingKind::Text | SettingKind::Secret | SettingKind::Url => Value::from(text),
        SettingKind::Path => Value::from(sources.expand(&text).to_string_lossy().into_owned()),
        SettingKind::Bool => {
            let b = match &scalar {
                Scalar::Bool(b) => Some(*b),
                Scalar::Int(0) => Some(false),
                Scalar::Int(1) => Some(true),
                Scalar::Str(s) => parse_bool(s),
                _ => None,
            };
            match b {
                Some(b) => Value::from(b),
                None => return Err(invalid(&text, "expected a boolean (true/false, 1/0, yes/no, on/off)")),
            }
        }
        SettingKind::Port => {
            let n = integer(0, i128::from(u16::MAX), "a port number from 0 to 65535")?;
            Value::from(u16::try_from(n).unwrap_or_default())
        }
        SettingKind::Count => {
            let n = integer(0, i128::from(u32::MAX), "a whole number, 0 or more")?;
            Value::from(u32::try_from(n).unwrap_or_default())
        }
        SettingKind::Integer => {
            let n = integer(i128::from(i64::MIN), i128::from(i64::MAX), "a whole number")?;
            Value::from(i64::try_from(n).unwrap_or_default())
        }
        SettingKind::Seconds => Value::from(seconds(None, None, "a number of seconds")?),
        SettingKind::PositiveSeconds => Value::from(seconds(Some(0.0), None, "a number of seconds greater than 0")?),
        SettingKind::NonNegativeSeconds => Value::from(seconds(None, Some(0.0), "a number of seconds, 0 or more")?),
        SettingKind::Choice(choices) => match choose(choices, &text) {
            Some(choice) => Value::from(choice.to_owned()),
            None => return Err(invalid(&text, &format!("expected one of {}", choices.join(", ")))),
        },
    };
    Ok(Some(value))
}

/// Pydantic's boolean words.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "y" | "on" | "t" => Some(true),
        "false" | "0" | "no" | "n" | "off" | "f" => Some(false),
        _ => None,
    }
}

/// The listed spelling of `value`, compared case-insensitively.
fn choose(choices: &'static [&'static str], value: &str) -> Option<&'static str> {
    choices.iter().copied().find(|c| c.eq_ignore_ascii_case(value.trim()))
}

/// Reads a settings file; `Ok(None)` when it does not exist.
fn read_file(path: &Path) -> Result<Option<String>, ConfigError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(ConfigError::File { path: path.to_path_buf(), reason: e.to_string() }),
    }
}

/// Parses TOML. The error keeps the position and the explanation but drops the quoted source
/// line, which could hold a password.
fn parse_toml(text: &str) -> Result<Value, String> {
    Toml::from_str::<Dict>(text).map(|dict| Value::Dict(Tag::Default, dict)).map_err(|e| {
        e.to_string()
            .lines()
            .filter(|line| !line.contains('|') && !line.trim().is_empty())
            .collect::<Vec<_>>()
            .join(": ")
    })
}

/// Reads and parses a project TOML file of the working directory, if present.
fn read_toml(path: &Path) -> Result<Option<Value>, ConfigError> {
    match read_file(path)? {
        None => Ok(None),
        Some(text) => parse_toml(&text)
            .map(Some)
            .map_err(|reason| ConfigError::File { path: path.to_path_buf(), reason }),
    }
}

/// Parses a `.env` file: `KEY=VALUE` lines, optional `export`, quotes and `#` comments.
fn parse_dotenv(text: &str) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=') else { continue };
        let value = value.trim();
        let value = if let Some(inner) = value.strip_prefix('"').and_then(|v| v.rfind('"').map(|end| &v[..end])) {
            let mut out = String::with_capacity(inner.len());
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match (c, c == '\\') {
                    (_, true) => match chars.next() {
                        Some('n') => out.push('\n'),
                        Some('t') => out.push('\t'),
                        Some(other) => out.push(other),
                        None => out.push('\\'),
                    },
                    (c, false) => out.push(c),
                }
            }
            out
        } else if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.rfind('\'').map(|end| &v[..end])) {
            inner.to_owned()
        } else {
            value.split(" #").next().unwrap_or(value).trim().to_owned()
        };
        vars.insert(key.trim().to_owned(), value);
    }
    vars
}

/// A string at `path` in a TOML value.
fn toml_str(root: Option<&Value>, path: &str) -> Option<String> {
    root?.find_ref(path)?.as_str().filter(|s| !s.trim().is_empty()).map(str::to_owned)
}

/// The profile layer: the active profile's table of the profiles file.
fn profile_layer(
    sources: &SettingsSources,
    taken: &BTreeSet<&'static str>,
    dotenv: &BTreeMap<String, String>,
    prefect_toml: Option<&Value>,
    pyproject: Option<&Value>,
) -> Result<Layer, ConfigError> {
    let path = if let Some(p) = sources.var("PREFECT_PROFILES_PATH") {
        sources.expand(p)
    } else if let Some(p) = dotenv.get("PREFECT_PROFILES_PATH").filter(|v| !v.trim().is_empty()) {
        sources.expand(p)
    } else if let Some(p) = toml_str(prefect_toml, "profiles_path") {
        sources.expand(&p)
    } else if let Some(p) = toml_str(pyproject, "tool.prefect.profiles_path") {
        sources.expand(&p)
    } else if let Some(home) = sources.var("PREFECT_HOME") {
        sources.expand(home).join("profiles.toml")
    } else if let Some(home) = &sources.user_home {
        home.join(".prefect").join("profiles.toml")
    } else {
        return Ok(Layer::default());
    };
    let path = sources.in_working_dir(path);
    let text = match read_file(&path) {
        Ok(Some(text)) => text,
        Ok(None) => return Ok(Layer::default()),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the profiles file; ignoring it");
            return Ok(Layer::default());
        }
    };
    let root = match parse_toml(&text) {
        Ok(root) => root,
        Err(reason) => {
            tracing::warn!(file = %path.display(), %reason, "the profiles file is not valid TOML; ignoring it");
            return Ok(Layer::default());
        }
    };
    let (active, chosen_by) = match sources.var("PREFECT_PROFILE") {
        Some(name) => (name.to_owned(), "by environment variable"),
        None => match root.find_ref("active").and_then(Value::as_str) {
            Some(name) => (name.to_owned(), "in the profiles file"),
            None => return Ok(Layer::default()),
        },
    };
    let table = match root.find_ref("profiles").and_then(|p| match p {
        Value::Dict(_, profiles) => profiles.get(&active),
        _ => None,
    }) {
        Some(Value::Dict(_, table)) => table.clone(),
        _ => {
            tracing::warn!(profile = %active, file = %path.display(), "active profile set {chosen_by} not found; using the defaults instead");
            return Ok(Layer::default());
        }
    };
    Layer::build(sources, taken, true, |row| {
        let value = table.get(row.env)?.clone();
        Some((Raw::Toml(value), format!("{} in profile {active:?} of {}", row.env, path.display())))
    })
}

impl DatabaseSettings {
    /// Loads the settings of this process (environment, working directory, `$HOME`).
    pub fn load() -> Result<Self, ConfigError> {
        Self::load_from(&SettingsSources::from_process())
    }

    /// Loads the settings from explicit sources, highest first: `sources.env`, `.env`,
    /// `prefect.toml`, `pyproject.toml` (all three in `sources.working_dir`), the active profile,
    /// then the defaults.
    pub fn load_from(sources: &SettingsSources) -> Result<Self, ConfigError> {
        let (dotenv, prefect_toml, pyproject) = match &sources.working_dir {
            Some(dir) => {
                let env_path = dir.join(".env");
                let dotenv = read_file(&env_path)?.map(|text| (parse_dotenv(&text), env_path));
                (dotenv, read_toml(&dir.join("prefect.toml"))?, read_toml(&dir.join("pyproject.toml"))?)
            }
            None => (None, None, None),
        };
        let no_dotenv = BTreeMap::new();
        let dotenv_vars = dotenv.as_ref().map_or(&no_dotenv, |(vars, _)| vars);

        // Highest first; each source only fills what the ones above left unset.
        let mut taken = BTreeSet::new();
        let mut layers = Vec::new();
        let mut add = |layer: Layer, taken: &mut BTreeSet<&'static str>| {
            taken.extend(layer.origins.iter().map(|(field, _)| *field));
            layers.push(layer);
        };
        add(Layer::from_names(sources, &taken, &sources.env, str::to_owned)?, &mut taken);
        if let Some((vars, path)) = &dotenv {
            add(Layer::from_names(sources, &taken, vars, |name| format!("{name} in {}", path.display()))?, &mut taken);
        }
        if let (Some(root), Some(dir)) = (&prefect_toml, &sources.working_dir) {
            add(Layer::from_toml_paths(sources, &taken, root, "", &dir.join("prefect.toml"))?, &mut taken);
        }
        if let (Some(root), Some(dir)) = (&pyproject, &sources.working_dir) {
            add(Layer::from_toml_paths(sources, &taken, root, "tool.prefect.", &dir.join("pyproject.toml"))?, &mut taken);
        }
        add(profile_layer(sources, &taken, dotenv_vars, prefect_toml.as_ref(), pyproject.as_ref())?, &mut taken);

        let defaults = DatabaseSettings {
            home: expand_tilde(Path::new("~/.prefect"), sources.user_home.as_deref()),
            ..DatabaseSettings::default()
        };
        let mut figment = Figment::from(Serialized::defaults(defaults));
        let mut origins = BTreeMap::new();
        // figment merges lowest first (the sources set disjoint fields, so the order only
        // matters over the defaults).
        for layer in layers.into_iter().rev() {
            for (field, origin) in layer.origins {
                origins.insert(field.to_owned(), origin);
            }
            figment = figment.merge(Serialized::defaults(Value::Dict(Tag::Default, layer.dict)));
        }
        let mut settings: DatabaseSettings = figment.extract().map_err(|e| {
            let field = e.path.join(".");
            let row = canonical_row(&field);
            let secret = row.is_some_and(|r| matches!(r.kind, SettingKind::Secret | SettingKind::Url));
            ConfigError::InvalidValue {
                setting: origins.get(&field).cloned().or_else(|| row.map(|r| r.path.to_owned())).unwrap_or(field),
                value: if secret { "***".to_owned() } else { String::new() },
                reason: if secret { "the value has the wrong type".to_owned() } else { e.kind.to_string() },
            }
        })?;
        settings.origins = origins;
        Ok(settings)
    }

    /// Where a field's value came from, or its canonical environment name.
    fn origin_of(&self, field: &str) -> String {
        self.origins.get(field).cloned().unwrap_or_else(|| canonical_env(field).to_owned())
    }

    /// Resolves the settings into a [`DatabaseConfig`].
    ///
    /// The connection URL is `connection_url` when set, with `${PREFECT_API_DATABASE_PASSWORD}`
    /// and `${PREFECT_SERVER_DATABASE_PASSWORD}` replaced by `password` (which must then be
    /// set; a password set but not used by the URL is ignored with a warning). Otherwise it is
    /// built as Prefect does: no driver → `sqlite+aiosqlite:///{home}/prefect.db`; driver
    /// `sqlite+aiosqlite` → `name` as the file, else the default file; driver
    /// `postgresql+asyncpg` → `postgresql+asyncpg://user:password@host:port/name` (host, user
    /// and name required, port 5432 by default, user, password and name percent-encoded); any
    /// other driver is an error.
    ///
    /// Durations: `timeout` ≤ 0 disables the statement timeout; `connection_timeout` must be
    /// > 0; `migration_timeout` must be > 0 when set; `pool_recycle` < 0 disables recycling.
    /// The statement cache size is the smaller of `statement_cache_size` and
    /// `prepared_statement_cache_size` when both are set (either `0` disables the cache).
    /// Pool settings matter for PostgreSQL only. Errors never contain the password.
    pub fn resolve(&self) -> Result<DatabaseConfig, ConfigError> {
        let mut secrets: Vec<String> = self.password.iter().filter(|p| !p.is_empty()).cloned().collect();
        if let Some(pw) = self.connection_url.as_deref().and_then(url_password) {
            secrets.push(pw.to_owned());
        }
        self.resolve_unscrubbed().map_err(|e| scrub(e, &secrets))
    }

    fn resolve_unscrubbed(&self) -> Result<DatabaseConfig, ConfigError> {
        let url = self.connection_url()?;
        let mut config = DatabaseConfig::new(url);
        config.echo = self.echo;
        config.statement_timeout = if self.timeout > 0.0 { Some(self.duration("timeout", self.timeout, false)?) } else { None };
        config.connection_timeout = self.duration("connection_timeout", self.connection_timeout, false)?;
        config.migration_timeout = match self.migration_timeout {
            Some(t) => Some(self.duration("migration_timeout", t, false)?),
            None => None,
        };
        let sa = &self.sqlalchemy;
        config.pool_size = usize::try_from(sa.pool_size).unwrap_or(usize::MAX);
        config.max_overflow = usize::try_from(sa.max_overflow).unwrap_or(usize::MAX);
        config.pool_timeout = self.duration("sqlalchemy.pool_timeout", sa.pool_timeout, true)?;
        config.pool_recycle = u64::try_from(sa.pool_recycle).ok().map(Duration::from_secs);
        let args = &sa.connect_args;
        config.application_name = args.application_name.clone();
        config.search_path = args.search_path.clone();
        config.statement_cache_size = match (args.statement_cache_size, args.prepared_statement_cache_size) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        config.tls = TlsConfig {
            enabled: args.tls.enabled,
            ca_file: args.tls.ca_file.clone(),
            cert_file: args.tls.cert_file.clone(),
            key_file: args.tls.key_file.clone(),
            check_hostname: args.tls.check_hostname,
        };
        config.sqlite = SqlitePragmas {
            busy_timeout_ms: self.sqlite.busy_timeout_ms,
            cache_size: self.sqlite.cache_size,
            synchronous: self.pragma("sqlite.synchronous", SQLITE_SYNCHRONOUS_MODES, &self.sqlite.synchronous)?,
            journal_mode: self.pragma("sqlite.journal_mode", SQLITE_JOURNAL_MODES, &self.sqlite.journal_mode)?,
        };
        config.migrate_on_start = self.migrate_on_start;
        config.retry = crate::config::RetryPolicy {
            max_attempts: self.retry.max_attempts.max(1),
            initial_backoff: self.duration("retry.initial_backoff", self.retry.initial_backoff, true)?,
            max_backoff: self.duration("retry.max_backoff", self.retry.max_backoff, true)?,
            budget: self.duration("retry.budget", self.retry.budget, true)?,
        };
        config.slow_statement_threshold = match self.slow_statement_threshold {
            t if t == 0.0 => None,
            t => Some(self.duration("slow_statement_threshold", t, false)?),
        };
        config.metrics = self.server.metrics_enabled;
        config.read_replica_url = match self.read_replica_connection_url.as_deref().filter(|u| !u.trim().is_empty()) {
            None => None,
            Some(raw) => {
                let setting = self.origin_of("read_replica_connection_url");
                match DatabaseUrl::parse(raw, &setting)? {
                    DatabaseUrl::Postgres(url) if config.dialect() == crate::url::Dialect::Postgres => Some(DatabaseUrl::Postgres(url)),
                    other => {
                        return Err(ConfigError::InvalidValue {
                            setting,
                            value: other.masked(),
                            reason: "a read replica is a PostgreSQL URL, beside a PostgreSQL connection URL".to_owned(),
                        });
                    }
                }
            }
        };
        Ok(config)
    }

    /// Seconds as a duration (> 0, or ≥ 0 with `allow_zero`).
    fn duration(&self, field: &str, seconds: f64, allow_zero: bool) -> Result<Duration, ConfigError> {
        let in_range = if allow_zero { seconds >= 0.0 } else { seconds > 0.0 };
        match Duration::try_from_secs_f64(seconds) {
            Ok(d) if in_range => Ok(d),
            _ => Err(ConfigError::InvalidValue {
                setting: self.origin_of(field),
                value: seconds.to_string(),
                reason: if allow_zero { "expected a number of seconds, 0 or more" } else { "expected a number of seconds greater than 0" }
                    .to_owned(),
            }),
        }
    }

    /// A pragma value checked against its list, in the listed spelling.
    fn pragma(&self, field: &str, choices: &'static [&'static str], value: &str) -> Result<String, ConfigError> {
        choose(choices, value).map(str::to_owned).ok_or_else(|| ConfigError::InvalidValue {
            setting: self.origin_of(field),
            value: value.to_owned(),
            reason: format!("expected one of {}", choices.join(", ")),
        })
    }

    /// The home folder with `~` expanded (from the process `HOME` if the loader left one).
    fn home_dir(&self) -> PathBuf {
        if self.home.starts_with("~") {
            let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
            expand_tilde(&self.home, home.as_deref())
        } else {
            self.home.clone()
        }
    }

    /// The connection URL (explicit, templated or built), parsed.
    fn connection_url(&self) -> Result<DatabaseUrl, ConfigError> {
        let password = self.password.as_deref();
        if let Some(raw) = self.connection_url.as_deref() {
            let setting = self.origin_of("connection_url");
            let templated = PASSWORD_PLACEHOLDERS.iter().any(|p| raw.contains(p));
            let url = if templated {
                let Some(password) = password else {
                    return Err(ConfigError::Missing(format!(
                        "PREFECT_SERVER_DATABASE_PASSWORD (the connection URL in {setting} refers to the password, \
                         but the password is not set)"
                    )));
                };
                PASSWORD_PLACEHOLDERS.iter().fold(raw.to_owned(), |url, p| url.replace(&format!("${{{p}}}"), password))
            } else {
                if password.is_some() {
                    tracing::warn!(
                        "{} is set but not included in {setting}; the provided password will be ignored",
                        self.origin_of("password"),
                    );
                }
                raw.to_owned()
            };
            return DatabaseUrl::parse(&url, &setting);
        }

        let default_file = || DatabaseUrl::Sqlite(SqliteTarget::File(self.home_dir().join("prefect.db")));
        let Some(driver) = self.driver.as_deref().filter(|d| !d.trim().is_empty()) else {
            return Ok(default_file());
        };
        match choose(DRIVERS, driver) {
            Some(SQLITE_DRIVER) => match self.name.as_deref().filter(|n| !n.is_empty()) {
                Some(name) => DatabaseUrl::parse(&format!("{SQLITE_DRIVER}:///{name}"), &self.origin_of("name")),
                None => Ok(default_file()),
            },
            Some(_) => self.postgres_url(),
            None => Err(ConfigError::InvalidValue {
                setting: self.origin_of("driver"),
                value: driver.to_owned(),
                reason: format!("unsupported database driver: expected {}", DRIVERS.join(" or ")),
            }),
        }
    }

    /// `postgresql+asyncpg://user:password@host:port/name` from the parts.
    fn postgres_url(&self) -> Result<DatabaseUrl, ConfigError> {
        let present = |v: &Option<String>| v.as_deref().filter(|s| !s.trim().is_empty()).map(str::to_owned);
        let (host, user, name) = (present(&self.host), present(&self.user), present(&self.name));
        let missing: Vec<&str> = [("host", host.is_none()), ("user", user.is_none()), ("name", name.is_none())]
            .iter()
            .filter(|(_, missing)| *missing)
            .map(|(field, _)| canonical_env(field))
            .collect();
        let (Some(host), Some(user), Some(name)) = (host, user, name) else {
            return Err(ConfigError::Missing(format!("{} (needed with driver {POSTGRES_DRIVER})", missing.join(", "))));
        };
        let mut url = format!("{POSTGRES_DRIVER}://{}", utf8_percent_encode(&user, COMPONENT));
        if let Some(password) = &self.password {
            url.push(':');
            url.extend(utf8_percent_encode(password, COMPONENT));
        }
        let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
        url.push_str(&format!("@{host}:{}/{}", self.port.unwrap_or(5432), utf8_percent_encode(&name, COMPONENT)));
        let setting = format!("{} (with {}, {}, {}, {} and {})", self.origin_of("driver"), self.origin_of("host"),
            self.origin_of("port"), self.origin_of("user"), self.origin_of("password"), self.origin_of("name"));
        DatabaseUrl::parse(&url, &setting)
    }
}

/// Characters escaped in the user, password and database name of a built URL: all but
/// RFC 3986's unreserved ones.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// The password part of a URL-looking value (between the first `:` after `://` and the last
/// `@`), found even where the URL is malformed.
fn url_password(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let (userinfo, _) = rest.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}

/// Replaces every occurrence of the secrets in the error's text by `***`.
fn scrub(error: ConfigError, secrets: &[String]) -> ConfigError {
    let mut secrets: Vec<&str> = secrets.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return error;
    }
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let clean = |text: String| secrets.iter().fold(text, |text, secret| text.replace(secret, "***"));
    let clean_path = |path: PathBuf| match path.to_str() {
        Some(text) if secrets.iter().any(|s| text.contains(s)) => PathBuf::from(clean(text.to_owned())),
        _ => path,
    };
    #[allow(unreachable_patterns)]
    match error {
        ConfigError::InvalidUrl { setting, value, reason } => {
            ConfigError::InvalidUrl { setting: clean(setting), value: clean(value), reason: clean(reason) }
        }
        ConfigError::InvalidValue { setting, value, reason } => {
            ConfigError::InvalidValue { setting: clean(setting), value: clean(value), reason: clean(reason) }
        }
        ConfigError::Missing(what) => ConfigError::Missing(clean(what)),
        ConfigError::File { path, reason } => ConfigError::File { path: clean_path(path), reason: clean(reason) },
        ConfigError::SqlitePath { path, reason } => ConfigError::SqlitePath { path: clean_path(path), reason: clean(reason) },
        ConfigError::FeatureMissing { url, feature } => ConfigError::FeatureMissing { url: clean(url), feature },
        other => other,
    }
}

/// Creates the folder of an SQLite database file when it is missing (Prefect's default
/// `~/.prefect/prefect.db` lives in a folder that may not exist yet). Called by the pools, not
/// by the loader. A folder that cannot be created (permissions, a file in the way) gives
/// [`ConfigError::SqlitePath`] naming the database file.
pub fn ensure_sqlite_parent(path: &Path) -> Result<(), ConfigError> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(parent).map_err(|e| ConfigError::SqlitePath {
        path: path.to_path_buf(),
        reason: format!("cannot create the folder {}: {e}", parent.display()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    const SECRET: &str = "s3cr3t-pa55";

    /// A temporary user home and working directory.
    struct Fixture {
        _dir: tempfile::TempDir,
        home: PathBuf,
        cwd: PathBuf,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let home = dir.path().join("user");
            let cwd = dir.path().join("project");
            std::fs::create_dir_all(&home).unwrap();
            std::fs::create_dir_all(&cwd).unwrap();
            Fixture { _dir: dir, home, cwd }
        }

        fn sources(&self, env: &[(&str, &str)]) -> SettingsSources {
            SettingsSources {
                env: env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
                working_dir: Some(self.cwd.clone()),
                user_home: Some(self.home.clone()),
            }
        }

        fn load(&self, env: &[(&str, &str)]) -> Result<DatabaseSettings, ConfigError> {
            DatabaseSettings::load_from(&self.sources(env))
        }

        fn write_cwd(&self, name: &str, text: &str) {
            std::fs::write(self.cwd.join(name), text).unwrap();
        }

        fn write_profiles(&self, text: &str) {
            let dir = self.home.join(".prefect");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("profiles.toml"), text).unwrap();
        }

        fn default_home(&self) -> PathBuf {
            self.home.join(".prefect")
        }
    }

    fn field_value(settings: &DatabaseSettings, field: &str) -> Value {
        Value::serialize(settings).unwrap().find(field).unwrap_or_else(|| panic!("no field {field}"))
    }

    /// The documented default of every field in the table.
    fn expected_default(field: &str, fx: &Fixture) -> Value {
        let none = Value::Empty(Tag::Default, figment::value::Empty::None);
        match field {
            "connection_url" | "read_replica_connection_url" | "driver" | "host" | "port" | "user" | "name" | "password" | "migration_timeout" => none,
            "echo" => Value::from(false),
            "migrate_on_start" => Value::from(true),
            "timeout" => Value::from(10.0),
            "connection_timeout" => Value::from(5.0),
            "sqlalchemy.pool_size" => Value::from(5u32),
            "sqlalchemy.max_overflow" => Value::from(10u32),
            "sqlalchemy.pool_recycle" => Value::from(3600i64),
            "sqlalchemy.pool_timeout" => Value::from(30.0),
            "sqlalchemy.connect_args.application_name"
            | "sqlalchemy.connect_args.search_path"
            | "sqlalchemy.connect_args.statement_cache_size"
            | "sqlalchemy.connect_args.prepared_statement_cache_size"
            | "sqlalchemy.connect_args.tls.ca_file"
            | "sqlalchemy.connect_args.tls.cert_file"
            | "sqlalchemy.connect_args.tls.key_file" => none,
            "sqlalchemy.connect_args.tls.enabled" => Value::from(false),
            "sqlalchemy.connect_args.tls.check_hostname" => Value::from(true),
            "retry.max_attempts" => Value::from(8u32),
            "retry.initial_backoff" => Value::from(0.1),
            "retry.max_backoff" => Value::from(2.0),
            "retry.budget" => Value::from(10.0),
            "slow_statement_threshold" => Value::from(1.0),
            "server.metrics_enabled" => Value::from(false),
            "sqlite.busy_timeout_ms" => Value::from(60_000u32),
            "sqlite.cache_size" => Value::from(20_000i64),
            "sqlite.synchronous" => Value::from("NORMAL"),
            "sqlite.journal_mode" => Value::from("WAL"),
            "home" => Value::from(fx.default_home().to_string_lossy().into_owned()),
            other => panic!("no default listed for {other}"),
        }
    }

    /// Environment texts for a kind and the values they must load as.
    fn samples(kind: SettingKind) -> Vec<(String, Value)> {
        match kind {
            SettingKind::Text => vec![("sample text".into(), Value::from("sample text"))],
            SettingKind::Secret => vec![("12345".into(), Value::from("12345"))],
            SettingKind::Url => vec![("postgresql+asyncpg://u:p@h/db".into(), Value::from("postgresql+asyncpg://u:p@h/db"))],
            SettingKind::Path => vec![("/srv/sample".into(), Value::from("/srv/sample"))],
            SettingKind::Bool => vec![
                ("YES".into(), Value::from(true)),
                ("0".into(), Value::from(false)),
                ("True".into(), Value::from(true)),
                ("no".into(), Value::from(false)),
            ],
            SettingKind::Port => vec![("6543".into(), Value::from(6543u16))],
            SettingKind::Count => vec![("7".into(), Value::from(7u32)), ("0".into(), Value::from(0u32))],
            SettingKind::Integer => vec![("-3".into(), Value::from(-3i64))],
            SettingKind::Seconds | SettingKind::PositiveSeconds | SettingKind::NonNegativeSeconds => {
                vec![("2.5".into(), Value::from(2.5)), ("7".into(), Value::from(7.0))]
            }
            SettingKind::Choice(choices) => choices.iter().map(|c| (c.to_ascii_lowercase(), Value::from(*c))).collect(),
        }
    }

    #[test]
    fn the_table_is_consistent() {
        let mut envs: Vec<&str> = ENV_SETTINGS.iter().map(|r| r.env).collect();
        envs.sort_unstable();
        envs.dedup();
        assert_eq!(envs.len(), ENV_SETTINGS.len(), "an environment name is listed twice");
        for row in ENV_SETTINGS {
            let canon = canonical_row(row.field()).unwrap_or_else(|| panic!("{} has no canonical row", row.env));
            assert_eq!(canon.kind, row.kind, "{}", row.env);
            assert_eq!(ENV_SETTINGS.iter().filter(|r| !r.legacy && r.path == row.path).count(), 1, "{}", row.path);
            if !row.legacy && row.path != "home" {
                let expected = format!("PREFECT_{}", row.path.replace('.', "_").to_ascii_uppercase());
                assert_eq!(row.env, expected, "canonical name derived from the path");
            }
        }
        // 37 canonical names (the read replica, retry and slow-statement extensions and Prefect's
        // `server.metrics_enabled` among them) and 14 legacy aliases.
        assert_eq!(ENV_SETTINGS.len(), 51);
        assert_eq!(ENV_SETTINGS.iter().filter(|r| r.legacy).count(), 14);
    }

    #[test]
    fn every_setting_has_its_default() {
        let fx = Fixture::new();
        let settings = fx.load(&[]).unwrap();
        for row in ENV_SETTINGS {
            assert_eq!(field_value(&settings, row.field()), expected_default(row.field(), &fx), "default of {}", row.path);
        }
        assert!(settings.origins.is_empty());
        let defaults = DatabaseSettings::default();
        assert_eq!(DatabaseSettings { home: fx.default_home(), ..defaults }, settings);
    }

    #[test]
    fn every_env_name_sets_its_setting() {
        let fx = Fixture::new();
        for row in ENV_SETTINGS {
            for (text, expected) in samples(row.kind) {
                let settings = fx.load(&[(row.env, &text)]).unwrap_or_else(|e| panic!("{}={text}: {e}", row.env));
                assert_eq!(field_value(&settings, row.field()), expected, "{}={text}", row.env);
                assert_eq!(settings.origins.get(row.field()).map(String::as_str), Some(row.env));
                // Every other field keeps its default.
                for other in ENV_SETTINGS.iter().filter(|o| o.field() != row.field()) {
                    assert_eq!(field_value(&settings, other.field()), expected_default(other.field(), &fx));
                }
            }
        }
    }

    #[test]
    fn every_path_is_read_from_prefect_toml_and_pyproject() {
        for row in ENV_SETTINGS.iter().filter(|r| !r.legacy) {
            let (text, expected) = samples(row.kind).remove(0);
            let (table, key) = row.path.rsplit_once('.').map_or((String::new(), row.path), |(t, k)| (format!("[{t}]\n"), k));
            let fx = Fixture::new();
            fx.write_cwd("prefect.toml", &format!("{table}{key} = {text:?}\n"));
            let settings = fx.load(&[]).unwrap_or_else(|e| panic!("{}: {e}", row.path));
            assert_eq!(field_value(&settings, row.field()), expected, "prefect.toml {}", row.path);
            assert!(settings.origins[row.field()].contains("prefect.toml"));

            let fx = Fixture::new();
            let table = if table.is_empty() { "[tool.prefect]\n".to_owned() } else { table.replace('[', "[tool.prefect.") };
            fx.write_cwd("pyproject.toml", &format!("{table}{key} = {text:?}\n"));
            let settings = fx.load(&[]).unwrap_or_else(|e| panic!("{}: {e}", row.path));
            assert_eq!(field_value(&settings, row.field()), expected, "pyproject.toml {}", row.path);
        }
    }

    #[test]
    fn canonical_beats_legacy_in_every_source() {
        let fx = Fixture::new();
        for legacy_row in ENV_SETTINGS.iter().filter(|r| r.legacy) {
            let canon = canonical_row(legacy_row.field()).unwrap();
            let samples = samples(canon.kind);
            let (canon_text, canon_value) = samples.last().cloned().unwrap();
            let legacy_text = match canon.kind {
                SettingKind::Bool => "not-even-a-bool".to_owned(), // an alias that loses is not parsed
                _ => samples.first().cloned().unwrap().0,
            };
            for order in [[(canon.env, &canon_text), (legacy_row.env, &legacy_text)], [(legacy_row.env, &legacy_text), (canon.env, &canon_text)]] {
                let env: Vec<(&str, &str)> = order.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let settings = fx.load(&env).unwrap();
                assert_eq!(field_value(&settings, canon.field()), canon_value, "{} over {}", canon.env, legacy_row.env);
                assert_eq!(settings.origins[canon.field()], canon.env);
            }
        }
        // Same rule inside a profile.
        fx.write_profiles(
            "active = \"dev\"\n[profiles.dev]\nPREFECT_API_DATABASE_HOST = \"legacy\"\nPREFECT_SERVER_DATABASE_HOST = \"canonical\"\n",
        );
        assert_eq!(fx.load(&[]).unwrap().host.as_deref(), Some("canonical"));
    }

    #[test]
    fn env_beats_dotenv_beats_prefect_toml_beats_pyproject_beats_profile_beats_default() {
        let fx = Fixture::new();
        fx.write_profiles(
            "active = \"dev\"\n[profiles.dev]\nPREFECT_API_DATABASE_HOST = \"profile\"\nPREFECT_API_DATABASE_USER = \"profile\"\n\
             PREFECT_API_DATABASE_NAME = \"profile\"\nPREFECT_API_DATABASE_DRIVER = \"profile-driver-is-ignored\"\n\
             PREFECT_SQLALCHEMY_POOL_SIZE = 11\nPREFECT_SERVER_DATABASE_SQLALCHEMY_MAX_OVERFLOW = 12\n",
        );
        fx.write_cwd("pyproject.toml", "[tool.prefect.server.database]\nuser = \"pyproject\"\nname = \"pyproject\"\nhost = \"pyproject\"\n[tool.prefect.server.database.sqlalchemy]\nmax_overflow = 13\n");
        fx.write_cwd("prefect.toml", "[server.database]\nname = \"toml\"\nhost = \"toml\"\ndriver = \"postgresql+asyncpg\"\n");
        fx.write_cwd(".env", "# comment\nexport PREFECT_API_DATABASE_HOST=\"dotenv\"\n");
        let settings = fx.load(&[("PREFECT_SERVER_DATABASE_PORT", "5433")]).unwrap();
        assert_eq!(settings.port, Some(5433));
        assert_eq!(settings.host.as_deref(), Some("dotenv"));
        assert_eq!(settings.name.as_deref(), Some("toml"));
        assert_eq!(settings.user.as_deref(), Some("pyproject"));
        assert_eq!(settings.driver.as_deref(), Some(POSTGRES_DRIVER));
        assert_eq!(settings.sqlalchemy.pool_size, 11);
        assert_eq!(settings.sqlalchemy.max_overflow, 13);
        assert_eq!(settings.timeout, 10.0);
        assert!(settings.origins["host"].contains(".env"));
        assert!(settings.origins["sqlalchemy.pool_size"].contains("PREFECT_SQLALCHEMY_POOL_SIZE in profile \"dev\""));
        let config = settings.resolve().unwrap();
        let DatabaseUrl::Postgres(pg) = &config.url else { panic!("{:?}", config.url) };
        assert_eq!(pg.expose(), "postgresql://pyproject@dotenv:5433/toml");

        // The environment beats every file, whichever name it uses.
        let settings = fx.load(&[("PREFECT_API_DATABASE_HOST", "env")]).unwrap();
        assert_eq!(settings.host.as_deref(), Some("env"));
    }

    #[test]
    fn profile_selection() {
        let fx = Fixture::new();
        fx.write_profiles(
            "active = \"one\"\n[profiles.one]\nPREFECT_API_DATABASE_NAME = \"one\"\n[profiles.two]\nPREFECT_API_DATABASE_NAME = \"two\"\n",
        );
        assert_eq!(fx.load(&[]).unwrap().name.as_deref(), Some("one"));
        assert_eq!(fx.load(&[("PREFECT_PROFILE", "two")]).unwrap().name.as_deref(), Some("two"));
        // A missing profile is ignored (Prefect warns and uses the defaults).
        assert_eq!(fx.load(&[("PREFECT_PROFILE", "three")]).unwrap().name, None);
        // PREFECT_HOME moves the profiles file; PREFECT_PROFILES_PATH names it.
        let other = fx.cwd.join("elsewhere");
        std::fs::create_dir_all(&other).unwrap();
        std::fs::write(other.join("profiles.toml"), "active = \"x\"\n[profiles.x]\nPREFECT_SERVER_DATABASE_NAME = \"x\"\n").unwrap();
        let home = other.to_string_lossy().into_owned();
        assert_eq!(fx.load(&[("PREFECT_HOME", &home)]).unwrap().name.as_deref(), Some("x"));
        assert_eq!(fx.load(&[("PREFECT_PROFILES_PATH", "elsewhere/profiles.toml")]).unwrap().name.as_deref(), Some("x"));
        // A broken profiles file is ignored with a warning, like Prefect.
        fx.write_profiles("active = \n");
        assert_eq!(fx.load(&[]).unwrap().name, None);
    }

    fn assert_clean(err: &ConfigError, names: &[&str]) {
        let text = err.to_string();
        for name in names {
            assert!(text.contains(name), "{text:?} does not name {name}");
        }
        assert!(!text.contains(SECRET), "{text:?} shows the password");
        assert!(!format!("{err:?}").contains(SECRET), "{err:?} shows the password");
    }

    #[test]
    fn bad_inputs_name_the_setting_and_hide_the_password() {
        let fx = Fixture::new();
        let pw = ("PREFECT_SERVER_DATABASE_PASSWORD", SECRET);
        let url = format!("mysql://u:{SECRET}@h/db");
        let err = fx.load(&[pw, ("PREFECT_API_DATABASE_CONNECTION_URL", &url)]).unwrap().resolve().unwrap_err();
        assert!(matches!(err, ConfigError::InvalidUrl { .. }));
        assert_clean(&err, &["PREFECT_API_DATABASE_CONNECTION_URL", "unknown scheme"]);

        for bad in ["not a url", "postgresql+asyncpg://u:${PREFECT_SERVER_DATABASE_PASSWORD}@h:port/db"] {
            let err = fx.load(&[pw, ("PREFECT_SERVER_DATABASE_CONNECTION_URL", bad)]).unwrap().resolve().unwrap_err();
            assert!(matches!(err, ConfigError::InvalidUrl { .. }), "{err}");
            assert_clean(&err, &["PREFECT_SERVER_DATABASE_CONNECTION_URL"]);
        }
        // A password with URL delimiters that defeats masking by URL shape is still hidden.
        let odd = format!("{SECRET}/x");
        let settings = fx
            .load(&[("PREFECT_SERVER_DATABASE_PASSWORD", &odd), ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "postgresql+asyncpg://u:${PREFECT_API_DATABASE_PASSWORD}@h:port/db")])
            .unwrap();
        assert_clean(&settings.resolve().unwrap_err(), &["PREFECT_SERVER_DATABASE_CONNECTION_URL"]);
        let err = DatabaseSettings { connection_url: Some(format!("postgresql://u:{SECRET}/x@h:port/db")), ..DatabaseSettings::default() }
            .resolve()
            .unwrap_err();
        assert_clean(&err, &["PREFECT_SERVER_DATABASE_CONNECTION_URL"]);

        let err = fx.load(&[pw, ("PREFECT_API_DATABASE_TIMEOUT", "soon")]).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }));
        assert_clean(&err, &["PREFECT_API_DATABASE_TIMEOUT", "soon"]);
        for bad in ["-5", "0", "inf", "NaN"] {
            let err = fx.load(&[pw, ("PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT", bad)]).unwrap_err();
            assert_clean(&err, &["PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT", "greater than 0"]);
        }
        let err = fx.load(&[pw, ("PREFECT_SERVER_DATABASE_ECHO", "maybe")]).unwrap_err();
        assert_clean(&err, &["PREFECT_SERVER_DATABASE_ECHO", "maybe", "boolean"]);
        let err = fx.load(&[pw, ("PREFECT_API_DATABASE_PORT", "99999")]).unwrap_err();
        assert_clean(&err, &["PREFECT_API_DATABASE_PORT"]);
        let err = fx.load(&[pw, ("PREFECT_SQLALCHEMY_MAX_OVERFLOW", "-1")]).unwrap_err();
        assert_clean(&err, &["PREFECT_SQLALCHEMY_MAX_OVERFLOW"]);

        let err = fx
            .load(&[pw, ("PREFECT_SERVER_DATABASE_DRIVER", "postgresql+asyncpg"), ("PREFECT_SERVER_DATABASE_HOST", "h")])
            .unwrap()
            .resolve()
            .unwrap_err();
        assert!(matches!(err, ConfigError::Missing(_)));
        assert_clean(&err, &["PREFECT_SERVER_DATABASE_USER", "PREFECT_SERVER_DATABASE_NAME"]);
        assert!(!err.to_string().contains("PREFECT_SERVER_DATABASE_HOST"));

        let err = fx.load(&[pw, ("PREFECT_API_DATABASE_DRIVER", "mysql+aiomysql")]).unwrap_err();
        assert_clean(&err, &["PREFECT_API_DATABASE_DRIVER", "mysql+aiomysql"]);
        let err = DatabaseSettings { driver: Some("mysql+aiomysql".into()), password: Some(SECRET.into()), ..DatabaseSettings::default() }
            .resolve()
            .unwrap_err();
        assert!(matches!(err, ConfigError::InvalidValue { .. }));
        assert_clean(&err, &["PREFECT_SERVER_DATABASE_DRIVER", "unsupported database driver"]);

        for placeholder in ["${PREFECT_API_DATABASE_PASSWORD}", "${PREFECT_SERVER_DATABASE_PASSWORD}"] {
            let url = format!("postgresql+asyncpg://u:{placeholder}@h/db");
            let err = fx.load(&[("PREFECT_API_DATABASE_CONNECTION_URL", &url)]).unwrap().resolve().unwrap_err();
            assert!(matches!(err, ConfigError::Missing(_)));
            assert_clean(&err, &["PREFECT_SERVER_DATABASE_PASSWORD", "PREFECT_API_DATABASE_CONNECTION_URL"]);
        }

        // Files: the key and the file are named; a secret of the wrong shape is masked.
        fx.write_cwd("prefect.toml", &format!("[server.database]\npassword = [{SECRET:?}]\n"));
        let err = fx.load(&[]).unwrap_err();
        assert_clean(&err, &["server.database.password", "prefect.toml"]);
        fx.write_cwd("prefect.toml", "[server.database.sqlalchemy]\npool_size = \"many\"\n");
        assert_clean(&fx.load(&[]).unwrap_err(), &["server.database.sqlalchemy.pool_size", "prefect.toml", "many"]);
        fx.write_cwd("prefect.toml", &format!("[server.database]\npassword = \"{SECRET}\n"));
        let err = fx.load(&[]).unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }), "{err}");
        assert_clean(&err, &["prefect.toml"]);
    }

    #[test]
    fn password_templating_and_numeric_password() {
        let fx = Fixture::new();
        let settings = fx
            .load(&[
                ("PREFECT_SERVER_DATABASE_PASSWORD", "12345"),
                ("PREFECT_SERVER_DATABASE_CONNECTION_URL", "postgresql+asyncpg://u:${PREFECT_SERVER_DATABASE_PASSWORD}@h/db"),
            ])
            .unwrap();
        assert_eq!(settings.password.as_deref(), Some("12345"));
        assert!(!format!("{settings:?}").contains("12345"));
        let DatabaseUrl::Postgres(pg) = settings.resolve().unwrap().url else { panic!() };
        assert_eq!(pg.expose(), "postgresql://u:12345@h/db");

        let settings = fx.load(&[("PREFECT_API_DATABASE_PASSWORD", "p"), ("PREFECT_API_DATABASE_CONNECTION_URL", "postgresql://u:${PREFECT_API_DATABASE_PASSWORD}@h/db")]).unwrap();
        let DatabaseUrl::Postgres(pg) = settings.resolve().unwrap().url else { panic!() };
        assert_eq!(pg.expose(), "postgresql://u:p@h/db");

        // Numeric password from a profile (TOML integer) stays text too.
        fx.write_profiles("active = \"p\"\n[profiles.p]\nPREFECT_API_DATABASE_PASSWORD = 12345\n");
        assert_eq!(fx.load(&[]).unwrap().password.as_deref(), Some("12345"));
    }

    #[test]
    fn unused_password_is_warned_about() {
        #[derive(Clone)]
        struct Capture(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buffer.clone());
        let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
        let settings = DatabaseSettings {
            connection_url: Some("postgresql+asyncpg://u@h/db".into()),
            password: Some(SECRET.into()),
            ..DatabaseSettings::default()
        };
        let config = tracing::subscriber::with_default(subscriber, || settings.resolve()).unwrap();
        assert_eq!(config.url.masked(), "postgresql://u@h/db");
        let logged = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert!(logged.contains("WARN") && logged.contains("PREFECT_SERVER_DATABASE_PASSWORD is set but not included"), "{logged}");
        assert!(!logged.contains(SECRET));
    }

    #[test]
    fn default_and_built_urls() {
        let fx = Fixture::new();
        let config = fx.load(&[]).unwrap().resolve().unwrap();
        assert_eq!(config.url, DatabaseUrl::Sqlite(SqliteTarget::File(fx.home.join(".prefect").join("prefect.db"))));
        assert_eq!(config, DatabaseConfig::new(config.url.clone()));

        // PREFECT_HOME, with `~` expanded.
        let config = fx.load(&[("PREFECT_HOME", "~/elsewhere")]).unwrap().resolve().unwrap();
        assert_eq!(config.url, DatabaseUrl::Sqlite(SqliteTarget::File(fx.home.join("elsewhere/prefect.db"))));
        // A sqlite driver without a name, and with one.
        let config = fx.load(&[("PREFECT_SERVER_DATABASE_DRIVER", "sqlite+aiosqlite")]).unwrap().resolve().unwrap();
        assert_eq!(config.url, DatabaseUrl::Sqlite(SqliteTarget::File(fx.default_home().join("prefect.db"))));
        let config = fx
            .load(&[("PREFECT_SERVER_DATABASE_DRIVER", "sqlite+aiosqlite"), ("PREFECT_SERVER_DATABASE_NAME", "/data/x.db")])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(config.url, DatabaseUrl::Sqlite(SqliteTarget::File(PathBuf::from("/data/x.db"))));
        // No driver: the name is ignored, as in Prefect.
        let config = fx.load(&[("PREFECT_SERVER_DATABASE_NAME", "/data/x.db")]).unwrap().resolve().unwrap();
        assert_eq!(config.url, DatabaseUrl::Sqlite(SqliteTarget::File(fx.default_home().join("prefect.db"))));

        // :memory:
        for url in [":memory:", "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true&check_same_thread=false"] {
            let config = fx.load(&[("PREFECT_SERVER_DATABASE_CONNECTION_URL", url)]).unwrap().resolve().unwrap();
            assert!(config.url.is_in_memory(), "{url}");
            assert_eq!(config.max_connections(), 1);
        }

        // PostgreSQL from parts, with special characters encoded.
        let settings = fx
            .load(&[
                ("PREFECT_SERVER_DATABASE_DRIVER", "postgresql+asyncpg"),
                ("PREFECT_SERVER_DATABASE_HOST", "db.local"),
                ("PREFECT_SERVER_DATABASE_USER", "pre fect"),
                ("PREFECT_SERVER_DATABASE_PASSWORD", "p@ss:w/rd"),
                ("PREFECT_SERVER_DATABASE_NAME", "prefect"),
            ])
            .unwrap();
        let DatabaseUrl::Postgres(pg) = settings.resolve().unwrap().url else { panic!() };
        assert_eq!((pg.host(), pg.port(), pg.user().as_deref(), pg.database().as_str()), (Some("db.local"), 5432, Some("pre fect"), "prefect"));
        assert_eq!(pg.masked(), "postgresql://pre%20fect:***@db.local:5432/prefect");
    }

    #[test]
    fn resolution_of_numbers() {
        let fx = Fixture::new();
        let config = fx
            .load(&[
                ("PREFECT_SERVER_DATABASE_TIMEOUT", "0"),
                ("PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT", "2.5"),
                ("PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT", "600"),
                ("PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_RECYCLE", "-1"),
                ("PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_TIMEOUT", "0"),
                ("PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_STATEMENT_CACHE_SIZE", "0"),
                ("PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_PREPARED_STATEMENT_CACHE_SIZE", "100"),
                ("PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_ENABLED", "on"),
                ("PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CA_FILE", "~/ca.pem"),
                ("PREFECT_SERVER_DATABASE_SQLITE_SYNCHRONOUS", "full"),
                ("PREFECT_SERVER_DATABASE_SQLITE_CACHE_SIZE", "-2000"),
                ("PREFECT_SERVER_DATABASE_MIGRATE_ON_START", "false"),
            ])
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(config.statement_timeout, None);
        assert_eq!(config.connection_timeout, Duration::from_millis(2500));
        assert_eq!(config.migration_timeout, Some(Duration::from_secs(600)));
        assert_eq!(config.pool_recycle, None);
        assert_eq!(config.pool_timeout, Duration::ZERO);
        assert_eq!(config.statement_cache_size, Some(0));
        assert!(config.tls.enabled && config.tls.check_hostname);
        assert_eq!(config.tls.ca_file, Some(fx.home.join("ca.pem")));
        assert_eq!(config.sqlite.synchronous, "FULL");
        assert_eq!(config.sqlite.cache_size, -2000);
        assert!(!config.migrate_on_start);

        let config = fx.load(&[("PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_PREPARED_STATEMENT_CACHE_SIZE", "0")]).unwrap().resolve().unwrap();
        assert_eq!(config.statement_cache_size, Some(0));

        // Values set in code are checked too.
        let bad = DatabaseSettings { connection_timeout: 0.0, ..DatabaseSettings::default() };
        assert!(bad.resolve().unwrap_err().to_string().contains("PREFECT_SERVER_DATABASE_CONNECTION_TIMEOUT"));
        let bad = DatabaseSettings { migration_timeout: Some(-1.0), ..DatabaseSettings::default() };
        assert!(bad.resolve().unwrap_err().to_string().contains("PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT"));
        let mut bad = DatabaseSettings::default();
        bad.sqlite.journal_mode = "WAL; DROP TABLE flow".into();
        assert!(bad.resolve().unwrap_err().to_string().contains("PREFECT_SERVER_DATABASE_SQLITE_JOURNAL_MODE"));
        // Blank values count as unset.
        assert_eq!(fx.load(&[("PREFECT_SERVER_DATABASE_PORT", " ")]).unwrap().port, None);
    }

    #[test]
    fn dotenv_parsing() {
        let vars = parse_dotenv("A=1\n export B = 'two # x'\nC=\"q\\\"uote\" # c\nD=plain # comment\n#E=no\nbad line\n");
        let expected: BTreeMap<String, String> =
            [("A", "1"), ("B", "two # x"), ("C", "q\"uote"), ("D", "plain")].iter().map(|(k, v)| ((*k).into(), (*v).into())).collect();
        assert_eq!(vars, expected);
    }

    #[test]
    fn sqlite_parent_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("a/b/prefect.db");
        ensure_sqlite_parent(&db).unwrap();
        assert!(dir.path().join("a/b").is_dir());
        ensure_sqlite_parent(&db).unwrap();
        ensure_sqlite_parent(Path::new("relative.db")).unwrap();
        ensure_sqlite_parent(Path::new("/prefect.db")).unwrap();

        // A file in the way.
        std::fs::write(dir.path().join("file"), "").unwrap();
        let db = dir.path().join("file/sub/prefect.db");
        let err = ensure_sqlite_parent(&db).unwrap_err();
        assert!(matches!(&err, ConfigError::SqlitePath { path, .. } if *path == db), "{err}");

        // A folder that may not be created, even by root: /proc refuses new entries.
        let db = Path::new("/proc/prefect-db-no-such/sub/prefect.db");
        let err = ensure_sqlite_parent(db).unwrap_err();
        assert!(matches!(&err, ConfigError::SqlitePath { path, .. } if path == db), "{err}");
        assert!(err.to_string().contains("/proc/prefect-db-no-such/sub/prefect.db"), "{err}");
    }

    #[test]
    fn load_reads_the_process() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("prefect.toml", "[server.database.sqlite]\ncache_size = 1234\n")?;
            jail.set_env("PREFECT_SERVER_DATABASE_SQLITE_BUSY_TIMEOUT_MS", "4321");
            let settings = DatabaseSettings::load().map_err(|e| e.to_string())?;
            assert_eq!(settings.sqlite.cache_size, 1234);
            assert_eq!(settings.sqlite.busy_timeout_ms, 4321);
            Ok(())
        });
    }
}
