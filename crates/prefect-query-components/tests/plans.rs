//! Query plans of the worker poll: `flow_run` is only read through indexes (SQLite,
//! `EXPLAIN QUERY PLAN`).

mod common;

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use prefect_db_config::dispatch;
use prefect_db_test::{Dialect, TestResult};
use prefect_query_components::WorkPoolPoll;
use prefect_query_components::worker_poll::poll_sql_text;

#[derive(QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_poll_uses_indexes_on_flow_run() -> TestResult {
    let (_db, p) = common::migrated(Dialect::Sqlite).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    for args in [
        WorkPoolPoll::default(),
        WorkPoolPoll {
            respect_queue_priorities: true,
            scheduled_before: Some(common::t(0)),
            work_pool_ids: Some(vec![uuid::Uuid::nil()]),
            ..Default::default()
        },
    ] {
        // EXPLAIN QUERY PLAN needs no bind values: unbound parameters are NULL.
        let sql = format!(
            "EXPLAIN QUERY PLAN {}",
            poll_sql_text(Dialect::Sqlite, &args)
        );
        let plan: Vec<PlanRow> = dispatch!(conn, |c| diesel::sql_query(sql.clone()).load(c).await)?;
        let lines: Vec<&str> = plan.iter().map(|r| r.detail.as_str()).collect();
        eprintln!("{}", lines.join("\n"));
        for line in &lines {
            // `fr` is the only alias of the `flow_run` table itself (`c` names a derived table).
            let full_scan = (line.starts_with("SCAN fr") || line.starts_with("SCAN flow_run"))
                && !line.contains("INDEX");
            assert!(
                !full_scan,
                "full scan of flow_run: {line}\n{}",
                lines.join("\n")
            );
        }
    }
    Ok(())
}
