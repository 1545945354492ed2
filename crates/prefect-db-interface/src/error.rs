//! Errors of the interface: each wraps the tier it came from.

/// Something the interface was asked to do failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InterfaceError {
    /// Settings, connections or pools (tier 1).
    #[error(transparent)]
    Db(#[from] prefect_db_config::DbError),
    /// Settings could not be loaded or resolved.
    #[error(transparent)]
    Config(#[from] prefect_db_config::ConfigError),
    /// A statement failed.
    #[error("database error: {0}")]
    Query(#[from] diesel::result::Error),
    /// Migrations (tier 3).
    #[error(transparent)]
    Migration(#[from] prefect_orm::migrations::MigrationError),
}
