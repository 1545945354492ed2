//! What the layer tells operators about its statements and connections, following the
//! OpenTelemetry conventions for database clients:
//!
//! - SQL echo (Prefect's `PREFECT_SERVER_DATABASE_ECHO`): every statement and its duration,
//!   through `tracing` under [`ECHO_TARGET`];
//! - the slow-statement log: statements above `slow_statement_threshold`, at WARN under
//!   [`SLOW_TARGET`], with their SQL (bind values left out);
//! - a `tracing` span per statement (DEBUG, target [`STATEMENT_TARGET`]) with `db.system.name`,
//!   `db.namespace`, `db.operation.name`, `db.query.summary` and `error.type`;
//! - with `server.metrics_enabled`, metrics through the `metrics` crate's recorder (the server
//!   installs one, e.g. a Prometheus exporter): [`OPERATION_DURATION`] per statement, and the
//!   pool's [`CONNECTION_COUNT`], [`CONNECTION_MAX`], [`CONNECTION_PENDING`],
//!   [`CONNECTION_WAIT_TIME`] and [`CONNECTION_TIMEOUTS`]. Off, nothing is recorded.

use crate::config::DatabaseConfig;
use crate::url::{DatabaseUrl, Dialect, SqliteTarget};
use diesel::connection::{Instrumentation, InstrumentationEvent};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `tracing` target of echoed statements.
pub const ECHO_TARGET: &str = "prefect_db::sql";
/// The `tracing` target of the slow-statement log.
pub const SLOW_TARGET: &str = "prefect_db::slow";
/// The `tracing` target of the per-statement spans.
pub const STATEMENT_TARGET: &str = "prefect_db::statement";

/// Histogram, seconds: the duration of each statement (`db.system.name`, `db.operation.name`,
/// `db.collection.name`, and `error.type` when it failed).
pub const OPERATION_DURATION: &str = "db.client.operation.duration";
/// Gauge: the pool's connections by `db.client.connection.state` (`idle`, `used`).
pub const CONNECTION_COUNT: &str = "db.client.connection.count";
/// Gauge: the most connections the pool may hold.
pub const CONNECTION_MAX: &str = "db.client.connection.max";
/// Gauge: callers waiting for a connection.
pub const CONNECTION_PENDING: &str = "db.client.connection.pending_requests";
/// Histogram, seconds: how long a caller waited for a connection.
pub const CONNECTION_WAIT_TIME: &str = "db.client.connection.wait_time";
/// Counter: checkouts that gave up (pool exhausted past `pool_timeout`, or no connection could
/// be made).
pub const CONNECTION_TIMEOUTS: &str = "db.client.connection.timeouts";

/// The value of `db.system.name` for a dialect.
pub fn system_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Postgres => "postgresql",
        Dialect::Sqlite => "sqlite",
    }
}

/// The value of `db.namespace`: the PostgreSQL database name, or the SQLite file.
pub fn namespace(url: &DatabaseUrl) -> String {
    match url {
        DatabaseUrl::Postgres(u) => u.database(),
        DatabaseUrl::Sqlite(SqliteTarget::File(path)) => path.display().to_string(),
        DatabaseUrl::Sqlite(_) => ":memory:".to_owned(),
    }
}

/// The diesel instrumentation of every connection of a pool: echo, slow-statement log, spans
/// and statement metrics, as the configuration asks.
#[derive(Debug)]
pub struct StatementInstrumentation {
    echo: bool,
    slow: Option<Duration>,
    metrics: bool,
    system: &'static str,
    namespace: Arc<str>,
    started: Option<Instant>,
    span: Option<tracing::Span>,
}

impl StatementInstrumentation {
    /// The instrumentation for connections of `config`, or `None` when nothing would be
    /// observed (no echo, no slow log, no metrics, and no subscriber wanting statement spans).
    pub fn for_config(config: &DatabaseConfig) -> Option<Self> {
        let spans = tracing::enabled!(target: STATEMENT_TARGET, tracing::Level::DEBUG);
        if !config.echo && config.slow_statement_threshold.is_none() && !config.metrics && !spans {
            return None;
        }
        Some(StatementInstrumentation {
            echo: config.echo,
            slow: config.slow_statement_threshold,
            metrics: config.metrics,
            system: system_name(config.dialect()),
            namespace: Arc::from(namespace(&config.url)),
            started: None,
            span: None,
        })
    }
}

