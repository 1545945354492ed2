//! The connection vocabulary every tier of the Prefect database layer shares: the connection
//! type of each backend, the [`Conn`] handle that queries run on, transactions with Prefect's
//! semantics ([`TxMode`]), the [`Dialect`], and [`dispatch!`], which runs one query body against
//! either backend.
//!
//! This crate knows nothing of settings, URLs, pools, the schema or the queries: the pools of
//! `prefect-db-config` hand out its connections, and the models of `prefect-orm` and the queries
//! of `prefect-query-components` run on them.

pub mod conn;
#[cfg(feature = "sqlite")]
pub mod sqlite_runtime;

pub use conn::{Conn, TxFailure, TxMode};
#[cfg(feature = "postgres")]
pub use conn::PgConn;

#[cfg(not(any(feature = "postgres", feature = "sqlite")))]
compile_error!("prefect-db-conn needs at least one of the features `postgres` and `sqlite`");

/// The SQL dialect of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dialect {
    /// PostgreSQL (13 or later; Prefect's CI uses 14, ours 15).
    Postgres,
    /// SQLite (3.24 or later), an embedded file.
    Sqlite,
}

impl Dialect {
    /// The dialect name Prefect uses (`"postgresql"` or `"sqlite"`).
    pub const fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgresql",
            Dialect::Sqlite => "sqlite",
        }
    }

    /// Both dialects.
    pub const ALL: [Dialect; 2] = [Dialect::Sqlite, Dialect::Postgres];
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
