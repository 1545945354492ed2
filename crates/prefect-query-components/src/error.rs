//! The typed error of every query component.

use prefect_db_config::DbError;
use uuid::Uuid;

/// Why a query component failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// The database (or the connection) failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// A flow run that the query starts from does not exist (Prefect's `ObjectNotFoundError`).
    #[error("Flow run {0} not found")]
    FlowRunNotFound(Uuid),
    /// The flow run graph has more nodes than allowed (Prefect's `FlowRunGraphTooLarge`).
    #[error("the flow run graph has more than {max_nodes} nodes")]
    GraphTooLarge {
        /// The limit that was exceeded.
        max_nodes: usize,
    },
    /// An argument is out of range (for example a non-positive interval).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl From<diesel::result::Error> for QueryError {
    fn from(error: diesel::result::Error) -> Self {
        QueryError::Db(DbError::from(error))
    }
}

/// The result of a query component.
pub type QueryResult<T> = Result<T, QueryError>;
