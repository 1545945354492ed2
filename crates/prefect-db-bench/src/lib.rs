//! Benchmarks of the Prefect database layer: six workloads of a Prefect server (the scheduler's
//! insert path, worker polls, task state transitions, log ingest, flow run reads, flow upserts)
//! run once through the layer's public APIs and once through a *floor* (the same statements sent
//! straight through the drivers, prepared, on one connection, no pool, no models), plus the
//! `prefect-db copy` measurement. `cargo xtask bench` runs each (workload, implementation, rep)
//! in its own process of this crate's binary and compares them.
//!
//! A run has three steps, each a subcommand of the binary: `prepare` (a fresh database migrated by
//! the layer, seeded for the workload, `ANALYZE`d on PostgreSQL; untimed; writes a [`Fixture`]),
//! `run` (the timed workload only, then the process's peak RSS) and `drop` (removes the
//! database). At scale (`prepare --scale N`, see [`scale`]) one seeded database serves every
//! read workload (W2, W5, W7–W11) and each `run` names its workload.

pub mod copy;
pub mod floor;
pub mod layer;
pub mod rss;
pub mod scale;
pub mod seed;

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, TimeDelta, Utc};
use prefect_db_config::{DatabaseConfig, DatabaseUrl, Dialect};
use serde::{Deserialize, Serialize};
use std::path::Path;
use uuid::Uuid;

/// One workload of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Workload {
    /// The scheduler's path: insert runs, their SCHEDULED states, point runs at states.
    W1,
    /// Worker polls of a work pool.
    W2,
    /// Task runs going RUNNING then COMPLETED.
    W3,
    /// Log ingest in batches.
    W4,
    /// Reads of the scheduled runs of a work queue.
    W5,
    /// Flow upserts by name.
    W6,
    /// Dashboard list: flow runs of the last 24 h in terminal states, newest first, 200.
    W7,
    /// The count of W7's filter.
    W8,
    /// Flow run history of one deployment over 24 h in 1-hour buckets.
    W9,
    /// A page deep in a deployment's runs (offset 10,000).
    W10,
    /// The same page by keyset (after the cursor of the row before it).
    W10K,
    /// The logs of one flow run, oldest first, 200.
    W11,
}

impl Workload {
    /// The workloads of a plain `cargo xtask bench`, in order.
    pub const ALL: [Workload; 6] = [Workload::W1, Workload::W2, Workload::W3, Workload::W4, Workload::W5, Workload::W6];

    /// The workloads of `cargo xtask bench --scale N` (reads of one seeded dataset), in order.
    pub const SCALE: [Workload; 8] =
        [Workload::W2, Workload::W5, Workload::W7, Workload::W8, Workload::W9, Workload::W10, Workload::W10K, Workload::W11];

    /// Every workload.
    pub const EVERY: [Workload; 12] = [
        Workload::W1,
        Workload::W2,
        Workload::W3,
        Workload::W4,
        Workload::W5,
        Workload::W6,
        Workload::W7,
        Workload::W8,
        Workload::W9,
        Workload::W10,
        Workload::W10K,
        Workload::W11,
    ];

    /// `W1` … `W6`.
    pub fn code(self) -> &'static str {
        match self {
            Workload::W1 => "W1",
            Workload::W2 => "W2",
            Workload::W3 => "W3",
            Workload::W4 => "W4",
            Workload::W5 => "W5",
            Workload::W6 => "W6",
            Workload::W7 => "W7",
            Workload::W8 => "W8",
            Workload::W9 => "W9",
            Workload::W10 => "W10",
            Workload::W10K => "W10K",
            Workload::W11 => "W11",
        }
    }

    /// The workload's name in the output.
    pub fn name(self) -> &'static str {
        match self {
            Workload::W1 => "insert_flow_runs",
            Workload::W2 => "worker_poll",
            Workload::W3 => "task_state_transitions",
            Workload::W4 => "log_ingest",
            Workload::W5 => "read_flow_runs",
            Workload::W6 => "upsert_flows",
            Workload::W7 => "dashboard_list",
            Workload::W8 => "dashboard_count",
            Workload::W9 => "deployment_history",
            Workload::W10 => "deep_page_offset",
            Workload::W10K => "deep_page_keyset",
            Workload::W11 => "run_logs",
        }
    }

    /// What one operation is.
    pub fn unit(self) -> &'static str {
        match self {
            Workload::W1 => "runs",
            Workload::W2 => "polls",
            Workload::W3 => "transitions",
            Workload::W4 => "logs",
            Workload::W5 => "reads",
            Workload::W6 => "upserts",
            Workload::W7 | Workload::W10 | Workload::W10K | Workload::W11 => "pages",
            Workload::W8 => "counts",
            Workload::W9 => "histories",
        }
    }

    /// `W1` or `insert_flow_runs` (any case).
    pub fn parse(s: &str) -> Option<Workload> {
        Workload::EVERY.into_iter().find(|w| w.code().eq_ignore_ascii_case(s) || w.name().eq_ignore_ascii_case(s))
    }

    /// Prefect 3.9.1's own figure (ops/s) for this workload at the plain bench's size (none for
    /// the scale workloads).
    pub fn reference(self, dialect: Dialect) -> Option<f64> {
        let (sqlite, postgres) = match self {
            Workload::W1 => (3173.4, 1824.1),
            Workload::W2 => (3.2, 31.7),
            Workload::W3 => (152.4, 143.3),
            Workload::W4 => (3333.8, 2537.6),
            Workload::W5 => (38.7, 44.9),
            Workload::W6 => (377.5, 309.7),
            _ => return None,
        };
        Some(match dialect {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        })
    }
}

