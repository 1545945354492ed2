//! Finding (or starting) a PostgreSQL server for tests, and creating and dropping databases on it.

use crate::TestDbError;
use prefect_db_config::{DatabaseUrl, PostgresUrl};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::OnceCell;

/// The environment variable naming a server for tests.
pub const ENV_URL: &str = "PREFECT_TEST_POSTGRES_URL";
/// Overrides the local server probed before starting a throwaway cluster.
pub const LOCAL_ENV: &str = "PREFECT_TEST_POSTGRES_LOCAL_URL";
const LOCAL_URL: &str = "postgresql://postgres@127.0.0.1:5432/postgres";
const THROWAWAY_PORT: u16 = 55432;
const PREFIX: &str = "prefect_test_";

/// A server tests can create databases on.
pub struct Server {
    /// A URL to its maintenance database.
    pub admin: PostgresUrl,
    /// Where it came from, for messages.
    pub source: String,
}

static SERVER: OnceCell<Result<Server, String>> = OnceCell::const_new();

/// The test server, found once per process.
pub async fn server() -> Result<&'static Server, TestDbError> {
    SERVER
        .get_or_init(|| async {
            let server = find_server().await?;
            eprintln!("prefect-db-test: PostgreSQL from {}", server.source);
            sweep_stale(&server.admin).await;
            Ok(server)
        })
        .await
        .as_ref()
        .map_err(|reason| TestDbError::NoPostgres(reason.clone()))
}

fn parse(url: &str, origin: &str) -> Result<PostgresUrl, String> {
    match DatabaseUrl::parse(url, origin) {
        Ok(DatabaseUrl::Postgres(pg)) => Ok(pg),
        Ok(_) => Err(format!("{origin} is not a PostgreSQL URL")),
        Err(e) => Err(e.to_string()),
    }
}

async fn find_server() -> Result<Server, String> {
    if let Ok(raw) = std::env::var(ENV_URL) {
        let admin = parse(&raw, ENV_URL)?;
        return match ping(&admin).await {
            Ok(()) => Ok(Server { source: format!("{ENV_URL} ({})", admin.masked()), admin }),
            Err(e) => Err(format!("{ENV_URL} is set to {} but the server does not answer: {e}", admin.masked())),
        };
    }
    let mut reasons = Vec::new();
    // The probe address can be moved (to a closed port) to exercise the throwaway cluster.
    let local_raw = std::env::var(LOCAL_ENV).unwrap_or_else(|_| LOCAL_URL.to_owned());
    let local = parse(&local_raw, "the local default")?;
    match ping(&local).await {
        Ok(()) => return Ok(Server { source: format!("the local server at {}", local.masked()), admin: local }),
        Err(e) => reasons.push(format!("no server at {} ({e})", local.masked())),
    }
    match tokio::task::spawn_blocking(start_throwaway).await {
        Ok(Ok((admin, dir))) => {
            ping(&admin).await.map_err(|e| format!("the throwaway cluster does not answer: {e}"))?;
            Ok(Server { source: format!("a throwaway cluster in {} on port {THROWAWAY_PORT}", dir.display()), admin })
        }
        Ok(Err(e)) => {
            reasons.push(format!("cannot start a throwaway cluster: {e}"));
            Err(format!("{}; set {ENV_URL} to a server where the user may create databases", reasons.join("; ")))
        }
        Err(e) => Err(format!("starting a throwaway cluster panicked: {e}")),
    }
}

async fn connect(url: &PostgresUrl) -> Result<tokio_postgres::Client, String> {
    let mut config: tokio_postgres::Config = url.expose().parse().map_err(|e| format!("{e}"))?;
    config.connect_timeout(Duration::from_secs(3));
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `SELECT 1` on a raw URL (the simple protocol).
pub(crate) async fn ping_raw(url: &str) -> Result<(), String> {
    let url = parse(url, "a ping URL")?;
    ping(&url).await
}

async fn ping(url: &PostgresUrl) -> Result<(), String> {
    let client = connect(url).await?;
    client.simple_query("SELECT 1").await.map(|_| ()).map_err(|e| e.to_string())
}

pub(crate) fn pg_bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort();
    dirs.pop().or_else(|| {
        std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find(|p| p.join("initdb").exists()))
    })
}

pub(crate) fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false)
}

