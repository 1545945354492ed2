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
    /// The database could not be reached (or, for a migration command, neither reached nor
    /// created) within the connection timeout.
    #[error("cannot reach {url} within {timeout:?} (connection timeout): {reason}")]
    Unreachable {
        /// The database, password masked.
        url: String,
        /// The connection timeout it had.
        timeout: std::time::Duration,
        /// Why.
        reason: String,
    },
}

impl InterfaceError {
    /// Whether the error means the database could not be reached at all (as opposed to a
    /// database that answered with an error or a refusal).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            InterfaceError::Unreachable { .. }
                | InterfaceError::Db(prefect_db_config::DbError::Connect { .. } | prefect_db_config::DbError::PoolTimeout { .. })
        )
    }
}
