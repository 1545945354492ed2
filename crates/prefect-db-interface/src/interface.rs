//! The interface itself: one instance per configuration, built from settings, never migrating
//! on its own; and how server code gets it (a cheap cloneable handle, scoped overrides of the
//! configuration, the query components and the ORM configuration for tests).

use crate::access::DataAccess;
use crate::error::Error;
use crate::migrate::{self, DowngradeTarget, MigrationInfo, MigrationStatus, UpgradeReport, UpgradeTarget};
use prefect_db_config::settings::DatabaseSettings;
use prefect_db_config::{DatabaseConfig, DbPool, Dialect, PooledConnection, TxFailure, TxMode, admin, observe};
use prefect_orm::access::{NewRecord, Record, RecordChangeset};
use prefect_orm::orm_config::{self, UpsertTarget};
use prefect_query_components::QueryComponents;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

/// Prefect's ORM configuration (`BaseORMConfiguration`) as a value: the upserts and the
/// migrations directory of a dialect. The defaults come from [`prefect_orm::orm_config`]; tests
/// may swap in another value with [`DatabaseOverride::orm_config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrmConfig {
    /// The upsert conflict targets, in Prefect's declaration order.
    pub upsert_targets: &'static [UpsertTarget],
    /// The dialect's migrations directory, relative to the workspace root.
    pub migrations_dir: &'static str,
}

impl OrmConfig {
    /// The configuration of a dialect (Prefect's `AsyncPostgresORMConfiguration` /
    /// `AioSqliteORMConfiguration`).
    pub fn for_dialect(dialect: Dialect) -> Self {
        OrmConfig {
            upsert_targets: orm_config::UPSERT_TARGETS,
            migrations_dir: match dialect {
                Dialect::Postgres => orm_config::POSTGRESQL_MIGRATIONS_DIR,
                Dialect::Sqlite => orm_config::SQLITE_MIGRATIONS_DIR,
            },
        }
    }
}

/// The database interface (Prefect's `PrefectDBInterface`): the configuration, its pool, the
/// query components (tier 2) and the ORM configuration (tier 3), and the operations on them.
/// Cheap to clone through [`Database`].
#[derive(Debug)]
pub struct PrefectDbInterface {
    config: DatabaseConfig,
    pool: DbPool,
    /// The read replica's pool, when one is configured.
    replica: Option<DbPool>,
    queries: QueryComponents,
    orm: OrmConfig,
}

impl PrefectDbInterface {
    fn build(config: DatabaseConfig) -> Result<Self, Error> {
        // Building the pools opens no connection and never migrates.
        let pool = DbPool::build(&config)?;
        let replica = config.replica().map(|r| DbPool::build(&r)).transpose()?;
        let orm = OrmConfig::for_dialect(config.dialect());
        Ok(PrefectDbInterface { config, pool, replica, queries: QueryComponents::new(), orm })
    }

