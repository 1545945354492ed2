//! Prefect's enum columns: native enum types on PostgreSQL, the upper-case label as text on
//! SQLite (where the columns are `VARCHAR(9)`/`VARCHAR(7)` without a CHECK constraint).

use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::serialize::{self, IsNull, Output, ToSql};

/// A stored label that is not a value of the enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {enum_name} label {label:?}")]
pub struct UnknownEnumLabel {
    /// The enum type, as PostgreSQL names it.
    pub enum_name: &'static str,
    /// The label found.
    pub label: String,
}

macro_rules! prefect_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $sql:ident, $pg_name:literal { $( $(#[$vmeta:meta])* $variant:ident = $label:literal ),+ $(,)? }
    ) => {
        #[doc = concat!("The SQL type of the `", $pg_name, "` enum.")]
        #[derive(diesel::sql_types::SqlType, diesel::query_builder::QueryId, Clone, Copy, Debug, Default)]
        #[cfg_attr(feature = "postgres", diesel(postgres_type(name = $pg_name)))]
        #[cfg_attr(feature = "sqlite", diesel(sqlite_type(name = "Text")))]
        pub struct $sql;

        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, AsExpression, FromSqlRow)]
        #[derive(serde::Serialize, serde::Deserialize)]
        #[diesel(sql_type = $sql)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $label)] $variant ),+
        }

        impl $name {
            /// Every value, in PostgreSQL's declaration (and sort) order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label stored in the database.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownEnumLabel;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($label => Ok($name::$variant),)+
                    other => Err(UnknownEnumLabel { enum_name: $pg_name, label: other.to_owned() }),
                }
            }
        }

        #[cfg(feature = "postgres")]
        impl ToSql<$sql, diesel::pg::Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::pg::Pg>) -> serialize::Result {
                std::io::Write::write_all(out, self.as_str().as_bytes())?;
                Ok(IsNull::No)
            }
        }

        #[cfg(feature = "postgres")]
        impl FromSql<$sql, diesel::pg::Pg> for $name {
            fn from_sql(value: diesel::pg::PgValue<'_>) -> deserialize::Result<Self> {
                let label = std::str::from_utf8(value.as_bytes())?;
                Ok(label.parse()?)
            }
        }

        #[cfg(feature = "sqlite")]
        impl ToSql<$sql, diesel::sqlite::Sqlite> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, diesel::sqlite::Sqlite>) -> serialize::Result {
                out.set_value(self.as_str());
                Ok(IsNull::No)
            }
        }

        #[cfg(feature = "sqlite")]
        impl FromSql<$sql, diesel::sqlite::Sqlite> for $name {
            fn from_sql(mut value: diesel::sqlite::SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
                Ok(value.read_text().parse()?)
            }
        }
    };
}

prefect_enum! {
    /// The type of a flow or task run state.
    StateType, StateTypeType, "state_type" {
        /// Waiting for its scheduled start.
        Scheduled = "SCHEDULED",
        /// Picked up, not yet running.
        Pending = "PENDING",
        /// Running.
        Running = "RUNNING",
        /// Finished successfully.
        Completed = "COMPLETED",
        /// Finished with an error.
        Failed = "FAILED",
        /// Cancelled.
        Cancelled = "CANCELLED",
        /// Its infrastructure failed.
        Crashed = "CRASHED",
        /// Paused, waiting to be resumed.
        Paused = "PAUSED",
        /// Being cancelled.
        Cancelling = "CANCELLING",
    }
}

impl StateType {
    /// Whether a run in this state has finished for good.
    pub const fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled | Self::Crashed)
    }
}

prefect_enum! {
    /// Whether a deployment's work can be picked up.
    DeploymentStatus, DeploymentStatusType, "deployment_status" {
        /// A worker polls for it.
        Ready = "READY",
        /// No worker polls for it.
        NotReady = "NOT_READY",
    }
}

prefect_enum! {
    /// The status of a work pool.
    WorkPoolStatus, WorkPoolStatusType, "work_pool_status" {
        /// A worker polls it.
        Ready = "READY",
        /// No worker polls it.
        NotReady = "NOT_READY",
        /// Paused by a user.
        Paused = "PAUSED",
    }
}

prefect_enum! {
    /// The status of a work queue.
    WorkQueueStatus, WorkQueueStatusType, "work_queue_status" {
        /// A worker polls it.
        Ready = "READY",
        /// No worker polls it.
        NotReady = "NOT_READY",
        /// Paused by a user.
        Paused = "PAUSED",
    }
}

prefect_enum! {
    /// The status of a worker.
    WorkerStatus, WorkerStatusType, "worker_status" {
        /// Sent a heartbeat recently.
        Online = "ONLINE",
        /// Missed its heartbeats.
        Offline = "OFFLINE",
    }
}
