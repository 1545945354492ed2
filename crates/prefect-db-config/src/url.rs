//! Connection URLs as Prefect users write them, parsed into a dialect-specific target.
//!
//! Accepted forms: `sqlite+aiosqlite:///relative.db`, `sqlite+aiosqlite:////abs/path.db`,
//! `sqlite:///…`, `sqlite://…`, `file:…` URIs, `:memory:` (alone or after a scheme, e.g.
//! `sqlite+aiosqlite:///:memory:` or `sqlite+aiosqlite:///file::memory:?cache=shared&uri=true`),
//! and `postgresql+asyncpg://…`, `postgresql://…`, `postgres://…`. The dialect comes from the
//! scheme; the `+driver` suffix of SQLAlchemy URLs is accepted and dropped.

use crate::error::ConfigError;
use std::fmt;
use std::path::PathBuf;
use url::Url;

pub use prefect_db_conn::Dialect;

/// A parsed connection URL.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum DatabaseUrl {
    /// A PostgreSQL server.
    Postgres(PostgresUrl),
    /// An SQLite database.
    Sqlite(SqliteTarget),
}

/// Where a PostgreSQL database lives.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PostgresUrl {
    url: Url,
}

/// Where an SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SqliteTarget {
    /// A database file (created with its parent folder when missing).
    File(PathBuf),
    /// An in-memory database: one connection, shared by every user of the pool.
    Memory,
}

impl DatabaseUrl {
    /// Parses a URL; `setting` names where it came from, for error messages.
    pub fn parse(raw: &str, setting: &str) -> Result<Self, ConfigError> {
        let value = raw.trim();
        let bad = |reason: &str| ConfigError::InvalidUrl {
            setting: setting.to_owned(),
            value: mask_password(value),
            reason: reason.to_owned(),
        };
        if value.is_empty() {
            return Err(bad("the URL is empty"));
        }
        if value == ":memory:" {
            return Ok(DatabaseUrl::Sqlite(SqliteTarget::Memory));
        }
        let Some((scheme, rest)) = value.split_once("://").or_else(|| {
            value.strip_prefix("file:").map(|rest| ("file", rest))
        }) else {
            return Err(bad("expected `scheme://…` (sqlite+aiosqlite, sqlite, postgresql+asyncpg, postgresql or postgres)"));
        };
        let base = scheme.split('+').next().unwrap_or(scheme).to_ascii_lowercase();
        match base.as_str() {
            "sqlite" | "file" => Ok(DatabaseUrl::Sqlite(parse_sqlite(rest, scheme == "file").map_err(|r| bad(&r))?)),
            "postgresql" | "postgres" => {
                if let Some(driver) = scheme.split_once('+').map(|(_, d)| d) {
                    if !matches!(driver, "asyncpg" | "psycopg" | "psycopg2" | "tokio_postgres") {
                        return Err(bad(&format!("unsupported PostgreSQL driver `{driver}`")));
                    }
                }
                let mut url = Url::parse(&format!("postgresql://{rest}")).map_err(|e| bad(&e.to_string()))?;
                if url.host_str().is_none_or(str::is_empty) && !url.query_pairs().any(|(k, _)| k == "host") {
                    return Err(bad("a PostgreSQL URL needs a host"));
                }
                if url.path().trim_start_matches('/').is_empty() {
                    url.set_path("/postgres");
                }
                Ok(DatabaseUrl::Postgres(PostgresUrl { url }))
            }
            other => Err(bad(&format!("unknown scheme `{other}`: expected sqlite or postgresql"))),
        }
    }

