//! Prefect's filter objects (`server/schemas/filters.py`) as Rust values: read from exactly the
//! JSON Prefect's API accepts, and compiled to one SQL condition per dialect with Prefect's
//! meaning (see the module documentation of [`super`] for the rules that are easy to miss).

use super::body::{self, Ctx, Obj};
use crate::sql::{Bind, Binder};
use chrono::{DateTime, Utc};
use prefect_orm::types::{StateType, WorkerStatus};
use serde_json::Value;
use uuid::Uuid;

/// How a filter's conditions are combined (`operator`, default `and_`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Operator {
    /// All must hold.
    #[default]
    And,
    /// One must hold.
    Or,
}

fn operator(ctx: &mut Ctx, v: &Value) -> Option<Operator> {
    body::one_of(ctx, v, &[("and_", Operator::And), ("or_", Operator::Or)])
}

const STATE_TYPES: &[(&str, StateType)] = &[
    ("SCHEDULED", StateType::Scheduled),
    ("PENDING", StateType::Pending),
    ("RUNNING", StateType::Running),
    ("COMPLETED", StateType::Completed),
    ("FAILED", StateType::Failed),
    ("CANCELLED", StateType::Cancelled),
    ("CRASHED", StateType::Crashed),
    ("PAUSED", StateType::Paused),
    ("CANCELLING", StateType::Cancelling),
];

const WORKER_STATUSES: &[(&str, WorkerStatus)] = &[("ONLINE", WorkerStatus::Online), ("OFFLINE", WorkerStatus::Offline)];

/// A leaf of a filter: the operations Prefect's leaf classes offer, each `None` when not given.
/// Which of them a class accepts is checked when it is read (others are `extra_forbidden`).
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf<T> {
    /// `operator`, on the leaf classes that have one.
    pub operator: Operator,
    /// `any_`: the column is one of these (`[]` matches nothing).
    pub any_: Option<Vec<T>>,
    /// `not_any_`: the column is none of these (NULL never matches; `[]` is ignored).
    pub not_any_: Option<Vec<T>>,
    /// `like_`: case-insensitive substring, `%`/`_` wildcards (`""` is ignored).
    pub like_: Option<String>,
    /// `startswith_`: case-insensitive prefix, any of these.
    pub startswith_: Option<Vec<String>>,
    /// `is_null_`.
    pub is_null_: Option<bool>,
    /// `exists_` (artifact keys: not NULL; subflow runs: has one).
    pub exists_: Option<bool>,
    /// `all_`: a JSON list holds every one of these (`[]` is ignored).
    pub all_: Option<Vec<String>>,
    /// `before_`: at or before (inclusive).
    pub before_: Option<DateTime<Utc>>,
    /// `after_`: at or after (inclusive).
    pub after_: Option<DateTime<Utc>>,
    /// `eq_` (booleans).
    pub eq_: Option<bool>,
    /// `ge_` (integers).
    pub ge_: Option<i64>,
    /// `le_` (integers).
    pub le_: Option<i64>,
    /// `id_` (created-by ids).
    pub id_: Option<Vec<Uuid>>,
    /// `type_` (created-by types).
    pub type_: Option<Vec<String>>,
}

impl<T> Default for Leaf<T> {
    fn default() -> Self {
        Leaf {
            operator: Operator::And,
            any_: None,
            not_any_: None,
            like_: None,
            startswith_: None,
            is_null_: None,
            exists_: None,
            all_: None,
            before_: None,
            after_: None,
            eq_: None,
            ge_: None,
            le_: None,
            id_: None,
            type_: None,
        }
    }
}

/// The keys a leaf class accepts.
#[derive(Clone, Copy)]
struct Keys(&'static [&'static str]);

fn leaf<T>(ctx: &mut Ctx, v: &Value, keys: Keys, item: fn(&mut Ctx, &Value) -> Option<T>) -> Option<Leaf<T>> {
    let mut o = Obj::of(ctx, v)?;
    let mut l = Leaf::<T>::default();
    for key in keys.0 {
        match *key {
            "operator" => l.operator = o.field(ctx, "operator", operator).unwrap_or_default(),
            "any_" => l.any_ = o.field(ctx, "any_", |c, v| body::list(c, v, item)),
            "not_any_" => l.not_any_ = o.field(ctx, "not_any_", |c, v| body::list(c, v, item)),
            "like_" => l.like_ = o.field(ctx, "like_", body::string),
            "startswith_" => l.startswith_ = o.field(ctx, "startswith_", |c, v| body::list(c, v, body::string)),
            "is_null_" => l.is_null_ = o.field(ctx, "is_null_", body::boolean),
            "exists_" => l.exists_ = o.field(ctx, "exists_", body::boolean),
            "all_" => l.all_ = o.field(ctx, "all_", |c, v| body::list(c, v, body::string)),
            "before_" => l.before_ = o.field(ctx, "before_", body::datetime),
            "after_" => l.after_ = o.field(ctx, "after_", body::datetime),
            "eq_" => l.eq_ = o.field(ctx, "eq_", body::boolean),
            "ge_" => l.ge_ = o.field(ctx, "ge_", body::int),
            "le_" => l.le_ = o.field(ctx, "le_", body::int),
            "id_" => l.id_ = o.field(ctx, "id_", |c, v| body::list(c, v, body::uuid)),
            "type_" => l.type_ = o.field(ctx, "type_", |c, v| body::list(c, v, body::string)),
            _ => {}
        }
    }
    o.done(ctx);
    Some(l)
}

