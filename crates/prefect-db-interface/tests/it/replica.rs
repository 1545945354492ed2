//! A read replica (`read_replica_connection_url`) on a real streaming replica started by the
//! test tooling: read-only transactions are served by the standby (its backend answers
//! `pg_is_in_recovery()` with true), write transactions by the primary, and a write followed
//! by a read in one write transaction sees its own write. PostgreSQL only.

use diesel::QueryableByName;
use diesel::sql_types::Bool;
use prefect_db_interface::config::{DatabaseConfig, DatabaseUrl, admin};
use prefect_db_interface::migrate::{self, UpgradeTarget};
use prefect_db_interface::prelude::*;
use prefect_db_test::TestResult;
use prefect_db_test::replica::{eventually, replica_pair};
use std::time::Duration;

#[derive(QueryableByName)]
struct Recovery {
    #[diesel(sql_type = Bool)]
    r: bool,
}

async fn in_recovery(c: &mut Conn<'_>) -> Result<bool, Error> {
    let row: Recovery = prefect_db_interface::config::dispatch!(c, |c| {
        diesel_async::RunQueryDsl::get_result(diesel::sql_query("SELECT pg_is_in_recovery() AS r"), c).await
    })?;
    Ok(row.r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replica_serves_read_only_transactions_postgres() -> TestResult {
    let pair = replica_pair().await?;
    let name = format!("prefect_replica_{}", Uuid::new_v4().simple());
    let mut config = DatabaseConfig::new(DatabaseUrl::Postgres(pair.primary.with_database(&name)));
    admin::create_database(&config).await?;
    migrate::upgrade(&config, UpgradeTarget::Latest).await?;
    config.read_replica_url = Some(DatabaseUrl::Postgres(pair.replica.with_database(&name)));
    let db = database_for(&config)?;
    assert_eq!(db.is_replica_connectable().await, Some(true));

    // The standby replays the new database and its schema (lag is real: wait for it).
    let replayed = eventually(Duration::from_secs(30), || async {
        db.read_only(async |tx| Ok(read::count_flows(tx, &Default::default()).await?)).await.is_ok()
    })
    .await;
    assert!(replayed, "the replica never showed the migrated database");

    // Writes and their own reads on the primary.
    let run = db
        .transaction(TxMode::Write, async |tx| {
            assert!(!in_recovery(tx).await?, "a write transaction runs on the primary");
            let flow = tx.create_flow(NewFlow::new("replicated")).await?.row;
            let run = tx.insert(NewFlowRun::new("seen-at-once", flow.id)).await?;
            let again: FlowRun = tx.get(run.id).await?;
            assert_eq!(again.name, "seen-at-once", "a read after a write in one transaction sees it");
            Ok(run)
        })
        .await?;

    // Reads on the standby, which gets the run once it has replayed the commit.
    assert!(db.read_only(async |tx| in_recovery(tx).await).await?, "a read-only transaction runs on the replica");
    let arrived = eventually(Duration::from_secs(30), || async {
        db.read_only(async |tx| tx.find::<FlowRun>(run.id).await).await.ok().flatten().is_some()
    })
    .await;
    assert!(arrived, "the committed run never reached the replica");

    // A write in a read-only transaction fails (on the replica, and it would on the primary).
    let write = db.read_only(async |tx| tx.insert(NewFlow::new("not-here")).await).await;
    assert!(write.is_err(), "a write in a read-only transaction is refused");
    let without_replica = database_for(&DatabaseConfig { read_replica_url: None, ..config.clone() })?;
    assert!(!without_replica.read_only(async |tx| in_recovery(tx).await).await?, "without a replica, reads run on the primary");
    assert!(without_replica.read_only(async |tx| tx.insert(NewFlow::new("not-here")).await).await.is_err());
    Ok(())
}
