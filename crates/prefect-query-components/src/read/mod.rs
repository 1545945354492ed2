//! Prefect's read API: the filter, sort and paging bodies of its REST read endpoints as Rust
//! values, read from exactly the JSON Prefect 3.9.1 accepts (and refused with the errors it
//! gives), and the reads with Prefect's answers — filter, count, paginate, run history — compiled
//! once for both dialects.
//!
//! A server passes a request body straight in:
//!
//! ```no_run
//! use prefect_query_components::read::{self, Endpoint, FlowRunSort, Read};
//! # async fn demo(conn: &mut prefect_db_config::Conn<'_>, body: serde_json::Value) -> Result<(), Box<dyn std::error::Error>> {
//! let request: Read<FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &body)?; // 422 when Prefect says 422
//! let runs = read::flow_runs(conn, &request).await?;                             // Vec<FlowRun>, Prefect's order
//! # let _ = runs; Ok(()) }
//! ```
//!
//! # One meaning on both dialects (Prefect's PostgreSQL answers)
//!
//! Prefect's SQLite and PostgreSQL answers differ in 38 of the 464 golden cases; this module
//! gives Prefect's PostgreSQL answer on both:
//! - **`like_`, `startswith_` and log text search fold case over all of Unicode** on SQLite too
//!   (through the `prefect_lower` function every SQLite connection of the layer has; SQLite's own
//!   `lower` folds ASCII only). `\` escapes in `like_` patterns on both, as in PostgreSQL.
//! - **NULLs sort last ascending and first descending** on both (SQLite's default is the
//!   opposite).
//! - **Run history sums are exact to the microsecond** on both (Prefect's SQLite version truncates
//!   each run to whole seconds), and **bucket edges are exact** (its SQLite version rounds to
//!   milliseconds, moving a run at `…59.999999` into the next bucket).
//!
//! # Where this differs from Prefect 3.9.1
//! - Rows with equal sort keys come back ordered by id (Prefect leaves their order unspecified),
//!   so offset pages never repeat or skip a row between requests.
//! - History sums use one `now` taken when the request starts (Prefect: the database's `now()`).
//! - The v2 concurrency limits' decayed `active_slots` is computed with that `now` too.
//!
//! # Prefect behaviours kept (easy to miss)
//! `any_: []` matches nothing, `not_any_` leaves out NULLs, `like_` treats `%`/`_` as wildcards,
//! an empty `startswith_` list adds no condition, a present but empty filter of another entity
//! still requires a related row, a task run's `flow_run_id` filter defaults to `IS NOT NULL`,
//! block documents leave out anonymous ones unless `is_anonymous` is `null` (and under `or_` that
//! default is one of the OR'ed terms), the deprecated deployment `concurrency_limit` filter adds
//! nothing, flow runs' `start_time` bounds compare the expected start of runs not started, and
//! the v1 concurrency-limit listing merges the v2 `tag:` limits first.
//!
//! # Beyond Prefect: keyset pages
//! [`flow_runs_page`], [`task_runs_page`] and [`logs_page`] return a [`Cursor`] for the next page;
//! a page after a cursor starts where the previous one ended (a condition on the sort key and id,
//! not an offset), so its cost does not grow with the page's depth, and rows inserted meanwhile
//! never make a row repeat.

pub mod body;
pub mod filters;
pub mod sorts;
mod split;
mod text_search;

pub use body::{BodyError, Issue};
pub use filters::{
    ArtifactFilter, BlockDocumentFilter, BlockSchemaFilter, BlockTypeFilter, DeploymentFilter, FlowFilter,
    FlowRunFilter, FlowRunStateFilter, Leaf, LogFilter, Operator, TaskRunFilter, TimeLeaf, VariableFilter,
    WorkPoolFilter, WorkQueueFilter, WorkerFilter,
};
pub use sorts::{
    ArtifactSort, BlockDocumentSort, DeploymentSort, FixedOrder, FlowRunSort, FlowSort, LogSort, Sort, TaskRunSort,
    VariableSort,
};

pub use crate::sql::Bind;
use crate::sql::{Binder, SqlDialect, bucket_index_sql, load_raw};
use crate::{QueryError, QueryResult};
use body::Ctx;
use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use filters::Sql;
use prefect_db_config::Conn;
use prefect_orm::access::Record;
use prefect_orm::models::{
    Artifact, ArtifactCollection, BlockDocument, BlockSchema, BlockType, ConcurrencyLimitV2, Deployment, Flow, FlowRun,
    Log, SavedSearch, TaskRun, Variable, WorkPool, WorkQueue, Worker,
};
use serde_json::Value;
use uuid::Uuid;

/// Prefect's default and largest `limit` (`PREFECT_SERVER_API_DEFAULT_LIMIT`).
pub const DEFAULT_LIMIT: i64 = 200;

/// The filters a read body may carry (each endpoint accepts some of them; see [`Endpoint`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Filters {
    /// `flows`.
    pub flows: Option<FlowFilter>,
    /// `flow_runs`.
    pub flow_runs: Option<FlowRunFilter>,
    /// `task_runs`.
    pub task_runs: Option<TaskRunFilter>,
    /// `deployments`.
    pub deployments: Option<DeploymentFilter>,
    /// `work_pools`.
    pub work_pools: Option<WorkPoolFilter>,
    /// `work_pool_queues` (`work_queues` on the history and queue endpoints).
    pub work_queues: Option<WorkQueueFilter>,
    /// `workers`.
    pub workers: Option<WorkerFilter>,
    /// `logs`.
    pub logs: Option<LogFilter>,
    /// `artifacts` (an `ArtifactCollectionFilter` on the `latest` endpoints).
    pub artifacts: Option<ArtifactFilter>,
    /// `variables`.
    pub variables: Option<VariableFilter>,
    /// `block_documents` (`None`: the endpoint's default, named documents only).
    pub block_documents: Option<BlockDocumentFilter>,
    /// `block_types`.
    pub block_types: Option<BlockTypeFilter>,
    /// `block_schemas`.
    pub block_schemas: Option<BlockSchemaFilter>,
}

/// A list, count or paginate request: filters, sort, limit and offset (`page` for paginate,
/// turned into the offset).
#[derive(Debug, Clone, PartialEq)]
pub struct Read<S> {
    /// The filters.
    pub filters: Filters,
    /// The sort.
    pub sort: S,
    /// At most this many rows (0..=200).
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
    /// The page (paginate), from 1.
    pub page: i64,
    /// `include_secrets` (block documents).
    pub include_secrets: bool,
}

impl<S: Sort> Default for Read<S> {
    fn default() -> Self {
        Read { filters: Filters::default(), sort: S::DEFAULT, limit: DEFAULT_LIMIT, offset: 0, page: 1, include_secrets: false }
    }
}

/// The sort of an endpoint without a `sort` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NoSort;

impl Sort for NoSort {
    const VALUES: &'static [(&'static str, Self)] = &[];
    const DEFAULT: Self = NoSort;
    fn terms(self) -> &'static [sorts::SortTerm] {
        &[]
    }
    fn name(self) -> &'static str {
        ""
    }
}

/// A run-history request.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRead {
    /// The filters.
    pub filters: Filters,
    /// `history_start`.
    pub start: DateTime<Utc>,
    /// `history_end`.
    pub end: DateTime<Utc>,
    /// `history_interval_seconds`, to the microsecond (at least one second).
    pub interval: TimeDelta,
}

macro_rules! endpoints {
    ($($variant:ident = $path:literal, $kind:ident, [$($key:literal),*];)+) => {
        /// A read endpoint of Prefect's REST API.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Endpoint {
            $(
                #[doc = concat!("`POST /api", $path, "`.")]
                $variant,
            )+
        }

        impl Endpoint {
            /// Every endpoint.
            pub const ALL: &'static [Endpoint] = &[$(Endpoint::$variant),+];

            /// Its path after `/api` (`{name}` for a work pool's name).
            pub const fn path(self) -> &'static str {
                match self { $(Endpoint::$variant => $path),+ }
            }

            /// What it answers.
            pub const fn kind(self) -> EndpointKind {
                match self { $(Endpoint::$variant => EndpointKind::$kind),+ }
            }

            /// The body parameters it accepts (other top-level keys are ignored, as Prefect does).
            pub const fn keys(self) -> &'static [&'static str] {
                match self { $(Endpoint::$variant => &[$($key),*]),+ }
            }
        }
    };
}

/// What an endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointKind {
    /// A list of rows.
    Filter,
    /// A count.
    Count,
    /// `{results, count, limit, pages, page}`.
    Paginate,
    /// Run history buckets.
    History,
}

