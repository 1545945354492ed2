//! The flow run graph, version 2 (Prefect 3.9.1's `flow_run_graph_v2`, spec §8.5).
//!
//! The nodes are the task runs of a flow run; a task run that is the parent of a subflow run
//! (`flow_run.parent_task_run_id`) appears as that subflow run. Edges come from the task runs'
//! `task_inputs`: every input is a list of references (`{"input_type": "task_run", "id": …}`,
//! `{"input_type": "flow_run", "id": …}`, parameters and constants without an id); the
//! references under `__parents__` make *encapsulating* edges, all others parent/child edges.
//!
//! The SQL is written once; the JSON functions that differ per dialect come from the private
//! `sql` module. A graph takes five statements whatever its size: the flow run, the nodes (at
//! most `max_nodes + 1`), the edges, the artifacts and the states.

use crate::sql::{Bind, Binder, SqlDialect, load_raw};
use crate::{QueryError, QueryResult};
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel_async::RunQueryDsl;
use prefect_db_config::{Conn, dispatch};
use prefect_orm::models::{Artifact, FlowRunState};
use prefect_orm::schema::{artifact, artifact_collection, flow_run, flow_run_state};
use prefect_orm::types::{PTimestamp, PUuid, StateType, Val};
use serde::Serialize;
use std::collections::HashMap;
use uuid::Uuid;

/// A flow run state on the graph (Prefect's `GraphState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GraphState {
    /// The state's id.
    pub id: Uuid,
    /// When the state was entered.
    pub timestamp: DateTime<Utc>,
    /// The state type.
    #[serde(rename = "type")]
    pub type_: StateType,
    /// The state name.
    pub name: String,
}

/// An artifact on the graph (Prefect's `GraphArtifact`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphArtifact {
    /// The artifact's id.
    pub id: Uuid,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// Its key, if any.
    pub key: Option<String>,
    /// Its type (never `result`).
    #[serde(rename = "type")]
    pub type_: Option<String>,
    /// Whether it is the latest of its key (always true without a key).
    pub is_latest: bool,
    /// Its data, for `progress` artifacts only (Prefect returns no other data).
    pub data: Option<serde_json::Value>,
}

/// A reference to another node (Prefect's `Edge`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Edge {
    /// The node referred to.
    pub id: Uuid,
}

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum NodeKind {
    /// A subflow run (a task run that is the parent of a flow run).
    #[serde(rename = "flow-run")]
    FlowRun,
    /// A task run.
    #[serde(rename = "task-run")]
    TaskRun,
}

/// A node of the graph (Prefect's `Node`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// A task run or a subflow run.
    pub kind: NodeKind,
    /// The task run's id, or the subflow run's.
    pub id: Uuid,
    /// The task run's name, or `"<flow name> / <subflow run name>"`.
    pub label: String,
    /// The run's state type (`None` for a run without a state).
    pub state_type: Option<StateType>,
    /// The first of the subflow's start and expected start, the task run's start and expected
    /// start.
    pub start_time: DateTime<Utc>,
    /// The subflow's end, else the task run's end, else (a COMPLETED task run) its expected
    /// start.
    pub end_time: Option<DateTime<Utc>>,
    /// The nodes this one takes inputs from, by start time, then id; each once.
    pub parents: Vec<Edge>,
    /// The nodes taking inputs from this one, by start time, then id; each once.
    pub children: Vec<Edge>,
    /// The nodes this one runs inside (`__parents__` inputs), by start time, then id; each once.
    pub encapsulating: Vec<Edge>,
    /// The node's artifacts (those of its task run id).
    pub artifacts: Vec<GraphArtifact>,
}