/// Stops the throwaway cluster, if one runs.
pub fn stop_throwaway() -> Result<(), String> {
    let bin = pg_bin_dir().ok_or("no PostgreSQL server binaries (pg_ctl) found")?;
    let data = std::env::temp_dir().join(format!("prefect-db-test-pg-{THROWAWAY_PORT}")).join("data");
    if !data.join("PG_VERSION").exists() {
        return Ok(());
    }
    if run_pg(&bin.join("pg_ctl"), &["-D", &data.to_string_lossy(), "status"]).is_err() {
        return Ok(());
    }
    run_pg(&bin.join("pg_ctl"), &["-D", &data.to_string_lossy(), "-m", "fast", "-w", "stop"])
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root (initdb refuses root).
pub(crate) fn run_pg(bin: &Path, args: &[&str]) -> Result<(), String> {
    let output = if is_root() {
        Command::new("runuser").arg("-u").arg("postgres").arg("--").arg(bin).args(args).output()
    } else {
        Command::new(bin).args(args).output()
    }
    .map_err(|e| format!("{}: {e}", bin.display()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("{} {}: {}", bin.display(), args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// Starts (or reuses) a cluster under the temporary folder, listening on 127.0.0.1 only.
pub fn start_throwaway() -> Result<(PostgresUrl, PathBuf), String> {
    let bin = pg_bin_dir().ok_or("no PostgreSQL server binaries (initdb) found")?;
    let dir = std::env::temp_dir().join(format!("prefect-db-test-pg-{THROWAWAY_PORT}"));
    let data = dir.join("data");
    let admin = parse(&format!("postgresql://postgres@127.0.0.1:{THROWAWAY_PORT}/postgres"), "the throwaway cluster")?;
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // One process at a time sets the cluster up.
    let lock_path = dir.join("setup.lock");
    let _lock = FileLock::acquire(&lock_path)?;
    if is_root() {
        let _ = Command::new("chown").arg("-R").arg("postgres:postgres").arg(&dir).status();
    }
    if !data.join("PG_VERSION").exists() {
        run_pg(&bin.join("initdb"), &["-D", &data.to_string_lossy(), "-U", "postgres", "--auth=trust", "-E", "UTF8"])?;
    }
    let running = run_pg(&bin.join("pg_ctl"), &["-D", &data.to_string_lossy(), "status"]).is_ok();
    if !running {
        let opts = format!(
            "-p {THROWAWAY_PORT} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            dir.display()
        );
        run_pg(&bin.join("pg_ctl"), &["-D", &data.to_string_lossy(), "-l", &dir.join("log").to_string_lossy(), "-w", "-o", &opts, "start"])?;
    }
    Ok((admin, dir))
}

struct FileLock(PathBuf);

impl FileLock {
    fn acquire(path: &Path) -> Result<FileLock, String> {
        for _ in 0..600 {
            match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(_) => return Ok(FileLock(path.to_owned())),
                Err(_) => {
                    // A lock older than two minutes belongs to a process that died.
                    let stale = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(120))
                        .unwrap_or(false);
                    if stale {
                        let _ = std::fs::remove_file(path);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Err(format!("timed out waiting for {}", path.display()))
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Drops test databases left behind by processes that no longer run.
async fn sweep_stale(admin: &PostgresUrl) {
    let Ok(client) = connect(admin).await else { return };
    let Ok(rows) = client.query("SELECT datname FROM pg_database WHERE datname LIKE 'prefect\\_test\\_%'", &[]).await else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.strip_prefix(PREFIX).and_then(|rest| rest.split('_').next()).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
            }
        }
    }
}

/// Drops its database when dropped.
pub struct DropOnExit {
    admin: PostgresUrl,
    name: String,
}

impl Drop for DropOnExit {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = std::mem::take(&mut self.name);
        // Our own thread and runtime: this may run inside or outside an async context.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                if let Ok(client) = connect(&admin).await {
                    let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// Creates a new database (optionally a copy of `template`) and returns its URL.
pub async fn create_database(template: Option<&str>) -> Result<(PostgresUrl, DropOnExit), TestDbError> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let server = server().await?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let salt = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{PREFIX}{}_{n}_{}", std::process::id(), &salt[..8]);
    let client = connect(&server.admin).await.map_err(TestDbError::Create)?;
    let sql = match template {
        Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
        None => format!("CREATE DATABASE \"{name}\""),
    };
    // Cloning fails while another session is connected to the template; retry briefly.
    let mut last = String::new();
    for _ in 0..50 {
        match client.batch_execute(&sql).await {
            Ok(()) => {
                let url = server.admin.with_database(&name);
                return Ok((url, DropOnExit { admin: server.admin.clone(), name }));
            }
            Err(e) => {
                last = e.as_db_error().map(|d| d.message().to_owned()).unwrap_or_else(|| e.to_string());
                if template.is_none() || !last.contains("being accessed by other users") {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    Err(TestDbError::Create(format!("{sql}: {last}")))
}
