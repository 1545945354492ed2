//! Connections: the pooled connection a caller checks out, the borrowed [`Conn`] that queries
//! run on, and transactions with Prefect's semantics on each dialect.

use crate::Dialect;
use diesel::result::Error;
#[cfg(feature = "sqlite")]
use crate::sqlite_runtime::{LockState, MayWait, NoWait};
#[cfg(feature = "sqlite")]
use diesel::connection::{AnsiTransactionManager, TransactionManager as _};

#[cfg(feature = "postgres")]
pub use diesel_async::AsyncPgConnection;
/// The async SQLite connection: diesel's sync connection, its work run inline while it holds
/// the write lock and on tokio's blocking pool otherwise ([`crate::sqlite_runtime`]).
#[cfg(feature = "sqlite")]
pub type SqliteConnection = diesel_async::sync_connection_wrapper::SyncConnectionWrapper<
    diesel::SqliteConnection,
    crate::sqlite_runtime::SqliteRuntime,
>;

/// A connection borrowed for the duration of some queries: the handle tier 2 works on.
///
/// Write a query once with [`dispatch!`](crate::dispatch) and it is type-checked against each
/// backend separately; write per-dialect code by matching on the variants.
pub enum Conn<'a> {
    /// A PostgreSQL connection (it derefs to the `AsyncPgConnection`).
    #[cfg(feature = "postgres")]
    Postgres(PgConn<'a>),
    /// An SQLite connection.
    #[cfg(feature = "sqlite")]
    Sqlite(&'a mut SqliteConnection),
}

/// A borrowed PostgreSQL connection and how its transactions begin. It derefs to the
/// `AsyncPgConnection`, so diesel-async queries run on `&mut *conn` as on the connection itself.
#[cfg(feature = "postgres")]
pub struct PgConn<'a> {
    conn: &'a mut AsyncPgConnection,
    begin: Option<&'a str>,
}

#[cfg(feature = "postgres")]
impl<'a> PgConn<'a> {
    /// A connection whose outermost transactions begin with diesel's `BEGIN`.
    pub fn new(conn: &'a mut AsyncPgConnection) -> Self {
        PgConn { conn, begin: None }
    }

    /// A connection whose outermost transactions begin with `begin` instead: SQL text run as
    /// one batch that starts the transaction and applies what the session could not hold
    /// (behind a transaction-mode pooler: isolation level, `SET LOCAL` settings).
    pub fn with_begin(conn: &'a mut AsyncPgConnection, begin: Option<&'a str>) -> Self {
        PgConn { conn, begin }
    }

    /// The SQL an outermost transaction begins with, when it is not diesel's `BEGIN`.
    pub fn begin_sql(&self) -> Option<&'a str> {
        self.begin
    }

    /// A shorter borrow of the same connection.
    pub fn reborrow(&mut self) -> PgConn<'_> {
        PgConn { conn: &mut *self.conn, begin: self.begin }
    }
}

#[cfg(feature = "postgres")]
impl std::ops::Deref for PgConn<'_> {
    type Target = AsyncPgConnection;
    fn deref(&self) -> &AsyncPgConnection {
        self.conn
    }
}

#[cfg(feature = "postgres")]
impl std::ops::DerefMut for PgConn<'_> {
    fn deref_mut(&mut self) -> &mut AsyncPgConnection {
        self.conn
    }
}

