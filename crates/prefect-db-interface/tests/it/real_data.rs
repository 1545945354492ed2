//! Every row of a real Prefect 3.9.1 database (the fixtures written by a real Prefect server,
//! carried in `tests/fixtures/`) read through the typed models on both dialects, written back
//! through them into a database created by our migrations, and compared value by value with
//! what the databases hold, read by plain SQL. Plus: undecodable values give typed errors.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use prefect_db_interface::config::{Conn, DbPool, Dialect};
use prefect_db_interface::migrate::{self, UpgradeTarget};
use prefect_db_interface::tables::{PrefectTable, RawValue, TableError, read_raw_column};
use prefect_db_test::{TestDatabase, TestResult, conformance};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn fixture_db(dialect: Dialect) -> Result<TestDatabase, BoxError> {
    Ok(TestDatabase::prefect_fixture(dialect).await?)
}

async fn migrated_db(dialect: Dialect) -> Result<TestDatabase, BoxError> {
    Ok(TestDatabase::from_template(dialect, "migrated-latest", |config| async move {
        migrate::upgrade(&config, UpgradeTarget::Latest).await.map(|_| ())
    })
    .await?)
}

/// Declared type (SQLite) or type (PostgreSQL) of every column, to know the JSON ones.
async fn is_json_column(conn: &mut Conn<'_>, table: &str, column: &str) -> Result<bool, BoxError> {
    #[derive(diesel::QueryableByName)]
    struct Ty {
        #[diesel(sql_type = diesel::sql_types::Text)]
        ty: String,
    }
    let sql = match conn {
        Conn::Sqlite(_) => format!("SELECT type AS ty FROM pragma_table_info('{table}') WHERE name = '{column}'"),
        Conn::Postgres(_) => format!(
            "SELECT data_type AS ty FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' AND column_name = '{column}'"
        ),
    };
    let rows: Vec<Ty> = prefect_db_interface::config::dispatch!(conn, |c| {
        diesel_async::RunQueryDsl::load(diesel::sql_query(&sql), c).await
    })?;
    Ok(rows.first().is_some_and(|t| t.ty.eq_ignore_ascii_case("json") || t.ty.eq_ignore_ascii_case("jsonb")))
}

