//! Multi-row inserts for every model, with Prefect's upserts, returning the rows or their ids.
//!
//! Rows go in one statement per [`PG_ROWS_PER_STATEMENT`] rows on PostgreSQL (`INSERT … VALUES
//! (…), (…) [ON CONFLICT … DO NOTHING | DO UPDATE SET …] RETURNING …`); on SQLite, which has no
//! `DEFAULT` keyword in `VALUES`, consecutive rows that leave the same columns to their defaults
//! share one multi-row statement (at most [`SQLITE_MAX_BINDS`] bind parameters each). A batch of
//! several statements runs inside one savepoint (or transaction), so it is all-or-nothing on
//! both. Both return what was inserted (or, under [`OnConflict::DoUpdate`], updated) in input
//! order; rows skipped under [`OnConflict::DoNothing`] are left out.

use super::AccessError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::types::{PTimestamp, Val};
use std::marker::PhantomData;

/// Rows per PostgreSQL statement: at most 64 columns each keeps a statement under the
/// protocol's 65,535 bind parameters. A batch over this size is several statements, run in a
/// transaction (a savepoint inside the caller's) so it stays all-or-nothing.
pub const PG_ROWS_PER_STATEMENT: usize = 1_000;

/// Bind parameters per SQLite statement: SQLite's `SQLITE_MAX_VARIABLE_NUMBER` (32,766 since
/// SQLite 3.32). A batch needing more is several statements.
pub const SQLITE_MAX_BINDS: usize = 32_766;

/// What to do when a row conflicts with an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Fail the whole batch (a plain `INSERT`).
    #[default]
    Fail,
    /// `ON CONFLICT (<Prefect's upsert columns>) DO NOTHING`: rows that conflict are skipped and
    /// are not returned. Tables without upsert columns in Prefect's ORM configuration use the
    /// columns Prefect's models upsert them on (`worker`: `work_pool_id, name`; `csrf_token`:
    /// `client`), else their primary key.
    DoNothing,
    /// `ON CONFLICT (<Prefect's upsert columns>) DO UPDATE SET col = excluded.col, …, updated =
    /// <now>`: a row that conflicts updates the listed columns of the existing row from the
    /// row given (and `updated`, when the table has it, to the current time); the existing
    /// row is returned in its place. Columns are named as in SQL (`"type"`, not `"type_"`);
    /// `id` and unknown columns are refused ([`AccessError::UpsertColumn`]). Two rows of one
    /// batch sharing a conflict key are refused on both dialects ([`AccessError::UpsertRowTwice`]),
    /// as PostgreSQL does.
    DoUpdate(&'static [&'static str]),
}

/// The `SET` list of an `ON CONFLICT … DO UPDATE`: each listed column from `excluded`, then
/// `updated` bound to one timestamp.
#[derive(Debug, Clone)]
pub(crate) struct ExcludedSet<T> {
    columns: Vec<&'static str>,
    updated: Option<Val<DateTime<Utc>>>,
    table: PhantomData<T>,
}

impl<T> ExcludedSet<T> {
    /// Checks `columns` against the schema of `table`.
    pub(crate) fn new(table: &'static str, columns: &'static [&'static str]) -> Result<Self, AccessError> {
        let has = |name: &str| crate::schema::COLUMNS.iter().any(|(t, c, _, _)| *t == table && *c == name);
        let mut set = Vec::with_capacity(columns.len());
        for &column in columns {
            if !has(column) {
                return Err(AccessError::UpsertColumn { table, column: column.to_owned(), reason: "no such column" });
            }
            if column == "id" {
                return Err(AccessError::UpsertColumn {
                    table,
                    column: column.to_owned(),
                    reason: "the primary key is never updated",
                });
            }
            if column != "updated" && !set.contains(&column) {
                set.push(column);
            }
        }
        Ok(ExcludedSet { columns: set, updated: has("updated").then(|| Val(crate::types::now())), table: PhantomData })
    }
}

impl<T: diesel::QuerySource> diesel::query_builder::AsChangeset for ExcludedSet<T> {
    type Target = T;
    type Changeset = Self;
    fn as_changeset(self) -> Self {
        self
    }
}

impl<T> diesel::query_builder::QueryId for ExcludedSet<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T, DB> diesel::query_builder::QueryFragment<DB> for ExcludedSet<T>
where
    DB: diesel::backend::Backend + diesel::sql_types::HasSqlType<PTimestamp>,
    Val<DateTime<Utc>>: diesel::serialize::ToSql<PTimestamp, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, DB>) -> diesel::QueryResult<()> {
        let mut first = true;
        for column in &self.columns {
            if !first {
                out.push_sql(", ");
            }
            first = false;
            out.push_identifier(column)?;
            out.push_sql(" = excluded.");
            out.push_identifier(column)?;
        }
        if let Some(updated) = &self.updated {
            if !first {
                out.push_sql(", ");
            }
            out.push_identifier("updated")?;
            out.push_sql(" = ");
            out.push_bind_param::<PTimestamp, _>(updated)?;
        }
        Ok(())
    }

    fn is_noop(&self, _backend: &DB) -> diesel::QueryResult<bool> {
        Ok(self.columns.is_empty() && self.updated.is_none())
    }
}

