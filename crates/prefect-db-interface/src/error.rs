//! Errors of the interface: [`Error`], the one error a server receives from the layer, classified
//! by what a server does with it; and [`InterfaceError`], the error of the administrative
//! functions (migrations, copies), which converts into it.

use prefect_db_config::{ConfigError, DbError};
use prefect_orm::access::AccessError;
use prefect_query_components::QueryError;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a server does with an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The row asked for does not exist (HTTP 404).
    NotFound,
    /// The change conflicts with stored data: a unique, foreign-key or check constraint (409).
    Conflict,
    /// The input cannot be used: a field or value is wrong (422).
    InvalidInput,
    /// The database cannot be reached or is busy; the same request may succeed later (503).
    Unavailable,
    /// A statement ran past the statement timeout (`timeout` setting) or waited past the lock
    /// timeout and was cancelled; the transaction was rolled back and the connection stays
    /// usable (503: the same request may succeed when the database is less loaded).
    Timeout,
    /// Anything else: a bug, a value stored that cannot be decoded, a failed migration (500).
    Internal,
}

/// The one error every operation of the layer gives a server, whichever tier it came from.
///
/// Every variant names what it is about (table, constraint, field, value; passwords masked),
/// and keeps the underlying error as its [`source`](std::error::Error::source). Match on the
/// variants, or on [`Error::kind`]:
///
/// ```
/// use prefect_db_interface::{Error, ErrorKind};
///
/// fn status(e: &Error) -> u16 {
///     match e.kind() {
///         ErrorKind::NotFound => 404,
///         ErrorKind::Conflict => 409,
///         ErrorKind::InvalidInput => 422,
///         ErrorKind::Unavailable => 503,
///         _ => 500,
///     }
/// }
/// assert_eq!(status(&Error::not_found("flow_run", uuid::Uuid::nil())), 404);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The row asked for does not exist.
    #[error("{table} {key} not found")]
    NotFound {
        /// The table looked in.
        table: &'static str,
        /// The key looked for (an id, a name).
        key: String,
    },
    /// The change conflicts with stored data: it would break a unique, foreign-key or check
    /// constraint. Nothing of the statement was written.
    #[error("{message}")]
    Conflict {
        /// The constraint or unique index, by its name in Prefect's schema
        /// (`uq_variable__name`), when the database says which (SQLite does not name foreign
        /// keys).
        constraint: Option<String>,
        /// The table written to, when known.
        table: Option<String>,
        /// What conflicted, in words.
        message: String,
        /// The database's error.
        #[source]
        source: Option<BoxError>,
    },
    /// A field or value cannot be used.
    #[error("invalid {field}{}: {reason}", value.as_ref().map(|v| format!(" {v:?}")).unwrap_or_default())]
    InvalidInput {
        /// The field (`flow_run.name`, a request body's field path, or an argument's name).
        field: String,
        /// The value given, when it helps to say it.
        value: Option<String>,
        /// What is wrong with it.
        reason: String,
    },
    /// The database cannot be reached, refused the connection, or is busy (a lock, a
    /// serialization failure, a timeout): the same request may succeed later.
    #[error("the database is unavailable: {message}")]
    Unavailable {
        /// What happened (URLs with passwords masked).
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// A statement was cancelled by the statement or lock timeout.
    #[error("the database cancelled a statement that ran too long: {message}")]
    Timeout {
        /// What the database said.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// Anything else.
    #[error("{message}")]
    Internal {
        /// What happened.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

impl Error {
    /// What a server does with this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Whether the failure is transient: the same request may succeed if tried again later
    /// ([`ErrorKind::Unavailable`] or [`ErrorKind::Timeout`]). What
    /// [`Database::transaction_retrying`](crate::Database) retries.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::Unavailable | ErrorKind::Timeout)
    }

    /// The class of the error as a short label (`not_found`, `conflict`, `invalid_input`,
    /// `unavailable`, `timeout`, `internal`): the `error.type` of spans and metrics.
    pub fn class(&self) -> &'static str {
        match self.kind() {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether the database says it rolled the transaction back (a serialization failure or a
    /// deadlock victim): then a failed `COMMIT` did not commit.
    pub(crate) fn rolled_back(&self) -> bool {
        match self {
            Error::Unavailable { message, .. } => {
                message.contains("could not serialize access") || message.contains("deadlock detected")
            }
            _ => false,
        }
    }

    /// Whether the connection the error came from may be unusable (lost, or closed by the
    /// server): it is then discarded instead of going back to the pool.
    pub(crate) fn may_have_broken_connection(&self) -> bool {
        match self {
            Error::Unavailable { message, .. } => !LOCK_MESSAGES.iter().any(|m| message.contains(m)),
            _ => false,
        }
    }

    /// The constraint a [`Error::Conflict`] names.
    pub fn constraint(&self) -> Option<&str> {
        match self {
            Error::Conflict { constraint, .. } => constraint.as_deref(),
            _ => None,
        }
    }

    /// A row of `table` with this key does not exist.
    pub fn not_found(table: &'static str, key: impl std::fmt::Display) -> Error {
        Error::NotFound { table, key: key.to_string() }
    }

    /// `field` (with `value`) cannot be used, because `reason`.
    pub fn invalid(field: impl Into<String>, value: Option<String>, reason: impl Into<String>) -> Error {
        Error::InvalidInput { field: field.into(), value, reason: reason.into() }
    }

    /// The same conflict with Prefect's wording for it (what its API says with the 409).
    pub fn with_message(self, message: impl Into<String>) -> Error {
        match self {
            Error::Conflict { constraint, table, source, .. } => {
                Error::Conflict { constraint, table, message: message.into(), source }
            }
            other => other,
        }
    }

    fn internal(message: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Internal { message: message.into(), source: Some(source.into()) }
    }

    fn unavailable(message: impl Into<String>, source: impl Into<BoxError>) -> Error {
        Error::Unavailable { message: message.into(), source: Some(source.into()) }
    }

    /// Classifies a statement's failure; `table` is the table it wrote to, when known.
    fn from_diesel(e: diesel::result::Error, table: Option<&'static str>) -> Error {
        use diesel::result::{DatabaseErrorKind as K, Error as D};
        match e {
            D::NotFound => Error::NotFound { table: table.unwrap_or("row"), key: "(query)".to_owned() },
            D::DatabaseError(kind, info) => {
                let message = info.message().to_owned();
                // SQLite reports some constraint failures without their extended code: the
                // message says which.
                let kind = match kind {
                    K::Unknown if message.starts_with("FOREIGN KEY constraint failed") => K::ForeignKeyViolation,
                    K::Unknown if message.starts_with("UNIQUE constraint failed") => K::UniqueViolation,
                    K::Unknown if message.starts_with("NOT NULL constraint failed") => K::NotNullViolation,
                    K::Unknown if message.starts_with("CHECK constraint failed") => K::CheckViolation,
                    other => other,
                };
                let table_name = info.table_name().map(str::to_owned).or_else(|| table.map(str::to_owned));
                let constraint = info.constraint_name().map(str::to_owned);
                let column = info.column_name().map(str::to_owned);
                let source: BoxError = Box::new(D::DatabaseError(kind, info));
                match kind {
                    K::UniqueViolation => {
                        let (table_name, constraint) = match constraint {
                            Some(c) => (table_name, Some(c)),
                            None => sqlite_unique(&message).map_or((table_name, None), |(t, c)| (Some(t), c)),
                        };
                        let what = constraint.as_deref().unwrap_or("a unique constraint");
                        Error::Conflict {
                            message: format!(
                                "{} conflicts with an existing row ({what}): {message}",
                                table_name.as_deref().unwrap_or("the row")
                            ),
                            constraint,
                            table: table_name,
                            source: Some(source),
                        }
                    }
                    K::ForeignKeyViolation | K::RestrictViolation | K::CheckViolation | K::ExclusionViolation => {
                        let constraint =
                            constraint.or_else(|| message.strip_prefix("CHECK constraint failed: ").map(str::to_owned));
                        let what = match kind {
                            K::ForeignKeyViolation | K::RestrictViolation => "a foreign key",
                            _ => "a check constraint",
                        };
                        Error::Conflict {
                            message: format!(
                                "{} breaks {what}{}: {message}",
                                table_name.as_deref().unwrap_or("the change"),
                                constraint.as_deref().map(|c| format!(" ({c})")).unwrap_or_default()
                            ),
                            constraint,
                            table: table_name,
                            source: Some(source),
                        }
                    }
                    K::NotNullViolation => {
                        let field = match (table_name, column) {
                            (Some(t), Some(c)) => format!("{t}.{c}"),
                            _ => message
                                .strip_prefix("NOT NULL constraint failed: ")
                                .map_or_else(|| "a column".to_owned(), str::to_owned),
                        };
                        Error::InvalidInput { field, value: None, reason: format!("a value is required ({message})") }
                    }
                    K::SerializationFailure | K::ReadOnlyTransaction | K::UnableToSendCommand | K::ClosedConnection => {
                        Error::Unavailable { message, source: Some(source) }
                    }
                    _ if TIMEOUT_MESSAGES.iter().any(|t| message.contains(t)) => {
                        Error::Timeout { message, source: Some(source) }
                    }
                    _ if is_transient_message(&message) => Error::Unavailable { message, source: Some(source) },
                    _ => Error::Internal {
                        message: format!("{}{message}", table.map(|t| format!("{t}: ")).unwrap_or_default()),
                        source: Some(source),
                    },
                }
            }
            D::DeserializationError(inner) => Error::Internal {
                message: format!(
                    "a stored value{} cannot be decoded: {inner}",
                    table.map(|t| format!(" of {t}")).unwrap_or_default()
                ),
                source: Some(inner),
            },
            D::SerializationError(inner) => Error::InvalidInput {
                field: table.unwrap_or("a value").to_owned(),
                value: None,
                reason: format!("cannot be encoded: {inner}"),
            },
            other => Error::internal(other.to_string(), other),
        }
    }
}

/// Cancellations by PostgreSQL's statement and lock timeouts (SQLSTATE 57014, 55P03).
const TIMEOUT_MESSAGES: &[&str] = &["canceling statement due to statement timeout", "canceling statement due to lock timeout"];

/// Transient failures that leave the connection usable: lock conflicts and serialization
/// failures (SQLite BUSY/LOCKED, PostgreSQL 40001, 40P01, 55P03).
const LOCK_MESSAGES: &[&str] = &[
    "database is locked",
    "database table is locked",
    "database schema is locked",
    "deadlock detected",
    "could not serialize access",
    "could not obtain lock",
];

/// Messages of database errors that clear by themselves: SQLite's lock errors and disk I/O
/// errors, PostgreSQL's deadlocks, lock conflicts, shutdowns and restarts (SQLSTATE 40P01,
/// 55P03, classes 08 and 57P0x), and lost connections.
fn is_transient_message(message: &str) -> bool {
    const TRANSIENT: &[&str] = &[
        "terminating connection",
        "the database system is starting up",
        "the database system is shutting down",
        "the database system is in recovery mode",
        "the database system is not yet accepting connections",
        "connection closed",
        "connection reset",
        "Connection reset",
        "connection refused",
        "Connection refused",
        "broken pipe",
        "Broken pipe",
        "server closed the connection",
        "disk I/O error",
    ];
    LOCK_MESSAGES.iter().chain(TRANSIENT).any(|t| message.contains(t))
}

/// Whether a failure to connect may clear by itself: the server refused or dropped the
/// connection, is starting up or shutting down, or did not answer in time (not a refused role or
/// password, nor a missing database).
pub(crate) fn is_transient_connect(e: &DbError) -> bool {
    match e {
        DbError::Connect { reason, .. } => is_transient_message(reason) || reason.contains("timed out"),
        _ => false,
    }
}

/// The table and constraint of SQLite's `UNIQUE constraint failed: t.a, t.b`, the constraint
/// found among Prefect's unique constraints by its columns (`pk_<table>` for the primary key).
fn sqlite_unique(message: &str) -> Option<(String, Option<String>)> {
    let list = message.strip_prefix("UNIQUE constraint failed: ")?;
    let mut table = None;
    let mut columns = Vec::new();
    for item in list.split(", ") {
        let (t, c) = item.split_once('.')?;
        table.get_or_insert_with(|| t.to_owned());
        columns.push(c.to_owned());
    }
    let table = table?;
    columns.sort();
    let name = prefect_orm::schema::UNIQUE_CONSTRAINTS
        .iter()
        .find(|(t, _, cols)| {
            let mut cols: Vec<&str> = cols.to_vec();
            cols.sort_unstable();
            *t == table && cols == columns
        })
        .map(|(_, name, _)| (*name).to_owned())
        .or_else(|| (columns == ["id"]).then(|| format!("pk_{table}")));
    Some((table, name))
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Error::from_diesel(e, None)
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Query(q) => Error::from_diesel(q, None),
            e @ (DbError::PoolTimeout { .. } | DbError::Connect { .. } | DbError::PoolClosed { .. }) => {
                Error::unavailable(e.to_string(), e)
            }
            e => Error::internal(e.to_string(), e),
        }
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::internal(e.to_string(), e)
    }
}

impl From<AccessError> for Error {
    fn from(e: AccessError) -> Self {
        match e {
            AccessError::Query { table, source } => Error::from_diesel(source, Some(table)),
            AccessError::UpsertColumn { table, column, reason } => {
                Error::InvalidInput { field: format!("{table}.{column}"), value: None, reason: format!("cannot be upserted: {reason}") }
            }
            AccessError::InvalidInput { field, value, reason } => Error::InvalidInput { field, value: Some(value), reason },
            e @ AccessError::UpsertRowTwice { table, .. } => {
                Error::InvalidInput { field: table.to_owned(), value: None, reason: e.to_string() }
            }
            e => Error::internal(e.to_string(), e),
        }
    }
}

impl From<QueryError> for Error {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Db(db) => Error::from(db),
            QueryError::FlowRunNotFound(id) => Error::not_found("flow_run", id),
            QueryError::WorkPoolNotFound(name) => Error::not_found("work_pool", name),
            QueryError::UpsertColumn { table, column, reason } => {
                Error::InvalidInput { field: format!("{table}.{column}"), value: None, reason: format!("cannot be upserted: {reason}") }
            }
            e @ (QueryError::GraphTooLarge { .. } | QueryError::UpsertRowTwice { .. } | QueryError::InvalidArgument(_)) => {
                Error::InvalidInput { field: "arguments".to_owned(), value: None, reason: e.to_string() }
            }
            e => Error::internal(e.to_string(), e),
        }
    }
}

