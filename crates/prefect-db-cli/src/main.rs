//! `prefect-db`: command-line tool of the Prefect database layer.
//!
//! `upgrade`, `downgrade`, `reset`, `stamp`, `current`, `history`, `check` and `ping` work on the
//! database Prefect's settings name (or `--url`); `copy --from URL --to URL` copies a whole
//! Prefect 3.9.1 database between SQLite and PostgreSQL. `prefect-db --help` lists the commands
//! and the exit statuses; the commands live in the crate's library (`prefect_db_cli`), which
//! `cargo xtask migrate` runs too.

use clap::Parser as _;
use prefect_db_cli::{Cli, run};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // Warnings, plus one line per migration as it is applied or reverted (progress on stderr).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("warn,prefect_orm::migrations=info")
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    run(cli.global, cli.command).into()
}