/// Which side of the comparison runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Impl {
    /// The layer's public APIs.
    Layer,
    /// The same statements straight through the driver.
    Floor,
}

impl Impl {
    /// `layer` or `floor`.
    pub fn name(self) -> &'static str {
        match self {
            Impl::Layer => "layer",
            Impl::Floor => "floor",
        }
    }

    /// Parses `layer` or `floor`.
    pub fn parse(s: &str) -> Option<Impl> {
        match s {
            "layer" => Some(Impl::Layer),
            "floor" => Some(Impl::Floor),
            _ => None,
        }
    }
}

/// The sizes of the workloads (fixed by the issue; smaller in the smoke tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizes {
    /// W1: runs inserted.
    pub w1_runs: usize,
    /// W1: runs per transaction.
    pub w1_batch: usize,
    /// W2/W5: scheduled runs seeded.
    pub w2_runs: usize,
    /// W2: polls.
    pub w2_polls: usize,
    /// W2: `limit` of each poll.
    pub w2_limit: i64,
    /// W3: task runs (two transitions each).
    pub w3_tasks: usize,
    /// W4: log rows.
    pub w4_logs: usize,
    /// W4: rows per batch.
    pub w4_batch: usize,
    /// W5: reads.
    pub w5_reads: usize,
    /// W5: `limit` of each read.
    pub w5_limit: i64,
    /// W6: upserts (half of existing flows).
    pub w6_upserts: usize,
    /// Scale: flow runs seeded (20,000 per unit of scale).
    pub scale_runs: usize,
    /// W7–W11: reads per run.
    pub read_ops: usize,
    /// W10: the page's offset.
    pub w10_offset: i64,
}

impl Sizes {
    /// The sizes.
    pub const FULL: Sizes = Sizes {
        w1_runs: 5_000,
        w1_batch: 500,
        w2_runs: 20_000,
        w2_polls: 200,
        w2_limit: 50,
        w3_tasks: 2_000,
        w4_logs: 50_000,
        w4_batch: 500,
        w5_reads: 300,
        w5_limit: 100,
        w6_upserts: 2_000,
        scale_runs: scale::RUNS_PER_SCALE,
        read_ops: 100,
        w10_offset: 10_000,
    };

    /// The full sizes with the scale dataset of `scale` units (`scale × 20,000` runs).
    pub fn at_scale(scale: u32) -> Sizes {
        Sizes { scale_runs: scale::RUNS_PER_SCALE * scale as usize, ..Sizes::FULL }
    }

    /// Every count set to about `n` (batches of `n / 2`), for smoke tests.
    pub fn tiny(n: usize) -> Sizes {
        let n = n.max(2);
        Sizes {
            w1_runs: n,
            w1_batch: n / 2,
            w2_runs: n,
            w2_polls: n,
            w2_limit: 5,
            w3_tasks: n,
            w4_logs: n,
            w4_batch: n / 2,
            w5_reads: n,
            w5_limit: 5,
            w6_upserts: n,
            scale_runs: 40 * n,
            read_ops: n,
            w10_offset: 5 * n as i64,
        }
    }

    /// The number of operations a run of `w` performs.
    pub fn ops(&self, w: Workload) -> usize {
        match w {
            Workload::W1 => self.w1_runs,
            Workload::W2 => self.w2_polls,
            Workload::W3 => 2 * self.w3_tasks,
            Workload::W4 => self.w4_logs,
            Workload::W5 => self.w5_reads,
            Workload::W6 => self.w6_upserts,
            Workload::W7 | Workload::W8 | Workload::W9 | Workload::W10 | Workload::W10K | Workload::W11 => self.read_ops,
        }
    }
}

