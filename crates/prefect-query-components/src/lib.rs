//! Tier 2 of the Prefect database layer: the dialect-specific queries of a Prefect server
//! (upserts, worker polling, run history, flow run graph, configuration cache) and Prefect's read
//! API (filters, sorts, pagination, counts, history: [`read`]), with one meaning on PostgreSQL and
//! SQLite. Queries run on tier 1's `Conn` over tier 3's schema and models.
//!
//! This crate knows nothing of settings, the environment or how pools are built.
//!
//! # API
//!
//! [`QueryComponents`] is Prefect's `BaseQueryComponents`: one value for both dialects, whose
//! methods take a [`Conn`] and pick the dialect from it. Raw SQL that differs per dialect is
//! spelled in one place (the private `sql` module and one named function per query).
//!
//! # Deviations from Prefect 3.9.1
//!
//! Prefect's PostgreSQL and SQLite implementations disagree in places; this crate gives one
//! meaning on both, and differs from Prefect where listed here.
//!
//! Worker polling (`get_scheduled_flow_runs_from_work_pool`):
//! - **Pool concurrency**: every RUNNING/PENDING run of any queue of the pool takes a pool slot,
//!   paused queues included (Prefect's SQLite template; its PostgreSQL template ignores runs of
//!   paused queues and can hand out more runs than the pool's limit).
//! - **`respect_queue_priorities` over several pools**: ordered by queue priority, then
//!   scheduled time, across pools (Prefect's PostgreSQL order; its SQLite template orders by the
//!   rank within each pool).
//! - **Ties**: runs with the same priority and scheduled time are ordered by run id (Prefect
//!   leaves the order unspecified); runs without a `next_scheduled_start_time` come last on
//!   both dialects (SQLite would put them first).
//! - **Work done**: each queue contributes at most `min(queue_limit, worker_limit, limit)`
//!   candidates, and PostgreSQL locks at most that many per queue (Prefect locks up to
//!   `queue_limit`, 1000 by default). The answer is the same.
//! - **Work per poll**: with a `scheduled_before` bound (what workers send), each queue's
//!   candidates come from a walk of Prefect's `next_scheduled_start_time` index that stops at
//!   the queue's limit, on both dialects (SQLite through a correlated subquery and `INDEXED
//!   BY`, PostgreSQL through its planner), and the RUNNING/PENDING runs are counted through the
//!   `state_type` index: a poll reads about the runs it returns (times the number of queues
//!   sharing the index), not every scheduled run. Prefect's SQLite template ranks every
//!   scheduled run. Without a bound, SQLite ranks the scheduled runs as Prefect does (runs
//!   without a scheduled time must come last, which the index cannot give in order).
//! - **Empty id lists** filter nothing, as in Prefect (its templates test the lists' truth).
//!
//! Legacy work-queue polling (`get_scheduled_flow_runs_from_work_queues`):
//! - A run offered by several queues of the same name comes once per queue; rows are ordered by
//!   scheduled time, then run id, then queue id (Prefect: time, then an unspecified order).
//! - `limit_per_queue` of `None` means no limit on both dialects (Prefect's SQLite version caps
//!   at 999,999).
//!
//! Reading a work queue's runs (`read_work_queue_flow_runs`, Prefect's `read_flow_runs` with a
//! queue and state filter, `EXPECTED_START_TIME_DESC`):
//! - Runs without an expected start time come last on both dialects (Prefect: first on
//!   PostgreSQL, last on SQLite); ties are ordered by run id.
//! - On SQLite the state comparison is kept off the indexes, so the read goes through the
//!   queue's index instead of every run of the state ([`reads`]).
//!
//! Inserts and the scheduler's bulk path:
//! - On SQLite consecutive rows that leave the same columns to their defaults share one
//!   multi-row statement (SQLite has no `DEFAULT` in `VALUES`); PostgreSQL sends multi-row
//!   statements of up to [`insert::PG_ROWS_PER_STATEMENT`] rows. Both return the inserted ids in
//!   input order, and a batch of several statements runs in a savepoint (or transaction), so it
//!   is all-or-nothing on both.
//! - `set_state_id_on_inserted_flow_runs_statement` is one statement on both dialects (Prefect's
//!   SQLite form), where a run whose states are not among the given ones keeps its `state_id`
//!   (Prefect's PostgreSQL behaviour; its SQLite form sets NULL), a run with several given
//!   states gets the newest (by `timestamp`, then id; Prefect: arbitrary), and `updated` is set.
//!
//! Configuration cache:
//! - The cache (100 keys, one hour, least recently used evicted first) belongs to a
//!   [`QueryComponents`] value and its clones, not to the process: two databases in one
//!   process do not share entries (Prefect's cache is per class, so per dialect).
//! - [`QueryComponents::write_configuration_value`] and
//!   [`QueryComponents::delete_configuration_value`] are Prefect's `write_configuration` /
//!   `delete_configuration` with the cache clearing built in.
//!
//! Intervals, buckets and run history:
//! - `make_timestamp_intervals` is computed in Rust, not SQL: an empty or reversed range gives
//!   no rows and microseconds are kept (Prefect's SQLite version always emits a first row and
//!   drops to milliseconds).
//! - `make_timestamp_bucket_index` is exact to the microsecond on both dialects and a floor for
//!   timestamps before the start (Prefect's SQLite version rounds the seconds to milliseconds,
//!   moving a run at `…59.999999` into the next bucket and losing runs at the range end).
//! - The run history returns every bucket (empty ones included) with its states ordered by
//!   state type, then name. [`QueryComponents::run_history`] counts every run;
//!   [`QueryComponents::flow_run_history`] and [`QueryComponents::task_run_history`] take
//!   Prefect's filters and add the sums (the read API, [`read`]).
//!
//! Upserts ([`OnConflict::DoUpdate`]):
//! - The listed columns are set from `excluded` and `updated` is set to one timestamp taken
//!   in Rust (Prefect passes its own `now()` too); the ids returned are those of the rows
//!   inserted or updated, in input order (an updated row's existing id).
//! - Two rows of one batch sharing a conflict key are refused with
//!   [`QueryError::UpsertRowTwice`] on both dialects (PostgreSQL refuses such a statement;
//!   Prefect's SQLite statement lets the later row win). Nothing of the batch is written
//!   (PostgreSQL batches over [`insert::PG_ROWS_PER_STATEMENT`] rows: only inside a
//!   transaction).
//!
//! JSON expressions ([`json`]):
//! - Values placed in [`json::build_json_object`] and [`json::json_arr_agg`] give the same
//!   JSON on both dialects: JSON columns nest as JSON and booleans as `true`/`false` on SQLite
//!   too (Prefect's SQLite versions give strings and 0/1), timestamps are the string
//!   `YYYY-MM-DDTHH:MM:SS.ffffffZ` on both. Only SQL types with a JSON meaning compile.
//! - `json_arr_agg` over no rows is `[]` on both (Prefect's PostgreSQL version gives NULL).
//!
//! Flow run graph (`flow_run_graph_v2`):
//! - `parents`, `children` and `encapsulating` are ordered by the referenced node's start
//!   time, then id, and name each node once, on both dialects (Prefect: PostgreSQL orders by
//!   start time alone and repeats a node referenced by several inputs; SQLite leaves the order
//!   unspecified; only `encapsulating` is de-duplicated).
//! - Nodes with the same start time are ordered by end time with nodes still running last,
//!   then by id (Prefect: NULL end times last on PostgreSQL, first on SQLite, ties
//!   unspecified). Artifacts with the same `created` and states with the same `timestamp` are
//!   ordered by id.
//! - The edges are loaded by a separate statement and grouped in Rust (SQLite 3.40 has no
//!   ordered aggregates); a graph takes five statements whatever its size, the edges only
//!   when the graph is not too large. References are matched as text (a malformed id in
//!   `task_inputs` matches nothing; Prefect's PostgreSQL query fails on it), and task inputs
//!   that are not an object of lists are ignored rather than failing the query.
//! - A node whose run has no state has `state_type: null` (Prefect fails validation).

