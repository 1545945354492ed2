//! The `prefect-db` command line as a library: the clap definitions of its subcommands and the
//! one function that runs them, shared by the `prefect-db` binary and `cargo xtask migrate` so
//! both parse, decide and report the same way.
//!
//! Everything a command does is a library function of `prefect_db_interface::migrate` (or
//! `copy`); this crate only parses, asks for confirmation, prints and picks the exit status
//! ([`Exit`]).

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use prefect_db_interface::InterfaceError;
use prefect_db_interface::config::settings::DatabaseSettings;
use prefect_db_interface::config::{DatabaseConfig, DatabaseUrl, Dialect};
use prefect_db_interface::copy::{CopyEvent, CopyOptions, copy_database};
use prefect_db_interface::migrate::{
    self, CheckOutcome, DatabaseState, DowngradeTarget, HistoryState, StampTarget, UpgradeReport,
    UpgradeTarget,
};
use std::io::{BufRead as _, IsTerminal as _, Write as _};

/// The exit statuses, as the top-level `--help` lists them.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0  success (check: the database is at this build's head)
  1  error (the message says what failed)
  2  usage error (bad arguments)
  3  check: migrations are pending (run `upgrade`)
  4  check: the database is ahead of this build, at an unknown revision, or not a Prefect database
  5  the database cannot be reached (ping, or any command that cannot connect)
  6  refused: a destructive command (downgrade, reset, stamp) was not confirmed; pass -y

The database is the one Prefect's settings name (PREFECT_SERVER_DATABASE_CONNECTION_URL, \
prefect.toml, the active profile; default: the SQLite file $PREFECT_HOME/prefect.db) unless \
--url is given.";

/// How a command ended: the process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Success; for `check`, the database is at this build's head.
    Ok = 0,
    /// An error (printed).
    Error = 1,
    /// Bad arguments (clap's own status).
    Usage = 2,
    /// `check`: migrations are pending.
    Pending = 3,
    /// `check`: the database is ahead of this build, at an unknown revision, or not a Prefect
    /// database.
    Ahead = 4,
    /// The database cannot be reached.
    Unreachable = 5,
    /// A destructive command was not confirmed.
    Refused = 6,
}

impl Exit {
    /// The numeric exit status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        std::process::ExitCode::from(exit.code())
    }
}

/// Options every command takes.
#[derive(Debug, Clone, Default, Args)]
pub struct Global {
    /// The database to work on, overriding Prefect's settings (e.g.
    /// `sqlite+aiosqlite:////path/prefect.db`, `postgresql+asyncpg://user:pass@host:5432/prefect`).
    /// Ignored by `copy`, which takes `--from` and `--to`.
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// The read replica `ping` and `check` report beside the database, overriding
    /// PREFECT_SERVER_DATABASE_READ_REPLICA_CONNECTION_URL (a PostgreSQL URL). With `--url` and
    /// without this option no replica is reported: the settings' replica belongs to the settings'
    /// database.
    #[arg(long, global = true, value_name = "URL")]
    pub replica_url: Option<String>,
}

/// Tools for Prefect 3.9.1 databases (SQLite and PostgreSQL): migrate, inspect, check, ping, copy.
#[derive(Debug, Parser)]
#[command(name = "prefect-db", version, about, after_help = EXIT_STATUS_HELP, arg_required_else_help = true)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// `cargo xtask migrate`: the migration commands of `prefect-db` (default: `upgrade`).
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask migrate",
    about = "Migrate the database Prefect's settings name (default command: upgrade).",
    after_help = EXIT_STATUS_HELP
)]
pub struct MigrateCli {
    /// Options of every command.
    #[command(flatten)]
    pub global: Global,
    /// The command; `upgrade` when absent.
    #[command(subcommand)]
    pub command: Option<MigrationCommand>,
}

impl MigrateCli {
    /// The command to run: the one given, else `upgrade` to the latest migration.
    pub fn into_command(self) -> (Global, MigrationCommand) {
        (
            self.global,
            self.command.unwrap_or(MigrationCommand::Upgrade {
                revision: None,
                yes: false,
            }),
        )
    }
}

