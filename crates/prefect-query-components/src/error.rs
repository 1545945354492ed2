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
    /// A work pool named in a request does not exist (Prefect's 404 `Work pool "…" not found.`).
    #[error("Work pool \"{0}\" not found.")]
    WorkPoolNotFound(String),
    /// The flow run graph has more nodes than allowed (Prefect's `FlowRunGraphTooLarge`).
    #[error("The graph of flow run {flow_run_id} has more than {max_nodes} nodes.")]
    GraphTooLarge {
        /// The flow run whose graph was asked for.
        flow_run_id: Uuid,
        /// The limit that was exceeded.
        max_nodes: usize,
    },
    /// An upsert names a column its table does not have, or one it may not update.
    #[error("cannot upsert column {column:?} of table {table}: {reason}")]
    UpsertColumn {
        /// The table.
        table: &'static str,
        /// The column named.
        column: String,
        /// Why it cannot be updated.
        reason: &'static str,
    },
    /// One `ON CONFLICT … DO UPDATE` batch would update the same row twice (two rows of the
    /// batch share a conflict key); the batch is refused on both dialects.
    #[error("an upsert batch into {table} hits the same row twice (conflict key shared by two rows){}", id.map(|id| format!(": row {id}")).unwrap_or_default())]
    UpsertRowTwice {
        /// The table.
        table: &'static str,
        /// The row hit twice, when known (SQLite, or PostgreSQL across statements).
        id: Option<Uuid>,
    },
    /// A stored value is not one the query can read.
    #[error("unexpected value {value:?} in {table}.{column}")]
    UnexpectedValue {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// The value found.
        value: String,
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

impl From<prefect_orm::access::AccessError> for QueryError {
    fn from(error: prefect_orm::access::AccessError) -> Self {
        use prefect_orm::access::AccessError;
        match error {
            AccessError::Query { source, .. } => QueryError::Db(DbError::from(source)),
            AccessError::UpsertColumn { table, column, reason } => QueryError::UpsertColumn { table, column, reason },
            AccessError::UpsertRowTwice { table, id } => QueryError::UpsertRowTwice { table, id },
            AccessError::InvalidInput { field, value, reason } => {
                QueryError::InvalidArgument(format!("{field} {value:?}: {reason}"))
            }
            other => QueryError::InvalidArgument(other.to_string()),
        }
    }
}

/// The result of a query component.
pub type QueryResult<T> = Result<T, QueryError>;
