//! Connection pools (deadpool + diesel-async) with Prefect's connection settings: pool size and
//! overflow, wait/create/recycle timeouts (an exhausted pool returns a timeout error, it never
//! hangs), statement and connect timeouts, `application_name`, `search_path`, READ COMMITTED,
//! TLS, and the SQLite pragmas on every connection. Building a pool opens no connection and
//! never migrates.

use crate::config::DatabaseConfig;
use crate::conn::Conn;
#[cfg(not(all(feature = "postgres", feature = "sqlite")))]
use crate::error::ConfigError;
use crate::error::DbError;
use crate::url::{DatabaseUrl, Dialect};
use deadpool::managed::{Hook, HookError, Metrics, Object, Pool, PoolError, QueueMode, Timeouts};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod};
use futures_util::FutureExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

#[cfg(feature = "postgres")]
use crate::conn::AsyncPgConnection;
#[cfg(feature = "sqlite")]
use crate::conn::SqliteConnection;

#[cfg(feature = "postgres")]
type PgManager = AsyncDieselConnectionManager<AsyncPgConnection>;
#[cfg(feature = "sqlite")]
type SqliteManager = AsyncDieselConnectionManager<SqliteConnection>;

/// A pool of connections to one database.
#[derive(Clone)]
pub struct DbPool {
    inner: PoolInner,
    config: Arc<DatabaseConfig>,
    /// How PostgreSQL transactions begin when not with diesel's `BEGIN`.
    #[cfg(feature = "postgres")]
    pg_begin: Option<Arc<str>>,
}

#[derive(Clone)]
enum PoolInner {
    #[cfg(feature = "postgres")]
    Postgres(Pool<PgManager>),
    #[cfg(feature = "sqlite")]
    Sqlite(Pool<SqliteManager>),
}

impl std::fmt::Debug for DbPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbPool").field("url", &self.config.url).field("status", &self.status()).finish()
    }
}

/// A connection checked out of a [`DbPool`]; it goes back to the pool when dropped.
pub enum PooledConnection {
    /// A PostgreSQL connection, and the SQL its outermost transactions begin with when it is
    /// not diesel's `BEGIN` (behind a transaction-mode pooler: see
    /// [`DatabaseConfig::transaction_pooling`]).
    #[cfg(feature = "postgres")]
    Postgres(Object<PgManager>, Option<Arc<str>>),
    /// An SQLite connection.
    #[cfg(feature = "sqlite")]
    Sqlite(Object<SqliteManager>),
}

impl PooledConnection {
    /// Takes the connection out of its pool and closes it, so that it is never handed out
    /// again: for a connection that failed in a way that may have left it unusable (lost, or
    /// mid-way through a protocol exchange).
    pub fn discard(self) {
        match self {
            #[cfg(feature = "postgres")]
            PooledConnection::Postgres(o, _) => drop(Object::take(o)),
            #[cfg(feature = "sqlite")]
            PooledConnection::Sqlite(o) => drop(Object::take(o)),
        }
    }

    /// The connection as the handle queries run on.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            #[cfg(feature = "postgres")]
            PooledConnection::Postgres(o, begin) => Conn::Postgres(crate::conn::PgConn::with_begin(&mut **o, begin.as_deref())),
            #[cfg(feature = "sqlite")]
            PooledConnection::Sqlite(o) => Conn::Sqlite(&mut **o),
        }
    }
}

/// What a pool reports about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    /// The most connections it may hold.
    pub max_size: usize,
    /// Connections it holds now.
    pub size: usize,
    /// Connections idle in the pool.
    pub available: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

impl DbPool {
    /// Builds a pool for `config`. No connection is opened until the first [`DbPool::get`].
    pub fn build(config: &DatabaseConfig) -> Result<DbPool, DbError> {
        let config = Arc::new(config.clone());
        let inner = match &config.url {
            #[cfg(feature = "postgres")]
            DatabaseUrl::Postgres(_) => PoolInner::Postgres(build_pg(&config)?),
            #[cfg(not(feature = "postgres"))]
            DatabaseUrl::Postgres(_) => {
                return Err(ConfigError::FeatureMissing { url: config.url.masked(), feature: "postgres" }.into());
            }
            #[cfg(feature = "sqlite")]
            DatabaseUrl::Sqlite(_) => PoolInner::Sqlite(build_sqlite(&config)?),
            #[cfg(not(feature = "sqlite"))]
            DatabaseUrl::Sqlite(_) => {
                return Err(ConfigError::FeatureMissing { url: config.url.masked(), feature: "sqlite" }.into());
            }
        };
        #[cfg(feature = "postgres")]
        let pg_begin = crate::pg::transaction_begin_sql(&config).map(Arc::from);
        Ok(DbPool {
            inner,
            config,
            #[cfg(feature = "postgres")]
            pg_begin,
        })
    }

