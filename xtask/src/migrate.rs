//! `cargo xtask migrate [upgrade|status|downgrade] [--url URL] [--revision R] [--steps N]`: the
//! same library functions the `prefect-db` command runs, on the database Prefect's settings name
//! (default: the embedded SQLite file `$PREFECT_HOME/prefect.db`).

use anyhow::{Context, Result, bail};
use prefect_db_config::DatabaseUrl;
use prefect_db_config::settings::DatabaseSettings;
use prefect_db_interface::migrate::{self, DowngradeTarget, UpgradeTarget};

/// Runs the command.
pub fn run(args: &[String]) -> Result<()> {
    let mut action = "upgrade";
    let mut url: Option<String> = None;
    let mut revision: Option<String> = None;
    let mut steps: Option<usize> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "upgrade" | "status" | "downgrade" => action = match arg.as_str() {
                "upgrade" => "upgrade",
                "status" => "status",
                _ => "downgrade",
            },
            "--url" => url = Some(it.next().context("--url needs a value")?.clone()),
            "--revision" | "-r" => revision = Some(it.next().context("--revision needs a value")?.clone()),
            "--steps" => steps = Some(it.next().context("--steps needs a value")?.parse().context("--steps needs a number")?),
            other => bail!("migrate: unknown argument `{other}`"),
        }
    }
    let mut config = DatabaseSettings::load()?.resolve()?;
    if let Some(raw) = url {
        config.url = DatabaseUrl::parse(&raw, "--url")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("database: {}", config.url);
    runtime.block_on(async {
        match action {
            "status" => {
                let status = migrate::status(&config).await?;
                println!("state: {:?}", status.state);
                if let Some(alembic) = &status.alembic_version {
                    println!("alembic_version: {}", alembic.join(", "));
                }
                for m in &status.applied {
                    println!("applied  {}", m.name);
                }
                for m in &status.pending {
                    println!("pending  {}", m.name);
                }
            }
            "downgrade" => {
                let target = match (revision, steps) {
                    (Some(r), None) if r == "base" => DowngradeTarget::Base,
                    (Some(r), None) => DowngradeTarget::To(r),
                    (None, Some(n)) => DowngradeTarget::Steps(n),
                    (None, None) => DowngradeTarget::Steps(1),
                    (Some(_), Some(_)) => bail!("give --revision or --steps, not both"),
                };
                let reverted = migrate::downgrade(&config, target).await?;
                for m in &reverted {
                    println!("reverted {}", m.name);
                }
                println!("{} migration(s) reverted", reverted.len());
            }
            _ => {
                let target = revision.map_or(UpgradeTarget::Latest, UpgradeTarget::To);
                let report = migrate::upgrade(&config, target).await?;
                for m in &report.adopted {
                    println!("adopted  {} (recorded as applied: the database was written by Prefect 3.9.1)", m.name);
                }
                for m in &report.applied {
                    println!("applied  {}", m.name);
                }
                if report.adopted.is_empty() && report.applied.is_empty() {
                    println!("already up to date");
                }
            }
        }
        Ok(())
    })
}