/// PostgreSQL's refusal of an upsert statement that would update one row twice.
#[cfg(feature = "postgres")]
pub(crate) fn hits_row_twice(error: &diesel::result::Error) -> bool {
    matches!(error, diesel::result::Error::DatabaseError(_, info)
        if info.message().contains("cannot affect row a second time"))
}

/// The first id that occurs twice among `ids`.
pub(crate) fn first_repeated(ids: impl Iterator<Item = Uuid>) -> Option<Uuid> {
    let mut seen = std::collections::HashSet::with_capacity(ids.size_hint().0);
    for id in ids {
        if !seen.insert(id) {
            return Some(id);
        }
    }
    None
}

/// Why a SQLite batch failed.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
pub(crate) enum BatchError {
    Db(diesel::result::Error),
    Twice(Uuid),
}

#[cfg(feature = "sqlite")]
impl From<diesel::result::Error> for BatchError {
    fn from(e: diesel::result::Error) -> Self {
        BatchError::Db(e)
    }
}

/// `INSERT INTO table (cols) VALUES (…), (…) [ON CONFLICT (target) DO NOTHING | DO UPDATE SET …]
/// RETURNING <ret>` over rows that all name the same columns (SQLite).
#[cfg(feature = "sqlite")]
pub(crate) struct SqliteRows<'a, V, T, R> {
    table: &'static str,
    rows: &'a [diesel::query_builder::ValuesClause<V, T>],
    /// `None`: a plain insert; `Some((target, None))`: DO NOTHING; `Some((target, Some(set)))`:
    /// DO UPDATE.
    conflict: Option<(&'static [&'static str], Option<&'a ExcludedSet<T>>)>,
    /// What the statement returns: the id column, or the row's columns.
    returning: &'a R,
}

#[cfg(feature = "sqlite")]
impl<V, T, R> diesel::query_builder::QueryId for SqliteRows<'_, V, T, R> {
    type QueryId = ();
    // Prepared statements are cached by their SQL text (one per shape and row count).
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(feature = "sqlite")]
impl<V, T, R: diesel::Expression> diesel::query_builder::Query for SqliteRows<'_, V, T, R> {
    type SqlType = R::SqlType;
}

#[cfg(feature = "sqlite")]
impl<V, T, R> diesel::RunQueryDsl<diesel::SqliteConnection> for SqliteRows<'_, V, T, R> {}

#[cfg(feature = "sqlite")]
impl<V, T, R> diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for SqliteRows<'_, V, T, R>
where
    diesel::query_builder::ValuesClause<V, T>: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    V: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    ExcludedSet<T>: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    R: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
{
    fn walk_ast<'b>(&'b self, mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> diesel::QueryResult<()> {
        out.push_sql("INSERT INTO ");
        out.push_identifier(self.table)?;
        out.push_sql(" ");
        let mut rows = self.rows.iter();
        if let Some(first) = rows.next() {
            // `(cols) VALUES (…)`, or `DEFAULT VALUES` for a row of defaults (always alone).
            first.walk_ast(out.reborrow())?;
        }
        for row in rows {
            out.push_sql(", (");
            row.values.walk_ast(out.reborrow())?;
            out.push_sql(")");
        }
        if let Some((target, set)) = self.conflict {
            out.push_sql(" ON CONFLICT (");
            for (i, column) in target.iter().enumerate() {
                if i > 0 {
                    out.push_sql(", ");
                }
                out.push_identifier(column)?;
            }
            match set {
                Some(set) => {
                    out.push_sql(") DO UPDATE SET ");
                    set.walk_ast(out.reborrow())?;
                }
                None => out.push_sql(") DO NOTHING"),
            }
        }
        // Table-qualified names are accepted in SQLite's RETURNING (3.35+).
        out.push_sql(" RETURNING ");
        self.returning.walk_ast(out.reborrow())
    }
}

