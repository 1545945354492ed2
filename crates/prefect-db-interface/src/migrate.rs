//! Migrating a configured database: the functions behind `cargo xtask migrate` and the
//! `prefect-db` command line (both run these, so they decide the same things).
//!
//! Each call builds its own single-connection pool (never the application's) and runs the ORM
//! crate's migration runner with adoption of databases real Prefect created. The commands that
//! change the database ([`upgrade`], [`downgrade`], [`stamp`], [`reset`], [`status`]) first make
//! sure it exists (the PostgreSQL database, or the SQLite file and its folder, created when a
//! first connection fails); the ones that only look ([`check`], [`current`], [`history`],
//! [`ping`]) create nothing: a missing SQLite file reads as an empty database (everything
//! pending), a missing PostgreSQL database is the connection error.
//!
//! - [`upgrade`], [`downgrade`], [`status`]: the runner itself.
//! - [`stamp`]: record a revision as applied without running anything (alembic's `stamp`).
//! - [`reset`]: drop every table and migrate again (Prefect's `prefect server database reset`).
//! - [`current`], [`history`]: what is applied, and every migration this build knows.
//! - [`check`]: whether the database is at this build's head, behind it, or ahead of it / not
//!   one this build can migrate ([`CheckOutcome`]).
//! - [`ping`]: whether the database answers within the connection timeout.

use crate::error::InterfaceError;
use prefect_db_config::{DatabaseConfig, DatabaseUrl, DbPool, Dialect, PooledConnection, SqliteTarget, admin};
pub use prefect_orm::migrations::{
    DatabaseState, DowngradeTarget, MigrationInfo, MigrationStatus, StampReport, StampTarget, UpgradeReport,
    UpgradeTarget,
};
use prefect_orm::migrations::{POSTGRES_ALEMBIC_REVISIONS, SQLITE_ALEMBIC_REVISIONS};
use std::time::{Duration, Instant};

/// A connection to the database, creating it first when it does not exist. When it can be
/// neither reached nor created, the error is [`InterfaceError::Unreachable`] with both reasons.
async fn migration_connection(config: &DatabaseConfig) -> Result<PooledConnection, InterfaceError> {
    let first = match single_connection(config).await {
        Ok(conn) => return Ok(conn),
        Err(e) => e,
    };
    if let Err(create) = admin::create_database(config).await {
        return Err(if first.is_unreachable() {
            InterfaceError::Unreachable {
                url: config.url.masked(),
                timeout: config.connection_timeout,
                reason: format!("{first}; creating it failed too: {create}"),
            }
        } else {
            create.into()
        });
    }
    single_connection(config).await
}

async fn single_connection(config: &DatabaseConfig) -> Result<PooledConnection, InterfaceError> {
    let mut single = config.clone();
    single.pool_size = 1;
    single.max_overflow = 0;
    let pool = DbPool::build(&single)?;
    Ok(pool.get().await?)
}

/// The (diesel version, alembic revision) pairs of the dialect's migrations that mirror a
/// Prefect revision.
pub fn alembic_revisions(dialect: Dialect) -> &'static [(&'static str, &'static str)] {
    match dialect {
        Dialect::Postgres => POSTGRES_ALEMBIC_REVISIONS,
        Dialect::Sqlite => SQLITE_ALEMBIC_REVISIONS,
    }
}

/// The Prefect (alembic) revision a migration of `dialect` mirrors, if any.
pub fn alembic_revision_of(dialect: Dialect, version: &str) -> Option<&'static str> {
    alembic_revisions(dialect).iter().find(|(v, _)| *v == version).map(|(_, r)| *r)
}

/// Applies pending migrations up to `target` (adopting a Prefect 3.9.1 database first).
pub async fn upgrade(config: &DatabaseConfig, target: UpgradeTarget) -> Result<UpgradeReport, InterfaceError> {
    let conn = migration_connection(config).await?;
    let report = match conn {
        #[cfg(feature = "postgres")]
        PooledConnection::Postgres(obj, _) => {
            let mut migrator = prefect_orm::migrations::PgMigrator::new(obj)
                .with_statement_timeout(config.migration_timeout)
                .behind_transaction_pooler(prefect_db_config::pg::transaction_settings_sql(config));
            migrator.upgrade(target).await?
        }
        #[cfg(feature = "sqlite")]
        PooledConnection::Sqlite(mut obj) => {
            obj.spawn_blocking(move |c| Ok(prefect_orm::migrations::upgrade_sqlite(c, &target))).await??
        }
    };
    tracing::info!(database = %config.url, adopted = report.adopted.len(), applied = report.applied.len(), "migrated");
    Ok(report)
}

