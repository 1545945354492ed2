//! `prefect-db copy` of a generated SQLite database (one flow run's logs) into a fresh
//! PostgreSQL database: wall-clock time and the copying process's peak memory.
//!
//! The peak is the copying process's `VmHWM`, sampled every few milliseconds while it runs (a
//! high-water mark, so only growth in the last sampling interval before exit could be missed).

use crate::floor::sqlite::{V, connect, raw};
use crate::{Fixture, Sizes, Workload, create_database, drop_fixture, sqlite_time};
use anyhow::{Context as _, Result, bail};
use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use prefect_db_config::Dialect;
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// What one copy measured.
#[derive(Debug, Clone, Serialize)]
pub struct CopyResult {
    /// Log rows in the source.
    pub rows: usize,
    /// Wall-clock seconds of the whole `prefect-db copy` (migrating the target, copying,
    /// verifying).
    pub seconds: f64,
    /// Peak RSS of the `prefect-db` process, MiB.
    pub peak_rss_mb: Option<f64>,
}

/// A copy database: seeded with logs by [`generate_source`], not by a workload.
fn fixture(dialect: Dialect, url: String, pg_admin: Option<(String, String)>) -> Fixture {
    Fixture::unseeded(dialect, Workload::W4, Sizes::tiny(1), url, pg_admin)
}

/// Creates a migrated SQLite database in `dir` holding `rows` log rows (untimed set-up).
pub async fn generate_source(dir: &Path, rows: usize) -> Result<Fixture> {
    let (url, _) = create_database(Dialect::Sqlite, dir).await?;
    let fx = fixture(Dialect::Sqlite, url, None);
    prefect_db_interface::migrate::upgrade(&fx.config()?, prefect_db_interface::migrate::UpgradeTarget::Latest).await?;
    let gen_fx = fx.clone();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let c = &mut connect(&gen_fx)?;
        let sql = "INSERT INTO log (id, created, updated, name, level, flow_run_id, task_run_id, message, timestamp) \
                   VALUES (?1, ?2, ?2, ?3, ?4, ?5, NULL, ?6, ?2)";
        let flow_run = V::T(Uuid::new_v4().hyphenated().to_string());
        let start = crate::plan::now() - chrono::TimeDelta::days(1);
        let mut i = 0;
        while i < rows {
            let end = (i + 10_000).min(rows);
            c.batch_execute("BEGIN IMMEDIATE")?;
            for k in i..end {
                let at = start + chrono::TimeDelta::microseconds(k as i64 * 50);
                let binds = [
                    V::T(Uuid::new_v4().hyphenated().to_string()),
                    V::T(sqlite_time(&at)),
                    V::T("prefect.flow_runs".into()),
                    V::I(20),
                    flow_run.clone(),
                    V::T(format!("Generated log line {k}: a message of typical length for a flow run")),
                ];
                raw(sql, &binds).execute(c)?;
            }
            c.batch_execute("COMMIT")?;
            i = end;
        }
        Ok(())
    })
    .await??;
    Ok(fx)
}

/// Generates a source of `rows` log rows in `dir`, copies it with the `prefect-db` binary at
/// `prefect_db` into a fresh PostgreSQL database, and drops both.
pub async fn measure(prefect_db: &Path, dir: &Path, rows: usize) -> Result<CopyResult> {
    let source = generate_source(dir, rows).await?;
    let (url, admin) = create_database(Dialect::Postgres, dir).await?;
    let target = fixture(Dialect::Postgres, url, admin);
    let result = run_copy(prefect_db, &source.url, &target.url).await;
    let _ = drop_fixture(&target).await;
    let _ = drop_fixture(&source).await;
    let (seconds, peak_rss_mb) = result?;
    Ok(CopyResult { rows, seconds, peak_rss_mb })
}

async fn run_copy(prefect_db: &Path, from: &str, to: &str) -> Result<(f64, Option<f64>)> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(prefect_db)
        .args(["copy", "--from", from, "--to", to])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running {}", prefect_db.display()))?;
    let pid = child.id().context("the copy exited at once")?;
    let mut peak: Option<f64> = None;
    let status = loop {
        if let Some(mb) = crate::rss::peak_rss_mb_of(pid) {
            peak = Some(peak.map_or(mb, |p| p.max(mb)));
        }
        tokio::select! {
            status = child.wait() => break status?,
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use tokio::io::AsyncReadExt as _;
            let _ = e.read_to_string(&mut err).await;
        }
        bail!("prefect-db copy failed ({status}): {err}");
    }
    Ok((seconds, peak))
}