/// A prepared (migrated, seeded) database for one run of one workload, and the ids the workload
/// needs. Written by `prepare` as JSON, read by `run` and `drop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fixture {
    /// `sqlite` or `postgres`.
    pub dialect: String,
    /// The workload it was seeded for.
    pub workload: Workload,
    /// The sizes it was seeded with.
    pub sizes: Sizes,
    /// The database URL (password included: the bench's own throwaway database).
    pub url: String,
    /// PostgreSQL: the maintenance URL and the database name, to drop it.
    pub pg_admin: Option<(String, String)>,
    /// W1/W2/W3/W5/W6: the flow.
    pub flow_id: Option<Uuid>,
    /// W1: the deployment.
    pub deployment_id: Option<Uuid>,
    /// W2/W5: the work pool.
    pub work_pool_id: Option<Uuid>,
    /// W2/W5: the queues, by priority.
    pub queue_ids: Vec<Uuid>,
    /// W3: the flow run; W4: the flow run id the logs name.
    pub flow_run_id: Option<Uuid>,
    /// W3: the task runs.
    pub task_run_ids: Vec<Uuid>,
    /// Scale: the units of scale of the dataset (`None`: seeded for one workload).
    #[serde(default)]
    pub scale: Option<u32>,
    /// Scale: the seed's `now` (microseconds since the epoch), which the requests are relative to.
    #[serde(default)]
    pub now_us: Option<i64>,
    /// Scale: the deployments (the first is the busy one).
    #[serde(default)]
    pub deployment_ids: Vec<Uuid>,
    /// The URL the layer reaches the database by, when not `url`: through PgBouncer in
    /// transaction mode (`run --layer-url`), with the statement cache disabled.
    #[serde(default)]
    pub layer_url: Option<String>,
    /// What the layer observes while timed (`run --observe`): `off` (no statement
    /// instrumentation: no slow-statement log, no metrics), `default` (the defaults: the
    /// slow-statement log), `metrics` (`server.metrics_enabled`, into a Prometheus recorder).
    #[serde(default)]
    pub observe: Option<String>,
}

impl Fixture {
    /// A database not seeded yet: no ids recorded.
    pub fn unseeded(
        dialect: Dialect,
        workload: Workload,
        sizes: Sizes,
        url: String,
        pg_admin: Option<(String, String)>,
    ) -> Fixture {
        Fixture {
            dialect: dialect.name().to_owned(),
            workload,
            sizes,
            url,
            pg_admin,
            flow_id: None,
            deployment_id: None,
            work_pool_id: None,
            queue_ids: Vec::new(),
            flow_run_id: None,
            task_run_ids: Vec::new(),
            scale: None,
            now_us: None,
            deployment_ids: Vec::new(),
            layer_url: None,
            observe: None,
        }
    }

    /// The dialect.
    pub fn dialect(&self) -> Result<Dialect> {
        parse_dialect(&self.dialect)
    }

    /// The layer's configuration for this database (Prefect's defaults).
    pub fn config(&self) -> Result<DatabaseConfig> {
        Ok(DatabaseConfig::new(DatabaseUrl::parse(&self.url, "fixture url")?))
    }

    /// The configuration the timed layer runs with: [`Fixture::config`], or through
    /// `layer_url` (a transaction-mode pooler) with the statement cache disabled.
    pub fn layer_config(&self) -> Result<DatabaseConfig> {
        let mut config = match &self.layer_url {
            None => self.config()?,
            Some(url) => {
                let mut config = DatabaseConfig::new(DatabaseUrl::parse(url, "layer url")?);
                config.statement_cache_size = Some(0);
                config
            }
        };
        match self.observe.as_deref() {
            None | Some("default") => {}
            Some("off") => config.slow_statement_threshold = None,
            Some("metrics") => config.metrics = true,
            Some(other) => bail!("--observe takes off, default or metrics, not {other:?}"),
        }
        Ok(config)
    }

    /// The SQLite file, for SQLite fixtures.
    pub fn sqlite_path(&self) -> Result<std::path::PathBuf> {
        match self.config()?.url {
            DatabaseUrl::Sqlite(prefect_db_config::SqliteTarget::File(p)) => Ok(p),
            _ => bail!("not an SQLite file database: {}", self.dialect),
        }
    }

