//! Is this database's schema exactly Prefect 3.9.1's?
//!
//! A Rust reimplementation of the canonical schema dump of `schema_canon.py` (the tool that made
//! the reference dumps): the same JSON shape, the same normalisation, the same bookkeeping tables
//! ignored (`alembic_version`, `__diesel_schema_migrations`, …), for a live SQLite or PostgreSQL
//! connection; plus its `diff` (same paths, same line format) and the canonical dumps of
//! databases migrated by real Prefect 3.9.1 ([`PREFECT_3_9_1_SQLITE`],
//! [`PREFECT_3_9_1_POSTGRES`]).
//!
//! Shape (SQLite): `{"tables": {T: {"columns": {C: {"type", "notnull", "default", "pk"}},
//! "indexes": {I: {"unique", "origin", "columns", "where", "sql"}}, "foreign_keys": [...],
//! "checks": [...], "constraint_names": [...]}}}`, where unnamed automatic indexes are keyed
//! `auto(col,…)`. Shape (PostgreSQL): `{"enums": {E: [labels]}, "extensions": [...],
//! "tables": {T: {"columns": {C: {"type", "notnull", "default"}}, "indexes": {I: def},
//! "constraints": {N: {"type", "def"}}}}}`. Whitespace runs in SQL text are collapsed to one
//! space and `public.` qualifications are removed.
//!
//! PostgreSQL is read in the connection's current schema (`current_schema()`); the Python tool
//! reads `public`, which is the same thing with the default `search_path`. A non-`public`
//! current schema's own qualification is removed as well, so such a database compares equal.

use serde_json::{Map, Value, json};
use std::fmt::Write as _;

/// The canonical dump of a SQLite database migrated by real Prefect 3.9.1.
pub const PREFECT_3_9_1_SQLITE: &str = include_str!("../golden/prefect-3.9.1-sqlite.schema.json");

/// The canonical dump of a PostgreSQL database migrated by real Prefect 3.9.1.
pub const PREFECT_3_9_1_POSTGRES: &str =
    include_str!("../golden/prefect-3.9.1-postgres.schema.json");

