//! Prefect's sort enums (`server/schemas/sorting.py`) and their `ORDER BY`.

use crate::sql::SqlDialect;

/// One term of an `ORDER BY`: an expression over the table (`{t}` stands for its name) and a
/// direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortTerm {
    /// The expression, with `{t}` for the table.
    pub expr: &'static str,
    /// Ascending.
    pub asc: bool,
}

/// A sort enum of Prefect's API.
pub trait Sort: Copy + Send + Sync + std::fmt::Debug + 'static {
    /// Every value with its name in the API.
    const VALUES: &'static [(&'static str, Self)];
    /// The endpoint's default.
    const DEFAULT: Self;
    /// The terms of its `ORDER BY`, before the tie-breaking id.
    fn terms(self) -> &'static [SortTerm];
    /// The name in the API.
    fn name(self) -> &'static str;
}

const fn asc(expr: &'static str) -> SortTerm {
    SortTerm { expr, asc: true }
}
const fn desc(expr: &'static str) -> SortTerm {
    SortTerm { expr, asc: false }
}

/// The `ORDER BY` of `terms` over table `t`, with PostgreSQL's NULL placement on both dialects
/// and the id last (in the direction of the last term) so that ties come back in one order.
pub(crate) fn order_by(d: SqlDialect, t: &str, terms: &[SortTerm], extra: &str) -> String {
    let mut parts: Vec<String> = terms
        .iter()
        .map(|term| d.order_term(&term.expr.replace("{t}", t).replace("{ert}", extra), term.asc))
        .collect();
    let id = format!("{t}.id");
    if !terms.iter().any(|term| term.expr.replace("{t}", t) == id) {
        let asc = terms.last().is_none_or(|term| term.asc);
        parts.push(format!("{id} {}", if asc { "ASC" } else { "DESC" }));
    }
    format!("ORDER BY {}", parts.join(", "))
}

macro_rules! sort_enum {
    ($(#[$doc:meta])* $name:ident, default $default:ident { $($variant:ident = $label:literal => [$($term:expr),+],)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("`", $label, "`.")]
                $variant,
            )+
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl Sort for $name {
            const VALUES: &'static [(&'static str, Self)] = &[$(($label, $name::$variant)),+];
            const DEFAULT: Self = $name::$default;
            fn terms(self) -> &'static [SortTerm] {
                match self {
                    $($name::$variant => const { &[$($term),+] },)+
                }
            }
            fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }
        }
    };
}

sort_enum! {
    /// `FlowSort` (default `NAME_ASC`).
    FlowSort, default NameAsc {
        CreatedDesc = "CREATED_DESC" => [desc("{t}.created")],
        UpdatedDesc = "UPDATED_DESC" => [desc("{t}.updated")],
        NameAsc = "NAME_ASC" => [asc("{t}.name")],
        NameDesc = "NAME_DESC" => [desc("{t}.name")],
    }
}

sort_enum! {
    /// `FlowRunSort` (default `ID_DESC`). `START_TIME_*` sort by the start time, or the expected
    /// start of a run that has not started.
    FlowRunSort, default IdDesc {
        IdDesc = "ID_DESC" => [desc("{t}.id")],
        StartTimeAsc = "START_TIME_ASC" => [asc("COALESCE({t}.start_time, {t}.expected_start_time)")],
        StartTimeDesc = "START_TIME_DESC" => [desc("COALESCE({t}.start_time, {t}.expected_start_time)")],
        ExpectedStartTimeAsc = "EXPECTED_START_TIME_ASC" => [asc("{t}.expected_start_time")],
        ExpectedStartTimeDesc = "EXPECTED_START_TIME_DESC" => [desc("{t}.expected_start_time")],
        NameAsc = "NAME_ASC" => [asc("{t}.name")],
        NameDesc = "NAME_DESC" => [desc("{t}.name")],
        NextScheduledStartTimeAsc = "NEXT_SCHEDULED_START_TIME_ASC" => [asc("{t}.next_scheduled_start_time")],
        EndTimeDesc = "END_TIME_DESC" => [desc("{t}.end_time")],
    }
}

