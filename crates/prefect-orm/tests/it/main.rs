//! Integration tests of `prefect-orm`, compiled as one test binary (one link instead of one per file).

mod migrations;
mod models_compile;
mod schema_drift;
mod types_roundtrip;