/// Why a schema could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaCheckError {
    /// A catalog query failed.
    #[error("database error while reading the schema: {0}")]
    Database(#[from] diesel::result::Error),
    /// JSON (an embedded golden dump or a catalog query's output) could not be parsed.
    #[error("invalid JSON in {what}: {source}")]
    Json {
        /// What was being parsed.
        what: String,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

/// The dialect of a schema dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SchemaDialect {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// A live connection to dump.
#[non_exhaustive]
pub enum LiveConnection<'a> {
    /// An SQLite connection (read synchronously).
    #[cfg(feature = "sqlite")]
    Sqlite(&'a mut diesel::SqliteConnection),
    /// A PostgreSQL connection.
    #[cfg(feature = "postgres")]
    Postgres(&'a mut diesel_async::AsyncPgConnection),
}

/// The canonical dump of a database migrated by real Prefect 3.9.1.
pub fn golden_prefect_3_9_1(dialect: SchemaDialect) -> Result<Value, SchemaCheckError> {
    let (text, what) = match dialect {
        SchemaDialect::Sqlite => (PREFECT_3_9_1_SQLITE, "prefect-3.9.1-sqlite.schema.json"),
        SchemaDialect::Postgres => (PREFECT_3_9_1_POSTGRES, "prefect-3.9.1-postgres.schema.json"),
    };
    serde_json::from_str(text).map_err(|source| SchemaCheckError::Json {
        what: what.into(),
        source,
    })
}

/// Whether the dump ignores this table (migration bookkeeping and SQLite internals), as
/// `schema_canon.py`'s `BOOKKEEPING` pattern does.
pub fn is_bookkeeping_table(name: &str) -> bool {
    matches!(
        name,
        "alembic_version"
            | "__diesel_schema_migrations"
            | "schema_migrations"
            | "_schema_migrations"
            | "_sqlx_migrations"
            | "refinery_schema_history"
    ) || name.starts_with("sqlite_")
}

/// Dumps a live database and compares it with Prefect 3.9.1's schema for its dialect.
/// Returns the differences ([`diff`] of the live dump against the golden one: `-` lines are only
/// in the database, `+` lines only in Prefect 3.9.1); empty means identical.
///
/// The SQLite variant blocks while it reads; call it from `spawn_blocking` if that matters.
pub async fn check_against_prefect_3_9_1(
    conn: LiveConnection<'_>,
) -> Result<Vec<String>, SchemaCheckError> {
    match conn {
        #[cfg(feature = "sqlite")]
        LiveConnection::Sqlite(c) => check_sqlite_against_prefect_3_9_1(c),
        #[cfg(feature = "postgres")]
        LiveConnection::Postgres(c) => check_postgres_against_prefect_3_9_1(c).await,
    }
}

/// [`check_against_prefect_3_9_1`] for SQLite, synchronous.
#[cfg(feature = "sqlite")]
pub fn check_sqlite_against_prefect_3_9_1(
    conn: &mut diesel::SqliteConnection,
) -> Result<Vec<String>, SchemaCheckError> {
    let live = canonical_sqlite(conn)?;
    Ok(diff(&live, &golden_prefect_3_9_1(SchemaDialect::Sqlite)?))
}

/// [`check_against_prefect_3_9_1`] for PostgreSQL.
#[cfg(feature = "postgres")]
pub async fn check_postgres_against_prefect_3_9_1(
    conn: &mut diesel_async::AsyncPgConnection,
) -> Result<Vec<String>, SchemaCheckError> {
    let live = canonical_postgres(conn).await?;
    Ok(diff(&live, &golden_prefect_3_9_1(SchemaDialect::Postgres)?))
}

// ------------------------------------------------------------------------------------------
// diff and JSON text as Python writes it
// ------------------------------------------------------------------------------------------

/// The differences between two dumps, exactly as `schema_canon.py diff A B` lists them:
/// `+ /path: only in second`, `- /path: only in first`, `~ /path: <a> != <b>` (values as
/// Python's `json.dumps` writes them), object keys visited in sorted order, anything but
/// objects compared whole.
pub fn diff(a: &Value, b: &Value) -> Vec<String> {
    let mut found = Vec::new();
    diff_into(a, b, "", &mut found);
    found
}

fn diff_into(a: &Value, b: &Value, path: &str, found: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let sub = format!("{path}/{k}");
                match (a.get(k), b.get(k)) {
                    (None, _) => found.push(format!("+ {sub}: only in second")),
                    (_, None) => found.push(format!("- {sub}: only in first")),
                    (Some(x), Some(y)) => diff_into(x, y, &sub, found),
                }
            }
        }
        _ if a != b => {
            found.push(format!(
                "~ {path}: {} != {}",
                python_json(a),
                python_json(b)
            ));
        }
        _ => {}
    }
}

/// `json.dumps(v)` as Python writes it: `", "` and `": "` separators, non-ASCII escaped.
/// Object keys come in the map's (sorted) order, as after `json.load` of a `sort_keys` dump.
pub fn python_json(v: &Value) -> String {
    let mut out = String::new();
    write_python_json(v, &mut out);
    out
}

fn write_python_json(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_python_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_str(k, out);
                out.push_str(": ");
                write_python_json(item, out);
            }
            out.push('}');
        }
    }
}

fn write_python_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7f => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ------------------------------------------------------------------------------------------
// Text helpers mirroring the Python regular expressions
// ------------------------------------------------------------------------------------------

/// `re.sub(r"\s+", " ", s).strip()`.
fn ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Removes every `qualifier.` that starts at a word boundary (`re.sub(r"\bpublic\.", "", s)`;
/// like `re.sub`, the boundary is judged on the original text).
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
fn strip_qualifier(s: &str, qualifier: &str) -> String {
    let needle = format!("{qualifier}.");
    let starts_word = qualifier.chars().next().is_some_and(is_word);
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (i, _) in s.match_indices(&needle) {
        if starts_word && s[..i].chars().next_back().is_some_and(is_word) {
            continue;
        }
        out.push_str(&s[last..i]);
        last = i + needle.len();
    }
    out.push_str(&s[last..]);
    out
}

/// The text after the last word `WHERE` (any case), collapsed; `None` without one.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn where_clause(sql: &str) -> Option<String> {
    let lower: Vec<(usize, char)> = sql.char_indices().collect();
    let mut last_end = None;
    for (n, &(i, _)) in lower.iter().enumerate() {
        let Some(word) = sql.get(i..i + 5) else {
            continue;
        };
        if !word.eq_ignore_ascii_case("where") {
            continue;
        }
        let before_ok = n == 0 || !is_word(lower[n - 1].1);
        let after = sql[i + 5..].chars().next();
        if before_ok && !after.is_some_and(is_word) {
            last_end = Some(i + 5);
        }
    }
    last_end.map(|end| ws(&sql[end..]))
}