fn ids(ctx: &mut Ctx, v: &Value, keys: Keys) -> Option<Leaf<Uuid>> {
    leaf(ctx, v, keys, body::uuid)
}
fn texts(ctx: &mut Ctx, v: &Value, keys: Keys) -> Option<Leaf<String>> {
    leaf(ctx, v, keys, body::string)
}
fn states(ctx: &mut Ctx, v: &Value, keys: Keys) -> Option<Leaf<StateType>> {
    leaf(ctx, v, keys, |c, v| body::one_of(c, v, STATE_TYPES))
}

const ANY: Keys = Keys(&["any_"]);
const ANY_NOT: Keys = Keys(&["any_", "not_any_"]);
const ANY_LIKE: Keys = Keys(&["any_", "like_"]);
const OP_ANY_NULL: Keys = Keys(&["operator", "any_", "is_null_"]);
const TAGS_ALL_NULL: Keys = Keys(&["operator", "all_", "is_null_"]);
const TAGS_ALL_ANY_NULL: Keys = Keys(&["operator", "all_", "any_", "is_null_"]);
const BEFORE_AFTER: Keys = Keys(&["before_", "after_"]);
const BEFORE_AFTER_NULL: Keys = Keys(&["before_", "after_", "is_null_"]);

// ---------------------------------------------------------------------------------------------
// Compiling

/// SQL being built for one dialect: bound values and the spelling of each operation.
pub(crate) struct Sql<'b> {
    pub(crate) b: &'b mut Binder,
}

impl Sql<'_> {
    pub(crate) fn t(&self) -> &'static str {
        self.b.dialect.lit_bool(true)
    }
    pub(crate) fn f(&self) -> &'static str {
        self.b.dialect.lit_bool(false)
    }

    /// Prefect's combination of a filter's terms: none is TRUE, else AND or OR.
    pub(crate) fn combine(&self, op: Operator, terms: Vec<String>) -> String {
        if terms.is_empty() {
            return self.t().to_owned();
        }
        let joiner = if op == Operator::And { " AND " } else { " OR " };
        format!("({})", terms.join(joiner))
    }

    fn in_binds(&mut self, col: &str, binds: Vec<Bind>) -> String {
        if binds.is_empty() {
            return format!("({})", self.f());
        }
        let list = self.b.bind_list(binds);
        format!("({col} IN ({list}))")
    }
    fn not_in_binds(&mut self, col: &str, binds: Vec<Bind>) -> String {
        let list = self.b.bind_list(binds);
        format!("({col} NOT IN ({list}))")
    }
    fn in_uuids(&mut self, col: &str, v: &[Uuid]) -> String {
        self.in_binds(col, v.iter().map(|u| Bind::Uuid(*u)).collect())
    }
    fn in_texts(&mut self, col: &str, v: &[String]) -> String {
        self.in_binds(col, v.iter().map(|s| Bind::Text(s.clone())).collect())
    }
    /// Enum values are validated labels: written as literals (the column's type on PostgreSQL).
    fn in_labels(&mut self, col: &str, labels: &[&str], negate: bool) -> String {
        if labels.is_empty() {
            return format!("({})", self.f());
        }
        let list = labels.iter().map(|l| format!("'{l}'")).collect::<Vec<_>>().join(", ");
        format!("({col} {}IN ({list}))", if negate { "NOT " } else { "" })
    }
    fn ilike(&mut self, col: &str, pattern: String) -> String {
        let p = self.b.bind(Bind::Text(pattern));
        self.b.dialect.ilike(col, &p)
    }
    fn is_null(col: &str, null: bool) -> String {
        format!("({col} IS {}NULL)", if null { "" } else { "NOT " })
    }
    fn time(&mut self, col: &str, op: &str, t: DateTime<Utc>) -> String {
        let p = self.b.bind(Bind::Time(t));
        format!("({col} {op} {p})")
    }
    fn texts_binds(&mut self, v: &[String]) -> String {
        self.b.bind_list(v.iter().map(|s| Bind::Text(s.clone())))
    }

    /// `any_` / `not_any_` of an id leaf.
    fn id_terms(&mut self, col: &str, l: &Leaf<Uuid>) -> Vec<String> {
        let mut t = Vec::new();
        if let Some(any) = &l.any_ {
            t.push(self.in_uuids(col, any));
        }
        if let Some(not) = l.not_any_.as_ref().filter(|n| !n.is_empty()) {
            let binds = not.iter().map(|u| Bind::Uuid(*u)).collect();
            t.push(self.not_in_binds(col, binds));
        }
        t
    }

    /// `any_` / `not_any_` / `like_` / `startswith_` of a text leaf.
    fn text_terms(&mut self, col: &str, l: &Leaf<String>) -> Vec<String> {
        let mut t = Vec::new();
        if let Some(any) = &l.any_ {
            t.push(self.in_texts(col, any));
        }
        if let Some(not) = l.not_any_.as_ref().filter(|n| !n.is_empty()) {
            let binds = not.iter().map(|s| Bind::Text(s.clone())).collect();
            t.push(self.not_in_binds(col, binds));
        }
        if let Some(like) = l.like_.as_ref().filter(|s| !s.is_empty()) {
            t.push(self.ilike(col, format!("%{like}%")));
        }
        if let Some(prefixes) = &l.startswith_ {
            // An empty list contributes no term at all (SQLAlchemy drops an empty `or_()`).
            if !prefixes.is_empty() {
                let alts: Vec<String> = prefixes.iter().map(|p| self.ilike(col, format!("{p}%"))).collect();
                t.push(format!("({})", alts.join(" OR ")));
            }
        }
        t
    }

    /// `all_` / `any_` / `is_null_` of a JSON list column (tags, capabilities).
    fn tags_terms(&mut self, col: &str, l: &Leaf<String>) -> Vec<String> {
        let mut t = Vec::new();
        if let Some(all) = l.all_.as_ref().filter(|a| !a.is_empty()) {
            let list = self.texts_binds(all);
            t.push(self.b.dialect.json_has_all(col, &list));
        }
        if let Some(any) = &l.any_ {
            if any.is_empty() {
                t.push(format!("({})", self.f()));
            } else {
                let list = self.texts_binds(any);
                t.push(self.b.dialect.json_has_any(col, &list));
            }
        }
        if let Some(null) = l.is_null_ {
            t.push(self.b.dialect.json_is_empty_list(col, null));
        }
        t
    }

    fn time_terms(&mut self, col: &str, range_col: &str, l: &Leaf<String>, before: Option<DateTime<Utc>>, after: Option<DateTime<Utc>>) -> Vec<String> {
        let mut t = Vec::new();
        if let Some(b) = before {
            t.push(self.time(range_col, "<=", b));
        }
        if let Some(a) = after {
            t.push(self.time(range_col, ">=", a));
        }
        if let Some(null) = l.is_null_ {
            t.push(Self::is_null(col, null));
        }
        t
    }

    fn state_type_terms(&mut self, col: &str, l: &Leaf<StateType>) -> Vec<String> {
        let mut t = Vec::new();
        if let Some(any) = &l.any_ {
            let labels: Vec<&str> = any.iter().map(|s| s.as_str()).collect();
            t.push(self.in_labels(col, &labels, false));
        }
        if let Some(not) = l.not_any_.as_ref().filter(|n| !n.is_empty()) {
            let labels: Vec<&str> = not.iter().map(|s| s.as_str()).collect();
            t.push(self.in_labels(col, &labels, true));
        }
        t
    }
}