impl Conn<'_> {
    /// The dialect of this connection.
    pub fn dialect(&self) -> Dialect {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(_) => Dialect::Postgres,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// A shorter borrow of the same connection.
    pub fn reborrow(&mut self) -> Conn<'_> {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => Conn::Postgres(c.reborrow()),
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => Conn::Sqlite(c),
        }
    }

    /// Runs `body` in a transaction (Prefect's `begin_transaction`): committed when it returns
    /// `Ok`, rolled back when it returns `Err`.
    ///
    /// `TxMode::Write` is Prefect's `with_for_update=True`: on SQLite the transaction begins
    /// `IMMEDIATE`, taking the write lock up front so a read-then-write never fails with
    /// "database is locked"; on PostgreSQL it is an ordinary READ COMMITTED transaction (rows are
    /// locked by the queries themselves, `FOR UPDATE`). `TxMode::Read` begins `DEFERRED` on
    /// SQLite.
    ///
    /// Dropping the returned future mid-way leaves the connection marked as inside a
    /// transaction; the pool then discards it instead of handing it out again.
    pub async fn transaction<R, E, F>(&mut self, mode: TxMode, body: F) -> Result<R, E>
    where
        F: for<'c> AsyncFnOnce(&mut Conn<'c>) -> Result<R, E>,
        E: From<Error>,
    {
        self.transaction_phased(mode, body).await.map_err(|failure| match failure {
            TxFailure::Begin(e) | TxFailure::Commit(e) => E::from(e),
            TxFailure::Body(e) => e,
        })
    }

    /// [`Conn::transaction`], saying where it failed: before anything ran, in the body (rolled
    /// back), or at the commit (whose outcome a lost connection leaves unknown). What a retry
    /// decides on: only the first two may run the body again without risking a second commit.
    pub async fn transaction_phased<R, E, F>(&mut self, mode: TxMode, body: F) -> Result<R, TxFailure<E>>
    where
        F: for<'c> AsyncFnOnce(&mut Conn<'c>) -> Result<R, E>,
    {
        self.begin(mode).await.map_err(TxFailure::Begin)?;
        match body(&mut self.reborrow()).await {
            Ok(value) => {
                self.commit().await.map_err(TxFailure::Commit)?;
                Ok(value)
            }
            Err(error) => {
                // The body's error is what the caller needs; a failed rollback marks the
                // connection broken and the pool drops it.
                if let Err(rollback) = self.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed");
                }
                Err(TxFailure::Body(error))
            }
        }
    }

    async fn begin(&mut self, mode: TxMode) -> Result<(), Error> {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => {
                // PostgreSQL rows are locked by the queries themselves (`FOR UPDATE`).
                let _ = mode;
                type Manager = diesel_async::AnsiTransactionManager;
                let begin = c.begin_sql();
                let conn: &mut AsyncPgConnection = c;
                let outermost = <Manager as diesel_async::TransactionManager<AsyncPgConnection>>::transaction_manager_status_mut(conn)
                    .transaction_depth()?
                    .is_none();
                match begin {
                    Some(sql) if outermost => Manager::begin_transaction_sql(conn, sql).await,
                    _ => <Manager as diesel_async::TransactionManager<AsyncPgConnection>>::begin_transaction(conn).await,
                }
            }
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => match mode {
                // DEFERRED touches no lock until the first read or write.
                TxMode::Read => sqlite_step(c, |inner| {
                    AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN DEFERRED")?;
                    Ok(NoWait(LockState::Free))
                })
                .await
                .map(drop),
                TxMode::Write => {
                    // First without waiting, on this thread; when another connection holds the
                    // lock, wait for it with the configured busy timeout on the blocking pool.
                    if sqlite_step(c, try_begin_immediate).await?.0 != LockState::Busy {
                        return Ok(());
                    }
                    sqlite_step(c, |inner| {
                        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE")?;
                        Ok(MayWait(LockState::Held))
                    })
                    .await
                    .map(drop)
                }
            },
        }
    }

    async fn commit(&mut self) -> Result<(), Error> {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => commit_with(&mut **c).await,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => sqlite_end(c, AnsiTransactionManager::commit_transaction).await,
        }
    }

    async fn rollback(&mut self) -> Result<(), Error> {
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => rollback_with(&mut **c).await,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => sqlite_end(c, AnsiTransactionManager::rollback_transaction).await,
        }
    }

    /// Executes SQL text of one or more statements without results.
    pub async fn batch_execute(&mut self, sql: &str) -> Result<(), Error> {
        use diesel_async::SimpleAsyncConnection;
        match self {
            #[cfg(feature = "postgres")]
            Conn::Postgres(c) => c.batch_execute(sql).await,
            #[cfg(feature = "sqlite")]
            Conn::Sqlite(c) => c.batch_execute(sql).await,
        }
    }
}

