//! The generated schema and models work with diesel's query builders on both backends: every
//! query here is only rendered (`debug_query`), no database is needed.
//!
//! What is checked: inserts of `NewFoo` (required columns bound, `None` columns rendered as
//! `DEFAULT` on PostgreSQL and left out on SQLite, Prefect's client-side defaults written), full
//! row inserts (every column), `as_select`, filters on portable columns through `Val`, updates
//! through a changeset (always setting `updated`), `Identifiable` updates, joins through the
//! generated `joinable!`s, and upserts on the ORM configuration's conflict targets.

#![cfg(any(feature = "postgres", feature = "sqlite"))]

use chrono::{TimeDelta, TimeZone, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use prefect_orm::models::{
    Artifact, ArtifactChangeset, Deployment, Event, Flow, FlowChangeset, FlowRun, FlowRunChangeset,
    Log, NewArtifact, NewDeployment, NewEvent, NewFlow, NewFlowRun, NewLog, NewTaskRun,
    NewTaskRunState, NewWorkPool, TaskRun, WorkPool, WorkPoolChangeset, WorkQueue,
};
use prefect_orm::orm_config::{FLOW_UPSERT_COLUMNS, TASK_RUN_UPSERT_COLUMNS};
use prefect_orm::schema::{
    artifact, deployment, events, flow, flow_run, log, task_run, task_run_state, work_pool,
    work_queue,
};
use prefect_orm::types::{StateType, Val, WorkPoolStatus};
use uuid::Uuid;

/// The SQL of a rendered query, without the `-- binds: […]` trailer.
fn sql_of(rendered: &str) -> &str {
    rendered.split(" -- binds: ").next().unwrap_or(rendered)
}

/// The binds trailer of a rendered query.
#[cfg(feature = "postgres")]
fn binds_of(rendered: &str) -> &str {
    rendered.split(" -- binds: ").nth(1).unwrap_or("")
}

/// A query rendered for each compiled-in backend.
///
/// `render!(query)` expands the query expression once per backend: diesel fixes the backend of
/// `Foo::as_select()` by inference, so one query value cannot be rendered for both.
struct Rendered {
    #[cfg(feature = "postgres")]
    pg: String,
    #[cfg(feature = "sqlite")]
    sqlite: String,
}

macro_rules! render {
    ($query:expr) => {
        Rendered {
            #[cfg(feature = "postgres")]
            pg: diesel::debug_query::<diesel::pg::Pg, _>(&$query).to_string(),
            #[cfg(feature = "sqlite")]
            sqlite: diesel::debug_query::<diesel::sqlite::Sqlite, _>(&$query).to_string(),
        }
    };
}

fn at() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5)
        .single()
        .unwrap_or_default()
}

fn flow_row() -> Flow {
    Flow {
        id: Uuid::nil(),
        created: at(),
        updated: at(),
        name: "my-flow".to_owned(),
        tags: serde_json::json!(["a"]),
        labels: None,
    }
}

#[test]
fn new_flow_leaves_defaults_to_the_database() {
    let new = NewFlow::new("my-flow");
    assert_eq!(new.created, new.updated);
    assert_eq!(new.id.get_version_num(), 4);
    assert_eq!(new.tags, None);
    let r = render!(diesel::insert_into(flow::table).values(new.clone()));
    #[cfg(feature = "postgres")]
    {
        assert_eq!(
            sql_of(&r.pg),
            r#"INSERT INTO "flow" ("id", "created", "updated", "name", "tags", "labels") VALUES ($1, $2, $3, $4, DEFAULT, $5)"#
        );
        assert!(binds_of(&r.pg).contains("\"my-flow\""), "{}", r.pg);
    }
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "INSERT INTO `flow` (`id`, `created`, `updated`, `name`, `labels`) VALUES (?, ?, ?, ?, ?)"
    );
    // A value given replaces the default; `&NewFoo` is insertable too.
    let with_tags = NewFlow {
        tags: Some(serde_json::json!(["x"])),
        ..new
    };
    let r = render!(diesel::insert_into(flow::table).values(&with_tags));
    #[cfg(feature = "postgres")]
    assert_eq!(
        sql_of(&r.pg),
        r#"INSERT INTO "flow" ("id", "created", "updated", "name", "tags", "labels") VALUES ($1, $2, $3, $4, $5, $6)"#
    );
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "INSERT INTO `flow` (`id`, `created`, `updated`, `name`, `tags`, `labels`) VALUES (?, ?, ?, ?, ?, ?)"
    );
}