/// A time leaf: the values live in `before_`/`after_` of the leaf read as text; parsed here.
fn time_leaf(ctx: &mut Ctx, v: &Value, keys: Keys) -> Option<TimeLeaf> {
    let mut o = Obj::of(ctx, v)?;
    let mut t = TimeLeaf::default();
    for key in keys.0 {
        match *key {
            "before_" => t.before_ = o.field(ctx, "before_", body::datetime),
            "after_" => t.after_ = o.field(ctx, "after_", body::datetime),
            "is_null_" => t.is_null_ = o.field(ctx, "is_null_", body::boolean),
            _ => {}
        }
    }
    o.done(ctx);
    Some(t)
}

/// A time leaf (`before_`, `after_`, `is_null_`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TimeLeaf {
    /// At or before (inclusive).
    pub before_: Option<DateTime<Utc>>,
    /// At or after (inclusive).
    pub after_: Option<DateTime<Utc>>,
    /// Whether the column is NULL.
    pub is_null_: Option<bool>,
}

impl TimeLeaf {
    fn terms(&self, s: &mut Sql<'_>, col: &str, range_col: &str) -> Vec<String> {
        let l = Leaf::<String> { is_null_: self.is_null_, ..Leaf::default() };
        s.time_terms(col, range_col, &l, self.before_, self.after_)
    }
}

macro_rules! filter_struct {
    (
        $(#[$doc:meta])*
        $name:ident { operator: $has_op:literal, $($field:ident: $ty:ty),* $(,)? }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            /// How the conditions are combined.
            pub operator: Operator,
            $(
                #[doc = concat!("`", stringify!($field), "`.")]
                pub $field: Option<$ty>,
            )*
        }
    };
}

filter_struct! {
    /// `FlowFilter`.
    FlowFilter { operator: true, id: Leaf<Uuid>, deployment: Leaf<Uuid>, name: Leaf<String>, tags: Leaf<String> }
}