/// `re.findall(r"CHECK\s*\((.*?)\)\s*(?:,|\n|\)$)", sql, re.S)`.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn check_bodies(sql: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(rel) = sql[pos..].find("CHECK") {
        let at = pos + rel;
        match check_at(sql, at) {
            Some((body, end)) => {
                found.push(body);
                pos = end;
            }
            None => pos = at + 1,
        }
    }
    found
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn check_at(sql: &str, at: usize) -> Option<(String, usize)> {
    let after_kw = at + "CHECK".len();
    let open = after_kw + leading_ws_len(&sql[after_kw..]);
    if !sql[open..].starts_with('(') {
        return None;
    }
    let start = open + 1;
    for (off, _) in sql[start..].match_indices(')') {
        let close = start + off;
        if let Some(end) = check_terminator(sql, close + 1) {
            return Some((sql[start..close].to_owned(), end));
        }
    }
    None
}

/// Matches `\s*(?:,|\n|\)$)` at `p` the way a backtracking engine does; returns the match end.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn check_terminator(sql: &str, p: usize) -> Option<usize> {
    let run: Vec<usize> = sql[p..]
        .char_indices()
        .take_while(|(_, c)| c.is_whitespace())
        .map(|(i, c)| p + i + c.len_utf8())
        .collect();
    // positions after consuming 0..=run.len() whitespace characters, greedy first
    let mut positions = vec![p];
    positions.extend(run);
    for &q in positions.iter().rev() {
        let rest = &sql[q..];
        if rest.starts_with(',') || rest.starts_with('\n') {
            return Some(q + 1);
        }
        if rest == ")" || rest == ")\n" {
            return Some(q + 1);
        }
    }
    None
}

#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn leading_ws_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !c.is_whitespace())
        .map_or(s.len(), |(i, _)| i)
}

/// `re.findall(r"CONSTRAINT\s+(\w+)", sql)`.
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
fn constraint_names(sql: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(rel) = sql[pos..].find("CONSTRAINT") {
        let at = pos + rel;
        let after_kw = at + "CONSTRAINT".len();
        let gap = leading_ws_len(&sql[after_kw..]);
        let name_start = after_kw + gap;
        let name_len = sql[name_start..]
            .char_indices()
            .find(|(_, c)| !is_word(*c))
            .map_or(sql.len() - name_start, |(i, _)| i);
        if gap > 0 && name_len > 0 {
            found.push(sql[name_start..name_start + name_len].to_owned());
            pos = name_start + name_len;
        } else {
            pos = at + 1;
        }
    }
    found
}

// ------------------------------------------------------------------------------------------
// SQLite
// ------------------------------------------------------------------------------------------

#[cfg(feature = "sqlite")]
mod sqlite_rows {
    use diesel::QueryableByName;
    use diesel::sql_types::{Integer, Nullable, Text};

    #[derive(QueryableByName)]
    pub struct Name {
        #[diesel(sql_type = Text)]
        pub name: String,
    }

    #[derive(QueryableByName)]
    pub struct Sql {
        #[diesel(sql_type = Nullable<Text>)]
        pub sql: Option<String>,
    }

    #[derive(QueryableByName)]
    pub struct Column {
        #[diesel(sql_type = Text)]
        pub name: String,
        #[diesel(sql_type = Text)]
        pub typ: String,
        #[diesel(sql_type = Integer)]
        pub notnull: i32,
        #[diesel(sql_type = Nullable<Text>)]
        pub dflt: Option<String>,
        #[diesel(sql_type = Integer)]
        pub pk: i32,
    }

    #[derive(QueryableByName)]
    pub struct Index {
        #[diesel(sql_type = Text)]
        pub name: String,
        #[diesel(sql_type = Integer)]
        pub uniq: i32,
        #[diesel(sql_type = Text)]
        pub origin: String,
    }