/// One transaction step on an SQLite connection; its result type tells the connection's runtime
/// where to run it ([`crate::sqlite_runtime`]).
#[cfg(feature = "sqlite")]
async fn sqlite_step<S: Send + 'static>(
    c: &mut SqliteConnection,
    step: impl FnOnce(&mut diesel::SqliteConnection) -> diesel::QueryResult<S> + Send + 'static,
) -> Result<S, Error> {
    c.spawn_blocking(step).await
}

/// COMMIT or ROLLBACK: inline while the write lock is held, and the lock is free afterwards.
#[cfg(feature = "sqlite")]
async fn sqlite_end(
    c: &mut SqliteConnection,
    end: fn(&mut diesel::SqliteConnection) -> diesel::QueryResult<()>,
) -> Result<(), Error> {
    sqlite_step(c, move |inner| {
        end(inner)?;
        Ok(MayWait(LockState::Free))
    })
    .await
    .map(drop)
}

/// `BEGIN IMMEDIATE` with SQLite's busy timeout at zero for the attempt: `Busy` (nothing begun)
/// when another connection holds the write lock, instead of sleeping in the busy handler.
#[cfg(feature = "sqlite")]
fn try_begin_immediate(inner: &mut diesel::SqliteConnection) -> diesel::QueryResult<NoWait> {
    use diesel::connection::SimpleConnection;
    use diesel::result::{DatabaseErrorKind, Error};
    #[derive(diesel::QueryableByName)]
    struct Busy {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        timeout: i64,
    }
    let busy: Busy = diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA busy_timeout"), inner)?;
    inner.batch_execute("PRAGMA busy_timeout = 0")?;
    let begun = AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE");
    let restored = inner.batch_execute(&format!("PRAGMA busy_timeout = {}", busy.timeout));
    let state = match begun {
        Ok(()) => LockState::Held,
        Err(Error::DatabaseError(DatabaseErrorKind::Unknown, info))
            if info.message().contains("locked") || info.message().contains("busy") =>
        {
            LockState::Busy
        }
        Err(e) => return Err(e),
    };
    if let Err(e) = restored {
        // The connection would keep a zero busy timeout: end what was begun and fail.
        if state == LockState::Held {
            let _ = AnsiTransactionManager::rollback_transaction(inner);
        }
        return Err(e);
    }
    Ok(NoWait(state))
}

#[cfg(feature = "postgres")]
async fn commit_with<C: diesel_async::AsyncConnection>(c: &mut C) -> Result<(), Error> {
    use diesel_async::TransactionManager;
    C::TransactionManager::commit_transaction(c).await
}

#[cfg(feature = "postgres")]
async fn rollback_with<C: diesel_async::AsyncConnection>(c: &mut C) -> Result<(), Error> {
    use diesel_async::TransactionManager;
    C::TransactionManager::rollback_transaction(c).await
}

/// Where a transaction of [`Conn::transaction_phased`] failed.
#[derive(Debug)]
pub enum TxFailure<E> {
    /// `BEGIN` failed: nothing of the body ran.
    Begin(Error),
    /// The body failed, and the transaction was rolled back (or its connection was lost, which
    /// rolls it back on the server).
    Body(E),
    /// `COMMIT` failed. The server may have committed before the connection was lost: unless
    /// the error says the transaction was rolled back (a serialization failure), its outcome is
    /// unknown.
    Commit(Error),
}

