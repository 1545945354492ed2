//! `read_configuration_value` and its cache on both dialects.


use crate::common::{BoxError, migrated};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prefect_db_config::{Conn, dispatch};
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_orm::schema::configuration;
use prefect_orm::types::Val;
use prefect_query_components::QueryComponents;
use serde_json::json;
use std::time::Duration;

conformance!(cache_hits_and_clears, cache_is_bounded_and_expires);

/// Changes a row without going through the layer (so without clearing the cache).
async fn change_behind_the_back(
    conn: &mut Conn<'_>,
    key: &str,
    value: serde_json::Value,
) -> Result<(), BoxError> {
    let key = key.to_owned();
    dispatch!(conn, |c| diesel::update(
        configuration::table.filter(configuration::key.eq(key.clone()))
    )
    .set(configuration::value.eq(Val(value.clone())))
    .execute(c)
    .await)?;
    Ok(())
}

async fn cache_hits_and_clears(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let qc = QueryComponents::new();
    assert_eq!(qc.read_configuration_value(conn, "a").await?, None);
    assert_eq!(
        qc.configuration_cache_len(),
        0,
        "a missing row is not cached"
    );
    qc.write_configuration_value(conn, "a", json!({"x": 1}))
        .await?;
    assert_eq!(
        qc.read_configuration_value(conn, "a").await?,
        Some(json!({"x": 1}))
    );
    assert_eq!(qc.configuration_cache_len(), 1);
    change_behind_the_back(conn, "a", json!({"x": 2})).await?;
    assert_eq!(
        qc.read_configuration_value(conn, "a").await?,
        Some(json!({"x": 1})),
        "served from the cache"
    );
    assert_eq!(
        qc.clone().read_configuration_value(conn, "a").await?,
        Some(json!({"x": 1})),
        "clones share it"
    );
    qc.clear_configuration_value_cache_for_key("a");
    assert_eq!(
        qc.read_configuration_value(conn, "a").await?,
        Some(json!({"x": 2}))
    );
    // A write through the layer updates the row (no second row) and clears the key.
    qc.write_configuration_value(conn, "a", json!({"x": 3}))
        .await?;
    assert_eq!(
        qc.read_configuration_value(conn, "a").await?,
        Some(json!({"x": 3}))
    );
    let rows: i64 = dispatch!(conn, |c| configuration::table.count().get_result(c).await)?;
    assert_eq!(rows, 1);
    assert!(qc.delete_configuration_value(conn, "a").await?);
    assert_eq!(qc.read_configuration_value(conn, "a").await?, None);
    Ok(())
}

async fn cache_is_bounded_and_expires(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let writer = QueryComponents::new();
    for key in ["a", "b", "c"] {
        writer
            .write_configuration_value(conn, key, json!(key))
            .await?;
    }
    let small = QueryComponents::with_configuration_cache(2, Duration::from_secs(3600));
    for key in ["a", "b", "c"] {
        assert_eq!(
            small.read_configuration_value(conn, key).await?,
            Some(json!(key))
        );
    }
    assert_eq!(small.configuration_cache_len(), 2, "at most two keys");
    // "a" was the least recently used: evicted, so a change to it shows; "c" stays cached.
    change_behind_the_back(conn, "a", json!("a2")).await?;
    change_behind_the_back(conn, "c", json!("c2")).await?;
    assert_eq!(
        small.read_configuration_value(conn, "c").await?,
        Some(json!("c"))
    );
    assert_eq!(
        small.read_configuration_value(conn, "a").await?,
        Some(json!("a2"))
    );

    let short = QueryComponents::with_configuration_cache(100, Duration::from_millis(200));
    assert_eq!(
        short.read_configuration_value(conn, "b").await?,
        Some(json!("b"))
    );
    change_behind_the_back(conn, "b", json!("b2")).await?;
    assert_eq!(
        short.read_configuration_value(conn, "b").await?,
        Some(json!("b")),
        "still fresh"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        short.read_configuration_value(conn, "b").await?,
        Some(json!("b2")),
        "expired"
    );
    Ok(())
}
