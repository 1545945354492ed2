//! `flow_run_graph_v2` on both dialects against one hand-built graph.
//!
//! Every expectation is worked out from the seed described on [`seed`], not copied from output.

use crate::common::{BoxError, S, flow, migrated, t};
use chrono::{DateTime, Utc};
use prefect_db_config::Conn;
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_orm::models::{
    NewArtifact, NewArtifactCollection, NewFlowRun, NewFlowRunState, NewTaskRun,
};
use prefect_orm::types::StateType;
use prefect_query_components::{Graph, NodeKind, OnConflict, QueryComponents, QueryError};
use serde_json::json;
use uuid::Uuid;

conformance!(
    nodes_edges_and_order,
    since_leaves_out_nodes_that_ended_before,
    too_large_and_missing_flow_run,
    artifacts_and_states,
    serialises_with_prefect_field_names,
);

/// Node ids are fixed so that id order differs from start-time order: `id(n)` sorts by `n`.
fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}
const B: u128 = 1;
const C: u128 = 2;
const F: u128 = 3;
const A: u128 = 4;
const D: u128 = 5;
const E: u128 = 6;
const ST: u128 = 7; // the task run whose subflow run is SF
const SF: u128 = 8;
const ROOT: u128 = 100;

fn task_ref(n: u128) -> serde_json::Value {
    json!({"input_type": "task_run", "id": id(n).to_string()})
}

#[allow(clippy::too_many_arguments)]
fn task(
    n: u128,
    name: &str,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    state: StateType,
    inputs: serde_json::Value,
) -> NewTaskRun {
    let mut row = NewTaskRun::new(name, name, "0");
    row.id = id(n);
    row.flow_run_id = Some(id(ROOT));
    row.start_time = start;
    row.end_time = end;
    row.state_type = Some(state);
    row.task_inputs = Some(inputs);
    row
}

/// The seed (seconds after `t(0)`), flow run ROOT of flow "f": start NULL, expected start 0s,
/// end 100s. Its task runs (start, end, state, task_inputs):
///
/// - E "e": no start, expected start 5s, no end, COMPLETED, a constant input → its end is its
///   expected start (5s), as a COMPLETED task run without an end time.
/// - F "f2": 10s–12s, no inputs.
/// - A "a": 10s–20s, no inputs.
/// - ST "sub-task": 15s, inputs `x: [A]`; subflow run SF ("child" of flow "g", 16s–50s,
///   COMPLETED) has `parent_task_run_id = ST`, so the node is SF, labelled "g / child",
///   starting at 16s (the subflow's start wins over the task run's).
/// - C "c": 25s, no end, RUNNING, inputs `x: [A, F], wait_for: [B]`.
/// - B "b": 30s–40s, inputs `x: [A], y: [A, a parameter]` (A twice, the parameter has no id).
/// - D "d": 35s–36s, inputs `__parents__: [C]` (encapsulating) and `x: [flow_run SF]`.
/// - "ghost": no start and no expected start → never a node.
/// - "stranger": references a task run of another flow run (no such node → no edge).
///
/// Not in the graph: a task run of another flow run, and SF's own task run (subflows are not
/// recursed into).
async fn seed(conn: &mut Conn<'_>) -> Result<(), BoxError> {
    let qc = QueryComponents::new();
    let f = flow(conn, "f").await?;
    let g = flow(conn, "g").await?;
    let mut root = NewFlowRun::new("root", f);
    root.id = id(ROOT);
    root.expected_start_time = Some(t(0));
    root.end_time = Some(t(100 * S));
    let other = NewFlowRun::new("other", f);
    let other_id = other.id;
    qc.insert(conn, vec![root, other], OnConflict::Fail).await?;

    let mut foreign = NewTaskRun::new("foreign", "foreign", "0");
    foreign.flow_run_id = Some(other_id);
    foreign.start_time = Some(t(0));
    let foreign_id = foreign.id;
    let param = json!({"input_type": "parameter", "name": "p"});
    let mut e = task(
        E,
        "e",
        None,
        None,
        StateType::Completed,
        json!({"x": [{"input_type": "constant", "type": "int"}]}),
    );
    e.expected_start_time = Some(t(5 * S));
    let mut ghost = NewTaskRun::new("ghost", "ghost", "0");
    ghost.flow_run_id = Some(id(ROOT));
    let stranger = task(
        9,
        "stranger",
        Some(t(60 * S)),
        Some(t(61 * S)),
        StateType::Completed,
        json!({"x": [{"input_type": "task_run", "id": foreign_id.to_string()}]}),
    );
    let tasks = vec![
        foreign,
        e,
        task(
            F,
            "f2",
            Some(t(10 * S)),
            Some(t(12 * S)),
            StateType::Completed,
            json!({}),
        ),
        task(
            A,
            "a",
            Some(t(10 * S)),
            Some(t(20 * S)),
            StateType::Completed,
            json!({}),
        ),
        task(
            ST,
            "sub-task",
            Some(t(15 * S)),
            None,
            StateType::Completed,
            json!({"x": [task_ref(A)]}),
        ),
        task(
            C,
            "c",
            Some(t(25 * S)),
            None,
            StateType::Running,
            json!({"x": [task_ref(A), task_ref(F)], "wait_for": [task_ref(B)]}),
        ),
        task(
            B,
            "b",
            Some(t(30 * S)),
            Some(t(40 * S)),
            StateType::Completed,
            json!({"x": [task_ref(A)], "y": [task_ref(A), param]}),
        ),
        task(
            D,
            "d",
            Some(t(35 * S)),
            Some(t(36 * S)),
            StateType::Completed,
            json!({"__parents__": [task_ref(C)], "x": [{"input_type": "flow_run", "id": id(SF).to_string()}]}),
        ),
        ghost,
        stranger,
    ];
    qc.insert(conn, tasks, OnConflict::Fail).await?;

    let mut sub = NewFlowRun::new("child", g);
    sub.id = id(SF);
    sub.parent_task_run_id = Some(id(ST));
    sub.start_time = Some(t(16 * S));
    sub.end_time = Some(t(50 * S));
    sub.state_type = Some(StateType::Completed);
    qc.insert(conn, vec![sub], OnConflict::Fail).await?;
    let mut inner = NewTaskRun::new("inner", "inner", "0");
    inner.id = id(10);
    inner.flow_run_id = Some(id(SF));
    inner.start_time = Some(t(17 * S));
    qc.insert(conn, vec![inner], OnConflict::Fail).await?;
    Ok(())
}

