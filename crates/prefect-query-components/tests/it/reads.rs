//! Reads of a work queue's flow runs on both dialects.

use crate::common::{BoxError, flow, pool, queue, run, t};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use prefect_db_config::dispatch;
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_orm::schema::flow_run;
use prefect_orm::types::{StateType, Val};
use prefect_query_components::QueryComponents;
use uuid::Uuid;

conformance!(work_queue_runs_filter_order_and_limit);

async fn work_queue_runs_filter_order_and_limit(dialect: Dialect) -> TestResult {
    let (_db, p) = crate::common::migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let f = flow(conn, "f").await?;
    let wp = pool(conn, "pool", None, false).await?;
    let q1 = queue(conn, wp, "q1", 1, None, false).await?;
    let q2 = queue(conn, wp, "q2", 2, None, false).await?;
    let s10 = run(conn, f, q1, "s10", StateType::Scheduled, t(10)).await?;
    let s30 = run(conn, f, q1, "s30", StateType::Scheduled, t(30)).await?;
    let s20 = run(conn, f, q1, "s20", StateType::Scheduled, t(20)).await?;
    let p25 = run(conn, f, q1, "p25", StateType::Pending, t(25)).await?;
    let _r40 = run(conn, f, q1, "r40", StateType::Running, t(40)).await?;
    let _other = run(conn, f, q2, "other", StateType::Scheduled, t(50)).await?;
    // A scheduled run without an expected start time: last.
    let unset = run(conn, f, q1, "unset", StateType::Scheduled, t(0)).await?;
    dispatch!(conn, |c| diesel::update(flow_run::table.find(Val(unset)))
        .set(flow_run::expected_start_time.eq(None::<Val<chrono::DateTime<chrono::Utc>>>))
        .execute(c)
        .await)?;

    let qc = QueryComponents::new();
    let ids = async |conn: &mut prefect_db_config::Conn<'_>, states: &[StateType], limit: i64| -> Result<Vec<Uuid>, BoxError> {
        Ok(qc.read_work_queue_flow_runs(conn, q1, states, limit).await?.into_iter().map(|r| r.id).collect())
    };
    assert_eq!(ids(conn, &[StateType::Scheduled], 100).await?, [s30, s20, s10, unset], "newest first, unset last");
    assert_eq!(ids(conn, &[StateType::Scheduled], 2).await?, [s30, s20]);
    assert_eq!(ids(conn, &[StateType::Scheduled, StateType::Pending], 3).await?, [s30, p25, s20]);
    assert_eq!(ids(conn, &[StateType::Completed], 10).await?, Vec::<Uuid>::new());
    let typed = qc.read_work_queue_flow_runs(conn, q1, &[StateType::Pending], 1).await?;
    assert_eq!(typed.len(), 1);
    assert_eq!((typed[0].name.as_str(), typed[0].state_type, typed[0].work_queue_id), ("p25", Some(StateType::Pending), Some(q1)));
    Ok(())
}