mod config_cache;
mod error;
pub mod graph;
pub mod history;
pub mod json;
mod load;
pub mod read;
pub mod reads;
mod scheduler;
mod sql;
pub mod work_queues;
pub mod worker_poll;

pub use config_cache::{CONFIGURATION_CACHE_SIZE, CONFIGURATION_CACHE_TTL};
pub use error::{QueryError, QueryResult};
pub use graph::{Edge, Graph, GraphArtifact, GraphState, Node, NodeKind};
pub use history::{
    MAX_INTERVALS, RunHistoryBucket, RunHistoryState, RunHistoryTable, TimestampInterval,
    make_timestamp_intervals,
};
pub use prefect_orm::access::{NewRecord, OnConflict};
pub use prefect_orm::prepared;
/// Multi-row inserts and their limits (they live with the models, in `prefect_orm::access`).
pub mod insert {
    pub use prefect_orm::access::{OnConflict, PG_ROWS_PER_STATEMENT, SQLITE_MAX_BINDS};
}
pub use work_queues::{QueueFlowRun, WorkQueuesPoll};
pub use worker_poll::{DEFAULT_POLL_LIMIT, WorkPoolPoll, WorkerFlowRun};

use prefect_db_config::Conn;

/// Prefect's query components (`BaseQueryComponents`) for both dialects: every method takes a
/// connection and follows its dialect.
///
/// Clones share the configuration cache. Keep one value per database (the interface does).
#[derive(Debug, Clone)]
pub struct QueryComponents {
    configuration_cache: config_cache::SharedCache,
}

