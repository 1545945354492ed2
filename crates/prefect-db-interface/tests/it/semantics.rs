//! The data access with Prefect's meanings (`models.*.create_*` of Prefect 3.9.1), on both
//! dialects. Each expectation is what Prefect's model function does, as its test says.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use prefect_db_interface::config::Dialect;
use prefect_db_interface::migrate::{self, UpgradeTarget};
use prefect_db_interface::prelude::*;
use prefect_db_test::{TestDatabase, TestResult, conformance};
use serde_json::json;

async fn database(dialect: Dialect) -> Result<(TestDatabase, Database), Box<dyn std::error::Error + Send + Sync>> {
    let db = TestDatabase::from_template(dialect, "migrated-latest", |config| async move {
        migrate::upgrade(&config, UpgradeTarget::Latest).await.map(|_| ())
    })
    .await?;
    let interface = database_for(&db.config())?;
    Ok((db, interface))
}

/// `create_flow`: the second call finds the first flow and changes nothing of it.
async fn a_flow_is_created_once_by_name(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    let (first, second) = db
        .transaction(TxMode::Write, async |tx| {
            let mut a = NewFlow::new("etl");
            a.tags = Some(json!(["first"]));
            let first = tx.create_flow(a).await?;
            let mut b = NewFlow::new("etl");
            b.tags = Some(json!(["second"]));
            let second = tx.create_flow(b).await?;
            Ok((first, second))
        })
        .await?;
    assert!(first.inserted && !second.inserted);
    assert_eq!(second.row, first.row, "the existing flow, unchanged (tags not updated)");
    assert_eq!(first.row.tags, json!(["first"]));
    Ok(())
}

/// `create_flow_run`: labels inherited from the flow (or the deployment) plus the ids; an
/// idempotency key returns the run that has it; an empty key is no key.
async fn flow_runs_inherit_labels_and_are_idempotent_by_key(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    db.transaction(TxMode::Write, async |tx| {
        let mut f = NewFlow::new("etl");
        f.labels = Some(json!({"team": "data", "tier": "1"}));
        let flow = tx.create_flow(f).await?.row;
        let mut run = NewFlowRun::new("r1", flow.id);
        run.labels = Some(json!({"tier": "2"}));
        run.idempotency_key = Some("k".into());
        let first = tx.create_flow_run(run).await?;
        assert!(first.inserted);
        assert_eq!(
            first.row.labels,
            Some(json!({"team": "data", "tier": "2", "prefect.flow.id": flow.id.to_string()})),
            "flow labels, then prefect.flow.id, then the run's own"
        );
        let mut again = NewFlowRun::new("r1-again", flow.id);
        again.idempotency_key = Some("k".into());
        let second = tx.create_flow_run(again).await?;
        assert!(!second.inserted);
        assert_eq!(second.row, first.row, "the run with that key, unchanged");

        let mut d = NewDeployment::new("prod", flow.id);
        d.labels = Some(json!({"env": "prod"}));
        let deployment = tx.upsert_deployment(d, vec![]).await?.row;
        let mut run = NewFlowRun::new("r2", flow.id);
        run.deployment_id = Some(deployment.id);
        run.idempotency_key = Some(String::new());
        let r2 = tx.create_flow_run(run).await?;
        assert!(r2.inserted);
        assert_eq!(
            r2.row.labels,
            Some(json!({
                "team": "data", "tier": "1", "env": "prod",
                "prefect.flow.id": flow.id.to_string(), "prefect.deployment.id": deployment.id.to_string()
            })),
            "a deployment's labels (which hold its flow's) are the base"
        );
        let mut run = NewFlowRun::new("r3", flow.id);
        run.idempotency_key = Some(String::new());
        assert!(tx.create_flow_run(run).await.is_err(), "a second empty key is not 'no key': Prefect stores it and the unique index refuses it");
        Ok(())
    })
    .await?;
    Ok(())
}

