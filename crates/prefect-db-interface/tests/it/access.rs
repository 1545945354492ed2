//! The typed data access of every table, on both dialects: each of the 36 tables gets a row whose
//! every column holds a value other than its default (timestamps with microseconds, intervals,
//! nested and non-ASCII JSON, enums, booleans flipped), and the row goes through
//!
//! 1. insert (all columns written) → the returned row and a read by id equal the row given;
//! 2. delete → the row is gone;
//! 3. insert of a minimal row (`New…::new` with other required values, every optional column
//!    left to its default) with the same id, then an update with the changeset of the full row
//!    (`update_no_return`, and again from the minimal row with `update`) → a read (and the row
//!    `update` returns) equals the full row again, so every column is written by both updates.
//!
//! Parents are filled before children (the three foreign-key cycles are closed by updates), and
//! at the end every table is emptied with `delete_many` in reverse order. Expected values are
//! the rows the test wrote: what goes in must come out, column for column.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use prefect_db_interface::config::Dialect;
use prefect_db_interface::migrate::{self, UpgradeTarget};
use prefect_db_interface::prelude::*;
use prefect_db_test::{TestDatabase, TestResult, conformance};
use serde_json::json;

/// A distinct timestamp with microseconds.
fn t(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_772_600_767 + seconds, 123_456_000).expect("in range")
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x1000_0000_0000_4000_8000_0000_0000_0000 + n)
}

/// JSON with nesting, non-ASCII text, numbers and a null, distinct per `tag`.
fn doc(tag: &str) -> serde_json::Value {
    json!({"tag": tag, "nested": {"list": [1, 2.5, "ünï 流れ", null], "flag": true}, "quote": "it's \"quoted\""})
}

/// Round trip of one row (see the module docs); `minimal` has the row's id.
async fn roundtrip<R>(tx: &mut Conn<'_>, sample: R, minimal: R::New) -> Result<(), Error>
where
    R: Record + Clone + PartialEq + std::fmt::Debug,
    R::New: From<R> + PartialEq + Clone + std::fmt::Debug,
    R::Changeset: From<R>,
{
    let table = R::TABLE;
    let id = sample.id();
    let fail = |what: String| Error::invalid(table, None, what);
    let stored = tx.insert(R::New::from(sample.clone())).await?;
    if stored != sample {
        return Err(fail(format!("insert returned\n{stored:?}\nfor\n{sample:?}")));
    }
    let read: R = tx.get(id).await?;
    if read != sample {
        return Err(fail(format!("read back\n{read:?}\nfor\n{sample:?}")));
    }
    tx.delete::<R>(id).await?;
    if tx.find::<R>(id).await?.is_some() {
        return Err(fail("still there after delete".to_owned()));
    }
    let bare = tx.insert(minimal.clone()).await?;
    if bare == sample || R::New::from(bare.clone()) == R::New::from(sample.clone()) {
        return Err(fail("the minimal row equals the full one: the update would prove nothing".to_owned()));
    }
    tx.update_no_return(id, R::Changeset::from(sample.clone())).await?;
    let read: R = tx.get(id).await?;
    if read != sample {
        return Err(fail(format!("read after update_no_return\n{read:?}\nfor\n{sample:?}")));
    }
    tx.delete::<R>(id).await?;
    tx.insert(minimal).await?;
    let updated = tx.update(id, R::Changeset::from(sample.clone())).await?;
    if updated != sample {
        return Err(fail(format!("update returned\n{updated:?}\nfor\n{sample:?}")));
    }
    let read: R = tx.get(id).await?;
    if read != sample {
        return Err(fail(format!("read after update\n{read:?}\nfor\n{sample:?}")));
    }
    Ok(())
}

fn table_of<R: Record>(_: &R) -> &'static str {
    R::TABLE
}

