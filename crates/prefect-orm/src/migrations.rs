//! The embedded migrations of each dialect and the runner that applies them.
//!
//! The migrations live in `migrations/sqlite` and `migrations/postgresql` at the repository root
//! (see `migrations/README.md`). The first one, [`BASELINE_NAME`], creates exactly the schema of a
//! database migrated by Prefect 3.9.1, including the `alembic_version` row of that dialect's
//! head ([`SQLITE_ALEMBIC_HEAD`], [`POSTGRES_ALEMBIC_HEAD`]), so real Prefect 3.9.1 treats a
//! database we created as current.
//!
//! # Adoption
//!
//! Before upgrading (and downgrading), the runner classifies the database ([`DatabaseState`]):
//!
//! * diesel's `__diesel_schema_migrations` holds rows: the database is ours; run what is
//!   pending. Refused when it lists versions this build does not know (a newer build migrated
//!   it) or when its `alembic_version` no longer matches the applied migrations (another tool,
//!   such as a newer Prefect, changed it).
//! * no diesel bookkeeping, `alembic_version` holds a revision that one of our migrations mirrors
//!   (today: Prefect 3.9.1's head): a database written by real Prefect. Create the bookkeeping
//!   and record the migrations up to that one as applied, without touching schema or data.
//! * no diesel bookkeeping, `alembic_version` at any other revision (or empty): refused with
//!   [`MigrationError::UnsupportedAlembicRevision`].
//! * no bookkeeping at all but some table or view: refused with [`MigrationError::NotEmpty`].
//! * nothing: every migration runs.
//!
//! Refusals change nothing. Adoption happens in one transaction.
//!
//! # Stamping
//!
//! [`StampTarget`] (alembic's `stamp`): rewrite the bookkeeping without running anything, so
//! that exactly the migrations up to the target are recorded in `__diesel_schema_migrations`
//! and `alembic_version` holds the Prefect revision the newest of them mirrors (emptied for
//! `Base`). It works on any database, whatever its state: it is how an operator repairs
//! bookkeeping by hand.
//!
//! # SQLite
//!
//! The SQLite functions ([`upgrade_sqlite`], [`downgrade_sqlite`], [`status_sqlite`]) are
//! synchronous and take a plain [`diesel::SqliteConnection`]; from async code call them inside
//! `tokio::task::spawn_blocking`. Like Prefect's `env.py`, the run switches `foreign_keys` off
//! (table rebuilds need it) and restores the previous setting afterwards, and each migration runs
//! in its own `BEGIN IMMEDIATE` transaction that first checks it is still pending, so concurrent
//! migrators do not apply one twice. Give the connection a `busy_timeout`.
//!
//! # PostgreSQL
//!
//! diesel has no synchronous PostgreSQL connection in this workspace (no libpq), so
//! [`PgMigrator`] owns an async connection (an `AsyncPgConnection`, or a pooled object that
//! derefs to one) and runs diesel's synchronous harness on it through
//! [`AsyncConnectionWrapper`] inside `tokio::task::spawn_blocking`. Its methods are async and
//! work on any tokio runtime; [`PgMigrator::into_inner`] hands the connection back.
//! Upgrades and downgrades hold the session-level `pg_advisory_lock(`[`MIGRATION_LOCK_KEY`]`)`
//! for the whole run (released afterwards, also on error), so concurrent migrators apply each
//! migration once; while waiting for the lock `statement_timeout` is 0, during the run it is the
//! optional migration timeout (0 = none, Prefect's default), and the session's previous value
//! is restored at the end.

use diesel::migration::{Migration, MigrationSource};
use diesel::sql_types::Text;
use diesel::{QueryableByName, RunQueryDsl};
use std::fmt;

#[cfg(feature = "postgres")]
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
#[cfg(any(feature = "postgres", feature = "sqlite"))]
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

/// The version of the baseline migration (the digits diesel records in
/// `__diesel_schema_migrations`), the same on both dialects.
pub const BASELINE_VERSION: &str = "00000000000001";

/// The full name (folder) of the baseline migration, the same on both dialects.
pub const BASELINE_NAME: &str = "00000000000001_prefect_3_9_1_baseline";

/// Prefect 3.9.1's alembic head on SQLite: the `alembic_version` of a current 3.9.1 database.
pub const SQLITE_ALEMBIC_HEAD: &str = "27d8f4e1a6c9";

/// Prefect 3.9.1's alembic head on PostgreSQL: the `alembic_version` of a current 3.9.1 database.
pub const POSTGRES_ALEMBIC_HEAD: &str = "91e2b8f3d6a4";

/// For each SQLite migration that mirrors a Prefect alembic revision: (diesel version, the
/// revision `alembic_version` holds once it is applied). A database written by real Prefect at
/// one of these revisions is adopted; a managed database whose `alembic_version` disagrees with
/// its last applied migration is refused. Every new migration adds its pair here.
pub const SQLITE_ALEMBIC_REVISIONS: &[(&str, &str)] = &[(BASELINE_VERSION, SQLITE_ALEMBIC_HEAD)];

/// The PostgreSQL counterpart of [`SQLITE_ALEMBIC_REVISIONS`].
pub const POSTGRES_ALEMBIC_REVISIONS: &[(&str, &str)] =
    &[(BASELINE_VERSION, POSTGRES_ALEMBIC_HEAD)];

/// The key of the session-level PostgreSQL advisory lock held while migrating
/// (the ASCII bytes of `"prfctmig"`).
pub const MIGRATION_LOCK_KEY: i64 = 0x7072_6663_746d_6967;