endpoints! {
    FlowsFilter = "/flows/filter", Filter, ["limit", "offset", "flows", "flow_runs", "task_runs", "deployments", "work_pools", "sort"];
    FlowsCount = "/flows/count", Count, ["flows", "flow_runs", "task_runs", "deployments", "work_pools"];
    FlowsPaginate = "/flows/paginate", Paginate, ["limit", "page", "flows", "flow_runs", "task_runs", "deployments", "work_pools", "sort"];
    FlowRunsFilter = "/flow_runs/filter", Filter, ["sort", "limit", "offset", "flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_pool_queues"];
    FlowRunsCount = "/flow_runs/count", Count, ["flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_pool_queues"];
    FlowRunsPaginate = "/flow_runs/paginate", Paginate, ["sort", "limit", "page", "flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_pool_queues"];
    FlowRunsHistory = "/flow_runs/history", History, ["history_start", "history_end", "history_interval_seconds", "flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_queues"];
    TaskRunsFilter = "/task_runs/filter", Filter, ["sort", "limit", "offset", "flows", "flow_runs", "task_runs", "deployments"];
    TaskRunsCount = "/task_runs/count", Count, ["flows", "flow_runs", "task_runs", "deployments"];
    TaskRunsPaginate = "/task_runs/paginate", Paginate, ["sort", "limit", "page", "flows", "flow_runs", "task_runs", "deployments"];
    TaskRunsHistory = "/task_runs/history", History, ["history_start", "history_end", "history_interval_seconds", "flows", "flow_runs", "task_runs", "deployments"];
    DeploymentsFilter = "/deployments/filter", Filter, ["limit", "offset", "flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_pool_queues", "sort"];
    DeploymentsCount = "/deployments/count", Count, ["flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_pool_queues"];
    DeploymentsPaginate = "/deployments/paginate", Paginate, ["limit", "page", "flows", "flow_runs", "task_runs", "deployments", "work_pools", "work_pool_queues", "sort"];
    LogsFilter = "/logs/filter", Filter, ["limit", "offset", "logs", "sort"];
    ArtifactsFilter = "/artifacts/filter", Filter, ["sort", "limit", "offset", "artifacts", "flow_runs", "task_runs", "flows", "deployments"];
    ArtifactsCount = "/artifacts/count", Count, ["artifacts", "flow_runs", "task_runs", "flows", "deployments"];
    LatestArtifactsFilter = "/artifacts/latest/filter", Filter, ["sort", "limit", "offset", "artifacts", "flow_runs", "task_runs", "flows", "deployments"];
    LatestArtifactsCount = "/artifacts/latest/count", Count, ["artifacts", "flow_runs", "task_runs", "flows", "deployments"];
    VariablesFilter = "/variables/filter", Filter, ["limit", "offset", "variables", "sort"];
    VariablesCount = "/variables/count", Count, ["variables"];
    BlockDocumentsFilter = "/block_documents/filter", Filter, ["limit", "block_documents", "block_types", "block_schemas", "include_secrets", "sort", "offset"];
    BlockDocumentsCount = "/block_documents/count", Count, ["block_documents", "block_types", "block_schemas"];
    BlockTypesFilter = "/block_types/filter", Filter, ["block_types", "block_schemas", "limit", "offset"];
    BlockSchemasFilter = "/block_schemas/filter", Filter, ["block_schemas", "limit", "offset"];
    WorkPoolsFilter = "/work_pools/filter", Filter, ["work_pools", "limit", "offset"];
    WorkPoolsCount = "/work_pools/count", Count, ["work_pools"];
    WorkPoolQueuesFilter = "/work_pools/{name}/queues/filter", Filter, ["work_queues", "limit", "offset"];
    WorkPoolWorkersFilter = "/work_pools/{name}/workers/filter", Filter, ["workers", "limit", "offset"];
    ConcurrencyLimitsFilter = "/concurrency_limits/filter", Filter, ["limit", "offset"];
    ConcurrencyLimitsV2Filter = "/v2/concurrency_limits/filter", Filter, ["limit", "offset"];
    SavedSearchesFilter = "/saved_searches/filter", Filter, ["limit", "offset"];
}

impl Endpoint {
    /// The endpoint of a request path (`/api/flows/filter`, or without `/api`), and the work
    /// pool's name for the queue and worker endpoints.
    pub fn from_path(path: &str) -> Option<(Endpoint, Option<String>)> {
        let path = path.strip_prefix("/api").unwrap_or(path);
        if let Some(rest) = path.strip_prefix("/work_pools/") {
            for (suffix, endpoint) in [("/queues/filter", Endpoint::WorkPoolQueuesFilter), ("/workers/filter", Endpoint::WorkPoolWorkersFilter)] {
                if let Some(name) = rest.strip_suffix(suffix) {
                    return Some((endpoint, Some(percent_decode(name))));
                }
            }
        }
        Endpoint::ALL.iter().find(|e| e.path() == path).map(|e| (*e, None))
    }

}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Some(b) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The parts of a body every kind of request has.
struct Parsed {
    filters: Filters,
    sort: Option<usize>,
    limit: i64,
    offset: i64,
    page: i64,
    include_secrets: bool,
    history: (Option<DateTime<Utc>>, Option<DateTime<Utc>>, Option<f64>),
}

fn parse_body(endpoint: Endpoint, body: &Value, sorts: &[&str]) -> Result<Parsed, BodyError> {
    let mut ctx = Ctx::new();
    let keys = endpoint.keys();
    let empty = serde_json::Map::new();
    let map = match body {
        Value::Object(map) => map,
        Value::Null => &empty,
        _ => {
            for key in keys {
                ctx.at(key, |c| c.error("missing"));
            }
            return Err(ctx.finish(()).err().unwrap_or(BodyError::Invalid { issues: Vec::new() }));
        }
    };
    let get = |key: &str| map.get(key).filter(|v| !v.is_null());
    let mut p = Parsed {
        filters: Filters::default(),
        sort: None,
        limit: DEFAULT_LIMIT,
        offset: 0,
        page: 1,
        include_secrets: false,
        history: (None, None, None),
    };
    // The limit is checked first: out of range, Prefect answers before reading the rest.
    if keys.contains(&"limit") {
        if let Some(v) = get("limit") {
            if let Some(limit) = ctx.at("limit", |c| body::int(c, v)) {
                if limit < 0 {
                    return Err(BodyError::Http { status: 422, detail: "Invalid limit: must be greater than or equal to 0.".to_owned() });
                }
                if limit > DEFAULT_LIMIT {
                    return Err(BodyError::Http {
                        status: 422,
                        detail: format!("Invalid limit: must be less than or equal to {DEFAULT_LIMIT}."),
                    });
                }
                p.limit = limit;
            }
        }
    }
    let latest = matches!(endpoint, Endpoint::LatestArtifactsFilter | Endpoint::LatestArtifactsCount);
    for key in keys {
        let Some(v) = get(key) else {
            if key.starts_with("history_") {
                ctx.at(key, |c| c.error("missing"));
            }
            continue;
        };
        let f = &mut p.filters;
        ctx.at(key, |c| match *key {
            "limit" => {}
            "offset" => p.offset = body::int_ge(c, v, 0).unwrap_or(0),
            "page" => p.page = body::int_ge(c, v, 1).unwrap_or(1),
            "sort" => {
                let values: Vec<(&str, usize)> = sorts.iter().enumerate().map(|(i, n)| (*n, i)).collect();
                p.sort = body::one_of(c, v, &values);
            }
            "include_secrets" => p.include_secrets = body::boolean(c, v).unwrap_or(false),
            "history_start" => p.history.0 = body::datetime(c, v),
            "history_end" => p.history.1 = body::datetime(c, v),
            "history_interval_seconds" => p.history.2 = body::float(c, v),
            "flows" => f.flows = FlowFilter::parse(c, v),
            "flow_runs" => f.flow_runs = FlowRunFilter::parse(c, v),
            "task_runs" => f.task_runs = TaskRunFilter::parse(c, v),
            "deployments" => f.deployments = DeploymentFilter::parse(c, v),
            "work_pools" => f.work_pools = WorkPoolFilter::parse(c, v),
            "work_pool_queues" | "work_queues" => f.work_queues = WorkQueueFilter::parse(c, v),
            "workers" => f.workers = WorkerFilter::parse(c, v),
            "logs" => f.logs = LogFilter::parse(c, v),
            "artifacts" => f.artifacts = ArtifactFilter::parse(c, v, latest),
            "variables" => f.variables = VariableFilter::parse(c, v),
            "block_documents" => f.block_documents = BlockDocumentFilter::parse(c, v),
            "block_types" => f.block_types = BlockTypeFilter::parse(c, v),
            "block_schemas" => f.block_schemas = BlockSchemaFilter::parse(c, v),
            _ => {}
        });
    }
    ctx.finish(p)
}

