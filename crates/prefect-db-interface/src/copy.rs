//! Copying a whole Prefect 3.9.1 database from one database to another, across dialects
//! (SQLite → PostgreSQL, PostgreSQL → SQLite, or the same dialect), the library behind
//! `prefect-db copy --from URL --to URL`.
//!
//! What [`copy_database`] does, in order:
//! 1. Refuses a source that is not at Prefect 3.9.1's schema ([`CopyError::SourceSchema`], with
//!    the first differences), a missing SQLite source file, and a source that is the target.
//! 2. Refuses a target that holds any row unless [`CopyOptions::replace`]
//!    ([`CopyError::TargetNotEmpty`]); this check runs before anything is written.
//! 3. Migrates the target with our migrations ([`crate::migrate::upgrade`]).
//! 4. In **one transaction on the target** (so an interrupted or failed copy leaves nothing
//!    behind): deletes the target's rows when replacing, copies every table in foreign-key order
//!    ([`PrefectTable::ALL`]) in batches that respect the bind-parameter limits (999 on SQLite,
//!    32767 on PostgreSQL), ids and every value kept, the three cycle columns inserted NULL and
//!    set at the end (see [`crate::tables`]); then verifies: row counts per table and a
//!    [`Checksum`] of every typed row (in id order) compared between source and target. A
//!    mismatch is an error and rolls everything back.
//!
//! The source is read in one read transaction (REPEATABLE READ on PostgreSQL), so a source
//! being written to while it is copied still gives a consistent snapshot.
//!
//! Progress is reported through a callback ([`CopyEvent`]); returning an error from it stops the
//! copy and rolls the target back.

use crate::error::InterfaceError;
use crate::migrate::{self, UpgradeTarget};
use crate::tables::{Checksum, PrefectTable, TableError, max_batch_rows};
use prefect_db_config::{Conn, DatabaseConfig, DatabaseUrl, DbError, DbPool, SqliteTarget, TxMode};
use std::time::{Duration, Instant};

/// How to copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Delete the target's rows (in the same transaction) instead of refusing a non-empty target.
    pub replace: bool,
    /// Rows read per page and inserted per statement (capped by the dialect's bind-parameter
    /// limit for each table).
    pub batch_size: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions { replace: false, batch_size: 1000 }
    }
}

/// What the copy is doing, for progress reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CopyEvent {
    /// The source passed the schema check; these are its row counts per table.
    SourceChecked {
        /// Rows per table, in copy order.
        counts: Vec<(PrefectTable, i64)>,
    },
    /// The target was emptied (`replace`).
    TargetCleared {
        /// Rows deleted in total.
        rows: usize,
    },
    /// Rows of a table were copied so far.
    Rows {
        /// The table.
        table: PrefectTable,
        /// Rows copied so far.
        copied: u64,
        /// Rows in the source table.
        total: u64,
    },
    /// A table is copied.
    TableDone {
        /// The table.
        table: PrefectTable,
        /// Rows copied.
        rows: u64,
    },
    /// The cycle columns were set.
    DeferredApplied {
        /// Rows updated.
        rows: usize,
    },
    /// The target verified equal to the source for a table.
    Verified {
        /// The table.
        table: PrefectTable,
        /// Rows compared.
        rows: u64,
        /// Their checksum.
        checksum: Checksum,
    },
}

/// Rows and checksum of one table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSummary {
    /// The table.
    pub table: PrefectTable,
    /// Its row count.
    pub rows: u64,
    /// The checksum of its typed rows in id order.
    pub checksum: Checksum,
}

/// What a finished copy did.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyReport {
    /// Per table, in copy order: rows and checksum (equal on source and target).
    pub tables: Vec<TableSummary>,
    /// Rows copied in total.
    pub rows: u64,
    /// Time spent copying (reading, inserting, verifying, committing), migrations excluded.
    pub elapsed: Duration,
}

impl CopyReport {
    /// Rows copied per second.
    pub fn rows_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 { self.rows as f64 / secs } else { 0.0 }
    }
}

/// Why a copy failed. Nothing is left in the target in any of these cases (the target may have
/// been migrated).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CopyError {
    /// Connecting, migrating, configuration.
    #[error(transparent)]
    Interface(#[from] InterfaceError),
    /// The source's schema is not Prefect 3.9.1's.
    #[error(
        "the source database is not at Prefect 3.9.1's schema ({} differences; `-` only in the source, `+` only in Prefect 3.9.1); first differences:\n  {}",
        differences.len(),
        differences.iter().take(10).cloned().collect::<Vec<_>>().join("\n  ")
    )]
    SourceSchema {
        /// Every difference found.
        differences: Vec<String>,
    },
    /// The source's schema could not be read.
    #[error("cannot read the source's schema: {0}")]
    SchemaRead(#[from] prefect_orm::schema_check::SchemaCheckError),
    /// The source SQLite file does not exist.
    #[error("the source database file {0} does not exist")]
    SourceMissing(String),
    /// Source and target are the same database.
    #[error("the source and the target are the same database ({0})")]
    SameDatabase(String),
    /// The target holds rows and `replace` was not asked for.
    #[error(
        "the target database is not empty ({}); pass --replace to delete its contents",
        tables.iter().map(|(t, n)| format!("{t}: {n} rows")).collect::<Vec<_>>().join(", ")
    )]
    TargetNotEmpty {
        /// Tables with rows, and how many.
        tables: Vec<(String, i64)>,
    },
    /// A table operation failed (including values that cannot be decoded).
    #[error(transparent)]
    Table(#[from] TableError),
    /// The progress callback stopped the copy.
    #[error("copy interrupted: {0}")]
    Interrupted(String),
    /// The target differs from the source after copying.
    #[error(
        "verification failed for {table}: source {source_rows} rows (checksum {source_checksum}), target {target_rows} rows (checksum {target_checksum})"
    )]
    Verification {
        /// The table.
        table: &'static str,
        /// Rows in the source.
        source_rows: u64,
        /// Rows in the target.
        target_rows: u64,
        /// The source's checksum.
        source_checksum: Checksum,
        /// The target's checksum.
        target_checksum: Checksum,
    },
}

