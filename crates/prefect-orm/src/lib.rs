//! Tier 3 of the Prefect database layer: the schema of a Prefect 3.9.1 database, the portable
//! column types that encode values as Prefect does on each dialect, the typed models, the
//! upsert columns of the ORM configuration, and the embedded migrations.
//!
//! This crate knows nothing of settings, pools or the environment: it works on any diesel
//! connection it is handed.

pub mod access;
pub mod models;
pub mod orm_config;
pub mod schema;
pub mod migrations;
pub mod prepared;
pub mod schema_check;
pub mod types;
