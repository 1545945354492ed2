//! Behind a real PgBouncer in transaction pooling mode (`default_pool_size` 2, statement cache
//! disabled, as a Prefect user configures it): concurrent traffic and concurrent migrators.
//! Clients far outnumber the server connections, so consecutive transactions of one client run
//! on different server connections and each server connection serves many clients: anything
//! the layer left on a server connection past its transaction (a prepared statement, a session
//! setting, a session lock) would surface here as an error.
//!
//! PostgreSQL only (PgBouncer pools PostgreSQL connections). The test tooling starts PgBouncer;
//! when it cannot, these tests fail with the reason.

use prefect_db_interface::migrate::{self, UpgradeTarget};
use prefect_db_interface::prelude::*;
use prefect_db_test::{Dialect, TestDatabase, TestResult};
use std::collections::HashMap;

/// Clients sharing PgBouncer's 2 server connections.
const CLIENTS: usize = 32;
/// Write transactions in all (each client: a share of them, and a read after every third).
const WRITES: usize = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgbouncer_load_postgres() -> TestResult {
    let db = TestDatabase::from_template(Dialect::Postgres, "migrated", |c| async move {
        migrate::upgrade(&c, UpgradeTarget::Latest).await.map(drop)
    })
    .await?;
    let mut config = db.via_pgbouncer().await?;
    // One client connection per task: PgBouncer multiplexes the 32 onto 2 server connections.
    config.pool_size = CLIENTS;
    config.max_overflow = 0;
    let pooled = database_for(&config)?;

    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let db = pooled.clone();
        let writes = WRITES / CLIENTS + usize::from(client < WRITES % CLIENTS);
        tasks.push(tokio::spawn(async move { client_work(&db, client, writes).await }));
    }
    let mut committed: Vec<(Uuid, String)> = Vec::new();
    let mut errors = Vec::new();
    for task in tasks {
        match task.await? {
            Ok(runs) => committed.extend(runs),
            Err(e) => errors.push(e.to_string()),
        }
    }
    assert!(errors.is_empty(), "{} of {CLIENTS} clients failed: {errors:?}", errors.len());
    assert_eq!(committed.len(), WRITES, "every write transaction committed");

    // Every committed row is there, as committed, read directly from the server.
    let direct = database_for(&db.direct_config())?;
    let ids: Vec<Uuid> = committed.iter().map(|(id, _)| *id).collect();
    let stored: Vec<FlowRun> = direct.transaction(TxMode::Read, async |tx| tx.get_many(&ids).await).await?;
    assert_eq!(stored.len(), WRITES, "every committed run is stored");
    let names: HashMap<Uuid, String> = stored.into_iter().map(|r| (r.id, r.name)).collect();
    for (id, name) in &committed {
        assert_eq!(names.get(id), Some(name), "run {id} as its transaction left it");
    }
    // The flows were created by name, concurrently: one row per name.
    let flows: Read<read::FlowSort> = Read::parse(Endpoint::FlowsFilter, &serde_json::json!({"flows": {"name": {"like_": "load-flow-"}}}))?;
    let found = direct.transaction(TxMode::Read, async |tx| Ok(read::flows(tx, &flows).await?)).await?;
    assert_eq!(found.len(), 8, "one flow per name");
    Ok(())
}

/// `writes` write transactions (create a flow by name, insert a run, rename it), with a read
/// transaction after every third; returns the committed runs and their final names.
async fn client_work(db: &Database, client: usize, writes: usize) -> Result<Vec<(Uuid, String)>, Error> {
    let mut runs = Vec::with_capacity(writes);
    for i in 0..writes {
        let flow_name = format!("load-flow-{}", (client + i) % 8);
        let (id, name) = db
            .transaction(TxMode::Write, async |tx| {
                let flow = tx.create_flow(NewFlow::new(flow_name)).await?.row;
                let run = tx.insert(NewFlowRun::new(format!("run-{client}-{i}"), flow.id)).await?;
                let mut changes = FlowRunChangeset::new();
                changes.name = Some(format!("run-{client}-{i}-renamed"));
                let run = tx.update(run.id, changes).await?;
                Ok((run.id, run.name))
            })
            .await?;
        if i % 3 == 2 {
            let again: FlowRun = db.transaction(TxMode::Read, async |tx| tx.get(id).await).await?;
            if again.name != name {
                return Err(Error::Internal { message: format!("read {name} back as {}", again.name), source: None });
            }
        }
        runs.push((id, name));
    }
    Ok(runs)
}

/// Four migrators through PgBouncer on one empty database: each migration applied once, and
/// the database at head.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pgbouncer_concurrent_migrators_postgres() -> TestResult {
    let db = TestDatabase::empty(Dialect::Postgres).await?;
    let config = db.via_pgbouncer().await?;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let config = config.clone();
        tasks.push(tokio::spawn(async move { migrate::upgrade(&config, UpgradeTarget::Latest).await }));
    }
    let mut applied: HashMap<String, usize> = HashMap::new();
    for task in tasks {
        for m in task.await??.applied {
            *applied.entry(m.name).or_default() += 1;
        }
    }
    let status = migrate::status(&db.direct_config()).await?;
    assert!(status.pending.is_empty(), "pending after the migrators: {:?}", status.pending);
    assert_eq!(applied.len(), status.applied.len(), "every migration applied by one of them: {applied:?}");
    for (name, times) in &applied {
        assert_eq!(*times, 1, "{name} applied {times} times");
    }
    Ok(())
}
