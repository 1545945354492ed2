//! `cargo xtask test-all-dialects`: finds (or starts) a PostgreSQL server, runs the whole test
//! suite with it, then the PostgreSQL tests once more through a real PgBouncer in transaction
//! pooling mode (started by the test tooling; `scripts/install-test-components.sh` installs
//! Debian's `pgbouncer` when it is missing), and prints a per-dialect summary. Fails when
//! PostgreSQL or PgBouncer cannot be reached or started, or when any test fails.

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
    let mut counts: BTreeMap<&'static str, Counts> = BTreeMap::new();
    let mut outcome = run_cargo_test(&url, extra, None, &mut counts);
    if outcome.is_ok() {
        install_pgbouncer()?;
        println!("xtask: the PostgreSQL tests again, through PgBouncer in transaction pooling mode");
        outcome = run_cargo_test(&url, extra, Some(VIA_PGBOUNCER), &mut counts);
    }
    let summary = summarize(&counts);
    let outcome = outcome.and(summary);
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
    failures: Vec<String>,
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

/// The summary row of the PostgreSQL tests run through PgBouncer.
const VIA_PGBOUNCER: &str = "postgresql/pgbouncer";

/// Installs Debian's `pgbouncer` with the project's script when it is not on this machine.
fn install_pgbouncer() -> Result<()> {
    let found = ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer"].iter().any(|p| std::path::Path::new(p).exists());
    if found {
        return Ok(());
    }
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-test-components.sh");
    println!("xtask: pgbouncer is missing: running {}", script.display());
    let status = Command::new("bash").arg(&script).status().with_context(|| format!("cannot run {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status}): the PgBouncer tests need Debian's pgbouncer", script.display());
    }
    Ok(())
}

/// One `cargo test` run: the whole workspace, or (`pooled`) the PostgreSQL tests through
/// PgBouncer, counted under that row.
fn run_cargo_test(pg_url: &str, extra: &[String], pooled: Option<&'static str>, counts: &mut BTreeMap<&'static str, Counts>) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "--workspace", "--no-fail-fast"]).args(extra).env(ENV_URL, pg_url).stdout(Stdio::piped());
    if pooled.is_some() {
        // Test binaries only (doc tests take no database), PostgreSQL tests only.
        cmd.args(["--tests", "--", "postgres"]).env(prefect_db_test::VIA_PGBOUNCER_ENV, "1");
    }
    let mut child = cmd.spawn().context("cannot run cargo test")?;
    let stdout = child.stdout.take().context("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        let Some(rest) = line.strip_prefix("test ") else { continue };
        let Some((name, outcome)) = rest.rsplit_once(" ... ") else { continue };
        let row = match pooled {
            Some(row) => row,
            None => dialect_of(name),
        };
        let entry = counts.entry(row).or_default();
        match outcome.trim() {
            "ok" => entry.passed += 1,
            "FAILED" => {
                entry.failed += 1;
                entry.failures.push(name.to_owned());
            }
            o if o.starts_with("ignored") => entry.ignored += 1,
            _ => {}
        }
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("cargo test exited with {status}");
    }
    Ok(())
}

fn summarize(counts: &BTreeMap<&'static str, Counts>) -> Result<()> {
    println!("\nxtask: per-dialect summary");
    for (dialect, c) in counts {
        println!("  {dialect:<20} {:>4} passed, {:>3} failed, {:>3} ignored", c.passed, c.failed, c.ignored);
    }
    let total_failed: usize = counts.values().map(|c| c.failed).sum();
    let total_passed: usize = counts.values().map(|c| c.passed).sum();
    for (dialect, c) in counts {
        for name in &c.failures {
            println!("  FAILED {name} ({dialect})");
        }
    }
    for dialect in ["sqlite", "postgresql", VIA_PGBOUNCER] {
        if counts.get(dialect).is_none_or(|c| c.passed == 0) {
            bail!("no {dialect} test ran");
        }
    }
    if total_failed > 0 {
        bail!("{total_failed} tests failed");
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
