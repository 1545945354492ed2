//! SQL echo: with echo on, every statement is logged through `tracing` with its duration.
//! (Its own test binary: it installs the process-wide subscriber.)

use prefect_db_config::{DbPool, Dialect};
use prefect_db_test::{TestDatabase, TestResult, conformance};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn captured() -> &'static Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let sink = Captured::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("prefect_db::sql=info")
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        sink
    })
}

fn log_text() -> String {
    captured().0.lock().map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

async fn echo_logs_statements_with_duration(dialect: Dialect) -> TestResult {
    captured();
    let db = TestDatabase::empty(dialect).await?;
    let marker = format!("echo_marker_{}", uuid::Uuid::new_v4().simple());
    let mut quiet = db.config();
    quiet.echo = false;
    DbPool::build(&quiet)?.get().await?.conn().batch_execute(&format!("SELECT 1 AS quiet_{marker}")).await?;
    let mut config = db.config();
    config.echo = true;
    let pool = DbPool::build(&config)?;
    pool.get().await?.conn().batch_execute(&format!("SELECT 1 AS {marker}")).await?;
    let log = log_text();
    let line = log.lines().find(|l| l.contains(&format!("SELECT 1 AS {marker}"))).ok_or("statement not echoed")?;
    assert!(line.contains("prefect_db::sql") && line.contains("elapsed_us="), "{line}");
    assert!(!log.contains(&format!("quiet_{marker}")), "echo off must not log");
    Ok(())
}

conformance!(echo_logs_statements_with_duration);
