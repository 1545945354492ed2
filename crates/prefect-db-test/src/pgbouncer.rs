//! A real PgBouncer in transaction pooling mode in front of the test server, started once per
//! test process: Debian's `pgbouncer` (`.ci/setup` installs it when missing), listening on a
//! free port of 127.0.0.1 with `default_pool_size = 2`, every database of the test server
//! reachable through it by name. It stops when the test process ends. When it cannot start,
//! asking for it fails with the reason (and the log's last lines): tests never silently pass.

use crate::TestDbError;
use crate::postgres::{is_root, server};
use prefect_db_config::{DatabaseUrl, PostgresUrl};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

/// The pool size per database and user: small, so that clients share server connections
/// (what transaction pooling is for, and what breaks a client that keeps session state).
pub const DEFAULT_POOL_SIZE: u32 = 2;

/// A running PgBouncer.
#[derive(Debug)]
pub struct PgBouncer {
    /// Where it listens (127.0.0.1).
    pub port: u16,
    /// Its folder (configuration and log).
    pub dir: PathBuf,
}

impl PgBouncer {
    /// The URL of `database` on the test server, through this PgBouncer, with the statement
    /// cache disabled (Prefect's `statement_cache_size=0`: how a user says a transaction-mode
    /// pooler is in front).
    pub fn url_for(&self, direct: &PostgresUrl) -> Result<DatabaseUrl, TestDbError> {
        let user = direct.user().unwrap_or_else(|| "postgres".to_owned());
        let raw = format!("postgresql://{user}@127.0.0.1:{}/{}?statement_cache_size=0", self.port, direct.database());
        DatabaseUrl::parse(&raw, "the PgBouncer test URL").map_err(|e| TestDbError::NoPgBouncer(e.to_string()))
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.dir)
    }
}

static BOUNCER: OnceCell<Result<PgBouncer, String>> = OnceCell::const_new();

/// The test PgBouncer, started once per process in front of the test server.
pub async fn pgbouncer() -> Result<&'static PgBouncer, TestDbError> {
    BOUNCER
        .get_or_init(|| async {
            let server = server().await.map_err(|e| e.to_string())?;
            let admin = server.admin.clone();
            let started = tokio::task::spawn_blocking(move || start(&admin)).await.map_err(|e| format!("starting PgBouncer panicked: {e}"))??;
            wait_ready(&started).await?;
            eprintln!("prefect-db-test: PgBouncer (transaction pooling, pool size {DEFAULT_POOL_SIZE}) on 127.0.0.1:{}", started.port);
            Ok(started)
        })
        .await
        .as_ref()
        .map_err(|reason| TestDbError::NoPgBouncer(reason.clone()))
}

fn binary() -> Result<PathBuf, String> {
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|p| p.join("pgbouncer")).find(|p| p.exists()));
    on_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/pgbouncer")).filter(|p| p.exists()))
        .ok_or_else(|| "no pgbouncer binary on PATH or in /usr/sbin: run .ci/setup (it installs Debian's pgbouncer)".to_owned())
}

pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("no free port: {e}"))
}

fn start(admin: &PostgresUrl) -> Result<PgBouncer, String> {
    let bin = binary()?;
    let port = free_port()?;
    let dir = std::env::temp_dir().join(format!("prefect-db-test-pgbouncer-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let host = admin.host().unwrap_or("127.0.0.1");
    let user = admin.user().unwrap_or_else(|| "postgres".to_owned());
    let ini = format!(
        "[databases]\n\
         * = host={host} port={server_port}\n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = trust\n\
         auth_file = {dir}/users.txt\n\
         pool_mode = transaction\n\
         default_pool_size = {DEFAULT_POOL_SIZE}\n\
         max_client_conn = 1000\n\
         server_reset_query =\n\
         logfile = {dir}/pgbouncer.log\n\
         pidfile = {dir}/pgbouncer.pid\n",
        server_port = admin.port(),
        dir = dir.display(),
    );
    std::fs::write(dir.join("pgbouncer.ini"), ini).map_err(|e| format!("{}: {e}", dir.display()))?;
    std::fs::write(dir.join("users.txt"), format!("\"{user}\" \"\"\n")).map_err(|e| format!("{}: {e}", dir.display()))?;
    // PgBouncer refuses to run as root: it runs as `postgres`, which must own its folder.
    let as_user = if is_root() {
        let _ = Command::new("chown").arg("-R").arg("postgres:postgres").arg(&dir).status();
        Some("postgres")
    } else {
        None
    };
    // A watchdog shell stops PgBouncer when this test process ends (statics are never dropped).
    let mut cmd = format!("{} {}", bin.display(), dir.join("pgbouncer.ini").display());
    if let Some(u) = as_user {
        cmd = format!("{} -u {u} {}", bin.display(), dir.join("pgbouncer.ini").display());
    }
    let script = format!(
        "{cmd} & child=$!; while kill -0 {parent} 2>/dev/null && kill -0 $child 2>/dev/null; do sleep 1; done; kill $child 2>/dev/null; wait $child 2>/dev/null",
        parent = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(dir.join("stderr.log")).map_err(|e| format!("{}: {e}", dir.display()))?,
        ))
        .spawn()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    Ok(PgBouncer { port, dir })
}

async fn wait_ready(b: &PgBouncer) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    let url = format!("postgresql://postgres@127.0.0.1:{}/postgres", b.port);
    let mut last = String::new();
    while Instant::now() < deadline {
        match crate::postgres::ping_raw(&url).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("PgBouncer on 127.0.0.1:{} did not answer within 15 s ({last}); log:\n{}", b.port, log_tail(&b.dir)))
}

fn log_tail(dir: &Path) -> String {
    let mut out = String::new();
    for name in ["stderr.log", "pgbouncer.log"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(name)) {
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(15);
            out.push_str(&lines[from..].join("\n"));
            out.push('\n');
        }
    }
    out
}