/// Inserts `rows` on SQLite: consecutive rows naming the same columns share a statement; more
/// than one statement, and upserts, run inside a savepoint. Returns what the statements return,
/// in input order; a row returned twice (an upsert hitting one row twice) is refused.
#[cfg(feature = "sqlite")]
pub(crate) fn sqlite_insert<V, T, R, U>(
    c: &mut diesel::SqliteConnection,
    table: &'static str,
    rows: Vec<diesel::query_builder::ValuesClause<V, T>>,
    conflict: Option<(&'static [&'static str], Option<&ExcludedSet<T>>)>,
    returning: &R,
    id_of: fn(&U) -> Uuid,
) -> Result<Vec<U>, BatchError>
where
    diesel::query_builder::ValuesClause<V, T>: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    V: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    ExcludedSet<T>: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite>,
    R: diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> + diesel::Expression,
    for<'q> SqliteRows<'q, V, T, R>: diesel::query_dsl::LoadQuery<'q, diesel::SqliteConnection, U>,
{
    use diesel::query_builder::{QueryBuilder as _, QueryFragment as _};
    // Split into statements: a new one where a row names other columns than the previous one,
    // where the bind parameters would pass SQLite's limit, and around rows of defaults only.
    let mut statements: Vec<std::ops::Range<usize>> = Vec::new();
    let mut shape = String::new();
    let mut binds_per_row = 0;
    // One row is one statement: no shapes to compare.
    let single = rows.len() == 1;
    if single {
        statements.push(0..1);
    }
    for (i, row) in rows.iter().enumerate().filter(|_| !single) {
        let mut qb = diesel::sqlite::SqliteQueryBuilder::new();
        row.to_sql(&mut qb, &diesel::sqlite::Sqlite)?;
        let sql = qb.finish();
        let binds = sql.bytes().filter(|&b| b == b'?').count();
        let default_values = binds == 0;
        match statements.last_mut() {
            Some(last) if !default_values && sql == shape && (last.len() + 1) * binds_per_row <= SQLITE_MAX_BINDS => {
                last.end = i + 1;
            }
            _ => {
                statements.push(i..i + 1);
                shape = if default_values { String::new() } else { sql };
                binds_per_row = binds;
            }
        }
    }
    let updates = matches!(conflict, Some((_, Some(_))));
    let run = |c: &mut diesel::SqliteConnection| -> Result<Vec<U>, BatchError> {
        let mut out: Vec<U> = Vec::with_capacity(rows.len());
        for range in &statements {
            let statement = SqliteRows { table, rows: &rows[range.clone()], conflict, returning };
            out.extend(diesel::RunQueryDsl::load::<U>(statement, c)?);
        }
        // Only an upsert can return one row twice (a plain insert of a repeated key fails).
        if updates {
            if let Some(twice) = first_repeated(out.iter().map(id_of)) {
                return Err(BatchError::Twice(twice));
            }
        }
        Ok(out)
    };
    if statements.len() == 1 && !updates {
        // One statement is atomic by itself: its own error rolls it back. An upsert is checked
        // for rows hit twice after it ran, so it always runs inside the savepoint.
        return run(c);
    }
    diesel::Connection::transaction(c, run)
}

/// Runs `statements` in a transaction (a savepoint inside an open one).
#[cfg(feature = "postgres")]
pub(crate) async fn pg_atomically<T>(
    c: &mut diesel_async::AsyncPgConnection,
    statements: impl AsyncFnOnce(&mut diesel_async::AsyncPgConnection) -> Result<T, AccessError>,
) -> Result<T, AccessError> {
    use diesel_async::{AnsiTransactionManager, TransactionManager};
    let begun = AnsiTransactionManager::begin_transaction(c).await;
    begun.map_err(|source| AccessError::Query { table: "(savepoint)", source })?;
    match statements(c).await {
        Ok(value) => {
            AnsiTransactionManager::commit_transaction(c)
                .await
                .map_err(|source| AccessError::Query { table: "(savepoint)", source })?;
            Ok(value)
        }
        Err(error) => {
            // The statements' error is the one to report; a failed rollback leaves the
            // connection marked broken and the pool drops it.
            let _ = AnsiTransactionManager::rollback_transaction(c).await;
            Err(error)
        }
    }
}

