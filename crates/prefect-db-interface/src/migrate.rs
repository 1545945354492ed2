//! Migrating a configured database: the functions behind `cargo xtask migrate` and the command
//! line. Each call builds its own single-connection pool (never the application's), makes sure
//! the database exists (the PostgreSQL database, or the SQLite file and its folder), and runs
//! the ORM crate's migration runner with adoption of databases real Prefect created.

use crate::error::InterfaceError;
use prefect_db_config::{DatabaseConfig, DbPool, PooledConnection, admin};
pub use prefect_orm::migrations::{DowngradeTarget, MigrationInfo, MigrationStatus, UpgradeReport, UpgradeTarget};

async fn migration_connection(config: &DatabaseConfig) -> Result<PooledConnection, InterfaceError> {
    admin::create_database(config).await?;
    let mut single = config.clone();
    single.pool_size = 1;
    single.max_overflow = 0;
    let pool = DbPool::build(&single)?;
    Ok(pool.get().await?)
}

/// Applies pending migrations up to `target` (adopting a Prefect 3.9.1 database first).
pub async fn upgrade(config: &DatabaseConfig, target: UpgradeTarget) -> Result<UpgradeReport, InterfaceError> {
    let conn = migration_connection(config).await?;
    let report = match conn {
        #[cfg(feature = "postgres")]
        PooledConnection::Postgres(obj) => {
            let mut migrator = prefect_orm::migrations::PgMigrator::new(obj).with_statement_timeout(config.migration_timeout);
            migrator.upgrade(target).await?
        }
        #[cfg(feature = "sqlite")]
        PooledConnection::Sqlite(mut obj) => {
            obj.spawn_blocking(move |c| Ok(prefect_orm::migrations::upgrade_sqlite(c, &target))).await??
        }
    };
    tracing::info!(database = %config.url, adopted = report.adopted.len(), applied = report.applied.len(), "migrated");
    Ok(report)
}

/// Reverts migrations (`Steps(n)`, down to a named version, or everything).
pub async fn downgrade(config: &DatabaseConfig, target: DowngradeTarget) -> Result<Vec<MigrationInfo>, InterfaceError> {
    let conn = migration_connection(config).await?;
    Ok(match conn {
        #[cfg(feature = "postgres")]
        PooledConnection::Postgres(obj) => {
            let mut migrator = prefect_orm::migrations::PgMigrator::new(obj).with_statement_timeout(config.migration_timeout);
            migrator.downgrade(target).await?
        }
        #[cfg(feature = "sqlite")]
        PooledConnection::Sqlite(mut obj) => {
            obj.spawn_blocking(move |c| Ok(prefect_orm::migrations::downgrade_sqlite(c, &target))).await??
        }
    })
}

/// What is applied and pending, and how the database is classified. Changes nothing (beyond
/// creating an empty database or file when it did not exist).
pub async fn status(config: &DatabaseConfig) -> Result<MigrationStatus, InterfaceError> {
    let conn = migration_connection(config).await?;
    Ok(match conn {
        #[cfg(feature = "postgres")]
        PooledConnection::Postgres(obj) => prefect_orm::migrations::PgMigrator::new(obj).status().await?,
        #[cfg(feature = "sqlite")]
        PooledConnection::Sqlite(mut obj) => obj.spawn_blocking(|c| Ok(prefect_orm::migrations::status_sqlite(c))).await??,
    })
}