/// A command of `prefect-db`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The migration commands.
    #[command(flatten)]
    Migration(MigrationCommand),
    /// Copy every table of a Prefect 3.9.1 database into another database, possibly of the other
    /// dialect (SQLite → PostgreSQL or back). The target is migrated first; the copy runs in one
    /// transaction on the target (an interrupted copy leaves nothing), keeps ids and every value,
    /// and ends by comparing row counts and checksums of every table.
    ///
    /// URLs as Prefect takes them: `sqlite+aiosqlite:////path/prefect.db`,
    /// `postgresql+asyncpg://user:password@host:5432/prefect`.
    Copy {
        /// The database to copy from; it must be at Prefect 3.9.1's schema.
        #[arg(long, value_name = "URL")]
        from: String,
        /// The database to copy into (created and migrated when needed); it must be empty
        /// unless `--replace`.
        #[arg(long, value_name = "URL")]
        to: String,
        /// Delete the target's rows (in the same transaction) instead of refusing a non-empty
        /// target.
        #[arg(long)]
        replace: bool,
        /// Rows read per page and inserted per statement (capped per table by the bind-parameter
        /// limits: 999 on SQLite, 32767 on PostgreSQL).
        #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
        batch_size: u32,
    },
}

/// The migration commands (shared by `prefect-db` and `cargo xtask migrate`).
///
/// A revision is a migration version (`00000000000001`), its full name
/// (`00000000000001_prefect_3_9_1_baseline`), or, for `stamp`, the Prefect (alembic) revision a
/// migration mirrors.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum MigrationCommand {
    /// Create the database if needed and apply pending migrations (a database real Prefect 3.9.1
    /// created is adopted: its migrations are recorded as applied, nothing is run on it).
    Upgrade {
        /// Stop after this migration (default: apply everything).
        #[arg(long, short = 'r', value_name = "REVISION")]
        revision: Option<String>,
        /// Accepted for compatibility with Prefect's CLI; upgrading asks for no confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Revert migrations: the newest one by default, `--steps N`, or every migration newer than
    /// `--revision R` (`--revision base` reverts all). Destructive: asks for confirmation.
    Downgrade {
        /// Keep this migration and revert every newer one; `base` reverts every migration.
        #[arg(long, short = 'r', value_name = "REVISION", conflicts_with = "steps")]
        revision: Option<String>,
        /// Revert the newest N migrations.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        steps: Option<u64>,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Drop every table (data included) and migrate the empty database again. Destructive: asks
    /// for confirmation.
    Reset {
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Record REVISION and every older migration as applied, and every newer one (or unknown
    /// one) as not, without running anything; `alembic_version` is set to the Prefect revision
    /// the newest recorded migration mirrors. `base` records nothing, `head` everything.
    /// Destructive for the bookkeeping: asks for confirmation.
    Stamp {
        /// `base`, `head`, a migration version or name, or a mirrored alembic revision.
        #[arg(value_name = "REVISION")]
        revision: String,
        /// Do not ask for confirmation (required when stdin is not a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Show the applied migrations and the alembic_version of the database (alias: `status`,
    /// the former `cargo xtask migrate status`).
    #[command(alias = "status")]
    Current,
    /// List every migration this build knows, marked applied or pending (and applied ones this
    /// build does not know).
    History,
    /// Exit 0 when the database is at this build's head, 3 when migrations are pending, 4 when it
    /// is ahead of this build or at an unknown revision; prints which.
    Check,
    /// Connect and run `SELECT 1` within the connection timeout; exit 5 when unreachable.
    Ping,
}

impl MigrationCommand {
    /// What a destructive command is about to do (for the confirmation), `None` otherwise, and
    /// whether `-y` was given.
    fn destructive(&self) -> Option<(String, bool)> {
        match self {
            MigrationCommand::Downgrade {
                revision,
                steps,
                yes,
            } => {
                let what = match (revision.as_deref(), steps) {
                    (Some("base"), _) => "revert every migration of".to_owned(),
                    (Some(r), _) => format!("revert every migration newer than {r} in"),
                    (None, Some(n)) => format!("revert the newest {n} migration(s) of"),
                    (None, None) => "revert the newest migration of".to_owned(),
                };
                Some((what, *yes))
            }
            MigrationCommand::Reset { yes } => {
                Some(("drop every table (and all data) of".to_owned(), *yes))
            }
            MigrationCommand::Stamp { revision, yes } => Some((
                format!("rewrite the migration bookkeeping to {revision} (nothing is run) in"),
                *yes,
            )),
            _ => None,
        }
    }
}

/// Parses `cargo xtask migrate` arguments (`args` without the program name).
pub fn parse_migrate_args<I, T>(args: I) -> Result<MigrateCli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    MigrateCli::try_parse_from(
        std::iter::once(std::ffi::OsString::from("cargo xtask migrate"))
            .chain(args.into_iter().map(Into::into)),
    )
}

/// Runs a command on a fresh multi-thread runtime, prints its report (errors on stderr as one
/// line with their context) and returns the exit status.
pub fn run(global: Global, command: Command) -> Exit {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return Exit::Error;
        }
    };
    match runtime.block_on(execute(global, command)) {
        Ok(exit) => exit,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<InterfaceError>()
                .is_some_and(InterfaceError::is_unreachable)
            {
                Exit::Unreachable
            } else {
                Exit::Error
            }
        }
    }
}

