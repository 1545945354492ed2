//! `cargo xtask read-api --cases FILE --url URL --out FILE`: answers every case of a case file
//! (the format of Prefect's golden read-API answers: each case an `id`, an `endpoint` such as
//! `/api/flow_runs/filter` and a `body`) through the layer's read API, exactly as a server would
//! (the body read into the Rust types, a body Prefect refuses answered with its status and
//! errors), and writes the same file with `status` and `answer` filled in, in the golden shape.
//! [`compare`] applies the golden comparison rules (ties, tolerances) to two such files.

use anyhow::{Context, Result, bail};
use prefect_db_interface::queries::read::{
    self, ArtifactSort, BlockDocumentSort, BodyError, DeploymentSort, Endpoint, FlowRunSort, FlowSort,
    HistoryRead, LogSort, NoSort, Read, TaskRunSort, VariableSort,
};
use prefect_db_interface::queries::QueryError;
use prefect_db_interface::{Database, config::Conn};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use prefect_db_interface::prelude::{DateTime, TimeDelta, Utc, Uuid};

/// The command: reads the case file, answers it on the database at `url`, writes `out`.
pub fn run(args: &[String]) -> Result<()> {
    let mut cases = None;
    let mut url = None;
    let mut out = None;
    let mut expected = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cases" => cases = it.next().cloned(),
            "--url" => url = it.next().cloned(),
            "--out" => out = it.next().cloned(),
            "--compare" => expected = it.next().cloned(),
            other => bail!("read-api: unknown argument {other:?} (usage: --cases FILE --url URL --out FILE [--compare EXPECTED])"),
        }
    }
    let (Some(cases), Some(url), Some(out)) = (cases, url, out) else {
        bail!("read-api: usage: cargo xtask read-api --cases FILE --url URL --out FILE [--compare EXPECTED]");
    };
    let text = std::fs::read_to_string(&cases).with_context(|| format!("reading {cases}"))?;
    let input: Value = serde_json::from_str(&text).with_context(|| format!("parsing {cases}"))?;
    let mut config = prefect_db_interface::config::settings::DatabaseSettings::load()?.resolve()?;
    config.url = prefect_db_interface::config::DatabaseUrl::parse(&url, "--url")?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let answered = runtime.block_on(async {
        let db = prefect_db_interface::database_for(&config)?;
        answer_cases(&db, &input).await
    })?;
    std::fs::write(&out, serde_json::to_string_pretty(&answered)?).with_context(|| format!("writing {out}"))?;
    println!("read-api: answered {} cases into {out}", answered["cases"].as_array().map_or(0, Vec::len));
    if let Some(expected) = expected {
        let text = std::fs::read_to_string(&expected).with_context(|| format!("reading {expected}"))?;
        let expected: Value = serde_json::from_str(&text)?;
        let report = compare(&expected, &answered);
        print!("{}", report.render());
        if !report.differences.is_empty() {
            bail!("{} case(s) differ", report.differences.len());
        }
    }
    Ok(())
}

/// Answers every case of `input` (`{"cases": [{id, endpoint, body}, …]}`), each in a read
/// transaction of its own.
pub async fn answer_cases(db: &Database, input: &Value) -> Result<Value> {
    let cases = input["cases"].as_array().context("no \"cases\" list")?;
    let mut out = Vec::with_capacity(cases.len());
    for case in cases {
        let id = case["id"].clone();
        let endpoint = case["endpoint"].as_str().context("a case without an endpoint")?;
        let body = case.get("body").cloned().unwrap_or(Value::Null);
        let (status, answer) = db
            .transaction(prefect_db_interface::config::TxMode::Read, async |tx| Ok(answer(tx, endpoint, &body).await))
            .await?
            .with_context(|| format!("case {id}"))?;
        out.push(json!({"id": id, "endpoint": endpoint, "body": body, "status": status, "answer": answer}));
    }
    Ok(json!({"cases": out}))
}