impl<S: Sort> Read<S> {
    /// Reads the body of a list, count or paginate request of `endpoint` as Prefect does:
    /// Prefect's defaults, its validation errors (every one, with its location), and its
    /// `limit` check (422 outside 0..=200). Top-level keys the endpoint does not take are
    /// ignored, as in Prefect.
    pub fn parse(endpoint: Endpoint, body: &Value) -> Result<Self, BodyError> {
        let names: Vec<&str> = S::VALUES.iter().map(|(n, _)| *n).collect();
        let p = parse_body(endpoint, body, &names)?;
        let offset = if endpoint.kind() == EndpointKind::Paginate { (p.page - 1).saturating_mul(p.limit) } else { p.offset };
        Ok(Read {
            filters: p.filters,
            sort: p.sort.and_then(|i| S::VALUES.get(i)).map_or(S::DEFAULT, |(_, s)| *s),
            limit: p.limit,
            offset,
            page: p.page,
            include_secrets: p.include_secrets,
        })
    }
}

impl HistoryRead {
    /// Reads the body of a history request of `endpoint` as Prefect does (the three history
    /// fields are required; an interval under one second is refused with Prefect's 422).
    pub fn parse(endpoint: Endpoint, body: &Value) -> Result<Self, BodyError> {
        let p = parse_body(endpoint, body, &[])?;
        let (Some(start), Some(end), Some(seconds)) = p.history else {
            return Err(BodyError::Invalid { issues: Vec::new() });
        };
        let micros = (seconds * 1_000_000.0).round();
        if !(micros >= 1_000_000.0) || micros > 1e17 {
            return Err(BodyError::Http { status: 422, detail: "History interval must not be less than 1 second.".to_owned() });
        }
        Ok(HistoryRead { filters: p.filters, start, end, interval: TimeDelta::microseconds(micros as i64) })
    }
}

// ---------------------------------------------------------------------------------------------
// Where clauses per entity

fn dialect(conn: &Conn<'_>) -> SqlDialect {
    SqlDialect(conn.dialect())
}

fn where_flows(s: &mut Sql<'_>, f: &Filters) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(x) = &f.flows {
        w.push(x.sql(s, "flow"));
    }
    if f.deployments.is_some() || f.work_pools.is_some() {
        let mut from = "deployment".to_owned();
        let mut cond = vec!["deployment.flow_id = flow.id".to_owned()];
        if let Some(x) = &f.deployments {
            cond.push(x.sql(s, "deployment"));
        }
        if let Some(x) = &f.work_pools {
            from.push_str(" JOIN work_queue ON work_queue.id = deployment.work_queue_id JOIN work_pool ON work_pool.id = work_queue.work_pool_id");
            cond.push(x.sql(s, "work_pool"));
        }
        w.push(format!("EXISTS (SELECT 1 FROM {from} WHERE {})", cond.join(" AND ")));
    }
    if f.flow_runs.is_some() || f.task_runs.is_some() {
        let mut from = "flow_run".to_owned();
        let mut cond = vec!["flow_run.flow_id = flow.id".to_owned()];
        if let Some(x) = &f.flow_runs {
            cond.push(x.sql(s, "flow_run"));
        }
        if let Some(x) = &f.task_runs {
            from.push_str(" JOIN task_run ON task_run.flow_run_id = flow_run.id");
            cond.push(x.sql(s, "task_run"));
        }
        w.push(format!("EXISTS (SELECT 1 FROM {from} WHERE {})", cond.join(" AND ")));
    }
    w
}

fn where_flow_runs(s: &mut Sql<'_>, f: &Filters) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(x) = &f.flow_runs {
        w.push(x.sql(s, "flow_run"));
    }
    if let Some(x) = &f.deployments {
        let c = x.sql(s, "deployment");
        w.push(format!("EXISTS (SELECT 1 FROM deployment WHERE deployment.id = flow_run.deployment_id AND {c})"));
    }
    if let Some(x) = &f.work_pools {
        let c = x.sql(s, "work_pool");
        w.push(format!(
            "EXISTS (SELECT 1 FROM work_queue JOIN work_pool ON work_pool.id = work_queue.work_pool_id \
             WHERE work_queue.id = flow_run.work_queue_id AND {c})"
        ));
    }
    if let Some(x) = &f.work_queues {
        let c = x.sql(s, "work_queue");
        w.push(format!("EXISTS (SELECT 1 FROM work_queue WHERE work_queue.id = flow_run.work_queue_id AND {c})"));
    }
    if f.flows.is_some() || f.task_runs.is_some() {
        let mut from = Vec::new();
        let mut cond = Vec::new();
        if let Some(x) = &f.flows {
            from.push("flow");
            cond.push("flow.id = flow_run.flow_id".to_owned());
            cond.push(x.sql(s, "flow"));
        }
        if let Some(x) = &f.task_runs {
            from.push("task_run");
            cond.push("task_run.flow_run_id = flow_run.id".to_owned());
            cond.push(x.sql(s, "task_run"));
        }
        w.push(format!("EXISTS (SELECT 1 FROM {} WHERE {})", from.join(", "), cond.join(" AND ")));
    }
    w
}

fn where_task_runs(s: &mut Sql<'_>, f: &Filters) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(x) = &f.task_runs {
        w.push(x.sql(s, "task_run"));
    }
    let only_ids = f.flow_runs.as_ref().and_then(|fr| {
        let only = FlowRunFilter { operator: fr.operator, id: fr.id.clone(), ..FlowRunFilter::default() };
        let ids = fr.id.as_ref()?;
        let any = ids.any_.as_ref().filter(|a| !a.is_empty())?;
        (*fr == only && ids.not_any_.as_ref().is_none_or(Vec::is_empty)).then(|| any.clone())
    });
    if let (Some(any), None, None) = (only_ids, &f.flows, &f.deployments) {
        let list = s.b.bind_list(any.into_iter().map(Bind::Uuid));
        w.push(format!("(task_run.flow_run_id IN ({list}))"));
        return w;
    }
    if f.flows.is_some() || f.flow_runs.is_some() || f.deployments.is_some() {
        let mut from = "flow_run".to_owned();
        let mut cond = vec!["flow_run.id = task_run.flow_run_id".to_owned()];
        if let Some(x) = &f.flow_runs {
            cond.push(x.sql(s, "flow_run"));
        }
        if let Some(x) = &f.flows {
            from.push_str(" JOIN flow ON flow.id = flow_run.flow_id");
            cond.push(x.sql(s, "flow"));
        }
        if let Some(x) = &f.deployments {
            from.push_str(" JOIN deployment ON deployment.id = flow_run.deployment_id");
            cond.push(x.sql(s, "deployment"));
        }
        w.push(format!("EXISTS (SELECT 1 FROM {from} WHERE {})", cond.join(" AND ")));
    }
    w
}

fn where_deployments(s: &mut Sql<'_>, f: &Filters) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(x) = &f.deployments {
        w.push(x.sql(s, "deployment"));
    }
    if let Some(x) = &f.flows {
        let c = x.sql(s, "flow");
        w.push(format!("EXISTS (SELECT 1 FROM flow WHERE deployment.flow_id = flow.id AND {c})"));
    }
    if f.flow_runs.is_some() || f.task_runs.is_some() {
        let mut from = "flow_run".to_owned();
        let mut cond = vec!["deployment.id = flow_run.deployment_id".to_owned()];
        if let Some(x) = &f.flow_runs {
            cond.push(x.sql(s, "flow_run"));
        }
        if let Some(x) = &f.task_runs {
            from.push_str(" JOIN task_run ON task_run.flow_run_id = flow_run.id");
            cond.push(x.sql(s, "task_run"));
        }
        w.push(format!("EXISTS (SELECT 1 FROM {from} WHERE {})", cond.join(" AND ")));
    }
    if f.work_pools.is_some() || f.work_queues.is_some() {
        let mut from = "work_queue".to_owned();
        let mut cond = vec!["deployment.work_queue_id = work_queue.id".to_owned()];
        if let Some(x) = &f.work_queues {
            cond.push(x.sql(s, "work_queue"));
        }
        if let Some(x) = &f.work_pools {
            from.push_str(" JOIN work_pool ON work_pool.id = work_queue.work_pool_id");
            cond.push(x.sql(s, "work_pool"));
        }
        w.push(format!("EXISTS (SELECT 1 FROM {from} WHERE {})", cond.join(" AND ")));
    }
    w
}

