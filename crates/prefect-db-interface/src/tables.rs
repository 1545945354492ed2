//! Every table of a Prefect 3.9.1 database with its typed row model, in an insertion order that
//! respects the foreign keys, and the generic operations that whole-table work needs (reading
//! every row through the models, copying, verifying): count, read a page ordered by primary key
//! as typed rows, insert a batch of typed rows, delete everything, and raw reads of a column by
//! plain SQL for comparisons.
//!
//! # Foreign-key order and the three cycles
//!
//! [`PrefectTable::ALL`] lists parents before children. Three pairs of tables reference each
//! other: `work_pool.default_queue_id` ↔ `work_queue.work_pool_id`, `flow_run.state_id` ↔
//! `flow_run_state.flow_run_id` and `flow_run.parent_task_run_id` ↔ `task_run.flow_run_id`.
//! The first column of each pair is *deferred* ([`PrefectTable::deferred_columns`]): rows are
//! inserted with it NULL ([`RowBatch::take_deferred`]) and it is set once every table is filled
//! ([`RowBatch::apply_deferred`]). PostgreSQL's foreign keys are not deferrable, so this is the
//! only order that works on both dialects inside one transaction.
//!
//! # Decode errors
//!
//! diesel's row-level decode error does not say which column failed. When a page cannot be
//! decoded, [`PrefectTable::read_page`] re-reads that page value by value, and returns
//! [`TableError::Decode`] naming the table, the column and the row id.
//!
//! All 36 tables have a UUID primary key `id`; pages are ordered by it, which is the same order
//! on both dialects (lower-case hyphenated text on SQLite sorts as the 16 bytes do on PostgreSQL).

use chrono::{DateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prefect_db_config::Conn;
use prefect_orm::types::{DeploymentStatus, StateType, Val, WorkPoolStatus, WorkQueueStatus, WorkerStatus};
use uuid::Uuid;

/// A whole-table operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TableError {
    /// A stored value could not be decoded into the typed model.
    #[error("cannot decode {table}.{column} of row {id}: {message}")]
    Decode {
        /// The table.
        table: &'static str,
        /// The column whose value failed.
        column: String,
        /// The row's primary key, as stored (text).
        id: String,
        /// The decoder's message.
        message: String,
    },
    /// A statement on a table failed.
    #[error("{table}: {source}")]
    Query {
        /// The table.
        table: &'static str,
        /// diesel's error.
        #[source]
        source: diesel::result::Error,
    },
}

impl TableError {
    fn query(table: &'static str) -> impl FnOnce(diesel::result::Error) -> TableError {
        move |source| TableError::Query { table, source }
    }
}

/// A column value read by plain SQL, for comparisons with the typed models: on SQLite
/// `CAST(col AS TEXT)` and `typeof(col)`, on PostgreSQL `col::text` and `pg_typeof(col)`.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct RawValue {
    /// The row's primary key as text.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub id: String,
    /// The value as text, `None` for SQL NULL.
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    pub text: Option<String>,
    /// The storage class (SQLite) or type (PostgreSQL) of the value.
    #[diesel(sql_type = diesel::sql_types::Text)]
    pub storage: String,
}

#[derive(QueryableByName)]
struct RawId {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// A running checksum of rows: FNV-1a (64 bits) over a canonical serialization of each typed
/// row (its `Debug` form: every field, JSON objects with sorted keys, timestamps in UTC to the
/// microsecond), fed in primary-key order. Equal on both dialects for equal values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checksum(pub u64);

impl Default for Checksum {
    fn default() -> Self {
        Checksum(0xcbf2_9ce4_8422_2325)
    }
}

impl Checksum {
    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    /// Feeds one row.
    pub fn row(&mut self, row: &impl std::fmt::Debug) {
        self.update(format!("{row:?}").as_bytes());
        self.update(b"\n");
    }
}

impl std::fmt::Display for Checksum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// An error and its sources, joined with `: `.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn id_literal(id: &str) -> String {
    format!("'{}'", id.replace('\'', "''"))
}