fn body_error(e: &BodyError) -> (u16, Value) {
    match e {
        BodyError::Invalid { issues } => {
            let errors: Vec<Value> = issues.iter().map(|i| json!([i.loc, i.kind])).collect();
            (422, json!({"error": {"kind": "validation", "message": "Invalid request received.", "errors": errors}}))
        }
        BodyError::Http { status, detail } => (*status, json!({"error": {"kind": "http", "detail": detail}})),
        other => (422, json!({"error": {"kind": "validation", "message": other.to_string(), "errors": []}})),
    }
}

fn ids<R: prefect_db_interface::orm::access::Record>(rows: &[R]) -> Value {
    Value::Array(rows.iter().map(|r| Value::String(r.id().to_string())).collect())
}

fn timestamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string()
}

fn seconds(d: TimeDelta) -> f64 {
    d.num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

macro_rules! parse {
    ($ty:ty, $endpoint:expr, $body:expr) => {
        match <$ty>::parse($endpoint, $body) {
            Ok(r) => r,
            Err(e) => return Ok(body_error(&e)),
        }
    };
}

/// One case's status and answer.
async fn answer(conn: &mut Conn<'_>, path: &str, body: &Value) -> Result<(u16, Value)> {
    let (endpoint, pool) = Endpoint::from_path(path).with_context(|| format!("unknown endpoint {path}"))?;
    let result = answer_endpoint(conn, endpoint, pool.as_deref().unwrap_or(""), body).await;
    match result {
        Ok(x) => Ok(x),
        Err(QueryError::WorkPoolNotFound(name)) => {
            Ok((404, json!({"error": {"kind": "http", "detail": format!("Work pool \"{name}\" not found.")}})))
        }
        Err(e) => Err(e.into()),
    }
}

async fn answer_endpoint(conn: &mut Conn<'_>, endpoint: Endpoint, pool: &str, body: &Value) -> Result<(u16, Value), QueryError> {
    use Endpoint as E;
    let list = |ids: Value| (200, json!({"ids": ids}));
    let count = |n: i64| (200, json!({"count": n}));
    let page = |p: &read::Paginated<Value>| (200, json!({"count": p.count, "limit": p.limit, "pages": p.pages, "page": p.page, "ids": p.results}));
    let paged = |p: read::Paginated<Uuid>| {
        let results = p.results.iter().map(|u| Value::String(u.to_string())).collect();
        page(&read::Paginated { results, count: p.count, limit: p.limit, pages: p.pages, page: p.page })
    };
    fn id_page<R: prefect_db_interface::orm::access::Record>(p: read::Paginated<R>) -> read::Paginated<Uuid> {
        read::Paginated { results: p.results.iter().map(|r| r.id()).collect(), count: p.count, limit: p.limit, pages: p.pages, page: p.page }
    }
    Ok(match endpoint {
        E::FlowsFilter => list(ids(&read::flows(conn, &parse!(Read<FlowSort>, endpoint, body)).await?)),
        E::FlowsCount => count(read::count_flows(conn, &parse!(Read<FlowSort>, endpoint, body).filters).await?),
        E::FlowsPaginate => paged(id_page(read::paginate_flows(conn, &parse!(Read<FlowSort>, endpoint, body)).await?)),
        E::FlowRunsFilter => list(ids(&read::flow_runs(conn, &parse!(Read<FlowRunSort>, endpoint, body)).await?)),
        E::FlowRunsCount => count(read::count_flow_runs(conn, &parse!(Read<FlowRunSort>, endpoint, body).filters).await?),
        E::FlowRunsPaginate => paged(id_page(read::paginate_flow_runs(conn, &parse!(Read<FlowRunSort>, endpoint, body)).await?)),
        E::TaskRunsFilter => list(ids(&read::task_runs(conn, &parse!(Read<TaskRunSort>, endpoint, body)).await?)),
        E::TaskRunsCount => count(read::count_task_runs(conn, &parse!(Read<TaskRunSort>, endpoint, body).filters).await?),
        E::TaskRunsPaginate => paged(id_page(read::paginate_task_runs(conn, &parse!(Read<TaskRunSort>, endpoint, body)).await?)),
        E::DeploymentsFilter => list(ids(&read::deployments(conn, &parse!(Read<DeploymentSort>, endpoint, body)).await?)),
        E::DeploymentsCount => count(read::count_deployments(conn, &parse!(Read<DeploymentSort>, endpoint, body).filters).await?),
        E::DeploymentsPaginate => paged(id_page(read::paginate_deployments(conn, &parse!(Read<DeploymentSort>, endpoint, body)).await?)),
        E::FlowRunsHistory | E::TaskRunsHistory => {
            let request = parse!(HistoryRead, endpoint, body);
            let buckets = if endpoint == E::FlowRunsHistory {
                read::flow_run_history(conn, &request).await?
            } else {
                read::task_run_history(conn, &request).await?
            };
            let buckets: Vec<Value> = buckets
                .iter()
                .map(|b| {
                    let states: Vec<Value> = b
                        .states
                        .iter()
                        .map(|s| json!([s.state_type, s.state_name, s.count_runs, seconds(s.sum_estimated_run_time), seconds(s.sum_estimated_lateness)]))
                        .collect();
                    json!([timestamp(b.interval_start), timestamp(b.interval_end), states])
                })
                .collect();
            (200, json!({"buckets": buckets}))
        }
        E::LogsFilter => list(ids(&read::logs(conn, &parse!(Read<LogSort>, endpoint, body)).await?)),
        E::ArtifactsFilter => list(ids(&read::artifacts(conn, &parse!(Read<ArtifactSort>, endpoint, body)).await?)),
        E::ArtifactsCount => count(read::count_artifacts(conn, &parse!(Read<ArtifactSort>, endpoint, body).filters).await?),
        E::LatestArtifactsFilter => list(ids(&read::latest_artifacts(conn, &parse!(Read<ArtifactSort>, endpoint, body)).await?)),
        E::LatestArtifactsCount => count(read::count_latest_artifacts(conn, &parse!(Read<ArtifactSort>, endpoint, body).filters).await?),
        E::VariablesFilter => list(ids(&read::variables(conn, &parse!(Read<VariableSort>, endpoint, body)).await?)),
        E::VariablesCount => count(read::count_variables(conn, &parse!(Read<VariableSort>, endpoint, body).filters).await?),
        E::BlockDocumentsFilter => list(ids(&read::block_documents(conn, &parse!(Read<BlockDocumentSort>, endpoint, body)).await?)),
        E::BlockDocumentsCount => count(read::count_block_documents(conn, &parse!(Read<BlockDocumentSort>, endpoint, body).filters).await?),
        E::BlockTypesFilter => list(ids(&read::block_types(conn, &parse!(Read<NoSort>, endpoint, body)).await?)),
        E::BlockSchemasFilter => list(ids(&read::block_schemas(conn, &parse!(Read<NoSort>, endpoint, body)).await?)),
        E::WorkPoolsFilter | E::WorkPoolQueuesFilter => {
            let request = parse!(Read<NoSort>, endpoint, body);
            let rows: Vec<(Uuid, Option<i64>)> = if endpoint == E::WorkPoolsFilter {
                read::work_pools(conn, &request).await?.into_iter().map(|(p, n)| (p.id, n)).collect()
            } else {
                read::work_pool_queues(conn, pool, &request).await?.into_iter().map(|(q, n)| (q.id, n)).collect()
            };
            let slots: serde_json::Map<String, Value> = rows.iter().map(|(id, n)| (id.to_string(), json!(n))).collect();
            let ids: Vec<String> = rows.iter().map(|(id, _)| id.to_string()).collect();
            (200, json!({"ids": ids, "active_slots": slots}))
        }
        E::WorkPoolsCount => count(read::count_work_pools(conn, &parse!(Read<NoSort>, endpoint, body).filters).await?),
        E::WorkPoolWorkersFilter => list(ids(&read::work_pool_workers(conn, pool, &parse!(Read<NoSort>, endpoint, body)).await?)),
        E::ConcurrencyLimitsFilter => {
            let rows = read::concurrency_limits(conn, &parse!(Read<NoSort>, endpoint, body)).await?;
            let ids: Vec<String> = rows.iter().map(|l| l.id.to_string()).collect();
            let tags: Vec<&str> = rows.iter().map(|l| l.tag.as_str()).collect();
            (200, json!({"ids": ids, "tags": tags}))
        }
        E::ConcurrencyLimitsV2Filter => {
            let rows = read::concurrency_limits_v2(conn, &parse!(Read<NoSort>, endpoint, body)).await?;
            let ids: Vec<String> = rows.iter().map(|(l, _)| l.id.to_string()).collect();
            (200, json!({"ids": ids}))
        }
        E::SavedSearchesFilter => list(ids(&read::saved_searches(conn, &parse!(Read<NoSort>, endpoint, body)).await?)),
    })
}

/// The outcome of comparing answers with expected ones.
#[derive(Debug, Default)]
pub struct Report {
    /// Per endpoint group: (matching, total).
    pub per_endpoint: BTreeMap<String, (usize, usize)>,
    /// Each differing case: id and reason.
    pub differences: Vec<(String, String)>,
}

impl Report {
    /// The per-endpoint table and the differences, as text.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let (mut m, mut t) = (0, 0);
        for (endpoint, (matched, total)) in &self.per_endpoint {
            s.push_str(&format!("{endpoint:<42} {matched}/{total}{}\n", if matched == total { "" } else { "  <--" }));
            m += matched;
            t += total;
        }
        s.push_str(&format!("{:<42} {m}/{t}\n", "TOTAL"));
        for (id, reason) in &self.differences {
            s.push_str(&format!("DIFF {id}: {reason}\n"));
        }
        s
    }
}

