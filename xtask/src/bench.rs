//! `cargo xtask bench`: builds `prefect-db-bench` in release mode and runs every (dialect,
//! workload, implementation, rep) in its own process (prepare → run → drop), so each run starts
//! from fresh data and reports its own peak RSS; prints one JSON line per dialect × workload ×
//! implementation (medians) and a table comparing the layer with the floor and with Prefect
//! 3.9.1's own figures.

use anyhow::{Context as _, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(dead_code)]
pub const USAGE: &str = "bench [--dialect sqlite|postgres|all] [--workload W1,W2,..|copy] [--reps N] [--scale 1,10,100] [--via-pgbouncer] [--observe off|default|metrics]
                      release-build prefect-db-bench and time each workload (default W1..W6,
                      3 reps, both dialects) through the layer and through the driver floor;
                      `copy` (SQLite -> PostgreSQL with 100,000 and 1,000,000 log rows, about a
                      minute, one rep per size) runs only when named; `--scale` times the reads
                      (default W2,W5,W7,W8,W9,W10,W10K,W11) on a dataset of N x 20,000 runs per
                      scale (seeded once per dialect and scale; scale 100 seeds for minutes);
                      `--via-pgbouncer` adds a PostgreSQL row per workload whose layer runs
                      through a PgBouncer in transaction mode (statement cache off) against the
                      same direct floor; `--observe` sets what the timed layer observes: `off`
                      (no statement instrumentation), `default`, or `metrics` (metrics on, into a
                      Prometheus recorder)";

const WORKLOADS: [(&str, &str, &str, f64, f64); 6] = [
    ("W1", "insert_flow_runs", "runs", 3173.4, 1824.1),
    ("W2", "worker_poll", "polls", 3.2, 31.7),
    ("W3", "task_state_transitions", "transitions", 152.4, 143.3),
    ("W4", "log_ingest", "logs", 3333.8, 2537.6),
    ("W5", "read_flow_runs", "reads", 38.7, 44.9),
    ("W6", "upsert_flows", "upserts", 377.5, 309.7),
];

const COPY_ROWS: [usize; 2] = [100_000, 1_000_000];

/// The reads of `--scale`: code and name.
const SCALE_WORKLOADS: [(&str, &str); 8] = [
    ("W2", "worker_poll"),
    ("W5", "read_flow_runs"),
    ("W7", "dashboard_list"),
    ("W8", "dashboard_count"),
    ("W9", "deployment_history"),
    ("W10", "deep_page_offset"),
    ("W10K", "deep_page_keyset"),
    ("W11", "run_logs"),
];

struct Options {
    dialects: Vec<&'static str>,
    workloads: Vec<usize>,
    named: Vec<String>,
    copy: bool,
    reps: usize,
    scales: Vec<u32>,
    via_pgbouncer: bool,
    observe: Option<String>,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        dialects: vec!["sqlite", "postgres"],
        workloads: (0..WORKLOADS.len()).collect(),
        named: Vec::new(),
        copy: false,
        reps: 3,
        scales: Vec::new(),
        via_pgbouncer: false,
        observe: None,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--dialect" => {
                o.dialects = match value()?.as_str() {
                    "sqlite" => vec!["sqlite"],
                    "postgres" | "postgresql" => vec!["postgres"],
                    "all" => vec!["sqlite", "postgres"],
                    other => bail!("bench: unknown dialect `{other}`"),
                }
            }
            "--workload" | "--workloads" => {
                o.workloads.clear();
                for w in value()?.split(',').map(str::trim).filter(|w| !w.is_empty()) {
                    o.named.push(w.to_owned());
                    if SCALE_WORKLOADS.iter().any(|(code, name)| code.eq_ignore_ascii_case(w) || name.eq_ignore_ascii_case(w))
                        && !WORKLOADS.iter().any(|(code, ..)| code.eq_ignore_ascii_case(w))
                    {
                        continue;
                    }
                    if w.eq_ignore_ascii_case("copy") {
                        o.copy = true;
                    } else if let Some(i) =
                        WORKLOADS.iter().position(|(code, name, ..)| code.eq_ignore_ascii_case(w) || name.eq_ignore_ascii_case(w))
                    {
                        o.workloads.push(i);
                    } else {
                        bail!("bench: unknown workload `{w}` (W1..W11, W10K or copy)");
                    }
                }
            }
            "--scale" | "--scales" => {
                o.scales = value()?
                    .split(',')
                    .map(|x| x.trim().parse::<u32>().context("--scale takes whole numbers, e.g. 1,10,100"))
                    .collect::<Result<_>>()?;
                if o.scales.iter().any(|&x| x == 0) {
                    bail!("--scale must be at least 1");
                }
            }
            "--via-pgbouncer" => o.via_pgbouncer = true,
            "--observe" => {
                let mode = value()?;
                if !["off", "default", "metrics"].contains(&mode.as_str()) {
                    bail!("--observe takes off, default or metrics");
                }
                o.observe = Some(mode.clone());
            }
            "--reps" => {
                o.reps = value()?.parse().context("--reps")?;
                if o.reps == 0 {
                    bail!("--reps must be at least 1");
                }
            }
            other => bail!("bench: unknown argument `{other}`\n\nusage: cargo xtask {USAGE}"),
        }
    }
    Ok(o)
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// The release binaries' folder: `$CARGO_TARGET_DIR/release` (relative to the workspace when
/// relative), else `target/release` of the workspace.
fn release_dir(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target = if target.is_absolute() { target } else { root.join(target) };
    target.join("release")
}

