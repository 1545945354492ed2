//! Multi-row inserts, upserts and the scheduler's bulk path on both dialects.

use crate::common::{BoxError, flow, t};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prefect_db_config::{Conn, TxMode, dispatch};
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_orm::models::{
    ArtifactCollection, Flow, FlowRun, FlowRunState, NewArtifactCollection, NewFlow, NewFlowRun,
    NewFlowRunState, NewLog,
};
use prefect_orm::schema::{artifact_collection, flow, flow_run, flow_run_state, log};
use prefect_orm::types::StateType;
use prefect_query_components::{OnConflict, QueryComponents, QueryError};
use uuid::Uuid;

conformance!(
    insert_many_returns_inserted_ids_and_skips_conflicts,
    a_failing_batch_inserts_nothing,
    rows_leaving_different_columns_to_defaults,
    scheduler_bulk_path_points_new_runs_at_their_states,
    set_state_id_statement_picks_the_given_state,
    upsert_updates_conflicting_rows_and_inserts_new_ones,
    upsert_refuses_bad_columns_and_rows_hit_twice,
    batches_over_the_statement_limits_keep_order_and_atomicity,
);

async fn flows(conn: &mut Conn<'_>) -> Result<Vec<String>, BoxError> {
    let mut names: Vec<String> = dispatch!(conn, |c| flow::table.select(flow::name).load(c).await)?;
    names.sort();
    Ok(names)
}

async fn runs(conn: &mut Conn<'_>) -> Result<Vec<FlowRun>, BoxError> {
    Ok(dispatch!(conn, |c| flow_run::table
        .select(FlowRun::as_select())
        .order_by(flow_run::name)
        .load(c)
        .await)?)
}

async fn insert_many_returns_inserted_ids_and_skips_conflicts(dialect: Dialect) -> TestResult {
    let (_db, p) = crate::common::migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let qc = QueryComponents::new();
    let (a, b) = (NewFlow::new("a"), NewFlow::new("b"));
    let ids = qc
        .insert(conn, vec![a.clone(), b.clone()], OnConflict::Fail)
        .await?;
    assert_eq!(ids, [a.id, b.id]);
    // "b" conflicts on flow.name (Prefect's flow upsert columns): skipped, not returned.
    let (b2, c) = (NewFlow::new("b"), NewFlow::new("c"));
    let ids = qc
        .insert(conn, vec![b2, c.clone()], OnConflict::DoNothing)
        .await?;
    assert_eq!(ids, [c.id]);
    assert_eq!(flows(conn).await?, ["a", "b", "c"]);
    let stored: Flow = dispatch!(conn, |c| flow::table
        .filter(flow::name.eq("b"))
        .select(Flow::as_select())
        .get_result(c)
        .await)?;
    assert_eq!(stored.id, b.id, "the first row stays");
    assert!(
        qc.insert::<NewFlow>(conn, vec![], OnConflict::Fail)
            .await?
            .is_empty()
    );
    Ok(())
}

async fn a_failing_batch_inserts_nothing(dialect: Dialect) -> TestResult {
    let (_db, p) = crate::common::migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let qc = QueryComponents::new();
    qc.insert(conn, vec![NewFlow::new("a")], OnConflict::Fail)
        .await?;
    let result = qc
        .insert(
            conn,
            vec![NewFlow::new("d"), NewFlow::new("a")],
            OnConflict::Fail,
        )
        .await;
    assert!(matches!(result, Err(QueryError::Db(_))), "{result:?}");
    assert_eq!(flows(conn).await?, ["a"], "d is not inserted either");
    Ok(())
}