#[test]
fn full_row_insert_writes_every_column() {
    let r = render!(diesel::insert_into(flow::table).values(flow_row()));
    #[cfg(feature = "postgres")]
    {
        assert_eq!(
            sql_of(&r.pg),
            r#"INSERT INTO "flow" ("id", "created", "updated", "name", "tags", "labels") VALUES ($1, $2, $3, $4, $5, $6)"#
        );
        // `labels: None` is bound as NULL, not left to a default.
        assert!(binds_of(&r.pg).ends_with("Val(None)]"), "{}", r.pg);
    }
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "INSERT INTO `flow` (`id`, `created`, `updated`, `name`, `tags`, `labels`) VALUES (?, ?, ?, ?, ?, ?)"
    );
    // A batch of full rows: one multi-row statement on both backends (no DEFAULT values).
    let r = render!(diesel::insert_into(flow::table).values(vec![flow_row(), flow_row()]));
    #[cfg(feature = "postgres")]
    assert!(
        sql_of(&r.pg).ends_with("($1, $2, $3, $4, $5, $6), ($7, $8, $9, $10, $11, $12)"),
        "{}",
        r.pg
    );
    #[cfg(feature = "sqlite")]
    assert!(
        sql_of(&r.sqlite).ends_with("(?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?)"),
        "{}",
        r.sqlite
    );
}