impl Default for QueryComponents {
    fn default() -> Self {
        Self::with_configuration_cache(CONFIGURATION_CACHE_SIZE, CONFIGURATION_CACHE_TTL)
    }
}

impl QueryComponents {
    /// The query components, with Prefect's configuration cache (100 keys, one hour).
    pub fn new() -> Self {
        Self::default()
    }

    /// The query components with a configuration cache of another size or lifetime (tests).
    pub fn with_configuration_cache(capacity: usize, ttl: std::time::Duration) -> Self {
        QueryComponents {
            configuration_cache: std::sync::Arc::new(std::sync::Mutex::new(
                config_cache::TtlCache::new(capacity, ttl),
            )),
        }
    }

    /// `configuration.value` of the row with this key (Prefect's `read_configuration_value`),
    /// from the cache when present and not expired; a value read from the database is cached,
    /// a missing row is not.
    pub async fn read_configuration_value(
        &self,
        conn: &mut Conn<'_>,
        key: &str,
    ) -> QueryResult<Option<serde_json::Value>> {
        config_cache::read(&self.configuration_cache, conn, key).await
    }

    /// Drops `key` from the configuration cache (Prefect's `clear_configuration_value_cache_for_key`).
    pub fn clear_configuration_value_cache_for_key(&self, key: &str) {
        config_cache::clear(&self.configuration_cache, key);
    }

    /// How many keys the configuration cache holds (expired ones included until touched).
    pub fn configuration_cache_len(&self) -> usize {
        config_cache::cached_len(&self.configuration_cache)
    }

    /// Prefect's `write_configuration`: updates the row with this key or inserts one, and clears
    /// the key from the cache. Every configuration write of the layer should go through here
    /// (or call [`clear_configuration_value_cache_for_key`](Self::clear_configuration_value_cache_for_key)).
    pub async fn write_configuration_value(
        &self,
        conn: &mut Conn<'_>,
        key: &str,
        value: serde_json::Value,
    ) -> QueryResult<()> {
        config_cache::write(&self.configuration_cache, conn, key, value).await
    }