async fn execute(global: Global, command: Command) -> anyhow::Result<Exit> {
    match command {
        Command::Migration(command) => {
            migration_with(global.url.as_deref(), global.replica_url.as_deref(), command).await
        }
        Command::Copy {
            from,
            to,
            replace,
            batch_size,
        } => copy(&from, &to, replace, batch_size).await,
    }
}

/// The database configuration: Prefect's settings, loaded once, with `--url` replacing the URL
/// (and dropping the settings' replica) and `--replica-url` replacing the replica.
fn load_config(url: Option<&str>, replica_url: Option<&str>) -> anyhow::Result<DatabaseConfig> {
    let mut config = DatabaseSettings::load()
        .and_then(|s| s.resolve())
        .context("loading Prefect's database settings")?;
    if let Some(raw) = url {
        config.url = DatabaseUrl::parse(raw, "--url")?;
        config.read_replica_url = None;
    }
    if let Some(raw) = replica_url {
        let replica = DatabaseUrl::parse(raw, "--replica-url")?;
        if config.dialect() != Dialect::Postgres || replica.dialect() != Dialect::Postgres {
            anyhow::bail!(
                "--replica-url {}: a read replica is a PostgreSQL URL, beside a PostgreSQL database (the database is {})",
                replica.masked(),
                config.url.masked()
            );
        }
        config.read_replica_url = Some(replica);
    }
    Ok(config)
}

/// Asks before a destructive action: `-y` confirms; on a terminal the user is asked; otherwise
/// the action is refused.
fn confirm(action: &str, database: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        eprintln!(
            "refused: about to {action} {database}, which needs confirmation, and stdin is not a \
             terminal to ask on; pass -y (--yes) to confirm. Nothing was changed."
        );
        return Ok(false);
    }
    eprint!("About to {action} {database}. Continue? [y/N] ");
    std::io::stderr().flush().context("writing the prompt")?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .context("reading the answer")?;
    let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if !yes {
        eprintln!("aborted: nothing was changed");
    }
    Ok(yes)
}

fn describe_state(state: &DatabaseState) -> String {
    match state {
        DatabaseState::Empty => "empty (no migration applied)".to_owned(),
        DatabaseState::Managed => "migrated by this layer".to_owned(),
        DatabaseState::Adoptable { alembic_revision } => {
            format!(
                "written by Prefect at alembic revision {alembic_revision}; `upgrade` adopts it"
            )
        }
        DatabaseState::UnsupportedAlembicRevision { found } => {
            format!(
                "written by Prefect at an alembic revision this build cannot take over: {}",
                or_empty(found)
            )
        }
        DatabaseState::Unmanaged { tables } => {
            format!(
                "{} table(s) without migration bookkeeping: not a Prefect database",
                tables.len()
            )
        }
    }
}

fn or_empty(rows: &[String]) -> String {
    if rows.is_empty() {
        "(empty)".to_owned()
    } else {
        rows.join(", ")
    }
}

fn print_upgrade(report: &UpgradeReport) {
    for m in &report.adopted {
        println!(
            "adopted  {} (recorded as applied: the database was written by Prefect 3.9.1)",
            m.name
        );
    }
    for m in &report.applied {
        println!("applied  {}", m.name);
    }
    if report.adopted.is_empty() && report.applied.is_empty() {
        println!("already up to date");
    }
}

