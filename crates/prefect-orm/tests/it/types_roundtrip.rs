//! Round trips of the portable column types through real Prefect columns of migrated databases,
//! on both dialects: timestamps, intervals, UUIDs, JSON (jsonb-kind and plain json-kind), the
//! five enums and booleans.
//!
//! Each body runs once per dialect (`conformance!`) on its own copy of a migrated template. Values
//! are written through the generated models (`NewFlowRun`, `FlowRunChangeset`, …) and read back
//! through the typed rows (`FlowRun::as_select()`, …); on SQLite the stored value itself is also
//! checked (`SELECT col`, `typeof(col)`), on PostgreSQL its text form (`col::text`).
//!
//! Every expected value below is derived from the specification
//! (`prefect-db-layer.md` §0.1, §5 and §12): what Prefect 3.9.1 stores, not what this crate
//! happens to produce.

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use diesel::sql_types::{Nullable, Text};
use diesel::{Connection as _, ExpressionMethods, QueryDsl, QueryableByName, SelectableHelper};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use prefect_db_test::{Dialect, TestDatabase, TestResult, conformance};
use prefect_orm::migrations::{PgMigrator, UpgradeTarget, upgrade_sqlite};
use prefect_orm::models::{
    Artifact, Deployment, DeploymentChangeset, Flow, FlowRun, FlowRunChangeset, NewArtifact,
    NewDeployment, NewFlow, NewFlowRun, NewWorkPool, NewWorkQueue, NewWorker, WorkPool,
    WorkPoolChangeset, WorkQueue, WorkQueueChangeset, Worker, WorkerChangeset,
};
use prefect_orm::schema::{artifact, deployment, flow, flow_run, work_pool, work_queue, worker};
use prefect_orm::types::{
    DeploymentStatus, DeploymentStatusType, StateType, StateTypeType, Val, WorkPoolStatus,
    WorkPoolStatusType, WorkQueueStatus, WorkQueueStatusType, WorkerStatus, WorkerStatusType,
};
use serde_json::{Value, json};
use uuid::Uuid;

conformance!(
    timestamps_round_trip_at_the_edges,
    nanoseconds_are_floored_when_binding_filters,
    timestamp_order_is_time_order,
    intervals_round_trip,
    interval_column_default_reads_as_zero,
    uuids_are_lowercase_text_and_read_any_case,
    json_values_round_trip_as_python_text,
    json_null_is_not_sql_null,
    json_bare_numbers_use_numeric_affinity,
    json_non_finite_numbers_from_other_tools,
    enums_round_trip_through_real_columns,
    unknown_enum_labels_are_decode_errors,
    booleans_are_integers_on_sqlite,
);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

// ---------------------------------------------------------------------------------------------
// Test databases and connections
// ---------------------------------------------------------------------------------------------

/// The database name in a (password-masked) PostgreSQL URL: the path after the authority.
fn postgres_database_name(masked: &str) -> Result<String, String> {
    let rest = masked.split_once("://").map(|(_, r)| r).ok_or_else(|| format!("not a URL: {masked}"))?;
    let path = rest.split_once('/').map(|(_, p)| p).ok_or_else(|| format!("no database in {masked}"))?;
    let name = path.split(['?', '#']).next().unwrap_or_default();
    if name.is_empty() {
        return Err(format!("no database in {masked}"));
    }
    Ok(percent_decode(name))
}

/// Decodes `%XX` escapes (the URL writer escapes `_` in database names).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(b) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Migrates the template database. It is reached through the URL of its configuration; the
/// PostgreSQL URL is rebuilt from the test server's (the configuration only shows it masked).
async fn migrate_template(dialect: Dialect, masked_url: String) -> Result<(), String> {
    match dialect {
        Dialect::Sqlite => {
            let path = masked_url
                .strip_prefix("sqlite:///")
                .ok_or_else(|| format!("not an SQLite file URL: {masked_url}"))?;
            let mut conn = diesel::SqliteConnection::establish(path).map_err(|e| e.to_string())?;
            upgrade_sqlite(&mut conn, &UpgradeTarget::Latest).map_err(|e| e.to_string())?;
        }
        Dialect::Postgres => {
            let name = postgres_database_name(&masked_url)?;
            let server = prefect_db_test::postgres::server().await.map_err(|e| e.to_string())?;
            let url = server.admin.with_database(&name);
            let conn = AsyncPgConnection::establish(url.expose()).await.map_err(|e| e.to_string())?;
            PgMigrator::new(conn).upgrade(UpgradeTarget::Latest).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

enum Conn {
    Pg(Box<AsyncPgConnection>),
    Sqlite(SyncConnectionWrapper<diesel::SqliteConnection>),
}

/// Runs the same body on whichever connection the database has (type-checked per backend).
macro_rules! on {
    ($db:expr, |$c:ident| $body:expr) => {
        match &mut $db.conn {
            Conn::Pg($c) => {
                let $c: &mut AsyncPgConnection = &mut **$c;
                $body
            }
            Conn::Sqlite($c) => $body,
        }
    };
}

#[derive(QueryableByName)]
struct TextRow {
    #[diesel(sql_type = Nullable<Text>)]
    v: Option<String>,
}

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = Nullable<Text>)]
    v: Option<String>,
    #[diesel(sql_type = Text)]
    t: String,
}

/// A migrated database of one dialect and a connection to it.
struct Db {
    dialect: Dialect,
    conn: Conn,
    _db: TestDatabase,
}

impl Db {
    async fn open(dialect: Dialect) -> Result<Db, BoxError> {
        let db = TestDatabase::from_template(dialect, "types_roundtrip_migrated", move |config| {
            let masked = config.url.masked();
            async move { migrate_template(dialect, masked).await }
        })
        .await?;
        let conn = match dialect {
            Dialect::Sqlite => {
                let path = db.sqlite_path().ok_or("no SQLite path")?.to_string_lossy().into_owned();
                let mut c = SyncConnectionWrapper::<diesel::SqliteConnection>::establish(&path).await?;
                // As Prefect's connections (spec §0.1 #12).
                c.batch_execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 30000;").await?;
                Conn::Sqlite(c)
            }
            Dialect::Postgres => {
                let url = db.postgres_url().ok_or("no PostgreSQL URL")?.expose().to_owned();
                Conn::Pg(Box::new(AsyncPgConnection::establish(&url).await?))
            }
        };
        Ok(Db { dialect, conn, _db: db })
    }

    fn is_sqlite(&self) -> bool {
        self.dialect == Dialect::Sqlite
    }

    async fn exec(&mut self, sql: &str) -> Result<usize, diesel::result::Error> {
        let q = diesel::sql_query(sql.to_owned());
        on!(self, |c| q.execute(c).await)
    }

    /// The one value a query returns as column `v`.
    async fn text(&mut self, sql: &str) -> Result<Option<String>, BoxError> {
        let q = diesel::sql_query(sql.to_owned());
        let row: TextRow = on!(self, |c| q.get_result(c).await)?;
        Ok(row.v)
    }

    /// Every value of column `v`.
    async fn texts(&mut self, sql: &str) -> Result<Vec<Option<String>>, BoxError> {
        let q = diesel::sql_query(sql.to_owned());
        let rows: Vec<TextRow> = on!(self, |c| q.load(c).await)?;
        Ok(rows.into_iter().map(|r| r.v).collect())
    }

    /// SQLite: the stored value of a column as text and its storage class (`typeof`).
    async fn stored(&mut self, table: &str, column: &str, id: Uuid) -> Result<(Option<String>, String), BoxError> {
        let q = diesel::sql_query(format!(
            "SELECT {column} AS v, typeof({column}) AS t FROM {table} WHERE id = '{id}'"
        ));
        let row: StoredRow = on!(self, |c| q.get_result(c).await)?;
        Ok((row.v, row.t))
    }

