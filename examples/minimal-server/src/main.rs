//! Runs the example server on 127.0.0.1:4200 against the database Prefect's settings name.

use anyhow::Context;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let db = prefect_db_interface::provide_database_interface()?;
    // Migrating at start-up is an explicit call that honours the `migrate_on_start` setting.
    db.migrate_on_start().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:4200").await.context("bind 127.0.0.1:4200")?;
    let app = if db.config().metrics {
        minimal_server::app_with_metrics(db, minimal_server::install_prometheus()?)
    } else {
        minimal_server::app(db)
    };
    axum::serve(listener, app).await?;
    Ok(())
}