#[test]
fn flow_run_always_writes_total_run_time() {
    let new = NewFlowRun::new("crimson-fox", Uuid::new_v4());
    assert_eq!(new.total_run_time, TimeDelta::zero());
    assert_eq!(new.run_count, None);
    let r = render!(diesel::insert_into(flow_run::table).values(new.clone()));
    #[cfg(feature = "postgres")]
    {
        let sql = sql_of(&r.pg);
        assert!(
            sql.starts_with(
                r#"INSERT INTO "flow_run" ("id", "created", "updated", "name", "state_type", "run_count", "expected_start_time""#
            ),
            "{sql}"
        );
        assert!(sql.contains(r#""total_run_time""#), "{sql}");
        // id, created, updated, name, state_type, then run_count left to the database.
        assert!(
            sql.contains("VALUES ($1, $2, $3, $4, $5, DEFAULT, $6"),
            "{sql}"
        );
        // run_count, parameters, context, empirical_policy, tags, auto_scheduled, job_variables.
        assert_eq!(sql.matches("DEFAULT").count(), 7, "{sql}");
    }
    #[cfg(feature = "sqlite")]
    {
        let sql = sql_of(&r.sqlite);
        assert!(sql.contains("`total_run_time`"), "{sql}");
        for omitted in [
            "run_count",
            "parameters",
            "context",
            "empirical_policy",
            "tags",
            "auto_scheduled",
            "job_variables",
        ] {
            assert!(!sql.contains(&format!("`{omitted}`")), "{omitted} in {sql}");
        }
        assert!(!sql.contains("DEFAULT"), "{sql}");
    }
}

#[test]
fn deployment_applies_prefect_python_defaults() {
    let new = NewDeployment::new("my-deployment", Uuid::new_v4());
    assert_eq!(new.enforce_parameter_schema, Some(true));
    assert_eq!(new.parameter_openapi_schema, Some(serde_json::json!({})));
    assert_eq!(new.pull_steps, Some(serde_json::json!([])));
    assert_eq!(new.paused, None);
    let r = render!(diesel::insert_into(deployment::table).values(new.clone()));
    #[cfg(feature = "sqlite")]
    {
        let sql = sql_of(&r.sqlite);
        for written in [
            "enforce_parameter_schema",
            "parameter_openapi_schema",
            "pull_steps",
            "flow_id",
            "name",
        ] {
            assert!(
                sql.contains(&format!("`{written}`")),
                "{written} missing in {sql}"
            );
        }
        for omitted in ["paused", "status", "tags", "parameters", "infra_overrides"] {
            assert!(!sql.contains(&format!("`{omitted}`")), "{omitted} in {sql}");
        }
    }
    // tags, parameters, infra_overrides, paused, status keep their database defaults.
    #[cfg(feature = "postgres")]
    assert_eq!(sql_of(&r.pg).matches("DEFAULT").count(), 5, "{}", r.pg);
}

#[test]
fn select_and_filter_through_val() {
    let id = Uuid::nil();
    let r = render!(
        flow::table
            .select(Flow::as_select())
            .filter(flow::id.eq(Val(id)))
    );
    #[cfg(feature = "postgres")]
    {
        assert_eq!(
            sql_of(&r.pg),
            r#"SELECT "flow"."id", "flow"."created", "flow"."updated", "flow"."name", "flow"."tags", "flow"."labels" FROM "flow" WHERE ("flow"."id" = $1)"#
        );
        assert_eq!(
            binds_of(&r.pg),
            "[Val(00000000-0000-0000-0000-000000000000)]"
        );
    }
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "SELECT `flow`.`id`, `flow`.`created`, `flow`.`updated`, `flow`.`name`, `flow`.`tags`, `flow`.`labels` FROM `flow` WHERE (`flow`.`id` = ?)"
    );
    // Portable timestamps (a nullable column: `Val(Some(_))`), intervals and enums in filters.
    let r = render!(
        flow_run::table
            .select(FlowRun::as_select())
            .filter(flow_run::expected_start_time.ge(Val(Some(at()))))
            .filter(flow_run::total_run_time.gt(Val(TimeDelta::seconds(1))))
            .filter(flow_run::state_type.eq(StateType::Scheduled))
            .order(flow_run::expected_start_time.desc())
            .limit(10)
    );
    #[cfg(feature = "postgres")]
    assert!(
        sql_of(&r.pg).ends_with(
            r#"WHERE ((("flow_run"."expected_start_time" >= $1) AND ("flow_run"."total_run_time" > $2)) AND ("flow_run"."state_type" = $3)) ORDER BY "flow_run"."expected_start_time" DESC LIMIT $4"#
        ),
        "{}",
        r.pg
    );
    #[cfg(feature = "sqlite")]
    assert!(
        sql_of(&r.sqlite).contains("(`flow_run`.`state_type` = ?)"),
        "{}",
        r.sqlite
    );
    // The `type` column is `type_` in Rust and `type` in SQL.
    let r = render!(
        artifact::table
            .select(Artifact::as_select())
            .filter(artifact::type_.eq("markdown"))
    );
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).ends_with(r#"FROM "artifact" WHERE ("artifact"."type" = $1)"#));
    #[cfg(feature = "sqlite")]
    assert!(sql_of(&r.sqlite).ends_with("FROM `artifact` WHERE (`artifact`.`type` = ?)"));
}

#[test]
fn changesets_always_set_updated() {
    let id = Uuid::nil();
    let changes = FlowChangeset {
        name: Some("renamed".to_owned()),
        labels: Some(None),
        ..FlowChangeset::new()
    };
    let r = render!(diesel::update(flow::table.filter(flow::id.eq(Val(id)))).set(changes.clone()));
    #[cfg(feature = "postgres")]
    {
        assert_eq!(
            sql_of(&r.pg),
            r#"UPDATE "flow" SET "updated" = $1, "name" = $2, "labels" = $3 WHERE ("flow"."id" = $4)"#
        );
        assert!(
            binds_of(&r.pg).contains("\"renamed\", Val(None)"),
            "{}",
            r.pg
        );
    }
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "UPDATE `flow` SET `updated` = ?, `name` = ?, `labels` = ? WHERE (`flow`.`id` = ?)"
    );
    // Through `Identifiable` (by `Val<Uuid>`) and a borrowed changeset.
    let row = flow_row();
    let empty = FlowChangeset::new();
    let r = render!(diesel::update(&row).set(&empty));
    #[cfg(feature = "postgres")]
    assert_eq!(
        sql_of(&r.pg),
        r#"UPDATE "flow" SET "updated" = $1 WHERE ("flow"."id" = $2)"#
    );
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "UPDATE `flow` SET `updated` = ? WHERE (`flow`.`id` = ?)"
    );
    // Portable and enum columns: a state transition of a flow run.
    let changes = FlowRunChangeset {
        state_type: Some(Some(StateType::Running)),
        state_timestamp: Some(Some(at())),
        total_run_time: Some(TimeDelta::milliseconds(611)),
        run_count: Some(1),
        ..FlowRunChangeset::new()
    };
    let r = render!(diesel::update(flow_run::table.find(Val(id))).set(changes.clone()));
    #[cfg(feature = "postgres")]
    assert_eq!(
        sql_of(&r.pg),
        r#"UPDATE "flow_run" SET "updated" = $1, "state_type" = $2, "run_count" = $3, "total_run_time" = $4, "state_timestamp" = $5 WHERE ("flow_run"."id" = $6)"#
    );
    #[cfg(feature = "sqlite")]
    assert!(
        sql_of(&r.sqlite).starts_with("UPDATE `flow_run` SET `updated` = ?, `state_type` = ?"),
        "{}",
        r.sqlite
    );
    let changes = WorkPoolChangeset {
        status: Some(WorkPoolStatus::Ready),
        ..WorkPoolChangeset::default()
    };
    let r = render!(diesel::update(work_pool::table.find(Val(id))).set(changes.clone()));
    #[cfg(feature = "postgres")]
    assert_eq!(
        sql_of(&r.pg),
        r#"UPDATE "work_pool" SET "updated" = $1, "status" = $2 WHERE ("work_pool"."id" = $3)"#
    );
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "UPDATE `work_pool` SET `updated` = ?, `status` = ? WHERE (`work_pool`.`id` = ?)"
    );
    let changes = ArtifactChangeset {
        data: Some(Some(serde_json::json!("# hi"))),
        ..ArtifactChangeset::new()
    };
    let r = render!(diesel::update(artifact::table).set(changes.clone()));
    #[cfg(feature = "postgres")]
    assert_eq!(
        sql_of(&r.pg),
        r#"UPDATE "artifact" SET "updated" = $1, "data" = $2"#
    );
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "UPDATE `artifact` SET `updated` = ?, `data` = ?"
    );
}

