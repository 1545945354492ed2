//! SQLite connections: Prefect's pragmas on every connection, the file and its folder created
//! when missing, and SQL echo.

use crate::config::DatabaseConfig;
use crate::conn::SqliteConnection;
use crate::url::{DatabaseUrl, SqliteTarget};
use diesel::ConnectionError;
use diesel_async::{AsyncConnection, SimpleAsyncConnection};

/// The URL handed to SQLite for a target.
pub fn sqlite_open_url(target: &SqliteTarget) -> String {
    match target {
        SqliteTarget::File(path) => path.to_string_lossy().into_owned(),
        SqliteTarget::Memory => ":memory:".to_owned(),
    }
}

/// The pragma statements run on every new connection, in order (`busy_timeout` first so that
/// switching the journal mode waits for other connections instead of failing).
pub fn pragma_statements(config: &DatabaseConfig) -> Vec<String> {
    let p = &config.sqlite;
    let mut out = vec![format!("PRAGMA busy_timeout = {}", p.busy_timeout_ms)];
    if !config.url.is_in_memory() {
        out.push(format!("PRAGMA journal_mode = {}", p.journal_mode));
    }
    out.push("PRAGMA foreign_keys = ON".to_owned());
    out.push("PRAGMA legacy_alter_table = OFF".to_owned());
    out.push(format!("PRAGMA synchronous = {}", p.synchronous));
    out.push(format!("PRAGMA cache_size = {}", p.cache_size));
    out
}

/// Creates the folder of a database file when it is missing.
pub fn ensure_parent_dir(target: &SqliteTarget) -> Result<(), crate::error::ConfigError> {
    match target {
        SqliteTarget::File(path) => crate::settings::ensure_sqlite_parent(path),
        SqliteTarget::Memory => Ok(()),
    }
}

/// Opens one configured connection.
pub(crate) async fn connect(config: &DatabaseConfig) -> Result<SqliteConnection, ConnectionError> {
    let DatabaseUrl::Sqlite(target) = &config.url else {
        return Err(ConnectionError::BadConnection("not an SQLite URL".to_owned()));
    };
    ensure_parent_dir(target).map_err(|e| ConnectionError::BadConnection(e.to_string()))?;
    let mut conn = SqliteConnection::establish(&sqlite_open_url(target)).await.map_err(|e| match e {
        ConnectionError::BadConnection(reason) => ConnectionError::BadConnection(format!("{}: {reason}", config.url.masked())),
        other => other,
    })?;
    if let Some(instrumentation) = crate::observe::StatementInstrumentation::for_config(config) {
        conn.set_instrumentation(instrumentation);
    }
    for pragma in pragma_statements(config) {
        conn.batch_execute(&pragma).await.map_err(ConnectionError::CouldntSetupConfiguration)?;
    }
    conn.spawn_blocking(|c| prefect_db_conn::conn::register_sqlite_functions(c))
        .await
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}