fn where_artifacts(s: &mut Sql<'_>, f: &Filters, t: &str, collection: bool) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(x) = &f.artifacts {
        w.push(x.sql(s, t, collection));
    }
    if f.flows.is_some() || f.flow_runs.is_some() || f.deployments.is_some() {
        let mut from = "flow_run".to_owned();
        let mut cond = vec![format!("{t}.flow_run_id = flow_run.id")];
        if let Some(x) = &f.flow_runs {
            cond.push(x.sql(s, "flow_run"));
        }
        if let Some(x) = &f.flows {
            from.push_str(" JOIN flow ON flow.id = flow_run.flow_id");
            cond.push(x.sql(s, "flow"));
        }
        if let Some(x) = &f.deployments {
            from.push_str(" JOIN deployment ON deployment.id = flow_run.deployment_id");
            cond.push(x.sql(s, "deployment"));
        }
        w.push(format!("EXISTS (SELECT 1 FROM {from} WHERE {})", cond.join(" AND ")));
    }
    if let Some(x) = &f.task_runs {
        let c = x.sql(s, "task_run");
        w.push(format!("EXISTS (SELECT 1 FROM task_run WHERE {t}.task_run_id = task_run.id AND {c})"));
    }
    w
}

fn where_block_documents(s: &mut Sql<'_>, f: &Filters) -> Vec<String> {
    let mut w = Vec::new();
    let own = f.block_documents.clone().unwrap_or_default();
    w.push(own.sql(s, "block_document"));
    if let Some(x) = &f.block_types {
        let c = x.sql(s, "block_type");
        w.push(format!("EXISTS (SELECT 1 FROM block_type WHERE block_type.id = block_document.block_type_id AND {c})"));
    }
    if let Some(x) = &f.block_schemas {
        let c = x.sql(s, "block_schema");
        w.push(format!("EXISTS (SELECT 1 FROM block_schema WHERE block_schema.id = block_document.block_schema_id AND {c})"));
    }
    w
}

fn where_block_types(s: &mut Sql<'_>, f: &Filters) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(x) = &f.block_types {
        w.push(x.sql(s, "block_type"));
    }
    if let Some(x) = &f.block_schemas {
        let c = x.sql(s, "block_schema");
        w.push(format!("EXISTS (SELECT 1 FROM block_schema WHERE block_schema.block_type_id = block_type.id AND {c})"));
    }
    w
}

// ---------------------------------------------------------------------------------------------
// Running

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = prefect_orm::types::PUuid)]
    id: Uuid,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn where_sql(w: &[String]) -> String {
    if w.is_empty() { String::new() } else { format!(" WHERE {}", w.join(" AND ")) }
}

/// A statement a read sends, with its bound values: for [`explain`], for logging, or to send the
/// same SQL through another driver. A list read sends its statement for the ids of the page in
/// order, then reads those rows by id ([`Record::find_many`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// The SQL text, with numbered placeholders (`$1` on PostgreSQL, `?1` on SQLite).
    pub sql: String,
    /// The values of the placeholders, in order.
    pub binds: Vec<Bind>,
}

/// The statement of the ids of one page of `table`, in order.
fn page_statement(table: &str, mut b: Binder, w: Vec<String>, order: String, limit: i64, offset: i64) -> Statement {
    let lim = b.bind(Bind::Int(limit));
    let off = b.bind(Bind::Int(offset));
    let sql = format!("SELECT {table}.id AS id FROM {table}{} {order} LIMIT {lim} OFFSET {off}", where_sql(&w));
    Statement { sql, binds: b.binds }
}

/// The rows of a page statement, in its order.
async fn rows_of<R: Record>(conn: &mut Conn<'_>, st: Statement, limit: i64) -> QueryResult<Vec<R>> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let ids: Vec<IdRow> = load_raw(conn, st.sql, st.binds).await?;
    let ids: Vec<Uuid> = ids.into_iter().map(|r| r.id).collect();
    Ok(R::find_many(conn, &ids).await?)
}