/// Runs one migration command on the database of the settings (or `url`).
pub async fn migration(url: Option<&str>, command: MigrationCommand) -> anyhow::Result<Exit> {
    migration_with(url, None, command).await
}

/// [`migration`] with a read replica (`--replica-url`) replacing the settings' one.
pub async fn migration_with(
    url: Option<&str>,
    replica_url: Option<&str>,
    command: MigrationCommand,
) -> anyhow::Result<Exit> {
    let config = load_config(url, replica_url)?;
    let database = config.url.masked();
    if let Some((action, yes)) = command.destructive()
        && !confirm(&action, &database, yes)?
    {
        return Ok(Exit::Refused);
    }
    let context = |what: &str| format!("{what} {database}");
    match command {
        MigrationCommand::Upgrade { revision, yes: _ } => {
            println!(
                "upgrading {database} to {}",
                revision.as_deref().unwrap_or("the latest migration")
            );
            let target = revision.map_or(UpgradeTarget::Latest, UpgradeTarget::To);
            let report = migrate::upgrade(&config, target)
                .await
                .with_context(|| context("upgrading"))?;
            print_upgrade(&report);
            Ok(Exit::Ok)
        }
        MigrationCommand::Downgrade {
            revision,
            steps,
            yes: _,
        } => {
            let target = match (revision, steps) {
                (Some(r), _) if r == "base" => DowngradeTarget::Base,
                (Some(r), _) => DowngradeTarget::To(r),
                (None, Some(n)) => {
                    DowngradeTarget::Steps(usize::try_from(n).context("--steps is too large")?)
                }
                (None, None) => DowngradeTarget::Steps(1),
            };
            println!("downgrading {database}");
            let reverted = migrate::downgrade(&config, target)
                .await
                .with_context(|| context("downgrading"))?;
            for m in &reverted {
                println!("reverted {}", m.name);
            }
            println!("{} migration(s) reverted", reverted.len());
            Ok(Exit::Ok)
        }
        MigrationCommand::Reset { yes: _ } => {
            println!("resetting {database}: dropping every table, then migrating");
            let report = migrate::reset(&config)
                .await
                .with_context(|| context("resetting"))?;
            println!("dropped {} table(s)", report.dropped.len());
            print_upgrade(&report.upgrade);
            println!("database {database} reset");
            Ok(Exit::Ok)
        }
        MigrationCommand::Stamp { revision, yes: _ } => {
            let target = match revision.as_str() {
                "base" => StampTarget::Base,
                "head" => StampTarget::Head,
                _ => StampTarget::To(revision.clone()),
            };
            let report = migrate::stamp(&config, target)
                .await
                .with_context(|| context("stamping"))?;
            for m in &report.recorded {
                println!("recorded {} (as applied, not run)", m.name);
            }
            for v in &report.removed {
                println!("removed  {v} (no longer recorded as applied)");
            }
            println!(
                "alembic_version: {}",
                report.alembic_version.as_deref().unwrap_or("(empty)")
            );
            println!("stamped {database} at {revision}");
            Ok(Exit::Ok)
        }
        MigrationCommand::Current => {
            let current = migrate::current(&config)
                .await
                .with_context(|| context("reading the migrations of"))?;
            println!("database: {database}");
            println!("state: {}", describe_state(&current.state));
            if current.applied.is_empty() && current.unknown_applied.is_empty() {
                println!("applied: (none)");
            }
            let last = current.applied.len().saturating_sub(1);
            for (i, m) in current.applied.iter().enumerate() {
                let head = if i == last && current.at_head {
                    " (head)"
                } else {
                    ""
                };
                println!("applied: {}{head}", m.name);
            }
            for v in &current.unknown_applied {
                println!("applied: {v} (unknown to this build)");
            }
            match &current.alembic_version {
                Some(rows) => println!("alembic_version: {}", or_empty(rows)),
                None => println!("alembic_version: (no table)"),
            }
            Ok(Exit::Ok)
        }
        MigrationCommand::History => {
            let entries = migrate::history(&config)
                .await
                .with_context(|| context("reading the migrations of"))?;
            println!("database: {database}");
            for e in &entries {
                let mark = match e.state {
                    HistoryState::Applied => "[applied]",
                    HistoryState::Pending => "[pending]",
                    HistoryState::Unknown => "[unknown]",
                };
                match (e.state, e.alembic_revision) {
                    (HistoryState::Unknown, _) => println!(
                        "{mark} {} (applied, not part of this build)",
                        e.migration.name
                    ),
                    (_, Some(rev)) => println!(
                        "{mark} {} (Prefect alembic revision {rev})",
                        e.migration.name
                    ),
                    (_, None) => println!("{mark} {}", e.migration.name),
                }
            }
            Ok(Exit::Ok)
        }
        MigrationCommand::Check => {
            let outcome = migrate::check(&config)
                .await
                .with_context(|| context("checking"))?;
            let primary = report_check(outcome, "");
            let Some(replica) = config.replica() else {
                return Ok(primary);
            };
            let name = replica.url.masked();
            let on_replica = match migrate::check(&replica).await {
                Ok(outcome) => report_check(outcome, "replica: "),
                Err(e) if e.is_unreachable() => {
                    println!("replica: unreachable: {e}");
                    Exit::Unreachable
                }
                Err(e) => return Err(e).with_context(|| format!("checking the replica {name}")),
            };
            if on_replica == Exit::Pending && primary == Exit::Ok {
                println!(
                    "replica: {name} has not replayed the primary's migrations yet (replication lag)"
                );
            }
            Ok(if primary == Exit::Ok { on_replica } else { primary })
        }
        MigrationCommand::Ping => match migrate::ping(&config).await {
            Ok(report) => {
                println!(
                    "ok: {database} answered in {} ms",
                    report.elapsed.as_millis()
                );
                ping_replica(&config).await
            }
            Err(e) if e.is_unreachable() => {
                eprintln!("unreachable: {e}");
                Ok(Exit::Unreachable)
            }
            Err(e) => Err(e.into()),
        },
    }
}

