//! `prefect-db`: command-line tool of the Prefect database layer.
//!
//! `prefect-db copy --from URL --to URL [--replace] [--batch-size N]` copies a whole Prefect
//! 3.9.1 database from one database to another (SQLite ↔ PostgreSQL), in one transaction on the
//! target, and verifies row counts and checksums of every table at the end.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use prefect_db_interface::config::{DatabaseConfig, DatabaseUrl};
use prefect_db_interface::copy::{CopyEvent, CopyOptions, copy_database};
use std::io::{IsTerminal as _, Write as _};

/// Tools for Prefect 3.9.1 databases (SQLite and PostgreSQL).
#[derive(Debug, Parser)]
#[command(name = "prefect-db", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Copy { from, to, replace, batch_size } => {
            let source = DatabaseConfig::new(DatabaseUrl::parse(&from, "--from")?);
            let target = DatabaseConfig::new(DatabaseUrl::parse(&to, "--to")?);
            println!("copying {} -> {}", source.url.masked(), target.url.masked());
            let mut out = Reporter::new(std::io::stdout().is_terminal());
            let options = CopyOptions { replace, batch_size: batch_size as usize };
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
            Ok(())
        }
    }
}

/// Progress output: a bar redrawn in place on a terminal, plain lines otherwise.
struct Reporter {
    terminal: bool,
    grand_total: u64,
    done_before: u64,
}

impl Reporter {
    fn new(terminal: bool) -> Self {
        Reporter { terminal, grand_total: 0, done_before: 0 }
    }

    fn event(&mut self, event: &CopyEvent) {
        let mut stdout = std::io::stdout().lock();
        let _ = match event {
            CopyEvent::SourceChecked { counts } => {
                self.grand_total = counts.iter().map(|(_, n)| (*n).max(0) as u64).sum();
                writeln!(stdout, "source is at Prefect 3.9.1's schema: {} rows in {} tables", self.grand_total, counts.len())
            }
            CopyEvent::TargetCleared { rows } => writeln!(stdout, "target emptied: {rows} rows deleted"),
            CopyEvent::Rows { table, copied, total } => {
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
                    if *rows > 0 { write!(stdout, "\r\x1b[2K{table}: {rows} rows\n") } else { Ok(()) }
                } else {
                    writeln!(stdout, "{table}: done, {rows} rows")
                }
            }
            CopyEvent::DeferredApplied { rows } => writeln!(stdout, "cycle columns set on {rows} rows; verifying"),
            CopyEvent::Verified { table, rows, checksum } => {
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
