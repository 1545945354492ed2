//! Prefect's dialect-specific JSON helpers as typed diesel expressions (spec §8.2:
//! `uses_json_strings`, `cast_to_json`, `build_json_object`, `json_arr_agg`).
//!
//! Each expression is one Rust value that renders per backend (one `QueryFragment` impl per
//! backend), so a query using them is written once inside `dispatch!`:
//!
//! | helper                | PostgreSQL                              | SQLite                         |
//! |-----------------------|-----------------------------------------|--------------------------------|
//! | [`cast_to_json`]      | the expression itself                   | `json(expr)`                   |
//! | [`build_json_object`] | `jsonb_build_object(k, v, …)`           | `json_object(k, v, …)`         |
//! | [`json_arr_agg`]      | `coalesce(jsonb_agg(v), '[]'::jsonb)`   | `json_group_array(v)`          |
//!
//! Values placed inside an object or an array mean the same JSON on both dialects (Prefect's
//! SQLite versions put JSON columns in as strings and booleans as 0/1): JSON columns nest as
//! JSON, booleans become `true`/`false`, UUIDs strings, and timestamps the string
//! `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC, six fraction digits). Only SQL types implementing
//! [`JsonValueType`] may be placed; anything else does not compile.
//!
//! ```
//! use diesel::prelude::*;
//! use prefect_orm::schema::flow;
//! use prefect_query_components::json::{build_json_object, json_arr_agg, json_pair};
//!
//! // `[{"id": …, "name": …}, …]` for every flow, in one expression for both dialects.
//! let query = flow::table.select(json_arr_agg(build_json_object((
//!     json_pair("id", flow::id),
//!     json_pair("name", flow::name),
//! ))));
//! # let _ = query;
//! ```

use diesel::backend::Backend;
use diesel::expression::{
    AppearsOnTable, Expression, SelectableExpression, ValidGrouping, is_aggregate,
};
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{
    BigInt, Bool, Double, Float, Integer, Nullable, SingleValue, SmallInt, SqlType, Text,
};
use prefect_db_config::Dialect;
use prefect_orm::types::{PJson, PJsonb, PTimestamp, PUuid};

/// Whether a dialect hands JSON back as strings (Prefect's `uses_json_strings`): true on
/// SQLite, false on PostgreSQL.
pub fn uses_json_strings(dialect: Dialect) -> bool {
    match dialect {
        Dialect::Postgres => false,
        Dialect::Sqlite => true,
    }
}

/// How a value of an SQL type is turned into JSON inside an object or array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonForm {
    /// As is: text, numbers, UUIDs.
    Plain,
    /// A JSON document (nested as JSON, not as a string).
    Json,
    /// A boolean (`true`/`false`).
    Bool,
    /// A timestamp, as the string `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    Timestamp,
}

/// An SQL type whose values may be placed in a JSON object or array.
pub trait JsonValueType: SqlType {
    /// How its values become JSON.
    const FORM: JsonForm;
}

macro_rules! json_value_type {
    ($($t:ty => $form:ident),+ $(,)?) => {$(
        impl JsonValueType for $t {
            const FORM: JsonForm = JsonForm::$form;
        }
    )+};
}

json_value_type! {
    Text => Plain,
    SmallInt => Plain,
    Integer => Plain,
    BigInt => Plain,
    Float => Plain,
    Double => Plain,
    PUuid => Plain,
    Bool => Bool,
    PJsonb => Json,
    PJson => Json,
    PTimestamp => Timestamp,
}

impl<T> JsonValueType for Nullable<T>
where
    T: JsonValueType + SqlType<IsNull = diesel::sql_types::is_nullable::NotNull> + SingleValue,
{
    const FORM: JsonForm = T::FORM;
}

/// The dialects' spelling of one value placed in JSON (see [`JsonForm`]).
fn walk_json_value<'b, DB, E>(
    dialect: Dialect,
    form: JsonForm,
    expr: &'b E,
    mut out: AstPass<'_, 'b, DB>,
) -> diesel::QueryResult<()>
where
    DB: Backend,
    E: QueryFragment<DB>,
{
    match (dialect, form) {
        (_, JsonForm::Plain) | (Dialect::Postgres, JsonForm::Json | JsonForm::Bool) => {
            expr.walk_ast(out.reborrow())
        }
        (Dialect::Postgres, JsonForm::Timestamp) => {
            out.push_sql("to_char((");
            expr.walk_ast(out.reborrow())?;
            out.push_sql(") AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')");
            Ok(())
        }
        (Dialect::Sqlite, JsonForm::Json) => {
            out.push_sql("json(");
            expr.walk_ast(out.reborrow())?;
            out.push_sql(")");
            Ok(())
        }
        (Dialect::Sqlite, JsonForm::Bool) => {
            out.push_sql("json(CASE WHEN (");
            expr.walk_ast(out.reborrow())?;
            out.push_sql(") THEN 'true' WHEN NOT (");
            expr.walk_ast(out.reborrow())?;
            out.push_sql(") THEN 'false' END)");
            Ok(())
        }
        (Dialect::Sqlite, JsonForm::Timestamp) => {
            out.push_sql("(replace(");
            expr.walk_ast(out.reborrow())?;
            out.push_sql(", ' ', 'T') || 'Z')");
            Ok(())
        }
    }
}

