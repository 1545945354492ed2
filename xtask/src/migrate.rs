//! `cargo xtask migrate [upgrade|downgrade|reset|stamp|current|history|check|ping] [--url URL]
//! [options]`: the `prefect-db` migration commands (the same clap definitions and the same
//! library functions, from the `prefect_db_cli` library), on the database Prefect's settings name
//! (default: the embedded SQLite file `$PREFECT_HOME/prefect.db`). Without a subcommand:
//! `upgrade`. Exit statuses as `prefect-db`'s (`cargo xtask migrate --help`).

use anyhow::Result;
use prefect_db_cli::{Command, Exit, parse_migrate_args, run as run_command};

/// Runs the command; exits the process with the command's status when it is not success.
pub fn run(args: &[String]) -> Result<()> {
    let cli = match parse_migrate_args(args) {
        Ok(cli) => cli,
        // Prints the help or the usage error and exits with clap's status (0 or 2).
        Err(e) => e.exit(),
    };
    let (global, command) = cli.into_command();
    match run_command(global, Command::Migration(command)) {
        Exit::Ok => Ok(()),
        // The report or the error is printed already; keep the documented status.
        other => std::process::exit(i32::from(other.code())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use prefect_db_cli::{MigrationCommand, parse_migrate_args};

    #[test]
    fn no_subcommand_is_upgrade_and_subcommands_parse() {
        let none: &[String] = &[];
        let (_, command) = parse_migrate_args(none).unwrap().into_command();
        assert_eq!(
            command,
            MigrationCommand::Upgrade {
                revision: None,
                yes: false
            }
        );
        let args: Vec<String> = ["downgrade", "--revision", "base", "-y"]
            .map(String::from)
            .to_vec();
        let (_, command) = parse_migrate_args(&args).unwrap().into_command();
        assert_eq!(
            command,
            MigrationCommand::Downgrade {
                revision: Some("base".to_owned()),
                steps: None,
                yes: true
            }
        );
    }
}
