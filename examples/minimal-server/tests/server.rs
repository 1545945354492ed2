//! The example server on loopback: readiness follows the database; flows, flow runs and
//! variables are written, read, updated and deleted through the endpoints; the layer's error
//! classes become 404, 409, 422 and 503; on both dialects.

use minimal_server::{FlowRunView, FlowView, app, app_with_metrics, install_prometheus};
use prefect_db_interface::config::{DatabaseUrl, Dialect};
use prefect_db_interface::database_for;
use prefect_db_interface::prelude::{StateType, Uuid};
use prefect_db_test::{TestDatabase, TestResult, conformance};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn serve(db: prefect_db_interface::Database) -> Result<SocketAddr, std::io::Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app(db)).await;
    });
    Ok(addr)
}

/// One HTTP/1.1 request; returns the status code and the body.
async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Result<(u16, String), std::io::Error> {
    let mut stream = TcpStream::connect(addr).await?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    Ok((status, body))
}

/// A TCP proxy to `target` on `port`, until the returned task is aborted.
async fn proxy(port: u16, target: SocketAddr) -> Result<tokio::task::JoinHandle<()>, std::io::Error> {
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    Ok(tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            conns.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    }))
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_answers_503_while_the_database_is_unreachable() -> TestResult {
    let db = TestDatabase::empty(Dialect::Postgres).await?;
    let pg = db.postgres_url().ok_or("not postgres")?;
    let target: SocketAddr = format!("{}:{}", pg.host().ok_or("no host")?, pg.port()).parse()?;
    // A port where nothing listens (yet).
    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let user = pg.user().unwrap_or_else(|| "postgres".to_owned());
    let url = format!("postgresql://{user}@127.0.0.1:{port}/{}", pg.database());
    let mut config = db.config();
    config.url = DatabaseUrl::parse(&url, "test")?;
    config.connection_timeout = Duration::from_secs(2);
    let addr = serve(database_for(&config)?).await?;

    assert_eq!(request(addr, "GET", "/health", None).await?.0, 200);
    assert_eq!(request(addr, "GET", "/ready", None).await?.0, 503, "nothing listens on the database port");
    let running = proxy(port, target).await?;
    assert_eq!(request(addr, "GET", "/ready", None).await?.0, 200, "the database answers through the proxy");
    running.abort();
    let _ = running.await;
    assert_eq!(request(addr, "GET", "/ready", None).await?.0, 503, "unreachable again");
    Ok(())
}