fn endpoint_group(endpoint: &str) -> String {
    if let Some(rest) = endpoint.strip_prefix("/api/work_pools/") {
        for kind in ["queues", "workers"] {
            if rest.ends_with(&format!("/{kind}/filter")) {
                return format!("/api/work_pools/{{name}}/{kind}/filter");
            }
        }
    }
    endpoint.to_owned()
}

/// Compares `actual` with `expected` case by case with the golden set's rules: equal statuses;
/// the same error kind and sorted `[loc, type]` list or `detail`; equal counts; lists of the
/// same length where positions inside a tie group compare as a multiset (or as distinct rows of
/// the group's candidates at a page edge); histories with the same buckets and state rows, sums
/// within 0.01 s where both are numbers; extra fields (`active_slots`, `tags`) equal.
pub fn compare(expected: &Value, actual: &Value) -> Report {
    let mut report = Report::default();
    let by_id: HashMap<String, &Value> = actual["cases"]
        .as_array()
        .map(|cases| cases.iter().map(|c| (c["id"].to_string(), c)).collect())
        .unwrap_or_default();
    for exp in expected["cases"].as_array().into_iter().flatten() {
        let group = endpoint_group(exp["endpoint"].as_str().unwrap_or(""));
        let entry = report.per_endpoint.entry(group).or_default();
        entry.1 += 1;
        let reason = match by_id.get(&exp["id"].to_string()) {
            None => Some("missing from actual".to_owned()),
            Some(act) => compare_case(exp, act),
        };
        match reason {
            None => entry.0 += 1,
            Some(r) => report.differences.push((exp["id"].as_str().unwrap_or("?").to_owned(), r)),
        }
    }
    report
}

