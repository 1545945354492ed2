//! Raw SQL text that differs per dialect, in one place.
//!
//! The polling queries are written once as SQL text with calls into [`SqlDialect`] wherever the
//! two dialects spell something differently; everything else in those queries is shared.
//! Placeholders are numbered on both dialects (`$1` on PostgreSQL, `?1` on SQLite), so a value
//! is bound once and may be referenced several times.

use crate::prepared::Prepared;
use prefect_db_config::Dialect;

/// The spelling of SQL constructs that differ between PostgreSQL and SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SqlDialect(pub(crate) Dialect);

impl SqlDialect {
    /// The `n`-th (1-based) bind placeholder.
    pub(crate) fn placeholder(self, n: usize) -> String {
        match self.0 {
            Dialect::Postgres => format!("${n}"),
            Dialect::Sqlite => format!("?{n}"),
        }
    }

    /// The larger of two non-NULL values (`GREATEST` on PostgreSQL, scalar `max` on SQLite).
    pub(crate) fn greatest(self, a: &str, b: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("GREATEST({a}, {b})"),
            Dialect::Sqlite => format!("max({a}, {b})"),
        }
    }

    /// The smaller of two non-NULL values (`LEAST` on PostgreSQL, scalar `min` on SQLite).
    /// Callers make both sides non-NULL (`COALESCE`): the dialects treat NULL differently.
    pub(crate) fn least(self, a: &str, b: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("LEAST({a}, {b})"),
            Dialect::Sqlite => format!("min({a}, {b})"),
        }
    }

    /// `col` is the value bound at placeholder `p`, spelled so that a statement ordered by `col`
    /// first has its order served only by an index that leads with `col`. PostgreSQL: a range
    /// of one value (an equality makes the column a constant, dropped from the order, and the
    /// planner may then walk another column's index and filter). SQLite keeps the equality: its
    /// planner reads the column's index for it, and the range would lose the index's order.
    pub(crate) fn pinned(self, col: &str, p: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("({col} >= {p} AND {col} <= {p})"),
            Dialect::Sqlite => format!("({col} = {p})"),
        }
    }

    /// A top-level JSON object field as text (`->>` on PostgreSQL, `json_extract` on SQLite).
    pub(crate) fn json_text_field(self, expr: &str, key: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("({expr} ->> '{key}')"),
            Dialect::Sqlite => format!("json_extract({expr}, '$.{key}')"),
        }
    }

    /// A `FROM` item (named `alias`) of the key/value entries of `expr` when it is a JSON
    /// object, with columns `key` and `value`; no rows for anything else (`jsonb_each` on
    /// PostgreSQL, `json_each` on SQLite, whose text may also be malformed JSON).
    pub(crate) fn json_object_entries(self, expr: &str, alias: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!(
                "LATERAL jsonb_each(CASE WHEN jsonb_typeof({expr}) = 'object' THEN {expr} \
                 ELSE CAST('{{}}' AS jsonb) END) AS {alias}(key, value)"
            ),
            Dialect::Sqlite => format!(
                "json_each(CASE WHEN NOT json_valid({expr}) THEN '{{}}' \
                 WHEN json_type({expr}) = 'object' THEN {expr} ELSE '{{}}' END) AS {alias}"
            ),
        }
    }

    /// A `FROM` item (named `alias`, column `value`) of the elements of the value of the
    /// entry `entry` (a [`json_object_entries`](Self::json_object_entries) item) when that
    /// value is a JSON array; no rows for anything else.
    pub(crate) fn json_entry_array_elements(self, entry: &str, alias: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!(
                "LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof({entry}.value) = 'array' \
                 THEN {entry}.value ELSE CAST('[]' AS jsonb) END) AS {alias}(value)"
            ),
            Dialect::Sqlite => format!(
                "json_each(CASE WHEN {entry}.type = 'array' THEN {entry}.value ELSE '[]' END) AS {alias}"
            ),
        }
    }

    /// The field `key` as text of the element `element` (a
    /// [`json_entry_array_elements`](Self::json_entry_array_elements) item) when that element
    /// is a JSON object; NULL otherwise.
    pub(crate) fn json_element_field_text(self, element: &str, key: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("({element}.value ->> '{key}')"),
            Dialect::Sqlite => format!(
                "(CASE WHEN {element}.type = 'object' THEN json_extract({element}.value, '$.{key}') END)"
            ),
        }
    }

    /// A UUID or enum column as text (PostgreSQL casts; SQLite stores text already).
    pub(crate) fn as_text(self, expr: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("CAST({expr} AS TEXT)"),
            Dialect::Sqlite => expr.to_owned(),
        }
    }

    /// An index hint after a table name in `FROM`: SQLite's `INDEXED BY` (its planner has no
    /// statistics in a Prefect database and can pick an index that reads every run);
    /// PostgreSQL plans from its own statistics and takes no hint.
    pub(crate) fn indexed_by(self, index: &str) -> String {
        match self.0 {
            Dialect::Postgres => String::new(),
            Dialect::Sqlite => format!(" INDEXED BY {index}"),
        }
    }

    /// The literal `true` or `false` (`1`/`0` on SQLite).
    pub(crate) fn lit_bool(self, b: bool) -> &'static str {
        match (self.0, b) {
            (Dialect::Postgres, true) => "true",
            (Dialect::Postgres, false) => "false",
            (Dialect::Sqlite, true) => "1",
            (Dialect::Sqlite, false) => "0",
        }
    }

    /// `expr IS true` / `IS false` (`IS 1` / `IS 0` on SQLite).
    pub(crate) fn is_bool(self, expr: &str, b: bool) -> String {
        format!("({expr} IS {})", self.lit_bool(b))
    }

    /// Case-insensitive `LIKE` with PostgreSQL's meaning on both dialects: `ILIKE` (Unicode
    /// case folding under a UTF-8 database, `\` the escape character); on SQLite both sides are
    /// lowered by the connection's Unicode `prefect_lower` (SQLite's own folds ASCII only).
    pub(crate) fn ilike(self, expr: &str, pattern: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("({expr} ILIKE {pattern})"),
            Dialect::Sqlite => {
                let lower = prefect_db_config::conn::SQLITE_UNICODE_LOWER;
                format!("({lower}({expr}) LIKE {lower}({pattern}) ESCAPE '\\')")
            }
        }
    }

    /// `lower(expr)` with Unicode case folding on both dialects.
    pub(crate) fn lower(self, expr: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("lower({expr})"),
            Dialect::Sqlite => format!("{}({expr})", prefect_db_config::conn::SQLITE_UNICODE_LOWER),
        }
    }

    /// Whether the JSON array `expr` holds every one of the strings `values` (placeholders).
    pub(crate) fn json_has_all(self, expr: &str, values: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("({expr} ?& CAST(ARRAY[{values}] AS TEXT[]))"),
            Dialect::Sqlite => format!(
                "((SELECT count(DISTINCT a.value) FROM json_each({expr}) a JOIN json_each(json_array({values})) b \
                 ON a.value = b.value) >= (SELECT count(DISTINCT b.value) FROM json_each(json_array({values})) b))"
            ),
        }
    }

    /// Whether the JSON array `expr` holds at least one of the strings `values` (placeholders).
    pub(crate) fn json_has_any(self, expr: &str, values: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("({expr} ?| CAST(ARRAY[{values}] AS TEXT[]))"),
            Dialect::Sqlite => format!(
                "(EXISTS (SELECT 1 FROM json_each({expr}) a, json_each(json_array({values})) b WHERE a.value = b.value))"
            ),
        }
    }

    /// Whether the JSON column `expr` is (or is not) the empty list `[]`.
    pub(crate) fn json_is_empty_list(self, expr: &str, empty: bool) -> String {
        let op = if empty { "=" } else { "!=" };
        match self.0 {
            Dialect::Postgres => format!("({expr} {op} CAST('[]' AS jsonb))"),
            Dialect::Sqlite => format!("({expr} {op} '[]')"),
        }
    }

    /// One `ORDER BY` term with PostgreSQL's NULL placement on both dialects: NULLs after every
    /// value ascending, before every value descending (SQLite's default is the opposite).
    pub(crate) fn order_term(self, expr: &str, asc: bool) -> String {
        match (self.0, asc) {
            (Dialect::Postgres, true) => format!("{expr} ASC"),
            (Dialect::Postgres, false) => format!("{expr} DESC"),
            (Dialect::Sqlite, true) => format!("{expr} ASC NULLS LAST"),
            (Dialect::Sqlite, false) => format!("{expr} DESC NULLS FIRST"),
        }
    }

    /// A timestamp or interval column as whole microseconds since the epoch (an interval: its
    /// length), exact on both dialects (SQLite stores both as text).
    pub(crate) fn micros(self, expr: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!("CAST(floor(EXTRACT(EPOCH FROM {expr}) * 1000000) AS BIGINT)"),
            Dialect::Sqlite => format!(
                "(CAST(strftime('%s', substr({expr}, 1, 19)) AS INTEGER) * 1000000 + CAST(substr({expr}, 21, 6) AS INTEGER))"
            ),
        }
    }

    /// The row-locking clause of a worker poll: PostgreSQL locks the candidate runs and skips
    /// those another poller holds; SQLite has no row locks (writers are serialised).
    pub(crate) fn skip_locked(self, alias: &str) -> String {
        match self.0 {
            Dialect::Postgres => format!(" FOR UPDATE OF {alias} SKIP LOCKED"),
            Dialect::Sqlite => String::new(),
        }
    }
}