impl FlowFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = FlowFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            id: o.field(ctx, "id", |c, v| ids(c, v, ANY_NOT)),
            deployment: o.field(ctx, "deployment", |c, v| ids(c, v, Keys(&["operator", "is_null_"]))),
            name: o.field(ctx, "name", |c, v| texts(c, v, ANY_LIKE)),
            tags: o.field(ctx, "tags", |c, v| texts(c, v, TAGS_ALL_NULL)),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.id {
            let terms = s.id_terms(&format!("{t}.id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.deployment {
            let mut terms = Vec::new();
            if let Some(null) = l.is_null_ {
                let not = if null { "NOT " } else { "" };
                terms.push(format!("({t}.id {not}IN (SELECT DISTINCT deployment.flow_id FROM deployment))"));
            }
            c.push(s.combine(l.operator, terms));
        }
        if let Some(l) = &self.name {
            let terms = s.text_terms(&format!("{t}.name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.tags {
            let terms = s.tags_terms(&format!("{t}.tags"), l);
            c.push(s.combine(l.operator, terms));
        }
        s.combine(self.operator, c)
    }
}

filter_struct! {
    /// `FlowRunFilter`.
    FlowRunFilter {
        operator: true,
        id: Leaf<Uuid>, name: Leaf<String>, tags: Leaf<String>, deployment_id: Leaf<Uuid>,
        work_queue_name: Leaf<String>, state: FlowRunStateFilter, flow_version: Leaf<String>,
        start_time: TimeLeaf, end_time: TimeLeaf, expected_start_time: TimeLeaf,
        next_scheduled_start_time: TimeLeaf, parent_flow_run_id: Leaf<Uuid>, parent_task_run_id: Leaf<Uuid>,
        idempotency_key: Leaf<String>, created_by: Leaf<String>,
    }
}

/// `FlowRunFilterState` / `TaskRunFilterState`: state type and state name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FlowRunStateFilter {
    /// How the conditions are combined.
    pub operator: Operator,
    /// `type`.
    pub type_: Option<Leaf<StateType>>,
    /// `name`.
    pub name: Option<Leaf<String>>,
}

impl FlowRunStateFilter {
    fn parse(ctx: &mut Ctx, v: &Value, type_keys: Keys, name_keys: Keys) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = FlowRunStateFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            type_: o.field(ctx, "type", |c, v| states(c, v, type_keys)),
            name: o.field(ctx, "name", |c, v| texts(c, v, name_keys)),
        };
        o.done(ctx);
        Some(f)
    }

    /// Sub-objects that compile to nothing (`{}`) are left out, not counted as TRUE.
    fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.type_ {
            let terms = s.state_type_terms(&format!("{t}.state_type"), l);
            if !terms.is_empty() {
                c.push(s.combine(Operator::And, terms));
            }
        }
        if let Some(l) = &self.name {
            let terms = s.text_terms(&format!("{t}.state_name"), l);
            if !terms.is_empty() {
                c.push(s.combine(Operator::And, terms));
            }
        }
        s.combine(self.operator, c)
    }
}

