//! Integration tests of `prefect-query-components`, compiled as one test binary (one link instead of one per file).

mod common;
mod configuration;
mod graph;
mod history;
mod inserts;
mod json;
mod plans;
mod reads;
mod work_queues;
mod worker_poll;
