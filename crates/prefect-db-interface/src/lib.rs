//! The database layer of a Prefect-compatible server, as one dependency: ties settings and
//! connections (tier 1), query components (tier 2) and the ORM configuration (tier 3) together,
//! the dialect picked from the connection URL, as Prefect's `PrefectDBInterface` does; and the
//! API a server's handlers use: the [`Database`] handle, transactions, typed data access for
//! every table ([`DataAccess`]), and one error ([`Error`]). The cargo features `postgres` and
//! `sqlite` (both on by default) select which backends are compiled.
//!
//! One `use` line brings it all:
//!
//! ```no_run
//! use prefect_db_interface::prelude::*;
//!
//! # async fn demo() -> Result<(), Error> {
//! let db = provide_database_interface()?;      // from Prefect's settings; opens nothing
//! db.migrate_on_start().await?;                // explicit; honours `migrate_on_start`
//! let run = db
//!     .transaction(TxMode::Write, async |tx| {
//!         let flow = tx.create_flow(NewFlow::new("etl")).await?.row;
//!         tx.insert(NewFlowRun::new("nightly", flow.id)).await
//!     })
//!     .await?;
//! let again: FlowRun = db.get(run.id).await?;
//! assert_eq!(again.name, "nightly");
//! # Ok(()) }
//! ```
//!
//! Queries the data access does not cover are written with diesel over `schema` and the models,
//! inside `dispatch!` (see its documentation for how it evaluates).

pub mod access;
pub mod copy;
pub mod error;
pub mod interface;
pub mod migrate;
pub mod prelude;
pub mod tables;

pub use access::DataAccess;
pub use error::{Error, ErrorKind, InterfaceError};
pub use interface::{
    Database, DatabaseOverride, ERRORS, OrmConfig, PrefectDbInterface, RETRIES, database_for, provide_database_interface,
    with_database_override,
};
pub use prefect_db_config as config;
pub use prefect_orm as orm;
pub use prefect_query_components as queries;
pub use prefect_query_components::read;