    /// PostgreSQL: a column's value in PostgreSQL's text form (`col::text`).
    async fn pg_text(&mut self, table: &str, column: &str, id: Uuid) -> Result<Option<String>, BoxError> {
        self.text(&format!("SELECT {column}::text AS v FROM {table} WHERE id = '{id}'")).await
    }

    async fn new_flow(&mut self) -> Result<Uuid, BoxError> {
        let row = NewFlow::new(format!("flow-{}", Uuid::new_v4()));
        let id = row.id;
        on!(self, |c| diesel::insert_into(flow::table).values(row).execute(c).await)?;
        Ok(id)
    }

    async fn new_flow_run(&mut self, flow_id: Uuid) -> Result<Uuid, BoxError> {
        let row = NewFlowRun::new(format!("run-{}", Uuid::new_v4()), flow_id);
        let id = row.id;
        on!(self, |c| diesel::insert_into(flow_run::table).values(row).execute(c).await)?;
        Ok(id)
    }

    /// A flow and one run of it.
    async fn run(&mut self) -> Result<Uuid, BoxError> {
        let flow_id = self.new_flow().await?;
        self.new_flow_run(flow_id).await
    }

    async fn flow_run(&mut self, id: Uuid) -> Result<FlowRun, diesel::result::Error> {
        on!(self, |c| flow_run::table.filter(flow_run::id.eq(Val(id))).select(FlowRun::as_select()).first::<FlowRun>(c).await)
    }

    async fn flow(&mut self, id: Uuid) -> Result<Flow, diesel::result::Error> {
        on!(self, |c| flow::table.filter(flow::id.eq(Val(id))).select(Flow::as_select()).first::<Flow>(c).await)
    }

    async fn flow_named(&mut self, name: &str) -> Result<Flow, diesel::result::Error> {
        on!(self, |c| flow::table.filter(flow::name.eq(name)).select(Flow::as_select()).first::<Flow>(c).await)
    }

    async fn artifact(&mut self, id: Uuid) -> Result<Artifact, diesel::result::Error> {
        on!(self, |c| artifact::table.filter(artifact::id.eq(Val(id))).select(Artifact::as_select()).first::<Artifact>(c).await)
    }

    async fn deployment(&mut self, id: Uuid) -> Result<Deployment, diesel::result::Error> {
        on!(self, |c| deployment::table.filter(deployment::id.eq(Val(id))).select(Deployment::as_select()).first::<Deployment>(c).await)
    }

    async fn work_pool(&mut self, id: Uuid) -> Result<WorkPool, diesel::result::Error> {
        on!(self, |c| work_pool::table.filter(work_pool::id.eq(Val(id))).select(WorkPool::as_select()).first::<WorkPool>(c).await)
    }

    async fn work_queue(&mut self, id: Uuid) -> Result<WorkQueue, diesel::result::Error> {
        on!(self, |c| work_queue::table.filter(work_queue::id.eq(Val(id))).select(WorkQueue::as_select()).first::<WorkQueue>(c).await)
    }

    async fn worker(&mut self, id: Uuid) -> Result<Worker, diesel::result::Error> {
        on!(self, |c| worker::table.filter(worker::id.eq(Val(id))).select(Worker::as_select()).first::<Worker>(c).await)
    }

    async fn update_flow_run(&mut self, id: Uuid, cs: FlowRunChangeset) -> Result<(), BoxError> {
        let q = diesel::update(flow_run::table.filter(flow_run::id.eq(Val(id)))).set(cs);
        let n = on!(self, |c| q.execute(c).await)?;
        check(n == 1, format!("updated {n} flow runs"))
    }
}

fn check(cond: bool, msg: impl Into<String>) -> TestResult {
    if cond { Ok(()) } else { Err(msg.into().into()) }
}

fn eq<T: PartialEq + std::fmt::Debug>(got: T, want: T, what: &str) -> TestResult {
    check(got == want, format!("{what}: got {got:?}, want {want:?}"))
}

/// A UTC point in time with nanoseconds.
fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, nanos: u32) -> Result<DateTime<Utc>, BoxError> {
    Ok(NaiveDate::from_ymd_opt(y, mo, d)
        .and_then(|date| date.and_hms_nano_opt(h, mi, s, nanos))
        .ok_or_else(|| format!("invalid test time {y}-{mo}-{d} {h}:{mi}:{s}.{nanos}"))?
        .and_utc())
}

/// The same instant rendered by PostgreSQL in UTC, in the SQLite text layout.
fn pg_utc_text(column: &str) -> String {
    format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
}

// ---------------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------------

