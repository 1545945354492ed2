//! Shared test helpers: migrated databases of both dialects and seeding shortcuts.
#![allow(dead_code)]

use chrono::{DateTime, TimeDelta, Utc};
use diesel_async::RunQueryDsl;
use prefect_db_config::{Conn, DatabaseConfig, DbPool, PooledConnection, admin, dispatch};
use prefect_db_test::{Dialect, TestDatabase};
use prefect_orm::migrations::UpgradeTarget;
use prefect_orm::models::{NewFlow, NewFlowRun, NewWorkPool, NewWorkQueue};
use prefect_orm::schema::{flow, flow_run, work_pool, work_queue};
use prefect_orm::types::StateType;
use uuid::Uuid;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn migrate(config: DatabaseConfig) -> Result<(), BoxError> {
    admin::create_database(&config).await?;
    let mut single = config.clone();
    single.pool_size = 1;
    single.max_overflow = 0;
    let pool = DbPool::build(&single)?;
    match pool.get().await? {
        PooledConnection::Postgres(obj, _) => {
            prefect_orm::migrations::PgMigrator::new(obj)
                .upgrade(UpgradeTarget::Latest)
                .await?;
        }
        PooledConnection::Sqlite(mut obj) => {
            obj.spawn_blocking(|c| {
                Ok(prefect_orm::migrations::upgrade_sqlite(
                    c,
                    &UpgradeTarget::Latest,
                ))
            })
            .await??;
        }
    }
    Ok(())
}

/// A migrated database of `dialect` and a pool on it.
pub async fn migrated(dialect: Dialect) -> Result<(TestDatabase, DbPool), BoxError> {
    let db = TestDatabase::from_template(dialect, "migrated", migrate).await?;
    let pool = DbPool::build(&db.config())?;
    Ok((db, pool))
}

/// `2026-01-09 23:59:50 UTC` plus `micros` microseconds: the seeds' time origin, chosen so that
/// runs cross midnight and the day number's digits roll over (`09` → `10`).
pub fn t(micros: i64) -> DateTime<Utc> {
    let origin = DateTime::from_timestamp(1_768_003_190, 0).unwrap_or_default(); // 2026-01-09 23:59:50 UTC
    origin + TimeDelta::microseconds(micros)
}

/// Seconds to microseconds.
pub const S: i64 = 1_000_000;

pub async fn flow(conn: &mut Conn<'_>, name: &str) -> Result<Uuid, BoxError> {
    let row = NewFlow::new(name);
    let id = row.id;
    dispatch!(conn, |c| diesel::insert_into(flow::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(id)
}

pub async fn pool(
    conn: &mut Conn<'_>,
    name: &str,
    limit: Option<i32>,
    paused: bool,
) -> Result<Uuid, BoxError> {
    let mut row = NewWorkPool::new(name, "process");
    row.concurrency_limit = limit;
    row.is_paused = Some(paused);
    let id = row.id;
    dispatch!(conn, |c| diesel::insert_into(work_pool::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(id)
}

pub async fn queue(
    conn: &mut Conn<'_>,
    pool_id: Uuid,
    name: &str,
    priority: i32,
    limit: Option<i32>,
    paused: bool,
) -> Result<Uuid, BoxError> {
    let mut row = NewWorkQueue::new(name, pool_id);
    row.priority = Some(priority);
    row.concurrency_limit = limit;
    row.is_paused = Some(paused);
    let id = row.id;
    dispatch!(conn, |c| diesel::insert_into(work_queue::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(id)
}

/// A run in `queue` in state `state`, scheduled at `at`.
pub async fn run(
    conn: &mut Conn<'_>,
    flow_id: Uuid,
    queue_id: Uuid,
    name: &str,
    state: StateType,
    at: DateTime<Utc>,
) -> Result<Uuid, BoxError> {
    run_with(
        conn,
        flow_id,
        queue_id,
        name,
        state,
        at,
        serde_json::json!({}),
    )
    .await
}

pub async fn run_with(
    conn: &mut Conn<'_>,
    flow_id: Uuid,
    queue_id: Uuid,
    name: &str,
    state: StateType,
    at: DateTime<Utc>,
    policy: serde_json::Value,
) -> Result<Uuid, BoxError> {
    let mut row = NewFlowRun::new(name, flow_id);
    row.state_type = Some(state);
    row.state_name = Some(name_of(state).to_owned());
    row.next_scheduled_start_time = Some(at);
    row.expected_start_time = Some(at);
    row.work_queue_id = Some(queue_id);
    row.empirical_policy = Some(policy);
    let id = row.id;
    dispatch!(conn, |c| diesel::insert_into(flow_run::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(id)
}

fn name_of(state: StateType) -> &'static str {
    match state {
        StateType::Scheduled => "Scheduled",
        StateType::Pending => "Pending",
        StateType::Running => "Running",
        StateType::Completed => "Completed",
        StateType::Cancelling => "Cancelling",
        _ => "Other",
    }
}

/// A run in the legacy sense: attached to queues by name only.
pub async fn named_run(
    conn: &mut Conn<'_>,
    flow_id: Uuid,
    queue_name: &str,
    name: &str,
    state: StateType,
    at: DateTime<Utc>,
) -> Result<Uuid, BoxError> {
    let mut row = NewFlowRun::new(name, flow_id);
    row.state_type = Some(state);
    row.state_name = Some(name_of(state).to_owned());
    row.next_scheduled_start_time = Some(at);
    row.work_queue_name = Some(queue_name.to_owned());
    let id = row.id;
    dispatch!(conn, |c| diesel::insert_into(flow_run::table)
        .values(row)
        .execute(c)
        .await)?;
    Ok(id)
}