sort_enum! {
    /// `TaskRunSort` (default `ID_DESC`). `DURATION_*` sort by the estimated run time (a running
    /// run's time so far included), then the expected start time and id, descending.
    TaskRunSort, default IdDesc {
        IdDesc = "ID_DESC" => [desc("{t}.id")],
        ExpectedStartTimeAsc = "EXPECTED_START_TIME_ASC" => [asc("{t}.expected_start_time")],
        ExpectedStartTimeDesc = "EXPECTED_START_TIME_DESC" => [desc("{t}.expected_start_time")],
        NameAsc = "NAME_ASC" => [asc("{t}.name")],
        NameDesc = "NAME_DESC" => [desc("{t}.name")],
        NextScheduledStartTimeAsc = "NEXT_SCHEDULED_START_TIME_ASC" => [asc("{t}.next_scheduled_start_time")],
        EndTimeDesc = "END_TIME_DESC" => [desc("{t}.end_time")],
        DurationDesc = "DURATION_DESC" => [desc("{ert}"), desc("{t}.expected_start_time"), desc("{t}.id")],
        DurationAsc = "DURATION_ASC" => [asc("{ert}"), desc("{t}.expected_start_time"), desc("{t}.id")],
    }
}

sort_enum! {
    /// `DeploymentSort` (default `NAME_ASC`).
    DeploymentSort, default NameAsc {
        CreatedDesc = "CREATED_DESC" => [desc("{t}.created")],
        UpdatedDesc = "UPDATED_DESC" => [desc("{t}.updated")],
        NameAsc = "NAME_ASC" => [asc("{t}.name")],
        NameDesc = "NAME_DESC" => [desc("{t}.name")],
    }
}

sort_enum! {
    /// `LogSort` (default `TIMESTAMP_ASC`).
    LogSort, default TimestampAsc {
        TimestampAsc = "TIMESTAMP_ASC" => [asc("{t}.timestamp")],
        TimestampDesc = "TIMESTAMP_DESC" => [desc("{t}.timestamp")],
    }
}

sort_enum! {
    /// `ArtifactSort` and `ArtifactCollectionSort` (default `ID_DESC`).
    ArtifactSort, default IdDesc {
        CreatedDesc = "CREATED_DESC" => [desc("{t}.created")],
        UpdatedDesc = "UPDATED_DESC" => [desc("{t}.updated")],
        IdDesc = "ID_DESC" => [desc("{t}.id")],
        KeyDesc = "KEY_DESC" => [desc("{t}.key")],
        KeyAsc = "KEY_ASC" => [asc("{t}.key")],
    }
}

sort_enum! {
    /// `VariableSort` (default `NAME_ASC`).
    VariableSort, default NameAsc {
        CreatedDesc = "CREATED_DESC" => [desc("{t}.created")],
        UpdatedDesc = "UPDATED_DESC" => [desc("{t}.updated")],
        NameDesc = "NAME_DESC" => [desc("{t}.name")],
        NameAsc = "NAME_ASC" => [asc("{t}.name")],
    }
}

sort_enum! {
    /// `BlockDocumentSort` (default `NAME_ASC`).
    BlockDocumentSort, default NameAsc {
        NameDesc = "NAME_DESC" => [desc("{t}.name")],
        NameAsc = "NAME_ASC" => [asc("{t}.name")],
        BlockTypeAndNameAsc = "BLOCK_TYPE_AND_NAME_ASC" => [asc("{t}.block_type_name"), asc("{t}.name")],
    }
}

/// The fixed order of an endpoint without a `sort` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixedOrder {
    /// Work pools: by name.
    WorkPools,
    /// A pool's queues: by priority.
    WorkQueues,
    /// A pool's workers: newest heartbeat first.
    Workers,
    /// Block types: by name.
    BlockTypes,
    /// Block schemas: newest first.
    BlockSchemas,
    /// v2 concurrency limits and saved searches: by name.
    ByName,
}

impl FixedOrder {
    pub(crate) fn terms(self) -> &'static [SortTerm] {
        match self {
            FixedOrder::WorkPools | FixedOrder::BlockTypes | FixedOrder::ByName => const { &[asc("{t}.name")] },
            FixedOrder::WorkQueues => const { &[asc("{t}.priority")] },
            FixedOrder::Workers => const { &[desc("{t}.last_heartbeat_time")] },
            FixedOrder::BlockSchemas => const { &[desc("{t}.created")] },
        }
    }
}