/// The columns of a table as the database lists them, in physical order.
async fn db_columns(conn: &mut Conn<'_>, table: &str) -> Result<Vec<String>, BoxError> {
    #[derive(diesel::QueryableByName)]
    struct Col {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let sql = match conn {
        Conn::Sqlite(_) => format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"),
        Conn::Postgres(_) => format!(
            "SELECT column_name::text AS name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{table}' ORDER BY ordinal_position"
        ),
    };
    let rows: Vec<Col> = prefect_db_interface::config::dispatch!(conn, |c| {
        diesel_async::RunQueryDsl::load(diesel::sql_query(&sql), c).await
    })?;
    Ok(rows.into_iter().map(|c| c.name).collect())
}

fn json_of(v: &RawValue) -> Option<serde_json::Value> {
    v.text.as_deref().map(|t| prefect_db_interface::orm::types::json_text::parse_lenient(t).unwrap_or(serde_json::Value::String(format!("<invalid JSON {t}>"))))
}

/// Reads every table of the fixture through the typed models (zero decode errors), writes the
/// rows back through the models into a database created by our migrations, and compares every
/// column of every row, read by plain SQL, between the two.
async fn every_row_reads_and_writes_back_identically(dialect: Dialect) -> TestResult {
    let source = fixture_db(dialect).await?;
    let target = migrated_db(dialect).await?;
    let src_pool = DbPool::build(&source.config())?;
    let dst_pool = DbPool::build(&target.config())?;
    let mut src_obj = src_pool.get().await?;
    let mut dst_obj = dst_pool.get().await?;
    let mut src = src_obj.conn();
    let mut dst = dst_obj.conn();

    let mut total = 0usize;
    let mut deferred = Vec::new();
    let mut nonempty = 0;
    for &table in PrefectTable::ALL {
        // Small pages, so that paging itself is exercised on the real data.
        let mut rows = table.read_all(&mut src, 7).await?;
        let count = table.count(&mut src).await?;
        assert_eq!(rows.len() as i64, count, "{table}: every row read");
        total += rows.len();
        nonempty += usize::from(!rows.is_empty());
        let later = rows.take_deferred();
        deferred.push(later);
        for chunk in rows.chunks(50) {
            chunk.insert(&mut dst).await?;
        }
    }
    for rows in deferred {
        rows.apply_deferred(&mut dst).await?;
    }
    eprintln!("{dialect:?}: {} tables ({nonempty} with rows), {total} rows read through the typed models", PrefectTable::ALL.len());

    for &table in PrefectTable::ALL {
        let mut listed = db_columns(&mut src, table.name()).await?;
        let mut ours: Vec<String> = table.columns().iter().map(|c| (*c).to_owned()).collect();
        listed.sort();
        ours.sort();
        assert_eq!(listed, ours, "{table}: every column of the fixture is compared");
    }

    let mut values = 0usize;
    let mut zero_intervals = 0usize;
    for &table in PrefectTable::ALL {
        for &column in table.columns() {
            let a = read_raw_column(&mut src, table, column).await?;
            let b = read_raw_column(&mut dst, table, column).await?;
            assert_eq!(a.len(), b.len(), "{table}.{column}: row count");
            let json = is_json_column(&mut src, table.name(), column).await?;
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.id, y.id, "{table}.{column}: same ids in the same order");
                values += 1;
                if x == y {
                    continue;
                }
                if json {
                    // JSON is compared by value: PostgreSQL's plain `json` keeps the text as
                    // sent, and our text is Python's `json.dumps` format, not necessarily the
                    // writer's spacing; on SQLite both are parsed as Prefect parses them.
                    assert_eq!(json_of(x), json_of(y), "{table}.{column} of {}: JSON value", x.id);
                    continue;
                }
                if dialect == Dialect::Sqlite
                    && column == "total_run_time"
                    && x.storage == "integer"
                    && x.text.as_deref() == Some("0")
                {
                    // Prefect's quirk: the column default `'0'` lands as the INTEGER 0. We read it
                    // as a zero duration and write it back as Prefect itself writes
                    // `timedelta(0)`: the text `1970-01-01 00:00:00.000000`.
                    assert_eq!(y.text.as_deref(), Some("1970-01-01 00:00:00.000000"));
                    zero_intervals += 1;
                    continue;
                }
                panic!("{table}.{column} of {}: fixture {x:?} != written back {y:?}", x.id);
            }
        }
    }
    eprintln!("{dialect:?}: {values} column values compared by plain SQL ({zero_intervals} integer-0 intervals)");
    Ok(())
}

/// Integer `0` in an SQLite interval column reads as zero and is written back in Prefect's text
/// form; PostgreSQL has no such case. JSON `null` in a plain `json` column reads as
/// `Some(Value::Null)` (not SQL NULL) and is written back as JSON `null` on both dialects.
async fn prefect_quirks_are_kept(dialect: Dialect) -> TestResult {
    use prefect_db_interface::tables::RowBatch;
    let db = fixture_db(dialect).await?;
    let pool = DbPool::build(&db.config())?;
    let mut obj = pool.get().await?;
    let mut conn = obj.conn();
    if dialect == Dialect::Sqlite {
        conn.batch_execute("UPDATE task_run SET total_run_time = 0 WHERE id = (SELECT id FROM task_run ORDER BY id LIMIT 1)").await?;
    }
    conn.batch_execute("UPDATE artifact SET metadata_ = 'null' WHERE id = (SELECT id FROM artifact ORDER BY id LIMIT 1)").await?;
    let RowBatch::TaskRun(runs) = PrefectTable::TaskRun.read_page(&mut conn, None, 1).await? else { unreachable!() };
    if dialect == Dialect::Sqlite {
        assert_eq!(runs[0].total_run_time, chrono::TimeDelta::zero());
    }
    if dialect == Dialect::Sqlite {
        // Written back, the integer 0 becomes Prefect's own text for `timedelta(0)`.
        let copy_target = TestDatabase::empty(Dialect::Sqlite).await?;
        let options = prefect_db_interface::copy::CopyOptions::default();
        prefect_db_interface::copy::copy_database(&db.config(), &copy_target.config(), &options, &mut |_| Ok(())).await?;
        let tpool = DbPool::build(&copy_target.config())?;
        let mut tobj = tpool.get().await?;
        let raw = read_raw_column(&mut tobj.conn(), PrefectTable::TaskRun, "total_run_time").await?;
        let written = raw.iter().find(|r| r.id == runs[0].id.to_string()).expect("copied");
        assert_eq!(written.text.as_deref(), Some("1970-01-01 00:00:00.000000"));
        assert_eq!(written.storage, "text");
    }
    let RowBatch::Artifact(arts) = PrefectTable::Artifact.read_page(&mut conn, None, 1).await? else { unreachable!() };
    assert_eq!(arts[0].metadata_, Some(serde_json::Value::Null), "JSON null is a value, not SQL NULL");

    let target = migrated_db(dialect).await?;
    let tpool = DbPool::build(&target.config())?;
    let mut tobj = tpool.get().await?;
    let mut tconn = tobj.conn();
    RowBatch::Artifact(arts.clone()).insert(&mut tconn).await?;
    let raw = read_raw_column(&mut tconn, PrefectTable::Artifact, "metadata_").await?;
    assert_eq!(raw[0].text.as_deref(), Some("null"));
    assert_ne!(raw[0].storage, "null", "stored as JSON null, not SQL NULL");
    Ok(())
}

