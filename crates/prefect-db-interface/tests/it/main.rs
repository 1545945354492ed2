//! Integration tests of `prefect-db-interface`, compiled as one test binary (one link instead of one per file).

mod access;
mod copy;
mod interface;
mod read_api;
mod real_data;
mod semantics;
mod migrate;
mod overrides;
mod pgbouncer;
mod replica;
mod resilience;