fn compare_case(exp: &Value, act: &Value) -> Option<String> {
    if act.get("endpoint").is_some_and(|e| e != &exp["endpoint"]) {
        return Some(format!("endpoint {} != {}", act["endpoint"], exp["endpoint"]));
    }
    if act.get("body").is_some_and(|b| b != &exp["body"]) {
        return Some("request body differs from the expected case's body".to_owned());
    }
    if act["status"] != exp["status"] {
        return Some(format!("status {} != expected {}", act["status"], exp["status"]));
    }
    let (ea, aa) = (&exp["answer"], &act["answer"]);
    if let Some(e1) = ea.get("error") {
        let e2 = &aa["error"];
        if e1["kind"] != e2["kind"] {
            return Some(format!("error kind {} != expected {}", e2["kind"], e1["kind"]));
        }
        if e1["kind"] == "validation" && e1["errors"] != e2["errors"] {
            return Some(format!("validation errors {} != expected {}", e2["errors"], e1["errors"]));
        }
        if e1["kind"] == "http" && e1["detail"] != e2["detail"] {
            return Some(format!("detail {} != expected {}", e2["detail"], e1["detail"]));
        }
        return None;
    }
    if ea.get("count").is_some() && ea.get("ids").is_none() {
        return (aa["count"] != ea["count"]).then(|| format!("count {} != expected {}", aa["count"], ea["count"]));
    }
    if let Some(buckets) = ea.get("buckets") {
        return compare_history(buckets, &aa["buckets"]);
    }
    for k in ["count", "limit", "pages", "page"] {
        if ea.get(k).is_some() && aa[k] != ea[k] {
            return Some(format!("{k} {} != expected {}", aa[k], ea[k]));
        }
    }
    compare_list(ea, aa)
}