/// diesel's bookkeeping table.
pub const DIESEL_BOOKKEEPING_TABLE: &str = "__diesel_schema_migrations";

/// Alembic's bookkeeping table, kept up to date by our migrations so Prefect can read it.
pub const ALEMBIC_VERSION_TABLE: &str = "alembic_version";

/// The SQLite migrations (`migrations/sqlite`).
#[cfg(feature = "sqlite")]
pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// The PostgreSQL migrations (`migrations/postgresql`).
#[cfg(feature = "postgres")]
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations =
    embed_migrations!("../../migrations/postgresql");

/// Why migrating failed or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrationError {
    /// A query of the runner itself failed.
    #[error("database error while migrating: {0}")]
    Database(#[from] diesel::result::Error),
    /// A migration (or its revert) failed; its transaction, if it had one, was rolled back.
    #[error("migration {name} failed: {source}")]
    Migration {
        /// The migration's full name.
        name: String,
        /// What diesel reported.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The migrations embedded in this build could not be listed.
    #[error("cannot list the embedded migrations: {0}")]
    Source(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database carries a Prefect (alembic) revision that no migration of this build mirrors.
    #[error(
        "this {dialect} database is at Prefect (alembic) revision {found}, but this build can \
         only take over databases at {supported} (the head of Prefect 3.9.1 on {dialect}). If an \
         older Prefect wrote it, first upgrade it to 3.9.1 with Prefect 3.9.1's `prefect server \
         database upgrade`; if a newer Prefect wrote it, this build is too old for it. Nothing \
         was changed.",
        found = describe_revisions(.found),
        supported = .supported.join(", ")
    )]
    UnsupportedAlembicRevision {
        /// `"sqlite"` or `"postgresql"`.
        dialect: &'static str,
        /// The rows of `alembic_version` (normally one; none when the table is empty).
        found: Vec<String>,
        /// The revisions this build can adopt.
        supported: Vec<&'static str>,
    },
    /// The database holds tables but neither alembic's nor diesel's bookkeeping.
    #[error(
        "the database is not empty ({count} table(s) or view(s), e.g. {}) but has neither an \
         alembic_version nor a __diesel_schema_migrations table, so it was not created by \
         Prefect or by this layer; refusing to migrate it. Use an empty database. Nothing was \
         changed.",
        .tables.join(", ")
    )]
    NotEmpty {
        /// Up to ten of the tables found, sorted.
        tables: Vec<String>,
        /// How many tables and views were found.
        count: usize,
    },
    /// diesel's bookkeeping lists migrations this build does not have.
    #[error(
        "the database records migration(s) {} that this build does not know: it was migrated \
         by a newer build; use that build (or newer). Nothing was changed.",
        .versions.join(", ")
    )]
    UnknownAppliedMigrations {
        /// The unknown versions.
        versions: Vec<String>,
    },
    /// `alembic_version` disagrees with the migrations diesel's bookkeeping says are applied.
    #[error(
        "alembic_version holds {found} but the last applied migration {version} leaves \
         {expected}: another tool (a newer Prefect?) changed this database after this layer \
         migrated it; refusing to migrate it. Nothing was changed.",
        found = describe_revisions(.found)
    )]
    AlembicMismatch {
        /// The rows of `alembic_version` (none when the table is missing or empty).
        found: Vec<String>,
        /// The revision the last applied migration leaves.
        expected: &'static str,
        /// The last applied migration version.
        version: String,
    },
    /// The named target is not one of this build's migrations.
    #[error("no migration named {target} in this build")]
    UnknownTarget {
        /// The target as given.
        target: String,
    },
    /// A downgrade target that is not applied.
    #[error("cannot downgrade to {target}: it is not applied")]
    TargetNotApplied {
        /// The target as given.
        target: String,
    },
    /// A downgrade by more steps than there are applied migrations.
    #[error("cannot revert {requested} migration(s): only {applied} applied")]
    TooManySteps {
        /// Steps asked for.
        requested: usize,
        /// Migrations applied.
        applied: usize,
    },
    /// The [`PgMigrator`] lost its connection in an earlier failed run.
    #[error("the migration connection was lost in an earlier failed run")]
    ConnectionLost,
    /// The blocking task that ran the migrations panicked or was cancelled.
    #[error("the migration task failed: {0}")]
    Task(String),
}

fn describe_revisions(found: &[String]) -> String {
    if found.is_empty() {
        "<none> (alembic_version is empty)".to_owned()
    } else {
        found.join(", ")
    }
}

/// One migration: its version and full name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MigrationInfo {
    /// The version diesel records (`00000000000001`).
    pub version: String,
    /// The full name (`00000000000001_prefect_3_9_1_baseline`).
    pub name: String,
}

impl fmt::Display for MigrationInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// How far to upgrade.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum UpgradeTarget {
    /// Apply everything pending.
    #[default]
    Latest,
    /// Apply pending migrations up to and including this one (a version or a full name).
    To(String),
}

/// How far to downgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DowngradeTarget {
    /// Revert the newest N applied migrations.
    Steps(usize),
    /// Revert every migration newer than this one (a version or a full name), which stays applied.
    To(String),
    /// Revert every migration: the database is empty afterwards (but for diesel's bookkeeping).
    Base,
}