impl Instrumentation for StatementInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => {
                let span = tracing::debug_span!(
                    target: STATEMENT_TARGET,
                    "db.statement",
                    db.system.name = self.system,
                    db.namespace = &*self.namespace,
                    db.operation.name = tracing::field::Empty,
                    db.query.summary = tracing::field::Empty,
                    error.type = tracing::field::Empty,
                );
                self.span = (!span.is_disabled()).then_some(span);
                self.started = Some(Instant::now());
            }
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                let elapsed = self.started.take().map(|s| s.elapsed()).unwrap_or_default();
                let span = self.span.take();
                let slow = self.slow.is_some_and(|t| elapsed >= t);
                if self.echo {
                    let elapsed_us = elapsed.as_micros();
                    match error {
                        None => tracing::info!(target: ECHO_TARGET, elapsed_us, "{query}"),
                        Some(e) => tracing::warn!(target: ECHO_TARGET, elapsed_us, error = %e, "{query}"),
                    }
                }
                if !slow && !self.metrics && span.is_none() {
                    return;
                }
                let sql = head(query);
                let (operation, collection) = summarize(&sql);
                let error_type = error.map(error_type);
                if let Some(span) = span {
                    span.record("db.operation.name", operation);
                    match collection {
                        Some(c) => span.record("db.query.summary", format!("{operation} {c}")),
                        None => span.record("db.query.summary", operation),
                    };
                    if let Some(t) = &error_type {
                        span.record("error.type", t.as_str());
                    }
                }
                if slow {
                    tracing::warn!(
                        target: SLOW_TARGET,
                        elapsed_ms = elapsed.as_millis() as u64,
                        db.system.name = self.system,
                        db.namespace = &*self.namespace,
                        "slow statement ({} ms): {}",
                        elapsed.as_millis(),
                        sql
                    );
                }
                if self.metrics {
                    let mut labels = vec![
                        ("db.system.name", self.system.to_owned()),
                        ("db.operation.name", operation.to_owned()),
                    ];
                    if let Some(c) = collection {
                        labels.push(("db.collection.name", c.to_owned()));
                    }
                    if let Some(t) = error_type {
                        labels.push(("error.type", t));
                    }
                    metrics::histogram!(OPERATION_DURATION, &labels).record(elapsed.as_secs_f64());
                }
            }
            InstrumentationEvent::BeginTransaction { depth, .. } if self.echo => {
                tracing::info!(target: ECHO_TARGET, depth = depth.get(), "BEGIN");
            }
            InstrumentationEvent::CommitTransaction { depth, .. } if self.echo => {
                tracing::info!(target: ECHO_TARGET, depth = depth.get(), "COMMIT");
            }
            InstrumentationEvent::RollbackTransaction { depth, .. } if self.echo => {
                tracing::info!(target: ECHO_TARGET, depth = depth.get(), "ROLLBACK");
            }
            _ => {}
        }
    }
}

/// The statement's SQL, at most 1,000 bytes, without its bind values.
fn head(query: &dyn std::fmt::Display) -> String {
    struct Capped(String);
    impl std::fmt::Write for Capped {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = 1000usize.saturating_sub(self.0.len());
            if s.len() <= room {
                self.0.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.0.push_str(&s[..end]);
            Err(std::fmt::Error)
        }
    }
    let mut out = Capped(String::with_capacity(256));
    let _ = write!(out, "{query}");
    let mut sql = out.0;
    if let Some(at) = sql.find(" -- binds:") {
        sql.truncate(at);
    }
    sql
}

