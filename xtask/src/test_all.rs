//! `cargo xtask test-all-dialects`: finds (or starts) a PostgreSQL server, runs the whole test
//! suite with it, and prints a per-dialect summary. Fails when PostgreSQL cannot be reached or
//! started, or when any test fails.

use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const ENV_URL: &str = "PREFECT_TEST_POSTGRES_URL";

/// Runs the suite. Extra arguments go to `cargo test`.
pub fn run(extra: &[String]) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let server = runtime
        .block_on(prefect_db_test::postgres::server())
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("PostgreSQL is needed for the PostgreSQL half of the suite")?;
    let started_here = server.source.starts_with("a throwaway cluster");
    println!("xtask: PostgreSQL for tests: {}", server.source);
    let url = server.admin.expose().to_owned();
    let outcome = run_cargo_test(&url, extra);
    if started_here {
        match prefect_db_test::postgres::stop_throwaway() {
            Ok(()) => println!("xtask: stopped the throwaway cluster"),
            Err(e) => eprintln!("xtask: could not stop the throwaway cluster: {e}"),
        }
    }
    outcome
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    ignored: usize,
}

fn dialect_of(test_name: &str) -> &'static str {
    let lower = test_name.to_ascii_lowercase();
    let last = lower.rsplit("::").next().unwrap_or(&lower);
    if last == "sqlite" || last.starts_with("sqlite_") || last.ends_with("_sqlite") {
        "sqlite"
    } else if last == "postgres" || last.starts_with("postgres_") || last.ends_with("_postgres") {
        "postgresql"
    } else {
        "dialect-independent"
    }
}

fn run_cargo_test(pg_url: &str, extra: &[String]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut child = Command::new(cargo)
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(extra)
        .env(ENV_URL, pg_url)
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot run cargo test")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut counts: BTreeMap<&'static str, Counts> = BTreeMap::new();
    let mut failures = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        let Some(rest) = line.strip_prefix("test ") else { continue };
        let Some((name, outcome)) = rest.rsplit_once(" ... ") else { continue };
        let entry = counts.entry(dialect_of(name)).or_default();
        match outcome.trim() {
            "ok" => entry.passed += 1,
            "FAILED" => {
                entry.failed += 1;
                failures.push(name.to_owned());
            }
            o if o.starts_with("ignored") => entry.ignored += 1,
            _ => {}
        }
    }
    let status = child.wait()?;
    println!("\nxtask: per-dialect summary");
    for (dialect, c) in &counts {
        println!("  {dialect:<20} {:>4} passed, {:>3} failed, {:>3} ignored", c.passed, c.failed, c.ignored);
    }
    let total_failed: usize = counts.values().map(|c| c.failed).sum();
    let total_passed: usize = counts.values().map(|c| c.passed).sum();
    for name in &failures {
        println!("  FAILED {name}");
    }
    for dialect in ["sqlite", "postgresql"] {
        if counts.get(dialect).is_none_or(|c| c.passed == 0) {
            bail!("no {dialect} test ran");
        }
    }
    if !status.success() || total_failed > 0 {
        bail!("{total_failed} tests failed (cargo test exited with {status})");
    }
    println!("{total_passed} passed, {total_failed} failed");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::dialect_of;

    #[test]
    fn test_names_map_to_dialects() {
        assert_eq!(dialect_of("pool_exhaustion::sqlite"), "sqlite");
        assert_eq!(dialect_of("pool_exhaustion::postgres"), "postgresql");
        assert_eq!(dialect_of("postgres_session_settings_are_read_back"), "postgresql");
        assert_eq!(dialect_of("sqlite_pragmas_are_set"), "sqlite");
        assert_eq!(dialect_of("types::json_text::tests::floats_like_python_repr"), "dialect-independent");
    }
}