fn build(root: &Path) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    // Always both packages: the same selection resolves the same features, so a second run
    // reuses the first one's build (and `copy` needs the `prefect-db` binary).
    cmd.current_dir(root).args(["build", "--release", "-p", "prefect-db-bench", "-p", "prefect-db-cli"]);
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build --release -p prefect-db-bench -p prefect-db-cli failed ({status})");
    }
    Ok(())
}

fn child(bin: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(bin).args(args).output().with_context(|| format!("running {}", bin.display()))?;
    if !out.status.success() {
        bail!("prefect-db-bench {} failed ({}): {}", args.join(" "), out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn json_num(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.6}"),
        _ => "null".to_owned(),
    }
}

struct Row {
    dialect: &'static str,
    workload: usize,
    layer: Summary,
    floor: Summary,
}

struct Summary {
    n: u64,
    seconds: f64,
    rss: Option<f64>,
}

impl Summary {
    fn ops(&self) -> f64 {
        self.n as f64 / self.seconds
    }
}

/// One timed run: prepare a fresh database, run, drop it (also when the run fails).
/// `bouncer`: the layer reaches a PostgreSQL database through this PgBouncer.
fn one_run(
    bin: &Path,
    dir: &Path,
    dialect: &str,
    code: &str,
    imp: &str,
    bouncer: Option<&prefect_db_test::pgbouncer::PgBouncer>,
    observe: Option<&str>,
) -> Result<(u64, f64, Option<f64>)> {
    let fixture = dir.join(format!("{dialect}-{code}-{imp}.json"));
    let fixture_s = fixture.to_string_lossy().into_owned();
    let dir_s = dir.to_string_lossy().into_owned();
    child(bin, &["prepare", "--dialect", dialect, "--workload", code, "--dir", &dir_s, "--fixture", &fixture_s])?;
    let mut run_args = vec!["run".to_owned(), "--fixture".to_owned(), fixture_s.clone(), "--impl".to_owned(), imp.to_owned()];
    if let (Some(b), "layer") = (bouncer, imp) {
        let fx: Value = serde_json::from_str(&std::fs::read_to_string(&fixture)?)?;
        let url = fx["url"].as_str().context("fixture without url")?;
        let prefect_db_interface::config::DatabaseUrl::Postgres(direct) = prefect_db_interface::config::DatabaseUrl::parse(url, "fixture url")? else {
            bail!("--via-pgbouncer needs a PostgreSQL fixture");
        };
        let prefect_db_interface::config::DatabaseUrl::Postgres(pooled) = b.url_for(&direct)? else { bail!("not a PostgreSQL URL") };
        run_args.extend(["--layer-url".to_owned(), pooled.expose().to_owned()]);
    }
    if let (Some(mode), "layer") = (observe, imp) {
        run_args.extend(["--observe".to_owned(), mode.to_owned()]);
    }
    let run_args: Vec<&str> = run_args.iter().map(String::as_str).collect();
    let out = child(bin, &run_args);
    let dropped = child(bin, &["drop", "--fixture", &fixture_s]);
    let out = out?;
    dropped?;
    let v: Value = serde_json::from_str(out.trim()).with_context(|| format!("bad output from run: {out}"))?;
    let n = v["n"].as_u64().context("no n")?;
    let seconds = v["seconds"].as_f64().context("no seconds")?;
    Ok((n, seconds, v["peak_rss_mb"].as_f64()))
}

pub fn run(args: &[String]) -> Result<()> {
    let o = parse(args)?;
    let root = workspace_root();
    build(&root)?;
    let bin = release_dir(&root).join("prefect-db-bench");
    if !bin.exists() {
        bail!("{} was not built", bin.display());
    }
    let scratch = tempfile::Builder::new().prefix("prefect-db-bench-").tempdir().context("temporary folder")?;
    if !o.scales.is_empty() {
        return run_scales(&o, &bin, scratch.path());
    }
    let bouncer = if o.via_pgbouncer {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        Some(runtime.block_on(prefect_db_test::pgbouncer::pgbouncer()).map_err(|e| anyhow::anyhow!("{e}"))?)
    } else {
        None
    };
    let mut targets: Vec<(&'static str, Option<&prefect_db_test::pgbouncer::PgBouncer>)> = o.dialects.iter().map(|&d| (d, None)).collect();
    if let Some(b) = bouncer {
        targets.push(("pgbouncer", Some(b)));
    }
    let mut rows = Vec::new();
    for &(dialect, via) in &targets {
        let seeded = if via.is_some() { "postgres" } else { dialect };
        for &w in &o.workloads {
            let (code, name, ..) = WORKLOADS[w];
            let mut samples: [(Vec<f64>, Vec<f64>, u64); 2] = [(Vec::new(), Vec::new(), 0), (Vec::new(), Vec::new(), 0)];
            for rep in 0..o.reps {
                for (k, imp) in ["layer", "floor"].into_iter().enumerate() {
                    let (n, s, rss) = one_run(&bin, scratch.path(), seeded, code, imp, via, o.observe.as_deref())?;
                    eprintln!("  {dialect:8} {code} {name:24} {imp:5} rep {}: {s:.3} s ({:.1} ops/s)", rep + 1, n as f64 / s);
                    samples[k].0.push(s);
                    samples[k].1.extend(rss);
                    samples[k].2 = n;
                }
            }
            let summary = |k: usize| Summary {
                n: samples[k].2,
                seconds: median(samples[k].0.clone()),
                rss: if samples[k].1.is_empty() { None } else { Some(median(samples[k].1.clone())) },
            };
            let row = Row { dialect, workload: w, layer: summary(0), floor: summary(1) };
            for (imp, s) in [("layer", &row.layer), ("floor", &row.floor)] {
                println!(
                    "{{\"dialect\":\"{dialect}\",\"workload\":\"{name}\",\"impl\":\"{imp}\",\"n\":{},\"seconds\":{},\"ops_per_s\":{},\"peak_rss_mb\":{}}}",
                    s.n,
                    json_num(Some(s.seconds)),
                    json_num(Some(s.ops())),
                    json_num(s.rss)
                );
            }
            rows.push(row);
        }
    }
    let mut copies = Vec::new();
    if o.copy {
        let cli = release_dir(&root).join("prefect-db");
        for n in COPY_ROWS {
            let out = child(
                &bin,
                &["copy", "--rows", &n.to_string(), "--prefect-db", &cli.to_string_lossy(), "--dir", &scratch.path().to_string_lossy()],
            )?;
            let v: Value = serde_json::from_str(out.trim()).with_context(|| format!("bad output from copy: {out}"))?;
            let seconds = v["seconds"].as_f64().context("no seconds")?;
            let rss = v["peak_rss_mb"].as_f64();
            println!(
                "{{\"dialect\":\"sqlite->postgres\",\"workload\":\"copy\",\"impl\":\"prefect-db copy\",\"n\":{n},\"seconds\":{},\"ops_per_s\":{},\"peak_rss_mb\":{}}}",
                json_num(Some(seconds)),
                json_num(Some(n as f64 / seconds)),
                json_num(rss)
            );
            copies.push((n, seconds, rss));
        }
    }
    print_table(&rows, &copies);
    if let Some(mode) = &o.observe {
        println!("observe: the layer ran with --observe {mode}");
    }
    Ok(())
}

fn print_table(rows: &[Row], copies: &[(usize, f64, Option<f64>)]) {
    let mb = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".to_owned());
    if !rows.is_empty() {
        println!();
        println!(
            "{:<8} {:<26} {:>7} {:>12} {:>12} {:>11} {:>9} {:>9} {:>12} {:>10}",
            "dialect", "workload", "n", "layer ops/s", "floor ops/s", "layer/floor", "layer MB", "floor MB", "Prefect ops/s", "x Prefect"
        );
        for r in rows {
            let (code, name, unit, sqlite_ref, pg_ref) = WORKLOADS[r.workload];
            let reference = if r.dialect == "sqlite" { sqlite_ref } else { pg_ref };
            println!(
                "{:<8} {:<26} {:>7} {:>12.1} {:>12.1} {:>10.2}x {:>9} {:>9} {:>12.1} {:>9.1}x",
                r.dialect,
                format!("{code} {name}"),
                format!("{} {}", r.layer.n, &unit[..unit.len().min(1)]),
                r.layer.ops(),
                r.floor.ops(),
                r.layer.seconds / r.floor.seconds,
                mb(r.layer.rss),
                mb(r.floor.rss),
                reference,
                r.layer.ops() / reference
            );
        }
        println!(
            "\nops/s: the workload's operations (runs, polls, transitions, logs, reads, upserts) per second, median of the reps;\n\
             layer/floor: the layer's time over the floor's (the cost of the abstractions; 1.00x = none);\n\
             MB: peak RSS of the process that ran the workload (median); x Prefect: the layer's ops/s over Prefect 3.9.1's.\n\
             pgbouncer: PostgreSQL with the layer through PgBouncer in transaction mode (statement cache off), the floor direct.\n\
             PostgreSQL databases are ANALYZEd after seeding (as autovacuum would leave them, and as Prefect's figures were taken);\n\
             SQLite databases are not (Prefect never analyzes them)."
        );
    }
    if !copies.is_empty() {
        println!("\nprefect-db copy, SQLite -> PostgreSQL (log rows; migrate + copy + verify):");
        println!("{:>10} {:>10} {:>12} {:>12}", "rows", "seconds", "rows/s", "peak MB");
        for (n, s, rss) in copies {
            println!("{n:>10} {s:>10.2} {:>12.0} {:>12}", *n as f64 / s, mb(*rss));
        }
    }
}

struct ScaleRow {
    dialect: &'static str,
    scale: u32,
    workload: usize,
    layer: Summary,
    floor: Summary,
}

/// `--scale`: one dataset per dialect and scale, every selected read timed on it.
fn run_scales(o: &Options, bin: &Path, dir: &Path) -> Result<()> {
    let selected: Vec<usize> = if o.named.is_empty() {
        (0..SCALE_WORKLOADS.len()).collect()
    } else {
        (0..SCALE_WORKLOADS.len())
            .filter(|&i| o.named.iter().any(|w| SCALE_WORKLOADS[i].0.eq_ignore_ascii_case(w) || SCALE_WORKLOADS[i].1.eq_ignore_ascii_case(w)))
            .collect()
    };
    if selected.is_empty() {
        bail!("--scale times W2, W5, W7, W8, W9, W10, W10K and W11; none of them was named");
    }
    let dir_s = dir.to_string_lossy().into_owned();
    let mut rows = Vec::new();
    let mut seeds = Vec::new();
    for &dialect in &o.dialects {
        for &scale in &o.scales {
            let fixture = dir.join(format!("{dialect}-scale-{scale}.json"));
            let fixture_s = fixture.to_string_lossy().into_owned();
            eprintln!("  {dialect:8} scale {scale}: seeding {} runs", scale as usize * 20_000);
            let out = child(bin, &["prepare", "--dialect", dialect, "--scale", &scale.to_string(), "--dir", &dir_s, "--fixture", &fixture_s])?;
            let seeded: Value = serde_json::from_str(out.trim()).with_context(|| format!("bad output from prepare: {out}"))?;
            let seed_s = seeded["seconds"].as_f64().unwrap_or(f64::NAN);
            eprintln!("  {dialect:8} scale {scale}: seeded in {seed_s:.1} s");
            seeds.push((dialect, scale, seed_s));
            let result = (|| -> Result<()> {
                for &w in &selected {
                    let (code, name) = SCALE_WORKLOADS[w];
                    let mut samples: [(Vec<f64>, Vec<f64>, u64); 2] = [(Vec::new(), Vec::new(), 0), (Vec::new(), Vec::new(), 0)];
                    for rep in 0..o.reps {
                        for (k, imp) in ["layer", "floor"].into_iter().enumerate() {
                            let out = child(bin, &["run", "--fixture", &fixture_s, "--impl", imp, "--workload", code])?;
                            let v: Value = serde_json::from_str(out.trim()).with_context(|| format!("bad output from run: {out}"))?;
                            let n = v["n"].as_u64().context("no n")?;
                            let s = v["seconds"].as_f64().context("no seconds")?;
                            eprintln!("  {dialect:8} x{scale:<4} {code:4} {name:20} {imp:5} rep {}: {s:.3} s ({:.1} ops/s)", rep + 1, n as f64 / s);
                            samples[k].0.push(s);
                            samples[k].1.extend(v["peak_rss_mb"].as_f64());
                            samples[k].2 = n;
                        }
                    }
                    let summary = |k: usize| Summary {
                        n: samples[k].2,
                        seconds: median(samples[k].0.clone()),
                        rss: if samples[k].1.is_empty() { None } else { Some(median(samples[k].1.clone())) },
                    };
                    let row = ScaleRow { dialect, scale, workload: w, layer: summary(0), floor: summary(1) };
                    for (imp, s) in [("layer", &row.layer), ("floor", &row.floor)] {
                        println!(
                            "{{\"dialect\":\"{dialect}\",\"scale\":{scale},\"workload\":\"{name}\",\"impl\":\"{imp}\",\"n\":{},\"seconds\":{},\"ops_per_s\":{},\"peak_rss_mb\":{}}}",
                            s.n,
                            json_num(Some(s.seconds)),
                            json_num(Some(s.ops())),
                            json_num(s.rss)
                        );
                    }
                    rows.push(row);
                }
                Ok(())
            })();
            let dropped = child(bin, &["drop", "--fixture", &fixture_s]);
            result?;
            dropped?;
        }
    }
    print_scale_table(&rows, &seeds);
    Ok(())
}

fn print_scale_table(rows: &[ScaleRow], seeds: &[(&str, u32, f64)]) {
    let mb = |v: Option<f64>| v.map(|x| format!("{x:.1}")).unwrap_or_else(|| "-".to_owned());
    println!();
    println!(
        "{:<8} {:>5} {:<24} {:>12} {:>12} {:>11} {:>9} {:>9} {:>10}",
        "dialect", "scale", "workload", "layer ops/s", "floor ops/s", "layer/floor", "layer MB", "floor MB", "vs scale 1"
    );
    for r in rows {
        let (code, name) = SCALE_WORKLOADS[r.workload];
        // Time per operation relative to the smallest scale measured for the same pair.
        let base = rows
            .iter()
            .filter(|b| b.dialect == r.dialect && b.workload == r.workload)
            .min_by_key(|b| b.scale)
            .map(|b| (r.layer.seconds / r.layer.n as f64) / (b.layer.seconds / b.layer.n as f64));
        println!(
            "{:<8} {:>5} {:<24} {:>12.1} {:>12.1} {:>10.2}x {:>9} {:>9} {:>9.2}x",
            r.dialect,
            r.scale,
            format!("{code} {name}"),
            r.layer.ops(),
            r.floor.ops(),
            r.layer.seconds / r.floor.seconds,
            mb(r.layer.rss),
            mb(r.floor.rss),
            base.unwrap_or(f64::NAN)
        );
    }
    println!(
        "\nscale N: N x 20,000 flow runs over the same 30 days (N x 10,000 task runs, N x 40,000 + 1,000 logs);\n\
         vs scale 1: the layer's time per operation over its time at the smallest scale measured;\n\
         PostgreSQL is VACUUM ANALYZEd after seeding (as autovacuum leaves a bulk-loaded table); SQLite is not analyzed."
    );
    println!("\nseeding (untimed in the figures above):");
    for (dialect, scale, s) in seeds {
        println!("  {dialect:8} scale {scale:>4}: {s:.1} s");
    }
}