    /// The configuration this pool was built from.
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// The dialect of the database.
    pub fn dialect(&self) -> Dialect {
        self.config.dialect()
    }

    /// Checks out a connection, waiting at most the pool timeout.
    pub async fn get(&self) -> Result<PooledConnection, DbError> {
        let started = Instant::now();
        let map = |e: PoolError<diesel_async::pooled_connection::PoolError>| self.map_pool_error(e, started);
        let got = match &self.inner {
            #[cfg(feature = "postgres")]
            PoolInner::Postgres(p) => p.get().await.map(|o| PooledConnection::Postgres(o, self.pg_begin.clone())).map_err(map),
            #[cfg(feature = "sqlite")]
            PoolInner::Sqlite(p) => p.get().await.map(PooledConnection::Sqlite).map_err(map),
        };
        match &got {
            Ok(_) if self.config.metrics => crate::observe::record_checkout(&self.config, self.status(), started.elapsed()),
            Ok(_) => {}
            Err(DbError::PoolTimeout { .. } | DbError::Connect { .. }) => crate::observe::record_checkout_timeout(&self.config),
            Err(_) => {}
        }
        got
    }

    /// The pool's current state.
    pub fn status(&self) -> PoolStatus {
        let s = match &self.inner {
            #[cfg(feature = "postgres")]
            PoolInner::Postgres(p) => p.status(),
            #[cfg(feature = "sqlite")]
            PoolInner::Sqlite(p) => p.status(),
        };
        PoolStatus { max_size: s.max_size, size: s.size, available: s.available, waiting: s.waiting }
    }

    /// Closes the pool: waiting and future callers get an error; connections are dropped.
    pub fn close(&self) {
        match &self.inner {
            #[cfg(feature = "postgres")]
            PoolInner::Postgres(p) => p.close(),
            #[cfg(feature = "sqlite")]
            PoolInner::Sqlite(p) => p.close(),
        }
    }

    fn map_pool_error(&self, e: PoolError<diesel_async::pooled_connection::PoolError>, started: Instant) -> DbError {
        let url = self.config.url.masked();
        match e {
            PoolError::Timeout(deadpool::managed::TimeoutType::Wait) => DbError::PoolTimeout {
                url,
                max_size: self.config.max_connections(),
                waited_ms: started.elapsed().as_millis(),
            },
            PoolError::Timeout(kind) => DbError::Connect {
                url,
                reason: format!("{kind:?} timed out after {} ms (connection timeout {:?})", started.elapsed().as_millis(), self.config.connection_timeout),
            },
            PoolError::Backend(b) => DbError::Connect { url, reason: b.to_string() },
            PoolError::Closed => DbError::PoolClosed { url },
            other => DbError::Connect { url, reason: other.to_string() },
        }
    }
}

fn timeouts(config: &DatabaseConfig) -> Timeouts {
    Timeouts {
        wait: Some(config.pool_timeout),
        create: Some(config.connection_timeout),
        recycle: Some(config.connection_timeout),
    }
}

/// Connections older than `pool_recycle` are replaced, like SQLAlchemy's `pool_recycle`.
fn max_age_hook<M: deadpool::managed::Manager>(max_age: Option<Duration>) -> Option<Hook<M>> {
    let max_age = max_age?;
    Some(Hook::sync_fn(move |_obj, metrics: &Metrics| {
        if metrics.age() > max_age {
            Err(HookError::message(format!("connection older than pool_recycle ({max_age:?})")))
        } else {
            Ok(())
        }
    }))
}

fn build_error(config: &DatabaseConfig, e: impl std::fmt::Display) -> DbError {
    DbError::Connect { url: config.url.masked(), reason: format!("cannot build the pool: {e}") }
}