/// `create_task_run`: found again by flow run, task key and dynamic key; without a flow run, by
/// task key and dynamic key.
async fn task_runs_are_found_by_their_keys(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    db.transaction(TxMode::Write, async |tx| {
        let flow = tx.create_flow(NewFlow::new("etl")).await?.row;
        let run = tx.create_flow_run(NewFlowRun::new("r", flow.id)).await?.row;
        let mut t = NewTaskRun::new("load-1", "load", "0");
        t.flow_run_id = Some(run.id);
        let first = tx.create_task_run(t).await?;
        assert!(first.inserted);
        assert_eq!(
            first.row.labels,
            Some(json!({"prefect.flow.id": flow.id.to_string(), "prefect.flow-run.id": run.id.to_string()})),
            "the flow run's labels (which hold its flow's id) and the flow run's id"
        );
        let mut t = NewTaskRun::new("load-1 again", "load", "0");
        t.flow_run_id = Some(run.id);
        let second = tx.create_task_run(t).await?;
        assert_eq!((second.inserted, second.row.id), (false, first.row.id));
        let mut t = NewTaskRun::new("load-2", "load", "1");
        t.flow_run_id = Some(run.id);
        assert!(tx.create_task_run(t).await?.inserted, "another dynamic key is another task run");

        let background = tx.create_task_run(NewTaskRun::new("bg", "bg", "0")).await?;
        let again = tx.create_task_run(NewTaskRun::new("bg again", "bg", "0")).await?;
        assert!(background.inserted && !again.inserted);
        assert_eq!(again.row.id, background.row.id, "without a flow run, found by task key and dynamic key");
        Ok(())
    })
    .await?;
    Ok(())
}