/// A flow run graph (Prefect's `Graph`), serialised with Prefect's API field names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    /// The flow run's start time, else its expected start time.
    pub start_time: Option<DateTime<Utc>>,
    /// The flow run's end time.
    pub end_time: Option<DateTime<Utc>>,
    /// The nodes without parents, in node order.
    pub root_node_ids: Vec<Uuid>,
    /// `(id, node)` pairs ordered by start time, then end time (no end last), then id.
    pub nodes: Vec<(Uuid, Node)>,
    /// The flow run's artifacts that belong to no task run.
    pub artifacts: Vec<GraphArtifact>,
    /// The flow run's states, by timestamp, then id.
    pub states: Vec<GraphState>,
}

/// The `edges` common table expression: one row per (task run, input, referenced id), with
/// columns `kind`, `id`, `label`, `state_type`, `start_time`, `end_time`, `parent` (the
/// referenced id as text, or NULL) and `relation` (`'encapsulating'` for `__parents__` inputs,
/// `'parent'` otherwise). Binds the flow run id.
fn edges_cte(b: &mut Binder, flow_run_id: Uuid) -> String {
    let d = b.dialect;
    let id = b.bind(Bind::Uuid(flow_run_id));
    let input = d.json_object_entries("tr.task_inputs", "input");
    let argument = d.json_entry_array_elements("input", "argument");
    let parent = d.json_element_field_text("argument", "id");
    let state_type = d.as_text("COALESCE(fr.state_type, tr.state_type)");
    let start =
        "COALESCE(fr.start_time, fr.expected_start_time, tr.start_time, tr.expected_start_time)";
    format!(
        "WITH edges AS (SELECT \
           CASE WHEN fr.id IS NOT NULL THEN 'flow-run' ELSE 'task-run' END AS kind, \
           COALESCE(fr.id, tr.id) AS id, \
           COALESCE(f.name || ' / ' || fr.name, tr.name) AS label, \
           {state_type} AS state_type, \
           {start} AS start_time, \
           COALESCE(fr.end_time, tr.end_time, \
             CASE WHEN tr.state_type = 'COMPLETED' THEN tr.expected_start_time END) AS end_time, \
           {parent} AS parent, \
           CASE WHEN input.key = '__parents__' THEN 'encapsulating' ELSE 'parent' END AS relation \
         FROM task_run tr \
         LEFT JOIN {input} ON true \
         LEFT JOIN {argument} ON true \
         LEFT JOIN flow_run fr ON fr.parent_task_run_id = tr.id \
         LEFT JOIN flow f ON f.id = fr.flow_id \
         WHERE tr.flow_run_id = {id} AND {start} IS NOT NULL) "
    )
}

#[derive(QueryableByName)]
struct NodeRow {
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = PUuid)]
    id: Uuid,
    #[diesel(sql_type = Text)]
    label: String,
    #[diesel(sql_type = Nullable<Text>)]
    state_type: Option<String>,
    #[diesel(sql_type = PTimestamp)]
    start_time: DateTime<Utc>,
    #[diesel(sql_type = Nullable<PTimestamp>)]
    end_time: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct EdgeRow {
    #[diesel(sql_type = PUuid)]
    child_id: Uuid,
    #[diesel(sql_type = PTimestamp)]
    child_start: DateTime<Utc>,
    #[diesel(sql_type = PUuid)]
    parent_id: Uuid,
    #[diesel(sql_type = PTimestamp)]
    parent_start: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    relation: String,
}

/// The nodes (without edges or artifacts) whose end time is unknown or not before `since`,
/// at most `limit`, in graph order.
async fn load_nodes(
    conn: &mut Conn<'_>,
    flow_run_id: Uuid,
    since: DateTime<Utc>,
    limit: i64,
) -> QueryResult<Vec<NodeRow>> {
    let mut b = Binder::new(SqlDialect(conn.dialect()));
    let edges = edges_cte(&mut b, flow_run_id);
    let since = b.bind(Bind::Time(since));
    let limit = b.bind(Bind::Int(limit));
    let sql = format!(
        "{edges}SELECT kind, id, label, state_type, start_time, end_time FROM (\
           SELECT DISTINCT kind, id, label, state_type, start_time, end_time FROM edges \
           WHERE end_time IS NULL OR end_time >= {since}) nodes \
         ORDER BY start_time, CASE WHEN end_time IS NULL THEN 1 ELSE 0 END, end_time, id \
         LIMIT {limit}"
    );
    load_raw(conn, sql, b.binds).await
}