/// What a transaction is for (Prefect's `with_for_update`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxMode {
    /// Reads, or writes that do not read first: `BEGIN DEFERRED` on SQLite.
    #[default]
    Read,
    /// Writes that read first (state transitions, counters): `BEGIN IMMEDIATE` on SQLite.
    Write,
}

/// The escape hatch for custom diesel queries: runs one query body against whichever backend
/// `$conn` holds, type-checked against each backend separately.
///
/// The typed data access of `prefect-db-interface` (`get`, `insert`, `update`, `delete`, the
/// upserts and the read API) covers what a server usually needs without this macro; reach for it
/// when a query is not there.
///
/// What it expands to, stated plainly: `dispatch!(conn, |c| body)` is a `match` on `conn` with
/// one arm per compiled backend, and `body` is pasted into each arm with `c` bound to
/// `&mut AsyncPgConnection` or `&mut SqliteConnection`. So:
/// - it looks like a closure but is not one: `?` and `return` inside `body` leave the
///   *enclosing* function, and `body` may borrow and move from the surrounding scope as any
///   block may;
/// - `conn` (a `&mut Conn<'_>` or `Conn<'_>`) is evaluated once, and `body` runs once, on the
///   one backend the connection belongs to;
/// - `body` is compiled once per backend, so everything in it (column types, bound values,
///   decoded types) must exist for both; values of Prefect's portable types are bound with
///   `prefect_orm::types::Val` there.
///
/// ```
/// use diesel_async::RunQueryDsl;
/// use prefect_db_conn::{Conn, dispatch};
///
/// async fn rows_in_log(conn: &mut Conn<'_>) -> diesel::QueryResult<usize> {
///     dispatch!(conn, |c| diesel::sql_query("SELECT 1 FROM log").execute(c).await)
/// }
/// ```
///
/// The arms follow this crate's features (the macro is defined once per feature set), so a
/// calling crate needs no `postgres`/`sqlite` features of its own.
#[cfg(all(feature = "postgres", feature = "sqlite"))]
#[macro_export]
macro_rules! dispatch {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::conn::Conn::Postgres($c) => {
                let $c: &mut $crate::conn::AsyncPgConnection = &mut **$c;
                $body
            }
            $crate::conn::Conn::Sqlite($c) => {
                let $c: &mut $crate::conn::SqliteConnection = &mut **$c;
                $body
            }
        }
    };
}

/// Runs the body on the PostgreSQL connection (this build has no SQLite).
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
#[macro_export]
macro_rules! dispatch {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::conn::Conn::Postgres($c) => {
                let $c: &mut $crate::conn::AsyncPgConnection = &mut **$c;
                $body
            }
        }
    };
}

/// Runs the body on the SQLite connection (this build has no PostgreSQL).
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
#[macro_export]
macro_rules! dispatch {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::conn::Conn::Sqlite($c) => {
                let $c: &mut $crate::conn::SqliteConnection = &mut **$c;
                $body
            }
        }
    };
}

/// The SQL function every SQLite connection of the layer has: `lower` with Unicode case folding
/// (SQLite's own `lower` folds ASCII only), so case-insensitive matching means the same on both
/// dialects.
pub const SQLITE_UNICODE_LOWER: &str = "prefect_lower";

/// Lower case as PostgreSQL's `lower()` gives it under a UTF-8 locale: each character mapped on
/// its own (no context rules).
pub fn unicode_lower(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

/// Registers the layer's SQL functions ([`SQLITE_UNICODE_LOWER`]) on an SQLite connection; the
/// pools do it for every connection they open.
#[cfg(feature = "sqlite")]
pub fn register_sqlite_functions(conn: &mut diesel::SqliteConnection) -> diesel::QueryResult<()> {
    use diesel::sql_types::{Nullable, Text};
    conn.register_sql_function::<(Nullable<Text>,), Nullable<Text>, _, _, _>(
        SQLITE_UNICODE_LOWER,
        true,
        |(s,): (Option<String>,)| s.map(|s| unicode_lower(&s)),
    )
}