    /// Reads a fixture file.
    pub fn load(path: &Path) -> Result<Fixture> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    /// Writes it as JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::write(path, serde_json::to_string(self)?).with_context(|| format!("writing {}", path.display()))
    }

    fn need<T: Copy>(v: Option<T>, what: &str) -> Result<T> {
        v.with_context(|| format!("the fixture has no {what}"))
    }

    /// The flow id.
    pub fn flow(&self) -> Result<Uuid> {
        Self::need(self.flow_id, "flow")
    }

    /// Scale: the seed's `now`.
    pub fn now(&self) -> Result<DateTime<Utc>> {
        let us = Self::need(self.now_us, "seed time (not a scale fixture)")?;
        DateTime::from_timestamp_micros(us).context("seed time out of range")
    }

    /// The same database for another workload (scale fixtures serve every read workload).
    pub fn for_workload(&self, workload: Workload) -> Fixture {
        Fixture { workload, ..self.clone() }
    }
}

/// `sqlite` or `postgres`.
pub fn parse_dialect(s: &str) -> Result<Dialect> {
    match s {
        "sqlite" => Ok(Dialect::Sqlite),
        "postgres" | "postgresql" => Ok(Dialect::Postgres),
        other => bail!("unknown dialect `{other}` (sqlite or postgres)"),
    }
}

/// How many operations a scale read performs: its `read_ops`, or fewer once it has run for
/// [`OpBudget::TIME_BOX`] with at least [`OpBudget::MIN_OPS`] done (a read that takes a second at
/// scale 100 is measured in seconds, not minutes). The measurement counts what was done.
#[derive(Debug)]
pub struct OpBudget {
    started: std::time::Instant,
    max: usize,
    done: usize,
}

impl OpBudget {
    /// The time after which a run stops early.
    pub const TIME_BOX: std::time::Duration = std::time::Duration::from_secs(3);
    /// The operations a run performs at least.
    pub const MIN_OPS: usize = 10;

    /// A budget of `max` operations, from now.
    pub fn new(max: usize) -> OpBudget {
        OpBudget { started: std::time::Instant::now(), max, done: 0 }
    }

    /// Whether to perform another operation (counting it).
    pub fn next(&mut self) -> bool {
        let go = self.done < self.max && (self.done < Self::MIN_OPS || self.started.elapsed() < Self::TIME_BOX);
        if go {
            self.done += 1;
        }
        go
    }

    /// The measurement of the operations done.
    pub fn measurement(&self) -> Measurement {
        Measurement { n: self.done, seconds: self.started.elapsed().as_secs_f64() }
    }
}

/// The result of a timed run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// Operations performed.
    pub n: usize,
    /// Wall-clock seconds of the timed part.
    pub seconds: f64,
}

