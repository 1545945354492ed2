//! `schema.rs` against live databases migrated by our migrations, on both dialects: every table
//! and column of the database is declared, with a portable type and nullability that match.
//! (`cargo xtask codegen --check` keeps `schema.rs` equal to what the migrations generate; this
//! keeps it equal to what the migrations *create*.) Fix drift with `cargo xtask codegen`.

use prefect_db_config::{Conn, DbPool, Dialect, PooledConnection};
use prefect_db_test::{TestDatabase, TestResult, conformance};
use prefect_orm::migrations::{PgMigrator, UpgradeTarget, upgrade_sqlite};
use prefect_orm::schema::COLUMNS;
use prefect_orm::schema_check;
use std::collections::{BTreeMap, BTreeSet};

/// The database types a portable SQL type may have, per dialect (from the spec's type table).
fn accepted(dialect: Dialect, sql: &str) -> &'static [&'static str] {
    match (dialect, sql) {
        (Dialect::Postgres, "PUuid") => &["uuid"],
        (Dialect::Postgres, "PTimestamp") => &["timestamp with time zone"],
        (Dialect::Postgres, "PInterval") => &["interval"],
        (Dialect::Postgres, "PJsonb") => &["jsonb"],
        (Dialect::Postgres, "PJson") => &["json"],
        (Dialect::Postgres, "Text") => &["character varying", "text"],
        (Dialect::Postgres, "Integer") => &["integer"],
        (Dialect::Postgres, "SmallInt") => &["smallint"],
        (Dialect::Postgres, "Double") => &["double precision"],
        (Dialect::Postgres, "Bool") => &["boolean"],
        (Dialect::Postgres, "StateTypeType") => &["state_type"],
        (Dialect::Postgres, "DeploymentStatusType") => &["deployment_status"],
        (Dialect::Postgres, "WorkPoolStatusType") => &["work_pool_status"],
        (Dialect::Postgres, "WorkQueueStatusType") => &["work_queue_status"],
        (Dialect::Postgres, "WorkerStatusType") => &["worker_status"],
        (Dialect::Sqlite, "PUuid") => &["CHAR(36)"],
        (Dialect::Sqlite, "PTimestamp" | "PInterval") => &["DATETIME"],
        (Dialect::Sqlite, "PJsonb" | "PJson") => &["JSON"],
        (Dialect::Sqlite, "Text") => &["VARCHAR", "TEXT"],
        (Dialect::Sqlite, "Integer") => &["INTEGER"],
        (Dialect::Sqlite, "SmallInt") => &["SMALLINT"],
        (Dialect::Sqlite, "Double") => &["FLOAT"],
        (Dialect::Sqlite, "Bool") => &["BOOLEAN"],
        (Dialect::Sqlite, "StateTypeType" | "DeploymentStatusType" | "WorkPoolStatusType" | "WorkQueueStatusType") => {
            &["VARCHAR(9)"]
        }
        (Dialect::Sqlite, "WorkerStatusType") => &["VARCHAR(7)"],
        _ => &[],
    }
}

async fn migrated_canonical(dialect: Dialect) -> Result<serde_json::Value, Box<dyn std::error::Error + Send + Sync>> {
    let db = TestDatabase::empty(dialect).await?;
    let pool = DbPool::build(&db.config())?;
    match pool.get().await? {
        PooledConnection::Postgres(obj, _) => {
            let mut migrator = PgMigrator::new(obj);
            migrator.upgrade(UpgradeTarget::Latest).await?;
            let mut obj = migrator.into_inner().ok_or("the migrator kept the connection")?;
            Ok(schema_check::canonical_postgres(&mut obj).await?)
        }
        PooledConnection::Sqlite(mut obj) => {
            let mut conn = Conn::Sqlite(&mut obj);
            let Conn::Sqlite(c) = &mut conn else { return Err("not sqlite".into()) };
            Ok(c.spawn_blocking(|inner| {
                Ok(upgrade_sqlite(inner, &UpgradeTarget::Latest).map_err(|e| e.to_string()).and_then(|_| {
                    schema_check::canonical_sqlite(inner).map_err(|e| e.to_string())
                }))
            })
            .await??)
        }
    }
}

async fn schema_rs_matches_the_migrated_database(dialect: Dialect) -> TestResult {
    let live = migrated_canonical(dialect).await?;
    let tables = live["tables"].as_object().ok_or("no tables in the dump")?;
    let mut declared: BTreeMap<&str, BTreeMap<&str, (&str, bool)>> = BTreeMap::new();
    for (table, column, sql, nullable) in COLUMNS {
        declared.entry(table).or_default().insert(column, (sql, *nullable));
    }
    let mut drift = Vec::new();
    let live_tables: BTreeSet<&str> = tables.keys().map(String::as_str).collect();
    let declared_tables: BTreeSet<&str> = declared.keys().copied().collect();
    for t in live_tables.symmetric_difference(&declared_tables) {
        drift.push(format!("table {t}: in {} only", if live_tables.contains(t) { "the database" } else { "schema.rs" }));
    }
    for (table, columns) in &declared {
        let Some(live_cols) = tables.get(*table).and_then(|t| t["columns"].as_object()) else { continue };
        for (name, spec) in live_cols {
            match columns.get(name.as_str()) {
                None => drift.push(format!("{table}.{name}: in the database, not in schema.rs")),
                Some((sql, nullable)) => {
                    let db_type = spec["type"].as_str().unwrap_or_default();
                    if !accepted(dialect, sql).contains(&db_type) {
                        drift.push(format!("{table}.{name}: schema.rs {sql}, database {db_type}"));
                    }
                    let db_nullable = !spec["notnull"].as_bool().unwrap_or(false);
                    if db_nullable != *nullable {
                        drift.push(format!("{table}.{name}: schema.rs nullable={nullable}, database nullable={db_nullable}"));
                    }
                }
            }
        }
        for name in columns.keys() {
            if !live_cols.contains_key(*name) {
                drift.push(format!("{table}.{name}: in schema.rs, not in the database"));
            }
        }
    }
    assert!(drift.is_empty(), "schema.rs drifted from the migrated {dialect} database (run `cargo xtask codegen`):\n{}", drift.join("\n"));
    assert_eq!(declared.len(), 36, "every Prefect 3.9.1 table is declared");
    Ok(())
}

conformance!(schema_rs_matches_the_migrated_database);
