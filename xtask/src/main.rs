//! Project automation: `cargo xtask <command>` (the alias lives in `.cargo/config.toml`).
//!
//! Commands:
//! - `migrate [--url U] [upgrade|downgrade|reset|stamp|current|history|check|ping] …`: the
//!   `prefect-db` commands (same parser, same library functions) on the database Prefect's
//!   settings name (default: the embedded SQLite `$PREFECT_HOME/prefect.db`); no subcommand
//!   means `upgrade`.
//! - `test-all-dialects [cargo test args]`: find or start PostgreSQL, run every test, print a
//!   per-dialect summary.
//! - `tidy`: check the architecture invariants (also run as a test of this crate).
//! - `bench [--dialect D] [--workload W1,..|copy] [--reps N]`: time the layer against the driver
//!   floor (release build of `prefect-db-bench`, one process per run).
//! - `read-api --cases FILE --url URL --out FILE [--compare EXPECTED]`: answer a case file of
//!   Prefect read-API requests through the layer's read API (and compare with expected answers).
//! - `codegen [--check]`: regenerate `prefect-orm`'s schema and models from the PostgreSQL
//!   migrations; with `--check`, fail if the committed files are stale.

mod bench;
mod codegen;
mod migrate;
mod read_api;
mod test_all;
mod tidy;

use anyhow::{Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  migrate [--url URL] [upgrade|downgrade|reset|stamp|current|history|check|ping] [..]
                      the `prefect-db` migration commands on the configured database
                      (default: upgrade $PREFECT_HOME/prefect.db; `migrate --help` for more)
  test-all-dialects   run every test on SQLite and PostgreSQL, with a per-dialect summary
  tidy                check the architecture invariants
  bench [--dialect sqlite|postgres|all] [--workload W1,W2,..|copy] [--reps N]
                      time each workload through the layer and through the driver floor
                      (release build; default W1..W6, 3 reps, both dialects; `copy`, about a
                      minute, runs only when named)
  read-api --cases FILE --url URL --out FILE [--compare EXPECTED]
                      answer a case file (golden read-API format) through the read API,
                      write the answers, and compare them with EXPECTED's (golden rules)
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
        "bench" => bench::run(rest),
        "migrate" => migrate::run(rest),
        "read-api" => read_api::run(rest),
        "test-all-dialects" => test_all::run(rest),
        "tidy" => tidy::run(),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown command `{other}`\n\n{USAGE}"),
    }
}