    /// Deletes the configuration row with this key and clears the key from the cache.
    pub async fn delete_configuration_value(
        &self,
        conn: &mut Conn<'_>,
        key: &str,
    ) -> QueryResult<bool> {
        config_cache::delete(&self.configuration_cache, conn, key).await
    }

    /// The scheduled runs that workers of the given pools and queues may start now (Prefect's
    /// `get_scheduled_flow_runs_from_work_pool`), in the order to start them. On PostgreSQL the
    /// returned runs stay locked (`FOR UPDATE SKIP LOCKED`) until the caller's transaction ends,
    /// so concurrent pollers inside transactions never receive the same run.
    pub async fn get_scheduled_flow_runs_from_work_pool(
        &self,
        conn: &mut Conn<'_>,
        args: &WorkPoolPoll,
    ) -> QueryResult<Vec<WorkerFlowRun>> {
        worker_poll::get_scheduled_flow_runs_from_work_pool(conn, args).await
    }

    /// The legacy work-queue poll (Prefect's `get_scheduled_flow_runs_from_work_queues`):
    /// scheduled runs of each unpaused queue (matched by queue name), at most
    /// `limit_per_queue` and the queue's free slots each, ordered by scheduled time, run id,
    /// queue id. PostgreSQL locks the returned runs (`FOR UPDATE SKIP LOCKED`).
    pub async fn get_scheduled_flow_runs_from_work_queues(
        &self,
        conn: &mut Conn<'_>,
        args: &WorkQueuesPoll,
    ) -> QueryResult<Vec<QueueFlowRun>> {
        work_queues::get_scheduled_flow_runs_from_work_queues(conn, args).await
    }

    /// The flow runs of one work queue in the given state types, newest expected start first:
    /// see [`reads::read_work_queue_flow_runs`].
    pub async fn read_work_queue_flow_runs(
        &self,
        conn: &mut Conn<'_>,
        work_queue_id: uuid::Uuid,
        state_types: &[prefect_orm::types::StateType],
        limit: i64,
    ) -> QueryResult<Vec<prefect_orm::models::FlowRun>> {
        reads::read_work_queue_flow_runs(conn, work_queue_id, state_types, limit).await
    }

    /// Prefect 3.9.1's `/flow_runs/history`: the runs per bucket, state type and name, with
    /// the sums of their estimated run time and lateness, over the runs the request's filters
    /// select (flows, flow runs, task runs, deployments, work pools, work queues); see
    /// [`read::flow_run_history`].
    pub async fn flow_run_history(
        &self,
        conn: &mut Conn<'_>,
        request: &read::HistoryRead,
    ) -> QueryResult<Vec<read::HistoryBucket>> {
        read::flow_run_history(conn, request).await
    }

    /// Prefect 3.9.1's `/task_runs/history` (filters: flows, flow runs, task runs,
    /// deployments); see [`read::task_run_history`].
    pub async fn task_run_history(
        &self,
        conn: &mut Conn<'_>,
        request: &read::HistoryRead,
    ) -> QueryResult<Vec<read::HistoryBucket>> {
        read::task_run_history(conn, request).await
    }

    /// `make_timestamp_intervals(start, end, interval)`: see [`history::make_timestamp_intervals`].
    pub fn make_timestamp_intervals(
        &self,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
        interval: chrono::TimeDelta,
    ) -> QueryResult<Vec<TimestampInterval>> {
        history::make_timestamp_intervals(start, end, interval)
    }

    /// `make_timestamp_bucket_index(timestamp, start, interval)` evaluated by the database:
    /// `floor((timestamp - start) / interval)`, exact to the microsecond on both dialects.
    pub async fn timestamp_bucket_index(
        &self,
        conn: &mut Conn<'_>,
        timestamp: chrono::DateTime<chrono::Utc>,
        start: chrono::DateTime<chrono::Utc>,
        interval: chrono::TimeDelta,
    ) -> QueryResult<i64> {
        history::bucket_index_of(conn, timestamp, start, interval).await
    }

