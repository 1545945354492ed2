//! `prefect-db-bench`: one step of `cargo xtask bench` per process, so that each timed run's
//! peak RSS is its own.
//!
//! - `prepare --dialect sqlite|postgres --workload W1..W6 --dir DIR --fixture FILE [--tiny N]`:
//!   a fresh database migrated by the layer and seeded (untimed); writes the fixture.
//! - `prepare --dialect sqlite|postgres --scale N --dir DIR --fixture FILE`: the scale dataset
//!   of `N × 20,000` runs; prints `{"seconds"}` (the seeding time).
//! - `run --fixture FILE --impl layer|floor [--workload W] [--layer-url URL]`: the timed workload (a scale
//!   fixture serves W2, W5 and W7–W11, named by `--workload`); prints
//!   `{"n","seconds","peak_rss_mb"}`.
//! - `explain --fixture FILE --workload W7..W11`: the plan of the read's statement
//!   (PostgreSQL `EXPLAIN (ANALYZE, BUFFERS)`, SQLite `EXPLAIN QUERY PLAN`).
//! - `drop --fixture FILE`: removes the database.
//! - `copy --rows N --prefect-db PATH --dir DIR`: generates an SQLite database of N log rows,
//!   times `prefect-db copy` of it into a fresh PostgreSQL database; prints
//!   `{"rows","seconds","peak_rss_mb"}`.

use anyhow::{Context as _, Result, bail};
use prefect_db_bench::{Fixture, Impl, Sizes, Workload, parse_dialect};
use std::collections::HashMap;
use std::path::PathBuf;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(run()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn flags(args: &[String]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(name) = flag.strip_prefix("--") else { bail!("unexpected argument `{flag}`") };
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        out.insert(name.to_owned(), value.clone());
    }
    Ok(out)
}

fn get<'a>(f: &'a HashMap<String, String>, name: &str) -> Result<&'a str> {
    f.get(name).map(String::as_str).with_context(|| format!("missing --{name}"))
}

async fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else { bail!("usage: prefect-db-bench prepare|run|drop|copy …") };
    let f = flags(rest)?;
    match command.as_str() {
        "prepare" if f.contains_key("scale") => {
            let dialect = parse_dialect(get(&f, "dialect")?)?;
            let scale: u32 = get(&f, "scale")?.parse().context("--scale")?;
            let dir = PathBuf::from(get(&f, "dir")?);
            let started = std::time::Instant::now();
            let fx = prefect_db_bench::prepare_scale(dialect, scale, Sizes::at_scale(scale), &dir).await?;
            fx.save(&PathBuf::from(get(&f, "fixture")?))?;
            println!("{}", serde_json::json!({"seconds": started.elapsed().as_secs_f64()}));
        }
        "prepare" => {
            let dialect = parse_dialect(get(&f, "dialect")?)?;
            let workload = Workload::parse(get(&f, "workload")?).context("unknown workload")?;
            let sizes = match f.get("tiny") {
                Some(n) => Sizes::tiny(n.parse()?),
                None => Sizes::FULL,
            };
            let dir = PathBuf::from(get(&f, "dir")?);
            let fx = prefect_db_bench::prepare(dialect, workload, sizes, &dir).await?;
            fx.save(&PathBuf::from(get(&f, "fixture")?))?;
        }
        "run" => {
            let mut fx = Fixture::load(&PathBuf::from(get(&f, "fixture")?))?;
            if let Some(w) = f.get("workload") {
                fx = fx.for_workload(Workload::parse(w).context("unknown workload")?);
            }
            if let Some(url) = f.get("layer-url") {
                fx.layer_url = Some(url.clone());
            }
            if let Some(mode) = f.get("observe") {
                if mode == "metrics" {
                    // What a server with metrics on has: a real recorder behind the facade.
                    metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
                }
                fx.observe = Some(mode.clone());
            }
            let imp = Impl::parse(get(&f, "impl")?).context("--impl layer|floor")?;
            let m = prefect_db_bench::run(&fx, imp).await?;
            let peak = prefect_db_bench::rss::peak_rss_mb();
            println!("{}", serde_json::json!({"n": m.n, "seconds": m.seconds, "peak_rss_mb": peak}));
        }
        "explain" => {
            let fx = Fixture::load(&PathBuf::from(get(&f, "fixture")?))?;
            let fx = fx.for_workload(Workload::parse(get(&f, "workload")?).context("unknown workload")?);
            println!("{}", prefect_db_bench::floor::explain(&fx).await?.join("\n"));
        }
        "drop" => {
            let fx = Fixture::load(&PathBuf::from(get(&f, "fixture")?))?;
            prefect_db_bench::drop_fixture(&fx).await?;
        }
        "copy" => {
            let rows: usize = get(&f, "rows")?.parse()?;
            let bin = PathBuf::from(get(&f, "prefect-db")?);
            let dir = PathBuf::from(get(&f, "dir")?);
            let r = prefect_db_bench::copy::measure(&bin, &dir, rows).await?;
            println!("{}", serde_json::to_string(&r)?);
        }
        other => bail!("unknown command `{other}`"),
    }
    Ok(())
}
