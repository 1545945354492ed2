//! Typed loads shared by the query components.

use crate::QueryResult;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prefect_db_config::{Conn, dispatch};
use prefect_orm::models::FlowRun;
use prefect_orm::schema::flow_run;
use prefect_orm::types::Val;
use std::collections::HashMap;
use uuid::Uuid;

/// The flow runs with these ids, by id (missing ids are absent).
pub(crate) async fn flow_runs_by_id(
    conn: &mut Conn<'_>,
    ids: Vec<Uuid>,
) -> QueryResult<HashMap<Uuid, FlowRun>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let keys: Vec<Val<Uuid>> = ids.into_iter().map(Val).collect();
    let rows: Vec<FlowRun> = dispatch!(conn, |c| {
        flow_run::table
            .filter(flow_run::id.eq_any(keys))
            .select(FlowRun::as_select())
            .load(c)
            .await
    })?;
    Ok(rows.into_iter().map(|r| (r.id, r)).collect())
}