/// What the database is, as seen before migrating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseState {
    /// No tables (diesel's bookkeeping without rows does not count).
    Empty,
    /// diesel's bookkeeping lists applied migrations.
    Managed,
    /// Written by real Prefect at a revision one of our migrations mirrors, not yet adopted:
    /// upgrading records the migrations up to that one as applied without running them.
    Adoptable {
        /// The revision in `alembic_version`.
        alembic_revision: String,
    },
    /// Written by a Prefect whose revision this build cannot take over.
    UnsupportedAlembicRevision {
        /// The rows of `alembic_version`.
        found: Vec<String>,
    },
    /// Tables without any bookkeeping.
    Unmanaged {
        /// The tables and views found, sorted.
        tables: Vec<String>,
    },
}

/// The migration status of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// What the database is.
    pub state: DatabaseState,
    /// The rows of `alembic_version`, when the table exists.
    pub alembic_version: Option<Vec<String>>,
    /// Applied migrations known to this build, oldest first.
    pub applied: Vec<MigrationInfo>,
    /// Applied versions this build does not know (a newer build migrated the database).
    pub unknown_applied: Vec<String>,
    /// Migrations of this build not applied yet, oldest first (for an [`DatabaseState::Adoptable`]
    /// database this includes the ones adoption would record).
    pub pending: Vec<MigrationInfo>,
}

/// What an upgrade did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpgradeReport {
    /// Migrations recorded as applied without running them (adoption of a Prefect database).
    pub adopted: Vec<MigrationInfo>,
    /// Migrations run, oldest first.
    pub applied: Vec<MigrationInfo>,
}

/// What [`stamp_sqlite`] / [`PgMigrator::stamp`] record as applied (alembic's `stamp`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StampTarget {
    /// Nothing applied: diesel's bookkeeping emptied, `alembic_version` emptied.
    Base,
    /// Every migration of this build applied; `alembic_version` at the newest mirrored revision.
    Head,
    /// This migration (a version, a full name, or the alembic revision one of them mirrors) and
    /// every older one applied, every newer one not.
    To(String),
}

/// What a stamp changed. Stamping runs no migration: it rewrites the bookkeeping only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StampReport {
    /// Migrations newly recorded as applied, oldest first.
    pub recorded: Vec<MigrationInfo>,
    /// Versions removed from diesel's bookkeeping (newer than the target, or unknown to this
    /// build), newest first.
    pub removed: Vec<String>,
    /// The `alembic_version` row afterwards (`None`: no row).
    pub alembic_version: Option<String>,
}

// ------------------------------------------------------------------------------------------
// The dialect-independent runner
// ------------------------------------------------------------------------------------------

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Text)]
    v: String,
}

/// What the runner needs from a connection; implemented for each dialect.
trait Engine: Sized {
    type Db: diesel::backend::Backend;
    /// `"sqlite"` / `"postgresql"`.
    const DIALECT: &'static str;
    const REVISIONS: &'static [(&'static str, &'static str)];
    /// Lists the user tables and views of the database (schema), sorted.
    const LIST_TABLES: &'static str;