/// The ids (as text) of one page of `table`, ordered by id, read without decoding anything.
async fn raw_page_ids(conn: &mut Conn<'_>, table: &'static str, after: Option<Uuid>, limit: i64) -> Result<Vec<String>, TableError> {
    let filter = after.map(|a| format!("WHERE id > {}", id_literal(&a.hyphenated().to_string()))).unwrap_or_default();
    let sql = format!("SELECT CAST(id AS TEXT) AS id FROM {table} {filter} ORDER BY id LIMIT {limit}");
    let rows: Vec<RawId> =
        prefect_db_config::dispatch!(conn, |c| diesel::sql_query(&sql).load::<RawId>(c).await).map_err(TableError::query(table))?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Every value of `column` in `table` read by plain SQL, ordered by id (see [`RawValue`]).
/// `column` must be one of [`PrefectTable::columns`].
pub async fn read_raw_column(conn: &mut Conn<'_>, table: PrefectTable, column: &str) -> Result<Vec<RawValue>, TableError> {
    let name = table.name();
    if !table.columns().contains(&column) {
        return Err(TableError::Query {
            table: name,
            source: diesel::result::Error::QueryBuilderError(format!("no column {column}").into()),
        });
    }
    let sql = match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(_) => {
            format!("SELECT id::text AS id, \"{column}\"::text AS text, pg_typeof(\"{column}\")::text AS storage FROM {name} ORDER BY id")
        }
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(_) => {
            format!("SELECT id AS id, CAST(\"{column}\" AS TEXT) AS text, typeof(\"{column}\") AS storage FROM {name} ORDER BY id")
        }
    };
    prefect_db_config::dispatch!(conn, |c| diesel::sql_query(&sql).load::<RawValue>(c).await).map_err(TableError::query(name))
}

/// The most rows one multi-row INSERT may carry for a table of `columns` columns on a dialect:
/// 999 bound parameters on SQLite (the historical default limit), 32767 on PostgreSQL.
pub fn max_batch_rows(dialect: prefect_db_config::Dialect, columns: usize) -> usize {
    let params = match dialect {
        prefect_db_config::Dialect::Sqlite => 999,
        prefect_db_config::Dialect::Postgres => 32_767,
    };
    (params / columns.max(1)).max(1)
}

/// Rows per `UPDATE … FROM (VALUES …)` statement setting deferred columns.
const UPDATE_ROWS_PER_STATEMENT: usize = 1000;