#[test]
fn joins_follow_the_foreign_keys() {
    let r = render!(
        flow_run::table
            .inner_join(flow::table)
            .select((FlowRun::as_select(), Flow::as_select()))
            .filter(flow::name.eq("my-flow"))
    );
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).contains(
        r#"FROM ("flow_run" INNER JOIN "flow" ON ("flow_run"."flow_id" = "flow"."id"))"#
    ));
    #[cfg(feature = "sqlite")]
    assert!(
        sql_of(&r.sqlite).contains(
            "FROM (`flow_run` INNER JOIN `flow` ON (`flow_run`.`flow_id` = `flow`.`id`))"
        )
    );
    // A nullable foreign key (task_run.flow_run_id), joined from either side.
    let r = render!(
        task_run::table
            .inner_join(flow_run::table)
            .select((TaskRun::as_select(), FlowRun::as_select()))
    );
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).contains(
        r#"FROM ("task_run" INNER JOIN "flow_run" ON ("task_run"."flow_run_id" = "flow_run"."id"))"#
    ));
    #[cfg(feature = "sqlite")]
    assert!(sql_of(&r.sqlite).contains("INNER JOIN `flow_run`"));
    let r = render!(
        flow_run::table
            .left_join(task_run::table)
            .select(flow_run::id)
    );
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).contains(
        r#"FROM ("flow_run" LEFT OUTER JOIN "task_run" ON ("task_run"."flow_run_id" = "flow_run"."id"))"#
    ));
    #[cfg(feature = "sqlite")]
    assert!(sql_of(&r.sqlite).contains(
        "FROM (`flow_run` LEFT OUTER JOIN `task_run` ON (`task_run`.`flow_run_id` = `flow_run`.`id`))"
    ));
    // work_queue -> work_pool; deployment -> flow and -> work_queue (three tables).
    let r = render!(
        work_queue::table
            .inner_join(work_pool::table)
            .select((WorkQueue::as_select(), WorkPool::as_select()))
    );
    #[cfg(feature = "postgres")]
    assert!(
        sql_of(&r.pg).contains(
            r#"INNER JOIN "work_pool" ON ("work_queue"."work_pool_id" = "work_pool"."id")"#
        )
    );
    #[cfg(feature = "sqlite")]
    assert!(sql_of(&r.sqlite).contains("INNER JOIN `work_pool`"));
    let r = render!(
        deployment::table
            .inner_join(flow::table)
            .left_join(work_queue::table)
            .select((
                Deployment::as_select(),
                Flow::as_select(),
                Option::<WorkQueue>::as_select()
            ))
    );
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).contains(
        r#"LEFT OUTER JOIN "work_queue" ON ("deployment"."work_queue_id" = "work_queue"."id")"#
    ));
    #[cfg(feature = "sqlite")]
    assert!(sql_of(&r.sqlite).contains("LEFT OUTER JOIN `work_queue`"));
    // A key without `joinable!` (here task_run.state_id, which has no FK) takes an explicit ON.
    let r = render!(
        task_run_state::table
            .inner_join(task_run::table.on(task_run::state_id.eq(task_run_state::id.nullable())))
            .select(task_run_state::id)
    );
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).contains(r#"ON ("task_run"."state_id" = "task_run_state"."id")"#));
    #[cfg(feature = "sqlite")]
    assert!(sql_of(&r.sqlite).contains("ON (`task_run`.`state_id` = `task_run_state`.`id`)"));
}