/// The body of a multi-row insert of one table on either backend, returning `$ret` decoded as
/// `$out` (the row model, or `Val<Uuid>` for ids). Expanded once per table and return kind by
/// [`super::impl_records`], so every statement is concrete and type-checked per backend.
macro_rules! insert_rows {
    (
        $conn:expr, $rows:expr, $on_conflict:expr,
        $table:ident, $target:expr, $names:expr,
        returning $ret:expr => $out:ty, id $id_of:expr
    ) => {{
        #[allow(unused_imports)]
        use $crate::access::insert::*;
        use $crate::access::AccessError;
        let rows = $rows;
        let on_conflict: OnConflict = $on_conflict;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let table_name: &'static str = stringify!($table);
        let set = match on_conflict {
            OnConflict::DoUpdate(columns) => Some(ExcludedSet::<$table::table>::new(table_name, columns)?),
            _ => None,
        };
        let id_of: fn(&$out) -> uuid::Uuid = $id_of;
        let out: Vec<$out> = match $conn {
            #[cfg(feature = "postgres")]
            prefect_db_conn::Conn::Postgres(c) => {
                use $crate::prepared::Prepared;
                use diesel_async::RunQueryDsl;
                let c: &mut diesel_async::AsyncPgConnection = &mut **c;
                let several = rows.len() > PG_ROWS_PER_STATEMENT;
                let query = |source| AccessError::Query { table: table_name, source };
                let statements = async |c: &mut diesel_async::AsyncPgConnection| -> Result<Vec<$out>, AccessError> {
                    let mut out: Vec<$out> = Vec::with_capacity(rows.len());
                    let mut rest = rows;
                    while !rest.is_empty() {
                        let tail = rest.split_off(rest.len().min(PG_ROWS_PER_STATEMENT));
                        let chunk = std::mem::replace(&mut rest, tail);
                        let keep = $crate::prepared::worth_preparing(chunk.len());
                        let got: Vec<$out> = match on_conflict {
                            OnConflict::Fail => Prepared::when(keep, diesel::insert_into($table::table).values(chunk).returning($ret))
                                .get_results(c)
                                .await
                                .map_err(query)?,
                            OnConflict::DoNothing => Prepared::when(
                                keep,
                                diesel::insert_into($table::table).values(chunk).on_conflict($target).do_nothing().returning($ret),
                            )
                            .get_results(c)
                            .await
                            .map_err(query)?,
                            OnConflict::DoUpdate(_) => {
                                let Some(set) = set.clone() else { break };
                                Prepared::when(
                                    keep,
                                    diesel::insert_into($table::table)
                                        .values(chunk)
                                        .on_conflict($target)
                                        .do_update()
                                        .set(set)
                                        .returning($ret),
                                )
                                .get_results(c)
                                .await
                                .map_err(|e| {
                                    if hits_row_twice(&e) {
                                        AccessError::UpsertRowTwice { table: table_name, id: None }
                                    } else {
                                        query(e)
                                    }
                                })?
                            }
                        };
                        out.extend(got);
                        if matches!(on_conflict, OnConflict::DoUpdate(_)) {
                            if let Some(id) = first_repeated(out.iter().map(id_of)) {
                                return Err(AccessError::UpsertRowTwice { table: table_name, id: Some(id) });
                            }
                        }
                    }
                    Ok(out)
                };
                if several {
                    // All-or-nothing across statements, as on SQLite: a transaction, or a
                    // savepoint inside the caller's.
                    pg_atomically(c, statements).await?
                } else {
                    statements(c).await?
                }
            }
            #[cfg(feature = "sqlite")]
            prefect_db_conn::Conn::Sqlite(c) => {
                let done = c
                    .spawn_blocking(move |c| {
                        use diesel::Insertable;
                        let target: &'static [&'static str] = $names;
                        let conflict = match on_conflict {
                            OnConflict::Fail => None,
                            OnConflict::DoNothing => Some((target, None)),
                            OnConflict::DoUpdate(_) => Some((target, set.as_ref())),
                        };
                        let values: Vec<_> = rows.into_iter().map(Insertable::values).collect();
                        Ok(sqlite_insert(c, table_name, values, conflict, &$ret, id_of))
                    })
                    .await
                    .map_err(|source| AccessError::Query { table: table_name, source })?;
                match done {
                    Ok(out) => out,
                    Err(BatchError::Db(source)) => return Err(AccessError::Query { table: table_name, source }),
                    Err(BatchError::Twice(id)) => return Err(AccessError::UpsertRowTwice { table: table_name, id: Some(id) }),
                }
            }
        };
        Ok(out)
    }};
}

pub(crate) use insert_rows;