/// Implements the expression traits that only delegate to the wrapped expression(s).
macro_rules! delegate_expression {
    ($name:ident, $field:ident, $sql_type:ty, aggregate = $agg:tt) => {
        impl<E, QS> AppearsOnTable<QS> for $name<E> where E: AppearsOnTable<QS>, Self: Expression {}
        impl<E, QS> SelectableExpression<QS> for $name<E> where
            E: SelectableExpression<QS>,
            Self: AppearsOnTable<QS>
        {
        }
        delegate_expression!(@grouping $name, $agg);
        impl<E> QueryId for $name<E> {
            type QueryId = ();
            const HAS_STATIC_QUERY_ID: bool = false;
        }
    };
    (@grouping $name:ident, no) => {
        impl<E, GB> ValidGrouping<GB> for $name<E>
        where
            E: ValidGrouping<GB>,
        {
            type IsAggregate = E::IsAggregate;
        }
    };
    (@grouping $name:ident, yes) => {
        impl<E, GB> ValidGrouping<GB> for $name<E> {
            type IsAggregate = is_aggregate::Yes;
        }
    };
}

/// Renders a node on both backends through one dialect-aware function.
macro_rules! per_backend {
    ($name:ident, |$this:ident, $dialect:ident, $out:ident| $body:expr) => {
        #[cfg(feature = "postgres")]
        impl<E> QueryFragment<diesel::pg::Pg> for $name<E>
        where
            E: QueryFragment<diesel::pg::Pg> + Expression,
            E::SqlType: JsonValueType,
        {
            fn walk_ast<'b>(
                &'b self,
                $out: AstPass<'_, 'b, diesel::pg::Pg>,
            ) -> diesel::QueryResult<()> {
                let $this = self;
                let $dialect = Dialect::Postgres;
                $body
            }
        }
        #[cfg(feature = "sqlite")]
        impl<E> QueryFragment<diesel::sqlite::Sqlite> for $name<E>
        where
            E: QueryFragment<diesel::sqlite::Sqlite> + Expression,
            E::SqlType: JsonValueType,
        {
            fn walk_ast<'b>(
                &'b self,
                $out: AstPass<'_, 'b, diesel::sqlite::Sqlite>,
            ) -> diesel::QueryResult<()> {
                let $this = self;
                let $dialect = Dialect::Sqlite;
                $body
            }
        }
    };
}

/// [`cast_to_json`]: the expression itself on PostgreSQL, `json(expr)` on SQLite.
#[derive(Debug, Clone, Copy)]
pub struct CastToJson<E> {
    expr: E,
}

/// Prefect's `cast_to_json`: makes a JSON-typed expression a JSON value (identity on
/// PostgreSQL, `json(expr)` on SQLite, which also minifies the text). The SQL type is kept.
pub fn cast_to_json<E>(expr: E) -> CastToJson<E>
where
    E: Expression,
    E::SqlType: JsonValueType,
{
    CastToJson { expr }
}

impl<E: Expression> Expression for CastToJson<E> {
    type SqlType = E::SqlType;
}
delegate_expression!(CastToJson, expr, E::SqlType, aggregate = no);
per_backend!(CastToJson, |this, dialect, out| {
    let mut out = out;
    match dialect {
        Dialect::Postgres => this.expr.walk_ast(out.reborrow()),
        Dialect::Sqlite => {
            out.push_sql("json(");
            this.expr.walk_ast(out.reborrow())?;
            out.push_sql(")");
            Ok(())
        }
    }
});

/// One key and value of [`build_json_object`]; build it with [`json_pair`].
#[derive(Debug, Clone)]
pub struct JsonPair<E> {
    key: String,
    value: E,
}

/// A key and a value for [`build_json_object`]. The key is bound as a parameter.
pub fn json_pair<E>(key: impl Into<String>, value: E) -> JsonPair<E>
where
    E: Expression,
    E::SqlType: JsonValueType,
{
    JsonPair {
        key: key.into(),
        value,
    }
}