/// `UPDATE table SET c1 = v.column2, … FROM (VALUES (?, ?, …), …) AS v WHERE table.id =
/// v.column1` for `rows` rows: the id then each of `columns` per row, numbered placeholders on
/// both dialects (both name the columns of a `VALUES` list `column1`, `column2`, …).
fn update_from_values_sql(dialect: prefect_db_config::Dialect, table: &str, columns: &[&str], rows: usize) -> String {
    let per_row = 1 + columns.len();
    let placeholder = |n: usize| match dialect {
        prefect_db_config::Dialect::Postgres => format!("${n}"),
        prefect_db_config::Dialect::Sqlite => format!("?{n}"),
    };
    let set = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("\"{c}\" = v.column{}", i + 2))
        .collect::<Vec<_>>()
        .join(", ");
    let values = (0..rows)
        .map(|r| {
            let row = (1..=per_row).map(|k| placeholder(r * per_row + k)).collect::<Vec<_>>().join(", ");
            format!("({row})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    format!("UPDATE \"{table}\" SET {set} FROM (VALUES {values}) AS v WHERE \"{table}\".id = v.column1")
}

macro_rules! deferred_ops {
    ($t:ident, $Row:ident, []) => {
        pub(in super::super) fn take_deferred(_rows: &mut [$Row]) -> Vec<$Row> {
            Vec::new()
        }
        pub(in super::super) async fn apply_deferred(_conn: &mut Conn<'_>, _rows: Vec<$Row>) -> QueryResult<usize> {
            Ok(0)
        }
        pub(in super::super) async fn null_deferred(_conn: &mut Conn<'_>) -> QueryResult<usize> {
            Ok(0)
        }
    };
    ($t:ident, $Row:ident, [$($def:ident),+]) => {
        pub(in super::super) fn take_deferred(rows: &mut [$Row]) -> Vec<$Row> {
            let mut kept = Vec::new();
            for row in rows.iter_mut() {
                if false $(|| row.$def.is_some())+ {
                    kept.push(row.clone());
                    $(row.$def = None;)+
                }
            }
            kept
        }
        pub(in super::super) async fn apply_deferred(conn: &mut Conn<'_>, rows: Vec<$Row>) -> QueryResult<usize> {
            // One `UPDATE … FROM (VALUES …)` per chunk instead of one statement per row.
            let deferred: &[&str] = &[$(stringify!($def)),+];
            let per_row = 1 + deferred.len();
            let chunk = (max_batch_rows(conn.dialect(), per_row)).min(UPDATE_ROWS_PER_STATEMENT);
            let mut n = 0;
            for rows in rows.chunks(chunk) {
                let sql = update_from_values_sql(conn.dialect(), stringify!($t), deferred, rows.len());
                n += prefect_db_config::dispatch!(conn, |c| {
                    let mut q = diesel::sql_query(sql.as_str()).into_boxed();
                    for row in rows {
                        q = q.bind::<prefect_orm::types::PUuid, _>(Val(row.id));
                        $(q = q.bind::<diesel::sql_types::Nullable<prefect_orm::types::PUuid>, _>(Val(row.$def));)+
                    }
                    q.execute(c).await
                })?;
            }
            Ok(n)
        }
        pub(in super::super) async fn null_deferred(conn: &mut Conn<'_>) -> QueryResult<usize> {
            prefect_db_config::dispatch!(conn, |c| {
                diesel::update($t::table).set(($($t::$def.eq(Val(None::<Uuid>)),)+)).execute(c).await
            })
        }
    };
}

macro_rules! prefect_tables {
    ($($variant:ident => $t:ident, $Row:ident, [$($def:ident),*], [$($col:ident ($sql:literal) : $dec:ty),+ $(,)?];)+) => {
        /// A table of a Prefect 3.9.1 database.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum PrefectTable {
            $(
                #[doc = concat!("`", stringify!($t), "`, rows [`prefect_orm::models::", stringify!($Row), "`].")]
                $variant,
            )+
        }

        impl PrefectTable {
            /// Every table, parents before children (the order to insert in; delete in reverse).
            pub const ALL: &'static [PrefectTable] = &[$(PrefectTable::$variant),+];

            /// The table's SQL name.
            pub const fn name(self) -> &'static str {
                match self { $(PrefectTable::$variant => stringify!($t)),+ }
            }

            /// The table's columns, in physical order.
            pub const fn columns(self) -> &'static [&'static str] {
                match self { $(PrefectTable::$variant => &[$($sql),+]),+ }
            }

            /// The foreign-key columns inserted NULL first and set after every table is filled.
            pub const fn deferred_columns(self) -> &'static [&'static str] {
                match self { $(PrefectTable::$variant => &[$(stringify!($def)),*]),+ }
            }

            /// The table with this SQL name.
            pub fn from_name(name: &str) -> Option<PrefectTable> {
                Self::ALL.iter().copied().find(|t| t.name() == name)
            }

            /// The number of rows.
            pub async fn count(self, conn: &mut Conn<'_>) -> Result<i64, TableError> {
                let r = match self { $(PrefectTable::$variant => ops::$t::count(conn).await),+ };
                r.map_err(TableError::query(self.name()))
            }

            /// Up to `limit` rows with an id greater than `after`, ordered by id, decoded through
            /// the typed model. A value that cannot be decoded is reported as
            /// [`TableError::Decode`] with its column and row id.
            pub async fn read_page(self, conn: &mut Conn<'_>, after: Option<Uuid>, limit: i64) -> Result<RowBatch, TableError> {
                let result = match self { $(PrefectTable::$variant => ops::$t::read_page(conn, after, limit).await.map(RowBatch::$variant)),+ };
                match result {
                    Ok(batch) => Ok(batch),
                    Err(diesel::result::Error::DeserializationError(e)) => {
                        let located = match self { $(PrefectTable::$variant => ops::$t::locate(conn, after, limit).await?),+ };
                        Err(located.unwrap_or_else(|| TableError::Query {
                            table: self.name(),
                            source: diesel::result::Error::DeserializationError(e),
                        }))
                    }
                    Err(e) => Err(TableError::Query { table: self.name(), source: e }),
                }
            }

            /// Reads every row (page by page) through the typed model.
            pub async fn read_all(self, conn: &mut Conn<'_>, page_size: i64) -> Result<RowBatch, TableError> {
                let mut all = self.empty_batch();
                let mut after = None;
                loop {
                    let page = self.read_page(conn, after, page_size).await?;
                    let n = page.len();
                    after = page.last_id();
                    all.extend(page);
                    if (n as i64) < page_size {
                        return Ok(all);
                    }
                }
            }

            /// An empty batch of this table's rows.
            pub fn empty_batch(self) -> RowBatch {
                match self { $(PrefectTable::$variant => RowBatch::$variant(Vec::new())),+ }
            }

            /// Sets the deferred columns of every row to NULL (before deleting everything, so
            /// the cycles do not block the deletes).
            pub async fn null_deferred(self, conn: &mut Conn<'_>) -> Result<usize, TableError> {
                let r = match self { $(PrefectTable::$variant => ops::$t::null_deferred(conn).await),+ };
                r.map_err(TableError::query(self.name()))
            }

            /// Deletes every row.
            pub async fn delete_all(self, conn: &mut Conn<'_>) -> Result<usize, TableError> {
                let r = match self { $(PrefectTable::$variant => ops::$t::delete_all(conn).await),+ };
                r.map_err(TableError::query(self.name()))
            }
        }

        /// Typed rows of one table.
        #[derive(Debug, Clone, PartialEq)]
        pub enum RowBatch {
            $(
                #[doc = concat!("Rows of `", stringify!($t), "`.")]
                $variant(Vec<prefect_orm::models::$Row>),
            )+
        }

        impl RowBatch {
            /// The table.
            pub fn table(&self) -> PrefectTable {
                match self { $(RowBatch::$variant(_) => PrefectTable::$variant),+ }
            }

            /// The number of rows.
            pub fn len(&self) -> usize {
                match self { $(RowBatch::$variant(r) => r.len()),+ }
            }

            /// Whether there are no rows.
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// The id of the last row.
            pub fn last_id(&self) -> Option<Uuid> {
                match self { $(RowBatch::$variant(r) => r.last().map(|row| row.id)),+ }
            }

            /// The ids of the rows, in order.
            pub fn ids(&self) -> Vec<Uuid> {
                match self { $(RowBatch::$variant(r) => r.iter().map(|row| row.id).collect()),+ }
            }

            /// Appends the rows of another batch of the same table (rows of another table are
            /// ignored).
            pub fn extend(&mut self, other: RowBatch) {
                match (self, other) {
                    $((RowBatch::$variant(a), RowBatch::$variant(b)) => a.extend(b),)+
                    #[allow(unreachable_patterns)]
                    _ => {}
                }
            }

            /// Feeds every row, in order, to a checksum.
            pub fn checksum_into(&self, sum: &mut Checksum) {
                match self { $(RowBatch::$variant(r) => r.iter().for_each(|row| sum.row(row))),+ }
            }

            /// The canonical serialization of each row (what [`Checksum`] hashes), for
            /// diagnostics.
            pub fn row_texts(&self) -> Vec<(Uuid, String)> {
                match self { $(RowBatch::$variant(r) => r.iter().map(|row| (row.id, format!("{row:?}"))).collect()),+ }
            }

            /// Sets the deferred columns of these rows to NULL and returns the original rows of
            /// those that had a value, for [`RowBatch::apply_deferred`] once every table is filled.
            pub fn take_deferred(&mut self) -> RowBatch {
                match self { $(RowBatch::$variant(r) => RowBatch::$variant(ops::$t::take_deferred(r))),+ }
            }

            /// Sets the deferred columns of rows already inserted to these rows' values.
            pub async fn apply_deferred(self, conn: &mut Conn<'_>) -> Result<usize, TableError> {
                let table = self.table().name();
                let r = match self { $(RowBatch::$variant(r) => ops::$t::apply_deferred(conn, r).await),+ };
                r.map_err(TableError::query(table))
            }

            /// Inserts the rows (every column written, ids kept) in one statement; callers keep
            /// batches within [`max_batch_rows`].
            pub async fn insert(self, conn: &mut Conn<'_>) -> Result<usize, TableError> {
                let table = self.table().name();
                if self.is_empty() {
                    return Ok(0);
                }
                let r = match self { $(RowBatch::$variant(r) => ops::$t::insert(conn, r).await),+ };
                r.map_err(TableError::query(table))
            }

            /// Splits into batches of at most `n` rows.
            pub fn chunks(self, n: usize) -> Vec<RowBatch> {
                let n = n.max(1);
                match self {
                    $(RowBatch::$variant(r) => {
                        let mut out = Vec::new();
                        let mut it = r.into_iter().peekable();
                        while it.peek().is_some() {
                            out.push(RowBatch::$variant(it.by_ref().take(n).collect()));
                        }
                        out
                    }),+
                }
            }
        }

        #[allow(clippy::wildcard_imports)]
        mod ops {
            $(
                pub(super) mod $t {
                    use super::super::*;
                    use prefect_orm::schema::$t;
                    use prefect_orm::models::$Row;

                    pub(in super::super) async fn count(conn: &mut Conn<'_>) -> QueryResult<i64> {
                        prefect_db_config::dispatch!(conn, |c| $t::table.count().get_result::<i64>(c).await)
                    }

                    pub(in super::super) async fn read_page(conn: &mut Conn<'_>, after: Option<Uuid>, limit: i64) -> QueryResult<Vec<$Row>> {
                        prefect_db_config::dispatch!(conn, |c| {
                            let mut q = $t::table.select($Row::as_select()).order($t::id.asc()).limit(limit).into_boxed();
                            if let Some(a) = after {
                                q = q.filter($t::id.gt(Val(a)));
                            }
                            q.load::<$Row>(c).await
                        })
                    }

                    /// Re-reads a page that failed to decode value by value to find the culprit.
                    pub(in super::super) async fn locate(conn: &mut Conn<'_>, after: Option<Uuid>, limit: i64) -> Result<Option<TableError>, TableError> {
                        let ids = raw_page_ids(conn, stringify!($t), after, limit).await?;
                        for id in ids {
                            let cond = format!("CAST(id AS TEXT) = {}", id_literal(&id));
                            $(
                                let probe = prefect_db_config::dispatch!(conn, |c| {
                                    $t::table
                                        .select($t::$col)
                                        .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(&cond))
                                        .first::<$dec>(c)
                                        .await
                                        .map(|_| ())
                                });
                                match probe {
                                    Ok(()) => {}
                                    Err(diesel::result::Error::DeserializationError(e)) => {
                                        return Ok(Some(TableError::Decode {
                                            table: stringify!($t),
                                            column: $sql.to_owned(),
                                            id,
                                            message: error_chain(&*e),
                                        }));
                                    }
                                    Err(e) => return Err(TableError::Query { table: stringify!($t), source: e }),
                                }
                            )+
                        }
                        Ok(None)
                    }

                    pub(in super::super) async fn insert(conn: &mut Conn<'_>, rows: Vec<$Row>) -> QueryResult<usize> {
                        match conn {
                            #[cfg(feature = "postgres")]
                            Conn::Postgres(c) => diesel::insert_into($t::table).values(rows).execute(&mut **c).await,
                            #[cfg(feature = "sqlite")]
                            Conn::Sqlite(c) => {
                                c.spawn_blocking(move |inner| {
                                    diesel::RunQueryDsl::execute(diesel::insert_into($t::table).values(rows), inner)
                                })
                                .await
                            }
                        }
                    }

                    pub(in super::super) async fn delete_all(conn: &mut Conn<'_>) -> QueryResult<usize> {
                        prefect_db_config::dispatch!(conn, |c| diesel::delete($t::table).execute(c).await)
                    }

                    deferred_ops!($t, $Row, [$($def),*]);
                }
            )+
        }
    };
}