    /// Runs `body` in a read-only transaction: on the read replica when one is configured
    /// (`read_replica_connection_url`), else on the database itself. For reads that may lag
    /// behind the latest commits by the replica's replay delay (lists, counts, history, the
    /// dashboard); a read that must see a write just made belongs in that write's transaction
    /// ([`PrefectDbInterface::transaction`]), which always runs on the primary. On PostgreSQL
    /// the transaction is `READ ONLY` on both, so a write in `body` fails the same way with or
    /// without a replica.
    ///
    /// ```no_run
    /// use prefect_db_interface::prelude::*;
    ///
    /// async fn count_runs(db: &Database) -> Result<i64, Error> {
    ///     let filters: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &serde_json::json!({}))?;
    ///     db.read_only(async |tx| Ok(read::count_flow_runs(tx, &filters.filters).await?)).await
    /// }
    /// ```
    pub async fn read_only<R, F>(&self, body: F) -> Result<R, Error>
    where
        F: for<'c> AsyncFnOnce(&mut prefect_db_config::Conn<'c>) -> Result<R, Error>,
    {
        let pool = self.replica.as_ref().unwrap_or(&self.pool);
        let read_only = async |c: &mut prefect_db_config::Conn<'_>| {
            if c.dialect() == Dialect::Postgres {
                c.batch_execute("SET TRANSACTION READ ONLY").await?;
            }
            body(c).await
        };
        self.observed("read_only", self.attempt(pool, TxMode::Read, read_only)).await.map_err(|(e, _)| e)
    }

    /// Runs `body` in a transaction like [`PrefectDbInterface::transaction`], and runs it again
    /// (on a fresh transaction, after a jittered backoff) when it fails for a transient reason
    /// ([`Error::is_retryable`]: the database restarting or unreachable, a lost connection, a
    /// lock held past the busy timeout, a deadlock or serialization failure, a statement
    /// timeout), within the `server.database.retry.*` settings (attempts, backoff, time
    /// budget). What is still transient when they run out is returned ([`ErrorKind::Unavailable`]
    /// or [`ErrorKind::Timeout`]: a server answers 503).
    ///
    /// Each attempt runs a clone of `body` (a closure is `Clone` when what it captures is):
    /// capture owned values with `async move`. `body` must be safe to run again: everything it
    /// wrote in a failed attempt was rolled back, but effects outside the database (a message
    /// sent) are not. A transaction whose
    /// `COMMIT` was sent but not answered is never run again, since it may have committed: it
    /// returns [`Error::Unavailable`] saying its outcome is unknown. A connection that failed
    /// is closed, never handed out again.
    ///
    /// ```no_run
    /// use prefect_db_interface::prelude::*;
    ///
    /// async fn create(db: &Database, flow_id: Uuid) -> Result<FlowRun, Error> {
    ///     let name = String::from("nightly");
    ///     db.transaction_retrying(TxMode::Write, async move |tx| {
    ///         // each attempt builds its own row (and draws its own id)
    ///         tx.insert(NewFlowRun::new(name, flow_id)).await
    ///     })
    ///     .await
    /// }
    /// ```
    ///
    /// [`ErrorKind::Unavailable`]: crate::ErrorKind::Unavailable
    /// [`ErrorKind::Timeout`]: crate::ErrorKind::Timeout
    pub async fn transaction_retrying<R, F>(&self, mode: TxMode, body: F) -> Result<R, Error>
    where
        F: for<'c> AsyncFnOnce(&mut prefect_db_config::Conn<'c>) -> Result<R, Error> + Clone,
    {
        let policy = self.config.retry;
        let work = async {
            let started = std::time::Instant::now();
            let mut attempt = 1u32;
            loop {
                let error = match Box::pin(self.attempt(&self.pool, mode, body.clone())).await {
                    Ok(value) => return Ok(value),
                    Err((error, Retry::Never)) => return Err(error),
                    Err((error, Retry::Safe)) => error,
                };
                let sleep = policy.backoff(attempt, fastrand::f64());
                if attempt >= policy.max_attempts || started.elapsed() + sleep > policy.budget {
                    return Err(error);
                }
                tracing::debug!(attempt, sleep_ms = sleep.as_millis() as u64, error = %error, "transient failure; the transaction runs again");
                if self.config.metrics {
                    metrics::counter!(RETRIES, "db.system.name" => observe::system_name(self.dialect()), "error.type" => error.class())
                        .increment(1);
                }
                tokio::time::sleep(sleep).await;
                attempt += 1;
            }
        };
        self.observed("transaction", async { work.await.map_err(|e| (e, Retry::Never)) }).await.map_err(|(e, _)| e)
    }

    /// One transaction on a connection of `pool`: checked out (a checkout that fails
    /// transiently is retried within the policy, nothing having run), begun, `body`, committed.
    /// A failure says whether running the body again is safe.
    async fn attempt<R, F>(&self, pool: &DbPool, mode: TxMode, body: F) -> Result<R, (Error, Retry)>
    where
        F: for<'c> AsyncFnOnce(&mut prefect_db_config::Conn<'c>) -> Result<R, Error>,
    {
        let mut pooled = self.checkout(pool).await.map_err(|e| (e, Retry::Safe))?;
        let failure = match pooled.conn().transaction_phased(mode, body).await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        let (error, committed_maybe) = match failure {
            TxFailure::Begin(e) => (Error::from(e), false),
            TxFailure::Body(e) => (e, false),
            TxFailure::Commit(e) => (Error::from(e), true),
        };
        if error.may_have_broken_connection() {
            pooled.discard();
        }
        if !error.is_retryable() {
            return Err((error, Retry::Never));
        }
        if committed_maybe && !error.rolled_back() {
            return Err((
                Error::Unavailable {
                    message: format!("the connection failed while committing, so whether the transaction committed is unknown: {error}"),
                    source: Some(Box::new(error)),
                },
                Retry::Never,
            ));
        }
        Err((error, Retry::Safe))
    }

    /// A connection of `pool`; while the database is unreachable (restarting, refusing
    /// connections) the checkout is tried again within the retry policy.
    async fn checkout(&self, pool: &DbPool) -> Result<PooledConnection, Error> {
        let policy = self.config.retry;
        let started = std::time::Instant::now();
        let mut attempt = 1u32;
        loop {
            let error = match pool.get().await {
                Ok(pooled) => return Ok(pooled),
                // A server refusing or not answering connections (restarting, failing over)
                // may take them again; a refused role or password, or a missing database, not.
                Err(e @ prefect_db_config::DbError::Connect { .. }) if crate::error::is_transient_connect(&e) => Error::from(e),
                Err(e) => return Err(Error::from(e)),
            };
            let sleep = policy.backoff(attempt, fastrand::f64());
            if attempt >= policy.max_attempts || started.elapsed() + sleep > policy.budget {
                return Err(error);
            }
            if self.config.metrics {
                metrics::counter!(RETRIES, "db.system.name" => observe::system_name(self.dialect()), "error.type" => "connect").increment(1);
            }
            tokio::time::sleep(sleep).await;
            attempt += 1;
        }
    }

    /// Runs an operation of the interface inside its `db.transaction` span, counting its error
    /// by class when metrics are on.
    async fn observed<R>(&self, operation: &'static str, work: impl Future<Output = Result<R, (Error, Retry)>>) -> Result<R, (Error, Retry)> {
        use tracing::Instrument as _;
        let span = tracing::debug_span!(
            target: observe::STATEMENT_TARGET,
            "db.transaction",
            db.system.name = observe::system_name(self.dialect()),
            db.operation.name = operation,
            error.type = tracing::field::Empty,
        );
        // Boxed: the operation's future (checkout, transaction, body) stays off the caller's
        // stack, which deep callers (and debug builds) would otherwise overflow.
        let result = Box::pin(work).instrument(span.clone()).await;
        if let Err((e, _)) = &result {
            span.record("error.type", e.class());
            if self.config.metrics {
                metrics::counter!(ERRORS, "db.system.name" => observe::system_name(self.dialect()), "error.type" => e.class()).increment(1);
            }
        }
        result
    }

    /// Whether the read replica answers within the connection timeout (`None`: no replica is
    /// configured). Never hangs, never panics.
    pub async fn is_replica_connectable(&self) -> Option<bool> {
        let replica = self.config.replica()?;
        Some(admin::is_connectable(&replica).await)
    }

    /// The configuration.
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
    }

    /// The query components (Prefect's `db.queries`).
    pub fn queries(&self) -> &QueryComponents {
        &self.queries
    }

    /// The ORM configuration (Prefect's `db.orm`).
    pub fn orm(&self) -> &OrmConfig {
        &self.orm
    }

    /// The dialect, from the URL.
    pub fn dialect(&self) -> Dialect {
        self.config.dialect()
    }

    /// The connection pool.
    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Checks out a connection (Prefect's `session()`): statements run in autocommit unless
    /// wrapped in [`PrefectDbInterface::transaction`] or `conn().transaction(…)`. Waits at most
    /// the pool timeout; an exhausted pool or an unreachable database is
    /// [`Error::Unavailable`].
    pub async fn connection(&self) -> Result<PooledConnection, Error> {
        Ok(self.pool.get().await?)
    }

    /// Runs `body` in a transaction on a pooled connection (Prefect's
    /// `session_context(begin_transaction=True, with_for_update=…)`): committed when `body`
    /// returns `Ok`, rolled back when it returns `Err`. `TxMode::Write` is
    /// `with_for_update=True` (`BEGIN IMMEDIATE` on SQLite, so a read-then-write never fails
    /// with "database is locked"); `TxMode::Read` is a plain transaction.
    ///
    /// Inside, `tx` has the data access of [`DataAccess`] and is what the query components
    /// take. For a body with an error type of its own, check out a connection and use
    /// `connection().await?.conn().transaction(mode, body)`, which takes any error type that
    /// a database error converts into.
    ///
    /// ```no_run
    /// use prefect_db_interface::prelude::*;
    ///
    /// async fn create(db: &Database, flow_name: &str) -> Result<FlowRun, Error> {
    ///     db.transaction(TxMode::Write, async |tx| {
    ///         let flow = tx.create_flow(NewFlow::new(flow_name)).await?.row;
    ///         tx.insert(NewFlowRun::new("first-run", flow.id)).await
    ///     })
    ///     .await
    /// }
    /// ```
    pub async fn transaction<R, F>(&self, mode: TxMode, body: F) -> Result<R, Error>
    where
        F: for<'c> AsyncFnOnce(&mut prefect_db_config::Conn<'c>) -> Result<R, Error>,
    {
        self.observed("transaction", self.attempt(&self.pool, mode, body)).await.map_err(|(e, _)| e)
    }

    /// The row with this id, read on a connection of its own; [`Error::NotFound`] when there
    /// is none.
    ///
    /// ```no_run
    /// use prefect_db_interface::prelude::*;
    ///
    /// async fn show(db: &Database, id: Uuid) -> Result<String, Error> {
    ///     let run: FlowRun = db.get(id).await?;
    ///     Ok(run.name)
    /// }
    /// ```
    pub async fn get<R: Record>(&self, id: uuid::Uuid) -> Result<R, Error> {
        self.one_shot(async |c| c.get(id).await).await
    }

    /// The row with this id, if any, read on a connection of its own.
    pub async fn find<R: Record>(&self, id: uuid::Uuid) -> Result<Option<R>, Error> {
        self.one_shot(async |c| c.find(id).await).await
    }

    /// Inserts one row (one statement, committed on its own) and returns it as stored.
    pub async fn insert<N: NewRecord>(&self, row: N) -> Result<N::Record, Error> {
        self.one_shot(async |c| c.insert(row).await).await
    }

    /// Applies a changeset to the row with this id (one statement, committed on its own) and
    /// returns the updated row; [`Error::NotFound`] when there is none.
    pub async fn update<C: RecordChangeset>(&self, id: uuid::Uuid, changes: C) -> Result<C::Record, Error> {
        self.one_shot(async |c| c.update(id, changes).await).await
    }

    /// Deletes the row with this id (one statement, committed on its own); [`Error::NotFound`]
    /// when there is none.
    pub async fn delete<R: Record>(&self, id: uuid::Uuid) -> Result<(), Error> {
        self.one_shot(async |c| c.delete::<R>(id).await).await
    }

    /// One statement on a connection of its own: committed on its own, or, behind a
    /// transaction-mode pooler, in a transaction of its own (where the pooler lends one server
    /// connection for all of the statement's round trips).
    async fn one_shot<R, F>(&self, body: F) -> Result<R, Error>
    where
        F: for<'c> AsyncFnOnce(&mut prefect_db_config::Conn<'c>) -> Result<R, Error>,
    {
        let work = async {
            if self.config.transaction_pooling() {
                return self.attempt(&self.pool, TxMode::Read, body).await;
            }
            let mut pooled = self.checkout(&self.pool).await.map_err(|e| (e, Retry::Never))?;
            let result = body(&mut pooled.conn()).await;
            if let Err(e) = &result
                && e.may_have_broken_connection()
            {
                pooled.discard();
            }
            result.map_err(|e| (e, Retry::Never))
        };
        self.observed("statement", work).await.map_err(|(e, _)| e)
    }

    /// Creates the database if needed and migrates it to the latest version (Prefect's
    /// `create_db`, which runs the migrations).
    pub async fn create_db(&self) -> Result<UpgradeReport, Error> {
        Ok(migrate::upgrade(&self.config, UpgradeTarget::Latest).await?)
    }

    /// Drops every table (Prefect's `drop_db`): data, schema and bookkeeping.
    pub async fn drop_db(&self) -> Result<Vec<String>, Error> {
        let mut pooled = self.pool.get().await?;
        if self.config.transaction_pooling() {
            return pooled.conn().transaction(TxMode::Write, async |c| Ok(admin::drop_all_tables(c).await?)).await;
        }
        Ok(admin::drop_all_tables(&mut pooled.conn()).await?)
    }

    /// Migrates up to `target`.
    pub async fn run_migrations_upgrade(&self, target: UpgradeTarget) -> Result<UpgradeReport, Error> {
        Ok(migrate::upgrade(&self.config, target).await?)
    }

    /// Reverts migrations (by steps, to a named version, or all).
    pub async fn run_migrations_downgrade(&self, target: DowngradeTarget) -> Result<Vec<MigrationInfo>, Error> {
        Ok(migrate::downgrade(&self.config, target).await?)
    }

    /// Applied and pending migrations.
    pub async fn migration_status(&self) -> Result<MigrationStatus, Error> {
        Ok(migrate::status(&self.config).await?)
    }

    /// Whether the database answers within the connection timeout (readiness). Never hangs,
    /// never panics.
    pub async fn is_db_connectable(&self) -> bool {
        admin::is_connectable(&self.config).await
    }

    /// What a server calls at start-up: migrates when the `migrate_on_start` setting says so
    /// (`None` when it is off).
    pub async fn migrate_on_start(&self) -> Result<Option<UpgradeReport>, Error> {
        if self.config.migrate_on_start { Ok(Some(self.create_db().await?)) } else { Ok(None) }
    }
}