    #[derive(QueryableByName)]
    pub struct IndexColumn {
        #[diesel(sql_type = Nullable<Text>)]
        pub name: Option<String>,
        #[diesel(sql_type = Integer)]
        pub key: i32,
    }

    #[derive(QueryableByName)]
    pub struct ForeignKey {
        #[diesel(sql_type = Text)]
        pub tbl: String,
        #[diesel(sql_type = Text)]
        pub from_col: String,
        #[diesel(sql_type = Nullable<Text>)]
        pub to_col: Option<String>,
        #[diesel(sql_type = Text)]
        pub on_update: String,
        #[diesel(sql_type = Text)]
        pub on_delete: String,
    }
}

/// The canonical dump of a live SQLite database (`schema_canon.py sqlite PATH`).
#[cfg(feature = "sqlite")]
pub fn canonical_sqlite(conn: &mut diesel::SqliteConnection) -> Result<Value, SchemaCheckError> {
    use diesel::RunQueryDsl;
    use diesel::sql_types::Text;
    use sqlite_rows::*;

    let master_sql = |conn: &mut diesel::SqliteConnection, name: &str| {
        diesel::sql_query("SELECT sql FROM sqlite_master WHERE name = ?")
            .bind::<Text, _>(name)
            .load::<Sql>(conn)
            .map(|rows| rows.into_iter().next().map(|r| r.sql))
    };

    let names: Vec<String> =
        diesel::sql_query("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .load::<Name>(conn)?
            .into_iter()
            .map(|r| r.name)
            .collect();

    let mut tables = Map::new();
    for t in names.iter().filter(|t| !is_bookkeeping_table(t)) {
        let mut cols = Map::new();
        let columns = diesel::sql_query(
            "SELECT name, type AS typ, \"notnull\", dflt_value AS dflt, pk \
             FROM pragma_table_xinfo(?) ORDER BY cid",
        )
        .bind::<Text, _>(t)
        .load::<Column>(conn)?;
        for c in columns {
            cols.insert(
                c.name,
                json!({
                    "type": c.typ.to_uppercase(),
                    "notnull": c.notnull != 0,
                    "default": c.dflt.as_deref().map(ws),
                    "pk": c.pk,
                }),
            );
        }

        let mut idx = Map::new();
        let indexes = diesel::sql_query(
            "SELECT name, \"unique\" AS uniq, origin FROM pragma_index_list(?) ORDER BY seq",
        )
        .bind::<Text, _>(t)
        .load::<Index>(conn)?;
        for i in indexes {
            let sql = master_sql(conn, &i.name)?
                .flatten()
                .filter(|s| !s.is_empty());
            let parts: Vec<String> =
                diesel::sql_query("SELECT name, \"key\" FROM pragma_index_xinfo(?) ORDER BY seqno")
                    .bind::<Text, _>(&i.name)
                    .load::<IndexColumn>(conn)?
                    .into_iter()
                    .filter(|c| c.key != 0)
                    .map(|c| c.name.unwrap_or_else(|| "<expr>".to_owned()))
                    .collect();
            let where_ = sql.as_deref().and_then(where_clause);
            let key = if i.name.starts_with("sqlite_autoindex") {
                format!("auto({})", parts.join(","))
            } else {
                i.name.clone()
            };
            idx.insert(
                key,
                json!({
                    "unique": i.uniq != 0,
                    "origin": i.origin,
                    "columns": parts,
                    "where": where_,
                    "sql": sql.as_deref().map(ws),
                }),
            );
        }

        let mut fk_lines: Vec<String> = diesel::sql_query(
            "SELECT \"table\" AS tbl, \"from\" AS from_col, \"to\" AS to_col, on_update, on_delete \
             FROM pragma_foreign_key_list(?) ORDER BY id, seq",
        )
        .bind::<Text, _>(t)
        .load::<ForeignKey>(conn)?
        .into_iter()
        .map(|f| {
            // json.dumps({"from", "table", "to", "on_delete", "on_update"}) in insertion order,
            // so that sorting these strings sorts as the Python tool does.
            let mut s = String::from("{\"from\": ");
            write_python_str(&f.from_col, &mut s);
            s.push_str(", \"table\": ");
            write_python_str(&f.tbl, &mut s);
            s.push_str(", \"to\": ");
            match &f.to_col {
                Some(to) => write_python_str(to, &mut s),
                None => s.push_str("null"),
            }
            s.push_str(", \"on_delete\": ");
            write_python_str(&f.on_delete, &mut s);
            s.push_str(", \"on_update\": ");
            write_python_str(&f.on_update, &mut s);
            s.push('}');
            s
        })
        .collect();
        fk_lines.sort();
        let fks = fk_lines
            .iter()
            .map(|line| {
                serde_json::from_str::<Value>(line).map_err(|source| SchemaCheckError::Json {
                    what: line.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let table_sql = master_sql(conn, t)?.flatten().unwrap_or_default();
        let mut checks: Vec<String> = check_bodies(&table_sql).iter().map(|c| ws(c)).collect();
        checks.sort();
        let mut named = constraint_names(&table_sql);
        named.sort();

        tables.insert(
            t.clone(),
            json!({
                "columns": cols,
                "indexes": idx,
                "foreign_keys": fks,
                "checks": checks,
                "constraint_names": named,
            }),
        );
    }
    Ok(json!({ "tables": tables }))
}

// ------------------------------------------------------------------------------------------
// PostgreSQL
// ------------------------------------------------------------------------------------------

/// Runs `sql` wrapped in `json_agg` (as `schema_canon.py` does) and returns its rows.
#[cfg(feature = "postgres")]
async fn pg_rows(
    conn: &mut diesel_async::AsyncPgConnection,
    sql: &str,
) -> Result<Vec<Map<String, Value>>, SchemaCheckError> {
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::RunQueryDsl;

    #[derive(QueryableByName)]
    struct Agg {
        #[diesel(sql_type = Text)]
        j: String,
    }

    let wrapped = format!("SELECT coalesce(json_agg(x), '[]'::json)::text AS j FROM ({sql}) x");
    let agg: Agg = diesel::sql_query(wrapped).get_result(conn).await?;
    let rows: Vec<Value> =
        serde_json::from_str(&agg.j).map_err(|source| SchemaCheckError::Json {
            what: sql.to_owned(),
            source,
        })?;
    Ok(rows
        .into_iter()
        .filter_map(|r| match r {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect())
}

#[cfg(feature = "postgres")]
fn text_field(row: &Map<String, Value>, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The canonical dump of a live PostgreSQL database's current schema
/// (`schema_canon.py postgres CONNINFO`).
#[cfg(feature = "postgres")]
pub async fn canonical_postgres(
    conn: &mut diesel_async::AsyncPgConnection,
) -> Result<Value, SchemaCheckError> {
    let schema = pg_rows(conn, "SELECT quote_ident(current_schema()) AS s").await?;
    let own_qualifier = schema
        .first()
        .map(|r| text_field(r, "s"))
        .filter(|s| s != "public");
    let normalise = |s: &str| {
        let mut s = strip_qualifier(s, "public");
        if let Some(q) = &own_qualifier {
            s = strip_qualifier(&s, q);
        }
        ws(&s)
    };

    let mut enums = Map::new();
    for r in pg_rows(
        conn,
        "select t.typname, array_agg(e.enumlabel order by e.enumsortorder) labels from pg_type t \
         join pg_enum e on e.enumtypid=t.oid join pg_namespace n on n.oid=t.typnamespace \
         where n.nspname=current_schema() group by t.typname",
    )
    .await?
    {
        enums.insert(
            text_field(&r, "typname"),
            r.get("labels").cloned().unwrap_or(Value::Null),
        );
    }

    let mut extensions: Vec<String> = pg_rows(
        conn,
        "select extname from pg_extension where extname<>'plpgsql'",
    )
    .await?
    .iter()
    .map(|r| text_field(r, "extname"))
    .collect();
    extensions.sort();

    let names: Vec<String> = pg_rows(
        conn,
        "select c.relname from pg_class c join pg_namespace n on n.oid=c.relnamespace \
         where n.nspname=current_schema() and c.relkind in ('r','p') order by 1",
    )
    .await?
    .iter()
    .map(|r| text_field(r, "relname"))
    .filter(|t| !is_bookkeeping_table(t))
    .collect();

    let mut tables: Map<String, Value> = names
        .iter()
        .map(|t| {
            let empty = json!({ "columns": {}, "indexes": {}, "constraints": {} });
            (t.clone(), empty)
        })
        .collect();
    let mut put = |table: &str, section: &str, key: String, value: Value| {
        if let Some(Value::Object(section)) = tables
            .get_mut(table)
            .and_then(|entry| entry.get_mut(section))
        {
            section.insert(key, value);
        }
    };

    for r in pg_rows(
        conn,
        "select c.relname as tbl, a.attname, format_type(a.atttypid, a.atttypmod) typ, \
         a.attnotnull, pg_get_expr(d.adbin, d.adrelid) dflt from pg_attribute a \
         join pg_class c on c.oid=a.attrelid join pg_namespace n on n.oid=c.relnamespace \
         left join pg_attrdef d on d.adrelid=a.attrelid and d.adnum=a.attnum \
         where n.nspname=current_schema() and c.relkind in ('r','p') \
         and a.attnum>0 and not a.attisdropped order by c.relname, a.attnum",
    )
    .await?
    {
        let default = match r.get("dflt") {
            Some(Value::String(s)) => Value::String(ws(s)),
            _ => Value::Null,
        };
        put(
            &text_field(&r, "tbl"),
            "columns",
            text_field(&r, "attname"),
            json!({
                "type": r.get("typ").cloned().unwrap_or(Value::Null),
                "notnull": r.get("attnotnull").cloned().unwrap_or(Value::Null),
                "default": default,
            }),
        );
    }

    for r in pg_rows(
        conn,
        "select tablename, indexname, indexdef from pg_indexes \
         where schemaname=current_schema()",
    )
    .await?
    {
        put(
            &text_field(&r, "tablename"),
            "indexes",
            text_field(&r, "indexname"),
            Value::String(normalise(&text_field(&r, "indexdef"))),
        );
    }

    for r in pg_rows(
        conn,
        "select c.relname as tbl, con.conname, con.contype, pg_get_constraintdef(con.oid) def \
         from pg_constraint con join pg_class c on c.oid=con.conrelid \
         join pg_namespace n on n.oid=c.relnamespace \
         where n.nspname=current_schema() and c.relkind in ('r','p')",
    )
    .await?
    {
        put(
            &text_field(&r, "tbl"),
            "constraints",
            text_field(&r, "conname"),
            json!({
                "type": r.get("contype").cloned().unwrap_or(Value::Null),
                "def": normalise(&text_field(&r, "def")),
            }),
        );
    }

    Ok(json!({ "tables": tables, "enums": enums, "extensions": extensions }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_bodies_match_python() {
        let sql = "CREATE TABLE x (\n\ta INT, \n\tCONSTRAINT ck_x CHECK (a != b), \n\t\
                   CONSTRAINT pk_x PRIMARY KEY (a)\n)";
        assert_eq!(check_bodies(sql), vec!["a != b"]);
        assert_eq!(check_bodies("CHECK ((a) > 1)\n"), vec!["(a) > 1"]);
        assert_eq!(check_bodies("t (CHECK (a > 1))"), vec!["a > 1"]);
        assert!(check_bodies("CHECK (a > 1) x").is_empty());
        assert_eq!(constraint_names(sql), vec!["ck_x", "pk_x"]);
    }

    #[test]
    fn where_and_qualifiers() {
        assert_eq!(
            where_clause("CREATE INDEX i ON t (a)  WHERE a   IS NOT NULL").as_deref(),
            Some("a IS NOT NULL")
        );
        assert_eq!(where_clause("CREATE INDEX nowhere_ix ON t (a)"), None);
        assert_eq!(
            strip_qualifier("REFERENCES public.flow(id) x_public.y public.", "public"),
            "REFERENCES flow(id) x_public.y "
        );
    }

    #[test]
    fn python_json_and_diff() {
        let a = json!({"t": {"x": [1, "é"], "y": null}});
        let b = json!({"t": {"x": [1, "e"], "z": true}});
        assert_eq!(
            diff(&a, &b),
            vec![
                "~ /t/x: [1, \"\\u00e9\"] != [1, \"e\"]",
                "- /t/y: only in first",
                "+ /t/z: only in second",
            ]
        );
    }

    #[test]
    fn goldens_parse() {
        for d in [SchemaDialect::Sqlite, SchemaDialect::Postgres] {
            let g = golden_prefect_3_9_1(d);
            assert!(g.is_ok_and(|g| g["tables"].as_object().map(Map::len) == Some(36)));
        }
    }
}
