//! Scoped overrides of the configuration, the query components and the ORM configuration
//! (Prefect's `temporary_database_config`, `temporary_query_components`,
//! `temporary_orm_config`): in effect inside the scope only, layered when nested, restored after
//! a panic (in the same task and in a spawned one), never leaking into other tasks.

use prefect_db_config::Dialect;
use prefect_db_interface::orm::orm_config::{self, UpsertTarget};
use prefect_db_interface::queries::QueryComponents;
use prefect_db_interface::{DatabaseOverride, OrmConfig, migrate, provide_database_interface};
use prefect_db_test::{TestDatabase, TestResult, conformance};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Resolves to `Err` with the panic payload when `F` panics while polled (a minimal
/// `catch_unwind` for futures).
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::thread::Result<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(move || inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(payload) => Poll::Ready(Err(payload)),
        }
    }
}

/// An ORM configuration that differs from both dialects' defaults.
fn custom_orm() -> OrmConfig {
    const ONLY_FLOW: &[UpsertTarget] = &[orm_config::FLOW_UPSERT];
    OrmConfig {
        upsert_targets: ONLY_FLOW,
        migrations_dir: "elsewhere/migrations",
    }
}

/// The query components given to the override are the ones the interface hands out inside the
/// scope (they share its configuration cache); outside, the instance's own are used.
async fn query_components_and_orm_config_are_overridden_in_scope(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let config = db.config();
    migrate::upgrade(&config, migrate::UpgradeTarget::Latest).await?;
    let ours = QueryComponents::with_configuration_cache(10, Duration::from_secs(3600));
    let defaults = OrmConfig::for_dialect(dialect);
    assert_ne!(custom_orm(), defaults);

    let cached_inside = DatabaseOverride::new()
        .config(config.clone())
        .query_components(ours.clone())
        .orm_config(custom_orm())
        .scope(async {
            let interface = provide_database_interface()?;
            assert_eq!(interface.config(), &config);
            assert_eq!(interface.orm(), &custom_orm());
            let mut pooled = interface.connection().await?;
            interface
                .queries()
                .write_configuration_value(&mut pooled.conn(), "k", serde_json::json!({"v": 1}))
                .await?;
            let read = interface
                .queries()
                .read_configuration_value(&mut pooled.conn(), "k")
                .await?;
            assert_eq!(read, Some(serde_json::json!({"v": 1})));
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                interface.queries().configuration_cache_len(),
            )
        })
        .await?;
    assert_eq!(cached_inside, 1);
    assert_eq!(
        ours.configuration_cache_len(),
        1,
        "the interface used our query components (same cache)"
    );

    // Outside the scope: the instance for this configuration, with its own parts.
    let outside = prefect_db_interface::with_database_override(config.clone(), async {
        provide_database_interface()
    })
    .await?;
    assert_eq!(outside.orm(), &defaults);
    assert_eq!(
        outside.queries().configuration_cache_len(),
        0,
        "the instance's own query components"
    );
    assert!(prefect_db_interface::Database::same_instance(
        &outside,
        &prefect_db_interface::database_for(&config)?
    ));
    Ok(())
}

/// Nested scopes layer: the inner one replaces only what it sets, the outer parts stay, and each
/// scope's parts come back when the inner one ends.
async fn nested_overrides_layer_and_restore(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let config = db.config();
    DatabaseOverride::new()
        .config(config.clone())
        .scope(async {
            assert_eq!(
                provide_database_interface()?.orm(),
                &OrmConfig::for_dialect(dialect)
            );
            DatabaseOverride::new()
                .orm_config(custom_orm())
                .scope(async {
                    let inner = provide_database_interface()?;
                    assert_eq!(inner.config(), &config, "the outer configuration is kept");
                    assert_eq!(inner.orm(), &custom_orm());
                    Ok::<_, prefect_db_interface::Error>(())
                })
                .await?;
            let after = provide_database_interface()?;
            assert_eq!(after.config(), &config);
            assert_eq!(
                after.orm(),
                &OrmConfig::for_dialect(dialect),
                "the inner override ended"
            );
            Ok::<_, prefect_db_interface::Error>(())
        })
        .await?;
    assert!(
        DatabaseOverride::current().is_none(),
        "no override outside every scope"
    );
    Ok(())
}

/// A panic inside the scope ends the override: in the same task (caught with `catch_unwind`) and
/// in a spawned task (a `JoinError`); other tasks never see it.
async fn overrides_end_on_panic_and_stay_in_their_task(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let config = db.config();
    DatabaseOverride::new()
        .config(config.clone())
        .scope(async {
            let caught = CatchUnwind(Box::pin(
                DatabaseOverride::new()
                    .orm_config(custom_orm())
                    .scope(async {
                        assert_eq!(
                            provide_database_interface().map(|d| *d.orm()).ok(),
                            Some(custom_orm())
                        );
                        panic!("boom inside the scope");
                    }),
            ))
            .await;
            assert!(caught.is_err(), "the panic was caught");
            let after = provide_database_interface()?;
            assert_eq!(
                after.orm(),
                &OrmConfig::for_dialect(dialect),
                "the panicking scope's ORM override ended"
            );
            assert_eq!(after.config(), &config, "the enclosing override is intact");
            // A spawned task does not inherit the override.
            let other = tokio::spawn(async { DatabaseOverride::current().is_none() }).await?;
            assert!(other, "an override does not leak into other tasks");
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .await?;

    let joined = tokio::spawn(
        DatabaseOverride::new()
            .config(config.clone())
            .query_components(QueryComponents::new())
            .orm_config(custom_orm())
            .scope(async {
                let _ = provide_database_interface();
                panic!("boom in a spawned task");
            }),
    )
    .await;
    assert!(joined.is_err_and(|e| e.is_panic()));
    assert!(DatabaseOverride::current().is_none());
    Ok(())
}

conformance!(
    query_components_and_orm_config_are_overridden_in_scope,
    nested_overrides_layer_and_restore,
    overrides_end_on_panic_and_stay_in_their_task,
);