/// The ids of one page of `table` in order, then the rows.
async fn page_of<R: Record>(
    conn: &mut Conn<'_>,
    table: &str,
    b: Binder,
    w: Vec<String>,
    order: String,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<R>> {
    rows_of(conn, page_statement(table, b, w, order, limit, offset), limit).await
}

fn count_statement(table: &str, b: Binder, w: Vec<String>) -> Statement {
    Statement { sql: format!("SELECT count(*) AS n FROM {table}{}", where_sql(&w)), binds: b.binds }
}

async fn run_count(conn: &mut Conn<'_>, st: Statement) -> QueryResult<i64> {
    let rows: Vec<CountRow> = load_raw(conn, st.sql, st.binds).await?;
    Ok(rows.first().map_or(0, |r| r.n))
}

async fn count_of(conn: &mut Conn<'_>, table: &str, b: Binder, w: Vec<String>) -> QueryResult<i64> {
    run_count(conn, count_statement(table, b, w)).await
}

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

#[derive(QueryableByName)]
struct SqlitePlanLine {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// The plan the database chooses for `statement` (PostgreSQL `EXPLAIN`, SQLite `EXPLAIN QUERY
/// PLAN`), one line per node: which index each read uses, for plan tests and diagnosis. The
/// statement is planned with its bound values, not run.
///
/// ```no_run
/// use prefect_query_components::read::{self, Endpoint, FlowRunSort, Read};
/// # async fn demo(conn: &mut prefect_db_config::Conn<'_>) -> Result<(), Box<dyn std::error::Error>> {
/// let request: Read<FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &serde_json::json!({"sort": "START_TIME_DESC"}))?;
/// let statement = read::flow_runs_statement(conn.dialect(), &request);
/// for line in read::explain(conn, &statement).await? {
///     println!("{line}");
/// }
/// # Ok(()) }
/// ```
pub async fn explain(conn: &mut Conn<'_>, statement: &Statement) -> QueryResult<Vec<String>> {
    let binds = statement.binds.clone();
    Ok(match conn.dialect() {
        prefect_db_config::Dialect::Postgres => {
            let rows: Vec<PlanLine> = load_raw(conn, format!("EXPLAIN {}", statement.sql), binds).await?;
            rows.into_iter().map(|r| r.line).collect()
        }
        prefect_db_config::Dialect::Sqlite => {
            let rows: Vec<SqlitePlanLine> = load_raw(conn, format!("EXPLAIN QUERY PLAN {}", statement.sql), binds).await?;
            rows.into_iter().map(|r| r.detail).collect()
        }
    })
}

/// A paginated answer (Prefect's `/paginate`).
#[derive(Debug, Clone, PartialEq)]
pub struct Paginated<R> {
    /// The page's rows.
    pub results: Vec<R>,
    /// Rows matching the filters, on every page.
    pub count: i64,
    /// The page size.
    pub limit: i64,
    /// `ceil(count / limit)` (0 when the limit is 0).
    pub pages: i64,
    /// The page asked for (echoed, even past the end).
    pub page: i64,
}

fn paginated<R>(results: Vec<R>, count: i64, limit: i64, page: i64) -> Paginated<R> {
    let pages = if limit > 0 { (count + limit - 1) / limit } else { 0 };
    Paginated { results, count, limit, pages, page }
}

/// `now` in microseconds, bound once per request (the estimated run time of running task runs).
fn ert_sql(b: &mut Binder, t: &str) -> String {
    let d = b.dialect;
    let now = b.bind(Bind::Int(prefect_orm::types::now().timestamp_micros()));
    format!(
        "(CASE WHEN {t}.state_type = 'RUNNING' THEN {} + ({now} - {}) ELSE {} END)",
        d.micros(&format!("{t}.total_run_time")),
        d.micros(&format!("{t}.state_timestamp")),
        d.micros(&format!("{t}.total_run_time"))
    )
}

macro_rules! entity_reads {
    ($(#[$doc:meta])* $list:ident, $count:ident, $paginate:ident, $list_st:ident, $count_st:ident, $Row:ty, $Sort:ty, $table:literal, $where:ident) => {
        $(#[$doc])*
        pub async fn $list(conn: &mut Conn<'_>, request: &Read<$Sort>) -> QueryResult<Vec<$Row>> {
            let st = $list_st(conn.dialect(), request);
            rows_of::<$Row>(conn, st, request.limit).await
        }

        #[doc = concat!("The statement `", stringify!($list), "` sends for the ids of its page (see [`Statement`]).")]
        pub fn $list_st(dialect: prefect_db_config::Dialect, request: &Read<$Sort>) -> Statement {
            if $table == "flow_run" {
                if let Some(st) = split::flow_runs(SqlDialect(dialect), request) {
                    return st;
                }
            }
            let mut b = Binder::new(SqlDialect(dialect));
            let w = $where(&mut Sql { b: &mut b }, &request.filters);
            let extra = if $table == "task_run" { ert_sql(&mut b, $table) } else { String::new() };
            let order = sorts::order_by(b.dialect, $table, request.sort.terms(), &extra);
            page_statement($table, b, w, order, request.limit, request.offset)
        }

        #[doc = concat!("How many rows `", stringify!($list), "` would match without a limit (Prefect's `/count`).")]
        pub async fn $count(conn: &mut Conn<'_>, filters: &Filters) -> QueryResult<i64> {
            let st = $count_st(conn.dialect(), filters);
            run_count(conn, st).await
        }

        #[doc = concat!("The statement `", stringify!($count), "` sends (see [`Statement`]).")]
        pub fn $count_st(dialect: prefect_db_config::Dialect, filters: &Filters) -> Statement {
            if $table == "flow_run" {
                if let Some(st) = split::count_flow_runs(SqlDialect(dialect), filters) {
                    return st;
                }
            }
            let mut b = Binder::new(SqlDialect(dialect));
            let w = $where(&mut Sql { b: &mut b }, filters);
            count_statement($table, b, w)
        }

        #[doc = concat!("One page of `", stringify!($list), "` with the count and the number of pages (Prefect's `/paginate`; the request's `page` and `limit`).")]
        pub async fn $paginate(conn: &mut Conn<'_>, request: &Read<$Sort>) -> QueryResult<Paginated<$Row>> {
            let results = $list(conn, request).await?;
            let count = $count(conn, &request.filters).await?;
            Ok(paginated(results, count, request.limit, request.page))
        }
    };
}

entity_reads!(
    /// `/flows/filter`: flows matching the filters (flows; deployments and work pools through the
    /// flow's deployments; flow runs and task runs through its runs), in the sort's order.
    flows, count_flows, paginate_flows, flows_statement, count_flows_statement, Flow, FlowSort, "flow", where_flows
);
entity_reads!(
    /// `/flow_runs/filter`: flow runs matching the filters, in the sort's order.
    flow_runs, count_flow_runs, paginate_flow_runs, flow_runs_statement, count_flow_runs_statement, FlowRun, FlowRunSort, "flow_run", where_flow_runs
);
entity_reads!(
    /// `/task_runs/filter`: task runs matching the filters, in the sort's order (any flow,
    /// flow-run or deployment filter leaves out task runs without a flow run).
    task_runs, count_task_runs, paginate_task_runs, task_runs_statement, count_task_runs_statement, TaskRun, TaskRunSort, "task_run", where_task_runs
);
entity_reads!(
    /// `/deployments/filter`: deployments matching the filters, in the sort's order.
    deployments, count_deployments, paginate_deployments, deployments_statement, count_deployments_statement, Deployment, DeploymentSort, "deployment", where_deployments
);

/// `/logs/filter`: logs matching the filter, in the sort's order.
pub async fn logs(conn: &mut Conn<'_>, request: &Read<LogSort>) -> QueryResult<Vec<Log>> {
    let st = logs_statement(conn.dialect(), request);
    rows_of::<Log>(conn, st, request.limit).await
}

/// The statement [`logs`] sends for the ids of its page (see [`Statement`]).
pub fn logs_statement(dialect: prefect_db_config::Dialect, request: &Read<LogSort>) -> Statement {
    let mut b = Binder::new(SqlDialect(dialect));
    let mut w = Vec::new();
    let mut order = sorts::order_by(b.dialect, "log", request.sort.terms(), "");
    match request.filters.logs.as_ref().map(|x| (x, x.the_flow_run())) {
        // One run's logs (the run page): the order is led by the run (same rows, same order)
        // and the run pinned so that only the run's indexes serve it; a planner otherwise walks
        // the timestamp index over every run's logs, filtering out all but this run's (PG:
        // 9.5 ms -> 0.8 ms at 41,000 logs, and the walk grows with every run's logs).
        Some((x, Some(run))) => {
            let rest = x.without_flow_run();
            if !rest.is_empty() {
                w.push(rest.sql(&mut Sql { b: &mut b }));
            }
            let p = b.bind(Bind::Uuid(run));
            w.push(b.dialect.pinned("log.flow_run_id", &p));
            let asc = request.sort.terms().first().is_none_or(|t| t.asc);
            order = order.replacen("ORDER BY ", &format!("ORDER BY log.flow_run_id {}, ", if asc { "ASC" } else { "DESC" }), 1);
        }
        Some((x, None)) => w.push(x.sql(&mut Sql { b: &mut b })),
        None => {}
    }
    page_statement("log", b, w, order, request.limit, request.offset)
}

/// `/artifacts/filter`.
pub async fn artifacts(conn: &mut Conn<'_>, request: &Read<ArtifactSort>) -> QueryResult<Vec<Artifact>> {
    let mut b = Binder::new(dialect(conn));
    let w = where_artifacts(&mut Sql { b: &mut b }, &request.filters, "artifact", false);
    let order = sorts::order_by(b.dialect, "artifact", request.sort.terms(), "");
    page_of::<Artifact>(conn, "artifact", b, w, order, request.limit, request.offset).await
}

/// `/artifacts/count`.
pub async fn count_artifacts(conn: &mut Conn<'_>, filters: &Filters) -> QueryResult<i64> {
    let mut b = Binder::new(dialect(conn));
    let w = where_artifacts(&mut Sql { b: &mut b }, filters, "artifact", false);
    count_of(conn, "artifact", b, w).await
}

/// `/artifacts/latest/filter`: the artifact collections (one per key, its newest version).
pub async fn latest_artifacts(conn: &mut Conn<'_>, request: &Read<ArtifactSort>) -> QueryResult<Vec<ArtifactCollection>> {
    let mut b = Binder::new(dialect(conn));
    let w = where_artifacts(&mut Sql { b: &mut b }, &request.filters, "artifact_collection", true);
    let order = sorts::order_by(b.dialect, "artifact_collection", request.sort.terms(), "");
    page_of::<ArtifactCollection>(conn, "artifact_collection", b, w, order, request.limit, request.offset).await
}

/// `/artifacts/latest/count`.
pub async fn count_latest_artifacts(conn: &mut Conn<'_>, filters: &Filters) -> QueryResult<i64> {
    let mut b = Binder::new(dialect(conn));
    let w = where_artifacts(&mut Sql { b: &mut b }, filters, "artifact_collection", true);
    count_of(conn, "artifact_collection", b, w).await
}

fn where_variables(s: &mut Sql<'_>, f: &Filters) -> Vec<String> {
    f.variables.iter().map(|x| x.sql(s, "variable")).collect()
}

/// `/variables/filter`.
pub async fn variables(conn: &mut Conn<'_>, request: &Read<VariableSort>) -> QueryResult<Vec<Variable>> {
    let mut b = Binder::new(dialect(conn));
    let w = where_variables(&mut Sql { b: &mut b }, &request.filters);
    let order = sorts::order_by(b.dialect, "variable", request.sort.terms(), "");
    page_of::<Variable>(conn, "variable", b, w, order, request.limit, request.offset).await
}

/// `/variables/count`.
pub async fn count_variables(conn: &mut Conn<'_>, filters: &Filters) -> QueryResult<i64> {
    let mut b = Binder::new(dialect(conn));
    let w = where_variables(&mut Sql { b: &mut b }, filters);
    count_of(conn, "variable", b, w).await
}

/// `/block_documents/filter` (the stored documents; decrypting and masking their data is the
/// server's).
pub async fn block_documents(conn: &mut Conn<'_>, request: &Read<BlockDocumentSort>) -> QueryResult<Vec<BlockDocument>> {
    let mut b = Binder::new(dialect(conn));
    let w = where_block_documents(&mut Sql { b: &mut b }, &request.filters);
    let order = sorts::order_by(b.dialect, "block_document", request.sort.terms(), "");
    page_of::<BlockDocument>(conn, "block_document", b, w, order, request.limit, request.offset).await
}

/// `/block_documents/count`.
pub async fn count_block_documents(conn: &mut Conn<'_>, filters: &Filters) -> QueryResult<i64> {
    let mut b = Binder::new(dialect(conn));
    let w = where_block_documents(&mut Sql { b: &mut b }, filters);
    count_of(conn, "block_document", b, w).await
}

/// `/block_types/filter` (by name).
pub async fn block_types(conn: &mut Conn<'_>, request: &Read<NoSort>) -> QueryResult<Vec<BlockType>> {
    let mut b = Binder::new(dialect(conn));
    let w = where_block_types(&mut Sql { b: &mut b }, &request.filters);
    let order = sorts::order_by(b.dialect, "block_type", FixedOrder::BlockTypes.terms(), "");
    page_of::<BlockType>(conn, "block_type", b, w, order, request.limit, request.offset).await
}

/// `/block_schemas/filter` (newest first).
pub async fn block_schemas(conn: &mut Conn<'_>, request: &Read<NoSort>) -> QueryResult<Vec<BlockSchema>> {
    let mut b = Binder::new(dialect(conn));
    let mut w = Vec::new();
    if let Some(x) = &request.filters.block_schemas {
        w.push(x.sql(&mut Sql { b: &mut b }, "block_schema"));
    }
    let order = sorts::order_by(b.dialect, "block_schema", FixedOrder::BlockSchemas.terms(), "");
    page_of::<BlockSchema>(conn, "block_schema", b, w, order, request.limit, request.offset).await
}

/// `active_slots` of pools or queues: the PENDING and RUNNING runs of each (`None` where the
/// pool or queue has no concurrency limit). One statement for the page.
async fn active_slots(conn: &mut Conn<'_>, group: &str, join: &str, limited: Vec<Uuid>) -> QueryResult<std::collections::HashMap<Uuid, i64>> {
    #[derive(QueryableByName)]
    struct Slots {
        #[diesel(sql_type = prefect_orm::types::PUuid)]
        id: Uuid,
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    if limited.is_empty() {
        return Ok(std::collections::HashMap::new());
    }
    let mut b = Binder::new(dialect(conn));
    let list = b.bind_list(limited.into_iter().map(Bind::Uuid));
    let sql = format!(
        "SELECT {group} AS id, count(*) AS n FROM flow_run{join} WHERE {group} IN ({list}) \
         AND flow_run.state_type IN ('PENDING', 'RUNNING') GROUP BY {group}"
    );
    let rows: Vec<Slots> = load_raw(conn, sql, b.binds).await?;
    Ok(rows.into_iter().map(|r| (r.id, r.n)).collect())
}

/// `/work_pools/filter` (by name), each pool with its `active_slots` (`None` without a
/// concurrency limit; else its PENDING and RUNNING runs, through its queues).
pub async fn work_pools(conn: &mut Conn<'_>, request: &Read<NoSort>) -> QueryResult<Vec<(WorkPool, Option<i64>)>> {
    let mut b = Binder::new(dialect(conn));
    let mut w = Vec::new();
    if let Some(x) = &request.filters.work_pools {
        w.push(x.sql(&mut Sql { b: &mut b }, "work_pool"));
    }
    let order = sorts::order_by(b.dialect, "work_pool", FixedOrder::WorkPools.terms(), "");
    let pools: Vec<WorkPool> = page_of(conn, "work_pool", b, w, order, request.limit, request.offset).await?;
    let limited = pools.iter().filter(|p| p.concurrency_limit.is_some()).map(|p| p.id).collect();
    let slots = active_slots(conn, "work_queue.work_pool_id", " JOIN work_queue ON flow_run.work_queue_id = work_queue.id", limited).await?;
    Ok(pools
        .into_iter()
        .map(|p| {
            let n = p.concurrency_limit.map(|_| slots.get(&p.id).copied().unwrap_or(0));
            (p, n)
        })
        .collect())
}

/// `/work_pools/count`.
pub async fn count_work_pools(conn: &mut Conn<'_>, filters: &Filters) -> QueryResult<i64> {
    let mut b = Binder::new(dialect(conn));
    let mut w = Vec::new();
    if let Some(x) = &filters.work_pools {
        w.push(x.sql(&mut Sql { b: &mut b }, "work_pool"));
    }
    count_of(conn, "work_pool", b, w).await
}

async fn pool_id(conn: &mut Conn<'_>, name: &str) -> QueryResult<Uuid> {
    let mut b = Binder::new(dialect(conn));
    let p = b.bind(Bind::Text(name.to_owned()));
    let rows: Vec<IdRow> = load_raw(conn, format!("SELECT id FROM work_pool WHERE name = {p}"), b.binds).await?;
    rows.first().map(|r| r.id).ok_or_else(|| QueryError::WorkPoolNotFound(name.to_owned()))
}

/// `/work_pools/{name}/queues/filter` (by priority), each queue with its `active_slots`.
/// [`QueryError::WorkPoolNotFound`] for an unknown pool name.
pub async fn work_pool_queues(conn: &mut Conn<'_>, pool_name: &str, request: &Read<NoSort>) -> QueryResult<Vec<(WorkQueue, Option<i64>)>> {
    let pool = pool_id(conn, pool_name).await?;
    let mut b = Binder::new(dialect(conn));
    let mut w = vec![format!("work_queue.work_pool_id = {}", b.bind(Bind::Uuid(pool)))];
    if let Some(x) = &request.filters.work_queues {
        w.push(x.sql(&mut Sql { b: &mut b }, "work_queue"));
    }
    let order = sorts::order_by(b.dialect, "work_queue", FixedOrder::WorkQueues.terms(), "");
    let queues: Vec<WorkQueue> = page_of(conn, "work_queue", b, w, order, request.limit, request.offset).await?;
    let limited = queues.iter().filter(|q| q.concurrency_limit.is_some()).map(|q| q.id).collect();
    let slots = active_slots(conn, "flow_run.work_queue_id", "", limited).await?;
    Ok(queues
        .into_iter()
        .map(|q| {
            let n = q.concurrency_limit.map(|_| slots.get(&q.id).copied().unwrap_or(0));
            (q, n)
        })
        .collect())
}

/// `/work_pools/{name}/workers/filter` (newest heartbeat first; the status filter reads the
/// stored status). [`QueryError::WorkPoolNotFound`] for an unknown pool name.
pub async fn work_pool_workers(conn: &mut Conn<'_>, pool_name: &str, request: &Read<NoSort>) -> QueryResult<Vec<Worker>> {
    let pool = pool_id(conn, pool_name).await?;
    let mut b = Binder::new(dialect(conn));
    let mut w = vec![format!("worker.work_pool_id = {}", b.bind(Bind::Uuid(pool)))];
    if let Some(x) = &request.filters.workers {
        w.push(x.sql(&mut Sql { b: &mut b }, "worker"));
    }
    let order = sorts::order_by(b.dialect, "worker", FixedOrder::Workers.terms(), "");
    page_of(conn, "worker", b, w, order, request.limit, request.offset).await
}

/// A tag concurrency limit as Prefect's v1 API lists it: a v1 row, or a v2 limit named
/// `tag:<tag>` shown as one.
#[derive(Debug, Clone, PartialEq)]
pub struct TagConcurrencyLimit {
    /// The row's id (the v2 limit's for a converted one).
    pub id: Uuid,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was last updated.
    pub updated: DateTime<Utc>,
    /// The tag.
    pub tag: String,
    /// The limit.
    pub concurrency_limit: i64,
    /// The task runs holding slots (v1: stored; v2: the server's lease storage, empty here).
    pub active_slots: Vec<Uuid>,
    /// Whether it is a converted v2 limit.
    pub from_v2: bool,
}

/// `/concurrency_limits/filter` (v1), as Prefect 3.9.1 lists it: the first `limit + offset` v2
/// limits by name that are named `tag:…` (as v1 limits), then the v1 limits by tag that they do
/// not shadow, then `offset` and `limit` applied to that list.
pub async fn concurrency_limits(conn: &mut Conn<'_>, request: &Read<NoSort>) -> QueryResult<Vec<TagConcurrencyLimit>> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use prefect_orm::models::ConcurrencyLimit;
    use prefect_orm::schema::{concurrency_limit, concurrency_limit_v2};
    let n = request.limit.saturating_add(request.offset);
    let v1: Vec<ConcurrencyLimit> = prefect_db_config::dispatch!(conn, |c| concurrency_limit::table
        .select(ConcurrencyLimit::as_select())
        .order(concurrency_limit::tag.asc())
        .limit(n)
        .load(c)
        .await)?;
    let v2: Vec<ConcurrencyLimitV2> = prefect_db_config::dispatch!(conn, |c| concurrency_limit_v2::table
        .select(ConcurrencyLimitV2::as_select())
        .order(concurrency_limit_v2::name.asc())
        .limit(n)
        .load(c)
        .await)?;
    let mut out: Vec<TagConcurrencyLimit> = v2
        .into_iter()
        .filter_map(|l| {
            let tag = l.name.strip_prefix("tag:")?.to_owned();
            Some(TagConcurrencyLimit { id: l.id, created: l.created, updated: l.updated, tag, concurrency_limit: i64::from(l.limit), active_slots: Vec::new(), from_v2: true })
        })
        .collect();
    let shadowed: std::collections::HashSet<String> = out.iter().map(|l| l.tag.clone()).collect();
    for l in v1 {
        if shadowed.contains(&l.tag) {
            continue;
        }
        let slots = l.active_slots.as_array().map(|a| a.iter().filter_map(|v| v.as_str().and_then(|s| Uuid::parse_str(s).ok())).collect()).unwrap_or_default();
        out.push(TagConcurrencyLimit { id: l.id, created: l.created, updated: l.updated, tag: l.tag, concurrency_limit: i64::from(l.concurrency_limit_), active_slots: slots, from_v2: false });
    }
    let offset = usize::try_from(request.offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(request.limit).unwrap_or(0);
    Ok(out.into_iter().skip(offset).take(limit).collect())
}

/// `/v2/concurrency_limits/filter` (by name), each with its `active_slots` decayed as Prefect
/// shows them: `max(0, active_slots − floor(slot_decay_per_second × seconds since updated))`.
pub async fn concurrency_limits_v2(conn: &mut Conn<'_>, request: &Read<NoSort>) -> QueryResult<Vec<(ConcurrencyLimitV2, i64)>> {
    let b = Binder::new(dialect(conn));
    let order = sorts::order_by(b.dialect, "concurrency_limit_v2", FixedOrder::ByName.terms(), "");
    let rows: Vec<ConcurrencyLimitV2> = page_of(conn, "concurrency_limit_v2", b, Vec::new(), order, request.limit, request.offset).await?;
    let now = prefect_orm::types::now();
    Ok(rows
        .into_iter()
        .map(|l| {
            let seconds = (now - l.updated).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
            let decayed = (f64::from(l.active_slots) - (l.slot_decay_per_second * seconds).floor()).max(0.0);
            let slots = decayed as i64;
            (l, slots)
        })
        .collect())
}

/// `/saved_searches/filter` (by name).
pub async fn saved_searches(conn: &mut Conn<'_>, request: &Read<NoSort>) -> QueryResult<Vec<SavedSearch>> {
    let b = Binder::new(dialect(conn));
    let order = sorts::order_by(b.dialect, "saved_search", FixedOrder::ByName.terms(), "");
    page_of(conn, "saved_search", b, Vec::new(), order, request.limit, request.offset).await
}

// ---------------------------------------------------------------------------------------------
// Run history

/// The runs of one state in one history bucket, with Prefect's sums.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryState {
    /// The state type (`None` for runs without a state).
    pub state_type: Option<String>,
    /// The state name.
    pub state_name: Option<String>,
    /// How many runs.
    pub count_runs: i64,
    /// The runs' estimated run times, summed (each at least 0; a running run counts until now).
    pub sum_estimated_run_time: TimeDelta,
    /// The runs' lateness, summed (a started run: how late it started; a run not started, not
    /// finished and expected in the past: how late it is now).
    pub sum_estimated_lateness: TimeDelta,
}

/// One bucket `[interval_start, interval_end)` of a run history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryBucket {
    /// The bucket's start.
    pub interval_start: DateTime<Utc>,
    /// The bucket's end.
    pub interval_end: DateTime<Utc>,
    /// Its runs per state type and name, ordered by type, then name.
    pub states: Vec<HistoryState>,
}

#[derive(QueryableByName)]
struct HistoryRow {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = Nullable<Text>)]
    state_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    state_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    run_us: i64,
    #[diesel(sql_type = BigInt)]
    late_us: i64,
}

/// `/flow_runs/history`.
pub async fn flow_run_history(conn: &mut Conn<'_>, request: &HistoryRead) -> QueryResult<Vec<HistoryBucket>> {
    history(conn, "flow_run", request).await
}

/// `/task_runs/history`.
pub async fn task_run_history(conn: &mut Conn<'_>, request: &HistoryRead) -> QueryResult<Vec<HistoryBucket>> {
    history(conn, "task_run", request).await
}

/// The statement [`flow_run_history`] sends (`None` when the request has no buckets).
pub fn flow_run_history_statement(dialect: prefect_db_config::Dialect, request: &HistoryRead) -> QueryResult<Option<Statement>> {
    Ok(history_statement(dialect, "flow_run", request)?.map(|(st, _)| st))
}

/// The statement [`task_run_history`] sends (`None` when the request has no buckets).
pub fn task_run_history_statement(dialect: prefect_db_config::Dialect, request: &HistoryRead) -> QueryResult<Option<Statement>> {
    Ok(history_statement(dialect, "task_run", request)?.map(|(st, _)| st))
}

async fn history(conn: &mut Conn<'_>, t: &str, request: &HistoryRead) -> QueryResult<Vec<HistoryBucket>> {
    let Some((st, intervals)) = history_statement(conn.dialect(), t, request)? else {
        return Ok(Vec::new());
    };
    let rows: Vec<HistoryRow> = load_raw(conn, st.sql, st.binds).await?;
    let mut buckets: Vec<HistoryBucket> = intervals
        .into_iter()
        .map(|i| HistoryBucket { interval_start: i.interval_start, interval_end: i.interval_end, states: Vec::new() })
        .collect();
    for row in rows {
        if let Some(bucket) = usize::try_from(row.bucket).ok().and_then(|i| buckets.get_mut(i)) {
            bucket.states.push(HistoryState {
                state_type: row.state_type,
                state_name: row.state_name,
                count_runs: row.n,
                sum_estimated_run_time: TimeDelta::microseconds(row.run_us),
                sum_estimated_lateness: TimeDelta::microseconds(row.late_us),
            });
        }
    }
    for bucket in &mut buckets {
        bucket.states.sort_by(|a, b| (&a.state_type, &a.state_name).cmp(&(&b.state_type, &b.state_name)));
    }
    Ok(buckets)
}

/// The history statement of table `t` and the buckets it counts into.
fn history_statement(
    dialect: prefect_db_config::Dialect,
    t: &str,
    request: &HistoryRead,
) -> QueryResult<Option<(Statement, Vec<crate::history::TimestampInterval>)>> {
    let intervals = crate::history::make_timestamp_intervals(request.start, request.end, request.interval)?;
    let (Some(first), Some(last)) = (intervals.first(), intervals.last()) else {
        return Ok(None);
    };
    let us = request.interval.num_microseconds().unwrap_or(i64::MAX);
    let mut b = Binder::new(SqlDialect(dialect));
    let d = b.dialect;
    let bucket = bucket_index_sql(&mut b, &format!("{t}.expected_start_time"), first.interval_start, us);
    let lo = b.bind(Bind::Time(first.interval_start));
    let hi = b.bind(Bind::Time(last.interval_end));
    let now_us = b.bind(Bind::Int(prefect_orm::types::now().timestamp_micros()));
    let mut w = vec![format!("{t}.expected_start_time >= {lo}"), format!("{t}.expected_start_time < {hi}")];
    {
        let mut s = Sql { b: &mut b };
        w.extend(if t == "flow_run" { where_flow_runs(&mut s, &request.filters) } else { where_task_runs(&mut s, &request.filters) });
    }
    let m = |col: &str| d.micros(&format!("{t}.{col}"));
    let run = format!(
        "(CASE WHEN {t}.state_type = 'RUNNING' THEN {} + ({now_us} - {}) ELSE {} END)",
        m("total_run_time"),
        m("state_timestamp"),
        m("total_run_time")
    );
    let late = format!(
        "(CASE WHEN {t}.start_time > {t}.expected_start_time THEN {} - {} \
         WHEN {t}.start_time IS NULL AND {t}.state_type NOT IN ('COMPLETED', 'CANCELLED', 'FAILED', 'CRASHED') \
         AND {} < {now_us} THEN {now_us} - {} ELSE 0 END)",
        m("start_time"),
        m("expected_start_time"),
        m("expected_start_time"),
        m("expected_start_time")
    );
    let positive = |x: &str| format!("(CASE WHEN {x} > 0 THEN {x} ELSE 0 END)");
    let sql = format!(
        "SELECT {bucket} AS bucket, CAST({t}.state_type AS TEXT) AS state_type, {t}.state_name AS state_name, \
         count(*) AS n, CAST(COALESCE(sum({}), 0) AS BIGINT) AS run_us, CAST(COALESCE(sum({}), 0) AS BIGINT) AS late_us \
         FROM {t}{} GROUP BY 1, 2, 3",
        positive(&run),
        positive(&late),
        where_sql(&w)
    );
    Ok(Some((Statement { sql, binds: b.binds }, intervals)))
}

// ---------------------------------------------------------------------------------------------
// Keyset pages

/// Where a keyset page ends: the last row's sort key and id. Serializable, so a server can hand
/// it to its client as an opaque token.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The sort key of the last row (`None`: NULL, or the id itself for id sorts).
    pub key: Option<CursorKey>,
    /// The id of the last row.
    pub id: Uuid,
}

/// A sort key value in a [`Cursor`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CursorKey {
    /// A point in time.
    Time(DateTime<Utc>),
    /// A text.
    Text(String),
}