fn ids(edges: &[prefect_query_components::Edge]) -> Vec<Uuid> {
    edges.iter().map(|e| e.id).collect()
}

fn node(graph: &Graph, n: u128) -> &prefect_query_components::Node {
    let found = graph.nodes.iter().find(|(i, _)| *i == id(n));
    match found {
        Some((_, node)) => node,
        None => panic!("node {n} missing from {:?}", graph.nodes),
    }
}

async fn nodes_edges_and_order(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    seed(conn).await?;
    let graph = QueryComponents::new()
        .flow_run_graph_v2(conn, id(ROOT), t(-1000 * S), 100, 100)
        .await?;
    // By start time, then end time (no end last), then id: E (5s), F (10s, ends 12s) before
    // A (10s, ends 20s), SF (16s), C (25s), B (30s), D (35s), stranger (60s). Not ghost (no
    // time), not the other flow run's task, not SF's inner task.
    let order: Vec<Uuid> = graph.nodes.iter().map(|(i, _)| *i).collect();
    assert_eq!(
        order,
        [id(E), id(F), id(A), id(SF), id(C), id(B), id(D), id(9)]
    );
    assert!(graph.nodes.iter().all(|(i, n)| *i == n.id));

    // C takes inputs from A (10s, id 4), F (10s, id 3) and B (30s, id 1): by start time, the
    // tie between A and F broken by id → F, A, B.
    assert_eq!(ids(&node(&graph, C).parents), [id(F), id(A), id(B)]);
    assert!(
        node(&graph, C).children.is_empty(),
        "D's __parents__ input is no child edge"
    );
    // A feeds SF (through ST's input; 16s, id 8), C (25s, id 2) and B (30s, id 1): by start time,
    // the reverse of id order.
    assert_eq!(ids(&node(&graph, A).children), [id(SF), id(C), id(B)]);
    // B references A twice (inputs x and y): one edge; the parameter input has no id.
    assert_eq!(ids(&node(&graph, B).parents), [id(A)]);
    assert_eq!(ids(&node(&graph, B).children), [id(C)]);
    assert_eq!(ids(&node(&graph, F).children), [id(C)]);
    // D: its `__parents__` input is encapsulating; its flow_run input points at the subflow node.
    assert_eq!(ids(&node(&graph, D).encapsulating), [id(C)]);
    assert_eq!(ids(&node(&graph, D).parents), [id(SF)]);
    assert_eq!(ids(&node(&graph, SF).parents), [id(A)]);
    assert_eq!(ids(&node(&graph, SF).children), [id(D)]);
    // stranger's input is a task run of another flow run: no node, so no edge.
    assert!(node(&graph, 9).parents.is_empty());
    // Roots have no parents (encapsulating edges do not count): E, F, A, stranger, in node order.
    assert_eq!(graph.root_node_ids, [id(E), id(F), id(A), id(9)]);

    let sf = node(&graph, SF);
    assert_eq!(sf.kind, NodeKind::FlowRun);
    assert_eq!(sf.label, "g / child");
    assert_eq!((sf.start_time, sf.end_time), (t(16 * S), Some(t(50 * S))));
    assert_eq!(sf.state_type, Some(StateType::Completed));
    let e = node(&graph, E);
    assert_eq!(e.kind, NodeKind::TaskRun);
    assert_eq!(e.label, "e");
    // E has no start: its expected start; COMPLETED without an end: ends at its expected start.
    assert_eq!((e.start_time, e.end_time), (t(5 * S), Some(t(5 * S))));
    let c = node(&graph, C);
    assert_eq!((c.end_time, c.state_type), (None, Some(StateType::Running)));
    // The flow run: no start time, so its expected start.
    assert_eq!(
        (graph.start_time, graph.end_time),
        (Some(t(0)), Some(t(100 * S)))
    );
    Ok(())
}