impl From<DbError> for CopyError {
    fn from(e: DbError) -> Self {
        CopyError::Interface(InterfaceError::Db(e))
    }
}

impl From<diesel::result::Error> for CopyError {
    fn from(e: diesel::result::Error) -> Self {
        CopyError::Interface(InterfaceError::from(e))
    }
}

/// The progress callback: an error stops the copy (everything is rolled back).
pub type Progress<'a> = &'a mut (dyn FnMut(&CopyEvent) -> Result<(), String> + Send);

/// Checks a live connection's schema against Prefect 3.9.1's; returns the differences.
pub async fn schema_differences(conn: &mut Conn<'_>) -> Result<Vec<String>, CopyError> {
    Ok(match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => prefect_orm::schema_check::check_postgres_against_prefect_3_9_1(c).await?,
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => c
            .spawn_blocking(|inner| {
                Ok(prefect_orm::schema_check::check_sqlite_against_prefect_3_9_1(inner)
                    .map_err(|e| diesel::result::Error::QueryBuilderError(Box::new(e))))
            })
            .await??,
    })
}

/// Row counts and checksums of every table (read through the typed models, page by page).
pub async fn summarize(conn: &mut Conn<'_>, page_size: usize) -> Result<Vec<TableSummary>, TableError> {
    let mut out = Vec::new();
    for &table in PrefectTable::ALL {
        out.push(summarize_table(conn, table, page_size).await?);
    }
    Ok(out)
}

/// Row count and checksum of one table.
pub async fn summarize_table(conn: &mut Conn<'_>, table: PrefectTable, page_size: usize) -> Result<TableSummary, TableError> {
    let limit = page_size.max(1) as i64;
    let mut sum = Checksum::default();
    let mut rows = 0u64;
    let mut after = None;
    loop {
        let page = table.read_page(conn, after, limit).await?;
        page.checksum_into(&mut sum);
        rows += page.len() as u64;
        after = page.last_id();
        if (page.len() as i64) < limit {
            return Ok(TableSummary { table, rows, checksum: sum });
        }
    }
}

/// Row counts of the tables that hold rows (tables that do not exist count as empty).
pub async fn non_empty_tables(conn: &mut Conn<'_>) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for &table in PrefectTable::ALL {
        if let Ok(n) = table.count(conn).await
            && n > 0
        {
            out.push((table.name().to_owned(), n));
        }
    }
    out
}

fn single_connection(config: &DatabaseConfig) -> DatabaseConfig {
    let mut single = config.clone();
    single.pool_size = 1;
    single.max_overflow = 0;
    // Copies run long statements on big tables; a server's per-statement timeout is not meant
    // for them.
    single.statement_timeout = None;
    // A copy reads each page once, in order: a server's large page cache (Prefect's 20,000
    // pages, about 80 MB) would only hold pages that are not read again and make the copy's
    // memory grow with the database's size up to that much.
    single.sqlite.cache_size = COPY_SQLITE_CACHE_PAGES;
    single
}

/// `PRAGMA cache_size` of a copy's SQLite connections: 2,000 pages (about 8 MB).
pub const COPY_SQLITE_CACHE_PAGES: i64 = 2_000;

fn same_database(a: &DatabaseUrl, b: &DatabaseUrl) -> bool {
    match (a, b) {
        (DatabaseUrl::Sqlite(SqliteTarget::File(x)), DatabaseUrl::Sqlite(SqliteTarget::File(y))) => {
            x == y || matches!((x.canonicalize(), y.canonicalize()), (Ok(p), Ok(q)) if p == q)
        }
        (DatabaseUrl::Postgres(x), DatabaseUrl::Postgres(y)) => {
            x.host() == y.host() && x.port() == y.port() && x.database() == y.database()
        }
        _ => false,
    }
}