/// A keyset page: the rows and, when the page is full, the cursor of the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct KeysetPage<R> {
    /// The rows.
    pub rows: Vec<R>,
    /// Where the next page starts (`None` when this one was not full).
    pub next: Option<Cursor>,
}

/// The condition "after `cursor`" for a one-term sort on `expr` (NULLs last ascending, first
/// descending) with the id as tie-breaker in the same direction.
fn after_cursor(b: &mut Binder, t: &str, expr: Option<&str>, asc: bool, cursor: &Cursor) -> String {
    let id = b.bind(Bind::Uuid(cursor.id));
    let gt = if asc { ">" } else { "<" };
    let Some(expr) = expr else {
        return format!("({t}.id {gt} {id})");
    };
    let expr = expr.replace("{t}", t);
    let key = cursor.key.as_ref().map(|k| match k {
        CursorKey::Time(ts) => b.bind(Bind::Time(*ts)),
        CursorKey::Text(s) => b.bind(Bind::Text(s.clone())),
    });
    match (key, asc) {
        (Some(k), true) => format!("(({expr} > {k}) OR ({expr} = {k} AND {t}.id > {id}) OR ({expr} IS NULL))"),
        (None, true) => format!("({expr} IS NULL AND {t}.id > {id})"),
        // `{expr} <= {k}` is implied by the disjunction; said on its own it is a range the
        // sort's index can start from, instead of walking every row before the cursor.
        (Some(k), false) => format!("({expr} <= {k} AND (({expr} < {k}) OR ({expr} = {k} AND {t}.id < {id})))"),
        (None, false) => format!("(({expr} IS NULL AND {t}.id < {id}) OR ({expr} IS NOT NULL))"),
    }
}

