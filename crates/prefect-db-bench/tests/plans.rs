//! Plan tests: the index each hot read uses, on both dialects, on the scale dataset (20,000
//! runs; PostgreSQL vacuumed and analyzed, SQLite as Prefect leaves it). A plan regression (a
//! sequential scan, another index, a sort of everything) fails here, not in production.
//!
//! The statements are the ones the layer sends: the read API's [`read::Statement`]s (W7, W9,
//! W10, W10K, W11), the worker poll's ranking statement (W2) and the work queue read (W5).

use prefect_db_bench::scale::requests;
use prefect_db_bench::{Fixture, Sizes};
use prefect_db_interface::prelude::*;
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_query_components::read::Statement;

conformance!(hot_read_plans);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn plan(db: &Database, statement: &Statement) -> Result<Vec<String>, BoxError> {
    let mut pooled = db.connection().await?;
    Ok(read::explain(&mut pooled.conn(), statement).await?)
}

/// The plan's lines that read `table` (PostgreSQL: scan nodes, a bitmap's index scans for its
/// heap scan; SQLite: SCAN/SEARCH lines).
fn reads_of<'a>(dialect: Dialect, plan: &'a [String], table: &str) -> Vec<&'a str> {
    plan.iter()
        .map(|l| l.trim())
        .filter(|l| match dialect {
            // A bitmap heap scan fetches what its bitmap index scans found: those name the index.
            Dialect::Postgres if l.contains("Bitmap Heap Scan") => false,
            Dialect::Postgres if l.contains("Bitmap Index Scan on ") => l.contains(&format!(" on ix_{table}__")),
            Dialect::Postgres => l.contains(" on ") && l.contains("Scan") && l.split(" on ").nth(1).is_some_and(|rest| rest.starts_with(&format!("{table} ")) || rest == table),
            Dialect::Sqlite => l.starts_with(&format!("SEARCH {table} ")) || l.starts_with(&format!("SCAN {table}")),
        })
        .collect()
}

/// Every read of `table` in `plan` goes through one of `indexes` (and there is at least one).
fn assert_reads(dialect: Dialect, what: &str, plan: &[String], table: &str, indexes: &[&str]) {
    let all = plan.join("\n");
    let reads = reads_of(dialect, plan, table);
    assert!(!reads.is_empty(), "{what}: no read of {table} in the plan:\n{all}");
    for line in reads {
        assert!(
            indexes.iter().any(|ix| line.contains(&format!(" {ix} ")) || line.ends_with(&format!(" {ix}"))),
            "{what}: {table} read otherwise than through {indexes:?}: {line}\n{all}"
        );
    }
}

async fn hot_read_plans(dialect: Dialect) -> TestResult {
    let dir = tempfile::tempdir()?;
    let fx = prefect_db_bench::prepare_scale(dialect, 1, Sizes::at_scale(1), dir.path()).await?;
    let outcome = Box::pin(check(dialect, &fx)).await;
    prefect_db_bench::drop_fixture(&fx).await?;
    outcome
}