/// Copies every row of `source` into `target`; see the [module documentation](self).
pub async fn copy_database(
    source: &DatabaseConfig,
    target: &DatabaseConfig,
    options: &CopyOptions,
    progress: Progress<'_>,
) -> Result<CopyReport, CopyError> {
    if same_database(&source.url, &target.url) {
        return Err(CopyError::SameDatabase(source.url.masked()));
    }
    if let DatabaseUrl::Sqlite(SqliteTarget::File(path)) = &source.url
        && !path.exists()
    {
        return Err(CopyError::SourceMissing(path.display().to_string()));
    }
    if matches!(source.url, DatabaseUrl::Sqlite(SqliteTarget::Memory)) {
        return Err(CopyError::SourceMissing(":memory:".to_owned()));
    }

    let source_pool = DbPool::build(&single_connection(source)).map_err(InterfaceError::from)?;
    let mut source_conn = source_pool.get().await.map_err(InterfaceError::from)?;
    let differences = schema_differences(&mut source_conn.conn()).await?;
    if !differences.is_empty() {
        return Err(CopyError::SourceSchema { differences });
    }

    // Refuse a non-empty target before changing anything in it (migrating included).
    if prefect_db_config::admin::is_connectable(target).await {
        let target_pool = DbPool::build(&single_connection(target)).map_err(InterfaceError::from)?;
        let mut conn = target_pool.get().await.map_err(InterfaceError::from)?;
        let filled = non_empty_tables(&mut conn.conn()).await;
        if !filled.is_empty() && !options.replace {
            return Err(CopyError::TargetNotEmpty { tables: filled });
        }
    }
    migrate::upgrade(target, UpgradeTarget::Latest).await?;

    let target_pool = DbPool::build(&single_connection(target)).map_err(InterfaceError::from)?;
    let mut target_conn = target_pool.get().await.map_err(InterfaceError::from)?;
    let batch = options.batch_size.max(1);
    let started = Instant::now();

    let mut src = source_conn.conn();
    let tables = src
        .transaction(TxMode::Read, async |src: &mut Conn<'_>| {
            if src.dialect() == prefect_db_config::Dialect::Postgres {
                src.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?;
            }
            let mut counts = Vec::new();
            for &table in PrefectTable::ALL {
                counts.push((table, table.count(src).await?));
            }
            progress(&CopyEvent::SourceChecked { counts: counts.clone() }).map_err(CopyError::Interrupted)?;
            let mut dst = target_conn.conn();
            dst.transaction(TxMode::Write, async |dst: &mut Conn<'_>| {
                copy_in_transaction(src, dst, &counts, options.replace, batch, progress).await
            })
            .await
        })
        .await?;

    let rows = tables.iter().map(|t| t.rows).sum();
    Ok(CopyReport { tables, rows, elapsed: started.elapsed() })
}

async fn copy_in_transaction(
    src: &mut Conn<'_>,
    dst: &mut Conn<'_>,
    counts: &[(PrefectTable, i64)],
    replace: bool,
    batch: usize,
    progress: Progress<'_>,
) -> Result<Vec<TableSummary>, CopyError> {
    if replace {
        let mut deleted = 0;
        for &table in PrefectTable::ALL {
            table.null_deferred(dst).await?;
        }
        for &table in PrefectTable::ALL.iter().rev() {
            deleted += table.delete_all(dst).await?;
        }
        progress(&CopyEvent::TargetCleared { rows: deleted }).map_err(CopyError::Interrupted)?;
    }

    let dialect = dst.dialect();
    let mut deferred = Vec::new();
    let mut source_sums = Vec::new();
    for &(table, total) in counts {
        let limit = batch as i64;
        let per_insert = batch.min(max_batch_rows(dialect, table.columns().len()));
        let mut sum = Checksum::default();
        let mut copied = 0u64;
        let mut after = None;
        loop {
            let mut page = table.read_page(src, after, limit).await?;
            let n = page.len();
            after = page.last_id();
            page.checksum_into(&mut sum);
            let later = page.take_deferred();
            if !later.is_empty() {
                deferred.push(later);
            }
            for chunk in page.chunks(per_insert) {
                chunk.insert(dst).await?;
            }
            copied += n as u64;
            if n > 0 {
                progress(&CopyEvent::Rows { table, copied, total: total.max(0) as u64 }).map_err(CopyError::Interrupted)?;
            }
            if (n as i64) < limit {
                break;
            }
        }
        progress(&CopyEvent::TableDone { table, rows: copied }).map_err(CopyError::Interrupted)?;
        source_sums.push(TableSummary { table, rows: copied, checksum: sum });
    }

    let mut updated = 0;
    for rows in deferred {
        updated += rows.apply_deferred(dst).await?;
    }
    progress(&CopyEvent::DeferredApplied { rows: updated }).map_err(CopyError::Interrupted)?;

    for expected in &source_sums {
        let got = summarize_table(dst, expected.table, batch).await?;
        if got != *expected {
            return Err(CopyError::Verification {
                table: expected.table.name(),
                source_rows: expected.rows,
                target_rows: got.rows,
                source_checksum: expected.checksum,
                target_checksum: got.checksum,
            });
        }
        progress(&CopyEvent::Verified { table: expected.table, rows: got.rows, checksum: got.checksum })
            .map_err(CopyError::Interrupted)?;
    }
    Ok(source_sums)
}

impl std::fmt::Display for PrefectTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
