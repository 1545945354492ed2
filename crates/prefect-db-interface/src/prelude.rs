//! Everything a server's handlers need, in one `use prefect_db_interface::prelude::*;`: the
//! [`Database`] handle and how to get it, transactions ([`TxMode`], [`Conn`]), the typed data
//! access ([`DataAccess`]) and its error ([`Error`], [`ErrorKind`]), every model
//! (`FlowRun`, `NewFlowRun`, `FlowRunChangeset`, …) and enum (`StateType`, …), the schema
//! (as `schema`, for custom diesel queries), the query components and Prefect's read API
//! (`read`, `Read`, `Endpoint`), and the value types the
//! models use (`Uuid`, `DateTime`, `Utc`, `TimeDelta`).
//!
//! ```
//! use prefect_db_interface::prelude::*;
//!
//! fn scheduled(flow_id: Uuid, at: DateTime<Utc>) -> NewFlowRun {
//!     let mut run = NewFlowRun::new("nightly", flow_id);
//!     run.state_type = Some(StateType::Scheduled);
//!     run.expected_start_time = Some(at);
//!     run
//! }
//! # let _ = scheduled(Uuid::nil(), Utc::now());
//! ```

pub use crate::access::DataAccess;
pub use crate::error::{Error, ErrorKind};
pub use crate::interface::{Database, database_for, provide_database_interface};
pub use chrono::{DateTime, TimeDelta, Utc};
pub use prefect_db_config::{Conn, DatabaseConfig, TxMode};
pub use prefect_orm::access::prefect::Created;
pub use prefect_orm::access::{NewRecord, OnConflict, Record, RecordChangeset};
pub use prefect_orm::models::*;
pub use prefect_orm::schema;
pub use prefect_orm::types::{
    DeploymentStatus, StateType, WorkPoolStatus, WorkQueueStatus, WorkerStatus,
};
pub use prefect_query_components::QueryComponents;
pub use prefect_query_components::read::{self, Endpoint, HistoryRead, Read};
pub use uuid::Uuid;
