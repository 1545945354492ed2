//! The interface: one instance per configuration, scoped overrides, migrations on request only.

use prefect_db_config::{DatabaseConfig, DatabaseUrl, Dialect};
use prefect_db_interface::{Database, database_for, provide_database_interface, with_database_override};
use prefect_db_test::{TestDatabase, TestResult, conformance};
use std::time::Duration;

async fn one_instance_per_configuration(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let config = db.config();
    // Many tasks at once ask for the same configuration: all get the same instance.
    let mut handles = Vec::new();
    for _ in 0..16 {
        let config = config.clone();
        handles.push(tokio::spawn(async move { database_for(&config) }));
    }
    let first = database_for(&config)?;
    for h in handles {
        assert!(Database::same_instance(&first, &h.await??));
    }
    let mut other = config.clone();
    other.echo = !other.echo;
    assert!(!Database::same_instance(&first, &database_for(&other)?), "different settings, different instance");
    assert_eq!(first.dialect(), dialect);
    Ok(())
}

async fn building_never_migrates(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let interface = database_for(&db.config())?;
    let status = interface.migration_status().await?;
    assert!(status.applied.is_empty() && !status.pending.is_empty(), "nothing applied by building or asking");
    let mut off = db.config();
    off.migrate_on_start = false;
    assert!(database_for(&off)?.migrate_on_start().await?.is_none(), "the setting is honoured");
    let report = interface.migrate_on_start().await?.ok_or("migrate_on_start is on by default")?;
    assert_eq!(report.applied.len(), 1);
    assert!(interface.migration_status().await?.pending.is_empty());
    let dropped = interface.drop_db().await?;
    assert!(dropped.len() >= 36, "drop_db dropped {} tables", dropped.len());
    Ok(())
}

async fn override_applies_inside_the_scope_only(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let config = db.config();
    let inside = with_database_override(config.clone(), async { provide_database_interface() }).await?;
    assert_eq!(inside.config(), &config);
    // Another task does not see the override.
    let outside = with_database_override(config.clone(), async {
        tokio::spawn(async { provide_database_interface().map(|d| d.config().clone()) }).await
    })
    .await??;
    assert_ne!(outside, config, "an override does not leak into other tasks");
    // A panic inside the scope ends the override too.
    let panicked = tokio::spawn(with_database_override(config.clone(), async {
        let _ = provide_database_interface();
        panic!("boom");
    }))
    .await;
    assert!(panicked.is_err());
    assert_ne!(provide_database_interface()?.config(), &config);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn connectable_is_false_within_the_timeout_when_nothing_listens() -> TestResult {
    let mut config = DatabaseConfig::new(DatabaseUrl::parse("postgresql://postgres@127.0.0.1:9/prefect", "test")?);
    config.connection_timeout = Duration::from_millis(500);
    let interface = database_for(&config)?;
    assert!(!interface.is_db_connectable().await);
    Ok(())
}

conformance!(one_instance_per_configuration, building_never_migrates, override_applies_inside_the_scope_only);