fn compare_list(exp: &Value, act: &Value) -> Option<String> {
    let empty = Vec::new();
    let e_ids = exp["ids"].as_array().unwrap_or(&empty);
    let Some(a_ids) = act["ids"].as_array() else {
        return Some("no ids in actual answer".to_owned());
    };
    if e_ids.len() != a_ids.len() {
        return Some(format!("length {} != expected {}", a_ids.len(), e_ids.len()));
    }
    let mut covered = vec![false; e_ids.len()];
    for tie in exp["ties"].as_array().into_iter().flatten() {
        let s = tie["at"][0].as_u64().unwrap_or(0) as usize;
        let e = (tie["at"][1].as_u64().unwrap_or(0) as usize).min(e_ids.len());
        let (seg_e, seg_a) = (&e_ids[s.min(e)..e], &a_ids[s.min(e)..e]);
        if let Some(cands) = tie["candidates"].as_array() {
            let cands: HashSet<&Value> = cands.iter().collect();
            let distinct: HashSet<&Value> = seg_a.iter().collect();
            if distinct.len() != seg_a.len() || !seg_a.iter().all(|x| cands.contains(x)) {
                return Some(format!("rows {s}..{}: tie group at a page edge must be {} distinct rows of its candidates", e.saturating_sub(1), e - s));
            }
        } else {
            let mut a: Vec<String> = seg_a.iter().map(Value::to_string).collect();
            let mut b: Vec<String> = seg_e.iter().map(Value::to_string).collect();
            a.sort();
            b.sort();
            if a != b {
                return Some(format!("rows {s}..{}: tie group (key {}) differs as a multiset", e.saturating_sub(1), tie["key"]));
            }
        }
        for c in covered.iter_mut().take(e).skip(s) {
            *c = true;
        }
    }
    for (i, (x, y)) in e_ids.iter().zip(a_ids).enumerate() {
        if !covered[i] && x != y {
            return Some(format!("row {i}: {y} != expected {x}"));
        }
    }
    for extra in ["active_slots", "tags"] {
        if let Some(e) = exp.get(extra) {
            if act.get(extra) != Some(e) {
                return Some(format!("{extra} differ: {} != expected {e}", act[extra]));
            }
        }
    }
    None
}