/// A list of numbered placeholders starting at `first`, comma-separated.
pub(crate) fn placeholders(d: SqlDialect, first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| d.placeholder(n))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value bound to a placeholder of a statement (PostgreSQL types: `uuid`, `timestamptz`,
/// `bigint`, `text`; SQLite stores them as Prefect does: UUID and timestamp text, integers).
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    /// A UUID (`PUuid`).
    Uuid(uuid::Uuid),
    /// A timestamp (`PTimestamp`).
    Time(chrono::DateTime<chrono::Utc>),
    /// A 64-bit integer.
    Int(i64),
    /// Text.
    Text(String),
}

/// Collects bind values and hands out their numbered placeholders.
#[derive(Debug)]
pub(crate) struct Binder {
    pub(crate) dialect: SqlDialect,
    pub(crate) binds: Vec<Bind>,
}

impl Binder {
    pub(crate) fn new(dialect: SqlDialect) -> Self {
        Binder {
            dialect,
            binds: Vec::new(),
        }
    }

    /// Binds a value and returns its placeholder.
    pub(crate) fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        self.dialect.placeholder(self.binds.len())
    }

    /// Binds every value of a list and returns the placeholders, comma-separated.
    pub(crate) fn bind_list(&mut self, values: impl IntoIterator<Item = Bind>) -> String {
        let first = self.binds.len() + 1;
        self.binds.extend(values);
        placeholders(self.dialect, first, self.binds.len() + 1 - first)
    }
}