fn time_key(t: Option<DateTime<Utc>>) -> Option<CursorKey> {
    t.map(CursorKey::Time)
}

/// The flow runs after `cursor` (from the start without one), `limit` of them, in the
/// request's sort (its offset is ignored); every sort but a computed one can be paged so.
pub async fn flow_runs_page(conn: &mut Conn<'_>, request: &Read<FlowRunSort>, cursor: Option<&Cursor>) -> QueryResult<KeysetPage<FlowRun>> {
    let st = flow_runs_page_statement(conn.dialect(), request, cursor);
    let rows: Vec<FlowRun> = rows_of(conn, st, request.limit).await?;
    let key = |r: &FlowRun| match request.sort {
        FlowRunSort::IdDesc => None,
        FlowRunSort::StartTimeAsc | FlowRunSort::StartTimeDesc => time_key(r.start_time.or(r.expected_start_time)),
        FlowRunSort::ExpectedStartTimeAsc | FlowRunSort::ExpectedStartTimeDesc => time_key(r.expected_start_time),
        FlowRunSort::NameAsc | FlowRunSort::NameDesc => Some(CursorKey::Text(r.name.clone())),
        FlowRunSort::NextScheduledStartTimeAsc => time_key(r.next_scheduled_start_time),
        FlowRunSort::EndTimeDesc => time_key(r.end_time),
    };
    let next = (i64::try_from(rows.len()).unwrap_or(i64::MAX) >= request.limit && request.limit > 0)
        .then(|| rows.last().map(|r| Cursor { key: key(r), id: r.id }))
        .flatten();
    Ok(KeysetPage { rows, next })
}

