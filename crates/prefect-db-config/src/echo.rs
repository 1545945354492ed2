//! SQL echo (Prefect's `PREFECT_SERVER_DATABASE_ECHO`): every statement and its duration is
//! logged through `tracing` under the target `prefect_db::sql`.

use diesel::connection::{Instrumentation, InstrumentationEvent};
use std::time::Instant;

/// The `tracing` target of echoed statements.
pub const ECHO_TARGET: &str = "prefect_db::sql";

/// A diesel instrumentation that logs each statement with its duration.
#[derive(Debug, Default)]
pub struct EchoInstrumentation {
    started: Option<Instant>,
}

impl Instrumentation for EchoInstrumentation {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartQuery { .. } => self.started = Some(Instant::now()),
            InstrumentationEvent::FinishQuery { query, error, .. } => {
                let elapsed_us = self.started.take().map(|s| s.elapsed().as_micros()).unwrap_or(0);
                match error {
                    None => tracing::info!(target: ECHO_TARGET, elapsed_us, "{query}"),
                    Some(e) => tracing::warn!(target: ECHO_TARGET, elapsed_us, error = %e, "{query}"),
                }
            }
            InstrumentationEvent::BeginTransaction { depth, .. } => {
                tracing::info!(target: ECHO_TARGET, depth = depth.get(), "BEGIN");
            }
            InstrumentationEvent::CommitTransaction { depth, .. } => {
                tracing::info!(target: ECHO_TARGET, depth = depth.get(), "COMMIT");
            }
            InstrumentationEvent::RollbackTransaction { depth, .. } => {
                tracing::info!(target: ECHO_TARGET, depth = depth.get(), "ROLLBACK");
            }
            _ => {}
        }
    }
}