fn bind_all<'a, DB>(
    mut query: diesel::query_builder::BoxedSqlQuery<'a, DB, diesel::query_builder::SqlQuery>,
    binds: Vec<Bind>,
) -> diesel::query_builder::BoxedSqlQuery<'a, DB, diesel::query_builder::SqlQuery>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<prefect_orm::types::PUuid>
        + diesel::sql_types::HasSqlType<prefect_orm::types::PTimestamp>
        + diesel::sql_types::HasSqlType<diesel::sql_types::BigInt>
        + diesel::sql_types::HasSqlType<diesel::sql_types::Text>,
    prefect_orm::types::Val<uuid::Uuid>: diesel::serialize::ToSql<prefect_orm::types::PUuid, DB>,
    String: diesel::serialize::ToSql<diesel::sql_types::Text, DB>,
    prefect_orm::types::Val<chrono::DateTime<chrono::Utc>>:
        diesel::serialize::ToSql<prefect_orm::types::PTimestamp, DB>,
    i64: diesel::serialize::ToSql<diesel::sql_types::BigInt, DB>,
{
    use prefect_orm::types::{PTimestamp, PUuid, Val};
    for bind in binds {
        query = match bind {
            Bind::Uuid(u) => query.bind::<PUuid, _>(Val(u)),
            Bind::Time(t) => query.bind::<PTimestamp, _>(Val(t)),
            Bind::Int(n) => query.bind::<diesel::sql_types::BigInt, _>(n),
            Bind::Text(t) => query.bind::<diesel::sql_types::Text, _>(t),
        };
    }
    query
}

/// Whether a raw statement is kept prepared on its connection: the statements of this crate
/// differ in text only with the lists they bind, so one with few binds comes from a small set.
fn keep_prepared(binds: &[Bind]) -> bool {
    binds.len() <= 64
}

/// Runs a raw query with its binds and loads the rows by column name; kept prepared on the
/// connection when it has few binds.
pub(crate) async fn load_raw<R>(
    conn: &mut prefect_db_config::Conn<'_>,
    sql: String,
    binds: Vec<Bind>,
) -> crate::QueryResult<Vec<R>>
where
    R: RawRow,
{
    use prefect_db_config::Conn;
    tracing::trace!(%sql, binds = binds.len(), "raw query");
    let keep = keep_prepared(&binds);
    Ok(match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            let query = bind_all(diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>(), binds);
            diesel_async::RunQueryDsl::load::<R>(Prepared::when(keep, query), &mut **c).await?
        }
        // One hop to the connection's thread, rows decoded where SQLite returns them (no copy
        // of each row to carry it across threads).
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            c.spawn_blocking(move |c| {
                let query = bind_all(
                    diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>(),
                    binds,
                );
                diesel::RunQueryDsl::load::<R>(Prepared::when(keep, query), c)
            })
            .await?
        }
    })
}