#[test]
fn upserts_on_the_orm_configuration_targets() {
    let r = render!(
        diesel::insert_into(flow::table)
            .values(NewFlow::new("my-flow"))
            .on_conflict(FLOW_UPSERT_COLUMNS)
            .do_nothing()
    );
    #[cfg(feature = "postgres")]
    assert!(
        sql_of(&r.pg).ends_with(r#"ON CONFLICT ("name") DO NOTHING"#),
        "{}",
        r.pg
    );
    #[cfg(feature = "sqlite")]
    assert!(
        sql_of(&r.sqlite).ends_with("ON CONFLICT (`name`) DO NOTHING"),
        "{}",
        r.sqlite
    );

    let mut new = NewTaskRun::new("task-1", "my_task-abc", "0");
    new.flow_run_id = Some(Uuid::new_v4());
    let r = render!(
        diesel::insert_into(task_run::table)
            .values(&new)
            .on_conflict(TASK_RUN_UPSERT_COLUMNS)
            .do_update()
            .set((
                task_run::updated.eq(excluded(task_run::updated)),
                task_run::state_type.eq(excluded(task_run::state_type)),
            ))
            .returning(TaskRun::as_returning())
    );
    #[cfg(feature = "postgres")]
    assert!(
        sql_of(&r.pg).contains(
            r#"ON CONFLICT ("flow_run_id", "task_key", "dynamic_key") DO UPDATE SET "updated" = excluded."updated", "state_type" = excluded."state_type" RETURNING "task_run"."id""#
        ),
        "{}",
        r.pg
    );
    #[cfg(feature = "sqlite")]
    {
        let sql = sql_of(&r.sqlite);
        assert!(
            sql.contains(
                "ON CONFLICT (`flow_run_id`, `task_key`, `dynamic_key`) DO UPDATE SET `updated` = excluded.`updated`"
            ),
            "{sql}"
        );
        assert!(sql.contains("`total_run_time`"), "{sql}");
    }
}

#[test]
fn representative_inserts_render() {
    // log: every NOT NULL column required, nullable ones bound; a batch by reference is one
    // multi-row statement.
    let logs = vec![
        NewLog::new("prefect.flow_runs", 20, "hello", at()),
        NewLog::new("prefect.flow_runs", 40, "boom", at()),
    ];
    let r = render!(diesel::insert_into(log::table).values(&logs));
    #[cfg(feature = "postgres")]
    assert_eq!(
        sql_of(&r.pg),
        r#"INSERT INTO "log" ("id", "created", "updated", "name", "level", "flow_run_id", "task_run_id", "message", "timestamp") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9), ($10, $11, $12, $13, $14, $15, $16, $17, $18)"#
    );
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "INSERT INTO `log` (`id`, `created`, `updated`, `name`, `level`, `flow_run_id`, `task_run_id`, `message`, `timestamp`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );
    let r = render!(
        log::table
            .select(Log::as_select())
            .filter(log::flow_run_id.eq(Val(Some(Uuid::nil()))))
    );
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).ends_with(r#"WHERE ("log"."flow_run_id" = $1)"#));
    #[cfg(feature = "sqlite")]
    assert!(sql_of(&r.sqlite).ends_with("WHERE (`log`.`flow_run_id` = ?)"));

    // events: the ORM class name `Event` for the table `events`.
    let new = NewEvent::new(
        at(),
        "prefect.flow-run.Completed",
        "prefect.flow-run.abc",
        serde_json::json!({"prefect.resource.id": "prefect.flow-run.abc"}),
        serde_json::json!({}),
        at(),
        at(),
    );
    let r = render!(
        diesel::insert_into(events::table)
            .values(new.clone())
            .returning(Event::as_returning())
    );
    #[cfg(feature = "postgres")]
    {
        let sql = sql_of(&r.pg);
        // Physical order: on PostgreSQL `events` has id/created/updated last.
        assert!(
            sql.starts_with(
                r#"INSERT INTO "events" ("occurred", "event", "resource_id", "resource", "related_resource_ids", "related", "payload", "received", "recorded", "follows", "id", "created", "updated") VALUES ($1, $2, $3, $4, DEFAULT, DEFAULT, $5, $6"#
            ),
            "{sql}"
        );
        assert!(
            sql.contains(r#"RETURNING "events"."occurred", "events"."event""#),
            "{sql}"
        );
    }
    #[cfg(feature = "sqlite")]
    assert!(
        sql_of(&r.sqlite).starts_with(
            "INSERT INTO `events` (`occurred`, `event`, `resource_id`, `resource`, `payload`, `received`, `recorded`, `follows`, `id`, `created`, `updated`) VALUES"
        ),
        "{}",
        r.sqlite
    );

    // work_pool: the enum status left to the database, the keyword column `type`.
    let r = render!(
        diesel::insert_into(work_pool::table).values(NewWorkPool::new("default", "process"))
    );
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).starts_with(
        r#"INSERT INTO "work_pool" ("id", "created", "updated", "name", "description", "type", "base_job_template""#
    ));
    #[cfg(feature = "sqlite")]
    {
        let sql = sql_of(&r.sqlite);
        assert!(sql.contains("`type`"), "{sql}");
        assert!(!sql.contains("`status`"), "{sql}");
    }

    // artifact: no required column (hence `Default`), plain `json` columns.
    let new = NewArtifact {
        data: Some(serde_json::json!("# hi")),
        ..NewArtifact::default()
    };
    let r = render!(diesel::insert_into(artifact::table).values(new.clone()));
    #[cfg(feature = "postgres")]
    assert_eq!(
        sql_of(&r.pg),
        r#"INSERT INTO "artifact" ("id", "created", "updated", "key", "type", "data", "metadata_", "task_run_id", "flow_run_id", "description") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"#
    );
    #[cfg(feature = "sqlite")]
    assert_eq!(
        sql_of(&r.sqlite),
        "INSERT INTO `artifact` (`id`, `created`, `updated`, `key`, `type`, `data`, `metadata_`, `task_run_id`, `flow_run_id`, `description`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    );

    // task_run_state: Prefect's client-side timestamp is written.
    let new = NewTaskRunState::new(StateType::Completed, "Completed", Uuid::new_v4());
    assert_eq!(new.timestamp, Some(new.created));
    let r = render!(diesel::insert_into(task_run_state::table).values(new.clone()));
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).contains(r#""timestamp""#));
    #[cfg(feature = "sqlite")]
    assert!(sql_of(&r.sqlite).contains("`timestamp`"));

    // task_run: total_run_time is written.
    let r = render!(diesel::insert_into(task_run::table).values(NewTaskRun::new("t", "k", "0")));
    #[cfg(feature = "postgres")]
    assert!(sql_of(&r.pg).contains(r#""total_run_time""#));
    #[cfg(feature = "sqlite")]
    assert!(sql_of(&r.sqlite).contains("`total_run_time`"));
}