prefect_tables! {
    Flow => flow, Flow, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, tags ("tags"): Val<serde_json::Value>, labels ("labels"): Val<Option<serde_json::Value>>];
    BlockType => block_type, BlockType, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, logo_url ("logo_url"): Option<String>, documentation_url ("documentation_url"): Option<String>, description ("description"): Option<String>, code_example ("code_example"): Option<String>, is_protected ("is_protected"): bool, slug ("slug"): String];
    BlockSchema => block_schema, BlockSchema, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, fields ("fields"): Val<serde_json::Value>, checksum ("checksum"): String, block_type_id ("block_type_id"): Val<Uuid>, capabilities ("capabilities"): Val<serde_json::Value>, version ("version"): String];
    BlockSchemaReference => block_schema_reference, BlockSchemaReference, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, parent_block_schema_id ("parent_block_schema_id"): Val<Uuid>, reference_block_schema_id ("reference_block_schema_id"): Val<Uuid>];
    BlockDocument => block_document, BlockDocument, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, data ("data"): Val<serde_json::Value>, block_schema_id ("block_schema_id"): Val<Uuid>, block_type_id ("block_type_id"): Val<Uuid>, is_anonymous ("is_anonymous"): bool, block_type_name ("block_type_name"): Option<String>];
    BlockDocumentReference => block_document_reference, BlockDocumentReference, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, parent_block_document_id ("parent_block_document_id"): Val<Uuid>, reference_block_document_id ("reference_block_document_id"): Val<Uuid>];
    ConcurrencyLimit => concurrency_limit, ConcurrencyLimit, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, tag ("tag"): String, concurrency_limit_ ("concurrency_limit"): i32, active_slots ("active_slots"): Val<serde_json::Value>];
    ConcurrencyLimitV2 => concurrency_limit_v2, ConcurrencyLimitV2, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, active ("active"): bool, name ("name"): String, limit ("limit"): i32, active_slots ("active_slots"): i32, denied_slots ("denied_slots"): i32, slot_decay_per_second ("slot_decay_per_second"): f64, avg_slot_occupancy_seconds ("avg_slot_occupancy_seconds"): f64];
    Configuration => configuration, Configuration, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, key ("key"): String, value ("value"): Val<serde_json::Value>];
    CsrfToken => csrf_token, CsrfToken, [], [token ("token"): String, client ("client"): String, expiration ("expiration"): Val<DateTime<Utc>>, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>];
    SavedSearch => saved_search, SavedSearch, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, filters ("filters"): Val<serde_json::Value>];
    Variable => variable, Variable, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, tags ("tags"): Val<serde_json::Value>, value ("value"): Val<Option<serde_json::Value>>];
    Artifact => artifact, Artifact, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, key ("key"): Option<String>, type_ ("type"): Option<String>, data ("data"): Val<Option<serde_json::Value>>, metadata_ ("metadata_"): Val<Option<serde_json::Value>>, task_run_id ("task_run_id"): Val<Option<Uuid>>, flow_run_id ("flow_run_id"): Val<Option<Uuid>>, description ("description"): Option<String>];
    ArtifactCollection => artifact_collection, ArtifactCollection, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, key ("key"): String, latest_id ("latest_id"): Val<Uuid>, task_run_id ("task_run_id"): Val<Option<Uuid>>, flow_run_id ("flow_run_id"): Val<Option<Uuid>>, type_ ("type"): Option<String>, data ("data"): Val<Option<serde_json::Value>>, description ("description"): Option<String>, metadata_ ("metadata_"): Val<Option<serde_json::Value>>];
    Log => log, Log, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, level ("level"): i16, flow_run_id ("flow_run_id"): Val<Option<Uuid>>, task_run_id ("task_run_id"): Val<Option<Uuid>>, message ("message"): String, timestamp ("timestamp"): Val<DateTime<Utc>>];
    Event => events, Event, [], [occurred ("occurred"): Val<DateTime<Utc>>, event ("event"): String, resource_id ("resource_id"): String, resource ("resource"): Val<serde_json::Value>, related_resource_ids ("related_resource_ids"): Val<serde_json::Value>, related ("related"): Val<serde_json::Value>, payload ("payload"): Val<serde_json::Value>, received ("received"): Val<DateTime<Utc>>, recorded ("recorded"): Val<DateTime<Utc>>, follows ("follows"): Val<Option<Uuid>>, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>];
    EventResource => event_resources, EventResource, [], [occurred ("occurred"): Val<DateTime<Utc>>, resource_id ("resource_id"): String, resource_role ("resource_role"): String, resource ("resource"): Val<serde_json::Value>, event_id ("event_id"): Val<Uuid>, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>];
    TaskRunStateCache => task_run_state_cache, TaskRunStateCache, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, cache_key ("cache_key"): String, cache_expiration ("cache_expiration"): Val<Option<DateTime<Utc>>>, task_run_state_id ("task_run_state_id"): Val<Uuid>];
    Automation => automation, Automation, [], [name ("name"): String, description ("description"): String, enabled ("enabled"): bool, trigger ("trigger"): Val<serde_json::Value>, actions ("actions"): Val<serde_json::Value>, actions_on_trigger ("actions_on_trigger"): Val<serde_json::Value>, actions_on_resolve ("actions_on_resolve"): Val<serde_json::Value>, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, tags ("tags"): Val<serde_json::Value>];
    AutomationBucket => automation_bucket, AutomationBucket, [], [automation_id ("automation_id"): Val<Uuid>, trigger_id ("trigger_id"): Val<Uuid>, bucketing_key ("bucketing_key"): Val<serde_json::Value>, last_event ("last_event"): Val<Option<serde_json::Value>>, start ("start"): Val<DateTime<Utc>>, end ("end"): Val<DateTime<Utc>>, count ("count"): i32, last_operation ("last_operation"): Option<String>, triggered_at ("triggered_at"): Val<Option<DateTime<Utc>>>, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>];
    AutomationRelatedResource => automation_related_resource, AutomationRelatedResource, [], [automation_id ("automation_id"): Val<Uuid>, resource_id ("resource_id"): Option<String>, automation_owned_by_resource ("automation_owned_by_resource"): bool, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>];
    AutomationEventFollower => automation_event_follower, AutomationEventFollower, [], [leader_event_id ("leader_event_id"): Val<Uuid>, follower_event_id ("follower_event_id"): Val<Uuid>, received ("received"): Val<DateTime<Utc>>, follower ("follower"): Val<serde_json::Value>, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, scope ("scope"): String];
    AutomationHeldEvent => automation_held_event, AutomationHeldEvent, [], [automation_id ("automation_id"): Val<Uuid>, trigger_id ("trigger_id"): Val<Uuid>, bucketing_key ("bucketing_key"): Val<serde_json::Value>, event_id ("event_id"): Val<Uuid>, occurred ("occurred"): Val<DateTime<Utc>>, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>];
    CompositeTriggerChildFiring => composite_trigger_child_firing, CompositeTriggerChildFiring, [], [automation_id ("automation_id"): Val<Uuid>, parent_trigger_id ("parent_trigger_id"): Val<Uuid>, child_trigger_id ("child_trigger_id"): Val<Uuid>, child_firing_id ("child_firing_id"): Val<Uuid>, child_fired_at ("child_fired_at"): Val<Option<DateTime<Utc>>>, child_firing ("child_firing"): Val<serde_json::Value>, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>];
    WorkPool => work_pool, WorkPool, [default_queue_id], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, description ("description"): Option<String>, type_ ("type"): String, base_job_template ("base_job_template"): Val<serde_json::Value>, is_paused ("is_paused"): bool, concurrency_limit ("concurrency_limit"): Option<i32>, default_queue_id ("default_queue_id"): Val<Option<Uuid>>, status ("status"): WorkPoolStatus, last_transitioned_status_at ("last_transitioned_status_at"): Val<Option<DateTime<Utc>>>, last_status_event_id ("last_status_event_id"): Val<Option<Uuid>>, storage_configuration ("storage_configuration"): Val<serde_json::Value>];
    WorkQueue => work_queue, WorkQueue, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, filter ("filter"): Val<Option<serde_json::Value>>, description ("description"): String, is_paused ("is_paused"): bool, concurrency_limit ("concurrency_limit"): Option<i32>, last_polled ("last_polled"): Val<Option<DateTime<Utc>>>, priority ("priority"): i32, work_pool_id ("work_pool_id"): Val<Uuid>, status ("status"): WorkQueueStatus];
    Worker => worker, Worker, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, last_heartbeat_time ("last_heartbeat_time"): Val<DateTime<Utc>>, work_pool_id ("work_pool_id"): Val<Uuid>, heartbeat_interval_seconds ("heartbeat_interval_seconds"): Option<i32>, status ("status"): WorkerStatus];
    Agent => agent, Agent, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, last_activity_time ("last_activity_time"): Val<DateTime<Utc>>, work_queue_id ("work_queue_id"): Val<Uuid>];
    Deployment => deployment, Deployment, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, tags ("tags"): Val<serde_json::Value>, parameters ("parameters"): Val<serde_json::Value>, flow_id ("flow_id"): Val<Uuid>, infrastructure_document_id ("infrastructure_document_id"): Val<Option<Uuid>>, description ("description"): Option<String>, parameter_openapi_schema ("parameter_openapi_schema"): Val<Option<serde_json::Value>>, storage_document_id ("storage_document_id"): Val<Option<Uuid>>, version ("version"): Option<String>, infra_overrides ("infra_overrides"): Val<serde_json::Value>, path ("path"): Option<String>, entrypoint ("entrypoint"): Option<String>, work_queue_name ("work_queue_name"): Option<String>, created_by ("created_by"): Val<Option<serde_json::Value>>, updated_by ("updated_by"): Val<Option<serde_json::Value>>, work_queue_id ("work_queue_id"): Val<Option<Uuid>>, pull_steps ("pull_steps"): Val<Option<serde_json::Value>>, enforce_parameter_schema ("enforce_parameter_schema"): bool, last_polled ("last_polled"): Val<Option<DateTime<Utc>>>, paused ("paused"): bool, status ("status"): DeploymentStatus, concurrency_limit ("concurrency_limit"): Option<i32>, concurrency_options ("concurrency_options"): Val<Option<serde_json::Value>>, concurrency_limit_id ("concurrency_limit_id"): Val<Option<Uuid>>, labels ("labels"): Val<Option<serde_json::Value>>, version_id ("version_id"): Val<Option<Uuid>>];
    DeploymentSchedule => deployment_schedule, DeploymentSchedule, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, schedule ("schedule"): Val<serde_json::Value>, active ("active"): bool, deployment_id ("deployment_id"): Val<Uuid>, max_scheduled_runs ("max_scheduled_runs"): Option<i32>, parameters ("parameters"): Val<serde_json::Value>, slug ("slug"): Option<String>];
    DeploymentVersion => deployment_version, DeploymentVersion, [], [deployment_id ("deployment_id"): Val<Uuid>, branch ("branch"): Option<String>, version_info ("version_info"): Val<serde_json::Value>, description ("description"): Option<String>, tags ("tags"): Val<serde_json::Value>, labels ("labels"): Val<Option<serde_json::Value>>, entrypoint ("entrypoint"): Option<String>, pull_steps ("pull_steps"): Val<Option<serde_json::Value>>, parameters ("parameters"): Val<serde_json::Value>, parameter_openapi_schema ("parameter_openapi_schema"): Val<Option<serde_json::Value>>, enforce_parameter_schema ("enforce_parameter_schema"): bool, work_queue_id ("work_queue_id"): Val<Option<Uuid>>, work_queue_name ("work_queue_name"): Option<String>, infra_overrides ("infra_overrides"): Val<serde_json::Value>, id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>];
    FlowRun => flow_run, FlowRun, [state_id, parent_task_run_id], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, state_type ("state_type"): Option<StateType>, run_count ("run_count"): i32, expected_start_time ("expected_start_time"): Val<Option<DateTime<Utc>>>, next_scheduled_start_time ("next_scheduled_start_time"): Val<Option<DateTime<Utc>>>, start_time ("start_time"): Val<Option<DateTime<Utc>>>, end_time ("end_time"): Val<Option<DateTime<Utc>>>, total_run_time ("total_run_time"): Val<TimeDelta>, flow_version ("flow_version"): Option<String>, parameters ("parameters"): Val<serde_json::Value>, idempotency_key ("idempotency_key"): Option<String>, context ("context"): Val<serde_json::Value>, empirical_policy ("empirical_policy"): Val<serde_json::Value>, tags ("tags"): Val<serde_json::Value>, auto_scheduled ("auto_scheduled"): bool, flow_id ("flow_id"): Val<Uuid>, deployment_id ("deployment_id"): Val<Option<Uuid>>, parent_task_run_id ("parent_task_run_id"): Val<Option<Uuid>>, state_id ("state_id"): Val<Option<Uuid>>, state_name ("state_name"): Option<String>, infrastructure_document_id ("infrastructure_document_id"): Val<Option<Uuid>>, work_queue_name ("work_queue_name"): Option<String>, state_timestamp ("state_timestamp"): Val<Option<DateTime<Utc>>>, created_by ("created_by"): Val<Option<serde_json::Value>>, infrastructure_pid ("infrastructure_pid"): Option<String>, work_queue_id ("work_queue_id"): Val<Option<Uuid>>, job_variables ("job_variables"): Val<Option<serde_json::Value>>, deployment_version ("deployment_version"): Option<String>, labels ("labels"): Val<Option<serde_json::Value>>];
    FlowRunInput => flow_run_input, FlowRunInput, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, key ("key"): String, value ("value"): String, flow_run_id ("flow_run_id"): Val<Uuid>, sender ("sender"): Option<String>];
    FlowRunState => flow_run_state, FlowRunState, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, type_ ("type"): StateType, timestamp ("timestamp"): Val<DateTime<Utc>>, name ("name"): String, message ("message"): Option<String>, state_details ("state_details"): Val<serde_json::Value>, data ("data"): Val<Option<serde_json::Value>>, flow_run_id ("flow_run_id"): Val<Uuid>, result_artifact_id ("result_artifact_id"): Val<Option<Uuid>>];
    TaskRun => task_run, TaskRun, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, name ("name"): String, state_type ("state_type"): Option<StateType>, run_count ("run_count"): i32, expected_start_time ("expected_start_time"): Val<Option<DateTime<Utc>>>, next_scheduled_start_time ("next_scheduled_start_time"): Val<Option<DateTime<Utc>>>, start_time ("start_time"): Val<Option<DateTime<Utc>>>, end_time ("end_time"): Val<Option<DateTime<Utc>>>, total_run_time ("total_run_time"): Val<TimeDelta>, task_key ("task_key"): String, dynamic_key ("dynamic_key"): String, cache_key ("cache_key"): Option<String>, cache_expiration ("cache_expiration"): Val<Option<DateTime<Utc>>>, task_version ("task_version"): Option<String>, empirical_policy ("empirical_policy"): Val<serde_json::Value>, task_inputs ("task_inputs"): Val<serde_json::Value>, tags ("tags"): Val<serde_json::Value>, flow_run_id ("flow_run_id"): Val<Option<Uuid>>, state_id ("state_id"): Val<Option<Uuid>>, state_name ("state_name"): Option<String>, state_timestamp ("state_timestamp"): Val<Option<DateTime<Utc>>>, flow_run_run_count ("flow_run_run_count"): i32, labels ("labels"): Val<Option<serde_json::Value>>];
    TaskRunState => task_run_state, TaskRunState, [], [id ("id"): Val<Uuid>, created ("created"): Val<DateTime<Utc>>, updated ("updated"): Val<DateTime<Utc>>, type_ ("type"): StateType, timestamp ("timestamp"): Val<DateTime<Utc>>, name ("name"): String, message ("message"): Option<String>, state_details ("state_details"): Val<serde_json::Value>, data ("data"): Val<Option<serde_json::Value>>, task_run_id ("task_run_id"): Val<Uuid>, result_artifact_id ("result_artifact_id"): Val<Option<Uuid>>];
}
