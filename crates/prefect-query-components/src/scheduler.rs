//! The scheduler's bulk path (spec §8.2 `set_state_id_on_inserted_flow_runs_statement`):
//! insert runs, insert their states, point the runs at their states.

use crate::QueryResult;
use prefect_orm::access::{NewRecord, OnConflict};
use crate::sql::{Bind, Binder, SqlDialect, execute_raw};
use prefect_db_config::Conn;
use prefect_orm::models::{NewFlowRun, NewFlowRunState};
use std::collections::HashSet;
use uuid::Uuid;

/// Runs and states per statement: keeps every statement well under both dialects' bind limits
/// (SQLite 32,766, PostgreSQL 65,535).
const CHUNK: usize = 5_000;

/// `UPDATE flow_run SET state_id = <the given state of that run>` for the given runs. One
/// statement on both dialects (Prefect's SQLite form): a run none of whose states is among
/// `state_ids` keeps its `state_id` (as Prefect's PostgreSQL form); a run with several is
/// pointed at the newest (`timestamp`, then id). `updated` is set to now, as Prefect's
/// `onupdate` does. Returns the number of runs updated.
pub(crate) async fn set_state_id_statement(
    conn: &mut Conn<'_>,
    flow_run_ids: &[Uuid],
    state_ids: &[Uuid],
) -> QueryResult<usize> {
    if flow_run_ids.is_empty() || state_ids.is_empty() {
        return Ok(0);
    }
    let mut b = Binder::new(SqlDialect(conn.dialect()));
    let now = b.bind(Bind::Time(prefect_orm::types::now()));
    let runs = b.bind_list(flow_run_ids.iter().copied().map(Bind::Uuid));
    let states = b.bind_list(state_ids.iter().copied().map(Bind::Uuid));
    let pick = format!(
        "SELECT s.id FROM flow_run_state s WHERE s.flow_run_id = flow_run.id AND s.id IN ({states}) \
         ORDER BY s.timestamp DESC, s.id DESC LIMIT 1"
    );
    let sql = format!(
        "UPDATE flow_run SET state_id = ({pick}), updated = {now} \
         WHERE flow_run.id IN ({runs}) AND EXISTS ({pick})"
    );
    // Its text grows with both lists: kept prepared for batch sizes worth it.
    let keep = crate::prepared::worth_preparing(flow_run_ids.len()) && crate::prepared::worth_preparing(state_ids.len());
    execute_raw(conn, sql, b.binds, keep).await
}

/// The whole bulk path: inserts `runs` (skipping those that conflict on
/// `(flow_id, idempotency_key)`), inserts the `states` of the runs actually inserted, and points
/// those runs at their states. Returns the ids of the inserted runs, in input order.
///
/// Run it inside a transaction: the three statements belong together.
pub(crate) async fn insert_runs_with_states(
    conn: &mut Conn<'_>,
    runs: Vec<NewFlowRun>,
    states: Vec<NewFlowRunState>,
) -> QueryResult<Vec<Uuid>> {
    let mut inserted = Vec::with_capacity(runs.len());
    let mut runs = runs;
    while !runs.is_empty() {
        let rest = runs.split_off(runs.len().min(CHUNK));
        inserted.extend(NewFlowRun::insert_rows_returning_ids(conn, runs, OnConflict::DoNothing).await?);
        runs = rest;
    }
    let inserted_set: HashSet<Uuid> = inserted.iter().copied().collect();
    let mut states: Vec<NewFlowRunState> = states
        .into_iter()
        .filter(|s| inserted_set.contains(&s.flow_run_id))
        .collect();
    while !states.is_empty() {
        let rest = states.split_off(states.len().min(CHUNK));
        let run_ids: Vec<Uuid> = states
            .iter()
            .map(|s| s.flow_run_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let state_ids = NewFlowRunState::insert_rows_returning_ids(conn, states, OnConflict::Fail).await?;
        set_state_id_statement(conn, &run_ids, &state_ids).await?;
        states = rest;
    }
    Ok(inserted)
}
