//! Flow run reads split by state type: the shape that keeps the dashboard's reads proportional
//! to what they return.
//!
//! The dashboard asks for runs in a list of state types (the terminal ones, say) in a time
//! window, ordered by start time: `state_type IN (…) AND COALESCE(start_time,
//! expected_start_time) >= t ORDER BY COALESCE(…) DESC LIMIT 200`, and for their count. Prefect's
//! schema has `(state_type, COALESCE(start_time, expected_start_time))` for exactly this, but
//! neither database reads it well for a *list* of types: PostgreSQL walks the time index and
//! filters out every run of another state on the way (the scheduled runs ahead of now, which
//! grow with the server's run rate), SQLite reads every matching run of the window and sorts
//! them. Written as one branch per state type, each branch is a range of that index read in
//! order (stopping after `offset + limit` rows for a list, counted from the index alone for a
//! count), and the branches are merged: the work is the rows returned, whatever is stored.
//!
//! The split applies when it cannot change the answer: the flow run filter combines its
//! conditions with AND, the state filter is an `any_` list of two or more types (combined with
//! AND with its other conditions), and — for lists — the sort is by start time. A run has one
//! state type, so the branches are disjoint and their union is the unsplit filter.

use super::filters::{FlowRunFilter, Operator, Sql};
use super::{Binder, Filters, Read, Sort, Statement, where_flow_runs};
use crate::sql::{Bind, SqlDialect};
use prefect_orm::types::StateType;

/// One branch: one state type, and the filters without their state types.
struct Branch {
    state: StateType,
    /// The filters without the state types (and, in `list_filters`, without the start-time
    /// bounds, which the list's row comparisons carry).
    filters: Filters,
    list_filters: Filters,
    bounded: bool,
    after: Option<chrono::DateTime<chrono::Utc>>,
    before: Option<chrono::DateTime<chrono::Utc>>,
}

const KEY: &str = "COALESCE(flow_run.start_time, flow_run.expected_start_time)";

impl Branch {
    /// `state_type` as a range of one value: the same rows as `=`, but not a constant to the
    /// planner, so an order on `(state_type, COALESCE(…))` can only come from that index.
    fn state_range(&self, alias: &str) -> String {
        let label = self.state.as_str();
        format!("{alias}.state_type >= '{label}' AND {alias}.state_type <= '{label}'")
    }

    /// A list branch's conditions: the filter's own, and its state type as a range (see
    /// [`Branch::state_range`]).
    /// A list branch's conditions: the filter's own, and its state type and window as bounds
    /// on `(state_type, COALESCE(…))`: `(state_type, key) >= (type, after)` (or `state_type >=
    /// type` without a lower bound) and `(state_type, key) <= (type, before)` (or `state_type <=
    /// type`). Together they say `state_type = type` and the window; as row comparisons they are
    /// where a range scan of that index starts and ends on both databases, and without an
    /// equality the planner cannot treat the type as a constant, so the branch's order
    /// `(state_type, key, id)` can only come from that index.
    ///
    /// SQLite reads the same index in order from `state_type = type AND key >= after` (it
    /// drops an equality column from the order by itself), so it gets that plainer form.
    fn list_conditions(&self, b: &mut Binder) -> Vec<String> {
        let label = self.state.as_str();
        if b.dialect.0 == prefect_db_config::Dialect::Sqlite {
            let mut w = where_flow_runs(&mut Sql { b: &mut *b }, &self.filters);
            w.push(format!("(flow_run.state_type = '{label}')"));
            return w;
        }
        let mut w = where_flow_runs(&mut Sql { b: &mut *b }, &self.list_filters);
        w.push(match self.after {
            Some(after) => {
                let p = b.bind(Bind::Time(after));
                format!("((flow_run.state_type, {KEY}) >= ('{label}', {p}))")
            }
            None => format!("(flow_run.state_type >= '{label}')"),
        });
        w.push(match self.before {
            Some(before) => {
                let p = b.bind(Bind::Time(before));
                format!("((flow_run.state_type, {KEY}) <= ('{label}', {p}))")
            }
            None => format!("(flow_run.state_type <= '{label}')"),
        });
        w
    }

    /// A count branch's conditions: the filter's own, its state type, and the window closed
    /// at the newest key of any run of that state type. That bound holds for every run of the
    /// branch (it changes no count) and keeps a walk of the `COALESCE(…)` index, which
    /// PostgreSQL may prefer, below the runs of other states scheduled ahead of now; the bound
    /// is one probe of `(state_type, COALESCE(…))`.
    fn count_conditions(&self, b: &mut Binder) -> Vec<String> {
        let mut w = where_flow_runs(&mut Sql { b: &mut *b }, &self.filters);
        w.push(format!("(flow_run.state_type = '{}')", self.state.as_str()));
        if self.bounded {
            let newest = "COALESCE(newest.start_time, newest.expected_start_time)";
            w.push(format!(
                "({KEY} <= (SELECT {newest} FROM flow_run AS newest WHERE {} AND {newest} IS NOT NULL \
                 ORDER BY newest.state_type DESC, {newest} DESC LIMIT 1))",
                self.state_range("newest")
            ));
        }
        w
    }
}