async fn rows_leaving_different_columns_to_defaults(dialect: Dialect) -> TestResult {
    let (_db, p) = crate::common::migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let f = flow(conn, "f").await?;
    let plain = NewFlowRun::new("r1", f);
    let mut custom = NewFlowRun::new("r2", f);
    custom.run_count = Some(3);
    custom.tags = Some(serde_json::json!(["x"]));
    custom.next_scheduled_start_time = Some(t(9));
    QueryComponents::new()
        .insert(conn, vec![plain, custom], OnConflict::Fail)
        .await?;
    let rows = runs(conn).await?;
    assert_eq!(
        (rows[0].run_count, &rows[0].tags),
        (0, &serde_json::json!([])),
        "database defaults"
    );
    assert_eq!(
        (rows[1].run_count, &rows[1].tags),
        (3, &serde_json::json!(["x"]))
    );
    assert_eq!(rows[1].next_scheduled_start_time, Some(t(9)));
    Ok(())
}

fn scheduled_run(flow_id: Uuid, name: &str, key: &str) -> NewFlowRun {
    let mut run = NewFlowRun::new(name, flow_id);
    run.idempotency_key = Some(key.to_owned());
    run.state_type = Some(StateType::Scheduled);
    run.state_name = Some("Scheduled".to_owned());
    run.next_scheduled_start_time = Some(t(0));
    run
}

async fn scheduler_bulk_path_points_new_runs_at_their_states(dialect: Dialect) -> TestResult {
    let (_db, p) = crate::common::migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let qc = QueryComponents::new();
    let f = flow(conn, "f").await?;
    // An earlier scheduler pass already made the run with key "k2".
    let earlier = scheduled_run(f, "r0", "k2");
    qc.insert(conn, vec![earlier.clone()], OnConflict::Fail)
        .await?;

    let (r1, r2, r3) = (
        scheduled_run(f, "r1", "k1"),
        scheduled_run(f, "r2", "k2"),
        scheduled_run(f, "r3", "k3"),
    );
    let states: Vec<NewFlowRunState> = [&r1, &r2, &r3]
        .iter()
        .map(|r| NewFlowRunState::new(StateType::Scheduled, "Scheduled", r.id))
        .collect();
    let (s1, s3) = (states[0].id, states[2].id);
    let (r1_id, r3_id) = (r1.id, r3.id);
    let inserted = conn
        .transaction(TxMode::Write, async |tx| {
            QueryComponents::new()
                .set_state_id_on_inserted_flow_runs(tx, vec![r1, r2, r3], states)
                .await
        })
        .await?;
    // r2 conflicts with r0 on (flow_id, idempotency_key): not inserted, its state neither.
    assert_eq!(inserted, [r1_id, r3_id]);
    let rows = runs(conn).await?;
    let by_name = |n: &str| {
        rows.iter()
            .find(|r| r.name == n)
            .map(|r| (r.id, r.state_id))
    };
    assert_eq!(
        by_name("r0"),
        Some((earlier.id, None)),
        "the existing run is untouched"
    );
    assert_eq!(by_name("r1"), Some((r1_id, Some(s1))));
    assert_eq!(by_name("r3"), Some((r3_id, Some(s3))));
    assert_eq!(by_name("r2"), None);
    let n: i64 = dispatch!(conn, |c| flow_run_state::table.count().get_result(c).await)?;
    assert_eq!(n, 2, "only the inserted runs' states");
    Ok(())
}

async fn set_state_id_statement_picks_the_given_state(dialect: Dialect) -> TestResult {
    let (_db, p) = crate::common::migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let qc = QueryComponents::new();
    let f = flow(conn, "f").await?;
    let (a, b) = (NewFlowRun::new("a", f), NewFlowRun::new("b", f));
    let (a_id, b_id) = (a.id, b.id);
    qc.insert(conn, vec![a, b], OnConflict::Fail).await?;
    let mut old = NewFlowRunState::new(StateType::Pending, "Pending", a_id);
    old.timestamp = Some(t(0));
    let mut new = NewFlowRunState::new(StateType::Running, "Running", a_id);
    new.timestamp = Some(t(1));
    let other = NewFlowRunState::new(StateType::Running, "Running", b_id);
    let new_id = new.id;
    qc.insert(conn, vec![old.clone(), new, other], OnConflict::Fail)
        .await?;
    // b's state is not in the given list: b keeps its (NULL) state_id and is not counted.
    let n = qc
        .set_state_id_on_inserted_flow_runs_statement(conn, &[a_id, b_id], &[old.id, new_id])
        .await?;
    assert_eq!(n, 1);
    let rows = runs(conn).await?;
    assert_eq!(
        rows[0].state_id,
        Some(new_id),
        "the newer of a's two given states"
    );
    assert_eq!(rows[1].state_id, None);
    let states: Vec<FlowRunState> = dispatch!(conn, |c| flow_run_state::table
        .select(FlowRunState::as_select())
        .load(c)
        .await)?;
    assert_eq!(states.len(), 3);
    Ok(())
}