fn compare_history(exp: &Value, act: &Value) -> Option<String> {
    let empty = Vec::new();
    let e = exp.as_array().unwrap_or(&empty);
    let Some(a) = act.as_array() else {
        return Some(format!("? buckets != expected {}", e.len()));
    };
    if a.len() != e.len() {
        return Some(format!("{} buckets != expected {}", a.len(), e.len()));
    }
    for (i, (b1, b2)) in e.iter().zip(a).enumerate() {
        if b1[0] != b2[0] || b1[1] != b2[1] {
            return Some(format!("bucket {i}: interval [{}, {}] != expected [{}, {}]", b2[0], b2[1], b1[0], b1[1]));
        }
        let rows = |b: &Value| -> Vec<Value> { b[2].as_array().into_iter().flatten().map(|s| json!([s[0], s[1], s[2]])).collect() };
        if rows(b1) != rows(b2) {
            return Some(format!("bucket {i} ({}): states {:?} != expected {:?}", b1[0], rows(b2), rows(b1)));
        }
        for (s1, s2) in b1[2].as_array().into_iter().flatten().zip(b2[2].as_array().into_iter().flatten()) {
            for (j, name) in [(3, "sum_estimated_run_time"), (4, "sum_estimated_lateness")] {
                if let (Some(x), Some(y)) = (s1[j].as_f64(), s2[j].as_f64()) {
                    if (x - y).abs() > 0.01 {
                        return Some(format!("bucket {i} ({}) {}/{}: {name} {y} != expected {x}", b1[0], s1[0], s1[1]));
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    //! Every public golden case, answered through the read API on both dialects, compared with
    //! Prefect 3.9.1's PostgreSQL answers with the golden rules.

    use super::*;
    use prefect_db_interface::config::Dialect;
    use prefect_db_interface::copy::{CopyOptions, copy_database};
    use prefect_db_interface::migrate::{self, UpgradeTarget};
    use prefect_db_test::{TestDatabase, TestResult, conformance};
    use std::io::Read as _;
    use std::path::Path;

    fn fixture(name: &str) -> Result<Vec<u8>> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/read-api").join(name);
        let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(file).read_to_end(&mut bytes).with_context(|| format!("decompressing {}", path.display()))?;
        Ok(bytes)
    }

    /// The dataset as Prefect wrote it (SQLite).
    async fn sqlite_dataset() -> Result<TestDatabase> {
        let db = TestDatabase::empty(Dialect::Sqlite).await?;
        let path = db.sqlite_path().context("not a file")?;
        std::fs::write(path, fixture("dataset-sqlite.db.gz")?)?;
        Ok(db)
    }

    async fn golden_read_api(dialect: Dialect) -> TestResult {
        let expected: Value = serde_json::from_slice(&fixture("cases-postgres.json.gz")?)?;
        let source = sqlite_dataset().await?;
        let db = match dialect {
            Dialect::Sqlite => source,
            Dialect::Postgres => {
                let target = TestDatabase::empty(Dialect::Postgres).await?;
                migrate::upgrade(&target.config(), UpgradeTarget::Latest).await?;
                let report = copy_database(&source.config(), &target.config(), &CopyOptions::default(), &mut |_| Ok(())).await?;
                assert!(report.rows > 8_000, "the dataset was copied: {} rows", report.rows);
                target
            }
        };
        let interface = prefect_db_interface::database_for(&db.config())?;
        let answered = answer_cases(&interface, &expected).await?;
        let report = compare(&expected, &answered);
        println!("{}", report.render());
        assert_eq!(report.per_endpoint.values().map(|(_, t)| t).sum::<usize>(), 464, "every public case");
        assert!(report.differences.is_empty(), "{} case(s) differ from Prefect's answers:\n{}", report.differences.len(), report.render());
        Ok(())
    }

    conformance!(golden_read_api);

    #[test]
    fn comparison_rules_accept_ties_and_refuse_differences() {
        let expected = json!({"cases": [
            {"id": "a", "endpoint": "/api/flows/filter", "body": {}, "status": 200,
             "answer": {"ids": ["1", "2", "3"], "ties": [{"at": [0, 2], "key": "x"}]}},
            {"id": "b", "endpoint": "/api/flows/count", "body": {}, "status": 200, "answer": {"count": 3}},
            {"id": "c", "endpoint": "/api/flow_runs/history", "body": {}, "status": 200,
             "answer": {"buckets": [["s", "e", [["COMPLETED", "Completed", 2, 10.0, null]]]]}},
        ]});
        let same = json!({"cases": [
            {"id": "a", "status": 200, "answer": {"ids": ["2", "1", "3"]}},
            {"id": "b", "status": 200, "answer": {"count": 3}},
            {"id": "c", "status": 200, "answer": {"buckets": [["s", "e", [["COMPLETED", "Completed", 2, 10.005, 99.0]]]]}},
        ]});
        assert!(compare(&expected, &same).differences.is_empty(), "ties are a multiset; sums within 0.01 s; null not checked");
        let different = json!({"cases": [
            {"id": "a", "status": 200, "answer": {"ids": ["1", "3", "2"]}},
            {"id": "b", "status": 200, "answer": {"count": 4}},
            {"id": "c", "status": 200, "answer": {"buckets": [["s", "e", [["COMPLETED", "Completed", 2, 10.5, 0.0]]]]}},
        ]});
        assert_eq!(compare(&expected, &different).differences.len(), 3);
    }
}