/// Reverts migrations (`Steps(n)`, down to a named version, or everything).
pub async fn downgrade(config: &DatabaseConfig, target: DowngradeTarget) -> Result<Vec<MigrationInfo>, InterfaceError> {
    let conn = migration_connection(config).await?;
    Ok(match conn {
        #[cfg(feature = "postgres")]
        PooledConnection::Postgres(obj, _) => {
            let mut migrator = prefect_orm::migrations::PgMigrator::new(obj)
                .with_statement_timeout(config.migration_timeout)
                .behind_transaction_pooler(prefect_db_config::pg::transaction_settings_sql(config));
            migrator.downgrade(target).await?
        }
        #[cfg(feature = "sqlite")]
        PooledConnection::Sqlite(mut obj) => {
            obj.spawn_blocking(move |c| Ok(prefect_orm::migrations::downgrade_sqlite(c, &target))).await??
        }
    })
}

/// What is applied and pending, and how the database is classified. Changes nothing (beyond
/// creating an empty database or file when it did not exist).
pub async fn status(config: &DatabaseConfig) -> Result<MigrationStatus, InterfaceError> {
    status_on(migration_connection(config).await?, config).await
}

/// The migration runner's status read on `conn`.
async fn status_on(conn: PooledConnection, config: &DatabaseConfig) -> Result<MigrationStatus, InterfaceError> {
    // Only PostgreSQL reads it (behind a transaction-mode pooler).
    #[cfg(not(feature = "postgres"))]
    let _ = config;
    Ok(match conn {
        #[cfg(feature = "postgres")]
        PooledConnection::Postgres(obj, _) => {
            prefect_orm::migrations::PgMigrator::new(obj)
                .behind_transaction_pooler(prefect_db_config::pg::transaction_settings_sql(config))
                .status()
                .await?
        }
        #[cfg(feature = "sqlite")]
        PooledConnection::Sqlite(mut obj) => obj.spawn_blocking(|c| Ok(prefect_orm::migrations::status_sqlite(c))).await??,
    })
}

/// Records the migrations up to `target` as applied without running any (alembic's `stamp`):
/// diesel's bookkeeping lists exactly those, and `alembic_version` holds the Prefect revision the
/// newest of them mirrors. Destructive for the bookkeeping: callers confirm first.
pub async fn stamp(config: &DatabaseConfig, target: StampTarget) -> Result<StampReport, InterfaceError> {
    let conn = migration_connection(config).await?;
    Ok(match conn {
        #[cfg(feature = "postgres")]
        PooledConnection::Postgres(obj, _) => {
            let mut migrator = prefect_orm::migrations::PgMigrator::new(obj)
                .with_statement_timeout(config.migration_timeout)
                .behind_transaction_pooler(prefect_db_config::pg::transaction_settings_sql(config));
            migrator.stamp(target).await?
        }
        #[cfg(feature = "sqlite")]
        PooledConnection::Sqlite(mut obj) => {
            obj.spawn_blocking(move |c| Ok(prefect_orm::migrations::stamp_sqlite(c, &target))).await??
        }
    })
}

/// What [`reset`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetReport {
    /// The tables dropped (bookkeeping included).
    pub dropped: Vec<String>,
    /// The migrations run afterwards.
    pub upgrade: UpgradeReport,
}

/// Drops every table (data, schema and bookkeeping; on PostgreSQL the enum types too) and
/// migrates the empty database to the latest version (Prefect's `prefect server database
/// reset`). Destructive: callers confirm first.
pub async fn reset(config: &DatabaseConfig) -> Result<ResetReport, InterfaceError> {
    let dropped = {
        let mut pooled = migration_connection(config).await?;
        if config.transaction_pooling() {
            // Behind a transaction-mode pooler every statement runs in a transaction.
            pooled
                .conn()
                .transaction(prefect_db_config::TxMode::Write, async |c| Ok::<_, InterfaceError>(admin::drop_all_tables(c).await?))
                .await?
        } else {
            admin::drop_all_tables(&mut pooled.conn()).await?
        }
    };
    tracing::info!(database = %config.url, dropped = dropped.len(), "dropped every table");
    let upgrade = upgrade(config, UpgradeTarget::Latest).await?;
    Ok(ResetReport { dropped, upgrade })
}