async fn collections(conn: &mut Conn<'_>) -> Result<Vec<ArtifactCollection>, BoxError> {
    Ok(dispatch!(conn, |c| artifact_collection::table
        .select(ArtifactCollection::as_select())
        .order_by(artifact_collection::key)
        .load(c)
        .await)?)
}

fn collection(key: &str, latest: u128, description: &str) -> NewArtifactCollection {
    let mut row = NewArtifactCollection::new(key, Uuid::from_u128(latest));
    row.description = Some(description.to_owned());
    row.type_ = Some("markdown".to_owned());
    row.created = t(0);
    row.updated = t(0);
    row
}

/// Prefect's artifact collection upsert: `ON CONFLICT (key) DO UPDATE` of the listed columns.
const LATEST_AND_DESCRIPTION: &[&str] = &["latest_id", "description"];

async fn upsert_updates_conflicting_rows_and_inserts_new_ones(dialect: Dialect) -> TestResult {
    let (_db, p) = crate::common::migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let qc = QueryComponents::new();
    let (k1, k2) = (collection("k1", 1, "old"), collection("k2", 2, "two"));
    let k1_id = k1.id;
    qc.insert(conn, vec![k1, k2.clone()], OnConflict::Fail)
        .await?;

    // k1 again (a new id, latest 11, "new", another type) and k3 (new).
    let mut k1_again = collection("k1", 11, "new");
    k1_again.type_ = Some("table".to_owned());
    let k3 = collection("k3", 3, "three");
    let ids = qc
        .insert(
            conn,
            vec![k1_again.clone(), k3.clone()],
            OnConflict::DoUpdate(LATEST_AND_DESCRIPTION),
        )
        .await?;
    // The conflicting row keeps its id, which is returned in place of the row given; k3 is
    // inserted with its own id.
    assert_eq!(ids, [k1_id, k3.id]);
    assert_ne!(k1_again.id, k1_id);
    let rows = collections(conn).await?;
    let keys: Vec<&str> = rows.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, ["k1", "k2", "k3"]);
    let k1 = &rows[0];
    // Listed columns come from the row given; `type` is not listed and stays; `created` stays;
    // `updated` moves from t(0) to the time of the upsert.
    assert_eq!(
        (
            k1.latest_id,
            k1.description.as_deref(),
            k1.type_.as_deref(),
            k1.created
        ),
        (Uuid::from_u128(11), Some("new"), Some("markdown"), t(0))
    );
    assert!(k1.updated > t(0), "updated is set: {}", k1.updated);
    // k2 is not in the batch: untouched. k3 is inserted as given.
    assert_eq!(
        (rows[1].latest_id, rows[1].updated),
        (Uuid::from_u128(2), t(0))
    );
    assert_eq!(
        (
            rows[2].id,
            rows[2].latest_id,
            rows[2].description.as_deref()
        ),
        (k3.id, Uuid::from_u128(3), Some("three"))
    );
    Ok(())
}

