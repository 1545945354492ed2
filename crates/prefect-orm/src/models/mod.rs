//! Typed models of every Prefect table: full rows, inserts and changesets.
//!
//! The structs are generated from the PostgreSQL migrations into [`generated`] by
//! `cargo xtask codegen`; see that module for the conventions. Everything is re-exported here, so
//! `prefect_orm::models::{Flow, NewFlow, FlowChangeset}` is the path to use.

pub mod generated;

pub use generated::*;

/// Decoding through [`Val`](crate::types::Val), which the generated rows use as
/// `#[diesel(deserialize_as = Val<T>)]` on the fields of portable types.
///
/// diesel 2.3 has no blanket `Queryable<ST, DB> for T where T: FromSql<ST, DB>`: a foreign type
/// decodes from a custom SQL type only through diesel's own `FromSqlRow` impl for that type, and
/// diesel has those for `uuid::Uuid` and `chrono::TimeDelta` only with its PostgreSQL backend
/// compiled in. A SQLite-only build could not load a `Uuid` from a `PUuid` column. `Val<T>`
/// is local, so it can have the generic impl, and the rows convert back with `From`.
mod decode {
    use crate::types::Val;
    use diesel::backend::Backend;
    use diesel::deserialize::{self, FromStaticSqlRow, Queryable};

    impl<T, ST, DB> Queryable<ST, DB> for Val<T>
    where
        DB: Backend,
        T: FromStaticSqlRow<ST, DB>,
    {
        type Row = T;

        fn build(row: T) -> deserialize::Result<Self> {
            Ok(Val(row))
        }
    }

    macro_rules! unwrap_val {
        ($($t:ty),+ $(,)?) => {$(
            impl From<Val<$t>> for $t {
                fn from(value: Val<$t>) -> Self {
                    value.0
                }
            }

            impl From<Val<Option<$t>>> for Option<$t> {
                fn from(value: Val<Option<$t>>) -> Self {
                    value.0
                }
            }
        )+};
    }

    unwrap_val!(
        uuid::Uuid,
        chrono::DateTime<chrono::Utc>,
        chrono::TimeDelta,
        serde_json::Value,
    );
}
