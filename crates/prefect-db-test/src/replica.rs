//! A real PostgreSQL streaming replica for tests: a throwaway primary cluster started from the
//! system's PostgreSQL binaries (never the machine's shared server, which the tests do not
//! reconfigure) and a standby made from it with `pg_basebackup -R`, both on free ports of
//! 127.0.0.1, started once per test process and stopped when it ends. When they cannot start,
//! asking for them fails with the reason and the logs' last lines: tests never silently pass.

use crate::TestDbError;
use crate::pgbouncer::free_port;
use crate::postgres::{is_root, pg_bin_dir, run_pg};
use prefect_db_config::{DatabaseUrl, PostgresUrl};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// A primary and its streaming replica.
#[derive(Debug)]
pub struct ReplicaPair {
    /// The primary's maintenance database.
    pub primary: PostgresUrl,
    /// The replica's maintenance database.
    pub replica: PostgresUrl,
    /// Their folder (data directories and logs).
    pub dir: PathBuf,
}

static PAIR: OnceCell<Result<ReplicaPair, String>> = OnceCell::const_new();

/// The test primary and replica, started once per process.
pub async fn replica_pair() -> Result<&'static ReplicaPair, TestDbError> {
    PAIR.get_or_init(|| async {
        let pair = tokio::task::spawn_blocking(start).await.map_err(|e| format!("starting the replica panicked: {e}"))??;
        eprintln!("prefect-db-test: primary {} and streaming replica {}", pair.primary.masked(), pair.replica.masked());
        Ok(pair)
    })
    .await
    .as_ref()
    .map_err(|reason| TestDbError::NoReplica(reason.clone()))
}

fn url(port: u16) -> Result<PostgresUrl, String> {
    match DatabaseUrl::parse(&format!("postgresql://postgres@127.0.0.1:{port}/postgres"), "the test replica pair") {
        Ok(DatabaseUrl::Postgres(u)) => Ok(u),
        Ok(_) => Err("not a PostgreSQL URL".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

fn start() -> Result<ReplicaPair, String> {
    let bin = pg_bin_dir().ok_or("no PostgreSQL server binaries (initdb, pg_basebackup) found")?;
    let (p1, p2) = (free_port()?, free_port()?);
    let dir = std::env::temp_dir().join(format!("prefect-db-test-replica-{}", std::process::id()));
    let (primary, standby) = (dir.join("primary"), dir.join("replica"));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if is_root() {
        let _ = Command::new("chown").arg("-R").arg("postgres:postgres").arg(&dir).status();
    }
    let logs = |e: String| format!("{e}\n{}", log_tail(&dir));
    let d = |p: &Path| p.to_string_lossy().into_owned();
    let opts = |port: u16| {
        format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off", dir.display())
    };
    run_pg(&bin.join("initdb"), &["-D", &d(&primary), "-U", "postgres", "--auth=trust", "-E", "UTF8"]).map_err(logs)?;
    run_pg(&bin.join("pg_ctl"), &["-D", &d(&primary), "-l", &d(&dir.join("primary.log")), "-w", "-o", &opts(p1), "start"]).map_err(logs)?;
    watchdog(&bin, &dir, &primary, &standby);
    run_pg(&bin.join("pg_basebackup"), &["-D", &d(&standby), "-R", "-X", "stream", "-h", "127.0.0.1", "-p", &p1.to_string(), "-U", "postgres"])
        .map_err(logs)?;
    run_pg(&bin.join("pg_ctl"), &["-D", &d(&standby), "-l", &d(&dir.join("replica.log")), "-w", "-o", &opts(p2), "start"]).map_err(logs)?;
    Ok(ReplicaPair { primary: url(p1)?, replica: url(p2)?, dir })
}

/// Stops both clusters and removes their folder when this test process ends (statics are never
/// dropped).
fn watchdog(bin: &Path, dir: &Path, primary: &Path, standby: &Path) {
    let ctl = bin.join("pg_ctl");
    let script = format!(
        "while [ -d /proc/{pid} ]; do sleep 1; done; \
         {ctl} -D {standby} -m immediate stop >/dev/null 2>&1; {ctl} -D {primary} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        ctl = ctl.display(),
        standby = standby.display(),
        primary = primary.display(),
        dir = dir.display(),
    );
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &script]);
        c
    };
    let _ = cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn();
}

fn log_tail(dir: &Path) -> String {
    let mut out = String::new();
    for name in ["primary.log", "replica.log"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("{name}:\n{}\n", lines[lines.len().saturating_sub(10)..].join("\n")));
        }
    }
    out
}

/// Waits until `check` holds (polling every 50 ms), at most `limit`.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
