//! A PostgreSQL cluster of one test's own, for tests that stop or restart the server under the
//! layer (never the machine's shared server, which tests do not touch): initialised from the
//! system's PostgreSQL binaries on a free port of 127.0.0.1, stopped and removed when the value
//! is dropped (and, should the test process die, by a watchdog when it ends). When it cannot
//! start, asking for it fails with the reason and the log's last lines.

use crate::TestDbError;
use crate::pgbouncer::free_port;
use crate::postgres::{is_root, pg_bin_dir, run_pg};
use prefect_db_config::{DatabaseUrl, PostgresUrl};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Its maintenance database (`postgres`).
    pub url: PostgresUrl,
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    /// Initialises and starts a cluster (a few seconds).
    pub async fn start() -> Result<Cluster, TestDbError> {
        tokio::task::spawn_blocking(start)
            .await
            .map_err(|e| TestDbError::NoCluster(format!("starting the cluster panicked: {e}")))?
            .map_err(TestDbError::NoCluster)
    }

    fn data(&self) -> String {
        self.dir.join("data").to_string_lossy().into_owned()
    }

    fn ctl(&self, args: &[&str]) -> Result<(), TestDbError> {
        let data = self.data();
        let mut all = vec!["-D", data.as_str()];
        all.extend_from_slice(args);
        run_pg(&self.bin.join("pg_ctl"), &all).map_err(|e| TestDbError::NoCluster(format!("{e}\n{}", log_tail(&self.dir))))
    }

    /// `pg_ctl restart -m fast`: every session is terminated, the server stops and starts again.
    /// Returns when the server accepts connections again, with that instant.
    pub async fn restart(&self) -> Result<Instant, TestDbError> {
        let opts = options(&self.dir, self.port);
        let log = self.dir.join("server.log").to_string_lossy().into_owned();
        let this = (self.bin.clone(), self.data(), self.dir.clone());
        tokio::task::spawn_blocking(move || {
            let (bin, data, dir) = this;
            run_pg(&bin.join("pg_ctl"), &["-D", &data, "-l", &log, "-m", "fast", "-w", "-o", &opts, "restart"])
                .map_err(|e| TestDbError::NoCluster(format!("{e}\n{}", log_tail(&dir))))
        })
        .await
        .map_err(|e| TestDbError::NoCluster(format!("restarting panicked: {e}")))??;
        Ok(Instant::now())
    }

    /// Stops the server (`-m fast`) and waits until it is down.
    pub fn stop(&self) -> Result<(), TestDbError> {
        self.ctl(&["-m", "fast", "-w", "stop"])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.ctl(&["-m", "immediate", "-w", "stop"]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn options(dir: &Path, port: u16) -> String {
    format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50", dir.display())
}

fn start() -> Result<Cluster, String> {
    let bin = pg_bin_dir().ok_or("no PostgreSQL server binaries (initdb, pg_ctl) found")?;
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("prefect-db-test-cluster-{}-{port}", std::process::id()));
    let data = dir.join("data");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if is_root() {
        let _ = Command::new("chown").arg("-R").arg("postgres:postgres").arg(&dir).status();
    }
    let logs = |e: String| format!("{e}\n{}", log_tail(&dir));
    let d = |p: &Path| p.to_string_lossy().into_owned();
    run_pg(&bin.join("initdb"), &["-D", &d(&data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]).map_err(logs)?;
    let log = d(&dir.join("server.log"));
    run_pg(&bin.join("pg_ctl"), &["-D", &d(&data), "-l", &log, "-w", "-o", &options(&dir, port), "start"]).map_err(logs)?;
    watchdog(&bin, &dir, &data);
    let url = match DatabaseUrl::parse(&format!("postgresql://postgres@127.0.0.1:{port}/postgres"), "the test cluster") {
        Ok(DatabaseUrl::Postgres(u)) => u,
        Ok(_) => return Err("not a PostgreSQL URL".to_owned()),
        Err(e) => return Err(e.to_string()),
    };
    Ok(Cluster { url, bin, dir, port })
}

/// Stops the cluster and removes its folder when this test process ends without dropping it.
fn watchdog(bin: &Path, dir: &Path, data: &Path) {
    let script = format!(
        "while [ -d /proc/{pid} ]; do sleep 1; done; {ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
        pid = std::process::id(),
        ctl = bin.join("pg_ctl").display(),
        data = data.display(),
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
    std::fs::read_to_string(dir.join("server.log"))
        .map(|text| {
            let lines: Vec<&str> = text.lines().collect();
            format!("server.log:\n{}", lines[lines.len().saturating_sub(10)..].join("\n"))
        })
        .unwrap_or_default()
}