/// `ping`'s report of the read replica, if one is configured.
async fn ping_replica(config: &DatabaseConfig) -> anyhow::Result<Exit> {
    let Some(name) = config.read_replica_url.as_ref().map(DatabaseUrl::masked) else {
        return Ok(Exit::Ok);
    };
    match migrate::ping_replica(config).await {
        Ok(None) => Ok(Exit::Ok),
        Ok(Some(r)) if !r.in_recovery => {
            eprintln!(
                "error: replica {name} answered in {} ms but is not in recovery: it is a primary, \
                 not a streaming replica, so reads sent there would miss this database's writes",
                r.elapsed.as_millis()
            );
            Ok(Exit::Error)
        }
        Ok(Some(r)) => {
            let lag = match r.behind_bytes {
                Some(b) if b <= 0.0 => "caught up with the primary".to_owned(),
                Some(b) => format!("{b:.0} bytes of WAL behind the primary"),
                None => "lag unknown (the primary's WAL position could not be read)".to_owned(),
            };
            println!(
                "ok: replica {name} answered in {} ms, in recovery, {lag}",
                r.elapsed.as_millis()
            );
            Ok(Exit::Ok)
        }
        Err(e) if e.is_unreachable() => {
            eprintln!("unreachable: replica: {e}");
            Ok(Exit::Unreachable)
        }
        Err(e) => Err(e.into()),
    }
}