    /// The dialect of this URL.
    pub const fn dialect(&self) -> Dialect {
        match self {
            DatabaseUrl::Postgres(_) => Dialect::Postgres,
            DatabaseUrl::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// The URL for display and logs, password masked.
    pub fn masked(&self) -> String {
        match self {
            DatabaseUrl::Postgres(pg) => pg.masked(),
            DatabaseUrl::Sqlite(SqliteTarget::File(path)) => format!("sqlite:///{}", path.display()),
            DatabaseUrl::Sqlite(SqliteTarget::Memory) => "sqlite:///:memory:".to_owned(),
        }
    }

    /// Whether the database lives only in memory (Prefect's `is_inmemory`).
    pub const fn is_in_memory(&self) -> bool {
        matches!(self, DatabaseUrl::Sqlite(SqliteTarget::Memory))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl PostgresUrl {
    /// The URL with its password, in the `postgresql://` form tokio-postgres accepts.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// The URL with the password replaced by `***`.
    pub fn masked(&self) -> String {
        let mut url = self.url.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        url.to_string()
    }

    /// The database name.
    pub fn database(&self) -> String {
        let name = self.url.path().trim_start_matches('/');
        percent_encoding::percent_decode_str(name).decode_utf8_lossy().into_owned()
    }

    /// The same server with another database name (used to reach the maintenance database).
    pub fn with_database(&self, name: &str) -> PostgresUrl {
        let mut url = self.url.clone();
        url.set_path(&format!("/{}", percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)));
        PostgresUrl { url }
    }

    /// The host, when given in the authority.
    pub fn host(&self) -> Option<&str> {
        self.url.host_str()
    }

    /// The port (5432 when absent).
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(5432)
    }

    /// The user name, if any.
    pub fn user(&self) -> Option<String> {
        let user = self.url.username();
        (!user.is_empty()).then(|| percent_encoding::percent_decode_str(user).decode_utf8_lossy().into_owned())
    }

    /// A query parameter of the URL.
    pub fn query_param(&self, key: &str) -> Option<String> {
        self.url.query_pairs().filter(|(k, _)| k == key).last().map(|(_, v)| v.into_owned())
    }

    /// The URL without the given query parameters (Prefect moves some of them elsewhere).
    pub fn without_query_params(&self, keys: &[&str]) -> PostgresUrl {
        let mut url = self.url.clone();
        let kept: Vec<(String, String)> = self
            .url
            .query_pairs()
            .filter(|(k, _)| !keys.contains(&k.as_ref()))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        PostgresUrl { url }
    }
}

impl fmt::Debug for PostgresUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

fn parse_sqlite(rest: &str, file_uri: bool) -> Result<SqliteTarget, String> {
    let (path_part, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory_query = query.split('&').any(|kv| kv == "mode=memory");
    // `sqlite:///x.db` → "/x.db" after the scheme: strip the one slash SQLAlchemy puts before a
    // relative path; `sqlite:////abs.db` keeps one leading slash.
    let path = if file_uri {
        path_part.to_owned()
    } else {
        path_part.strip_prefix('/').unwrap_or(path_part).to_owned()
    };
    let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy().into_owned();
    let bare = decoded.strip_prefix("file:").unwrap_or(&decoded);
    if bare.is_empty() || bare == ":memory:" || bare.starts_with(":memory:") || memory_query {
        return Ok(SqliteTarget::Memory);
    }
    if bare.contains('\0') {
        return Err("the path contains a NUL byte".to_owned());
    }
    Ok(SqliteTarget::File(PathBuf::from(bare)))
}

/// Replaces the password of a URL-looking value by `***` (for errors and logs).
pub fn mask_password(value: &str) -> String {
    let Some((scheme, rest)) = value.split_once("://") else { return value.to_owned() };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => value.to_owned(),
        },
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DatabaseUrl, ConfigError> {
        DatabaseUrl::parse(s, "PREFECT_SERVER_DATABASE_CONNECTION_URL")
    }

    #[test]
    fn sqlite_forms() {
        let file = |p: &str| Ok(DatabaseUrl::Sqlite(SqliteTarget::File(PathBuf::from(p))));
        assert_eq!(parse("sqlite+aiosqlite:////home/u/.prefect/prefect.db"), file("/home/u/.prefect/prefect.db"));
        assert_eq!(parse("sqlite+aiosqlite:///prefect.db"), file("prefect.db"));
        assert_eq!(parse("sqlite:///rel/x.db"), file("rel/x.db"));
        assert_eq!(parse("sqlite:////abs/x.db"), file("/abs/x.db"));
        assert_eq!(parse("file:/abs/y.db"), file("/abs/y.db"));
        for mem in [":memory:", "sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite:///:memory:",
            "sqlite+aiosqlite:///file::memory:?cache=shared&uri=true&check_same_thread=false",
            "sqlite:///file:db?mode=memory&cache=shared"] {
            assert_eq!(parse(mem), Ok(DatabaseUrl::Sqlite(SqliteTarget::Memory)), "{mem}");
        }
    }

    #[test]
    fn postgres_forms() {
        for s in ["postgresql+asyncpg://u:p@h:5433/db", "postgresql://u:p@h:5433/db", "postgres://u:p@h:5433/db"] {
            let Ok(DatabaseUrl::Postgres(pg)) = parse(s) else { panic!("{s} did not parse") };
            assert_eq!(pg.expose(), "postgresql://u:p@h:5433/db");
            assert_eq!(pg.masked(), "postgresql://u:***@h:5433/db");
            assert_eq!((pg.host(), pg.port(), pg.user().as_deref(), pg.database().as_str()), (Some("h"), 5433, Some("u"), "db"));
        }
    }

    #[test]
    fn bad_urls_name_the_setting_and_mask_the_password() {
        let err = parse("mysql://u:secret@h/db").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("PREFECT_SERVER_DATABASE_CONNECTION_URL") && err.contains("unknown scheme"), "{err}");
        assert!(!err.contains("secret") && err.contains("u:***@h"), "{err}");
        let err = parse("postgresql+mysqldb://u:secret@h/db").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("driver") && !err.contains("secret"), "{err}");
        assert!(parse("not a url").is_err());
        assert!(parse("").is_err());
        assert!(parse("postgresql://u:secret@:5432/db").is_err());
        assert!(parse("postgresql://u:p@h:99999/db").is_err());
    }
}