/// Counter: transient failures after which an operation ran again (`error.type`).
pub const RETRIES: &str = "prefect_db.retries";
/// Counter: operations of the interface that failed, by class (`error.type`: see
/// [`Error::class`]).
pub const ERRORS: &str = "prefect_db.errors";

/// Whether a failed attempt may run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Nothing of it committed and the failure is transient.
    Safe,
    /// Not transient, or it may have committed.
    Never,
}

/// A cheap, cloneable handle to the interface that server code takes as an argument or keeps in
/// its application state.
#[derive(Debug, Clone)]
pub struct Database(Arc<PrefectDbInterface>);

impl std::ops::Deref for Database {
    type Target = PrefectDbInterface;
    fn deref(&self) -> &PrefectDbInterface {
        &self.0
    }
}

impl Database {
    /// Whether two handles share one interface instance.
    pub fn same_instance(a: &Database, b: &Database) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

fn instances() -> &'static Mutex<HashMap<DatabaseConfig, Database>> {
    static INSTANCES: OnceLock<Mutex<HashMap<DatabaseConfig, Database>>> = OnceLock::new();
    INSTANCES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The interface for `config`: one instance per unique configuration (asking twice with the same
/// configuration returns the same instance; safe to call from many tasks at once).
pub fn database_for(config: &DatabaseConfig) -> Result<Database, Error> {
    let mut guard = instances().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(db) = guard.get(config) {
        return Ok(db.clone());
    }
    let db = Database(Arc::new(PrefectDbInterface::build(config.clone())?));
    guard.insert(config.clone(), db.clone());
    Ok(db)
}

tokio::task_local! {
    static OVERRIDE: DatabaseOverride;
}

/// A scoped replacement of the parts of the interface, for tests (Prefect's
/// `temporary_database_config`, `temporary_query_components` and `temporary_orm_config`, or all
/// three at once as `temporary_database_interface`). Every [`provide_database_interface`] call
/// made inside [`DatabaseOverride::scope`] sees the parts set here; parts left unset come from an
/// enclosing scope, else from the settings (configuration) and the dialect's defaults (query
/// components, ORM configuration). The override ends with the future, also when it panics, and
/// does not leak into other tasks (it is task-local).
///
/// ```no_run
/// # async fn demo(config: prefect_db_interface::config::DatabaseConfig) -> Result<(), prefect_db_interface::Error> {
/// use prefect_db_interface::{DatabaseOverride, provide_database_interface};
/// use prefect_db_interface::queries::QueryComponents;
/// let queries = QueryComponents::with_configuration_cache(1, std::time::Duration::from_secs(1));
/// DatabaseOverride::new()
///     .config(config)
///     .query_components(queries)
///     .scope(async {
///         let db = provide_database_interface()?;
///         // … db.queries() is the value given above …
///         Ok::<_, prefect_db_interface::Error>(())
///     })
///     .await
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct DatabaseOverride {
    config: Option<DatabaseConfig>,
    queries: Option<QueryComponents>,
    orm: Option<OrmConfig>,
}

impl DatabaseOverride {
    /// An override that replaces nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the configuration (`temporary_database_config`).
    pub fn config(mut self, config: DatabaseConfig) -> Self {
        self.config = Some(config);
        self
    }

    /// Replaces the query components (`temporary_query_components`).
    pub fn query_components(mut self, queries: QueryComponents) -> Self {
        self.queries = Some(queries);
        self
    }

    /// Replaces the ORM configuration (`temporary_orm_config`).
    pub fn orm_config(mut self, orm: OrmConfig) -> Self {
        self.orm = Some(orm);
        self
    }

    /// The override in effect in this task, if any.
    pub fn current() -> Option<DatabaseOverride> {
        OVERRIDE.try_with(Clone::clone).ok()
    }

    /// Runs `body` with this override (merged over the enclosing one, if any) in effect for every
    /// [`provide_database_interface`] call inside it. Restored when `body` ends, returns or
    /// panics.
    pub async fn scope<F: Future>(self, body: F) -> F::Output {
        let merged = match Self::current() {
            Some(outer) => DatabaseOverride {
                config: self.config.or(outer.config),
                queries: self.queries.or(outer.queries),
                orm: self.orm.or(outer.orm),
            },
            None => self,
        };
        OVERRIDE.scope(merged, body).await
    }
}

/// The interface server code uses (Prefect's `provide_database_interface`): the configuration
/// of an enclosing [`DatabaseOverride`] scope if there is one, else the one Prefect's settings
/// describe (environment, `prefect.toml`, profile, defaults); one instance per configuration.
/// When the scope also replaces the query components or the ORM configuration, the handle is a
/// separate interface that shares the instance's configuration and pool but carries those parts.
pub fn provide_database_interface() -> Result<Database, Error> {
    let over = DatabaseOverride::current().unwrap_or_default();
    let config = match over.config {
        Some(config) => config,
        None => DatabaseSettings::load()?.resolve()?,
    };
    let db = database_for(&config)?;
    if over.queries.is_none() && over.orm.is_none() {
        return Ok(db);
    }
    Ok(Database(Arc::new(PrefectDbInterface {
        config: db.config.clone(),
        pool: db.pool.clone(),
        replica: db.replica.clone(),
        queries: over.queries.unwrap_or_else(|| db.queries.clone()),
        orm: over.orm.unwrap_or(db.orm),
    })))
}

/// Runs `body` with `config` replacing the settings for every [`provide_database_interface`]
/// call made inside it (Prefect's `temporary_database_config`; shorthand for
/// `DatabaseOverride::new().config(config).scope(body)`). The override ends with the future,
/// also when it panics; it does not leak into other tasks.
pub async fn with_database_override<F: Future>(config: DatabaseConfig, body: F) -> F::Output {
    DatabaseOverride::new().config(config).scope(body).await
}

/// With the `axum` feature, handlers take the handle as an extractor (`db: Database`) from any
/// application state it can be had from (`Database: FromRef<State>`).
#[cfg(feature = "axum")]
impl<S> axum::extract::FromRequestParts<S> for Database
where
    S: Send + Sync,
    Database: axum::extract::FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        Ok(<Database as axum::extract::FromRef<S>>::from_ref(state))
    }
}