/// What is applied ([`current`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Current {
    /// The dialect.
    pub dialect: Dialect,
    /// How the database is classified.
    pub state: DatabaseState,
    /// Applied migrations known to this build, oldest first (the last one is the current one).
    pub applied: Vec<MigrationInfo>,
    /// Applied versions this build does not know.
    pub unknown_applied: Vec<String>,
    /// The rows of `alembic_version` (`None` when the table is missing).
    pub alembic_version: Option<Vec<String>>,
    /// Whether every migration of this build is applied.
    pub at_head: bool,
}

/// [`status`] without creating anything: a missing SQLite file is classified as the empty
/// database `upgrade` would create (read from an in-memory one), and a missing PostgreSQL
/// database is the connection's error.
async fn status_read_only(config: &DatabaseConfig) -> Result<MigrationStatus, InterfaceError> {
    #[cfg(feature = "sqlite")]
    if let DatabaseUrl::Sqlite(SqliteTarget::File(path)) = &config.url
        && !path.exists()
    {
        // An in-memory database is the empty file `upgrade` would create: same classification,
        // same pending migrations, nothing written to disk.
        let failed = |reason: String| {
            InterfaceError::from(prefect_db_config::DbError::Connect { url: config.url.masked(), reason })
        };
        return tokio::task::spawn_blocking(|| {
            use diesel::Connection;
            diesel::SqliteConnection::establish(":memory:")
                .map_err(|e| e.to_string())
                .map(|mut memory| prefect_orm::migrations::status_sqlite(&mut memory))
        })
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(format!("an in-memory database for a missing file: {e}")))?
        .map_err(InterfaceError::from);
    }
    match single_connection(config).await {
        Ok(conn) => status_on(conn, config).await,
        Err(e) if e.is_unreachable() && !matches!(e, InterfaceError::Unreachable { .. }) => Err(InterfaceError::Unreachable {
            url: config.url.masked(),
            timeout: config.connection_timeout,
            reason: e.to_string(),
        }),
        Err(e) => Err(e),
    }
}

/// The applied migrations and the `alembic_version` of the database. Changes nothing and
/// creates nothing.
pub async fn current(config: &DatabaseConfig) -> Result<Current, InterfaceError> {
    let status = status_read_only(config).await?;
    Ok(Current {
        dialect: config.dialect(),
        at_head: status.pending.is_empty() && status.state == DatabaseState::Managed,
        state: status.state,
        applied: status.applied,
        unknown_applied: status.unknown_applied,
        alembic_version: status.alembic_version,
    })
}

/// Whether a migration is applied ([`history`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryState {
    /// Recorded as applied.
    Applied,
    /// Not applied yet.
    Pending,
    /// Recorded as applied but not part of this build (a newer build migrated the database).
    Unknown,
}

/// One line of [`history`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The migration (for an unknown one, its version is also its name).
    pub migration: MigrationInfo,
    /// The Prefect (alembic) revision the migration mirrors, if any.
    pub alembic_revision: Option<&'static str>,
    /// Applied, pending or unknown.
    pub state: HistoryState,
}