/// Prints `check`'s outcome (each line after `prefix`) and gives its exit status.
fn report_check(outcome: CheckOutcome, prefix: &str) -> Exit {
            match outcome {
                CheckOutcome::UpToDate { head } => {
                    println!(
                        "{prefix}up to date: {}",
                        head.map_or_else(|| "(this build has no migration)".to_owned(), |m| m.name)
                    );
                    Exit::Ok
                }
                CheckOutcome::Pending { pending, adopt } => {
                    let names: Vec<&str> = pending.iter().map(|m| m.name.as_str()).collect();
                    println!(
                        "{prefix}pending: {} migration(s) not applied: {}",
                        pending.len(),
                        names.join(", ")
                    );
                    if adopt {
                        println!(
                            "(the database was written by Prefect; `upgrade` records them as applied without running them)"
                        );
                    }
                    Exit::Pending
                }
                CheckOutcome::Ahead { unknown } => {
                    println!(
                        "{prefix}ahead: the database records migration(s) this build does not know: {} (a newer build migrated it)",
                        unknown.join(", ")
                    );
                    Exit::Ahead
                }
                CheckOutcome::UnknownAlembicRevision { found, supported } => {
                    println!(
                        "{prefix}unknown revision: alembic_version holds {}, but this build takes over only {}",
                        or_empty(&found),
                        supported.join(", ")
                    );
                    Exit::Ahead
                }
                CheckOutcome::AlembicMismatch { found, expected } => {
                    println!(
                        "{prefix}unknown revision: alembic_version holds {} but the applied migrations leave {expected} (changed by another tool)",
                        or_empty(&found)
                    );
                    Exit::Ahead
                }
                CheckOutcome::NotManaged { tables } => {
                    let some: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
                    println!(
                        "{prefix}unknown: {} table(s) (e.g. {}) without migration bookkeeping: not a Prefect database",
                        tables.len(),
                        some.join(", ")
                    );
                    Exit::Ahead
                }
            }
}

async fn copy(from: &str, to: &str, replace: bool, batch_size: u32) -> anyhow::Result<Exit> {
    let source = DatabaseConfig::new(DatabaseUrl::parse(from, "--from")?);
    let target = DatabaseConfig::new(DatabaseUrl::parse(to, "--to")?);
    println!("copying {} -> {}", source.url.masked(), target.url.masked());
    let mut out = Reporter::new(std::io::stdout().is_terminal());
    let options = CopyOptions {
        replace,
        batch_size: batch_size as usize,
    };
    let report = copy_database(&source, &target, &options, &mut |event: &CopyEvent| {
        out.event(event);
        Ok(())
    })
    .await?;
    println!(
        "copied {} rows in {} tables in {:.2}s ({:.0} rows/s); verified: row counts and checksums of every table match",
        report.rows,
        report.tables.len(),
        report.elapsed.as_secs_f64(),
        report.rows_per_second()
    );
    Ok(Exit::Ok)
}

/// Progress output of `copy`: a bar redrawn in place on a terminal, plain lines otherwise.
struct Reporter {
    terminal: bool,
    grand_total: u64,
    done_before: u64,
}

impl Reporter {
    fn new(terminal: bool) -> Self {
        Reporter {
            terminal,
            grand_total: 0,
            done_before: 0,
        }
    }