async fn upsert_refuses_bad_columns_and_rows_hit_twice(dialect: Dialect) -> TestResult {
    let (_db, p) = crate::common::migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let qc = QueryComponents::new();
    qc.insert(conn, vec![collection("k1", 1, "old")], OnConflict::Fail)
        .await?;
    for (columns, column) in [(&["nope"][..], "nope"), (&["id"][..], "id")] {
        let err = qc
            .insert(
                conn,
                vec![collection("k1", 2, "x")],
                OnConflict::DoUpdate(columns),
            )
            .await;
        assert!(
            matches!(&err, Err(QueryError::UpsertColumn { table: "artifact_collection", column: c, .. }) if c == column),
            "{err:?}"
        );
    }
    // Two rows of one batch with key k2 (new) would write the same row twice: refused on both
    // dialects, and the batch (with k4 and the k1 update) leaves nothing behind.
    let err = qc
        .insert(
            conn,
            vec![
                collection("k4", 4, "four"),
                collection("k1", 5, "changed"),
                collection("k2", 6, "a"),
                collection("k2", 7, "b"),
            ],
            OnConflict::DoUpdate(LATEST_AND_DESCRIPTION),
        )
        .await;
    assert!(
        matches!(
            err,
            Err(QueryError::UpsertRowTwice {
                table: "artifact_collection",
                ..
            })
        ),
        "{err:?}"
    );
    let rows = collections(conn).await?;
    let left: Vec<(&str, Uuid)> = rows.iter().map(|r| (r.key.as_str(), r.latest_id)).collect();
    assert_eq!(left, [("k1", Uuid::from_u128(1))]);
    Ok(())
}

/// 4,000 log rows of 9 columns need 36,000 bind parameters: two statements on SQLite (32,766 at
/// most each), four on PostgreSQL (1,000 rows each). Runs whose rows name different columns
/// alternate statements on SQLite. Order and all-or-nothing hold across statements.
async fn batches_over_the_statement_limits_keep_order_and_atomicity(dialect: Dialect) -> TestResult {
    let (_db, p) = crate::common::migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let qc = QueryComponents::new();
    let logs = |n: usize| -> Vec<NewLog> {
        (0..n).map(|k| NewLog::new("bench", 20, format!("line {k}"), t(k as i64 % 50))).collect()
    };
    let count = async |conn: &mut Conn<'_>| -> Result<i64, BoxError> {
        Ok(dispatch!(conn, |c| log::table.count().get_result(c).await)?)
    };

    // The last row repeats the first one's id: the whole batch fails, nothing is kept.
    let mut failing = logs(4_000);
    failing[3_999].id = failing[0].id;
    let result = conn.transaction(TxMode::Write, async |tx| qc.insert(tx, failing, OnConflict::Fail).await).await;
    assert!(matches!(result, Err(QueryError::Db(_))), "{result:?}");
    assert_eq!(count(conn).await?, 0);
    let result = qc.insert(conn, { let mut l = logs(4_000); l[3_999].id = l[0].id; l }, OnConflict::Fail).await;
    assert!(matches!(result, Err(QueryError::Db(_))), "outside a transaction too: {result:?}");
    assert_eq!(count(conn).await?, 0, "no statement of the failed batch is kept");

    let rows = logs(4_000);
    let expected: Vec<Uuid> = rows.iter().map(|l| l.id).collect();
    let ids = qc.insert(conn, rows, OnConflict::Fail).await?;
    assert_eq!(ids, expected, "ids in input order");
    assert_eq!(count(conn).await?, 4_000);

    // Flow runs leaving different columns to their defaults, in runs of one and two.
    let f = flow(conn, "f").await?;
    let shapes = [false, false, true, false, true, true];
    let runs: Vec<NewFlowRun> = shapes
        .iter()
        .enumerate()
        .map(|(k, &custom)| {
            let mut r = NewFlowRun::new(format!("r{k}"), f);
            if custom {
                r.run_count = Some(k as i32);
            }
            r
        })
        .collect();
    let expected: Vec<Uuid> = runs.iter().map(|r| r.id).collect();
    assert_eq!(qc.insert(conn, runs, OnConflict::Fail).await?, expected);
    let stored: Vec<(String, i32)> = dispatch!(conn, |c| flow_run::table
        .select((flow_run::name, flow_run::run_count))
        .order_by(flow_run::name)
        .load(c)
        .await)?;
    let want: Vec<(String, i32)> =
        shapes.iter().enumerate().map(|(k, &custom)| (format!("r{k}"), if custom { k as i32 } else { 0 })).collect();
    assert_eq!(stored, want, "defaulted run_count is the column default 0");
    Ok(())
}