/// The branches (one state type each), when the split applies.
fn branches(filters: &Filters) -> Option<Vec<Branch>> {
    let fr: &FlowRunFilter = filters.flow_runs.as_ref()?;
    let state = fr.state.as_ref()?;
    if fr.operator != Operator::And || (state.operator != Operator::And && state.name.is_some()) {
        return None;
    }
    let leaf = state.type_.as_ref()?;
    let mut types: Vec<StateType> = Vec::new();
    for t in leaf.any_.as_ref()? {
        if !types.contains(t) {
            types.push(*t);
        }
    }
    if types.len() < 2 {
        return None;
    }
    let bounded = start_time_bounded(filters);
    // The branches' filters: the same, without the `any_` list (each branch names its type).
    let mut rest = filters.clone();
    if let Some(leaf) = rest.flow_runs.as_mut().and_then(|fr| fr.state.as_mut()).and_then(|s| s.type_.as_mut()) {
        leaf.any_ = None;
    }
    let (after, before) = fr.start_time.as_ref().map_or((None, None), |l| (l.after_, l.before_));
    let mut list_rest = rest.clone();
    if let Some(fr) = list_rest.flow_runs.as_mut() {
        fr.start_time = fr
            .start_time
            .take()
            .and_then(|l| l.is_null_.map(|n| super::filters::TimeLeaf { before_: None, after_: None, is_null_: Some(n) }));
    }
    Some(
        types
            .into_iter()
            .map(|t| Branch { state: t, filters: rest.clone(), list_filters: list_rest.clone(), bounded, after, before })
            .collect(),
    )
}

/// Whether the filter bounds the start time (then no matching run has a NULL sort key).
fn start_time_bounded(filters: &Filters) -> bool {
    filters
        .flow_runs
        .as_ref()
        .and_then(|fr| fr.start_time.as_ref())
        .is_some_and(|l| l.after_.is_some() || l.before_.is_some())
}

/// The ids of a page of flow runs sorted by start time, one branch per state type, merged.
pub(super) fn flow_runs<S: Sort>(dialect: SqlDialect, request: &Read<S>) -> Option<Statement> {
    let asc = match request.sort.name() {
        "START_TIME_ASC" => true,
        "START_TIME_DESC" => false,
        _ => return None,
    };
    let bounded = start_time_bounded(&request.filters);
    let branches = branches(&request.filters)?;
    let mut b = Binder::new(dialect);
    let dir = if asc { "ASC" } else { "DESC" };
    // A bounded start time leaves no NULL key: the index's own order (SQLite can then read it
    // in order instead of sorting); otherwise PostgreSQL's NULL placement on both.
    let key_order = if bounded { format!("{KEY} {dir}") } else { dialect.order_term(KEY, asc) };
    let inner_order = format!("ORDER BY flow_run.state_type {dir}, {key_order}, flow_run.id {dir}");
    let per_branch = b.bind(Bind::Int(request.offset.saturating_add(request.limit)));
    let mut parts = Vec::new();
    for (i, branch) in branches.iter().enumerate() {
        let w = branch.list_conditions(&mut b);
        parts.push(format!(
            "SELECT * FROM (SELECT flow_run.id AS id, {KEY} AS k FROM flow_run{} {inner_order} LIMIT {per_branch}) AS b{i}",
            super::where_sql(&w)
        ));
    }
    let lim = b.bind(Bind::Int(request.limit));
    let off = b.bind(Bind::Int(request.offset));
    let sql = format!(
        "SELECT u.id AS id FROM ({}) AS u ORDER BY {}, u.id {dir} LIMIT {lim} OFFSET {off}",
        parts.join(" UNION ALL "),
        dialect.order_term("u.k", asc)
    );
    Some(Statement { sql, binds: b.binds })
}

/// The count of flow runs in a bounded start-time window, one count per state type, summed.
pub(super) fn count_flow_runs(dialect: SqlDialect, filters: &Filters) -> Option<Statement> {
    if !start_time_bounded(filters) {
        return None;
    }
    let branches = branches(filters)?;
    let mut b = Binder::new(dialect);
    let counts: Vec<String> = branches
        .iter()
        .map(|branch| {
            let w = branch.count_conditions(&mut b);
            format!("(SELECT count(*) FROM flow_run{})", super::where_sql(&w))
        })
        .collect();
    Some(Statement { sql: format!("SELECT {} AS n", counts.join(" + ")), binds: b.binds })
}