/// The statement [`flow_runs_page`] sends for the ids of its page (see [`Statement`]).
pub fn flow_runs_page_statement(dialect: prefect_db_config::Dialect, request: &Read<FlowRunSort>, cursor: Option<&Cursor>) -> Statement {
    let mut b = Binder::new(SqlDialect(dialect));
    let mut w = where_flow_runs(&mut Sql { b: &mut b }, &request.filters);
    let term = request.sort.terms()[0];
    let expr = (term.expr != "{t}.id").then_some(term.expr);
    if let Some(c) = cursor {
        w.push(after_cursor(&mut b, "flow_run", expr, term.asc, c));
    }
    let order = sorts::order_by(b.dialect, "flow_run", request.sort.terms(), "");
    page_statement("flow_run", b, w, order, request.limit, 0)
}

/// The task runs after `cursor`, as [`flow_runs_page`]; the `DURATION_*` sorts (computed from
/// the current time) cannot be paged so ([`QueryError::InvalidArgument`]).
pub async fn task_runs_page(conn: &mut Conn<'_>, request: &Read<TaskRunSort>, cursor: Option<&Cursor>) -> QueryResult<KeysetPage<TaskRun>> {
    let st = task_runs_page_statement(conn.dialect(), request, cursor)?;
    let rows: Vec<TaskRun> = rows_of(conn, st, request.limit).await?;
    let key = |r: &TaskRun| match request.sort {
        TaskRunSort::ExpectedStartTimeAsc | TaskRunSort::ExpectedStartTimeDesc => time_key(r.expected_start_time),
        TaskRunSort::NameAsc | TaskRunSort::NameDesc => Some(CursorKey::Text(r.name.clone())),
        TaskRunSort::NextScheduledStartTimeAsc => time_key(r.next_scheduled_start_time),
        TaskRunSort::EndTimeDesc => time_key(r.end_time),
        _ => None,
    };
    let next = (i64::try_from(rows.len()).unwrap_or(i64::MAX) >= request.limit && request.limit > 0)
        .then(|| rows.last().map(|r| Cursor { key: key(r), id: r.id }))
        .flatten();
    Ok(KeysetPage { rows, next })
}

/// The statement [`task_runs_page`] sends for the ids of its page (see [`Statement`]); the
/// `DURATION_*` sorts cannot be paged so ([`QueryError::InvalidArgument`]).
pub fn task_runs_page_statement(dialect: prefect_db_config::Dialect, request: &Read<TaskRunSort>, cursor: Option<&Cursor>) -> QueryResult<Statement> {
    if matches!(request.sort, TaskRunSort::DurationAsc | TaskRunSort::DurationDesc) {
        return Err(QueryError::InvalidArgument(format!("keyset pages cannot follow the sort {}", request.sort.name())));
    }
    let mut b = Binder::new(SqlDialect(dialect));
    let mut w = where_task_runs(&mut Sql { b: &mut b }, &request.filters);
    let term = request.sort.terms()[0];
    let expr = (term.expr != "{t}.id").then_some(term.expr);
    if let Some(c) = cursor {
        w.push(after_cursor(&mut b, "task_run", expr, term.asc, c));
    }
    let order = sorts::order_by(b.dialect, "task_run", request.sort.terms(), "");
    Ok(page_statement("task_run", b, w, order, request.limit, 0))
}

/// The logs after `cursor`, as [`flow_runs_page`].
pub async fn logs_page(conn: &mut Conn<'_>, request: &Read<LogSort>, cursor: Option<&Cursor>) -> QueryResult<KeysetPage<Log>> {
    let st = logs_page_statement(conn.dialect(), request, cursor);
    let rows: Vec<Log> = rows_of(conn, st, request.limit).await?;
    let next = (i64::try_from(rows.len()).unwrap_or(i64::MAX) >= request.limit && request.limit > 0)
        .then(|| rows.last().map(|r| Cursor { key: Some(CursorKey::Time(r.timestamp)), id: r.id }))
        .flatten();
    Ok(KeysetPage { rows, next })
}

/// The statement [`logs_page`] sends for the ids of its page (see [`Statement`]).
pub fn logs_page_statement(dialect: prefect_db_config::Dialect, request: &Read<LogSort>, cursor: Option<&Cursor>) -> Statement {
    let mut b = Binder::new(SqlDialect(dialect));
    let mut w = Vec::new();
    if let Some(x) = &request.filters.logs {
        w.push(x.sql(&mut Sql { b: &mut b }));
    }
    let term = request.sort.terms()[0];
    if let Some(c) = cursor {
        w.push(after_cursor(&mut b, "log", Some(term.expr), term.asc, c));
    }
    let order = sorts::order_by(b.dialect, "log", request.sort.terms(), "");
    page_statement("log", b, w, order, request.limit, 0)
}