/// (value written, value expected back, stored text). The expected text is the spec's fixed
/// width `YYYY-MM-DD HH:MM:SS.ffffff` (§5.1, §5.3), anything below the microsecond dropped
/// towards the past (a floor: `.999999999` stays in the same second).
/// (value written, value expected back, stored text).
type TimestampCase = (DateTime<Utc>, DateTime<Utc>, &'static str);

fn timestamp_cases() -> Result<Vec<TimestampCase>, BoxError> {
    Ok(vec![
        // The last microsecond of a second and the next second.
        (at(2023, 12, 31, 23, 59, 59, 999_999_000)?, at(2023, 12, 31, 23, 59, 59, 999_999_000)?, "2023-12-31 23:59:59.999999"),
        (at(2024, 1, 1, 0, 0, 0, 0)?, at(2024, 1, 1, 0, 0, 0, 0)?, "2024-01-01 00:00:00.000000"),
        // Nanoseconds are floored, never rounded up (not .123457, not the next second).
        (at(2024, 6, 15, 10, 20, 30, 123_456_789)?, at(2024, 6, 15, 10, 20, 30, 123_456_000)?, "2024-06-15 10:20:30.123456"),
        (at(2024, 6, 15, 10, 20, 30, 999_999_999)?, at(2024, 6, 15, 10, 20, 30, 999_999_000)?, "2024-06-15 10:20:30.999999"),
        (at(2024, 6, 15, 10, 20, 30, 999)?, at(2024, 6, 15, 10, 20, 30, 0)?, "2024-06-15 10:20:30.000000"),
        // Before 1970: the last microsecond before the epoch, with and without extra nanoseconds.
        (at(1969, 12, 31, 23, 59, 59, 999_999_000)?, at(1969, 12, 31, 23, 59, 59, 999_999_000)?, "1969-12-31 23:59:59.999999"),
        (at(1969, 12, 31, 23, 59, 59, 999_999_999)?, at(1969, 12, 31, 23, 59, 59, 999_999_000)?, "1969-12-31 23:59:59.999999"),
        (at(1970, 1, 1, 0, 0, 0, 0)?, at(1970, 1, 1, 0, 0, 0, 0)?, "1970-01-01 00:00:00.000000"),
        (at(1900, 1, 1, 0, 0, 0, 0)?, at(1900, 1, 1, 0, 0, 0, 0)?, "1900-01-01 00:00:00.000000"),
        // Leap day.
        (at(2024, 2, 29, 12, 0, 0, 1_000)?, at(2024, 2, 29, 12, 0, 0, 1_000)?, "2024-02-29 12:00:00.000001"),
        // After 2100: the end of i64 nanoseconds since 1970, and the last microsecond of year 9999
        // (PostgreSQL's timestamptz reaches 294276 AD; SQLite text has four-digit years).
        (at(2262, 4, 11, 23, 47, 16, 854_775_807)?, at(2262, 4, 11, 23, 47, 16, 854_775_000)?, "2262-04-11 23:47:16.854775"),
        (at(9999, 12, 31, 23, 59, 59, 999_999_000)?, at(9999, 12, 31, 23, 59, 59, 999_999_000)?, "9999-12-31 23:59:59.999999"),
    ])
}

async fn timestamps_round_trip_at_the_edges(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let id = db.run().await?;
    for (written, expected, text) in timestamp_cases()? {
        let mut cs = FlowRunChangeset::new();
        cs.start_time = Some(Some(written));
        db.update_flow_run(id, cs).await?;
        let row = db.flow_run(id).await?;
        eq(row.start_time, Some(expected), &format!("start_time read back for {written:?}"))?;
        if db.is_sqlite() {
            let (v, t) = db.stored("flow_run", "start_time", id).await?;
            eq(v.as_deref(), Some(text), "SQLite stored start_time")?;
            eq(t.as_str(), "text", "SQLite typeof(start_time)")?;
        } else {
            let q = format!("SELECT {} AS v FROM flow_run WHERE id = '{id}'", pg_utc_text("start_time"));
            eq(db.text(&q).await?.as_deref(), Some(text), "PostgreSQL start_time in UTC")?;
        }
    }
    // Setting NULL again reads back as None.
    let mut cs = FlowRunChangeset::new();
    cs.start_time = Some(None);
    db.update_flow_run(id, cs).await?;
    eq(db.flow_run(id).await?.start_time, None, "start_time set to NULL")?;

    // The insert path too: `created`/`updated` and a nullable timestamp through `NewFlowRun`.
    let flow_id = db.new_flow().await?;
    let mut row = NewFlowRun::new("insert-path", flow_id);
    row.created = at(1969, 7, 20, 20, 17, 40, 123_456_789)?;
    row.updated = at(2100, 3, 1, 0, 0, 0, 0)?;
    row.expected_start_time = Some(at(2024, 2, 29, 23, 59, 59, 999_999_999)?);
    let run_id = row.id;
    on!(db, |c| diesel::insert_into(flow_run::table).values(row).execute(c).await)?;
    let read = db.flow_run(run_id).await?;
    eq(read.created, at(1969, 7, 20, 20, 17, 40, 123_456_000)?, "created via insert")?;
    eq(read.updated, at(2100, 3, 1, 0, 0, 0, 0)?, "updated via insert")?;
    eq(read.expected_start_time, Some(at(2024, 2, 29, 23, 59, 59, 999_999_000)?), "expected_start_time via insert")?;
    if db.is_sqlite() {
        eq(db.stored("flow_run", "created", run_id).await?, (Some("1969-07-20 20:17:40.123456".to_owned()), "text".to_owned()), "stored created")?;
        eq(db.stored("flow_run", "updated", run_id).await?.0.as_deref(), Some("2100-03-01 00:00:00.000000"), "stored updated")?;
        eq(db.stored("flow_run", "expected_start_time", run_id).await?.0.as_deref(), Some("2024-02-29 23:59:59.999999"), "stored expected_start_time")?;
    }
    Ok(())
}

/// A value with nanoseconds bound in a WHERE clause is floored exactly as when it was written,
/// so it finds the row on both dialects (SQLite compares text, PostgreSQL microseconds).
async fn nanoseconds_are_floored_when_binding_filters(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let id = db.run().await?;
    let written = at(2024, 3, 10, 8, 0, 0, 500_000_999)?;
    let mut cs = FlowRunChangeset::new();
    cs.start_time = Some(Some(written));
    db.update_flow_run(id, cs).await?;
    for (probe, want) in [
        (written, 1i64),                              // the same nanoseconds
        (at(2024, 3, 10, 8, 0, 0, 500_000_000)?, 1), // the floored value
        (at(2024, 3, 10, 8, 0, 0, 500_000_001)?, 1), // another value in the same microsecond
        (at(2024, 3, 10, 8, 0, 0, 500_001_000)?, 0), // the next microsecond
        (at(2024, 3, 10, 8, 0, 0, 499_999_999)?, 0), // the previous microsecond
    ] {
        let q = flow_run::table.filter(flow_run::start_time.eq(Val(probe))).count();
        let n: i64 = on!(db, |c| q.get_result(c).await)?;
        eq(n, want, &format!("rows with start_time = {probe:?}"))?;
    }
    // Ranges compare the same way: [floored, next µs) contains the row, (floored, …) does not.
    let lo = at(2024, 3, 10, 8, 0, 0, 500_000_999)?;
    let q = flow_run::table.filter(flow_run::start_time.gt(Val(lo))).count();
    let n: i64 = on!(db, |c| q.get_result(c).await)?;
    eq(n, 0, "rows with start_time > the written value (floored to itself)")?;
    let q = flow_run::table.filter(flow_run::start_time.ge(Val(lo))).count();
    let n: i64 = on!(db, |c| q.get_result(c).await)?;
    eq(n, 1, "rows with start_time >= the written value")?;
    Ok(())
}

/// ORDER BY on a timestamp column is time order, on SQLite because the text is fixed width.
async fn timestamp_order_is_time_order(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let flow_id = db.new_flow().await?;
    // Deliberately not in order; values that differ in the microseconds only, across 1970, with
    // whole seconds next to fractions (`…:00.000000` vs `…:00.5`), and years 1900 to 9999.
    let times = [
        at(2024, 1, 1, 9, 0, 0, 500_000_000)?,
        at(9999, 12, 31, 23, 59, 59, 999_999_000)?,
        at(1970, 1, 1, 0, 0, 0, 1_000)?,
        at(2024, 1, 1, 9, 0, 0, 0)?,
        at(1900, 1, 1, 0, 0, 0, 0)?,
        at(2024, 1, 1, 10, 0, 0, 0)?,
        at(1969, 12, 31, 23, 59, 59, 999_999_000)?,
        at(2262, 4, 11, 23, 47, 16, 854_775_000)?,
        at(2024, 1, 1, 9, 0, 0, 5_000)?,
        at(1970, 1, 1, 0, 0, 0, 0)?,
        at(2024, 2, 29, 0, 0, 0, 0)?,
        at(2024, 1, 1, 8, 59, 59, 999_999_000)?,
        at(2024, 1, 1, 9, 0, 0, 50_000_000)?,
    ];
    let mut expected = Vec::new();
    for t in times {
        let mut row = NewFlowRun::new(format!("order-{t:?}"), flow_id);
        row.expected_start_time = Some(t);
        expected.push((t, row.id));
        on!(db, |c| diesel::insert_into(flow_run::table).values(row).execute(c).await)?;
    }
    expected.sort();
    let want: Vec<Uuid> = expected.iter().map(|(_, id)| *id).collect();

    let rows: Vec<FlowRun> = on!(db, |c| flow_run::table
        .filter(flow_run::flow_id.eq(Val(flow_id)))
        .order(flow_run::expected_start_time.asc())
        .select(FlowRun::as_select())
        .load(c)
        .await)?;
    let got: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    eq(got, want.clone(), "ORDER BY expected_start_time ASC")?;
    let read: Vec<DateTime<Utc>> = rows.iter().filter_map(|r| r.expected_start_time).collect();
    let sorted: Vec<DateTime<Utc>> = expected.iter().map(|(t, _)| *t).collect();
    eq(read, sorted, "times read back in order")?;

    let q = flow_run::table
        .filter(flow_run::flow_id.eq(Val(flow_id)))
        .order(flow_run::expected_start_time.desc())
        .select(flow_run::id);
    let got: Vec<Val<Uuid>> = on!(db, |c| q.load::<Val<Uuid>>(c).await)?;
    let mut want_desc = want;
    want_desc.reverse();
    eq(got.into_iter().map(|v| v.0).collect::<Vec<_>>(), want_desc, "ORDER BY expected_start_time DESC")?;

    // A range filter is a time range (text comparison on SQLite).
    let (lo, hi) = (at(1970, 1, 1, 0, 0, 0, 0)?, at(2024, 1, 1, 9, 0, 0, 500_000_000)?);
    let want_in = expected.iter().filter(|(t, _)| *t >= lo && *t < hi).count() as i64;
    let q = flow_run::table
        .filter(flow_run::flow_id.eq(Val(flow_id)))
        .filter(flow_run::expected_start_time.ge(Val(lo)))
        .filter(flow_run::expected_start_time.lt(Val(hi)))
        .count();
    let n: i64 = on!(db, |c| q.get_result(c).await)?;
    eq(n, want_in, "rows in [1970-01-01, 2024-01-01 09:00:00.5)")?;
    // 1970-01-01 00:00:00, …00.000001, 2024-01-01 08:59:59.999999, 09:00:00, 09:00:00.000005 and
    // 09:00:00.05; not 1969 nor 1900 (before), not 09:00:00.5 itself (the excluded bound), 10:00,
    // the leap day, 2262 or 9999 (after).
    eq(want_in, 6, "the range holds the six values written between its bounds")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Intervals
// ---------------------------------------------------------------------------------------------

async fn intervals_round_trip(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let id = db.run().await?;
    // (duration, SQLite text = epoch + duration (§5.1, §5.4), PostgreSQL text of the interval
    // asyncpg sends: Python's timedelta split into floored days and non-negative microseconds,
    // printed in IntervalStyle `postgres` (§5.4, §12)).
    let cases = [
        (TimeDelta::zero(), "1970-01-01 00:00:00.000000", "00:00:00"),
        (TimeDelta::microseconds(611_316), "1970-01-01 00:00:00.611316", "00:00:00.611316"),
        (TimeDelta::days(2) + TimeDelta::seconds(3) + TimeDelta::microseconds(5), "1970-01-03 00:00:03.000005", "2 days 00:00:03.000005"),
        (TimeDelta::seconds(-1), "1969-12-31 23:59:59.000000", "-1 days +23:59:59"),
        (TimeDelta::microseconds(-1), "1969-12-31 23:59:59.999999", "-1 days +23:59:59.999999"),
        // −(3 days 4 hours) = −76 h: 1970-01-01 − 3 days = 12-29, − 4 h = 12-28 20:00;
        // timedelta(days=-4, seconds=72000).
        (-(TimeDelta::days(3) + TimeDelta::hours(4)), "1969-12-28 20:00:00.000000", "-4 days +20:00:00"),
        // 1970 has 365 days: 400 days after 1970-01-01 is 1971-01-01 + 35 days = 1971-02-05.
        (TimeDelta::days(400), "1971-02-05 00:00:00.000000", "400 days"),
    ];
    for (value, sqlite_text, pg_text) in cases {
        let mut cs = FlowRunChangeset::new();
        cs.total_run_time = Some(value);
        db.update_flow_run(id, cs).await?;
        eq(db.flow_run(id).await?.total_run_time, value, &format!("total_run_time read back for {value}"))?;
        if db.is_sqlite() {
            let (v, t) = db.stored("flow_run", "total_run_time", id).await?;
            eq(v.as_deref(), Some(sqlite_text), &format!("SQLite stored total_run_time for {value}"))?;
            eq(t.as_str(), "text", "SQLite typeof(total_run_time)")?;
        } else {
            eq(db.pg_text("flow_run", "total_run_time", id).await?.as_deref(), Some(pg_text), &format!("PostgreSQL total_run_time::text for {value}"))?;
        }
    }
    // A new run written through the model stores an explicit zero (Prefect never relies on
    // the column default, §5.4).
    let flow_id = db.new_flow().await?;
    let fresh = db.new_flow_run(flow_id).await?;
    eq(db.flow_run(fresh).await?.total_run_time, TimeDelta::zero(), "a new run's total_run_time")?;
    if db.is_sqlite() {
        eq(db.stored("flow_run", "total_run_time", fresh).await?, (Some("1970-01-01 00:00:00.000000".to_owned()), "text".to_owned()), "a new run's stored total_run_time")?;
    }
    Ok(())
}

/// A raw insert that leaves `total_run_time` to its default: integer 0 on SQLite (`DEFAULT '0'`
/// with NUMERIC affinity, §0.1 #4, §12), `'00:00:00'` on PostgreSQL. Both read as zero. Other
/// tools' lenient text (no fraction) reads as the duration it denotes.
async fn interval_column_default_reads_as_zero(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let flow_id = db.new_flow().await?;
    let id = Uuid::new_v4();
    db.exec(&format!("INSERT INTO flow_run (id, name, flow_id) VALUES ('{id}', 'raw-insert', '{flow_id}')")).await?;
    if db.is_sqlite() {
        eq(db.stored("flow_run", "total_run_time", id).await?, (Some("0".to_owned()), "integer".to_owned()), "SQLite default total_run_time")?;
    } else {
        eq(db.pg_text("flow_run", "total_run_time", id).await?.as_deref(), Some("00:00:00"), "PostgreSQL default total_run_time")?;
    }
    eq(db.flow_run(id).await?.total_run_time, TimeDelta::zero(), "default total_run_time read back")?;
    if db.is_sqlite() {
        // `created` came from the database's `now()`: `strftime('%Y-%m-%d %H:%M:%f000', 'now')`,
        // milliseconds padded to the same 26-character width (§0.1 #3), and it decodes.
        let (v, t) = db.stored("flow_run", "created", id).await?;
        let v = v.unwrap_or_default();
        check(t == "text" && v.len() == 26 && v.ends_with("000") && v.as_bytes().get(10) == Some(&b' '), format!("DB-side created {v:?} ({t})"))?;
        let created = db.flow_run(id).await?.created;
        eq(prefect_orm::types::timefmt::format_timestamp(&created), v, "DB-side created read back")?;
    }

    // Written by another tool as text: one and a half seconds after the epoch.
    let sql = if db.is_sqlite() {
        format!("UPDATE flow_run SET total_run_time = '1970-01-01 00:00:01.5' WHERE id = '{id}'")
    } else {
        format!("UPDATE flow_run SET total_run_time = interval '1.5 seconds' WHERE id = '{id}'")
    };
    db.exec(&sql).await?;
    eq(db.flow_run(id).await?.total_run_time, TimeDelta::milliseconds(1_500), "1.5 s written by another tool")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// UUIDs
// ---------------------------------------------------------------------------------------------

async fn uuids_are_lowercase_text_and_read_any_case(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    // A UUIDv7 with hex letters in every group (clients send v7 ids, §5.2).
    let lower = "0191a2b3-c4d5-7e6f-8a9b-0c1d2e3f4a5b";
    let id = Uuid::parse_str(lower)?;
    let mut row = NewFlow::new("lowercase-id");
    row.id = id;
    on!(db, |c| diesel::insert_into(flow::table).values(row).execute(c).await)?;
    let read = db.flow(id).await?;
    eq(read.id, id, "flow id read back")?;
    if db.is_sqlite() {
        // `str(uuid.UUID(v))`: lowercase, hyphenated, 36 characters (§5.1).
        let (v, t) = db.stored("flow", "id", id).await?;
        eq(v.as_deref(), Some(lower), "SQLite stored id")?;
        eq(t.as_str(), "text", "SQLite typeof(id)")?;
        eq(db.text(&format!("SELECT CAST(length(id) AS TEXT) AS v FROM flow WHERE id = '{lower}'")).await?.as_deref(), Some("36"), "SQLite length(id)")?;
    } else {
        eq(db.pg_text("flow", "id", id).await?.as_deref(), Some(lower), "PostgreSQL id::text")?;
    }

    // A foreign key column and a nullable UUID column through the flow_run model.
    let run = db.new_flow_run(id).await?;
    let deployment = NewDeployment::new("uuid-deployment", id);
    let deployment_id = deployment.id;
    on!(db, |c| diesel::insert_into(deployment::table).values(deployment).execute(c).await)?;
    eq(db.flow_run(run).await?.deployment_id, None, "deployment_id left NULL")?;
    let mut cs = FlowRunChangeset::new();
    cs.deployment_id = Some(Some(deployment_id));
    db.update_flow_run(run, cs).await?;
    let read = db.flow_run(run).await?;
    eq((read.flow_id, read.deployment_id), (id, Some(deployment_id)), "flow_id and deployment_id read back")?;
    if db.is_sqlite() {
        let (v, _) = db.stored("flow_run", "flow_id", run).await?;
        eq(v.as_deref(), Some(lower), "SQLite stored flow_id")?;
        let (v, _) = db.stored("flow_run", "deployment_id", run).await?;
        eq(v, Some(deployment_id.hyphenated().to_string()), "SQLite stored deployment_id")?;
    }

    // Upper case, written by another tool, reads back as the same UUID.
    let upper = "ABCDEF01-2345-4789-ABCD-EF0123456789";
    let upper_id = Uuid::parse_str(&upper.to_lowercase())?;
    db.exec(&format!("INSERT INTO flow (id, name) VALUES ('{upper}', 'upper-case-id')")).await?;
    let read = db.flow_named("upper-case-id").await?;
    eq(read.id, upper_id, "upper-case id read back")?;
    // Equality on SQLite is a text comparison, so Prefect's (and our) lowercase bind does not find
    // the upper-case row (§5.2); PostgreSQL's uuid type normalises on input and finds it.
    let q = flow::table.filter(flow::id.eq(Val(upper_id))).count();
    let n: i64 = on!(db, |c| q.get_result(c).await)?;
    if db.is_sqlite() {
        eq(db.stored("flow", "id", upper_id).await.ok(), None, "lowercase lookup of the upper-case text")?;
        let v = db.text(&format!("SELECT id AS v FROM flow WHERE id = '{upper}'")).await?;
        eq(v.as_deref(), Some(upper), "SQLite keeps the other tool's text")?;
        eq(n, 0, "SQLite: a lowercase bind does not match upper-case text")?;
    } else {
        eq(db.pg_text("flow", "id", upper_id).await?.as_deref(), Some("abcdef01-2345-4789-abcd-ef0123456789"), "PostgreSQL id::text")?;
        eq(n, 1, "PostgreSQL: uuid equality ignores the input case")?;
    }

    // Other forms Python's `uuid.UUID(value)` reads (§5.2): braces, no hyphens.
    for (name, text) in [
        ("braced-id", "{0191a2b3-0000-7e6f-8a9b-0c1d2e3f4a5b}"),
        ("simple-id", "0191a2b300017e6f8a9b0c1d2e3f4a5b"),
    ] {
        db.exec(&format!("INSERT INTO flow (id, name) VALUES ('{text}', '{name}')")).await?;
        let want = Uuid::parse_str(text.trim_matches(['{', '}']))?;
        eq(db.flow_named(name).await?.id, want, &format!("{name} read back"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------------------

/// `n` nested objects `{"a": {"a": … 1 …}}` and their Python text.
fn nested_objects(n: usize) -> (Value, String) {
    let mut v = json!(1);
    for _ in 0..n {
        v = json!({ "a": v });
    }
    (v, format!("{}1{}", "{\"a\": ".repeat(n), "}".repeat(n)))
}

/// `n` nested arrays around `"x"` and their Python text.
fn nested_arrays(n: usize) -> (Value, String) {
    let mut v = json!("x");
    for _ in 0..n {
        v = json!([v]);
    }
    (v, format!("{}\"x\"{}", "[".repeat(n), "]".repeat(n)))
}

/// (value, Python `json.dumps(value)`): `", "` and `": "` separators, `ensure_ascii=True` so
/// every character outside `' '..='~'` is `\uXXXX` (surrogate pairs above U+FFFF; `\b \f \n \r
/// \t` keep their short escapes), `"/"` is not escaped, floats are `repr` (§5.5, §12). Keys are
/// written in sorted order, as `serde_json::Map` keeps them.
fn json_cases() -> Vec<(Value, String)> {
    let (deep_obj, deep_obj_text) = nested_objects(64);
    let (deep_arr, deep_arr_text) = nested_arrays(64);
    vec![
        (json!({"a": 1, "b": [1, 2]}), r#"{"a": 1, "b": [1, 2]}"#.to_owned()),
        (json!("héllo ☃"), r#""h\u00e9llo \u2603""#.to_owned()),
        (json!({"x": "ünï", "f": 1.0, "n": null}), r#"{"f": 1.0, "n": null, "x": "\u00fcn\u00ef"}"#.to_owned()),
        // U+1F600 = D83D DE00, U+1F389 = D83C DF89.
        (json!({"emoji": "😀 🎉"}), r#"{"emoji": "\ud83d\ude00 \ud83c\udf89"}"#.to_owned()),
        // Control characters other than NUL (PostgreSQL's jsonb rejects \u0000), DEL, quotes.
        (json!("\u{1}\u{1f}\t\n\r\u{8}\u{c}\"\\/\u{7f}"), r#""\u0001\u001f\t\n\r\b\f\"\\/\u007f""#.to_owned()),
        (json!({"big": u64::MAX, "min": i64::MIN, "max": i64::MAX}), r#"{"big": 18446744073709551615, "max": 9223372036854775807, "min": -9223372036854775808}"#.to_owned()),
        (json!({"a": 1.0, "b": 1e20, "c": 0.1, "d": 1e-5, "e": 3601.5, "f": -2.5e-7}), r#"{"a": 1.0, "b": 1e+20, "c": 0.1, "d": 1e-05, "e": 3601.5, "f": -2.5e-07}"#.to_owned()),
        (json!([1.0, 1e20, 0.1]), "[1.0, 1e+20, 0.1]".to_owned()),
        (json!({}), "{}".to_owned()),
        (json!([]), "[]".to_owned()),
        (json!({"empty_obj": {}, "empty_arr": [], "t": true, "f": false, "n": null}), r#"{"empty_arr": [], "empty_obj": {}, "f": false, "n": null, "t": true}"#.to_owned()),
        (json!("5"), r#""5""#.to_owned()),
        (json!(true), "true".to_owned()),
        (deep_obj, deep_obj_text),
        (deep_arr, deep_arr_text),
    ]
}

async fn json_values_round_trip_as_python_text(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let run = db.run().await?;
    for (value, text) in json_cases() {
        // jsonb-kind: flow_run.parameters.
        let mut cs = FlowRunChangeset::new();
        cs.parameters = Some(value.clone());
        db.update_flow_run(run, cs).await?;
        eq(&db.flow_run(run).await?.parameters, &value, "parameters read back")?;
        if db.is_sqlite() {
            let (v, t) = db.stored("flow_run", "parameters", run).await?;
            eq(v.as_deref(), Some(text.as_str()), "SQLite stored parameters")?;
            eq(t.as_str(), "text", &format!("SQLite typeof(parameters) for {text}"))?;
        }

        // json-kind: artifact.data, a fresh row per value through the insert path.
        let mut row = NewArtifact::new();
        row.data = Some(value.clone());
        let art = row.id;
        on!(db, |c| diesel::insert_into(artifact::table).values(row).execute(c).await)?;
        let read = db.artifact(art).await?;
        eq(read.data.as_ref(), Some(&value), "artifact.data read back")?;
        // PostgreSQL's `json` keeps the text as sent (§5.5), so both dialects hold Python's text.
        let stored = if db.is_sqlite() {
            let (v, t) = db.stored("artifact", "data", art).await?;
            eq(t.as_str(), "text", "SQLite typeof(artifact.data)")?;
            v
        } else {
            db.pg_text("artifact", "data", art).await?
        };
        eq(stored.as_deref(), Some(text.as_str()), "stored artifact.data")?;
    }

    // jsonb normalises its text: spacing canonical, non-ASCII unescaped (§5.5, §12).
    if !db.is_sqlite() {
        for (value, jsonb_text) in [(json!({"a": 1, "b": [1, 2]}), r#"{"a": 1, "b": [1, 2]}"#), (json!("héllo ☃"), r#""héllo ☃""#)] {
            let mut cs = FlowRunChangeset::new();
            cs.parameters = Some(value);
            db.update_flow_run(run, cs).await?;
            eq(db.pg_text("flow_run", "parameters", run).await?.as_deref(), Some(jsonb_text), "PostgreSQL parameters::text")?;
        }
    }
    Ok(())
}

/// `Some(Value::Null)` is the JSON text `null`; `None` is SQL NULL. They stay distinct on both
/// dialects, in a jsonb-kind column (`flow_run.created_by`) and a json-kind one
/// (`artifact.metadata_`, where Prefect itself stores Python `None` as text `null`, §0.1 #6).
async fn json_null_is_not_sql_null(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let flow_id = db.new_flow().await?;
    let json_null = db.new_flow_run(flow_id).await?;
    let sql_null = db.new_flow_run(flow_id).await?;
    let mut cs = FlowRunChangeset::new();
    cs.created_by = Some(Some(Value::Null));
    db.update_flow_run(json_null, cs).await?;
    let mut cs = FlowRunChangeset::new();
    cs.created_by = Some(None);
    db.update_flow_run(sql_null, cs).await?;
    eq(db.flow_run(json_null).await?.created_by, Some(Value::Null), "created_by = JSON null")?;
    eq(db.flow_run(sql_null).await?.created_by, None, "created_by = SQL NULL")?;

    let mut a = NewArtifact::new();
    a.metadata_ = Some(Value::Null);
    let mut b = NewArtifact::new();
    b.metadata_ = None;
    let (a_id, b_id) = (a.id, b.id);
    on!(db, |c| diesel::insert_into(artifact::table).values(a).execute(c).await)?;
    on!(db, |c| diesel::insert_into(artifact::table).values(b).execute(c).await)?;
    for (id, want) in [(a_id, Some(Value::Null)), (b_id, None)] {
        let read = db.artifact(id).await?;
        eq(read.metadata_, want, "artifact.metadata_ read back")?;
    }

    if db.is_sqlite() {
        for (table, column, id_null, id_none) in [("flow_run", "created_by", json_null, sql_null), ("artifact", "metadata_", a_id, b_id)] {
            eq(db.stored(table, column, id_null).await?, (Some("null".to_owned()), "text".to_owned()), &format!("SQLite {table}.{column} JSON null"))?;
            eq(db.stored(table, column, id_none).await?, (None, "null".to_owned()), &format!("SQLite {table}.{column} SQL NULL"))?;
        }
    } else {
        for (table, column, id_null, id_none) in [("flow_run", "created_by", json_null, sql_null), ("artifact", "metadata_", a_id, b_id)] {
            eq(db.pg_text(table, column, id_null).await?.as_deref(), Some("null"), &format!("PostgreSQL {table}.{column} JSON null"))?;
            eq(db.pg_text(table, column, id_none).await?, None, &format!("PostgreSQL {table}.{column} SQL NULL"))?;
        }
        let t = db.text(&format!("SELECT jsonb_typeof(created_by) AS v FROM flow_run WHERE id = '{json_null}'")).await?;
        eq(t.as_deref(), Some("null"), "jsonb_typeof(created_by)")?;
    }
    Ok(())
}

/// JSON columns have NUMERIC affinity on SQLite: a top-level number is stored as INTEGER or
/// REAL, not text (§5.5, §12: `5` → integer, `1.5` → real, `1e20` → real), and reads back.
async fn json_bare_numbers_use_numeric_affinity(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let run = db.run().await?;
    let cases = [
        (json!(5), "integer"),
        (json!(-42), "integer"),
        (json!(i64::MAX), "integer"),
        (json!(1.5), "real"),
        (json!(0.1), "real"),
        (json!(1e20), "real"),
    ];
    for (value, class) in cases {
        let mut cs = FlowRunChangeset::new();
        cs.parameters = Some(value.clone());
        db.update_flow_run(run, cs).await?;
        eq(&db.flow_run(run).await?.parameters, &value, "bare number read back")?;
        if db.is_sqlite() {
            eq(db.stored("flow_run", "parameters", run).await?.1.as_str(), class, &format!("SQLite typeof for {value}"))?;
        }
    }

    // `1.0` is written as Python's text `1.0`; SQLite's NUMERIC affinity turns a real literal with
    // an exact integer value into INTEGER 1 (as for Prefect's own writes), so on SQLite the float
    // reads back as the number 1; jsonb keeps `1.0`.
    let mut cs = FlowRunChangeset::new();
    cs.parameters = Some(json!(1.0));
    db.update_flow_run(run, cs).await?;
    let read = db.flow_run(run).await?.parameters;
    if db.is_sqlite() {
        eq(db.stored("flow_run", "parameters", run).await?, (Some("1".to_owned()), "integer".to_owned()), "SQLite stored 1.0")?;
        eq(read.as_f64(), Some(1.0), "1.0 read back as a number")?;
    } else {
        eq(read, json!(1.0), "1.0 read back")?;
    }

    // A bare number written by another tool.
    let sql = if db.is_sqlite() {
        format!("UPDATE flow_run SET parameters = 5 WHERE id = '{run}'")
    } else {
        format!("UPDATE flow_run SET parameters = '5'::jsonb WHERE id = '{run}'")
    };
    db.exec(&sql).await?;
    eq(db.flow_run(run).await?.parameters, json!(5), "raw bare 5 read back")?;
    if db.is_sqlite() {
        eq(db.stored("flow_run", "parameters", run).await?, (Some("5".to_owned()), "integer".to_owned()), "SQLite raw 5")?;
        db.exec(&format!("UPDATE flow_run SET parameters = 2.25 WHERE id = '{run}'")).await?;
        eq(db.flow_run(run).await?.parameters, json!(2.25), "raw bare 2.25 read back")?;
    }
    Ok(())
}

/// NaN and ±Infinity in JSON text written by another tool read as `null` (Prefect scrubs them
/// before storing, §0.1 #7); PostgreSQL's json and jsonb refuse such text outright.
async fn json_non_finite_numbers_from_other_tools(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let run = db.run().await?;
    let art = NewArtifact::new();
    let art_id = art.id;
    on!(db, |c| diesel::insert_into(artifact::table).values(art).execute(c).await)?;
    let text = r#"{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN", "d": 1.5}"#;
    let want = json!({"a": null, "b": [null, null], "c": "NaN", "d": 1.5});
    let update_params = format!("UPDATE flow_run SET parameters = '{text}' WHERE id = '{run}'");
    let update_data = format!("UPDATE artifact SET data = '{text}' WHERE id = '{art_id}'");
    if db.is_sqlite() {
        db.exec(&update_params).await?;
        eq(db.flow_run(run).await?.parameters, want.clone(), "parameters with NaN/Infinity")?;
        db.exec(&update_data).await?;
        let read = db.artifact(art_id).await?;
        eq(read.data, Some(want), "artifact.data with NaN/Infinity")?;
        // Text that is not JSON at all is a decode error, not a panic.
        db.exec(&format!("UPDATE flow_run SET parameters = '{{not json' WHERE id = '{run}'")).await?;
        match db.flow_run(run).await {
            Err(diesel::result::Error::DeserializationError(_)) => {}
            other => return Err(format!("invalid JSON text: expected a decode error, got {other:?}").into()),
        }
    } else {
        check(db.exec(&update_params).await.is_err(), "PostgreSQL jsonb accepted NaN")?;
        check(db.exec(&update_data).await.is_err(), "PostgreSQL json accepted NaN")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------------------------

/// Rows of every table with an enum column.
struct EnumRows {
    run: Uuid,
    deployment: Uuid,
    pool: Uuid,
    queue: Uuid,
    worker: Uuid,
}

async fn enum_rows(db: &mut Db) -> Result<EnumRows, BoxError> {
    let flow_id = db.new_flow().await?;
    let run = db.new_flow_run(flow_id).await?;
    let d = NewDeployment::new("enum-deployment", flow_id);
    let p = NewWorkPool::new("enum-pool", "process");
    let (deployment, pool) = (d.id, p.id);
    let q = NewWorkQueue::new("enum-queue", pool);
    let w = NewWorker::new("enum-worker", pool);
    let (queue, worker) = (q.id, w.id);
    on!(db, |c| diesel::insert_into(deployment::table).values(d).execute(c).await)?;
    on!(db, |c| diesel::insert_into(work_pool::table).values(p).execute(c).await)?;
    on!(db, |c| diesel::insert_into(work_queue::table).values(q).execute(c).await)?;
    on!(db, |c| diesel::insert_into(worker::table).values(w).execute(c).await)?;
    Ok(EnumRows { run, deployment, pool, queue, worker })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Checks a stored label: `typeof` text on SQLite, `col::text` on PostgreSQL.
async fn stored_label(db: &mut Db, table: &str, column: &str, id: Uuid, label: &str) -> TestResult {
    if db.is_sqlite() {
        eq(db.stored(table, column, id).await?, (Some(label.to_owned()), "text".to_owned()), &format!("SQLite {table}.{column}"))
    } else {
        eq(db.pg_text(table, column, id).await?.as_deref(), Some(label), &format!("PostgreSQL {table}.{column}"))
    }
}

async fn enums_round_trip_through_real_columns(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let rows = enum_rows(&mut db).await?;

    // The labels of §0.1 #8 / §5.1: member names, upper case.
    let labels = |l: &[&str]| sorted(l.iter().map(|s| (*s).to_owned()).collect());
    let expected: [(&str, Vec<String>, Vec<String>); 5] = [
        ("state_type", labels(&["SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "CRASHED", "PAUSED", "CANCELLING"]), sorted(StateType::ALL.iter().map(|v| v.as_str().to_owned()).collect())),
        ("deployment_status", labels(&["READY", "NOT_READY"]), sorted(DeploymentStatus::ALL.iter().map(|v| v.as_str().to_owned()).collect())),
        ("work_pool_status", labels(&["READY", "NOT_READY", "PAUSED"]), sorted(WorkPoolStatus::ALL.iter().map(|v| v.as_str().to_owned()).collect())),
        ("work_queue_status", labels(&["READY", "NOT_READY", "PAUSED"]), sorted(WorkQueueStatus::ALL.iter().map(|v| v.as_str().to_owned()).collect())),
        ("worker_status", labels(&["ONLINE", "OFFLINE"]), sorted(WorkerStatus::ALL.iter().map(|v| v.as_str().to_owned()).collect())),
    ];
    for (pg_type, want, ours) in &expected {
        eq(ours, want, &format!("labels of {pg_type}"))?;
        if !db.is_sqlite() {
            let got = db.texts(&format!("SELECT unnest(enum_range(NULL::{pg_type}))::text AS v")).await?;
            eq(&sorted(got.into_iter().flatten().collect()), want, &format!("PostgreSQL labels of {pg_type}"))?;
        }
    }

    // flow_run.state_type (nullable): NULL first, then every value.
    eq(db.flow_run(rows.run).await?.state_type, None, "state_type of a new run")?;
    for &value in StateType::ALL {
        let mut cs = FlowRunChangeset::new();
        cs.state_type = Some(Some(value));
        db.update_flow_run(rows.run, cs).await?;
        eq(db.flow_run(rows.run).await?.state_type, Some(value), "state_type read back")?;
        stored_label(&mut db, "flow_run", "state_type", rows.run, value.as_str()).await?;
    }

    // deployment.status: the database default first (NOT_READY), then every value.
    let read = db.deployment(rows.deployment).await?;
    eq(read.status, DeploymentStatus::NotReady, "deployment.status default")?;
    for &value in DeploymentStatus::ALL {
        let mut cs = DeploymentChangeset::new();
        cs.status = Some(value);
        let q = diesel::update(deployment::table.filter(deployment::id.eq(Val(rows.deployment)))).set(cs);
        on!(db, |c| q.execute(c).await)?;
        let read = db.deployment(rows.deployment).await?;
        eq(read.status, value, "deployment.status read back")?;
        stored_label(&mut db, "deployment", "status", rows.deployment, value.as_str()).await?;
    }

    for &value in WorkPoolStatus::ALL {
        let mut cs = WorkPoolChangeset::new();
        cs.status = Some(value);
        let q = diesel::update(work_pool::table.filter(work_pool::id.eq(Val(rows.pool)))).set(cs);
        on!(db, |c| q.execute(c).await)?;
        let read = db.work_pool(rows.pool).await?;
        eq(read.status, value, "work_pool.status read back")?;
        stored_label(&mut db, "work_pool", "status", rows.pool, value.as_str()).await?;
    }

    for &value in WorkQueueStatus::ALL {
        let mut cs = WorkQueueChangeset::new();
        cs.status = Some(value);
        let q = diesel::update(work_queue::table.filter(work_queue::id.eq(Val(rows.queue)))).set(cs);
        on!(db, |c| q.execute(c).await)?;
        let read = db.work_queue(rows.queue).await?;
        eq(read.status, value, "work_queue.status read back")?;
        stored_label(&mut db, "work_queue", "status", rows.queue, value.as_str()).await?;
    }

    for &value in WorkerStatus::ALL {
        let mut cs = WorkerChangeset::new();
        cs.status = Some(value);
        let q = diesel::update(worker::table.filter(worker::id.eq(Val(rows.worker)))).set(cs);
        on!(db, |c| q.execute(c).await)?;
        let read = db.worker(rows.worker).await?;
        eq(read.status, value, "worker.status read back")?;
        stored_label(&mut db, "worker", "status", rows.worker, value.as_str()).await?;
    }

    // Filters bind the label too.
    let q = flow_run::table.filter(flow_run::state_type.eq(StateType::Cancelling)).count();
    let n: i64 = on!(db, |c| q.get_result(c).await)?;
    eq(n, 1, "runs with state_type = CANCELLING (the last value written)")?;
    Ok(())
}

macro_rules! label_row {
    ($name:ident, $sql:ty, $rust:ty) => {
        #[derive(QueryableByName, Debug)]
        #[allow(dead_code)]
        struct $name {
            #[diesel(sql_type = $sql)]
            v: $rust,
        }
    };
}
label_row!(StateTypeRow, StateTypeType, StateType);
label_row!(DeploymentStatusRow, DeploymentStatusType, DeploymentStatus);
label_row!(WorkPoolStatusRow, WorkPoolStatusType, WorkPoolStatus);
label_row!(WorkQueueStatusRow, WorkQueueStatusType, WorkQueueStatus);
label_row!(WorkerStatusRow, WorkerStatusType, WorkerStatus);

/// A read that must fail with a decode error naming the label.
fn decode_error<T: std::fmt::Debug>(result: Result<T, diesel::result::Error>, label: &str, what: &str) -> TestResult {
    match result {
        Err(diesel::result::Error::DeserializationError(e)) => {
            // Typed rows wrap the decoder's error with the field name: look along the chain.
            let mut chain = e.to_string();
            let mut source = e.source();
            while let Some(inner) = source {
                chain.push_str(": ");
                chain.push_str(&inner.to_string());
                source = inner.source();
            }
            check(chain.contains(label), format!("{what}: the error does not name {label:?}: {chain}"))
        }
        other => Err(format!("{what}: expected a decode error, got {other:?}").into()),
    }
}

/// A label outside the enum: another tool can store one on SQLite (no CHECK constraint, §0.1
/// #8) and reading it is a decode error, not a panic; PostgreSQL's enum types refuse it.
async fn unknown_enum_labels_are_decode_errors(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let rows = enum_rows(&mut db).await?;
    let writes = [
        ("flow_run", "state_type", rows.run, "BOGUS"),
        ("deployment", "status", rows.deployment, "SOMETIMES"),
        ("work_pool", "status", rows.pool, "ready"), // labels are case-sensitive
        ("work_queue", "status", rows.queue, "DRAINING"),
        ("worker", "status", rows.worker, "ASLEEP"),
    ];
    for (table, column, id, label) in writes {
        let written = db.exec(&format!("UPDATE {table} SET {column} = '{label}' WHERE id = '{id}'")).await;
        if db.is_sqlite() {
            eq(written.ok(), Some(1), &format!("SQLite accepts {label:?} in {table}.{column}"))?;
        } else {
            check(written.is_err(), format!("PostgreSQL accepted {label:?} in {table}.{column}"))?;
        }
    }
    // A whole row inserted by another tool with a label outside the enum.
    let flow_id = db.new_flow().await?;
    let foreign = Uuid::new_v4();
    let inserted = db
        .exec(&format!("INSERT INTO flow_run (id, name, flow_id, state_type) VALUES ('{foreign}', 'foreign', '{flow_id}', 'UNKNOWN')"))
        .await;
    if db.is_sqlite() {
        eq(inserted.ok(), Some(1), "SQLite accepts an insert with state_type 'UNKNOWN'")?;
        decode_error(db.flow_run(foreign).await, "UNKNOWN", "flow_run inserted by another tool")?;
    } else {
        check(inserted.is_err(), "PostgreSQL accepted an insert with state_type 'UNKNOWN'")?;
    }

    if db.is_sqlite() {
        decode_error(db.flow_run(rows.run).await, "BOGUS", "flow_run")?;
        decode_error(db.deployment(rows.deployment).await, "SOMETIMES", "deployment")?;
        decode_error(db.work_pool(rows.pool).await, "ready", "work_pool")?;
        decode_error(db.work_queue(rows.queue).await, "DRAINING", "work_queue")?;
        decode_error(db.worker(rows.worker).await, "ASLEEP", "worker")?;
        // The other rows are unaffected: a query that does not select the bad column works.
        let q = flow_run::table.filter(flow_run::id.eq(Val(rows.run))).select(flow_run::name);
        let name: String = on!(db, |c| q.first(c).await)?;
        check(name.starts_with("run-"), format!("flow_run.name = {name:?}"))?;
    } else {
        // The rows kept their labels.
        eq(db.flow_run(rows.run).await?.state_type, None, "flow_run.state_type after the refused update")?;
    }

    // On both dialects the decoders themselves reject text that is not a label.
    let q = diesel::sql_query("SELECT 'BOGUS' AS v");
    decode_error(on!(db, |c| q.get_result::<StateTypeRow>(c).await), "BOGUS", "state_type decoder")?;
    let q = diesel::sql_query("SELECT 'completed' AS v");
    decode_error(on!(db, |c| q.get_result::<StateTypeRow>(c).await), "completed", "state_type decoder, lower case")?;
    let q = diesel::sql_query("SELECT 'SOMETIMES' AS v");
    decode_error(on!(db, |c| q.get_result::<DeploymentStatusRow>(c).await), "SOMETIMES", "deployment_status decoder")?;
    let q = diesel::sql_query("SELECT 'ready' AS v");
    decode_error(on!(db, |c| q.get_result::<WorkPoolStatusRow>(c).await), "ready", "work_pool_status decoder")?;
    let q = diesel::sql_query("SELECT 'DRAINING' AS v");
    decode_error(on!(db, |c| q.get_result::<WorkQueueStatusRow>(c).await), "DRAINING", "work_queue_status decoder")?;
    let q = diesel::sql_query("SELECT 'ASLEEP' AS v");
    decode_error(on!(db, |c| q.get_result::<WorkerStatusRow>(c).await), "ASLEEP", "worker_status decoder")?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Booleans
// ---------------------------------------------------------------------------------------------

/// Booleans are integers 0/1 on SQLite (§0.1 #8, §12: `auto_scheduled` → integer 0).
async fn booleans_are_integers_on_sqlite(dialect: Dialect) -> TestResult {
    let mut db = Db::open(dialect).await?;
    let rows = enum_rows(&mut db).await?;
    let expect = |db: &Db, b: bool| -> (Option<String>, String) {
        if db.is_sqlite() {
            (Some(if b { "1" } else { "0" }.to_owned()), "integer".to_owned())
        } else {
            (Some(b.to_string()), String::new())
        }
    };
    async fn stored_bool(db: &mut Db, table: &str, column: &str, id: Uuid) -> Result<(Option<String>, String), BoxError> {
        if db.is_sqlite() {
            db.stored(table, column, id).await
        } else {
            Ok((db.pg_text(table, column, id).await?, String::new()))
        }
    }

    // Defaults left to the database are false, stored as integer 0.
    eq(db.flow_run(rows.run).await?.auto_scheduled, false, "auto_scheduled default")?;
    eq(stored_bool(&mut db, "flow_run", "auto_scheduled", rows.run).await?, expect(&db, false), "stored auto_scheduled default")?;

    for b in [true, false, true] {
        let mut cs = FlowRunChangeset::new();
        cs.auto_scheduled = Some(b);
        db.update_flow_run(rows.run, cs).await?;
        eq(db.flow_run(rows.run).await?.auto_scheduled, b, "auto_scheduled read back")?;
        eq(stored_bool(&mut db, "flow_run", "auto_scheduled", rows.run).await?, expect(&db, b), "stored auto_scheduled")?;

        let mut cs = DeploymentChangeset::new();
        cs.paused = Some(b);
        cs.enforce_parameter_schema = Some(!b);
        let q = diesel::update(deployment::table.filter(deployment::id.eq(Val(rows.deployment)))).set(cs);
        on!(db, |c| q.execute(c).await)?;
            let read = db.deployment(rows.deployment).await?;
        eq((read.paused, read.enforce_parameter_schema), (b, !b), "deployment booleans read back")?;
        eq(stored_bool(&mut db, "deployment", "paused", rows.deployment).await?, expect(&db, b), "stored deployment.paused")?;
        eq(stored_bool(&mut db, "deployment", "enforce_parameter_schema", rows.deployment).await?, expect(&db, !b), "stored deployment.enforce_parameter_schema")?;

        let mut cs = WorkPoolChangeset::new();
        cs.is_paused = Some(b);
        let q = diesel::update(work_pool::table.filter(work_pool::id.eq(Val(rows.pool)))).set(cs);
        on!(db, |c| q.execute(c).await)?;
            let read = db.work_pool(rows.pool).await?;
        eq(read.is_paused, b, "work_pool.is_paused read back")?;
        eq(stored_bool(&mut db, "work_pool", "is_paused", rows.pool).await?, expect(&db, b), "stored work_pool.is_paused")?;
    }

    // Filtering on a boolean matches the integer storage.
    let q = flow_run::table.filter(flow_run::auto_scheduled.eq(true)).count();
    let n: i64 = on!(db, |c| q.get_result(c).await)?;
    eq(n, 1, "runs with auto_scheduled = true")?;
    Ok(())
}