impl<E: Expression> Expression for JsonPair<E> {
    type SqlType = E::SqlType;
}
impl<E, QS> AppearsOnTable<QS> for JsonPair<E> where E: AppearsOnTable<QS> {}
impl<E, QS> SelectableExpression<QS> for JsonPair<E> where E: SelectableExpression<QS> {}
impl<E, GB> ValidGrouping<GB> for JsonPair<E>
where
    E: ValidGrouping<GB>,
{
    type IsAggregate = E::IsAggregate;
}
impl<E> QueryId for JsonPair<E> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}
per_backend!(JsonPair, |this, dialect, out| {
    let mut out = out;
    out.push_bind_param::<Text, String>(&this.key)?;
    out.push_sql(", ");
    walk_json_value(
        dialect,
        <E::SqlType as JsonValueType>::FORM,
        &this.value,
        out,
    )
});

/// [`build_json_object`]: `jsonb_build_object(…)` on PostgreSQL, `json_object(…)` on SQLite.
#[derive(Debug, Clone)]
pub struct JsonObject<P> {
    pairs: P,
}

/// Prefect's `build_json_object`: a JSON object from [`json_pair`]s, given as one pair or a
/// tuple of pairs (`jsonb_build_object` on PostgreSQL, `json_object` on SQLite). Its SQL type
/// is [`PJsonb`], so it decodes to a `serde_json::Value` and nests as JSON in other objects
/// and arrays.
pub fn build_json_object<P>(pairs: P) -> JsonObject<P>
where
    P: Expression,
{
    JsonObject { pairs }
}

impl<P: Expression> Expression for JsonObject<P> {
    type SqlType = PJsonb;
}
impl<P, QS> AppearsOnTable<QS> for JsonObject<P>
where
    P: AppearsOnTable<QS>,
    Self: Expression,
{
}
impl<P, QS> SelectableExpression<QS> for JsonObject<P>
where
    P: SelectableExpression<QS>,
    Self: AppearsOnTable<QS>,
{
}
impl<P, GB> ValidGrouping<GB> for JsonObject<P>
where
    P: ValidGrouping<GB>,
{
    type IsAggregate = P::IsAggregate;
}
impl<P> QueryId for JsonObject<P> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}
#[cfg(feature = "postgres")]
impl<P> QueryFragment<diesel::pg::Pg> for JsonObject<P>
where
    P: QueryFragment<diesel::pg::Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, diesel::pg::Pg>) -> diesel::QueryResult<()> {
        out.push_sql("jsonb_build_object(");
        self.pairs.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}
#[cfg(feature = "sqlite")]
impl<P> QueryFragment<diesel::sqlite::Sqlite> for JsonObject<P>
where
    P: QueryFragment<diesel::sqlite::Sqlite>,
{
    fn walk_ast<'b>(
        &'b self,
        mut out: AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("json_object(");
        self.pairs.walk_ast(out.reborrow())?;
        out.push_sql(")");
        Ok(())
    }
}

/// [`json_arr_agg`]: `coalesce(jsonb_agg(v), '[]'::jsonb)` on PostgreSQL,
/// `json_group_array(v)` on SQLite.
#[derive(Debug, Clone, Copy)]
pub struct JsonArrAgg<E> {
    expr: E,
}

/// Prefect's `json_arr_agg`: the aggregate JSON array of the values of `expr` (`jsonb_agg` on
/// PostgreSQL, `json_group_array` on SQLite). No rows give `[]` on both dialects (Prefect's
/// PostgreSQL version gives NULL); the order of the elements is the order the rows reach the
/// aggregate, which SQL leaves unspecified.
pub fn json_arr_agg<E>(expr: E) -> JsonArrAgg<E>
where
    E: Expression,
    E::SqlType: JsonValueType,
{
    JsonArrAgg { expr }
}

impl<E: Expression> Expression for JsonArrAgg<E> {
    type SqlType = PJsonb;
}
delegate_expression!(JsonArrAgg, expr, PJsonb, aggregate = yes);
per_backend!(JsonArrAgg, |this, dialect, out| {
    let mut out = out;
    let form = <E::SqlType as JsonValueType>::FORM;
    match dialect {
        Dialect::Postgres => {
            out.push_sql("coalesce(jsonb_agg(");
            walk_json_value(dialect, form, &this.expr, out.reborrow())?;
            out.push_sql("), CAST('[]' AS jsonb))");
        }
        Dialect::Sqlite => {
            out.push_sql("json_group_array(");
            walk_json_value(dialect, form, &this.expr, out.reborrow())?;
            out.push_sql(")");
        }
    }
    Ok(())
});
