//! Query plans of the polling queries on SQLite (`EXPLAIN QUERY PLAN`): `flow_run` is only
//! read through indexes, and with a time bound (what workers send) the candidate runs of each
//! queue come from a walk of the scheduled-time index that stops at the queue's limit, so the
//! work follows the runs returned, not the runs stored.


use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use prefect_db_config::dispatch;
use prefect_db_test::{Dialect, TestResult};
use prefect_query_components::worker_poll::poll_sql_text;
use prefect_query_components::work_queues::legacy_sql_text;
use prefect_query_components::{WorkPoolPoll, WorkQueuesPoll};

#[derive(QueryableByName)]
struct PlanRow {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_worker_poll_uses_indexes_on_flow_run() -> TestResult {
    let (_db, p) = crate::common::migrated(Dialect::Sqlite).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    for args in [
        WorkPoolPoll::default(),
        WorkPoolPoll {
            respect_queue_priorities: true,
            scheduled_before: Some(crate::common::t(0)),
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

async fn sqlite_plan(sql: &str) -> Result<Vec<String>, Box<dyn std::error::Error + Send + Sync>> {
    let (_db, p) = crate::common::migrated(Dialect::Sqlite).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    // EXPLAIN QUERY PLAN needs no bind values: unbound parameters are NULL.
    let sql = format!("EXPLAIN QUERY PLAN {sql}");
    let plan: Vec<PlanRow> = dispatch!(conn, |c| diesel::sql_query(sql.clone()).load(c).await)?;
    Ok(plan.into_iter().map(|r| r.detail).collect())
}

/// The lines of the plan that read `flow_run` (aliases `fr`, or `c` when it is the table).
fn flow_run_reads(plan: &[String]) -> Vec<&str> {
    plan.iter()
        .map(String::as_str)
        .filter(|l| l.starts_with("SEARCH fr ") || l.starts_with("SCAN fr") || l.starts_with("SEARCH c ") || l.starts_with("SCAN c "))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_polls_with_a_time_bound_walk_the_time_index() -> TestResult {
    let before = Some(crate::common::t(0));
    let worker = poll_sql_text(
        Dialect::Sqlite,
        &WorkPoolPoll { limit: Some(50), respect_queue_priorities: true, scheduled_before: before, ..Default::default() },
    );
    let legacy = legacy_sql_text(
        Dialect::Sqlite,
        &WorkQueuesPoll { limit_per_queue: Some(10), scheduled_before: before, ..Default::default() },
    );
    for (name, sql) in [("worker poll", worker), ("legacy poll", legacy)] {
        let plan = sqlite_plan(&sql).await?;
        let reads = flow_run_reads(&plan);
        let all = plan.join("\n");
        // Three kinds of reads and no others: the RUNNING/PENDING runs through the state_type
        // index, the candidates per queue through the time index (a range: `<` stands for the
        // `<=` bound), and each candidate's row by primary key.
        assert!(
            reads.iter().any(|l| l.starts_with("SEARCH fr USING INDEX ix_flow_run__state_type (state_type=?)")),
            "{name}: active runs not read through the state_type index:\n{all}"
        );
        assert!(
            reads.iter().any(|l| l.starts_with("SEARCH fr USING INDEX ix_flow_run__next_scheduled_start_time_asc (next_scheduled_start_time<?)")),
            "{name}: candidates not read through the time index:\n{all}"
        );
        assert!(
            all.contains("CORRELATED LIST SUBQUERY"),
            "{name}: candidates not taken per queue:\n{all}"
        );
        for line in &reads {
            assert!(line.starts_with("SEARCH "), "{name}: scan of flow_run: {line}\n{all}");
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_a_queues_runs_through_the_queue_index() -> TestResult {
    let sql = prefect_query_components::reads::read_work_queue_flow_runs_sql(Dialect::Sqlite)?;
    let plan = sqlite_plan(&sql).await?;
    let all = plan.join("\n");
    let reads: Vec<&String> = plan.iter().filter(|l| l.contains("flow_run")).collect();
    assert_eq!(reads.len(), 1, "{all}");
    assert!(
        reads[0].starts_with("SEARCH flow_run USING INDEX ix_flow_run__work_queue_id (work_queue_id=?)"),
        "the queue's runs only, not every run of a state: {all}"
    );
    Ok(())
}