/// `create_deployment`: upserted by flow and name; the given columns replace the stored ones,
/// `created`, `created_by` and `status` stay; schedules are replaced; auto-scheduled runs that
/// have not started are deleted, others kept.
async fn deployments_are_upserted_by_flow_and_name(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    db.transaction(TxMode::Write, async |tx| {
        let flow = tx.create_flow(NewFlow::new("etl")).await?.row;
        let mut d = NewDeployment::new("prod", flow.id);
        d.description = Some("first".into());
        d.version = Some("1".into());
        d.created_by = Some(json!({"type": "USER"}));
        let hourly = NewDeploymentSchedule::new(json!({"interval": 3600.0}), Uuid::nil());
        let first = tx.upsert_deployment(d, vec![hourly]).await?;
        assert!(first.inserted);
        let d0 = first.row;
        assert_eq!(d0.labels, Some(json!({"prefect.flow.id": flow.id.to_string()})));
        let mut status = DeploymentChangeset::new();
        status.status = Some(DeploymentStatus::Ready);
        tx.update(d0.id, status).await?;

        // Runs of the deployment: a future auto-scheduled one (deleted), a past one, a manual
        // one and one that already ran (kept).
        let future = chrono::Utc::now() + chrono::TimeDelta::hours(1);
        let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
        let mut kept = Vec::new();
        let mut doomed = None;
        for (name, auto, at, runs) in [("future", true, future, 0), ("past", true, past, 0), ("manual", false, future, 0), ("ran", true, future, 1)] {
            let mut r = NewFlowRun::new(name, flow.id);
            r.deployment_id = Some(d0.id);
            r.state_type = Some(StateType::Scheduled);
            r.state_name = Some("Scheduled".into());
            r.auto_scheduled = Some(auto);
            r.next_scheduled_start_time = Some(at);
            r.run_count = Some(runs);
            let id = tx.insert(r).await?.id;
            if name == "future" { doomed = Some(id) } else { kept.push(id) }
        }

        let mut d = NewDeployment::new("prod", flow.id);
        d.description = Some("second".into());
        d.paused = Some(true);
        d.created_by = Some(json!({"type": "AUTOMATION"}));
        let daily = NewDeploymentSchedule::new(json!({"cron": "0 0 * * *"}), Uuid::nil());
        let weekly = NewDeploymentSchedule::new(json!({"cron": "0 0 * * 0"}), Uuid::nil());
        let second = tx.upsert_deployment(d, vec![daily, weekly]).await?;
        assert!(!second.inserted);
        let d1 = second.row;
        assert_eq!((d1.id, d1.created), (d0.id, d0.created), "the same deployment");
        assert_eq!(d1.description.as_deref(), Some("second"));
        assert!(d1.paused);
        assert_eq!(d1.version.as_deref(), Some("1"), "a column the row leaves None keeps its value");
        assert_eq!(d1.created_by, Some(json!({"type": "USER"})), "created_by is never updated");
        assert_eq!(d1.status, DeploymentStatus::Ready, "status is never updated");
        assert!(d1.updated >= d0.updated);

        let schedules: Vec<serde_json::Value> = {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            use prefect_db_interface::orm::types::Val;
            let rows: Vec<Val<serde_json::Value>> = prefect_db_interface::config::dispatch!(tx, |c| schema::deployment_schedule::table
                .filter(schema::deployment_schedule::deployment_id.eq(Val(d0.id)))
                .select(schema::deployment_schedule::schedule)
                .load(c)
                .await)?;
            rows.into_iter().map(|v| v.0).collect()
        };
        let mut crons: Vec<String> = schedules.iter().map(|s| s["cron"].as_str().unwrap_or("-").to_owned()).collect();
        crons.sort();
        assert_eq!(crons, ["0 0 * * *", "0 0 * * 0"], "the schedules were replaced");
        assert!(tx.find::<FlowRun>(doomed.expect("made")).await?.is_none(), "future auto-scheduled run deleted");
        for id in kept {
            assert!(tx.find::<FlowRun>(id).await?.is_some(), "other runs kept");
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// Unique names with Prefect's 409 messages; anonymous block documents get names.
async fn unique_names_conflict_with_prefects_messages(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    db.transaction(TxMode::Write, async |tx| {
        tx.create_variable(NewVariable::new("region")).await?;
        Ok(())
    })
    .await?;
    let err = db.transaction(TxMode::Write, async |tx| tx.create_variable(NewVariable::new("region")).await).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(err.constraint(), Some("uq_variable__name"));
    assert_eq!(err.to_string(), "A variable with the name 'region' already exists.");

    let (block_type, schema) = db
        .transaction(TxMode::Write, async |tx| {
            let block_type = tx.insert(NewBlockType::new("Secret Store", "secret-store")).await?;
            let schema = tx.insert(NewBlockSchema::new("sha256:x", block_type.id)).await?;
            Ok((block_type, schema))
        })
        .await?;
    let doc = db
        .transaction(TxMode::Write, async |tx| {
            let mut anonymous = NewBlockDocument::new("", schema.id, block_type.id);
            anonymous.is_anonymous = Some(true);
            tx.create_block_document(anonymous).await
        })
        .await?;
    assert!(doc.name.starts_with("anonymous-") && Uuid::parse_str(&doc.name["anonymous-".len()..]).is_ok(), "{}", doc.name);
    assert_eq!(doc.block_type_name.as_deref(), Some("Secret Store"), "the type's name is copied");
    let named = |name: &str| NewBlockDocument::new(name, schema.id, block_type.id);
    db.transaction(TxMode::Write, async |tx| tx.create_block_document(named("greeting")).await).await?;
    let err = db.transaction(TxMode::Write, async |tx| tx.create_block_document(named("greeting")).await).await.unwrap_err();
    assert_eq!((err.constraint(), err.to_string().as_str()), (Some("uq_block__type_id_name"), "Block already exists"));

    let pool = db.transaction(TxMode::Write, async |tx| tx.create_work_pool(NewWorkPool::new("pool", "process")).await).await?;
    let err = db.transaction(TxMode::Write, async |tx| tx.create_work_pool(NewWorkPool::new("pool", "docker")).await).await.unwrap_err();
    assert_eq!((err.constraint(), err.to_string().as_str()), (Some("uq_work_pool__name"), "A work pool with this name already exists."));
    let err = db.transaction(TxMode::Write, async |tx| tx.create_work_queue(NewWorkQueue::new("default", pool.id)).await).await.unwrap_err();
    assert_eq!(err.constraint(), Some("uq_work_queue__work_pool_id_name"), "two columns named on SQLite too");
    Ok(())
}

/// `create_work_pool` makes the pool's default queue; `create_work_queue` takes the first free
/// priority; `worker_heartbeat` upserts the worker and readies the pool.
async fn pools_queues_and_heartbeats(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    db.transaction(TxMode::Write, async |tx| {
        let pool = tx.create_work_pool(NewWorkPool::new("k8s", "kubernetes")).await?;
        assert_eq!(pool.status, WorkPoolStatus::NotReady);
        let default: WorkQueue = tx.get(pool.default_queue_id.expect("set")).await?;
        assert_eq!((default.name.as_str(), default.priority, default.work_pool_id), ("default", 1, pool.id));
        assert_eq!(default.description, "The work pool's default queue.");
        let mut paused = NewWorkPool::new("paused", "docker");
        paused.is_paused = Some(true);
        assert_eq!(tx.create_work_pool(paused).await?.status, WorkPoolStatus::Paused);

        let mut third = NewWorkQueue::new("third", pool.id);
        third.priority = Some(3);
        tx.create_work_queue(third).await?;
        // Priorities 1 and 3 are taken: the first gap is 2, then 4.
        assert_eq!(tx.create_work_queue(NewWorkQueue::new("second", pool.id)).await?.priority, 2);
        assert_eq!(tx.create_work_queue(NewWorkQueue::new("fourth", pool.id)).await?.priority, 4);

        let w1 = tx.worker_heartbeat(pool.id, "worker-a", Some(30)).await?;
        assert_eq!((w1.status, w1.heartbeat_interval_seconds), (WorkerStatus::Online, Some(30)));
        let w2 = tx.worker_heartbeat(pool.id, "worker-a", None).await?;
        assert_eq!(w2.id, w1.id, "upserted by pool and name");
        assert!(w2.last_heartbeat_time >= w1.last_heartbeat_time);
        assert_eq!(w2.heartbeat_interval_seconds, Some(30), "kept when not sent");
        let pool: WorkPool = tx.get(pool.id).await?;
        assert_eq!(pool.status, WorkPoolStatus::Ready, "a heartbeat readies a NOT_READY pool");
        assert!(pool.last_transitioned_status_at.is_some());
        Ok(())
    })
    .await?;
    Ok(())
}

/// Saved searches by name, v1 concurrency limits by tag, artifacts' collections by key, logs
/// without NUL characters.
async fn upserts_artifacts_and_logs(dialect: Dialect) -> TestResult {
    let (_db, db) = database(dialect).await?;
    db.transaction(TxMode::Write, async |tx| {
        let mut s = NewSavedSearch::new("mine");
        s.filters = Some(json!([{"a": 1}]));
        let first = tx.upsert_saved_search(s).await?;
        let mut s = NewSavedSearch::new("mine");
        s.filters = Some(json!([{"b": 2}]));
        let second = tx.upsert_saved_search(s).await?;
        assert!(first.inserted && !second.inserted);
        assert_eq!((second.row.id, second.row.filters), (first.row.id, json!([{"b": 2}])));

        let first = tx.upsert_concurrency_limit(NewConcurrencyLimit::new("db", 3)).await?;
        let second = tx.upsert_concurrency_limit(NewConcurrencyLimit::new("db", 5)).await?;
        assert!(first.inserted && !second.inserted);
        assert_eq!((second.row.id, second.row.concurrency_limit_), (first.row.id, 5));

        let mut a1 = NewArtifact::new();
        a1.key = Some("report".into());
        a1.description = Some("v1".into());
        let a1 = tx.create_artifact(a1).await?;
        let mut a2 = NewArtifact::new();
        a2.key = Some("report".into());
        a2.description = Some("v2".into());
        let a2 = tx.create_artifact(a2).await?;
        let keyless = tx.create_artifact(NewArtifact::new()).await?;
        let collections: Vec<ArtifactCollection> = {
            use diesel::prelude::*;
            use diesel_async::RunQueryDsl;
            prefect_db_interface::config::dispatch!(tx, |c| schema::artifact_collection::table
                .select(ArtifactCollection::as_select())
                .load(c)
                .await)?
        };
        assert_eq!(collections.len(), 1, "one collection per key, none for a keyless artifact");
        assert_eq!((collections[0].latest_id, collections[0].description.as_deref()), (a2.id, Some("v2")));
        assert_eq!(collections[0].created, a1.created, "created kept");
        assert!(tx.find::<Artifact>(keyless.id).await?.is_some());

        let log = NewLog::new("my\0logger", 20, "a\0b", chrono::Utc::now());
        let log_id = log.id;
        assert_eq!(tx.create_logs(vec![log]).await?, 1);
        let stored: Log = tx.get(log_id).await?;
        assert_eq!((stored.name.as_str(), stored.message.as_str()), ("mylogger", "ab"), "NUL characters removed");
        Ok(())
    })
    .await?;
    Ok(())
}

/// Each class of the server-facing error, from real failures.
async fn errors_are_classified(dialect: Dialect) -> TestResult {
    let (test_db, db) = database(dialect).await?;
    let missing = Uuid::new_v4();
    let err = db.get::<FlowRun>(missing).await.unwrap_err();
    assert!(matches!(&err, Error::NotFound { table: "flow_run", key } if *key == missing.to_string()), "{err:?}");
    assert_eq!(db.update(missing, FlowChangeset::new()).await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(db.delete::<Flow>(missing).await.unwrap_err().kind(), ErrorKind::NotFound);

    let flow = db.insert(NewFlow::new("etl")).await?;
    let err = db.insert(NewFlow { name: "other".into(), ..NewFlow::from(flow.clone()) }).await.unwrap_err();
    assert_eq!((err.kind(), err.constraint()), (ErrorKind::Conflict, Some("pk_flow")), "{err}");
    let err = db.insert(NewFlow::new("etl")).await.unwrap_err();
    assert_eq!((err.kind(), err.constraint()), (ErrorKind::Conflict, Some("uq_flow__name")), "{err}");
    let err = db.insert(NewFlowRun::new("orphan", Uuid::new_v4())).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "a missing parent is a foreign-key conflict: {err}");
    if dialect == Dialect::Postgres {
        assert_eq!(err.constraint(), Some("fk_flow_run__flow_id__flow"));
    }
    let err = db
        .transaction(TxMode::Write, async |tx| tx.insert_many_on_conflict(vec![NewFlow::new("x")], OnConflict::DoUpdate(&["no_such_column"])).await)
        .await
        .unwrap_err();
    assert!(matches!(&err, Error::InvalidInput { field, .. } if field == "flow.no_such_column"), "{err:?}");
    assert_eq!(db.find::<Flow>(flow.id).await?.as_ref(), Some(&flow), "nothing stored was changed by the failures");

    // Unavailable: a server that does not answer, or a database locked by another writer.
    let err = match dialect {
        Dialect::Postgres => {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut config = test_db.config();
            let pg = test_db.postgres_url().ok_or("not postgres")?;
            let user = pg.user().unwrap_or_else(|| "postgres".to_owned());
            config.url = prefect_db_interface::config::DatabaseUrl::parse(&format!("postgresql://{user}@127.0.0.1:{port}/x"), "test")?;
            config.connection_timeout = std::time::Duration::from_secs(1);
            database_for(&config)?.get::<Flow>(flow.id).await.unwrap_err()
        }
        Dialect::Sqlite => {
            let mut config = test_db.config();
            config.sqlite.busy_timeout_ms = 50;
            let impatient = database_for(&config)?;
            let mut holder = db.connection().await?;
            let mut conn = holder.conn();
            conn.batch_execute("BEGIN IMMEDIATE").await?;
            let err = impatient.insert(NewFlow::new("blocked")).await.unwrap_err();
            conn.batch_execute("ROLLBACK").await?;
            err
        }
    };
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(err.is_retryable());
    Ok(())
}

conformance!(
    errors_are_classified,
    a_flow_is_created_once_by_name,
    flow_runs_inherit_labels_and_are_idempotent_by_key,
    task_runs_are_found_by_their_keys,
    deployments_are_upserted_by_flow_and_name,
    unique_names_conflict_with_prefects_messages,
    pools_queues_and_heartbeats,
    upserts_artifacts_and_logs,
);
