//! Project automation: `cargo xtask <command>` (the alias lives in `.cargo/config.toml`).
//!
//! Commands:
//! - `migrate [upgrade|status|downgrade] [--url U] [--revision R] [--steps N]`: migrate the
//!   database Prefect's settings name (default: the embedded SQLite `$PREFECT_HOME/prefect.db`).
//! - `test-all-dialects [cargo test args]`: find or start PostgreSQL, run every test, print a
//!   per-dialect summary.
//! - `tidy`: check the architecture invariants (also run as a test of this crate).
//! - `codegen [--check]`: regenerate `prefect-orm`'s schema and models from the PostgreSQL
//!   migrations; with `--check`, fail if the committed files are stale.

mod codegen;
mod migrate;
mod test_all;
mod tidy;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  migrate [upgrade|status|downgrade] [--url URL] [--revision R] [--steps N]
                      migrate the configured database (default: $PREFECT_HOME/prefect.db)
  test-all-dialects   run every test on SQLite and PostgreSQL, with a per-dialect summary
  tidy                check the architecture invariants
  codegen [--check]   generate crates/prefect-orm/src/{schema.rs,models/generated.rs} from
                      migrations/postgresql/*/up.sql; --check fails if they are out of date";

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        println!("{USAGE}");
        return Ok(());
    };
    match command.as_str() {
        "codegen" => {
            let mut check = false;
            for arg in rest {
                match arg.as_str() {
                    "--check" => check = true,
                    other => bail!("codegen: unknown argument `{other}`\n\n{USAGE}"),
                }
            }
            codegen::run(check)
        }
        "migrate" => migrate::run(rest),
        "test-all-dialects" => test_all::run(rest),
        "tidy" => tidy::run(),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}