    /// Prefect 3.9.1's run history: runs with `expected_start_time` in `[start, start +
    /// n·interval)` (n intervals reach `end`, at most 500) counted per bucket, state type and
    /// state name; every bucket returned, empty ones included.
    pub async fn run_history(
        &self,
        conn: &mut Conn<'_>,
        table: RunHistoryTable,
        start: chrono::DateTime<chrono::Utc>,
        end: chrono::DateTime<chrono::Utc>,
        interval: chrono::TimeDelta,
    ) -> QueryResult<Vec<RunHistoryBucket>> {
        history::run_history(conn, table, start, end, interval).await
    }

    /// Prefect 3.9.1's `flow_run_graph_v2`: the graph of `flow_run_id` (its task runs and
    /// subflow runs as nodes, with parent, child and encapsulating edges from the task inputs,
    /// their artifacts, the flow run's own artifacts and its states). Nodes that ended before
    /// `since` are left out; at most `max_artifacts` artifacts (the oldest, results excluded).
    ///
    /// Errors: [`QueryError::FlowRunNotFound`] when the flow run does not exist,
    /// [`QueryError::GraphTooLarge`] when more than `max_nodes` nodes remain. Runs five
    /// statements whatever the graph's size; call it inside a transaction for one snapshot.
    pub async fn flow_run_graph_v2(
        &self,
        conn: &mut Conn<'_>,
        flow_run_id: uuid::Uuid,
        since: chrono::DateTime<chrono::Utc>,
        max_nodes: usize,
        max_artifacts: usize,
    ) -> QueryResult<Graph> {
        graph::flow_run_graph_v2(conn, flow_run_id, since, max_nodes, max_artifacts).await
    }

    /// Whether the connection's dialect hands JSON back as strings (Prefect's
    /// `uses_json_strings`): true on SQLite, false on PostgreSQL.
    pub fn uses_json_strings(&self, conn: &Conn<'_>) -> bool {
        json::uses_json_strings(conn.dialect())
    }

    /// Inserts many rows of one model in one call (Prefect's `insert(model)` with
    /// `on_conflict_do_nothing` or `on_conflict_do_update` on the ORM configuration's upsert
    /// columns); returns the ids of the rows inserted (and, under [`OnConflict::DoUpdate`],
    /// updated), in input order.
    pub async fn insert<R: NewRecord>(
        &self,
        conn: &mut Conn<'_>,
        rows: Vec<R>,
        on_conflict: OnConflict,
    ) -> QueryResult<Vec<uuid::Uuid>> {
        Ok(R::insert_rows_returning_ids(conn, rows, on_conflict).await?)
    }

    /// Prefect's `set_state_id_on_inserted_flow_runs_statement`, executed: points each of
    /// `flow_run_ids` at its state among `state_ids`. Returns the number of runs updated.
    pub async fn set_state_id_on_inserted_flow_runs_statement(
        &self,
        conn: &mut Conn<'_>,
        flow_run_ids: &[uuid::Uuid],
        state_ids: &[uuid::Uuid],
    ) -> QueryResult<usize> {
        scheduler::set_state_id_statement(conn, flow_run_ids, state_ids).await
    }

    /// The scheduler's bulk path: inserts `runs` (`ON CONFLICT (flow_id, idempotency_key) DO
    /// NOTHING`), inserts the `states` of the runs actually inserted, and sets those runs'
    /// `state_id`. Returns the inserted run ids in input order. Call it inside a transaction.
    pub async fn set_state_id_on_inserted_flow_runs(
        &self,
        conn: &mut Conn<'_>,
        runs: Vec<prefect_orm::models::NewFlowRun>,
        states: Vec<prefect_orm::models::NewFlowRunState>,
    ) -> QueryResult<Vec<uuid::Uuid>> {
        scheduler::insert_runs_with_states(conn, runs, states).await
    }
}