async fn corrupted(sql: &str) -> Result<TestDatabase, BoxError> {
    let db = fixture_db(Dialect::Sqlite).await?;
    let pool = DbPool::build(&db.config())?;
    let mut obj = pool.get().await?;
    obj.conn().batch_execute(sql).await?;
    Ok(db)
}

async fn expect_decode_error(db: &TestDatabase, table: PrefectTable, column: &str) -> Result<String, BoxError> {
    let pool = DbPool::build(&db.config())?;
    let mut obj = pool.get().await?;
    let mut conn = obj.conn();
    match table.read_all(&mut conn, 5).await {
        Err(TableError::Decode { table: t, column: c, id, message }) => {
            assert_eq!(t, table.name());
            assert_eq!(c, column, "{message}");
            let err = TableError::Decode { table: t, column: c, id: id.clone(), message };
            assert!(err.to_string().contains(&id), "{err}");
            eprintln!("{err}");
            Ok(id)
        }
        Err(other) => Err(format!("expected a decode error on {table}.{column}, got {other}").into()),
        Ok(rows) => Err(format!("expected a decode error on {table}.{column}, read {} rows", rows.len()).into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_timestamp_text_names_table_column_and_row() -> TestResult {
    let db = corrupted(
        "UPDATE flow_run SET start_time = '2024-13-45 99:00:00.000000' WHERE id = (SELECT id FROM flow_run ORDER BY id LIMIT 1 OFFSET 12)",
    )
    .await?;
    let id = expect_decode_error(&db, PrefectTable::FlowRun, "start_time").await?;
    let raw = {
        let pool = DbPool::build(&db.config())?;
        let mut obj = pool.get().await?;
        read_raw_column(&mut obj.conn(), PrefectTable::FlowRun, "id").await?
    };
    assert_eq!(raw[12].id, id, "the failing row is the one corrupted (on page 3 of 5-row pages)");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_json_names_table_column_and_row() -> TestResult {
    let db = corrupted("UPDATE flow SET tags = '[\"a\", ' WHERE id = (SELECT max(id) FROM flow)").await?;
    expect_decode_error(&db, PrefectTable::Flow, "tags").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_enum_label_names_table_column_and_row() -> TestResult {
    let db = corrupted("UPDATE task_run_state SET type = 'EXPLODED' WHERE id = (SELECT min(id) FROM task_run_state)").await?;
    expect_decode_error(&db, PrefectTable::TaskRunState, "type").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_uuid_and_interval_text_name_their_column() -> TestResult {
    let db = corrupted("UPDATE task_run SET total_run_time = 'soon' WHERE id = (SELECT max(id) FROM task_run)").await?;
    expect_decode_error(&db, PrefectTable::TaskRun, "total_run_time").await?;
    let db = corrupted("UPDATE log SET flow_run_id = 'not-a-uuid' WHERE id = (SELECT min(id) FROM log)").await?;
    expect_decode_error(&db, PrefectTable::Log, "flow_run_id").await?;
    Ok(())
}

conformance!(every_row_reads_and_writes_back_identically, prefect_quirks_are_kept);
