//! A minimal server crate using prefect-db: `/health`, `/ready` (503 while the database does not
//! answer), flows (`POST /flows`, `GET /flows/{id}`), flow runs (`POST /flow_runs` creates the
//! flow when missing, `GET`, `PATCH` and `DELETE /flow_runs/{id}`, and Prefect's
//! `POST /flow_runs/filter` body) and variables (`POST /variables`), and `/metrics` in
//! Prometheus' text when `server.metrics_enabled` is on. Handlers receive the database handle as
//! an extractor and use only the layer's public API; writes run again on transient failures
//! (`transaction_retrying`); the layer's errors map to 404/409/422/503 (with `Retry-After`)/500.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use prefect_db_interface::prelude::*;
use serde::{Deserialize, Serialize};

/// The router with `/metrics` added: the Prometheus text of `metrics` (the recorder the
/// process installed; the layer records into it when `server.metrics_enabled` is on), also at
/// Prefect's path `/api/metrics`.
pub fn app_with_metrics(db: Database, metrics: PrometheusHandle) -> Router {
    let again = metrics.clone();
    app(db)
        .route("/metrics", get(move || async move { prometheus_text(&metrics) }))
        .route("/api/metrics", get(move || async move { prometheus_text(&again) }))
}

fn prometheus_text(metrics: &PrometheusHandle) -> impl IntoResponse + use<> {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics.render())
}

/// Installs the process's Prometheus recorder, with histogram buckets (seconds) that separate
/// sub-millisecond statements from slow ones. Once per process.
pub fn install_prometheus() -> anyhow::Result<PrometheusHandle> {
    const BUCKETS: &[f64] = &[0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0];
    Ok(PrometheusBuilder::new().set_buckets(BUCKETS)?.install_recorder()?)
}

/// The router, with the database handle as its state.
pub fn app(db: Database) -> Router {
    Router::new()
        .route("/health", get(|| async { StatusCode::OK }))
        .route("/ready", get(ready))
        .route("/flows", post(create_flow))
        .route("/flows/{id}", get(read_flow))
        .route("/flow_runs", post(create_flow_run))
        .route("/flow_runs/filter", post(filter_flow_runs))
        .route("/flow_runs/{id}", get(read_flow_run).patch(update_flow_run).delete(delete_flow_run))
        .route("/variables", post(create_variable))
        .with_state(db)
}

async fn ready(db: Database) -> StatusCode {
    if db.is_db_connectable().await { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

/// The layer's error as an HTTP answer: `{"detail": …}` with the status of its kind; 503 says
/// when to retry.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.0.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::InvalidInput => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorKind::Unavailable | ErrorKind::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = Json(serde_json::json!({ "detail": self.0.to_string() }));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            (status, [(header::RETRY_AFTER, "1")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// What `POST /flows` takes.
#[derive(Debug, Deserialize)]
pub struct CreateFlow {
    /// The flow's name.
    pub name: String,
}

/// A flow as the endpoints return it.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct FlowView {
    /// The flow's id.
    pub id: Uuid,
    /// The flow's name.
    pub name: String,
}

async fn create_flow(db: Database, Json(body): Json<CreateFlow>) -> ApiResult<(StatusCode, Json<FlowView>)> {
    let name = body.name;
    let created = db.transaction_retrying(TxMode::Write, async move |tx| tx.create_flow(NewFlow::new(name)).await).await?;
    let status = if created.inserted { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(FlowView { id: created.row.id, name: created.row.name })))
}

async fn read_flow(db: Database, Path(id): Path<Uuid>) -> ApiResult<Json<FlowView>> {
    let flow: Flow = db.get(id).await?;
    Ok(Json(FlowView { id: flow.id, name: flow.name }))
}

/// What `POST /flow_runs` takes.
#[derive(Debug, Clone, Deserialize)]
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
    pub id: Uuid,
    /// The run's name.
    pub name: String,
    /// The flow's id.
    pub flow_id: Uuid,
    /// The run's parameters.
    pub parameters: serde_json::Value,
    /// The run's state type (`SCHEDULED`, `RUNNING`, …), when it has a state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_type: Option<StateType>,
    /// The run's state name, when it has a state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_name: Option<String>,
}

impl From<FlowRun> for FlowRunView {
    fn from(run: FlowRun) -> Self {
        FlowRunView {
            id: run.id,
            name: run.name,
            flow_id: run.flow_id,
            parameters: run.parameters,
            state_type: run.state_type,
            state_name: run.state_name,
        }
    }
}

async fn create_flow_run(db: Database, Json(body): Json<CreateFlowRun>) -> ApiResult<Json<FlowRunView>> {
    let run = db
        .transaction_retrying(TxMode::Write, async move |tx| {
            let flow = tx.create_flow(NewFlow::new(body.flow_name)).await?.row;
            let mut run = NewFlowRun::new(body.name, flow.id);
            run.parameters = Some(body.parameters);
            Ok(tx.create_flow_run(run).await?.row)
        })
        .await?;
    Ok(Json(run.into()))
}

async fn read_flow_run(db: Database, Path(id): Path<Uuid>) -> ApiResult<Json<FlowRunView>> {
    let run: FlowRun = db.get(id).await?;
    Ok(Json(run.into()))
}

/// What `PATCH /flow_runs/{id}` takes: the fields to change.
#[derive(Debug, Deserialize)]
pub struct UpdateFlowRun {
    /// A new name.
    pub name: Option<String>,
    /// A new state type.
    pub state_type: Option<StateType>,
    /// A new state name.
    pub state_name: Option<String>,
}

async fn update_flow_run(db: Database, Path(id): Path<Uuid>, Json(body): Json<UpdateFlowRun>) -> ApiResult<Json<FlowRunView>> {
    let mut changes = FlowRunChangeset::new();
    changes.name = body.name;
    if let Some(state_type) = body.state_type {
        changes.state_type = Some(Some(state_type));
        changes.state_timestamp = Some(Some(changes.updated));
    }
    changes.state_name = body.state_name.map(Some);
    let run = db.update(id, changes).await?;
    Ok(Json(run.into()))
}

async fn delete_flow_run(db: Database, Path(id): Path<Uuid>) -> ApiResult<StatusCode> {
    db.delete::<FlowRun>(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `POST /variables` takes.
#[derive(Debug, Deserialize)]
pub struct CreateVariable {
    /// The variable's name (unique).
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: serde_json::Value,
}

async fn create_variable(db: Database, Json(body): Json<CreateVariable>) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    let mut row = NewVariable::new(body.name);
    row.value = Some(body.value);
    let variable = db.transaction_retrying(TxMode::Write, async move |tx| tx.create_variable(row).await).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({ "id": variable.id, "name": variable.name, "value": variable.value }))))
}

/// Prefect's `POST /flow_runs/filter`: the body as Prefect's API takes it (filters, sort, limit,
/// offset); a body Prefect refuses is a 422 naming the field.
async fn filter_flow_runs(db: Database, Json(body): Json<serde_json::Value>) -> ApiResult<Json<Vec<FlowRunView>>> {
    let request: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &body).map_err(Error::from)?;
    let runs = db.transaction(TxMode::Read, async |tx| Ok(read::flow_runs(tx, &request).await?)).await?;
    Ok(Json(runs.into_iter().map(FlowRunView::from).collect()))
}