#[cfg(feature = "postgres")]
fn build_pg(config: &Arc<DatabaseConfig>) -> Result<Pool<PgManager>, DbError> {
    let mut mc = ManagerConfig::<AsyncPgConnection>::default();
    // Prefect's `pool_pre_ping=True` is the pre-recycle hook below: broken connections are
    // dropped here, idle ones pinged there.
    mc.recycling_method = RecyclingMethod::Fast;
    let setup_config = Arc::clone(config);
    mc.custom_setup = Box::new(move |_url| {
        let cfg = Arc::clone(&setup_config);
        async move { crate::pg::connect(&cfg).await }.boxed()
    });
    let manager = PgManager::new_with_config(config.url.masked(), mc);
    let mut builder = Pool::builder(manager)
        .max_size(config.max_connections())
        .queue_mode(QueueMode::Lifo)
        .timeouts(timeouts(config))
        .runtime(deadpool::Runtime::Tokio1);
    if let Some(hook) = max_age_hook(config.pool_recycle) {
        builder = builder.pre_recycle(hook);
    }
    builder = builder.pre_recycle(pre_ping_hook());
    builder.build().map_err(|e| build_error(config, e))
}

/// A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
#[cfg(feature = "postgres")]
pub const PRE_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Prefect's `pool_pre_ping=True`, for connections that may have gone stale: a connection
/// checked out less than [`PRE_PING_AFTER_IDLE`] ago was talking to the server moments before
/// and is handed out without a round trip (a `SELECT 1` per checkout doubled the cost of small
/// transactions); an older one answers `SELECT 1` first, and one that does not is dropped and
/// replaced, so a server restart or an idle timeout never reaches the caller.
#[cfg(feature = "postgres")]
fn pre_ping_hook() -> Hook<PgManager> {
    Hook::async_fn(|conn: &mut AsyncPgConnection, metrics: &Metrics| {
        let idle = metrics.last_used();
        Box::pin(async move {
            if idle < PRE_PING_AFTER_IDLE {
                return Ok(());
            }
            // The simple protocol: no statement prepared, so nothing outlives this round trip
            // (behind a transaction-mode pooler too).
            diesel_async::SimpleAsyncConnection::batch_execute(conn, "SELECT 1")
                .await
                .map_err(|e| HookError::message(format!("pre-ping after {idle:?} idle failed: {e}")))
        })
    })
}

#[cfg(feature = "sqlite")]
fn build_sqlite(config: &Arc<DatabaseConfig>) -> Result<Pool<SqliteManager>, DbError> {
    let mut mc = ManagerConfig::<SqliteConnection>::default();
    mc.recycling_method = RecyclingMethod::Fast;
    let setup_config = Arc::clone(config);
    mc.custom_setup = Box::new(move |_url| {
        let cfg = Arc::clone(&setup_config);
        async move { crate::sqlite::connect(&cfg).await }.boxed()
    });
    let manager = SqliteManager::new_with_config(config.url.masked(), mc);
    let mut builder = Pool::builder(manager)
        .max_size(config.max_connections())
        .queue_mode(QueueMode::Lifo)
        .timeouts(timeouts(config))
        .runtime(deadpool::Runtime::Tokio1);
    if !config.url.is_in_memory() {
        if let Some(hook) = max_age_hook(config.pool_recycle) {
            builder = builder.pre_recycle(hook);
        }
    }
    builder.build().map_err(|e| build_error(config, e))
}

/// The key pools are cached under: Prefect's engine cache key (URL, echo, timeout).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    url: DatabaseUrl,
    echo: bool,
    statement_timeout: Option<Duration>,
}

/// A process-wide cache of pools: asking twice for the same URL, echo and timeout gives the same
/// pool (Prefect's `ENGINES`). Other settings of the first request win, as in Prefect.
pub fn cached_pool(config: &DatabaseConfig) -> Result<DbPool, DbError> {
    static POOLS: OnceLock<Mutex<HashMap<PoolKey, DbPool>>> = OnceLock::new();
    let key = PoolKey { url: config.url.clone(), echo: config.echo, statement_timeout: config.statement_timeout };
    let pools = POOLS.get_or_init(|| Mutex::new(HashMap::new()));
    let mut guard = pools.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(pool) = guard.get(&key) {
        return Ok(pool.clone());
    }
    let pool = DbPool::build(config)?;
    guard.insert(key, pool.clone());
    Ok(pool)
}

/// Whether two pools are the same pool (share their connections).
pub fn same_pool(a: &DbPool, b: &DbPool) -> bool {
    Arc::ptr_eq(&a.config, &b.config)
}