/// Every edge between two nodes of the flow run (filtered or not by `since`).
async fn load_edges(conn: &mut Conn<'_>, flow_run_id: Uuid) -> QueryResult<Vec<EdgeRow>> {
    let mut b = Binder::new(SqlDialect(conn.dialect()));
    let edges = edges_cte(&mut b, flow_run_id);
    let parent_id = b.dialect.as_text("p.id");
    let sql = format!(
        "{edges}SELECT DISTINCT c.id AS child_id, c.start_time AS child_start, \
           p.id AS parent_id, p.start_time AS parent_start, c.relation AS relation \
         FROM edges c JOIN edges p ON {parent_id} = c.parent"
    );
    load_raw(conn, sql, b.binds).await
}

/// The ids of `edges` ordered by (start time, id), each once.
fn ordered(mut edges: Vec<(DateTime<Utc>, Uuid)>) -> Vec<Edge> {
    edges.sort_unstable();
    edges.dedup_by_key(|e| e.1);
    // `dedup_by_key` only drops neighbours; one id always has one start time, so equal ids are
    // neighbours after the sort.
    edges.into_iter().map(|(_, id)| Edge { id }).collect()
}

/// The artifacts of the flow run other than results, the oldest `max_artifacts`, by task run
/// id (`None`: the flow run's own).
async fn load_artifacts(
    conn: &mut Conn<'_>,
    flow_run_id: Uuid,
    max_artifacts: usize,
) -> QueryResult<HashMap<Option<Uuid>, Vec<GraphArtifact>>> {
    let limit = i64::try_from(max_artifacts).unwrap_or(i64::MAX);
    let rows: Vec<(Artifact, Val<Option<Uuid>>)> = dispatch!(conn, |c| {
        artifact::table
            .left_join(
                artifact_collection::table.on(artifact_collection::key
                    .nullable()
                    .eq(artifact::key)
                    .and(artifact_collection::latest_id.eq(artifact::id))),
            )
            .filter(artifact::flow_run_id.eq(Val(flow_run_id)))
            .filter(artifact::type_.ne("result"))
            .order((artifact::created.asc(), artifact::id.asc()))
            .limit(limit)
            .select((Artifact::as_select(), artifact_collection::id.nullable()))
            .load(c)
            .await
    })?;
    let mut by_task: HashMap<Option<Uuid>, Vec<GraphArtifact>> = HashMap::new();
    for (a, Val(latest_in_collection)) in rows {
        let is_progress = a.type_.as_deref() == Some("progress");
        by_task
            .entry(a.task_run_id)
            .or_default()
            .push(GraphArtifact {
                id: a.id,
                created: a.created,
                is_latest: a.key.is_none() || latest_in_collection.is_some(),
                key: a.key,
                type_: a.type_,
                data: if is_progress { a.data } else { None },
            });
    }
    Ok(by_task)
}

/// The flow run's states, by timestamp, then id.
async fn load_states(conn: &mut Conn<'_>, flow_run_id: Uuid) -> QueryResult<Vec<GraphState>> {
    let rows: Vec<FlowRunState> = dispatch!(conn, |c| {
        flow_run_state::table
            .filter(flow_run_state::flow_run_id.eq(Val(flow_run_id)))
            .order((flow_run_state::timestamp.asc(), flow_run_state::id.asc()))
            .select(FlowRunState::as_select())
            .load(c)
            .await
    })?;
    Ok(rows
        .into_iter()
        .map(|s| GraphState {
            id: s.id,
            timestamp: s.timestamp,
            type_: s.type_,
            name: s.name,
        })
        .collect())
}