async fn since_leaves_out_nodes_that_ended_before(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    seed(conn).await?;
    let qc = QueryComponents::new();
    // Since 21s: E (ended 5s), F (12s) and A (20s) ended before; SF (50s), C (no end), B (40s),
    // D (36s), stranger (61s) remain.
    let graph = qc
        .flow_run_graph_v2(conn, id(ROOT), t(21 * S), 100, 100)
        .await?;
    let order: Vec<Uuid> = graph.nodes.iter().map(|(i, _)| *i).collect();
    assert_eq!(order, [id(SF), id(C), id(B), id(D), id(9)]);
    // Edges still name the nodes left out (as Prefect): C's parents are F, A, B.
    assert_eq!(ids(&node(&graph, C).parents), [id(F), id(A), id(B)]);
    // Only stranger has no parents among the remaining nodes.
    assert_eq!(graph.root_node_ids, [id(9)]);
    // `since` is inclusive: since 20s keeps A (ended exactly 20s).
    let graph = qc
        .flow_run_graph_v2(conn, id(ROOT), t(20 * S), 100, 100)
        .await?;
    assert_eq!(graph.nodes.first().map(|(i, _)| *i), Some(id(A)));
    Ok(())
}

async fn too_large_and_missing_flow_run(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    seed(conn).await?;
    let qc = QueryComponents::new();
    let since = t(-1000 * S);
    // Eight nodes (see nodes_edges_and_order): 7 is too few, 8 is enough.
    let err = qc.flow_run_graph_v2(conn, id(ROOT), since, 7, 100).await;
    assert!(
        matches!(err, Err(QueryError::GraphTooLarge { flow_run_id, max_nodes: 7 }) if flow_run_id == id(ROOT)),
        "{err:?}"
    );
    assert_eq!(
        qc.flow_run_graph_v2(conn, id(ROOT), since, 8, 100)
            .await?
            .nodes
            .len(),
        8
    );
    // Since 21s leaves five nodes: the limit counts the nodes that remain.
    assert_eq!(
        qc.flow_run_graph_v2(conn, id(ROOT), t(21 * S), 5, 100)
            .await?
            .nodes
            .len(),
        5
    );
    let missing = id(12345);
    let err = qc.flow_run_graph_v2(conn, missing, since, 8, 100).await;
    assert!(
        matches!(err, Err(QueryError::FlowRunNotFound(i)) if i == missing),
        "{err:?}"
    );
    // The subflow run's own graph: its one task run "inner" (17s, no inputs), a root.
    let graph = qc.flow_run_graph_v2(conn, id(SF), since, 8, 100).await?;
    assert_eq!(graph.root_node_ids, [id(10)]);
    assert_eq!(graph.nodes.len(), 1);
    Ok(())
}

fn artifact(
    n: u128,
    flow_run: Uuid,
    task_run: Option<u128>,
    key: Option<&str>,
    type_: Option<&str>,
    created_s: i64,
    data: serde_json::Value,
) -> NewArtifact {
    let mut a = NewArtifact::new();
    a.id = id(n);
    a.flow_run_id = Some(flow_run);
    a.task_run_id = task_run.map(id);
    a.key = key.map(str::to_owned);
    a.type_ = type_.map(str::to_owned);
    a.created = t(created_s * S);
    a.data = Some(data);
    a
}