impl FlowRunFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = FlowRunFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            id: o.field(ctx, "id", |c, v| ids(c, v, ANY_NOT)),
            name: o.field(ctx, "name", |c, v| texts(c, v, ANY_LIKE)),
            tags: o.field(ctx, "tags", |c, v| texts(c, v, TAGS_ALL_ANY_NULL)),
            deployment_id: o.field(ctx, "deployment_id", |c, v| ids(c, v, OP_ANY_NULL)),
            work_queue_name: o.field(ctx, "work_queue_name", |c, v| texts(c, v, OP_ANY_NULL)),
            state: o.field(ctx, "state", |c, v| FlowRunStateFilter::parse(c, v, ANY_NOT, ANY_NOT)),
            flow_version: o.field(ctx, "flow_version", |c, v| texts(c, v, ANY)),
            start_time: o.field(ctx, "start_time", |c, v| time_leaf(c, v, BEFORE_AFTER_NULL)),
            end_time: o.field(ctx, "end_time", |c, v| time_leaf(c, v, BEFORE_AFTER_NULL)),
            expected_start_time: o.field(ctx, "expected_start_time", |c, v| time_leaf(c, v, BEFORE_AFTER)),
            next_scheduled_start_time: o.field(ctx, "next_scheduled_start_time", |c, v| time_leaf(c, v, BEFORE_AFTER)),
            parent_flow_run_id: o.field(ctx, "parent_flow_run_id", |c, v| ids(c, v, Keys(&["operator", "any_"]))),
            parent_task_run_id: o.field(ctx, "parent_task_run_id", |c, v| ids(c, v, OP_ANY_NULL)),
            idempotency_key: o.field(ctx, "idempotency_key", |c, v| texts(c, v, ANY_NOT)),
            created_by: o.field(ctx, "created_by", |c, v| {
                let mut o = Obj::of(c, v)?;
                let l = Leaf::<String> {
                    operator: o.field(c, "operator", operator).unwrap_or_default(),
                    id_: o.field(c, "id_", |c, v| body::list(c, v, body::uuid)),
                    type_: o.field(c, "type_", |c, v| body::list(c, v, body::string)),
                    is_null_: o.field(c, "is_null_", body::boolean),
                    ..Leaf::default()
                };
                o.done(c);
                Some(l)
            }),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        let col = |name: &str| format!("{t}.{name}");
        if let Some(l) = &self.id {
            let terms = s.id_terms(&col("id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.name {
            let terms = s.text_terms(&col("name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.tags {
            let terms = s.tags_terms(&col("tags"), l);
            c.push(s.combine(l.operator, terms));
        }
        if let Some(l) = &self.deployment_id {
            let mut terms = Vec::new();
            if let Some(any) = &l.any_ {
                terms.push(s.in_uuids(&col("deployment_id"), any));
            }
            if let Some(null) = l.is_null_ {
                terms.push(Sql::is_null(&col("deployment_id"), null));
            }
            c.push(s.combine(l.operator, terms));
        }
        if let Some(l) = &self.work_queue_name {
            let mut terms = Vec::new();
            if let Some(any) = &l.any_ {
                terms.push(s.in_texts(&col("work_queue_name"), any));
            }
            if let Some(null) = l.is_null_ {
                terms.push(Sql::is_null(&col("work_queue_name"), null));
            }
            c.push(s.combine(l.operator, terms));
        }
        if let Some(st) = &self.state {
            c.push(st.sql(s, t));
        }
        if let Some(l) = &self.flow_version {
            let terms = s.text_terms(&col("flow_version"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.start_time {
            // A run that has not started is compared by its expected start.
            let range = format!("COALESCE({t}.start_time, {t}.expected_start_time)");
            let terms = l.terms(s, &col("start_time"), &range);
            c.push(s.combine(Operator::And, terms));
        }
        for (leaf, name) in [(&self.end_time, "end_time"), (&self.expected_start_time, "expected_start_time"), (&self.next_scheduled_start_time, "next_scheduled_start_time")] {
            if let Some(l) = leaf {
                let terms = l.terms(s, &col(name), &col(name));
                c.push(s.combine(Operator::And, terms));
            }
        }
        if let Some(l) = &self.parent_flow_run_id {
            let mut terms = Vec::new();
            if let Some(any) = &l.any_ {
                let inner = s.in_uuids("parent_tr.flow_run_id", any);
                terms.push(format!(
                    "({t}.id IN (SELECT child_fr.id FROM flow_run child_fr JOIN task_run parent_tr \
                     ON parent_tr.id = child_fr.parent_task_run_id WHERE {inner}))"
                ));
            }
            c.push(s.combine(l.operator, terms));
        }
        if let Some(l) = &self.parent_task_run_id {
            let mut terms = Vec::new();
            if let Some(any) = &l.any_ {
                terms.push(s.in_uuids(&col("parent_task_run_id"), any));
            }
            if let Some(null) = l.is_null_ {
                terms.push(Sql::is_null(&col("parent_task_run_id"), null));
            }
            c.push(s.combine(l.operator, terms));
        }
        if let Some(l) = &self.idempotency_key {
            let terms = s.text_terms(&col("idempotency_key"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.created_by {
            let mut terms = Vec::new();
            let d = s.b.dialect;
            if let Some(ids) = &l.id_ {
                let texts: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                terms.push(s.in_texts(&d.json_text_field(&col("created_by"), "id"), &texts));
            }
            if let Some(types) = &l.type_ {
                terms.push(s.in_texts(&d.json_text_field(&col("created_by"), "type"), types));
            }
            if let Some(null) = l.is_null_ {
                terms.push(Sql::is_null(&col("created_by"), null));
            }
            c.push(s.combine(l.operator, terms));
        }
        s.combine(self.operator, c)
    }
}

filter_struct! {
    /// `TaskRunFilter`.
    TaskRunFilter {
        operator: true,
        id: Leaf<Uuid>, name: Leaf<String>, tags: Leaf<String>, state: FlowRunStateFilter,
        start_time: TimeLeaf, end_time: TimeLeaf, expected_start_time: TimeLeaf,
        subflow_runs: Leaf<Uuid>, flow_run_id: Leaf<Uuid>,
    }
}

impl TaskRunFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = TaskRunFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            id: o.field(ctx, "id", |c, v| ids(c, v, ANY)),
            name: o.field(ctx, "name", |c, v| texts(c, v, ANY_LIKE)),
            tags: o.field(ctx, "tags", |c, v| texts(c, v, TAGS_ALL_NULL)),
            state: o.field(ctx, "state", |c, v| FlowRunStateFilter::parse(c, v, ANY, ANY)),
            start_time: o.field(ctx, "start_time", |c, v| time_leaf(c, v, BEFORE_AFTER_NULL)),
            end_time: o.field(ctx, "end_time", |c, v| time_leaf(c, v, BEFORE_AFTER_NULL)),
            expected_start_time: o.field(ctx, "expected_start_time", |c, v| time_leaf(c, v, BEFORE_AFTER)),
            subflow_runs: o.field(ctx, "subflow_runs", |c, v| ids(c, v, Keys(&["exists_"]))),
            flow_run_id: o.field(ctx, "flow_run_id", |c, v| {
                let mut l = ids(c, v, OP_ANY_NULL)?;
                // `is_null_` defaults to false; only an explicit `null` removes it.
                let explicit_null = matches!(v.get("is_null_"), Some(Value::Null));
                if l.is_null_.is_none() && !explicit_null {
                    l.is_null_ = Some(false);
                }
                Some(l)
            }),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        let col = |name: &str| format!("{t}.{name}");
        if let Some(l) = &self.id {
            let terms = s.id_terms(&col("id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.name {
            let terms = s.text_terms(&col("name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.tags {
            let terms = s.tags_terms(&col("tags"), l);
            c.push(s.combine(l.operator, terms));
        }
        if let Some(st) = &self.state {
            c.push(st.sql(s, t));
        }
        for (leaf, name) in [(&self.start_time, "start_time"), (&self.end_time, "end_time"), (&self.expected_start_time, "expected_start_time")] {
            if let Some(l) = leaf {
                let terms = l.terms(s, &col(name), &col(name));
                c.push(s.combine(Operator::And, terms));
            }
        }
        if let Some(l) = &self.subflow_runs {
            let mut terms = Vec::new();
            if let Some(exists) = l.exists_ {
                let not = if exists { "" } else { "NOT " };
                terms.push(format!("({not}EXISTS (SELECT 1 FROM flow_run subflow WHERE subflow.parent_task_run_id = {t}.id))"));
            }
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.flow_run_id {
            let mut terms = Vec::new();
            match (l.is_null_, &l.any_) {
                (Some(true), _) => terms.push(format!("({t}.flow_run_id IS NULL)")),
                (Some(false), None) => terms.push(format!("({t}.flow_run_id IS NOT NULL)")),
                (_, Some(any)) => terms.push(s.in_uuids(&col("flow_run_id"), any)),
                (None, None) => {}
            }
            c.push(s.combine(l.operator, terms));
        }
        s.combine(self.operator, c)
    }
}

filter_struct! {
    /// `DeploymentFilter`.
    DeploymentFilter {
        operator: true,
        id: Leaf<Uuid>, name: Leaf<String>, flow_or_deployment_name: Leaf<String>, paused: Leaf<String>,
        tags: Leaf<String>, work_queue_name: Leaf<String>, concurrency_limit: Leaf<String>,
    }
}

impl DeploymentFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = DeploymentFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            id: o.field(ctx, "id", |c, v| ids(c, v, ANY_NOT)),
            name: o.field(ctx, "name", |c, v| texts(c, v, ANY_LIKE)),
            flow_or_deployment_name: o.field(ctx, "flow_or_deployment_name", |c, v| texts(c, v, Keys(&["like_"]))),
            paused: o.field(ctx, "paused", |c, v| texts(c, v, Keys(&["eq_"]))),
            tags: o.field(ctx, "tags", |c, v| texts(c, v, TAGS_ALL_ANY_NULL)),
            work_queue_name: o.field(ctx, "work_queue_name", |c, v| texts(c, v, ANY)),
            concurrency_limit: o.field(ctx, "concurrency_limit", |c, v| texts(c, v, Keys(&["ge_", "le_", "is_null_"]))),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        let col = |name: &str| format!("{t}.{name}");
        if let Some(l) = &self.id {
            let terms = s.id_terms(&col("id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.name {
            let terms = s.text_terms(&col("name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.flow_or_deployment_name {
            let mut terms = Vec::new();
            if let Some(like) = l.like_.as_ref().filter(|x| !x.is_empty()) {
                let pattern = format!("%{like}%");
                let own = s.ilike(&col("name"), pattern.clone());
                let flows = s.ilike("named_flow.name", pattern);
                terms.push(format!(
                    "({own} OR EXISTS (SELECT 1 FROM flow named_flow WHERE named_flow.id = {t}.flow_id AND {flows}))"
                ));
            }
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.paused {
            let mut terms = Vec::new();
            if let Some(b) = l.eq_ {
                terms.push(s.b.dialect.is_bool(&col("paused"), b));
            }
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.tags {
            let terms = s.tags_terms(&col("tags"), l);
            c.push(s.combine(l.operator, terms));
        }
        if let Some(l) = &self.work_queue_name {
            let terms = s.text_terms(&col("work_queue_name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        // `concurrency_limit` is deprecated: read and validated, but no term at all.
        s.combine(self.operator, c)
    }
}

filter_struct! {
    /// `WorkPoolFilter`.
    WorkPoolFilter { operator: true, id: Leaf<Uuid>, name: Leaf<String>, type_: Leaf<String> }
}

impl WorkPoolFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = WorkPoolFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            id: o.field(ctx, "id", |c, v| ids(c, v, ANY)),
            name: o.field(ctx, "name", |c, v| texts(c, v, ANY)),
            type_: o.field(ctx, "type", |c, v| texts(c, v, ANY)),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.id {
            let terms = s.id_terms(&format!("{t}.id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.name {
            let terms = s.text_terms(&format!("{t}.name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.type_ {
            let terms = s.text_terms(&format!("{t}.type"), l);
            c.push(s.combine(Operator::And, terms));
        }
        s.combine(self.operator, c)
    }
}

filter_struct! {
    /// `WorkQueueFilter`.
    WorkQueueFilter { operator: true, id: Leaf<Uuid>, name: Leaf<String> }
}

impl WorkQueueFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = WorkQueueFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            id: o.field(ctx, "id", |c, v| ids(c, v, ANY)),
            name: o.field(ctx, "name", |c, v| texts(c, v, Keys(&["any_", "startswith_"]))),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.id {
            let terms = s.id_terms(&format!("{t}.id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.name {
            let terms = s.text_terms(&format!("{t}.name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        s.combine(self.operator, c)
    }
}

filter_struct! {
    /// `WorkerFilter`.
    WorkerFilter { operator: true, last_heartbeat_time: TimeLeaf, status: Leaf<WorkerStatus> }
}

impl WorkerFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = WorkerFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            last_heartbeat_time: o.field(ctx, "last_heartbeat_time", |c, v| time_leaf(c, v, BEFORE_AFTER)),
            status: o.field(ctx, "status", |c, v| leaf(c, v, ANY_NOT, |c, v| body::one_of(c, v, WORKER_STATUSES))),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.last_heartbeat_time {
            let col = format!("{t}.last_heartbeat_time");
            let terms = l.terms(s, &col, &col);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.status {
            let mut terms = Vec::new();
            let col = format!("{t}.status");
            if let Some(any) = &l.any_ {
                let labels: Vec<&str> = any.iter().map(|w| w.as_str()).collect();
                terms.push(s.in_labels(&col, &labels, false));
            }
            if let Some(not) = l.not_any_.as_ref().filter(|n| !n.is_empty()) {
                let labels: Vec<&str> = not.iter().map(|w| w.as_str()).collect();
                terms.push(s.in_labels(&col, &labels, true));
            }
            c.push(s.combine(Operator::And, terms));
        }
        s.combine(self.operator, c)
    }
}

/// `LogFilter`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogFilter {
    /// How the conditions are combined.
    pub operator: Operator,
    /// `level` (`ge_`, `le_`).
    pub level: Option<Leaf<String>>,
    /// `timestamp`.
    pub timestamp: Option<TimeLeaf>,
    /// `flow_run_id`.
    pub flow_run_id: Option<Leaf<Uuid>>,
    /// `task_run_id`.
    pub task_run_id: Option<Leaf<Uuid>>,
    /// `text.query`: Prefect's log text search.
    pub text: Option<String>,
}

impl LogFilter {
    /// The flow run every log this filter keeps belongs to, if there is one
    /// (`flow_run_id.any_` of one id, and the filter's conditions all hold together).
    pub(crate) fn the_flow_run(&self) -> Option<Uuid> {
        let run = match self.flow_run_id.as_ref().and_then(|l| l.any_.as_deref()) {
            Some(&[run]) => run,
            _ => return None,
        };
        (self.operator == Operator::And || self.without_flow_run().is_empty()).then_some(run)
    }

    /// This filter's other conditions.
    pub(crate) fn without_flow_run(&self) -> LogFilter {
        LogFilter { flow_run_id: None, ..self.clone() }
    }

    /// No condition at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.level.is_none() && self.timestamp.is_none() && self.flow_run_id.is_none() && self.task_run_id.is_none() && self.text.is_none()
    }

    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = LogFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            level: o.field(ctx, "level", |c, v| texts(c, v, Keys(&["ge_", "le_"]))),
            timestamp: o.field(ctx, "timestamp", |c, v| time_leaf(c, v, BEFORE_AFTER)),
            flow_run_id: o.field(ctx, "flow_run_id", |c, v| ids(c, v, ANY)),
            task_run_id: o.field(ctx, "task_run_id", |c, v| ids(c, v, Keys(&["any_", "is_null_"]))),
            text: o.field(ctx, "text", |c, v| {
                let mut o = Obj::of(c, v)?;
                let present = o.has("query") && !o.is_null("query");
                let q = o.field(c, "query", |c, v| body::string_max(c, v, 200));
                if !present {
                    c.at("query", |c| c.error("missing"));
                }
                o.done(c);
                q
            }),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.level {
            let mut terms = Vec::new();
            if let Some(ge) = l.ge_ {
                let p = s.b.bind(Bind::Int(ge));
                terms.push(format!("(log.level >= {p})"));
            }
            if let Some(le) = l.le_ {
                let p = s.b.bind(Bind::Int(le));
                terms.push(format!("(log.level <= {p})"));
            }
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.timestamp {
            let terms = l.terms(s, "log.timestamp", "log.timestamp");
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.flow_run_id {
            let terms = s.id_terms("log.flow_run_id", l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.task_run_id {
            let mut terms = s.id_terms("log.task_run_id", l);
            if let Some(null) = l.is_null_ {
                terms.push(Sql::is_null("log.task_run_id", null));
            }
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(query) = &self.text {
            // The search's terms join the filter's own list (not grouped).
            let parsed = super::text_search::parse(query);
            let field = s.b.dialect.lower("log.message || ' ' || log.name");
            let matches = |s: &mut Sql<'_>, term: &str| {
                let p = s.b.bind(Bind::Text(format!("%{}%", super::text_search::escape(&prefect_db_config::conn::unicode_lower(term)))));
                format!("({field} LIKE {p} ESCAPE '/')")
            };
            if !parsed.include.is_empty() {
                let alts: Vec<String> = parsed.include.iter().map(|t| matches(s, t)).collect();
                c.push(format!("({})", alts.join(" OR ")));
            }
            if !parsed.exclude.is_empty() {
                let alts: Vec<String> = parsed.exclude.iter().map(|t| format!("NOT {}", matches(s, t))).collect();
                c.push(format!("({})", alts.join(" AND ")));
            }
            if !parsed.required.is_empty() {
                let alts: Vec<String> = parsed.required.iter().map(|t| matches(s, t)).collect();
                c.push(format!("({})", alts.join(" AND ")));
            }
        }
        s.combine(self.operator, c)
    }
}

/// `ArtifactFilter` (on `artifact`) and `ArtifactCollectionFilter` (on `artifact_collection`,
/// with `latest_id` in place of `id`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ArtifactFilter {
    /// How the conditions are combined.
    pub operator: Operator,
    /// `id` (artifacts) or `latest_id` (collections).
    pub id: Option<Leaf<Uuid>>,
    /// `key` (`any_`, `like_`, `exists_`).
    pub key: Option<Leaf<String>>,
    /// `flow_run_id`.
    pub flow_run_id: Option<Leaf<Uuid>>,
    /// `task_run_id`.
    pub task_run_id: Option<Leaf<Uuid>>,
    /// `type` (`any_`, `not_any_`).
    pub type_: Option<Leaf<String>>,
}

impl ArtifactFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value, collection: bool) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let id_key = if collection { "latest_id" } else { "id" };
        let f = ArtifactFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            id: o.field(ctx, id_key, |c, v| ids(c, v, ANY)),
            key: o.field(ctx, "key", |c, v| texts(c, v, Keys(&["any_", "like_", "exists_"]))),
            flow_run_id: o.field(ctx, "flow_run_id", |c, v| ids(c, v, ANY)),
            task_run_id: o.field(ctx, "task_run_id", |c, v| ids(c, v, ANY)),
            type_: o.field(ctx, "type", |c, v| texts(c, v, ANY_NOT)),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str, collection: bool) -> String {
        let mut c = Vec::new();
        let col = |name: &str| format!("{t}.{name}");
        if let Some(l) = &self.id {
            let terms = s.id_terms(&col(if collection { "latest_id" } else { "id" }), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.key {
            let mut terms = s.text_terms(&col("key"), l);
            if let Some(exists) = l.exists_ {
                terms.push(Sql::is_null(&col("key"), !exists));
            }
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.flow_run_id {
            let terms = s.id_terms(&col("flow_run_id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.task_run_id {
            let terms = s.id_terms(&col("task_run_id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.type_ {
            let terms = s.text_terms(&col("type"), l);
            c.push(s.combine(Operator::And, terms));
        }
        s.combine(self.operator, c)
    }
}

filter_struct! {
    /// `VariableFilter`.
    VariableFilter { operator: true, id: Leaf<Uuid>, name: Leaf<String>, tags: Leaf<String> }
}

impl VariableFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = VariableFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            id: o.field(ctx, "id", |c, v| ids(c, v, ANY)),
            name: o.field(ctx, "name", |c, v| texts(c, v, ANY_LIKE)),
            tags: o.field(ctx, "tags", |c, v| texts(c, v, TAGS_ALL_NULL)),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.id {
            let terms = s.id_terms(&format!("{t}.id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.name {
            let terms = s.text_terms(&format!("{t}.name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.tags {
            let terms = s.tags_terms(&format!("{t}.tags"), l);
            c.push(s.combine(l.operator, terms));
        }
        s.combine(self.operator, c)
    }
}

/// `BlockTypeFilter` (no `operator`: its conditions are AND-ed).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BlockTypeFilter {
    /// `name.like_`.
    pub name: Option<Leaf<String>>,
    /// `slug.any_`.
    pub slug: Option<Leaf<String>>,
}

impl BlockTypeFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = BlockTypeFilter {
            name: o.field(ctx, "name", |c, v| texts(c, v, Keys(&["like_"]))),
            slug: o.field(ctx, "slug", |c, v| texts(c, v, ANY)),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.name {
            let terms = s.text_terms(&format!("{t}.name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.slug {
            let terms = s.text_terms(&format!("{t}.slug"), l);
            c.push(s.combine(Operator::And, terms));
        }
        s.combine(Operator::And, c)
    }
}

filter_struct! {
    /// `BlockSchemaFilter`.
    BlockSchemaFilter { operator: true, block_type_id: Leaf<Uuid>, block_capabilities: Leaf<String>, id: Leaf<Uuid>, version: Leaf<String> }
}

impl BlockSchemaFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let f = BlockSchemaFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            block_type_id: o.field(ctx, "block_type_id", |c, v| ids(c, v, ANY)),
            block_capabilities: o.field(ctx, "block_capabilities", |c, v| texts(c, v, Keys(&["all_"]))),
            id: o.field(ctx, "id", |c, v| ids(c, v, ANY)),
            version: o.field(ctx, "version", |c, v| texts(c, v, ANY)),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.block_type_id {
            let terms = s.id_terms(&format!("{t}.block_type_id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.block_capabilities {
            let terms = s.tags_terms(&format!("{t}.capabilities"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.id {
            let terms = s.id_terms(&format!("{t}.id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.version {
            let terms = s.text_terms(&format!("{t}.version"), l);
            c.push(s.combine(Operator::And, terms));
        }
        s.combine(self.operator, c)
    }
}

/// `BlockDocumentFilter`. `is_anonymous` defaults to `{"eq_": false}` (anonymous documents
/// left out) unless the body says `"is_anonymous": null`.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockDocumentFilter {
    /// How the conditions are combined.
    pub operator: Operator,
    /// `id`.
    pub id: Option<Leaf<Uuid>>,
    /// `is_anonymous` (`eq_`); `None` when the body sent `null`.
    pub is_anonymous: Option<Leaf<String>>,
    /// `block_type_id`.
    pub block_type_id: Option<Leaf<Uuid>>,
    /// `name`.
    pub name: Option<Leaf<String>>,
}

impl Default for BlockDocumentFilter {
    /// What the endpoints use when the body has no filter: named documents only.
    fn default() -> Self {
        BlockDocumentFilter {
            operator: Operator::And,
            id: None,
            is_anonymous: Some(Leaf { eq_: Some(false), ..Leaf::default() }),
            block_type_id: None,
            name: None,
        }
    }
}

impl BlockDocumentFilter {
    pub(crate) fn parse(ctx: &mut Ctx, v: &Value) -> Option<Self> {
        let mut o = Obj::of(ctx, v)?;
        let default_anonymity = !o.has("is_anonymous");
        let f = BlockDocumentFilter {
            operator: o.field(ctx, "operator", operator).unwrap_or_default(),
            id: o.field(ctx, "id", |c, v| ids(c, v, ANY)),
            is_anonymous: o
                .field(ctx, "is_anonymous", |c, v| texts(c, v, Keys(&["eq_"])))
                .or_else(|| default_anonymity.then(|| Leaf { eq_: Some(false), ..Leaf::default() })),
            block_type_id: o.field(ctx, "block_type_id", |c, v| ids(c, v, ANY)),
            name: o.field(ctx, "name", |c, v| texts(c, v, ANY_LIKE)),
        };
        o.done(ctx);
        Some(f)
    }

    pub(crate) fn sql(&self, s: &mut Sql<'_>, t: &str) -> String {
        let mut c = Vec::new();
        if let Some(l) = &self.id {
            let terms = s.id_terms(&format!("{t}.id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.is_anonymous {
            let mut terms = Vec::new();
            if let Some(b) = l.eq_ {
                terms.push(s.b.dialect.is_bool(&format!("{t}.is_anonymous"), b));
            }
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.block_type_id {
            let terms = s.id_terms(&format!("{t}.block_type_id"), l);
            c.push(s.combine(Operator::And, terms));
        }
        if let Some(l) = &self.name {
            let terms = s.text_terms(&format!("{t}.name"), l);
            c.push(s.combine(Operator::And, terms));
        }
        s.combine(self.operator, c)
    }
}