/// Prefect 3.9.1's `flow_run_graph_v2`: see [`QueryComponents::flow_run_graph_v2`](crate::QueryComponents::flow_run_graph_v2).
pub(crate) async fn flow_run_graph_v2(
    conn: &mut Conn<'_>,
    flow_run_id: Uuid,
    since: DateTime<Utc>,
    max_nodes: usize,
    max_artifacts: usize,
) -> QueryResult<Graph> {
    type Times = (
        Val<Option<DateTime<Utc>>>,
        Val<Option<DateTime<Utc>>>,
        Val<Option<DateTime<Utc>>>,
    );
    let run: Option<Times> = dispatch!(conn, |c| {
        flow_run::table
            .filter(flow_run::id.eq(Val(flow_run_id)))
            .select((
                flow_run::start_time,
                flow_run::expected_start_time,
                flow_run::end_time,
            ))
            .first(c)
            .await
            .optional()
    })?;
    let Some((Val(start), Val(expected), Val(end_time))) = run else {
        return Err(QueryError::FlowRunNotFound(flow_run_id));
    };

    let limit = i64::try_from(max_nodes.saturating_add(1)).unwrap_or(i64::MAX);
    let rows = load_nodes(conn, flow_run_id, since, limit).await?;
    if rows.len() > max_nodes {
        return Err(QueryError::GraphTooLarge {
            flow_run_id,
            max_nodes,
        });
    }

    let mut parents: HashMap<Uuid, Vec<(DateTime<Utc>, Uuid)>> = HashMap::new();
    let mut children: HashMap<Uuid, Vec<(DateTime<Utc>, Uuid)>> = HashMap::new();
    let mut encapsulating: HashMap<Uuid, Vec<(DateTime<Utc>, Uuid)>> = HashMap::new();
    if !rows.is_empty() {
        for e in load_edges(conn, flow_run_id).await? {
            if e.relation == "encapsulating" {
                encapsulating
                    .entry(e.child_id)
                    .or_default()
                    .push((e.parent_start, e.parent_id));
            } else {
                parents
                    .entry(e.child_id)
                    .or_default()
                    .push((e.parent_start, e.parent_id));
                children
                    .entry(e.parent_id)
                    .or_default()
                    .push((e.child_start, e.child_id));
            }
        }
    }
    let mut artifacts = load_artifacts(conn, flow_run_id, max_artifacts).await?;
    let states = load_states(conn, flow_run_id).await?;

    let mut nodes = Vec::with_capacity(rows.len());
    let mut root_node_ids = Vec::new();
    for row in rows {
        let kind = match row.kind.as_str() {
            "flow-run" => NodeKind::FlowRun,
            _ => NodeKind::TaskRun,
        };
        let state_type = row
            .state_type
            .map(|s| {
                s.parse::<StateType>()
                    .map_err(|e| QueryError::UnexpectedValue {
                        table: match kind {
                            NodeKind::FlowRun => "flow_run",
                            NodeKind::TaskRun => "task_run",
                        },
                        column: "state_type",
                        value: e.label,
                    })
            })
            .transpose()?;
        let node_parents = ordered(parents.remove(&row.id).unwrap_or_default());
        if node_parents.is_empty() {
            root_node_ids.push(row.id);
        }
        let node = Node {
            kind,
            id: row.id,
            label: row.label,
            state_type,
            start_time: row.start_time,
            end_time: row.end_time,
            parents: node_parents,
            children: ordered(children.remove(&row.id).unwrap_or_default()),
            encapsulating: ordered(encapsulating.remove(&row.id).unwrap_or_default()),
            artifacts: artifacts.remove(&Some(row.id)).unwrap_or_default(),
        };
        nodes.push((row.id, node));
    }
    Ok(Graph {
        start_time: start.or(expected),
        end_time,
        root_node_ids,
        nodes,
        artifacts: artifacts.remove(&None).unwrap_or_default(),
        states,
    })
}