async fn artifacts_and_states(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    seed(conn).await?;
    let qc = QueryComponents::new();
    let root = id(ROOT);
    // Artifacts (created at Ns):
    // 201 flow-level, key k, markdown, 1s — not the latest of k (203 is);
    // 202 task A, progress 0.5, 2s, no key → latest, data kept (progress);
    // 203 flow-level, key k, table, 3s → latest of k, data dropped (not progress);
    // 204 result, 0s → never; 205 task B, no type, 2s → never (`type != 'result'` is not
    // true for NULL); 206 on the subflow run → never; 207 task A, markdown, 4s.
    let arts = vec![
        artifact(201, root, None, Some("k"), Some("markdown"), 1, json!("m")),
        artifact(202, root, Some(A), None, Some("progress"), 2, json!(0.5)),
        artifact(
            203,
            root,
            None,
            Some("k"),
            Some("table"),
            3,
            json!({"x": 1}),
        ),
        artifact(204, root, Some(A), None, Some("result"), 0, json!(null)),
        artifact(205, root, Some(B), None, None, 2, json!(null)),
        artifact(206, id(SF), None, None, Some("markdown"), 1, json!(null)),
        artifact(207, root, Some(A), None, Some("markdown"), 4, json!("n")),
    ];
    qc.insert(conn, arts, OnConflict::Fail).await?;
    qc.insert(
        conn,
        vec![NewArtifactCollection::new("k", id(203))],
        OnConflict::Fail,
    )
    .await?;
    // States inserted out of order: read back by timestamp.
    let mut states = Vec::new();
    for (n, ty, name, at) in [
        (303, StateType::Completed, "Completed", 100),
        (301, StateType::Pending, "Pending", 0),
        (302, StateType::Running, "Running", 1),
    ] {
        let mut s = NewFlowRunState::new(ty, name, root);
        s.id = id(n);
        s.timestamp = Some(t(at * S));
        states.push(s);
    }
    let mut other = NewFlowRunState::new(StateType::Running, "Running", id(SF));
    other.id = id(399);
    states.push(other);
    qc.insert(conn, states, OnConflict::Fail).await?;

    let graph = qc
        .flow_run_graph_v2(conn, root, t(-1000 * S), 100, 10)
        .await?;
    let flow_level: Vec<(Uuid, bool, Option<serde_json::Value>)> = graph
        .artifacts
        .iter()
        .map(|a| (a.id, a.is_latest, a.data.clone()))
        .collect();
    assert_eq!(flow_level, [(id(201), false, None), (id(203), true, None)]);
    let a_arts: Vec<(Uuid, bool, Option<serde_json::Value>)> = node(&graph, A)
        .artifacts
        .iter()
        .map(|a| (a.id, a.is_latest, a.data.clone()))
        .collect();
    assert_eq!(
        a_arts,
        [(id(202), true, Some(json!(0.5))), (id(207), true, None)]
    );
    assert!(node(&graph, B).artifacts.is_empty());
    assert_eq!(graph.artifacts[0].key.as_deref(), Some("k"));
    assert_eq!(graph.artifacts[0].type_.as_deref(), Some("markdown"));
    assert_eq!(graph.artifacts[0].created, t(S));
    let states: Vec<(Uuid, StateType, &str, DateTime<Utc>)> = graph
        .states
        .iter()
        .map(|s| (s.id, s.type_, s.name.as_str(), s.timestamp))
        .collect();
    assert_eq!(
        states,
        [
            (id(301), StateType::Pending, "Pending", t(0)),
            (id(302), StateType::Running, "Running", t(S)),
            (id(303), StateType::Completed, "Completed", t(100 * S)),
        ]
    );

    // At most two artifacts: the two oldest that count, 201 (1s) and 202 (2s).
    let graph = qc
        .flow_run_graph_v2(conn, root, t(-1000 * S), 100, 2)
        .await?;
    let flow_level: Vec<Uuid> = graph.artifacts.iter().map(|a| a.id).collect();
    assert_eq!(flow_level, [id(201)]);
    let a_arts: Vec<Uuid> = node(&graph, A).artifacts.iter().map(|a| a.id).collect();
    assert_eq!(a_arts, [id(202)]);
    Ok(())
}

async fn serialises_with_prefect_field_names(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    seed(conn).await?;
    let graph = QueryComponents::new()
        .flow_run_graph_v2(conn, id(ROOT), t(21 * S), 100, 100)
        .await?;
    let v = serde_json::to_value(&graph)?;
    let keys: Vec<&str> = v
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let mut keys = keys;
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "artifacts",
            "end_time",
            "nodes",
            "root_node_ids",
            "start_time",
            "states"
        ]
    );
    // `nodes` is a list of `[id, node]` pairs; SF comes first since 21s (see the since test).
    let first = &v["nodes"][0];
    assert_eq!(first[0], json!(id(SF).to_string()));
    assert_eq!(first[1]["kind"], json!("flow-run"));
    assert_eq!(first[1]["state_type"], json!("COMPLETED"));
    assert_eq!(first[1]["label"], json!("g / child"));
    assert_eq!(first[1]["parents"], json!([{"id": id(A).to_string()}]));
    assert_eq!(first[1]["children"], json!([{"id": id(D).to_string()}]));
    assert_eq!(first[1]["encapsulating"], json!([]));
    assert_eq!(first[1]["artifacts"], json!([]));
    Ok(())
}