/// Every migration this build knows for the database's dialect, oldest first, marked applied or
/// pending, followed by applied versions this build does not know. Changes nothing and creates
/// nothing.
pub async fn history(config: &DatabaseConfig) -> Result<Vec<HistoryEntry>, InterfaceError> {
    let dialect = config.dialect();
    let status = status_read_only(config).await?;
    let entry = |migration: MigrationInfo, state| HistoryEntry {
        alembic_revision: alembic_revision_of(dialect, &migration.version),
        migration,
        state,
    };
    let mut entries: Vec<HistoryEntry> = status
        .applied
        .into_iter()
        .map(|m| entry(m, HistoryState::Applied))
        .chain(status.pending.into_iter().map(|m| entry(m, HistoryState::Pending)))
        .collect();
    entries.sort_by(|a, b| a.migration.version.cmp(&b.migration.version));
    entries.extend(status.unknown_applied.into_iter().map(|v| {
        entry(MigrationInfo { name: v.clone(), version: v }, HistoryState::Unknown)
    }));
    Ok(entries)
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckOutcome {
    /// Every migration of this build is applied and the bookkeeping is consistent.
    UpToDate {
        /// The newest applied migration (`None` only if this build has no migration).
        head: Option<MigrationInfo>,
    },
    /// Migrations are pending: `upgrade` would apply them.
    Pending {
        /// The pending migrations, oldest first.
        pending: Vec<MigrationInfo>,
        /// Whether the database was written by real Prefect and `upgrade` would first record
        /// the migrations it already has (adoption) instead of running them.
        adopt: bool,
    },
    /// diesel's bookkeeping lists migrations this build does not know: a newer build migrated
    /// the database.
    Ahead {
        /// The unknown versions.
        unknown: Vec<String>,
    },
    /// The database was written by a Prefect at an alembic revision this build cannot take
    /// over (older or newer than 3.9.1, or an empty `alembic_version`).
    UnknownAlembicRevision {
        /// The rows of `alembic_version`.
        found: Vec<String>,
        /// The revisions this build can take over.
        supported: Vec<&'static str>,
    },
    /// `alembic_version` disagrees with the applied migrations: another tool (a newer Prefect?)
    /// changed the database after this layer migrated it.
    AlembicMismatch {
        /// The rows of `alembic_version`.
        found: Vec<String>,
        /// What the newest applied migration leaves there.
        expected: &'static str,
    },
    /// Tables without any bookkeeping: not a database of Prefect or of this layer.
    NotManaged {
        /// The tables found, sorted.
        tables: Vec<String>,
    },
}

impl CheckOutcome {
    /// Whether the database is at this build's head.
    pub fn is_up_to_date(&self) -> bool {
        matches!(self, CheckOutcome::UpToDate { .. })
    }

    /// Whether `upgrade` would bring the database to this build's head.
    pub fn is_pending(&self) -> bool {
        matches!(self, CheckOutcome::Pending { .. })
    }
}

/// Decides whether the database is current, behind (pending migrations) or ahead of this build
/// or otherwise not migratable by it, with what was found. Changes nothing and creates nothing.
pub async fn check(config: &DatabaseConfig) -> Result<CheckOutcome, InterfaceError> {
    let dialect = config.dialect();
    Ok(decide(dialect, status_read_only(config).await?))
}

fn decide(dialect: Dialect, status: MigrationStatus) -> CheckOutcome {
    match status.state {
        DatabaseState::Empty if !status.pending.is_empty() => CheckOutcome::Pending { pending: status.pending, adopt: false },
        DatabaseState::Empty => CheckOutcome::UpToDate { head: None },
        DatabaseState::Adoptable { .. } => CheckOutcome::Pending { pending: status.pending, adopt: true },
        DatabaseState::UnsupportedAlembicRevision { found } => CheckOutcome::UnknownAlembicRevision {
            found,
            supported: alembic_revisions(dialect).iter().map(|(_, r)| *r).collect(),
        },
        DatabaseState::Unmanaged { tables } => CheckOutcome::NotManaged { tables },
        DatabaseState::Managed => {
            if !status.unknown_applied.is_empty() {
                return CheckOutcome::Ahead { unknown: status.unknown_applied };
            }
            let last = status.applied.last();
            if let Some(expected) = last.and_then(|m| alembic_revision_of(dialect, &m.version)) {
                let found = status.alembic_version.clone().unwrap_or_default();
                if found.as_slice() != [expected] {
                    return CheckOutcome::AlembicMismatch { found, expected };
                }
            }
            if status.pending.is_empty() {
                CheckOutcome::UpToDate { head: status.applied.last().cloned() }
            } else {
                CheckOutcome::Pending { pending: status.pending, adopt: false }
            }
        }
    }
}

/// A successful [`ping_replica`]: how the read replica answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaPing {
    /// How long connecting to the replica and answering took.
    pub elapsed: Duration,
    /// Whether the replica is in recovery (a standby replaying the primary's WAL). `false` means
    /// the URL names a primary: reads sent there do not see the writes of the configured primary.
    pub in_recovery: bool,
    /// How many bytes of WAL the replica has yet to replay to reach the primary's current
    /// position (0 when caught up); `None` when it could not be measured (not in recovery, or
    /// the primary did not answer).
    pub behind_bytes: Option<f64>,
}

#[derive(diesel::QueryableByName)]
struct PrimaryLsn {
    #[diesel(sql_type = diesel::sql_types::Text)]
    lsn: String,
}

#[derive(diesel::QueryableByName)]
struct ReplicaState {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    in_recovery: bool,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    behind: Option<f64>,
}