/// Creates a fresh database of `dialect` (an SQLite file in `dir`, or a new PostgreSQL database
/// on the server the test tooling finds), migrates it with the layer and seeds it for `workload`.
pub async fn prepare(dialect: Dialect, workload: Workload, sizes: Sizes, dir: &Path) -> Result<Fixture> {
    let (url, pg_admin) = create_database(dialect, dir).await?;
    let mut fx = Fixture::unseeded(dialect, workload, sizes, url, pg_admin);
    let result = async {
        prefect_db_interface::migrate::upgrade(&fx.config()?, prefect_db_interface::migrate::UpgradeTarget::Latest).await?;
        seed::seed(&mut fx).await?;
        // PostgreSQL plans from statistics: measure it as autovacuum would leave a database (and
        // as Prefect's own figures were taken). SQLite is left unanalyzed, as Prefect leaves it.
        if dialect == Dialect::Postgres {
            pg_connect(&fx.url).await?.batch_execute("ANALYZE").await.context("ANALYZE")?;
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    if let Err(e) = result {
        let _ = drop_fixture(&fx).await;
        return Err(e);
    }
    Ok(fx)
}

/// Creates a fresh database of `dialect`, migrates it and seeds the scale dataset of
/// `sizes.scale_runs` runs ([`scale`]); `scale` is recorded for the report.
pub async fn prepare_scale(dialect: Dialect, scale: u32, sizes: Sizes, dir: &Path) -> Result<Fixture> {
    let (url, pg_admin) = create_database(dialect, dir).await?;
    let mut fx = Fixture::unseeded(dialect, Workload::W7, sizes, url, pg_admin);
    fx.scale = Some(scale);
    let result = async {
        prefect_db_interface::migrate::upgrade(&fx.config()?, prefect_db_interface::migrate::UpgradeTarget::Latest).await?;
        scale::seed(&mut fx).await
    }
    .await;
    if let Err(e) = result {
        let _ = drop_fixture(&fx).await;
        return Err(e);
    }
    Ok(fx)
}

/// Runs the timed workload of `fx` with `imp`.
pub async fn run(fx: &Fixture, imp: Impl) -> Result<Measurement> {
    match imp {
        Impl::Layer => layer::run(fx).await,
        Impl::Floor => floor::run(fx).await,
    }
}

/// Removes the fixture's database (PostgreSQL: `DROP DATABASE … WITH (FORCE)`; SQLite: the file
/// and its WAL files).
pub async fn drop_fixture(fx: &Fixture) -> Result<()> {
    match &fx.pg_admin {
        Some((admin, name)) => drop_pg_database(admin, name).await,
        None => {
            let path = fx.sqlite_path()?;
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
            Ok(())
        }
    }
}

/// Creates an empty database: an SQLite file path in `dir`, or `prefect_bench_<uuid>` on the
/// PostgreSQL server of the test tooling. Returns the URL and, on PostgreSQL, the maintenance
/// URL and database name.
pub async fn create_database(dialect: Dialect, dir: &Path) -> Result<(String, Option<(String, String)>)> {
    match dialect {
        Dialect::Sqlite => {
            let path = std::path::absolute(dir.join(format!("bench-{}.db", Uuid::new_v4().simple())))?;
            Ok((format!("sqlite+aiosqlite:///{}", path.display()), None))
        }
        Dialect::Postgres => {
            let server = prefect_db_test::postgres::server().await?;
            let name = format!("prefect_bench_{}", Uuid::new_v4().simple());
            let client = pg_connect(server.admin.expose()).await?;
            client.batch_execute(&format!("CREATE DATABASE \"{name}\"")).await.context("CREATE DATABASE")?;
            let url = server.admin.with_database(&name).expose().to_owned();
            Ok((url, Some((server.admin.expose().to_owned(), name))))
        }
    }
}

async fn drop_pg_database(admin: &str, name: &str) -> Result<()> {
    let client = pg_connect(admin).await?;
    client.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await.context("DROP DATABASE")?;
    Ok(())
}

/// One plain tokio-postgres connection (no TLS: the bench server is local).
pub async fn pg_connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.context("connecting to PostgreSQL")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// The data both implementations write, generated the same way for both.
pub mod plan {
    use super::*;

    /// `now` truncated to microseconds (what both dialects store).
    pub fn now() -> DateTime<Utc> {
        prefect_orm::types::now()
    }

    /// Now, but at least a microsecond after `start` (a state's end never equals its start:
    /// `(task_run_id, timestamp)` is unique).
    pub fn after(start: DateTime<Utc>) -> DateTime<Utc> {
        now().max(start + TimeDelta::microseconds(1))
    }

    /// W1: the scheduled time of run `i` (one a minute from a fixed origin).
    pub fn w1_time(i: usize) -> DateTime<Utc> {
        origin() + TimeDelta::minutes(i as i64)
    }

    /// W1: the idempotency key of run `i` (Prefect's scheduler: `scheduled {deployment} {time}`).
    pub fn w1_key(deployment: Uuid, i: usize) -> String {
        format!("scheduled {deployment} {}", w1_time(i).format("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
    }

    /// W2: the scheduled time of seeded run `i`: spread over the past day.
    pub fn w2_time(now: DateTime<Utc>, i: usize) -> DateTime<Utc> {
        now - TimeDelta::days(1) + TimeDelta::seconds(((i * 7919) % 86_000) as i64) + TimeDelta::microseconds(i as i64)
    }

    /// W6: the name of upsert `i`: even ones exist (seeded), odd ones are new.
    pub fn w6_name(i: usize) -> String {
        if i % 2 == 0 { format!("flow-{}", i / 2) } else { format!("new-flow-{}", i / 2) }
    }

    /// W4: the message of log `i`.
    pub fn w4_message(i: usize) -> String {
        format!("Finished in state Completed() (log {i})")
    }

    fn origin() -> DateTime<Utc> {
        DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default() // 2026-01-01 00:00:00 UTC
    }
}

/// Formats a timestamp as Prefect stores it in SQLite.
pub fn sqlite_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Formats an interval as Prefect stores it in SQLite (the epoch plus the duration).
pub fn sqlite_interval(d: TimeDelta) -> String {
    sqlite_time(&(DateTime::<Utc>::UNIX_EPOCH + d))
}