    fn migrations() -> Result<Vec<Box<dyn Migration<Self::Db>>>, MigrationError>;
    /// Runs a query whose single text column is called `v`.
    fn strings(&mut self, sql: &str) -> Result<Vec<String>, MigrationError>;
    fn exec(&mut self, sql: &str) -> Result<(), MigrationError>;
    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE` on SQLite).
    fn write_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, MigrationError>,
    ) -> Result<T, MigrationError>;
    /// Creates diesel's bookkeeping table if missing (`setup_bookkeeping`).
    fn setup(&mut self) -> Result<(), MigrationError>;
    /// Runs or reverts one migration (`step_migration`).
    fn step(&mut self, m: &dyn Migration<Self::Db>, step: Step) -> Result<(), MigrationError>;
}

/// Which way `step_migration` moves a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Run,
    Revert,
}

/// Creates diesel's bookkeeping table if missing: the one implementation of
/// [`Engine::setup`] for both dialects.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn setup_bookkeeping<C: diesel::migration::MigrationConnection>(
    conn: &mut C,
) -> Result<(), MigrationError> {
    conn.setup()?;
    Ok(())
}

/// Runs or reverts one migration through diesel's harness (which also adds or removes its row
/// in the bookkeeping), naming the migration when it fails: the one implementation of
/// [`Engine::step`] for both dialects.
#[cfg(any(feature = "postgres", feature = "sqlite"))]
fn step_migration<DB, C>(
    conn: &mut C,
    m: &dyn Migration<DB>,
    step: Step,
) -> Result<(), MigrationError>
where
    DB: diesel::backend::Backend,
    C: MigrationHarness<DB>,
{
    let result = match step {
        Step::Run => conn.run_migration(m).map(drop),
        Step::Revert => conn.revert_migration(m).map(drop),
    };
    result.map_err(|source| MigrationError::Migration {
        name: m.name().to_string(),
        source,
    })
}

struct Known<DB> {
    info: MigrationInfo,
    migration: Box<dyn Migration<DB>>,
}

fn known<E: Engine>() -> Result<Vec<Known<E::Db>>, MigrationError> {
    let mut all: Vec<Known<E::Db>> = E::migrations()?
        .into_iter()
        .map(|migration| Known {
            info: MigrationInfo {
                version: migration.name().version().to_string(),
                name: migration.name().to_string(),
            },
            migration,
        })
        .collect();
    all.sort_by(|a, b| a.info.version.cmp(&b.info.version));
    Ok(all)
}

fn source_error(e: Box<dyn std::error::Error + Send + Sync>) -> MigrationError {
    MigrationError::Source(e)
}

/// What the runner sees in the database.
struct Observed {
    tables: Vec<String>,
    /// Rows of diesel's bookkeeping, `None` when the table is missing.
    applied: Option<Vec<String>>,
    /// Rows of `alembic_version`, `None` when the table is missing.
    alembic: Option<Vec<String>>,
}

impl Observed {
    fn managed(&self) -> bool {
        self.applied.as_ref().is_some_and(|a| !a.is_empty())
    }

    fn applied(&self) -> &[String] {
        self.applied.as_deref().unwrap_or(&[])
    }

    /// Tables and views other than diesel's bookkeeping.
    fn user_tables(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter(|t| *t != DIESEL_BOOKKEEPING_TABLE)
            .cloned()
            .collect()
    }
}

fn observe<E: Engine>(e: &mut E) -> Result<Observed, MigrationError> {
    let tables = e.strings(E::LIST_TABLES)?;
    let has = |name: &str| tables.iter().any(|t| t == name);
    let applied = if has(DIESEL_BOOKKEEPING_TABLE) {
        Some(e.strings("SELECT version AS v FROM __diesel_schema_migrations ORDER BY version")?)
    } else {
        None
    };
    let alembic = if has(ALEMBIC_VERSION_TABLE) {
        Some(e.strings("SELECT version_num AS v FROM alembic_version ORDER BY version_num")?)
    } else {
        None
    };
    Ok(Observed {
        tables,
        applied,
        alembic,
    })
}

fn classify<E: Engine>(obs: &Observed) -> DatabaseState {
    if obs.managed() {
        return DatabaseState::Managed;
    }
    if let Some(found) = &obs.alembic {
        return match found.as_slice() {
            [rev] if E::REVISIONS.iter().any(|(_, r)| r == rev) => DatabaseState::Adoptable {
                alembic_revision: rev.clone(),
            },
            _ => DatabaseState::UnsupportedAlembicRevision {
                found: found.clone(),
            },
        };
    }
    let tables = obs.user_tables();
    if tables.is_empty() {
        DatabaseState::Empty
    } else {
        DatabaseState::Unmanaged { tables }
    }
}

/// Classifies the database and, when it is a Prefect database we can take over, records the
/// migrations it already has. Runs in one write transaction; refusals change nothing.
/// Returns the applied versions afterwards and the adopted migrations.
fn preflight<E: Engine>(
    e: &mut E,
    all: &[Known<E::Db>],
) -> Result<(Vec<String>, Vec<MigrationInfo>), MigrationError> {
    e.write_tx(|e| {
        let obs = observe(e)?;
        match classify::<E>(&obs) {
            DatabaseState::Empty => Ok((Vec::new(), Vec::new())),
            DatabaseState::Managed => {
                let applied = obs.applied().to_vec();
                let unknown: Vec<String> = applied
                    .iter()
                    .filter(|v| !all.iter().any(|k| &k.info.version == *v))
                    .cloned()
                    .collect();
                if !unknown.is_empty() {
                    return Err(MigrationError::UnknownAppliedMigrations { versions: unknown });
                }
                let last = applied.iter().max();
                let mirrored = last
                    .and_then(|last| E::REVISIONS.iter().find(|(v, _)| v == last))
                    .zip(last);
                if let Some(((_, expected), last)) = mirrored {
                    let found = obs.alembic.clone().unwrap_or_default();
                    if found.as_slice() != [*expected] {
                        return Err(MigrationError::AlembicMismatch {
                            found,
                            expected,
                            version: last.clone(),
                        });
                    }
                }
                Ok((applied, Vec::new()))
            }
            DatabaseState::Adoptable { alembic_revision } => {
                // The mirrored migration and every one before it are already in the database.
                let upto = E::REVISIONS
                    .iter()
                    .find(|(_, r)| *r == alembic_revision)
                    .map(|(v, _)| *v)
                    .ok_or_else(|| MigrationError::UnknownTarget {
                        target: alembic_revision.clone(),
                    })?;
                e.setup()?;
                let mut adopted = Vec::new();
                for k in all.iter().filter(|k| k.info.version.as_str() <= upto) {
                    // Versions are digits only (diesel checks the folder names at compile time).
                    e.exec(&format!(
                        "INSERT INTO __diesel_schema_migrations (version) VALUES ('{}')",
                        k.info.version.replace('\'', "''")
                    ))?;
                    adopted.push(k.info.clone());
                }
                tracing::info!(
                    dialect = E::DIALECT,
                    alembic_revision = %alembic_revision,
                    adopted = ?adopted.iter().map(|m| &m.name).collect::<Vec<_>>(),
                    "adopted a database written by Prefect: recorded its migrations as applied"
                );
                let applied = adopted.iter().map(|m| m.version.clone()).collect();
                Ok((applied, adopted))
            }
            DatabaseState::UnsupportedAlembicRevision { found } => {
                Err(MigrationError::UnsupportedAlembicRevision {
                    dialect: E::DIALECT,
                    found,
                    supported: E::REVISIONS.iter().map(|(_, r)| *r).collect(),
                })
            }
            DatabaseState::Unmanaged { tables } => Err(MigrationError::NotEmpty {
                count: tables.len(),
                tables: tables.into_iter().take(10).collect(),
            }),
        }
    })
}

fn find_target<'a, DB>(
    all: &'a [Known<DB>],
    target: &str,
) -> Result<&'a Known<DB>, MigrationError> {
    all.iter()
        .find(|k| k.info.version == target || k.info.name == target)
        .ok_or_else(|| MigrationError::UnknownTarget {
            target: target.to_owned(),
        })
}

fn applied_now<E: Engine>(e: &mut E) -> Result<Vec<String>, MigrationError> {
    e.strings("SELECT version AS v FROM __diesel_schema_migrations")
}

fn upgrade_with<E: Engine>(
    e: &mut E,
    target: &UpgradeTarget,
) -> Result<UpgradeReport, MigrationError> {
    let all = known::<E>()?;
    let limit = match target {
        UpgradeTarget::Latest => None,
        UpgradeTarget::To(t) => Some(find_target(&all, t)?.info.version.clone()),
    };
    let (applied, adopted) = preflight(e, &all)?;
    e.setup()?;
    let mut report = UpgradeReport {
        adopted,
        applied: Vec::new(),
    };
    for k in &all {
        if applied.contains(&k.info.version)
            || limit
                .as_ref()
                .is_some_and(|l| k.info.version.as_str() > l.as_str())
        {
            continue;
        }
        let ran = if k.migration.metadata().run_in_transaction() {
            // The nested transaction diesel opens around the migration becomes a savepoint.
            e.write_tx(|e| {
                if applied_now(e)?.contains(&k.info.version) {
                    return Ok(false);
                }
                e.step(k.migration.as_ref(), Step::Run)?;
                Ok(true)
            })?
        } else {
            e.step(k.migration.as_ref(), Step::Run)?;
            true
        };
        if ran {
            tracing::info!(dialect = E::DIALECT, migration = %k.info.name, "applied migration");
            report.applied.push(k.info.clone());
        }
    }
    Ok(report)
}

fn downgrade_with<E: Engine>(
    e: &mut E,
    target: &DowngradeTarget,
) -> Result<Vec<MigrationInfo>, MigrationError> {
    let all = known::<E>()?;
    let (mut applied, _) = preflight(e, &all)?;
    applied.sort_unstable_by(|a, b| b.cmp(a));
    let versions: Vec<String> = match target {
        DowngradeTarget::Base => applied,
        DowngradeTarget::Steps(n) => {
            if *n > applied.len() {
                return Err(MigrationError::TooManySteps {
                    requested: *n,
                    applied: applied.len(),
                });
            }
            applied.into_iter().take(*n).collect()
        }
        DowngradeTarget::To(t) => {
            let keep = find_target(&all, t)?.info.version.clone();
            if !applied.contains(&keep) {
                return Err(MigrationError::TargetNotApplied { target: t.clone() });
            }
            applied.into_iter().filter(|v| *v > keep).collect()
        }
    };
    let mut reverted = Vec::new();
    for v in versions {
        let k = find_target(&all, &v)?;
        let done = if k.migration.metadata().run_in_transaction() {
            e.write_tx(|e| {
                if !applied_now(e)?.contains(&k.info.version) {
                    return Ok(false);
                }
                e.step(k.migration.as_ref(), Step::Revert)?;
                Ok(true)
            })?
        } else {
            e.step(k.migration.as_ref(), Step::Revert)?;
            true
        };
        if done {
            tracing::info!(dialect = E::DIALECT, migration = %k.info.name, "reverted migration");
            reverted.push(k.info.clone());
        }
    }
    Ok(reverted)
}

fn status_with<E: Engine>(e: &mut E) -> Result<MigrationStatus, MigrationError> {
    let all = known::<E>()?;
    let obs = observe(e)?;
    let state = classify::<E>(&obs);
    let applied_versions = obs.applied();
    let applied = all
        .iter()
        .filter(|k| applied_versions.contains(&k.info.version))
        .map(|k| k.info.clone())
        .collect();
    let pending = all
        .iter()
        .filter(|k| !applied_versions.contains(&k.info.version))
        .map(|k| k.info.clone())
        .collect();
    let unknown_applied = applied_versions
        .iter()
        .filter(|v| !all.iter().any(|k| &k.info.version == *v))
        .cloned()
        .collect();
    Ok(MigrationStatus {
        state,
        alembic_version: obs.alembic,
        applied,
        unknown_applied,
        pending,
    })
}

/// Rewrites the bookkeeping so that exactly the migrations up to the target are recorded as
/// applied (unknown versions are removed too), and `alembic_version` holds the revision the
/// newest of them mirrors (no row when none does), creating Prefect's `alembic_version` table
/// when it is missing. Runs no migration; one write transaction.
fn stamp_with<E: Engine>(e: &mut E, target: &StampTarget) -> Result<StampReport, MigrationError> {
    let all = known::<E>()?;
    let upto: Option<String> = match target {
        StampTarget::Base => None,
        StampTarget::Head => all.last().map(|k| k.info.version.clone()),
        StampTarget::To(t) => {
            let by_revision = E::REVISIONS.iter().find(|(_, r)| r == t).map(|(v, _)| *v);
            Some(match by_revision {
                Some(v) => v.to_owned(),
                None => find_target(&all, t)?.info.version.clone(),
            })
        }
    };
    let wanted: Vec<&Known<E::Db>> = all
        .iter()
        .filter(|k| {
            upto.as_deref()
                .is_some_and(|u| k.info.version.as_str() <= u)
        })
        .collect();
    e.write_tx(|e| {
        e.setup()?;
        let mut applied = applied_now(e)?;
        applied.sort_unstable_by(|a, b| b.cmp(a));
        let mut report = StampReport::default();
        for v in applied.iter().filter(|v| !wanted.iter().any(|k| &k.info.version == *v)) {
            e.exec(&format!(
                "DELETE FROM __diesel_schema_migrations WHERE version = '{}'",
                v.replace('\'', "''")
            ))?;
            report.removed.push(v.clone());
        }
        for k in wanted.iter().filter(|k| !applied.contains(&k.info.version)) {
            e.exec(&format!(
                "INSERT INTO __diesel_schema_migrations (version) VALUES ('{}')",
                k.info.version.replace('\'', "''")
            ))?;
            report.recorded.push(k.info.clone());
        }
        let revision = wanted
            .iter()
            .rev()
            .find_map(|k| E::REVISIONS.iter().find(|(v, _)| *v == k.info.version))
            .map(|(_, r)| *r);
        let has_alembic = e.strings(E::LIST_TABLES)?.iter().any(|t| t == ALEMBIC_VERSION_TABLE);
        if let Some(revision) = revision {
            if !has_alembic {
                e.exec(
                    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, \
                     CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))",
                )?;
            }
            e.exec(&format!(
                "DELETE FROM alembic_version; INSERT INTO alembic_version (version_num) VALUES ('{revision}')"
            ))?;
        } else if has_alembic {
            e.exec("DELETE FROM alembic_version")?;
        }
        report.alembic_version = revision.map(str::to_owned);
        tracing::info!(
            dialect = E::DIALECT,
            target = ?target,
            recorded = report.recorded.len(),
            removed = report.removed.len(),
            alembic_version = ?report.alembic_version,
            "stamped"
        );
        Ok(report)
    })
}

// ------------------------------------------------------------------------------------------
// SQLite
// ------------------------------------------------------------------------------------------

#[cfg(feature = "sqlite")]
impl Engine for diesel::SqliteConnection {
    type Db = diesel::sqlite::Sqlite;
    const DIALECT: &'static str = "sqlite";
    const REVISIONS: &'static [(&'static str, &'static str)] = SQLITE_ALEMBIC_REVISIONS;
    const LIST_TABLES: &'static str = "SELECT name AS v FROM sqlite_master \
         WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name";

    fn migrations() -> Result<Vec<Box<dyn Migration<Self::Db>>>, MigrationError> {
        MigrationSource::<Self::Db>::migrations(&SQLITE_MIGRATIONS).map_err(source_error)
    }

    fn strings(&mut self, sql: &str) -> Result<Vec<String>, MigrationError> {
        Ok(diesel::sql_query(sql)
            .load::<TextRow>(self)?
            .into_iter()
            .map(|r| r.v)
            .collect())
    }

    fn exec(&mut self, sql: &str) -> Result<(), MigrationError> {
        Ok(diesel::connection::SimpleConnection::batch_execute(
            self, sql,
        )?)
    }

    fn write_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, MigrationError>,
    ) -> Result<T, MigrationError> {
        self.immediate_transaction(f)
    }

    fn setup(&mut self) -> Result<(), MigrationError> {
        setup_bookkeeping(self)
    }

    fn step(&mut self, m: &dyn Migration<Self::Db>, step: Step) -> Result<(), MigrationError> {
        step_migration(self, m, step)
    }
}

/// Runs `f` with `foreign_keys` off, as Prefect's `env.py` does around its migrations (SQLite
/// table rebuilds copy, drop and rename tables), and restores the previous setting.
#[cfg(feature = "sqlite")]
fn with_foreign_keys_off<T>(
    conn: &mut diesel::SqliteConnection,
    f: impl FnOnce(&mut diesel::SqliteConnection) -> Result<T, MigrationError>,
) -> Result<T, MigrationError> {
    let was_on =
        conn.strings("SELECT CAST(foreign_keys AS TEXT) AS v FROM pragma_foreign_keys")? == ["1"];
    if was_on {
        conn.exec("PRAGMA foreign_keys = OFF")?;
    }
    let result = f(conn);
    if was_on {
        let restored = conn.exec("PRAGMA foreign_keys = ON");
        if result.is_ok() {
            restored?;
        }
    }
    result
}

/// Adopts or refuses the database as described in the module docs, then applies the pending
/// SQLite migrations up to `target`.
#[cfg(feature = "sqlite")]
pub fn upgrade_sqlite(
    conn: &mut diesel::SqliteConnection,
    target: &UpgradeTarget,
) -> Result<UpgradeReport, MigrationError> {
    with_foreign_keys_off(conn, |c| upgrade_with(c, target))
}

/// Reverts SQLite migrations (after adopting a Prefect database, like [`upgrade_sqlite`]);
/// returns the reverted migrations, newest first.
#[cfg(feature = "sqlite")]
pub fn downgrade_sqlite(
    conn: &mut diesel::SqliteConnection,
    target: &DowngradeTarget,
) -> Result<Vec<MigrationInfo>, MigrationError> {
    with_foreign_keys_off(conn, |c| downgrade_with(c, target))
}

/// Records the migrations up to `target` as applied without running them (alembic's `stamp`);
/// see [`StampTarget`].
#[cfg(feature = "sqlite")]
pub fn stamp_sqlite(
    conn: &mut diesel::SqliteConnection,
    target: &StampTarget,
) -> Result<StampReport, MigrationError> {
    stamp_with(conn, target)
}

/// The migration status of an SQLite database. Changes nothing.
#[cfg(feature = "sqlite")]
pub fn status_sqlite(
    conn: &mut diesel::SqliteConnection,
) -> Result<MigrationStatus, MigrationError> {
    status_with(conn)
}

// ------------------------------------------------------------------------------------------
// PostgreSQL
// ------------------------------------------------------------------------------------------

/// The sync view of an async PostgreSQL connection used inside `spawn_blocking`.
#[cfg(feature = "postgres")]
type PgSync<C> = AsyncConnectionWrapper<C>;

#[cfg(feature = "postgres")]
impl<C> Engine for PgSync<C>
where
    C: diesel_async::AsyncConnection<Backend = diesel::pg::Pg> + Send + 'static,
{
    type Db = diesel::pg::Pg;
    const DIALECT: &'static str = "postgresql";
    const REVISIONS: &'static [(&'static str, &'static str)] = POSTGRES_ALEMBIC_REVISIONS;
    const LIST_TABLES: &'static str = "SELECT c.relname::text AS v FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
         ORDER BY 1";

    fn migrations() -> Result<Vec<Box<dyn Migration<Self::Db>>>, MigrationError> {
        MigrationSource::<Self::Db>::migrations(&POSTGRES_MIGRATIONS).map_err(source_error)
    }

    fn strings(&mut self, sql: &str) -> Result<Vec<String>, MigrationError> {
        Ok(diesel::sql_query(sql)
            .load::<TextRow>(self)?
            .into_iter()
            .map(|r| r.v)
            .collect())
    }

    fn exec(&mut self, sql: &str) -> Result<(), MigrationError> {
        Ok(diesel::connection::SimpleConnection::batch_execute(
            self, sql,
        )?)
    }

    fn write_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, MigrationError>,
    ) -> Result<T, MigrationError> {
        diesel::Connection::transaction(self, f)
    }

    fn setup(&mut self) -> Result<(), MigrationError> {
        setup_bookkeeping(self)
    }

    fn step(&mut self, m: &dyn Migration<Self::Db>, step: Step) -> Result<(), MigrationError> {
        step_migration(self, m, step)
    }
}

/// Runs `f` holding the migration advisory lock, with `statement_timeout` set to `timeout`
/// (0 when `None`); releases the lock and restores `statement_timeout` afterwards, also on error.
#[cfg(feature = "postgres")]
fn with_pg_lock<C, T>(
    conn: &mut PgSync<C>,
    timeout: Option<std::time::Duration>,
    f: impl FnOnce(&mut PgSync<C>) -> Result<T, MigrationError>,
) -> Result<T, MigrationError>
where
    C: diesel_async::AsyncConnection<Backend = diesel::pg::Pg> + Send + 'static,
{
    use diesel::sql_types::BigInt;
    let previous = conn
        .strings("SELECT current_setting('statement_timeout') AS v")?
        .pop()
        .unwrap_or_else(|| "0".to_owned());
    conn.exec("SET statement_timeout = 0")?;
    if let Err(e) = diesel::sql_query("SELECT pg_advisory_lock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(conn)
    {
        let _ = restore_statement_timeout(conn, &previous);
        return Err(e.into());
    }
    let result = (|| {
        let ms = timeout.map_or(0, |t| t.as_millis().max(1));
        conn.exec(&format!("SET statement_timeout = {ms}"))?;
        f(conn)
    })();
    let unlocked = diesel::sql_query("SELECT pg_advisory_unlock($1)")
        .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
        .execute(conn);
    let restored = restore_statement_timeout(conn, &previous);
    let value = result?;
    unlocked?;
    restored?;
    Ok(value)
}

/// [`with_pg_lock`] behind a transaction-mode pooler, where a session lock and session
/// settings would stay on a server connection other clients borrow: the whole run is one
/// transaction that applies `settings` (the per-transaction settings of the configuration),
/// takes the transaction-scoped `pg_advisory_xact_lock(`[`MIGRATION_LOCK_KEY`]`)` and sets the
/// statement timeout with `SET LOCAL`. Concurrent migrators still apply each migration once (the
/// next one waits, then finds it applied); a failure leaves none of the run applied.
#[cfg(feature = "postgres")]
fn with_pg_xact_lock<C, T>(
    conn: &mut PgSync<C>,
    settings: &str,
    timeout: Option<std::time::Duration>,
    f: impl FnOnce(&mut PgSync<C>) -> Result<T, MigrationError>,
) -> Result<T, MigrationError>
where
    C: diesel_async::AsyncConnection<Backend = diesel::pg::Pg> + Send + 'static,
{
    use diesel::sql_types::BigInt;
    diesel::Connection::transaction(conn, |conn| {
        conn.exec(settings)?;
        conn.exec("SET LOCAL statement_timeout = 0")?;
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(MIGRATION_LOCK_KEY)
            .execute(conn)?;
        let ms = timeout.map_or(0, |t| t.as_millis().max(1));
        conn.exec(&format!("SET LOCAL statement_timeout = {ms}"))?;
        f(conn)
    })
}

#[cfg(feature = "postgres")]
fn restore_statement_timeout<C>(conn: &mut PgSync<C>, previous: &str) -> Result<(), MigrationError>
where
    C: diesel_async::AsyncConnection<Backend = diesel::pg::Pg> + Send + 'static,
{
    diesel::sql_query("SELECT set_config('statement_timeout', $1, false) AS v")
        .bind::<Text, _>(previous)
        .load::<TextRow>(conn)?;
    Ok(())
}

/// Runs the PostgreSQL migrations on an async connection it owns.
///
/// `C` is an [`AsyncPgConnection`](diesel_async::AsyncPgConnection) or anything that derefs to
/// one, such as a pooled connection object. Each method moves the connection into
/// `tokio::task::spawn_blocking` for the run and takes it back afterwards; get it back with
/// [`PgMigrator::into_inner`]. If a run panics the connection is gone and later calls return
/// [`MigrationError::ConnectionLost`].
///
/// ```no_run
/// # async fn demo(conn: diesel_async::AsyncPgConnection) -> Result<(), prefect_orm::migrations::MigrationError> {
/// use prefect_orm::migrations::{PgMigrator, UpgradeTarget};
/// let mut migrator = PgMigrator::new(conn);
/// let report = migrator.upgrade(UpgradeTarget::Latest).await?;
/// println!("adopted {:?}, applied {:?}", report.adopted, report.applied);
/// # Ok(()) }
/// ```
#[cfg(feature = "postgres")]
pub struct PgMigrator<C = diesel_async::AsyncPgConnection> {
    conn: Option<C>,
    statement_timeout: Option<std::time::Duration>,
    pooled: Option<String>,
}

#[cfg(feature = "postgres")]
impl<C> PgMigrator<C>
where
    C: diesel_async::AsyncConnection<Backend = diesel::pg::Pg> + Send + 'static,
{
    /// A migrator owning `conn`, without a statement timeout.
    pub fn new(conn: C) -> Self {
        PgMigrator {
            conn: Some(conn),
            statement_timeout: None,
            pooled: None,
        }
    }

    /// Migrates through a transaction-mode pooler (PgBouncer): `Some(settings)` makes every run
    /// one transaction that applies `settings` (SQL run right after `BEGIN`: the
    /// per-transaction settings of the configuration) and takes the migration lock for that
    /// transaction only; `status` reads inside a transaction too. `None`, the default, migrates
    /// on a session of its own.
    pub fn behind_transaction_pooler(mut self, settings: Option<String>) -> Self {
        self.pooled = settings;
        self
    }

    /// Sets the `statement_timeout` for migration statements (Prefect's
    /// `PREFECT_SERVER_DATABASE_MIGRATION_TIMEOUT`); `None`, the default, means no timeout.
    pub fn with_statement_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// Hands the connection back (`None` if an earlier run lost it).
    pub fn into_inner(self) -> Option<C> {
        self.conn
    }

    /// Adopts or refuses the database as described in the module docs, then applies the
    /// pending migrations up to `target`, holding the migration advisory lock.
    pub async fn upgrade(
        &mut self,
        target: UpgradeTarget,
    ) -> Result<UpgradeReport, MigrationError> {
        let timeout = self.statement_timeout;
        match self.pooled.clone() {
            Some(settings) => {
                self.blocking(move |c| with_pg_xact_lock(c, &settings, timeout, |c| upgrade_with(c, &target)))
                    .await
            }
            None => {
                self.blocking(move |c| with_pg_lock(c, timeout, |c| upgrade_with(c, &target)))
                    .await
            }
        }
    }

    /// Reverts migrations (after adopting a Prefect database, like [`PgMigrator::upgrade`]),
    /// holding the migration advisory lock; returns the reverted migrations, newest first.
    pub async fn downgrade(
        &mut self,
        target: DowngradeTarget,
    ) -> Result<Vec<MigrationInfo>, MigrationError> {
        let timeout = self.statement_timeout;
        match self.pooled.clone() {
            Some(settings) => {
                self.blocking(move |c| with_pg_xact_lock(c, &settings, timeout, |c| downgrade_with(c, &target)))
                    .await
            }
            None => {
                self.blocking(move |c| with_pg_lock(c, timeout, |c| downgrade_with(c, &target)))
                    .await
            }
        }
    }

    /// Records the migrations up to `target` as applied without running them (alembic's
    /// `stamp`), holding the migration advisory lock; see [`StampTarget`].
    pub async fn stamp(&mut self, target: StampTarget) -> Result<StampReport, MigrationError> {
        let timeout = self.statement_timeout;
        match self.pooled.clone() {
            Some(settings) => {
                self.blocking(move |c| with_pg_xact_lock(c, &settings, timeout, |c| stamp_with(c, &target)))
                    .await
            }
            None => {
                self.blocking(move |c| with_pg_lock(c, timeout, |c| stamp_with(c, &target)))
                    .await
            }
        }
    }

    /// The migration status. Changes nothing and takes no lock.
    pub async fn status(&mut self) -> Result<MigrationStatus, MigrationError> {
        match self.pooled.clone() {
            Some(settings) => {
                self.blocking(move |c| {
                    diesel::Connection::transaction(c, |c| {
                        c.exec(&settings)?;
                        status_with(c)
                    })
                })
                .await
            }
            None => self.blocking(status_with).await,
        }
    }

    async fn blocking<T, F>(&mut self, f: F) -> Result<T, MigrationError>
    where
        T: Send + 'static,
        F: FnOnce(&mut PgSync<C>) -> Result<T, MigrationError> + Send + 'static,
    {
        let conn = self.conn.take().ok_or(MigrationError::ConnectionLost)?;
        let joined = tokio::task::spawn_blocking(move || {
            let mut sync = PgSync::<C>::from(conn);
            let result = f(&mut sync);
            (sync.into_inner(), result)
        })
        .await;
        match joined {
            Ok((conn, result)) => {
                self.conn = Some(conn);
                result
            }
            Err(e) => Err(MigrationError::Task(e.to_string())),
        }
    }
}
