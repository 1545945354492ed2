//! The database interface of a Prefect server: ties settings and connections (tier 1), query
//! components (tier 2) and the ORM configuration (tier 3) together, the dialect picked from the
//! connection URL, as Prefect's `PrefectDBInterface` does. The cargo features `postgres` and
//! `sqlite` (both on by default) select which backends are compiled.

pub mod error;
pub mod interface;
pub mod migrate;
pub mod copy;
pub mod tables;

pub use error::InterfaceError;
pub use interface::{
    Database, DatabaseOverride, OrmConfig, PrefectDbInterface, database_for, provide_database_interface, with_database_override,
};
pub use prefect_db_config as config;
pub use prefect_orm as orm;
pub use prefect_query_components as queries;