/// The ids of the rows of each table, for the final deletes.
#[derive(Default)]
struct Written(Vec<(&'static str, Uuid)>);

macro_rules! rt {
    ($tx:expr, $written:expr, $sample:expr, $minimal:expr) => {{
        let sample = $sample;
        let minimal = $minimal;
        $written.0.push((table_of(&sample), Record::id(&sample)));
        roundtrip($tx, sample.clone(), minimal).await?;
        sample
    }};
}

async fn every_table_round_trips(tx: &mut Conn<'_>) -> Result<Written, Error> {
    let mut w = Written::default();
    let flow = rt!(tx, w, Flow { id: id(1), created: t(1), updated: t(2), name: "flow-ünï".into(), tags: json!(["a", "b"]), labels: Some(json!({"team": "data"})) },
        NewFlow { id: id(1), created: t(1), ..NewFlow::new("minimal") });
    let block_type = rt!(tx, w, BlockType { id: id(2), created: t(3), updated: t(4), name: "Warehöuse".into(), logo_url: Some("https://x/logo.png".into()), documentation_url: Some("https://x/docs".into()), description: Some("a <b>".into()), code_example: Some("x = 1".into()), is_protected: true, slug: "warehouse".into() },
        NewBlockType { id: id(2), created: t(3), ..NewBlockType::new("minimal", "minimal-slug") });
    let block_schema = rt!(tx, w, BlockSchema { id: id(3), created: t(5), updated: t(6), fields: doc("fields"), checksum: "sha256:abc".into(), block_type_id: block_type.id, capabilities: json!(["read", "write"]), version: "2.0".into() },
        NewBlockSchema { id: id(3), created: t(5), ..NewBlockSchema::new("sha256:min", block_type.id) });
    let schema2 = rt!(tx, w, BlockSchema { id: id(4), created: t(7), updated: t(8), fields: doc("fields2"), checksum: "sha256:def".into(), block_type_id: block_type.id, capabilities: json!([]), version: "1.0".into() },
        NewBlockSchema { id: id(4), created: t(7), ..NewBlockSchema::new("sha256:min2", block_type.id) });
    rt!(tx, w, BlockSchemaReference { id: id(5), created: t(9), updated: t(10), name: "inner".into(), parent_block_schema_id: block_schema.id, reference_block_schema_id: schema2.id },
        NewBlockSchemaReference { id: id(5), created: t(9), ..NewBlockSchemaReference::new("minimal", schema2.id, block_schema.id) });
    let document = rt!(tx, w, BlockDocument { id: id(6), created: t(11), updated: t(12), name: "greeting".into(), data: json!("gAAAAABencrypted"), block_schema_id: block_schema.id, block_type_id: block_type.id, is_anonymous: true, block_type_name: Some("Warehöuse".into()) },
        NewBlockDocument { id: id(6), created: t(11), ..NewBlockDocument::new("minimal", schema2.id, block_type.id) });
    let document2 = rt!(tx, w, BlockDocument { id: id(7), created: t(13), updated: t(14), name: "other".into(), data: doc("data"), block_schema_id: block_schema.id, block_type_id: block_type.id, is_anonymous: true, block_type_name: Some("W".into()) },
        NewBlockDocument { id: id(7), created: t(13), ..NewBlockDocument::new("minimal2", schema2.id, block_type.id) });
    rt!(tx, w, BlockDocumentReference { id: id(8), created: t(15), updated: t(16), name: "ref".into(), parent_block_document_id: document.id, reference_block_document_id: document2.id },
        NewBlockDocumentReference { id: id(8), created: t(15), ..NewBlockDocumentReference::new("minimal", document2.id, document.id) });
    rt!(tx, w, ConcurrencyLimit { id: id(9), created: t(17), updated: t(18), tag: "db".into(), concurrency_limit_: 7, active_slots: json!([id(100).to_string()]) },
        NewConcurrencyLimit { id: id(9), created: t(17), ..NewConcurrencyLimit::new("minimal", 1) });
    let limit_v2 = rt!(tx, w, ConcurrencyLimitV2 { id: id(10), created: t(19), updated: t(20), active: false, name: "global-ünï".into(), limit: 9, active_slots: 3, denied_slots: 2, slot_decay_per_second: 0.25, avg_slot_occupancy_seconds: 7.5 },
        NewConcurrencyLimitV2 { id: id(10), created: t(19), ..NewConcurrencyLimitV2::new("minimal", 1) });
    rt!(tx, w, Configuration { id: id(11), created: t(21), updated: t(22), key: "ENCRYPTION_KEY".into(), value: doc("cfg") },
        NewConfiguration { id: id(11), created: t(21), ..NewConfiguration::new("minimal", json!(1)) });
    rt!(tx, w, CsrfToken { token: "tok".into(), client: "client-1".into(), expiration: t(23), id: id(12), created: t(24), updated: t(25) },
        NewCsrfToken { id: id(12), created: t(24), ..NewCsrfToken::new("minimal-tok", "minimal-client", t(26)) });
    rt!(tx, w, SavedSearch { id: id(13), created: t(27), updated: t(28), name: "mine".into(), filters: json!([doc("f")]) },
        NewSavedSearch { id: id(13), created: t(27), ..NewSavedSearch::new("minimal") });
    rt!(tx, w, Variable { id: id(14), created: t(29), updated: t(30), name: "region".into(), tags: json!(["x"]), value: Some(json!({"v": 1.5})) },
        NewVariable { id: id(14), created: t(29), ..NewVariable::new("minimal") });

    // work_pool ↔ work_queue: the first pool is written without its default queue, then closed.
    let pool_sample = |pid: u128, name: &str, queue: Option<Uuid>| WorkPool {
        id: id(pid), created: t(31), updated: t(32), name: name.into(), description: Some("pool".into()), type_: "kubernetes".into(),
        base_job_template: doc("template"), is_paused: true, concurrency_limit: Some(4), default_queue_id: queue, status: WorkPoolStatus::Ready,
        last_transitioned_status_at: Some(t(33)), last_status_event_id: Some(id(101)), storage_configuration: doc("storage"),
    };
    let pool = rt!(tx, w, pool_sample(15, "pool-a", None), NewWorkPool { id: id(15), created: t(31), ..NewWorkPool::new("minimal", "process") });
    let queue = rt!(tx, w, WorkQueue { id: id(16), created: t(34), updated: t(35), name: "high".into(), filter: Some(doc("filter")), description: "fast".into(), is_paused: true, concurrency_limit: Some(5), last_polled: Some(t(36)), priority: 3, work_pool_id: pool.id, status: WorkQueueStatus::Ready },
        NewWorkQueue { id: id(16), created: t(34), ..NewWorkQueue::new("minimal", pool.id) });
    let mut closing = WorkPoolChangeset::new();
    closing.default_queue_id = Some(Some(queue.id));
    closing.updated = pool.updated;
    let closed = tx.update(pool.id, closing).await?;
    assert_eq!(closed, WorkPool { default_queue_id: Some(queue.id), ..pool.clone() });
    rt!(tx, w, pool_sample(17, "pool-b", Some(queue.id)), NewWorkPool { id: id(17), created: t(31), ..NewWorkPool::new("minimal-b", "process") });
    rt!(tx, w, Worker { id: id(18), created: t(37), updated: t(38), name: "worker-1".into(), last_heartbeat_time: t(39), work_pool_id: pool.id, heartbeat_interval_seconds: Some(30), status: WorkerStatus::Online },
        NewWorker { id: id(18), created: t(37), ..NewWorker::new("minimal", pool.id) });
    rt!(tx, w, Agent { id: id(19), created: t(40), updated: t(41), name: "agent".into(), last_activity_time: t(42), work_queue_id: queue.id },
        NewAgent { id: id(19), created: t(40), ..NewAgent::new("minimal", queue.id) });

    let deployment = rt!(tx, w, Deployment {
            id: id(20), created: t(43), updated: t(44), name: "prod".into(), tags: json!(["t"]), parameters: doc("params"), flow_id: flow.id,
            infrastructure_document_id: Some(document.id), description: Some("déploiement".into()), parameter_openapi_schema: Some(doc("schema")),
            storage_document_id: Some(document2.id), version: Some("1.2".into()), infra_overrides: doc("infra"), path: Some("/opt".into()),
            entrypoint: Some("flows.py:main".into()), work_queue_name: Some("high".into()), created_by: Some(doc("by")), updated_by: Some(doc("upd")),
            work_queue_id: Some(queue.id), pull_steps: Some(json!([doc("step")])), enforce_parameter_schema: false, last_polled: Some(t(45)), paused: true,
            status: DeploymentStatus::Ready, concurrency_limit: Some(3), concurrency_options: Some(json!({"collision_strategy": "CANCEL_NEW"})),
            concurrency_limit_id: Some(limit_v2.id), labels: Some(json!({"l": "v"})), version_id: Some(id(102)),
        },
        NewDeployment { id: id(20), created: t(43), ..NewDeployment::new("minimal", flow.id) });
    rt!(tx, w, DeploymentSchedule { id: id(21), created: t(46), updated: t(47), schedule: json!({"interval": 3601.5, "anchor_date": "2026-01-01T00:00:00Z"}), active: false, deployment_id: deployment.id, max_scheduled_runs: Some(10), parameters: doc("sp"), slug: Some("hourly".into()) },
        NewDeploymentSchedule { id: id(21), created: t(46), ..NewDeploymentSchedule::new(json!({"cron": "* * * * *"}), deployment.id) });
    rt!(tx, w, DeploymentVersion {
            deployment_id: deployment.id, branch: Some("main".into()), version_info: doc("vi"), description: Some("v".into()), tags: json!(["x"]),
            labels: Some(json!({"a": "b"})), entrypoint: Some("e.py:f".into()), pull_steps: Some(json!([1])), parameters: doc("vp"),
            parameter_openapi_schema: Some(doc("vs")), enforce_parameter_schema: false, work_queue_id: Some(queue.id), work_queue_name: Some("high".into()),
            infra_overrides: doc("vo"), id: id(22), created: t(48), updated: t(49),
        },
        NewDeploymentVersion { id: id(22), created: t(48), ..NewDeploymentVersion::new(deployment.id) });

    // flow_run ↔ flow_run_state and flow_run ↔ task_run: run A is written without its state and
    // parent task run, run B (a subflow run) with both once they exist.
    let run_sample = |rid: u128, name: &str, state: Option<Uuid>, parent: Option<Uuid>| FlowRun {
        id: id(rid), created: t(50), updated: t(51), name: name.into(), state_type: Some(StateType::Cancelling), run_count: 4,
        expected_start_time: Some(t(52)), next_scheduled_start_time: Some(t(53)), start_time: Some(t(54)), end_time: Some(t(55)),
        total_run_time: TimeDelta::microseconds(1_234_567_891), flow_version: Some("abc".into()), parameters: doc("p"),
        idempotency_key: Some(format!("key-{rid}")), context: doc("ctx"), empirical_policy: doc("policy"), tags: json!(["ünï"]), auto_scheduled: true,
        flow_id: flow.id, deployment_id: Some(deployment.id), parent_task_run_id: parent, state_id: state, state_name: Some("Cancelling".into()),
        infrastructure_document_id: Some(document.id), work_queue_name: Some("high".into()), state_timestamp: Some(t(56)), created_by: Some(doc("cb")),
        infrastructure_pid: Some("pid:1".into()), work_queue_id: Some(queue.id), job_variables: Some(doc("jv")), deployment_version: Some("1.2".into()),
        labels: Some(json!({"k": "v"})),
    };
    let run = rt!(tx, w, run_sample(23, "run-a", None, None), NewFlowRun { id: id(23), created: t(50), ..NewFlowRun::new("minimal", flow.id) });
    let artifact = rt!(tx, w, Artifact { id: id(24), created: t(57), updated: t(58), key: Some("report".into()), type_: Some("markdown".into()), data: Some(json!("# hi")), metadata_: Some(doc("meta")), task_run_id: Some(id(103)), flow_run_id: Some(run.id), description: Some("d".into()) },
        NewArtifact { id: id(24), created: t(57), ..NewArtifact::new() });
    let state = rt!(tx, w, FlowRunState { id: id(25), created: t(59), updated: t(60), type_: StateType::Completed, timestamp: t(61), name: "Completed".into(), message: Some("done".into()), state_details: doc("sd"), data: Some(doc("data")), flow_run_id: run.id, result_artifact_id: Some(artifact.id) },
        NewFlowRunState { id: id(25), created: t(59), ..NewFlowRunState::new(StateType::Pending, "Pending", run.id) });
    let task = rt!(tx, w, TaskRun {
            id: id(26), created: t(62), updated: t(63), name: "load-1".into(), state_type: Some(StateType::Completed), run_count: 2,
            expected_start_time: Some(t(64)), next_scheduled_start_time: Some(t(65)), start_time: Some(t(66)), end_time: Some(t(67)),
            total_run_time: TimeDelta::microseconds(-1), task_key: "load".into(), dynamic_key: "1".into(), cache_key: Some("ck".into()),
            cache_expiration: Some(t(68)), task_version: Some("v1".into()), empirical_policy: doc("tp"), task_inputs: json!({"x": [{"input_type": "parameter", "name": "x"}]}),
            tags: json!(["io"]), flow_run_id: Some(run.id), state_id: Some(id(104)), state_name: Some("Cached".into()), state_timestamp: Some(t(69)),
            flow_run_run_count: 3, labels: Some(json!({})),
        },
        NewTaskRun { id: id(26), created: t(62), ..NewTaskRun::new("minimal", "minimal-key", "0") });
    let task_state = rt!(tx, w, TaskRunState { id: id(27), created: t(70), updated: t(71), type_: StateType::Failed, timestamp: t(72), name: "Failed".into(), message: Some("boom".into()), state_details: doc("tsd"), data: Some(doc("tdata")), task_run_id: task.id, result_artifact_id: Some(artifact.id) },
        NewTaskRunState { id: id(27), created: t(70), ..NewTaskRunState::new(StateType::Pending, "Pending", task.id) });
    rt!(tx, w, TaskRunStateCache { id: id(28), created: t(73), updated: t(74), cache_key: "ck".into(), cache_expiration: Some(t(75)), task_run_state_id: task_state.id },
        NewTaskRunStateCache { id: id(28), created: t(73), ..NewTaskRunStateCache::new("minimal", task_state.id) });
    rt!(tx, w, run_sample(29, "run-b", Some(state.id), Some(task.id)), NewFlowRun { id: id(29), created: t(50), ..NewFlowRun::new("minimal-b", flow.id) });
    rt!(tx, w, FlowRunInput { id: id(30), created: t(76), updated: t(77), key: "approval".into(), value: "{\"ok\": true}".into(), flow_run_id: run.id, sender: Some("ui".into()) },
        NewFlowRunInput { id: id(30), created: t(76), ..NewFlowRunInput::new("minimal", "x", run.id) });
    rt!(tx, w, Log { id: id(31), created: t(78), updated: t(79), name: "prefect.flow_runs".into(), level: 40, flow_run_id: Some(run.id), task_run_id: Some(task.id), message: "ünïcode ✓ 日本".into(), timestamp: t(80) },
        NewLog { id: id(31), created: t(78), ..NewLog::new("minimal", 10, "m", t(81)) });
    rt!(tx, w, ArtifactCollection { id: id(32), created: t(82), updated: t(83), key: "report".into(), latest_id: artifact.id, task_run_id: Some(task.id), flow_run_id: Some(run.id), type_: Some("markdown".into()), data: Some(json!("# hi")), description: Some("d".into()), metadata_: Some(doc("cm")) },
        NewArtifactCollection { id: id(32), created: t(82), ..NewArtifactCollection::new("minimal", artifact.id) });

    let event = rt!(tx, w, Event { occurred: t(84), event: "prefect.flow-run.Completed".into(), resource_id: "prefect.flow-run.x".into(), resource: doc("res"), related_resource_ids: json!(["a"]), related: json!([doc("rel")]), payload: doc("pay"), received: t(85), recorded: t(86), follows: Some(id(105)), id: id(33), created: t(87), updated: t(88) },
        NewEvent { id: id(33), created: t(87), ..NewEvent::new(t(1), "minimal", "r", json!({}), json!({}), t(2), t(3)) });
    rt!(tx, w, EventResource { occurred: t(89), resource_id: "prefect.flow.x".into(), resource_role: "flow".into(), resource: doc("er"), event_id: event.id, id: id(34), created: t(90), updated: t(91) },
        NewEventResource { id: id(34), created: t(90), ..NewEventResource::new(t(1), "minimal", "role", json!({}), event.id) });
    let automation = rt!(tx, w, Automation { name: "auto".into(), description: "does".into(), enabled: false, trigger: doc("trigger"), actions: json!([doc("a")]), actions_on_trigger: json!([1]), actions_on_resolve: json!([2]), id: id(35), created: t(92), updated: t(93), tags: json!(["x"]) },
        NewAutomation { id: id(35), created: t(92), ..NewAutomation::new("minimal", json!({}), json!([])) });
    rt!(tx, w, AutomationBucket { automation_id: automation.id, trigger_id: id(106), bucketing_key: json!(["k"]), last_event: Some(doc("le")), start: t(94), end: t(95), count: 6, last_operation: Some("fire".into()), triggered_at: Some(t(96)), id: id(36), created: t(97), updated: t(98) },
        NewAutomationBucket { id: id(36), created: t(97), ..NewAutomationBucket::new(automation.id, id(107), t(1), t(2), 0) });
    rt!(tx, w, AutomationRelatedResource { automation_id: automation.id, resource_id: Some("prefect.deployment.x".into()), automation_owned_by_resource: true, id: id(37), created: t(99), updated: t(100) },
        NewAutomationRelatedResource { id: id(37), created: t(99), ..NewAutomationRelatedResource::new(automation.id) });
    rt!(tx, w, AutomationEventFollower { leader_event_id: id(108), follower_event_id: id(109), received: t(101), follower: doc("fol"), id: id(38), created: t(102), updated: t(103), scope: "scope-x".into() },
        NewAutomationEventFollower { id: id(38), created: t(102), ..NewAutomationEventFollower::new(id(110), id(111), t(1), json!({})) });
    rt!(tx, w, AutomationHeldEvent { automation_id: automation.id, trigger_id: id(112), bucketing_key: json!(["b"]), event_id: id(113), occurred: t(104), id: id(39), created: t(105), updated: t(106) },
        NewAutomationHeldEvent { id: id(39), created: t(105), ..NewAutomationHeldEvent::new(automation.id, id(114), id(115), t(1)) });
    rt!(tx, w, CompositeTriggerChildFiring { automation_id: automation.id, parent_trigger_id: id(116), child_trigger_id: id(117), child_firing_id: id(118), child_fired_at: Some(t(107)), child_firing: doc("cf"), id: id(40), created: t(108), updated: t(109) },
        NewCompositeTriggerChildFiring { id: id(40), created: t(108), ..NewCompositeTriggerChildFiring::new(automation.id, id(119), id(120), id(121), json!({})) });
    Ok(w)
}

async fn every_table_round_trips_through_the_data_access(dialect: Dialect) -> TestResult {
    let db = TestDatabase::from_template(dialect, "migrated-latest", |config| async move {
        migrate::upgrade(&config, UpgradeTarget::Latest).await.map(|_| ())
    })
    .await?;
    let interface = database_for(&db.config())?;
    let written = interface.transaction(TxMode::Write, async |tx| every_table_round_trips(tx).await).await?;
    let tables: std::collections::BTreeSet<&str> = written.0.iter().map(|(t, _)| *t).collect();
    let all: std::collections::BTreeSet<&str> = prefect_db_interface::tables::PrefectTable::ALL.iter().map(|t| t.name()).collect();
    assert_eq!(tables, all, "every table of the schema has a round trip");

    // Empty every table with delete_many, children first; each delete finds its rows.
    interface
        .transaction(TxMode::Write, async |tx| {
            // The first pool's default queue is written after it: open that cycle first.
            let mut opening = WorkPoolChangeset::new();
            opening.default_queue_id = Some(None);
            tx.update(id(15), opening).await?;
            for (table, row) in written.0.iter().rev() {
                let n = delete_many_in(tx, table, &[*row]).await?;
                assert_eq!(n, 1, "{table} {row}");
            }
            Ok(())
        })
        .await?;
    let left: Option<Flow> = interface.find(id(1)).await?;
    assert!(left.is_none());
    Ok(())
}

/// `delete_many` on the table of this name (the type chosen per table).
async fn delete_many_in(tx: &mut Conn<'_>, table: &str, ids: &[Uuid]) -> Result<usize, Error> {
    macro_rules! by_name {
        ($($t:ident => $Row:ident, $New:ident, $Changeset:ident;)+) => {
            match table {
                $(stringify!($t) => tx.delete_many::<$Row>(ids).await,)+
                other => Err(Error::invalid("table", Some(other.to_owned()), "unknown")),
            }
        };
    }
    prefect_db_interface::orm::for_each_table!(by_name)
}

conformance!(every_table_round_trips_through_the_data_access);
