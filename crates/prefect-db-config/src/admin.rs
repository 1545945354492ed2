//! Creating and dropping databases at tier 1: the PostgreSQL database or the SQLite file, and
//! dropping every table (Prefect's `drop_db`). Migrations live in the ORM crate.

use crate::config::DatabaseConfig;
use crate::conn::Conn;
use crate::error::DbError;
use crate::url::{DatabaseUrl, SqliteTarget};
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;

#[derive(QueryableByName)]
struct NameRow {
    #[diesel(sql_type = Text)]
    name: String,
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quotes an SQL string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Makes sure the database exists: creates the PostgreSQL database if it does not exist (a
/// clear error when the role may not), or the SQLite file and its folder. Returns whether
/// something was created.
pub async fn create_database(config: &DatabaseConfig) -> Result<bool, DbError> {
    match &config.url {
        DatabaseUrl::Sqlite(SqliteTarget::Memory) => Ok(false),
        DatabaseUrl::Sqlite(SqliteTarget::File(path)) => {
            let existed = path.exists();
            #[cfg(feature = "sqlite")]
            {
                crate::sqlite::connect(config)
                    .await
                    .map_err(|e| DbError::Admin { action: "create", url: config.url.masked(), reason: e.to_string() })?;
                Ok(!existed)
            }
            #[cfg(not(feature = "sqlite"))]
            {
                let _ = existed;
                Err(crate::error::ConfigError::FeatureMissing { url: config.url.masked(), feature: "sqlite" }.into())
            }
        }
        DatabaseUrl::Postgres(url) => {
            #[cfg(feature = "postgres")]
            {
                use diesel::sql_types::Bool;
                #[derive(QueryableByName)]
                struct Exists {
                    #[diesel(sql_type = Bool)]
                    exists: bool,
                }
                let name = url.database();
                let admin_err = |reason: String| DbError::Admin { action: "create", url: config.url.masked(), reason };
                let mut maintenance = config.clone();
                maintenance.url = DatabaseUrl::Postgres(url.with_database("postgres"));
                let mut conn = crate::pg::connect(&maintenance)
                    .await
                    .map_err(|e| admin_err(format!("cannot reach the maintenance database: {e}")))?;
                let found: Exists = diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
                    .bind::<Text, _>(&name)
                    .get_result(&mut conn)
                    .await?;
                if found.exists {
                    return Ok(false);
                }
                match diesel::sql_query(format!("CREATE DATABASE {}", quote_ident(&name))).execute(&mut conn).await {
                    Ok(_) => Ok(true),
                    Err(diesel::result::Error::DatabaseError(_, info)) if info.message().contains("already exists") => Ok(false),
                    Err(diesel::result::Error::DatabaseError(_, info)) if info.message().contains("permission denied") => {
                        Err(admin_err(format!("{}; ask an administrator to run CREATE DATABASE {} or grant CREATEDB to the role", info.message(), quote_ident(&name))))
                    }
                    Err(e) => Err(admin_err(e.to_string())),
                }
            }
            #[cfg(not(feature = "postgres"))]
            {
                let _ = url;
                Err(crate::error::ConfigError::FeatureMissing { url: config.url.masked(), feature: "postgres" }.into())
            }
        }
    }
}

/// Drops every table of the database (and, on PostgreSQL, the enum types of the current
/// schema), bookkeeping tables included, as Prefect's `drop_db` does. Returns the tables dropped.
pub async fn drop_all_tables(conn: &mut Conn<'_>) -> Result<Vec<String>, DbError> {
    match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            let tables: Vec<NameRow> = diesel::sql_query(
                "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1",
            )
            .load(&mut **c)
            .await?;
            let types: Vec<NameRow> = diesel::sql_query(
                "SELECT t.typname AS name FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace \
                 WHERE n.nspname = current_schema() AND t.typtype = 'e' ORDER BY 1",
            )
            .load(&mut **c)
            .await?;
            let mut sql = String::new();
            if !tables.is_empty() {
                let list: Vec<String> = tables.iter().map(|t| quote_ident(&t.name)).collect();
                sql.push_str(&format!("DROP TABLE IF EXISTS {} CASCADE;", list.join(", ")));
            }
            if !types.is_empty() {
                let list: Vec<String> = types.iter().map(|t| quote_ident(&t.name)).collect();
                sql.push_str(&format!("DROP TYPE IF EXISTS {} CASCADE;", list.join(", ")));
            }
            if !sql.is_empty() {
                use diesel_async::SimpleAsyncConnection;
                c.batch_execute(&sql).await?;
            }
            Ok(tables.into_iter().map(|t| t.name).collect())
        }
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            use diesel_async::SimpleAsyncConnection;
            let tables: Vec<NameRow> = diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY 1",
            )
            .load(&mut **c)
            .await?;
            let mut sql = String::from("PRAGMA foreign_keys = OFF;");
            for t in &tables {
                sql.push_str(&format!("DROP TABLE IF EXISTS {};", quote_ident(&t.name)));
            }
            let result = c.batch_execute(&sql).await;
            c.batch_execute("PRAGMA foreign_keys = ON").await?;
            result?;
            Ok(tables.into_iter().map(|t| t.name).collect())
        }
    }
}

/// Whether a connection can be made within the connection timeout (Prefect's
/// `is_db_connectable`): never hangs, never panics.
pub async fn is_connectable(config: &DatabaseConfig) -> bool {
    let attempt = async {
        match &config.url {
            #[cfg(feature = "postgres")]
            DatabaseUrl::Postgres(_) => crate::pg::connect(config).await.is_ok(),
            #[cfg(feature = "sqlite")]
            DatabaseUrl::Sqlite(_) => crate::sqlite::connect(config).await.is_ok(),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    };
    tokio::time::timeout(config.connection_timeout, attempt).await.unwrap_or(false)
}