/// A row a raw query can load on every compiled-in backend.
#[cfg(all(feature = "postgres", feature = "sqlite"))]
pub(crate) trait RawRow:
    diesel::QueryableByName<diesel::pg::Pg>
    + diesel::QueryableByName<diesel::sqlite::Sqlite>
    + Send
    + 'static
{
}
#[cfg(all(feature = "postgres", feature = "sqlite"))]
impl<T> RawRow for T where
    T: diesel::QueryableByName<diesel::pg::Pg>
        + diesel::QueryableByName<diesel::sqlite::Sqlite>
        + Send
        + 'static
{
}
/// A row a raw query can load on every compiled-in backend.
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
pub(crate) trait RawRow: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static {}
#[cfg(all(feature = "postgres", not(feature = "sqlite")))]
impl<T> RawRow for T where T: diesel::QueryableByName<diesel::pg::Pg> + Send + 'static {}
/// A row a raw query can load on every compiled-in backend.
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
pub(crate) trait RawRow:
    diesel::QueryableByName<diesel::sqlite::Sqlite> + Send + 'static
{
}
#[cfg(all(feature = "sqlite", not(feature = "postgres")))]
impl<T> RawRow for T where T: diesel::QueryableByName<diesel::sqlite::Sqlite> + Send + 'static {}

/// Runs a raw statement with its binds; returns the number of rows affected. It is kept
/// prepared when `keep` (the caller knows its text comes from a small set) or when it has few
/// binds.
pub(crate) async fn execute_raw(
    conn: &mut prefect_db_config::Conn<'_>,
    sql: String,
    binds: Vec<Bind>,
    keep: bool,
) -> crate::QueryResult<usize> {
    use diesel_async::RunQueryDsl;
    use prefect_db_config::Conn;
    tracing::trace!(%sql, binds = binds.len(), "raw statement");
    let keep = keep || keep_prepared(&binds);
    Ok(match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            let query = bind_all(diesel::sql_query(sql).into_boxed::<diesel::pg::Pg>(), binds);
            Prepared::when(keep, query).execute(&mut **c).await?
        }
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            let query = bind_all(diesel::sql_query(sql).into_boxed::<diesel::sqlite::Sqlite>(), binds);
            Prepared::when(keep, query).execute(&mut **c).await?
        }
    })
}

/// Prefect 3.9.1's `make_timestamp_bucket_index`, exact to the microsecond on both dialects:
/// `floor((timestamp_expr - start) / interval)` as a BIGINT, for a positive interval of
/// `interval_us` microseconds. Binds `start` and the interval through `b`.
///
/// PostgreSQL computes it from `EXTRACT(EPOCH FROM …)` (exact); SQLite from the stored text
/// (`YYYY-MM-DD HH:MM:SS.ffffff`): whole seconds through `strftime('%s')` plus the six fraction
/// digits, in integers (Prefect's SQLite version goes through `julianday` and rounds to
/// milliseconds).
pub(crate) fn bucket_index_sql(
    b: &mut Binder,
    timestamp_expr: &str,
    start: chrono::DateTime<chrono::Utc>,
    interval_us: i64,
) -> String {
    match b.dialect.0 {
        Dialect::Postgres => {
            let start = b.bind(Bind::Time(start));
            let n = b.bind(Bind::Int(interval_us));
            format!(
                "CAST(floor((EXTRACT(EPOCH FROM ({timestamp_expr} - {start})) * 1000000) / {n}) AS BIGINT)"
            )
        }
        Dialect::Sqlite => {
            let start = b.bind(Bind::Int(start.timestamp_micros()));
            let n = b.bind(Bind::Int(interval_us));
            let d = format!(
                "(CAST(strftime('%s', substr({timestamp_expr}, 1, 19)) AS INTEGER) * 1000000 \
                 + CAST(substr({timestamp_expr}, 21, 6) AS INTEGER) - {start})"
            );
            format!("(CASE WHEN {d} >= 0 THEN {d} / {n} ELSE -((-{d} + {n} - 1) / {n}) END)")
        }
    }
}
