//! Reads of flow runs whose plan matters on SQLite.
//!
//! A Prefect database has no planner statistics on SQLite (Prefect never runs `ANALYZE`, and
//! its tables would change the schema). Without them SQLite takes an equality on `state_type`
//! as selective, while nearly every run of a busy server is SCHEDULED: a read of one queue's
//! scheduled runs through `ix_flow_run__state_type_coalesce_start_time` reads and sorts every
//! scheduled run of every queue. Marking the `state_type` comparison as not to be answered from
//! an index ([`NotIndexed`]) leaves SQLite the queue's index (`ix_flow_run__work_queue_id`):
//! the read costs the queue's runs, not the table's. PostgreSQL plans from its statistics and
//! sees the same statement without the mark.

use crate::QueryResult;
use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::{ExpressionMethods, QueryDsl, SelectableHelper};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use prefect_db_config::Conn;
use prefect_orm::prepared::Prepared;
use prefect_orm::models::FlowRun;
use prefect_orm::schema::flow_run;
use prefect_orm::types::{StateType, Val};
use uuid::Uuid;

/// An expression SQLite must not answer from an index: `+expr` on SQLite (the unary plus
/// disqualifies the term from index use), the expression itself on PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct NotIndexed<E>(pub E);

impl<E: Expression> Expression for NotIndexed<E> {
    type SqlType = E::SqlType;
}

impl<E, QS> AppearsOnTable<QS> for NotIndexed<E> where E: AppearsOnTable<QS> {}

impl<E, QS> SelectableExpression<QS> for NotIndexed<E> where E: SelectableExpression<QS> {}

impl<E: ValidGrouping<G>, G> ValidGrouping<G> for NotIndexed<E> {
    type IsAggregate = E::IsAggregate;
}

impl<E: QueryId> QueryId for NotIndexed<E> {
    type QueryId = NotIndexed<E::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = E::HAS_STATIC_QUERY_ID;
}

#[cfg(feature = "sqlite")]
impl<E: QueryFragment<diesel::sqlite::Sqlite>> QueryFragment<diesel::sqlite::Sqlite> for NotIndexed<E> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> diesel::QueryResult<()> {
        out.push_sql("+");
        self.0.walk_ast(out)
    }
}

#[cfg(feature = "postgres")]
impl<E: QueryFragment<diesel::pg::Pg>> QueryFragment<diesel::pg::Pg> for NotIndexed<E> {
    fn walk_ast<'b>(&'b self, out: AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(out)
    }
}

macro_rules! work_queue_runs {
    ($queue:expr, $states:expr, $limit:expr) => {
        flow_run::table
            .filter(flow_run::work_queue_id.eq($queue))
            .filter(NotIndexed(flow_run::state_type).eq_any($states))
            .order((DescNullsLast(flow_run::expected_start_time), flow_run::id))
            .limit($limit)
            .select(FlowRun::as_select())
    };
}

/// `expr DESC` with NULLs last on both dialects: SQLite sorts NULL lowest, so `DESC` alone puts
/// them last; PostgreSQL sorts NULL highest and needs `NULLS LAST`.
#[derive(Debug, Clone, Copy)]
pub struct DescNullsLast<E>(pub E);

impl<E: Expression> Expression for DescNullsLast<E> {
    type SqlType = E::SqlType;
}

impl<E, QS> AppearsOnTable<QS> for DescNullsLast<E> where E: AppearsOnTable<QS> {}

impl<E: ValidGrouping<G>, G> ValidGrouping<G> for DescNullsLast<E> {
    type IsAggregate = E::IsAggregate;
}

impl<E: QueryId> QueryId for DescNullsLast<E> {
    type QueryId = DescNullsLast<E::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = E::HAS_STATIC_QUERY_ID;
}

#[cfg(feature = "sqlite")]
impl<E: QueryFragment<diesel::sqlite::Sqlite>> QueryFragment<diesel::sqlite::Sqlite> for DescNullsLast<E> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>) -> diesel::QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" DESC");
        Ok(())
    }
}

#[cfg(feature = "postgres")]
impl<E: QueryFragment<diesel::pg::Pg>> QueryFragment<diesel::pg::Pg> for DescNullsLast<E> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        self.0.walk_ast(out.reborrow())?;
        out.push_sql(" DESC NULLS LAST");
        Ok(())
    }
}

/// The flow runs of one work queue whose state type is one of `state_types`, newest expected
/// start first (ties by id), at most `limit`: what the UI and `prefect work-queue preview` ask
/// (Prefect's `read_flow_runs` with a work queue and state filter sorted by
/// `EXPECTED_START_TIME_DESC`). Runs without an expected start time come last on both dialects.
pub async fn read_work_queue_flow_runs(
    conn: &mut Conn<'_>,
    work_queue_id: Uuid,
    state_types: &[StateType],
    limit: i64,
) -> QueryResult<Vec<FlowRun>> {
    let queue = Val(work_queue_id);
    let states = state_types.to_vec();
    // A handful of state types: the statement's text comes from a small set, keep it prepared.
    let rows: Vec<FlowRun> = match conn {
        #[cfg(feature = "postgres")]
        Conn::Postgres(c) => {
            use diesel_async::RunQueryDsl;
            Prepared::new(work_queue_runs!(queue, states, limit)).load(&mut **c).await?
        }
        // One hop to the connection's thread, rows decoded where SQLite returns them.
        #[cfg(feature = "sqlite")]
        Conn::Sqlite(c) => {
            c.spawn_blocking(move |c| diesel::RunQueryDsl::load(Prepared::new(work_queue_runs!(queue, states, limit)), c))
                .await?
        }
    };
    Ok(rows)
}

/// The SQL text of [`read_work_queue_flow_runs`] for one state type, as `dialect` receives it
/// (placeholders: the queue, the state types — an array on PostgreSQL — and the limit): for plan
/// checks and for sending the same statement through another driver.
pub fn read_work_queue_flow_runs_sql(dialect: prefect_db_config::Dialect) -> QueryResult<String> {
    use diesel::query_builder::QueryBuilder as _;
    Ok(match dialect {
        #[cfg(feature = "sqlite")]
        prefect_db_config::Dialect::Sqlite => {
            let query = work_queue_runs!(Val(Uuid::nil()), vec![StateType::Scheduled], 1);
            let mut qb = diesel::sqlite::SqliteQueryBuilder::new();
            <_ as QueryFragment<diesel::sqlite::Sqlite>>::to_sql(&query, &mut qb, &diesel::sqlite::Sqlite)?;
            qb.finish()
        }
        #[cfg(feature = "postgres")]
        prefect_db_config::Dialect::Postgres => {
            let query = work_queue_runs!(Val(Uuid::nil()), vec![StateType::Scheduled], 1);
            let mut qb = diesel::pg::PgQueryBuilder::new();
            <_ as QueryFragment<diesel::pg::Pg>>::to_sql(&query, &mut qb, &diesel::pg::Pg)?;
            qb.finish()
        }
        #[allow(unreachable_patterns)]
        other => return Err(crate::QueryError::InvalidArgument(format!("{other:?} is not compiled in"))),
    })
}