    fn event(&mut self, event: &CopyEvent) {
        let mut stdout = std::io::stdout().lock();
        let _ = match event {
            CopyEvent::SourceChecked { counts } => {
                self.grand_total = counts.iter().map(|(_, n)| (*n).max(0) as u64).sum();
                writeln!(
                    stdout,
                    "source is at Prefect 3.9.1's schema: {} rows in {} tables",
                    self.grand_total,
                    counts.len()
                )
            }
            CopyEvent::TargetCleared { rows } => {
                writeln!(stdout, "target emptied: {rows} rows deleted")
            }
            CopyEvent::Rows {
                table,
                copied,
                total,
            } => {
                if self.terminal {
                    let overall = self.done_before + copied;
                    let width = 30usize;
                    let filled = if self.grand_total == 0 {
                        width
                    } else {
                        ((overall as f64 / self.grand_total as f64) * width as f64).round() as usize
                    }
                    .min(width);
                    write!(
                        stdout,
                        "\r\x1b[2K[{}{}] {overall}/{} rows  {table}: {copied}/{total}",
                        "#".repeat(filled),
                        "-".repeat(width - filled),
                        self.grand_total
                    )
                    .and_then(|()| stdout.flush())
                } else {
                    writeln!(stdout, "{table}: {copied}/{total} rows")
                }
            }
            CopyEvent::TableDone { table, rows } => {
                self.done_before += rows;
                if self.terminal {
                    if *rows > 0 {
                        write!(stdout, "\r\x1b[2K{table}: {rows} rows\n")
                    } else {
                        Ok(())
                    }
                } else {
                    writeln!(stdout, "{table}: done, {rows} rows")
                }
            }
            CopyEvent::DeferredApplied { rows } => {
                writeln!(stdout, "cycle columns set on {rows} rows; verifying")
            }
            CopyEvent::Verified {
                table,
                rows,
                checksum,
            } => {
                if self.terminal && *rows == 0 {
                    Ok(())
                } else {
                    writeln!(stdout, "verified {table}: {rows} rows, checksum {checksum}")
                }
            }
            _ => Ok(()),
        };
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::CommandFactory as _;
    use clap::error::ErrorKind;

    #[test]
    fn the_clap_definitions_are_consistent() {
        Cli::command().debug_assert();
        MigrateCli::command().debug_assert();
    }

    #[test]
    fn xtask_migrate_defaults_to_upgrade() {
        let (global, command) = parse_migrate_args(Vec::<String>::new())
            .unwrap()
            .into_command();
        assert_eq!(global.url, None);
        assert_eq!(
            command,
            MigrationCommand::Upgrade {
                revision: None,
                yes: false
            }
        );
    }

    #[test]
    fn xtask_migrate_takes_the_same_subcommands_and_a_global_url() {
        let cli =
            parse_migrate_args(["--url", "sqlite:///x.db", "downgrade", "--steps", "2", "-y"])
                .unwrap();
        assert_eq!(cli.global.url.as_deref(), Some("sqlite:///x.db"));
        assert_eq!(
            cli.command,
            Some(MigrationCommand::Downgrade {
                revision: None,
                steps: Some(2),
                yes: true
            })
        );
        // `--url` after the subcommand too (global).
        let cli = parse_migrate_args(["check", "--url", "postgresql://h/db"]).unwrap();
        assert_eq!(cli.global.url.as_deref(), Some("postgresql://h/db"));
        assert_eq!(cli.command, Some(MigrationCommand::Check));
        let cli = parse_migrate_args(["stamp", "head", "--yes"]).unwrap();
        assert_eq!(
            cli.command,
            Some(MigrationCommand::Stamp {
                revision: "head".to_owned(),
                yes: true
            })
        );
        let cli = parse_migrate_args(["upgrade", "-r", "00000000000001"]).unwrap();
        assert_eq!(
            cli.command,
            Some(MigrationCommand::Upgrade {
                revision: Some("00000000000001".to_owned()),
                yes: false
            })
        );
        assert_eq!(parse_migrate_args(["status"]).unwrap().command, Some(MigrationCommand::Current));
        for name in ["current", "history", "ping", "reset"] {
            assert!(parse_migrate_args([name]).is_ok(), "{name}");
        }
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        let e =
            parse_migrate_args(["downgrade", "--revision", "base", "--steps", "1"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        assert_eq!(e.exit_code(), i32::from(Exit::Usage.code()));
        assert_eq!(
            parse_migrate_args(["downgrade", "--steps", "0"])
                .unwrap_err()
                .kind(),
            ErrorKind::ValueValidation
        );
        assert_eq!(
            parse_migrate_args(["stamp"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        assert_eq!(
            parse_migrate_args(["frobnicate"]).unwrap_err().kind(),
            ErrorKind::InvalidSubcommand
        );
        // `copy` belongs to `prefect-db`, not to `cargo xtask migrate`.
        assert!(parse_migrate_args(["copy", "--from", "a", "--to", "b"]).is_err());
        assert!(Cli::try_parse_from(["prefect-db", "copy", "--from", "a", "--to", "b"]).is_ok());
    }

    #[test]
    fn only_downgrade_reset_and_stamp_need_confirmation() {
        let destructive = |c: MigrationCommand| c.destructive().map(|(_, yes)| yes);
        assert_eq!(
            destructive(MigrationCommand::Upgrade {
                revision: None,
                yes: false
            }),
            None
        );
        assert_eq!(
            destructive(MigrationCommand::Reset { yes: false }),
            Some(false)
        );
        assert_eq!(
            destructive(MigrationCommand::Stamp {
                revision: "base".to_owned(),
                yes: true
            }),
            Some(true)
        );
        assert_eq!(
            destructive(MigrationCommand::Downgrade {
                revision: None,
                steps: None,
                yes: false
            }),
            Some(false)
        );
        for c in [
            MigrationCommand::Current,
            MigrationCommand::History,
            MigrationCommand::Check,
            MigrationCommand::Ping,
        ] {
            assert_eq!(destructive(c), None);
        }
    }
}
