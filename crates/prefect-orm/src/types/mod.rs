//! Portable SQL types: one name per Prefect column type, encoded per dialect exactly as Prefect
//! 3.9.1 stores it (native types on PostgreSQL, Prefect's text formats on SQLite).
//!
//! | SQL type      | Rust value              | PostgreSQL           | SQLite (stored value)                          |
//! |---------------|-------------------------|----------------------|------------------------------------------------|
//! | [`PUuid`]     | [`uuid::Uuid`]          | `uuid`               | lowercase hyphenated text, 36 characters       |
//! | [`PTimestamp`]| `DateTime<Utc>`         | `timestamptz`        | naive UTC text `YYYY-MM-DD HH:MM:SS.ffffff`    |
//! | [`PInterval`] | `chrono::TimeDelta`     | `interval`           | epoch + duration in the timestamp format       |
//! | [`PJsonb`]    | `serde_json::Value`     | `jsonb`              | Python `json.dumps` text                       |
//! | [`PJson`]     | `serde_json::Value`     | `json`               | Python `json.dumps` text                       |
//! | enums         | [`StateType`] and co.   | native enum types    | the upper-case label as text                   |
//!
//! Values are kept to the microsecond on both dialects: anything finer is truncated (floored)
//! when written, so a value reads back equal on PostgreSQL and SQLite alike.

mod enums;
pub mod json_text;
pub mod timefmt;

#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use enums::{
    DeploymentStatus, DeploymentStatusType, StateType, StateTypeType, UnknownEnumLabel,
    WorkPoolStatus, WorkPoolStatusType, WorkQueueStatus, WorkQueueStatusType, WorkerStatus,
    WorkerStatusType,
};

use diesel::expression::AsExpression;
use diesel::query_builder::QueryId;
use diesel::sql_types::SqlType;

/// A UUID: native `uuid` on PostgreSQL, `CHAR(36)` lowercase hyphenated text on SQLite.
#[derive(SqlType, QueryId, Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "postgres", diesel(postgres_type(oid = 2950, array_oid = 2951)))]
#[cfg_attr(feature = "sqlite", diesel(sqlite_type(name = "Text")))]
pub struct PUuid;

/// A point in time with microsecond precision: `timestamptz` on PostgreSQL; on SQLite
/// naive UTC text with exactly six fraction digits, so that text order is time order.
#[derive(SqlType, QueryId, Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "postgres", diesel(postgres_type(oid = 1184, array_oid = 1185)))]
#[cfg_attr(feature = "sqlite", diesel(sqlite_type(name = "Text")))]
pub struct PTimestamp;

/// A duration: `interval` on PostgreSQL; on SQLite the UNIX epoch plus the duration written as
/// a timestamp (`1970-01-01 00:00:00.611316` is 0.611316 s; negative durations fall before 1970).
#[derive(SqlType, QueryId, Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "postgres", diesel(postgres_type(oid = 1186, array_oid = 1187)))]
#[cfg_attr(feature = "sqlite", diesel(sqlite_type(name = "Text")))]
pub struct PInterval;

/// Prefect's `JSON` column type: `jsonb` on PostgreSQL, JSON text on SQLite.
#[derive(SqlType, QueryId, Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "postgres", diesel(postgres_type(oid = 3802, array_oid = 3807)))]
#[cfg_attr(feature = "sqlite", diesel(sqlite_type(name = "Text")))]
pub struct PJsonb;

/// The plain `json` column type of five Prefect columns (`artifact.data`, `artifact.metadata_`,
/// `artifact_collection.data`, `artifact_collection.metadata_`, `event_resources.resource`):
/// `json` on PostgreSQL (text kept as sent), JSON text on SQLite.
#[derive(SqlType, QueryId, Clone, Copy, Debug, Default)]
#[cfg_attr(feature = "postgres", diesel(postgres_type(oid = 114, array_oid = 199)))]
#[cfg_attr(feature = "sqlite", diesel(sqlite_type(name = "Text")))]
pub struct PJson;

