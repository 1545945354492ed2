//! Integration tests of `prefect-db-config`, compiled as one test binary (one link instead of one per file).

mod echo;
mod tier1;