/// A low-cardinality summary of a statement: its operation (the first keyword) and the table it
/// is about (after `INTO`, `UPDATE`, `FROM`), e.g. `("SELECT", Some("flow_run"))`.
///
/// ```
/// use prefect_db_config::observe::summarize;
/// assert_eq!(summarize(r#"SELECT "flow_run"."id" FROM "flow_run" WHERE x = $1"#), ("SELECT", Some("flow_run")));
/// assert_eq!(summarize("insert into log (id) values (?)"), ("INSERT", Some("log")));
/// assert_eq!(summarize("BEGIN"), ("BEGIN", None));
/// ```
pub fn summarize(sql: &str) -> (&'static str, Option<&str>) {
    const OPERATIONS: &[&str] = &[
        "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "CREATE",
        "DROP", "ALTER", "PRAGMA", "EXPLAIN", "ANALYZE", "VACUUM", "LOCK", "SHOW", "VALUES",
    ];
    let trimmed = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
    let first: String = trimmed.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_uppercase();
    let operation = OPERATIONS.iter().copied().find(|op| *op == first).unwrap_or("OTHER");
    let upper = sql.to_ascii_uppercase();
    let after = match operation {
        "INSERT" => upper.find(" INTO ").map(|i| i + 6),
        "UPDATE" => Some(sql.len() - trimmed.len() + 6),
        "DELETE" | "SELECT" | "WITH" => upper.find(" FROM ").map(|i| i + 6),
        _ => None,
    };
    let collection = after.and_then(|at| {
        let rest = sql.get(at..)?.trim_start();
        let name: &str = rest.split(|c: char| c.is_whitespace() || c == '(' || c == ',' || c == ';').next()?;
        let name = name.rsplit('.').next()?.trim_matches(|c| c == '"' || c == '`' || c == '[' || c == ']');
        (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')).then_some(name)
    });
    (operation, collection)
}

/// The `error.type` of a failed statement: the database's error kind, snake_cased.
fn error_type(e: &diesel::result::Error) -> String {
    use diesel::result::{DatabaseErrorKind as K, Error as D};
    match e {
        D::DatabaseError(kind, info) => match kind {
            K::UniqueViolation => "unique_violation".to_owned(),
            K::ForeignKeyViolation => "foreign_key_violation".to_owned(),
            K::CheckViolation => "check_violation".to_owned(),
            K::NotNullViolation => "not_null_violation".to_owned(),
            K::SerializationFailure => "serialization_failure".to_owned(),
            K::ReadOnlyTransaction => "read_only_transaction".to_owned(),
            K::ClosedConnection | K::UnableToSendCommand => "connection_closed".to_owned(),
            _ if info.message().contains("statement timeout") => "statement_timeout".to_owned(),
            _ if info.message().contains("locked") || info.message().contains("lock timeout") => "locked".to_owned(),
            _ if info.message().contains("deadlock") => "deadlock".to_owned(),
            _ => "database_error".to_owned(),
        },
        D::NotFound => "not_found".to_owned(),
        D::DeserializationError(_) => "deserialization".to_owned(),
        D::SerializationError(_) => "serialization".to_owned(),
        _ => "_OTHER".to_owned(),
    }
}

/// Records the pool's gauges after a checkout (`waited` long), when metrics are on.
pub(crate) fn record_checkout(config: &DatabaseConfig, status: crate::pool::PoolStatus, waited: Duration) {
    if !config.metrics {
        return;
    }
    let system = system_name(config.dialect());
    let used = status.size.saturating_sub(status.available);
    metrics::gauge!(CONNECTION_COUNT, "db.system.name" => system, "db.client.connection.state" => "idle").set(status.available as f64);
    metrics::gauge!(CONNECTION_COUNT, "db.system.name" => system, "db.client.connection.state" => "used").set(used as f64);
    metrics::gauge!(CONNECTION_MAX, "db.system.name" => system).set(status.max_size as f64);
    metrics::gauge!(CONNECTION_PENDING, "db.system.name" => system).set(status.waiting as f64);
    metrics::histogram!(CONNECTION_WAIT_TIME, "db.system.name" => system).record(waited.as_secs_f64());
}

/// Counts a checkout that gave up, when metrics are on.
pub(crate) fn record_checkout_timeout(config: &DatabaseConfig) {
    if config.metrics {
        metrics::counter!(CONNECTION_TIMEOUTS, "db.system.name" => system_name(config.dialect())).increment(1);
    }
}