/// A Rust value bound as a portable SQL type: `flow::id.eq(Val(id))`, and decoded from one:
/// `.first::<Val<Uuid>>(c)`.
///
/// diesel's coherence rules forbid `AsExpression` for foreign types such as `uuid::Uuid` or
/// `DateTime<Utc>` outside diesel itself, so values are bound through this wrapper (the models
/// use it through `#[diesel(serialize_as = Val<T>)]`). Decoding a single column of a portable
/// type goes through it too (the models use `#[diesel(deserialize_as = Val<T>)]`; see
/// `crate::models`): diesel decodes `Uuid` and `TimeDelta` only when its PostgreSQL backend is
/// compiled. Server code meets neither: the data access of [`crate::access`] takes and returns
/// plain values; only custom diesel queries written with `dispatch!` use `Val`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Val<T>(pub T);

impl<T> From<T> for Val<T> {
    fn from(value: T) -> Self {
        Val(value)
    }
}

macro_rules! bind_as {
    ($st:ty => $t:ty) => {
        impl<DB: diesel::backend::Backend> diesel::serialize::ToSql<$st, DB> for Val<$t>
        where
            $t: diesel::serialize::ToSql<$st, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, DB>) -> diesel::serialize::Result {
                self.0.to_sql(out)
            }
        }
        impl<DB: diesel::backend::Backend> diesel::serialize::ToSql<diesel::sql_types::Nullable<$st>, DB> for Val<$t>
        where
            $t: diesel::serialize::ToSql<$st, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, DB>) -> diesel::serialize::Result {
                self.0.to_sql(out)
            }
        }
        impl<DB: diesel::backend::Backend> diesel::serialize::ToSql<diesel::sql_types::Nullable<$st>, DB> for Val<Option<$t>>
        where
            $t: diesel::serialize::ToSql<$st, DB>,
        {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, DB>) -> diesel::serialize::Result {
                match &self.0 {
                    Some(v) => v.to_sql(out),
                    None => Ok(diesel::serialize::IsNull::Yes),
                }
            }
        }
        impl AsExpression<$st> for Val<$t> {
            type Expression = diesel::internal::derives::as_expression::Bound<$st, Self>;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
        impl<'a> AsExpression<$st> for &'a Val<$t> {
            type Expression = diesel::internal::derives::as_expression::Bound<$st, Self>;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
        impl AsExpression<diesel::sql_types::Nullable<$st>> for Val<$t> {
            type Expression = diesel::internal::derives::as_expression::Bound<diesel::sql_types::Nullable<$st>, Self>;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
        impl<'a> AsExpression<diesel::sql_types::Nullable<$st>> for &'a Val<$t> {
            type Expression = diesel::internal::derives::as_expression::Bound<diesel::sql_types::Nullable<$st>, Self>;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
        impl AsExpression<diesel::sql_types::Nullable<$st>> for Val<Option<$t>> {
            type Expression = diesel::internal::derives::as_expression::Bound<diesel::sql_types::Nullable<$st>, Self>;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
        impl<'a> AsExpression<diesel::sql_types::Nullable<$st>> for &'a Val<Option<$t>> {
            type Expression = diesel::internal::derives::as_expression::Bound<diesel::sql_types::Nullable<$st>, Self>;
            fn as_expression(self) -> Self::Expression {
                diesel::internal::derives::as_expression::Bound::new(self)
            }
        }
    };
}

bind_as!(PUuid => uuid::Uuid);
bind_as!(PTimestamp => chrono::DateTime<chrono::Utc>);
bind_as!(PInterval => chrono::TimeDelta);
bind_as!(PJsonb => serde_json::Value);
bind_as!(PJson => serde_json::Value);

/// The current time truncated to the microsecond, the precision both dialects store.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    timefmt::truncate_to_micros(chrono::Utc::now())
}