/// Pings the read replica of `config` (`read_replica_connection_url`), if one is configured:
/// connects within the connection timeout, asks whether it is in recovery and how far its replay
/// is behind the primary's current WAL position (replication lag is real: a read on the replica
/// may miss a commit of the last moments). `Ok(None)` when no replica is configured; fails with
/// [`InterfaceError::Unreachable`] naming the replica's (masked) URL when it does not answer.
///
/// ```no_run
/// # async fn demo() -> Result<(), prefect_db_interface::InterfaceError> {
/// use prefect_db_interface::config::{DatabaseConfig, DatabaseUrl};
/// let mut config = DatabaseConfig::new(DatabaseUrl::parse("postgresql://db-primary/prefect", "url")?);
/// config.read_replica_url = Some(DatabaseUrl::parse("postgresql://db-replica/prefect", "replica")?);
/// if let Some(r) = prefect_db_interface::migrate::ping_replica(&config).await? {
///     println!("replica in recovery: {}, {:?} bytes behind", r.in_recovery, r.behind_bytes);
/// }
/// # Ok(()) }
/// ```
pub async fn ping_replica(config: &DatabaseConfig) -> Result<Option<ReplicaPing>, InterfaceError> {
    use diesel::sql_types::Text;
    let Some(replica) = config.replica() else { return Ok(None) };
    // The primary's position first, so that the difference is an upper bound of the lag.
    let primary_lsn = async {
        let mut pooled = single_connection(config).await.ok()?;
        let mut conn = pooled.conn();
        let row: Result<PrimaryLsn, diesel::result::Error> = prefect_db_config::dispatch!(&mut conn, |c| {
            diesel_async::RunQueryDsl::get_result(diesel::sql_query("SELECT pg_current_wal_lsn()::text AS lsn"), c).await
        });
        row.ok().map(|r| r.lsn)
    };
    let primary_lsn = tokio::time::timeout(config.connection_timeout, primary_lsn).await.ok().flatten();
    let started = Instant::now();
    let unreachable = |reason: String| InterfaceError::Unreachable {
        url: replica.url.masked(),
        timeout: replica.connection_timeout,
        reason,
    };
    let attempt = async {
        let mut pooled = single_connection(&replica).await?;
        let mut conn = pooled.conn();
        let state: ReplicaState = prefect_db_config::dispatch!(&mut conn, |c| {
            diesel_async::RunQueryDsl::get_result(
                diesel::sql_query(
                    "SELECT pg_is_in_recovery() AS in_recovery, \
                     CASE WHEN pg_is_in_recovery() AND $1 IS NOT NULL \
                          THEN greatest(pg_wal_lsn_diff(CAST($1 AS pg_lsn), pg_last_wal_replay_lsn()), 0)::float8 END AS behind",
                )
                .bind::<diesel::sql_types::Nullable<Text>, _>(primary_lsn.as_deref()),
                c,
            )
            .await
        })?;
        Ok::<_, InterfaceError>(state)
    };
    match tokio::time::timeout(replica.connection_timeout, attempt).await {
        Ok(Ok(state)) => Ok(Some(ReplicaPing {
            elapsed: started.elapsed(),
            in_recovery: state.in_recovery,
            behind_bytes: state.behind,
        })),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable("no answer in time".to_owned())),
    }
}

/// A successful [`ping`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PingReport {
    /// How long connecting and answering `SELECT 1` took.
    pub elapsed: Duration,
}

/// Connects to the database and runs `SELECT 1`, within the configured connection timeout; never
/// hangs and creates nothing (a missing SQLite file is unreachable, not created). Fails with
/// [`InterfaceError::Unreachable`].
pub async fn ping(config: &DatabaseConfig) -> Result<PingReport, InterfaceError> {
    let started = Instant::now();
    let unreachable = |reason: String| InterfaceError::Unreachable {
        url: config.url.masked(),
        timeout: config.connection_timeout,
        reason,
    };
    if let DatabaseUrl::Sqlite(SqliteTarget::File(path)) = &config.url
        && !path.exists()
    {
        return Err(unreachable(format!("the SQLite file {} does not exist", path.display())));
    }
    let attempt = async {
        let mut pooled = single_connection(config).await?;
        let mut conn = pooled.conn();
        prefect_db_config::dispatch!(&mut conn, |c| {
            diesel_async::RunQueryDsl::execute(diesel::sql_query("SELECT 1"), c).await
        })?;
        Ok::<_, InterfaceError>(())
    };
    match tokio::time::timeout(config.connection_timeout, attempt).await {
        Ok(Ok(())) => Ok(PingReport { elapsed: started.elapsed() }),
        Ok(Err(e)) => Err(unreachable(e.to_string())),
        Err(_) => Err(unreachable("no answer in time".to_owned())),
    }
}