async fn check(dialect: Dialect, fx: &Fixture) -> TestResult {
    let db = prefect_db_interface::database_for(&fx.config()?)?;
    let now = fx.now()?;
    let d = dialect;

    // W7: one range of (state_type, COALESCE(start_time, expected_start_time)) per state type,
    // read in order (SQLite sorts only the ties by id).
    let w7: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &requests::w7(now))?;
    let p = plan(&db, &read::flow_runs_statement(d, &w7)).await?;
    // PostgreSQL may read a rare state type (CRASHED: 2% of the runs here) whole through the
    // state type's index when its statistics say that is cheaper; the common one (COMPLETED:
    // 80%) must be read as a range of the (state_type, start) index.
    let w7_indexes: &[&str] = match d {
        Dialect::Postgres => &["ix_flow_run__state_type_coalesce_start_time", "ix_flow_run__state_type"],
        Dialect::Sqlite => &["ix_flow_run__state_type_coalesce_start_time"],
    };
    assert_reads(d, "W7", &p, "flow_run", w7_indexes);
    assert_eq!(reads_of(d, &p, "flow_run").len(), 4, "W7: one branch per terminal state:\n{}", p.join("\n"));
    if d == Dialect::Postgres {
        let completed_range = p.windows(2).any(|w| {
            w[0].contains("ix_flow_run__state_type_coalesce_start_time") && w[1].contains("Index Cond") && w[1].contains("'COMPLETED'")
        });
        assert!(completed_range, "W7: COMPLETED runs not read as a range of the (state_type, start) index:\n{}", p.join("\n"));
    }
    if d == Dialect::Sqlite {
        for line in reads_of(d, &p, "flow_run") {
            assert!(line.contains("(state_type=? AND <expr>>?)"), "W7: the window is not the index range: {line}");
        }
    }

    // W9: the deployment's runs through its index (with the time index on PostgreSQL when it
    // pays); never a scan of flow_run.
    let typical = fx.deployment_ids[1];
    let w9 = HistoryRead::parse(Endpoint::FlowRunsHistory, &requests::w9(now, typical))?;
    let st = read::flow_run_history_statement(d, &w9)?.ok_or("no buckets")?;
    let p = plan(&db, &st).await?;
    assert_reads(d, "W9", &p, "flow_run", &["ix_flow_run__deployment_id", "ix_flow_run__expected_start_time_desc"]);
    assert!(p.iter().any(|l| l.contains("ix_flow_run__deployment_id")), "W9: not through the deployment's index:\n{}", p.join("\n"));

    // W10/W10K: PostgreSQL walks the expected-start index (the busy deployment holds half the
    // runs); SQLite, without statistics, reads the deployment's index.
    let busy = fx.deployment_ids[0];
    let w10_index = match d {
        Dialect::Postgres => "ix_flow_run__expected_start_time_desc",
        Dialect::Sqlite => "ix_flow_run__deployment_id",
    };
    // A page a few pages in (the bench's deep offset reads past all of this dataset's runs of
    // the deployment, which the planner rightly answers with one scan and a sort).
    let w10: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &requests::w10(busy, 1_000))?;
    let p = plan(&db, &read::flow_runs_statement(d, &w10)).await?;
    assert_reads(d, "W10", &p, "flow_run", &[w10_index]);
    let cursor = prefect_db_bench::layer::w10_cursor(fx, &db).await?;
    let w10k: Read<read::FlowRunSort> = Read::parse(Endpoint::FlowRunsFilter, &requests::w10(busy, 0))?;
    let p = plan(&db, &read::flow_runs_page_statement(d, &w10k, Some(&cursor))).await?;
    assert_reads(d, "W10K", &p, "flow_run", &[w10_index]);

    // W11: one run's logs in timestamp order, read through the run's index.
    let target = fx.flow_run_id.ok_or("no target run")?;
    let w11: Read<read::LogSort> = Read::parse(Endpoint::LogsFilter, &requests::w11(target))?;
    let p = plan(&db, &read::logs_statement(d, &w11)).await?;
    // PostgreSQL may read the run's logs through either of its indexes (sorting them when its
    // statistics say the run has few); never the timestamp index over every run's logs.
    let w11_indexes: &[&str] = match d {
        Dialect::Postgres => &["ix_log__flow_run_id_timestamp", "ix_log__flow_run_id"],
        Dialect::Sqlite => &["ix_log__flow_run_id_timestamp"],
    };
    assert_reads(d, "W11", &p, "log", w11_indexes);

    // W2: the worker poll's ranking reads flow_run only through indexes.
    let args = prefect_query_components::WorkPoolPoll {
        limit: Some(50),
        respect_queue_priorities: true,
        scheduled_before: Some(now),
        ..Default::default()
    };
    let p = plan(&db, &prefect_query_components::worker_poll::poll_statement(d, &args)).await?;
    let poll_reads = reads_of(d, &p, "flow_run");
    let all = p.join("\n");
    for line in &poll_reads {
        assert!(line.contains("ix_flow_run__"), "W2: flow_run read otherwise than through an index: {line}\n{all}");
    }
    assert!(
        // The scheduled-time index, the queue's, or the scheduler's partial index that holds
        // only SCHEDULED runs (read whole when its statistics say it is small).
        p.iter().any(|l| {
            ["ix_flow_run__next_scheduled_start_time_asc", "ix_flow_run__work_queue_id", "ix_flow_run__scheduler_deployment_id_auto_scheduled_next_schedu"]
                .iter()
                .any(|ix| l.contains(ix))
        }),
        "W2: candidates not taken from the queue or scheduled-time index:\n{all}"
    );

    // W5: a queue's scheduled runs through the queue's index.
    let sql = prefect_query_components::reads::read_work_queue_flow_runs_sql(d)?;
    let queue = fx.queue_ids[0];
    let p = match d {
        Dialect::Postgres => {
            let explain = format!("EXPLAIN EXECUTE w5('{queue}', ARRAY['SCHEDULED']::state_type[], 100)");
            explain_prepared(&db, &format!("PREPARE w5 AS {sql}"), &explain).await?
        }
        Dialect::Sqlite => {
            let mut n = 0;
            let numbered: String = sql
                .chars()
                .flat_map(|c| {
                    if c == '?' {
                        n += 1;
                        format!("?{n}").chars().collect::<Vec<_>>()
                    } else {
                        vec![c]
                    }
                })
                .collect();
            let st = Statement {
                sql: numbered,
                binds: vec![
                    read::Bind::Uuid(queue),
                    read::Bind::Text("SCHEDULED".into()),
                    read::Bind::Int(100),
                ],
            };
            plan(&db, &st).await?
        }
    };
    // (PostgreSQL may intersect it with the state type's index.)
    assert_reads(d, "W5", &p, "flow_run", &["ix_flow_run__work_queue_id", "ix_flow_run__state_type"]);
    assert!(p.iter().any(|l| l.contains("ix_flow_run__work_queue_id")), "W5: not through the queue's index:\n{}", p.join("\n"));
    Ok(())
}

/// PostgreSQL: `EXPLAIN EXECUTE` of a statement prepared on one connection.
async fn explain_prepared(db: &Database, prepare: &str, explain: &str) -> Result<Vec<String>, BoxError> {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Line {
        #[diesel(sql_type = diesel::sql_types::Text, column_name = "QUERY PLAN")]
        line: String,
    }
    let mut pooled = db.connection().await?;
    let mut conn = pooled.conn();
    conn.batch_execute(prepare).await?;
    let c = &mut conn;
    let lines: Vec<Line> = prefect_db_config::dispatch!(c, |c| diesel::sql_query(explain.to_owned()).load(c).await)?;
    conn.batch_execute("DEALLOCATE w5").await?;
    Ok(lines.into_iter().map(|l| l.line).collect())
}
