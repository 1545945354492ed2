//! The interface itself: one instance per configuration, built from settings, never migrating
//! on its own; and how server code gets it (a cheap cloneable handle, scoped overrides for tests).

use crate::error::InterfaceError;
use crate::migrate::{self, DowngradeTarget, MigrationInfo, MigrationStatus, UpgradeReport, UpgradeTarget};
use prefect_db_config::settings::DatabaseSettings;
use prefect_db_config::{DatabaseConfig, DbPool, Dialect, PooledConnection, TxMode, admin};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

/// The database interface (Prefect's `PrefectDBInterface`): the configuration, its pool, and
/// the operations of tiers 1 and 3 on it. Cheap to clone through [`Database`].
#[derive(Debug)]
pub struct PrefectDbInterface {
    config: DatabaseConfig,
    pool: DbPool,
}

impl PrefectDbInterface {
    fn build(config: DatabaseConfig) -> Result<Self, InterfaceError> {
        // Building the pool opens no connection and never migrates.
        let pool = DbPool::build(&config)?;
        Ok(PrefectDbInterface { config, pool })
    }

    /// The configuration.
    pub fn config(&self) -> &DatabaseConfig {
        &self.config
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
    /// wrapped in [`PrefectDbInterface::transaction`] or `conn().transaction(…)`.
    pub async fn connection(&self) -> Result<PooledConnection, InterfaceError> {
        Ok(self.pool.get().await?)
    }

    /// Runs `body` in a transaction on a pooled connection (Prefect's
    /// `session_context(begin_transaction=True, with_for_update=…)`): `TxMode::Write` is
    /// `with_for_update=True` (`BEGIN IMMEDIATE` on SQLite).
    pub async fn transaction<R, E, F>(&self, mode: TxMode, body: F) -> Result<R, E>
    where
        F: for<'c> AsyncFnOnce(&mut prefect_db_config::Conn<'c>) -> Result<R, E>,
        E: From<prefect_db_config::DbError>,
    {
        let mut pooled = self.pool.get().await.map_err(E::from)?;
        pooled.conn().transaction(mode, body).await
    }

    /// Creates the database if needed and migrates it to the latest version (Prefect's
    /// `create_db`, which runs the migrations).
    pub async fn create_db(&self) -> Result<UpgradeReport, InterfaceError> {
        migrate::upgrade(&self.config, UpgradeTarget::Latest).await
    }

    /// Drops every table (Prefect's `drop_db`): data, schema and bookkeeping.
    pub async fn drop_db(&self) -> Result<Vec<String>, InterfaceError> {
        let mut pooled = self.pool.get().await?;
        Ok(admin::drop_all_tables(&mut pooled.conn()).await?)
    }

    /// Migrates up to `target`.
    pub async fn run_migrations_upgrade(&self, target: UpgradeTarget) -> Result<UpgradeReport, InterfaceError> {
        migrate::upgrade(&self.config, target).await
    }

    /// Reverts migrations (by steps, to a named version, or all).
    pub async fn run_migrations_downgrade(&self, target: DowngradeTarget) -> Result<Vec<MigrationInfo>, InterfaceError> {
        migrate::downgrade(&self.config, target).await
    }

    /// Applied and pending migrations.
    pub async fn migration_status(&self) -> Result<MigrationStatus, InterfaceError> {
        migrate::status(&self.config).await
    }

    /// Whether the database answers within the connection timeout (readiness). Never hangs,
    /// never panics.
    pub async fn is_db_connectable(&self) -> bool {
        admin::is_connectable(&self.config).await
    }

    /// What a server calls at start-up: migrates when the `migrate_on_start` setting says so
    /// (`None` when it is off).
    pub async fn migrate_on_start(&self) -> Result<Option<UpgradeReport>, InterfaceError> {
        if self.config.migrate_on_start { Ok(Some(self.create_db().await?)) } else { Ok(None) }
    }
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
pub fn database_for(config: &DatabaseConfig) -> Result<Database, InterfaceError> {
    let mut guard = instances().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(db) = guard.get(config) {
        return Ok(db.clone());
    }
    let db = Database(Arc::new(PrefectDbInterface::build(config.clone())?));
    guard.insert(config.clone(), db.clone());
    Ok(db)
}

tokio::task_local! {
    static OVERRIDE: DatabaseConfig;
}

/// The interface server code uses (Prefect's `provide_database_interface`): the configuration
/// of an enclosing [`with_database_override`] scope if there is one, else the one Prefect's
/// settings describe (environment, `prefect.toml`, profile, defaults).
pub fn provide_database_interface() -> Result<Database, InterfaceError> {
    if let Ok(config) = OVERRIDE.try_with(Clone::clone) {
        return database_for(&config);
    }
    let config = DatabaseSettings::load()?.resolve()?;
    database_for(&config)
}

/// Runs `body` with `config` replacing the settings for every [`provide_database_interface`]
/// call made inside it (Prefect's `temporary_database_config`). The override ends with the
/// future, also when it panics; it does not leak into other tasks.
pub async fn with_database_override<F: Future>(config: DatabaseConfig, body: F) -> F::Output {
    OVERRIDE.scope(config, body).await
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
