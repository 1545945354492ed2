//! Timestamp intervals, bucket indexes and the run-history query (Prefect 3.9.1's
//! `make_timestamp_bucket_index` and run history; `make_timestamp_intervals` of Prefect ≤ 3.8).

use crate::sql::{Binder, SqlDialect, bucket_index_sql, load_raw};
use crate::{QueryError, QueryResult};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Nullable, Text};
use prefect_db_config::Conn;

/// At most this many intervals or buckets (Prefect's limit).
pub const MAX_INTERVALS: usize = 500;

/// One interval `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimestampInterval {
    /// Inclusive start.
    pub interval_start: DateTime<Utc>,
    /// Exclusive end (`interval_start + interval`).
    pub interval_end: DateTime<Utc>,
}

fn interval_micros(interval: TimeDelta) -> QueryResult<i64> {
    match interval.num_microseconds() {
        Some(us) if us > 0 => Ok(us),
        _ => Err(QueryError::InvalidArgument(format!(
            "the interval must be at least one microsecond, not {interval}"
        ))),
    }
}

/// How many intervals of `interval_us` start before `end` (at most [`MAX_INTERVALS`]).
fn interval_count(start: DateTime<Utc>, end: DateTime<Utc>, interval_us: i64) -> usize {
    let span = (end - start).num_microseconds().unwrap_or(i64::MAX);
    if span <= 0 {
        return 0;
    }
    let n = span / interval_us + i64::from(span % interval_us != 0);
    usize::try_from(n).unwrap_or(usize::MAX).min(MAX_INTERVALS)
}

/// `make_timestamp_intervals(start, end, interval)`: the intervals `[start + k·interval,
/// start + (k+1)·interval)` whose start is before `end`, at most 500. The same on both dialects
/// by construction (computed here, to the microsecond): an empty or reversed range gives none.
pub fn make_timestamp_intervals(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: TimeDelta,
) -> QueryResult<Vec<TimestampInterval>> {
    let us = interval_micros(interval)?;
    let start = prefect_orm::types::timefmt::truncate_to_micros(start);
    let step = TimeDelta::microseconds(us);
    Ok((0..interval_count(start, end, us))
        .map(|k| {
            let s = start + step * i32::try_from(k).unwrap_or(i32::MAX);
            TimestampInterval {
                interval_start: s,
                interval_end: s + step,
            }
        })
        .collect())
}

/// Which runs a run history counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunHistoryTable {
    /// `flow_run`.
    FlowRuns,
    /// `task_run`.
    TaskRuns,
}

/// The runs of one state in one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunHistoryState {
    /// The state type label (`None` for runs without a state).
    pub state_type: Option<String>,
    /// The state name.
    pub state_name: Option<String>,
    /// How many runs.
    pub count: i64,
}

/// One bucket of a run history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunHistoryBucket {
    /// The bucket's interval.
    pub interval: TimestampInterval,
    /// Counts per state type and name, ordered by state type, then name (empty buckets too).
    pub states: Vec<RunHistoryState>,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = BigInt)]
    bucket: i64,
    #[diesel(sql_type = Nullable<Text>)]
    state_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    state_name: Option<String>,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// The run history of Prefect 3.9.1: runs whose `expected_start_time` lies in
/// `[start, start + n·interval)` (n = the number of intervals from `start` to `end`, at most
/// 500), counted per bucket index, state type and state name. Every bucket is returned, empty
/// ones included.
pub(crate) async fn run_history(
    conn: &mut Conn<'_>,
    table: RunHistoryTable,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    interval: TimeDelta,
) -> QueryResult<Vec<RunHistoryBucket>> {
    let intervals = make_timestamp_intervals(start, end, interval)?;
    let (Some(first), Some(last)) = (intervals.first(), intervals.last()) else {
        return Ok(Vec::new());
    };
    let us = interval_micros(interval)?;
    let mut b = Binder::new(SqlDialect(conn.dialect()));
    let bucket = bucket_index_sql(&mut b, "r.expected_start_time", first.interval_start, us);
    let lo = b.bind(crate::sql::Bind::Time(first.interval_start));
    let hi = b.bind(crate::sql::Bind::Time(last.interval_end));
    let table = match table {
        RunHistoryTable::FlowRuns => "flow_run",
        RunHistoryTable::TaskRuns => "task_run",
    };
    let sql = format!(
        "SELECT {bucket} AS bucket, CAST(r.state_type AS TEXT) AS state_type, r.state_name AS state_name, COUNT(*) AS n \
         FROM {table} r WHERE r.expected_start_time >= {lo} AND r.expected_start_time < {hi} \
         GROUP BY 1, 2, 3"
    );
    let rows: Vec<Row> = load_raw(conn, sql, b.binds).await?;
    let mut buckets: Vec<RunHistoryBucket> = intervals
        .into_iter()
        .map(|interval| RunHistoryBucket {
            interval,
            states: Vec::new(),
        })
        .collect();
    for row in rows {
        if let Some(bucket) = usize::try_from(row.bucket)
            .ok()
            .and_then(|i| buckets.get_mut(i))
        {
            bucket.states.push(RunHistoryState {
                state_type: row.state_type,
                state_name: row.state_name,
                count: row.n,
            });
        }
    }
    for bucket in &mut buckets {
        bucket
            .states
            .sort_by(|a, b| (&a.state_type, &a.state_name).cmp(&(&b.state_type, &b.state_name)));
    }
    Ok(buckets)
}

/// `make_timestamp_bucket_index` evaluated by the database for one timestamp (what the run
/// history groups by); for tests and callers that need the index of a single value.
pub(crate) async fn bucket_index_of(
    conn: &mut Conn<'_>,
    timestamp: DateTime<Utc>,
    start: DateTime<Utc>,
    interval: TimeDelta,
) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct Idx {
        #[diesel(sql_type = BigInt)]
        bucket: i64,
    }
    let us = interval_micros(interval)?;
    let mut b = Binder::new(SqlDialect(conn.dialect()));
    // The timestamp goes through a bound column-typed value, as a stored one would.
    let ts = b.bind(crate::sql::Bind::Time(timestamp));
    let ts = match conn.dialect() {
        prefect_db_config::Dialect::Postgres => format!("CAST({ts} AS timestamptz)"),
        prefect_db_config::Dialect::Sqlite => ts,
    };
    let bucket = bucket_index_sql(&mut b, &ts, start, us);
    let rows: Vec<Idx> = load_raw(conn, format!("SELECT {bucket} AS bucket"), b.binds).await?;
    rows.into_iter()
        .next()
        .map(|r| r.bucket)
        .ok_or_else(|| QueryError::InvalidArgument("no row".to_owned()))
}
