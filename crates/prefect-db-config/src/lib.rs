//! Settings and tier 1 of the Prefect database layer: Prefect's `server.database.*` settings
//! (figment: environment, `prefect.toml`, the active profile, defaults), the connection URL and
//! its dialect, and connections, pools and transactions for PostgreSQL and SQLite.
//!
//! This is the only crate that reads the environment or settings files. It knows nothing of
//! the schema, the models or the queries.

pub mod admin;
pub mod config;
pub mod observe;
pub mod error;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod pool;
pub mod settings;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod url;

pub use config::{DatabaseConfig, RetryPolicy, SqlitePragmas, TlsConfig};
pub use prefect_db_conn::{Conn, TxFailure, TxMode, conn, dispatch};
#[cfg(feature = "sqlite")]
pub use prefect_db_conn::sqlite_runtime;
pub use error::{ConfigError, DbError};
pub use pool::{DbPool, PoolStatus, PooledConnection, cached_pool};
pub use url::{DatabaseUrl, Dialect, PostgresUrl, SqliteTarget};

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("prefect-db-config needs at least one of the features `postgres` and `sqlite`");