async fn writes_and_reads_a_flow_run(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let interface = database_for(&db.config())?;
    interface.create_db().await?;
    let addr = serve(interface).await?;
    let (status, body) = request(addr, "POST", "/flow_runs", Some(r#"{"flow_name": "etl", "name": "nightly", "parameters": {"day": "2024-02-29", "n": 3}}"#)).await?;
    assert_eq!(status, 200, "{body}");
    let created: FlowRunView = serde_json::from_str(&body)?;
    assert_eq!(created.name, "nightly");
    assert_eq!(created.parameters, serde_json::json!({"day": "2024-02-29", "n": 3}));
    let (status, body) = request(addr, "GET", &format!("/flow_runs/{}", created.id), None).await?;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<FlowRunView>(&body)?, created);
    // A second run of the same flow reuses the flow.
    let (_, body) = request(addr, "POST", "/flow_runs", Some(r#"{"flow_name": "etl", "name": "again"}"#)).await?;
    assert_eq!(serde_json::from_str::<FlowRunView>(&body)?.flow_id, created.flow_id);
    let (status, _) = request(addr, "GET", &format!("/flow_runs/{}", Uuid::new_v4()), None).await?;
    assert_eq!(status, 404);
    Ok(())
}

conformance!(writes_and_reads_a_flow_run);

async fn updates_and_deletes_a_flow_run(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let interface = database_for(&db.config())?;
    interface.create_db().await?;
    let addr = serve(interface).await?;
    let (_, body) = request(addr, "POST", "/flow_runs", Some(r#"{"flow_name": "etl", "name": "nightly"}"#)).await?;
    let created: FlowRunView = serde_json::from_str(&body)?;
    assert_eq!(created.state_type, None, "a new run has no state until one is proposed");

    let path = format!("/flow_runs/{}", created.id);
    let (status, body) = request(addr, "PATCH", &path, Some(r#"{"state_type": "RUNNING", "state_name": "Running"}"#)).await?;
    assert_eq!(status, 200, "{body}");
    let updated: FlowRunView = serde_json::from_str(&body)?;
    assert_eq!((updated.state_type, updated.state_name.as_deref()), (Some(StateType::Running), Some("Running")));
    assert_eq!((updated.name.as_str(), updated.parameters.clone()), ("nightly", created.parameters.clone()), "other fields kept");
    let (_, body) = request(addr, "GET", &path, None).await?;
    assert_eq!(serde_json::from_str::<FlowRunView>(&body)?, updated, "the update is stored");

    let (status, _) = request(addr, "PATCH", &format!("/flow_runs/{}", Uuid::new_v4()), Some(r#"{"name": "x"}"#)).await?;
    assert_eq!(status, 404, "updating a missing run");
    let (status, _) = request(addr, "DELETE", &path, None).await?;
    assert_eq!(status, 204);
    let (status, _) = request(addr, "GET", &path, None).await?;
    assert_eq!(status, 404, "deleted");
    let (status, _) = request(addr, "DELETE", &path, None).await?;
    assert_eq!(status, 404, "deleting twice");
    Ok(())
}

conformance!(updates_and_deletes_a_flow_run);

async fn filters_flow_runs_with_prefects_body(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let interface = database_for(&db.config())?;
    interface.create_db().await?;
    let addr = serve(interface).await?;
    for (flow, name) in [("etl", "nightly"), ("etl", "hourly"), ("report", "Nightly-Report")] {
        let body = format!(r#"{{"flow_name": "{flow}", "name": "{name}"}}"#);
        assert_eq!(request(addr, "POST", "/flow_runs", Some(&body)).await?.0, 200);
    }
    let (status, body) = request(addr, "POST", "/flow_runs/filter", Some(r#"{"flow_runs": {"name": {"like_": "NIGHTLY"}}, "sort": "NAME_ASC"}"#)).await?;
    assert_eq!(status, 200, "{body}");
    let names: Vec<String> = serde_json::from_str::<Vec<FlowRunView>>(&body)?.into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["Nightly-Report", "nightly"], "case-insensitive, by name (upper case sorts first)");
    let (status, body) = request(addr, "POST", "/flow_runs/filter", Some(r#"{"flows": {"name": {"any_": ["report"]}}}"#)).await?;
    assert_eq!((status, serde_json::from_str::<Vec<FlowRunView>>(&body)?.len()), (200, 1));
    let (status, body) = request(addr, "POST", "/flow_runs/filter", Some(r#"{"sort": "START_TIME"}"#)).await?;
    assert_eq!(status, 422, "an unknown sort, as Prefect: {body}");
    assert!(body.contains("body.sort"), "{body}");
    Ok(())
}

conformance!(filters_flow_runs_with_prefects_body);

async fn flows_are_created_once_and_conflicts_are_409(dialect: Dialect) -> TestResult {
    let db = TestDatabase::empty(dialect).await?;
    let interface = database_for(&db.config())?;
    interface.create_db().await?;
    let addr = serve(interface).await?;
    let (status, body) = request(addr, "POST", "/flows", Some(r#"{"name": "etl"}"#)).await?;
    assert_eq!(status, 201, "{body}");
    let flow: FlowView = serde_json::from_str(&body)?;
    let (status, body) = request(addr, "POST", "/flows", Some(r#"{"name": "etl"}"#)).await?;
    assert_eq!(status, 200, "Prefect answers 200 with the existing flow: {body}");
    assert_eq!(serde_json::from_str::<FlowView>(&body)?, flow);
    let (status, body) = request(addr, "GET", &format!("/flows/{}", flow.id), None).await?;
    assert_eq!((status, serde_json::from_str::<FlowView>(&body)?), (200, flow));

    let (status, _) = request(addr, "POST", "/variables", Some(r#"{"name": "region", "value": "eu"}"#)).await?;
    assert_eq!(status, 201);
    let (status, body) = request(addr, "POST", "/variables", Some(r#"{"name": "region", "value": "us"}"#)).await?;
    assert_eq!(status, 409, "{body}");
    let detail: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(detail["detail"], "A variable with the name 'region' already exists.", "Prefect's message");
    Ok(())
}

conformance!(flows_are_created_once_and_conflicts_are_409);

/// A request whose database cannot be reached is answered 503 with `Retry-After`.
#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_is_503_with_retry_after() -> TestResult {
    let db = TestDatabase::empty(Dialect::Postgres).await?;
    let pg = db.postgres_url().ok_or("not postgres")?;
    let port = TcpListener::bind("127.0.0.1:0").await?.local_addr()?.port();
    let user = pg.user().unwrap_or_else(|| "postgres".to_owned());
    let mut config = db.config();
    config.url = DatabaseUrl::parse(&format!("postgresql://{user}@127.0.0.1:{port}/{}", pg.database()), "test")?;
    config.connection_timeout = Duration::from_secs(1);
    // Connecting is retried within the retry budget before the 503; a short one keeps the
    // test short.
    config.retry.budget = Duration::from_secs(1);
    let addr = serve(database_for(&config)?).await?;
    let mut stream = TcpStream::connect(addr).await?;
    let path = format!("/flow_runs/{}", Uuid::new_v4());
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.to_ascii_lowercase().contains("retry-after: 1"), "{response}");
    Ok(())
}

/// The process's Prometheus recorder, installed once for every test of this binary.
fn prometheus() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: std::sync::OnceLock<metrics_exporter_prometheus::PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE.get_or_init(|| install_prometheus().expect("the only recorder of this process")).clone()
}

/// The value of the first sample of `metric` whose labels contain every one of `labels`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (name_labels, value) = line.rsplit_once(' ')?;
        let (name, rest) = name_labels.split_once('{').unwrap_or((name_labels, ""));
        (name == metric && labels.iter().all(|l| rest.contains(l))).then(|| value.parse().ok())?
    })
}

/// With `server.metrics_enabled`, `/metrics` scraped during a load of 40 concurrent writes shows
/// the pool gauges and the statement-duration histogram with non-zero counts, in Prometheus'
/// text format.
async fn metrics_show_the_pool_and_the_statements(dialect: Dialect) -> TestResult {
    let handle = prometheus();
    let db = TestDatabase::empty(dialect).await?;
    let mut config = db.config();
    config.metrics = true;
    let interface = database_for(&config)?;
    interface.create_db().await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app_with_metrics(interface, handle)).await;
    });
    let mut load = tokio::task::JoinSet::new();
    for i in 0..40 {
        load.spawn(async move {
            request(addr, "POST", "/flow_runs", Some(&format!(r#"{{"flow_name": "metered", "name": "run-{i}"}}"#))).await
        });
    }
    let (status, text) = request(addr, "GET", "/metrics", None).await?;
    while let Some(done) = load.join_next().await {
        assert_eq!(done??.0, 200);
    }
    assert_eq!(status, 200, "{text}");
    let (_, text) = request(addr, "GET", "/metrics", None).await?;
    let system = match dialect {
        Dialect::Postgres => "db_system_name=\"postgresql\"",
        Dialect::Sqlite => "db_system_name=\"sqlite\"",
    };
    let inserts = sample(&text, "db_client_operation_duration_count", &[system, "db_operation_name=\"INSERT\"", "db_collection_name=\"flow_run\""])
        .ok_or_else(|| format!("no INSERT flow_run histogram in:\n{text}"))?;
    assert!(inserts >= 40.0, "40 runs inserted, {inserts} counted");
    assert!(sample(&text, "db_client_operation_duration_bucket", &[system, "le=\"+Inf\""]).is_some_and(|n| n > 0.0), "{text}");
    let max = sample(&text, "db_client_connection_max", &[system]).ok_or_else(|| format!("no pool size gauge in:\n{text}"))?;
    assert!(max >= 1.0, "{max}");
    for state in ["idle", "used"] {
        assert!(
            sample(&text, "db_client_connection_count", &[system, &format!("db_client_connection_state=\"{state}\"")]).is_some(),
            "no {state} connection gauge in:\n{text}"
        );
    }
    assert!(sample(&text, "db_client_connection_pending_requests", &[system]).is_some(), "{text}");
    assert!(sample(&text, "db_client_connection_wait_time_count", &[system]).is_some_and(|n| n > 0.0), "{text}");
    Ok(())
}

conformance!(metrics_show_the_pool_and_the_statements);
