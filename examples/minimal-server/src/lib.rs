//! A minimal server crate using prefect-db: `/health`, `/ready` (503 while the database does not
//! answer), `POST /flow_runs` (creates a flow and a flow run) and `GET /flow_runs/{id}`.
//! Handlers receive the database handle as an extractor.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::RunQueryDsl;
use prefect_db_config::{DbError, TxMode, dispatch};
use prefect_db_interface::Database;
use prefect_orm::models::{FlowRun, NewFlow, NewFlowRun};
use prefect_orm::schema::{flow, flow_run};
use prefect_orm::types::Val;
use serde::{Deserialize, Serialize};

/// The router, with the database handle as its state.
pub fn app(db: Database) -> Router {
    Router::new()
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/ready", get(ready))
        .route("/flow_runs", post(create_flow_run))
        .route("/flow_runs/{id}", get(read_flow_run))
        .with_state(db)
}

async fn ready(db: Database) -> StatusCode {
    if db.is_db_connectable().await { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

/// What `POST /flow_runs` takes.
#[derive(Debug, Deserialize)]
pub struct CreateFlowRun {
    /// The flow's name (created when missing).
    pub flow_name: String,
    /// The run's name.
    pub name: String,
    /// The run's parameters.
    #[serde(default)]
    pub parameters: serde_json::Value,
}

/// A flow run as the endpoints return it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FlowRunView {
    /// The run's id.
    pub id: uuid::Uuid,
    /// The run's name.
    pub name: String,
    /// The flow's id.
    pub flow_id: uuid::Uuid,
    /// The run's parameters.
    pub parameters: serde_json::Value,
}

impl From<FlowRun> for FlowRunView {
    fn from(run: FlowRun) -> Self {
        FlowRunView { id: run.id, name: run.name, flow_id: run.flow_id, parameters: run.parameters }
    }
}

fn internal(e: impl std::fmt::Display) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn create_flow_run(db: Database, Json(body): Json<CreateFlowRun>) -> Result<Json<FlowRunView>, (StatusCode, String)> {
    let run = db
        .transaction(TxMode::Write, async |tx| {
            // Prefect's flow upsert: insert by name, do nothing on conflict, then read the id.
            let new_flow = NewFlow::new(body.flow_name.clone());
            dispatch!(tx, |c| diesel::insert_into(flow::table).values(&new_flow).on_conflict(flow::name).do_nothing().execute(c).await)?;
            let flow_id: uuid::Uuid = dispatch!(tx, |c| flow::table.filter(flow::name.eq(&body.flow_name)).select(flow::id).first::<Val<uuid::Uuid>>(c).await)?.0;
            let mut new_run = NewFlowRun::new(body.name.clone(), flow_id);
            new_run.parameters = Some(body.parameters.clone());
            let run: FlowRun = dispatch!(tx, |c| diesel::insert_into(flow_run::table).values(&new_run).returning(FlowRun::as_returning()).get_result(c).await)?;
            Ok::<_, DbError>(run)
        })
        .await
        .map_err(internal)?;
    Ok(Json(run.into()))
}

async fn read_flow_run(db: Database, Path(id): Path<uuid::Uuid>) -> Result<Json<FlowRunView>, (StatusCode, String)> {
    let mut pooled = db.connection().await.map_err(internal)?;
    let mut conn = pooled.conn();
    let found: Option<FlowRun> = dispatch!(&mut conn, |c| flow_run::table
        .filter(flow_run::id.eq(Val(id)))
        .select(FlowRun::as_select())
        .first(c)
        .await
        .optional())
    .map_err(internal)?;
    found.map(|run| Json(run.into())).ok_or((StatusCode::NOT_FOUND, format!("flow run {id} not found")))
}