/// A request body Prefect would refuse: invalid input naming the first location at fault (every
/// location is in the message).
impl From<prefect_query_components::read::BodyError> for Error {
    fn from(e: prefect_query_components::read::BodyError) -> Self {
        Error::InvalidInput { field: e.field(), value: None, reason: e.to_string() }
    }
}

impl From<prefect_orm::migrations::MigrationError> for Error {
    fn from(e: prefect_orm::migrations::MigrationError) -> Self {
        match e {
            prefect_orm::migrations::MigrationError::Database(d) => Error::from_diesel(d, None),
            e => Error::internal(e.to_string(), e),
        }
    }
}

impl From<InterfaceError> for Error {
    fn from(e: InterfaceError) -> Self {
        match e {
            InterfaceError::Db(db) => Error::from(db),
            InterfaceError::Config(c) => Error::from(c),
            InterfaceError::Migration(m) => Error::from(m),
            e @ InterfaceError::Unreachable { .. } => Error::unavailable(e.to_string(), e),
        }
    }
}

impl From<crate::tables::TableError> for Error {
    fn from(e: crate::tables::TableError) -> Self {
        match e {
            crate::tables::TableError::Query { table, source } => Error::from_diesel(source, Some(table)),
            e => Error::internal(e.to_string(), e),
        }
    }
}

/// Something an administrative function of the interface (migrations, copies, whole-table
/// work) was asked to do failed. Converts into [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InterfaceError {
    /// Settings, connections, pools or a statement (tier 1).
    #[error(transparent)]
    Db(#[from] DbError),
    /// Settings could not be loaded or resolved.
    #[error(transparent)]
    Config(#[from] ConfigError),
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

impl From<diesel::result::Error> for InterfaceError {
    fn from(e: diesel::result::Error) -> Self {
        InterfaceError::Db(DbError::Query(e))
    }
}

impl InterfaceError {
    /// Whether the error means the database could not be reached at all (as opposed to a
    /// database that answered with an error or a refusal).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            InterfaceError::Unreachable { .. } | InterfaceError::Db(DbError::Connect { .. } | DbError::PoolTimeout { .. })
        )
    }
}
