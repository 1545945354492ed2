//! Typed errors of settings and tier 1. Every message names the setting, file or value at fault;
//! passwords are masked.

use std::path::PathBuf;

/// A setting could not be read or makes no sense.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The connection URL could not be understood.
    #[error("invalid database URL in {setting}: {value}: {reason}")]
    InvalidUrl {
        /// The setting (environment variable or file key) the URL came from.
        setting: String,
        /// The URL, password masked.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting has a value of the wrong kind or out of range.
    #[error("invalid value for {setting}: {value:?}: {reason}")]
    InvalidValue {
        /// The setting's name.
        setting: String,
        /// The value found (masked when secret).
        value: String,
        /// What was expected.
        reason: String,
    },
    /// Settings needed to build a connection URL are missing.
    #[error("missing required database connection settings: {0}")]
    Missing(String),
    /// A settings file could not be read or parsed.
    #[error("cannot read settings file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        reason: String,
    },
    /// The SQLite database file or its folder cannot be created or opened.
    #[error("cannot use SQLite database file {path}: {reason}")]
    SqlitePath {
        /// The database file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The URL names a dialect this build was compiled without.
    #[error("the URL {url} needs the `{feature}` feature, which this build does not have")]
    FeatureMissing {
        /// The URL, password masked.
        url: String,
        /// The cargo feature to enable.
        feature: &'static str,
    },
}

/// A database operation of tier 1 failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No pooled connection became free in time.
    #[error("timed out after {waited_ms} ms waiting for a database connection to {url} (pool of {max_size}; raise PREFECT_SERVER_DATABASE_SQLALCHEMY_POOL_SIZE/MAX_OVERFLOW or POOL_TIMEOUT)")]
    PoolTimeout {
        /// The database, password masked.
        url: String,
        /// The pool's size.
        max_size: usize,
        /// How long the caller waited.
        waited_ms: u128,
    },
    /// A connection could not be established (or set up) in time or at all.
    #[error("cannot connect to {url}: {reason}")]
    Connect {
        /// The database, password masked.
        url: String,
        /// Why.
        reason: String,
    },
    /// The pool was closed.
    #[error("the connection pool of {url} is closed")]
    PoolClosed {
        /// The database, password masked.
        url: String,
    },
    /// A statement failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    /// The database could not be created or dropped.
    #[error("cannot {action} database {url}: {reason}")]
    Admin {
        /// `create` or `drop`.
        action: &'static str,
        /// The database, password masked.
        url: String,
        /// Why.
        reason: String,
    },
}
