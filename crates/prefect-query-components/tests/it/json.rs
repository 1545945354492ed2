//! The JSON expressions (`cast_to_json`, `build_json_object`, `json_arr_agg`) inside real
//! diesel queries, and `uses_json_strings`, on both dialects.

use crate::common::{BoxError, migrated, t};
use diesel::prelude::*;
use diesel::sql_types::Integer;
use diesel_async::RunQueryDsl;
use prefect_db_config::{Conn, dispatch};
use prefect_db_test::{Dialect, TestResult, conformance};
use prefect_orm::models::{NewFlow, NewFlowRun};
use prefect_orm::schema::{flow, flow_run};
use prefect_orm::types::Val;
use prefect_query_components::json::{build_json_object, cast_to_json, json_arr_agg, json_pair};
use prefect_query_components::{OnConflict, QueryComponents};
use serde_json::{Value, json};
use uuid::Uuid;

conformance!(
    build_json_object_renders_each_type_alike,
    json_arr_agg_groups_and_nests,
    json_strings_per_dialect,
);

/// Flow "f" (tags `["a", "b"]`, labels `{"env": "prod"}`, created `t(1)`: one microsecond
/// after the origin) with runs "r1" (start `t(0)`) and "r2" (no start); flow "g" without
/// labels and without runs.
async fn seed(conn: &mut Conn<'_>) -> Result<(Uuid, Uuid), BoxError> {
    let qc = QueryComponents::new();
    let mut f = NewFlow::new("f");
    f.tags = Some(json!(["a", "b"]));
    f.labels = Some(json!({"env": "prod"}));
    f.created = t(1);
    let g = NewFlow::new("g");
    let (f_id, g_id) = (f.id, g.id);
    qc.insert(conn, vec![f, g], OnConflict::Fail).await?;
    let mut r1 = NewFlowRun::new("r1", f_id);
    r1.start_time = Some(t(0));
    let r2 = NewFlowRun::new("r2", f_id);
    qc.insert(conn, vec![r1, r2], OnConflict::Fail).await?;
    Ok((f_id, g_id))
}

async fn build_json_object_renders_each_type_alike(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let (f_id, g_id) = seed(conn).await?;
    let rows: Vec<(Val<Uuid>, Value)> = dispatch!(conn, |c| flow::table
        .order_by(flow::name)
        .select((
            flow::id,
            build_json_object((
                json_pair("id", flow::id),
                json_pair("name", flow::name),
                json_pair("tags", flow::tags),
                json_pair("labels", cast_to_json(flow::labels)),
                json_pair("created", flow::created),
                json_pair("is_f", flow::name.eq("f")),
                json_pair("n", 5.into_sql::<Integer>()),
            )),
        ))
        .load(c)
        .await)?;
    // UUIDs are strings, JSON columns nest as JSON (not as strings, as Prefect's SQLite
    // version does), timestamps are UTC with six fraction digits, booleans are booleans (not
    // SQLite's 0/1), a NULL column is null.
    assert_eq!(
        rows,
        [
            (
                Val(f_id),
                json!({"id": f_id.to_string(), "name": "f", "tags": ["a", "b"],
                       "labels": {"env": "prod"}, "created": "2026-01-09T23:59:50.000001Z",
                       "is_f": true, "n": 5})
            ),
            (
                Val(g_id),
                json!({"id": g_id.to_string(), "name": "g", "tags": [], "labels": null,
                       "created": rows[1].1["created"].clone(), "is_f": false, "n": 5})
            ),
        ]
    );
    // g's `created` is "now" at seeding: a string of the same shape.
    let created = rows[1].1["created"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        (
            created.len(),
            created.chars().nth(10),
            created.ends_with('Z')
        ),
        (27, Some('T'), true)
    );
    // The object is usable in WHERE too: a boolean on it, written once.
    let n: i64 = dispatch!(conn, |c| flow::table
        .filter(flow::name.eq("f"))
        .filter(build_json_object(json_pair("name", flow::name)).is_not_null())
        .count()
        .get_result(c)
        .await)?;
    assert_eq!(n, 1);
    Ok(())
}

async fn json_arr_agg_groups_and_nests(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    let (f_id, _) = seed(conn).await?;
    // One row per flow with runs (only f): the run names, as a JSON array.
    let rows: Vec<(Val<Uuid>, Value)> = dispatch!(conn, |c| flow_run::table
        .group_by(flow_run::flow_id)
        .select((flow_run::flow_id, json_arr_agg(flow_run::name)))
        .load(c)
        .await)?;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, Val(f_id));
    let mut names: Vec<Value> = rows[0].1.as_array().cloned().unwrap_or_default();
    names.sort_by_key(|v| v.to_string()); // SQL leaves the order of aggregated rows open
    assert_eq!(names, [json!("r1"), json!("r2")]);

    // Objects nest in the array as objects; r2's NULL start becomes null.
    let agg: Value = dispatch!(conn, |c| flow_run::table
        .select(json_arr_agg(build_json_object((
            json_pair("name", flow_run::name),
            json_pair("start", flow_run::start_time),
        ))))
        .get_result(c)
        .await)?;
    let mut objects = agg.as_array().cloned().unwrap_or_default();
    objects.sort_by_key(|v| v["name"].to_string());
    assert_eq!(
        objects,
        [
            json!({"name": "r1", "start": "2026-01-09T23:59:50.000000Z"}),
            json!({"name": "r2", "start": null}),
        ]
    );
    // JSON columns nest as JSON; no rows give [] on both dialects (Prefect's PostgreSQL
    // version gives NULL).
    let tags: Value = dispatch!(conn, |c| flow::table
        .filter(flow::name.eq("f"))
        .select(json_arr_agg(flow::tags))
        .get_result(c)
        .await)?;
    assert_eq!(tags, json!([["a", "b"]]));
    let none: Value = dispatch!(conn, |c| flow::table
        .filter(flow::name.eq("nope"))
        .select(json_arr_agg(flow::name))
        .get_result(c)
        .await)?;
    assert_eq!(none, json!([]));
    Ok(())
}

async fn json_strings_per_dialect(dialect: Dialect) -> TestResult {
    let (_db, p) = migrated(dialect).await?;
    let mut pc = p.get().await?;
    let conn = &mut pc.conn();
    seed(conn).await?;
    // Prefect: SQLite hands JSON back as strings, PostgreSQL as values.
    assert_eq!(
        QueryComponents::new().uses_json_strings(conn),
        dialect == Dialect::Sqlite
    );
    // cast_to_json keeps a JSON column's value on both dialects.
    let tags: Value = dispatch!(conn, |c| flow::table
        .filter(flow::name.eq("f"))
        .select(cast_to_json(flow::tags))
        .get_result(c)
        .await)?;
    assert_eq!(tags, json!(["a", "b"]));
    Ok(())
}
