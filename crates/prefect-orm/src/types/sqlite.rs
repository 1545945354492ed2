//! SQLite encodings of the portable types: Prefect's text formats.

use super::{PInterval, PJson, PJsonb, PTimestamp, PUuid, json_text, timefmt};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::deserialize::{self, FromSql};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sqlite::{Sqlite, SqliteType, SqliteValue};

impl ToSql<PUuid, Sqlite> for uuid::Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(self.hyphenated().to_string());
        Ok(IsNull::No)
    }
}

impl FromSql<PUuid, Sqlite> for uuid::Uuid {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        let text = value.read_text();
        uuid::Uuid::parse_str(text).map_err(|e| format!("invalid UUID text {text:?}: {e}").into())
    }
}

impl ToSql<PTimestamp, Sqlite> for DateTime<Utc> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(timefmt::format_timestamp(self));
        Ok(IsNull::No)
    }
}

impl FromSql<PTimestamp, Sqlite> for DateTime<Utc> {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        Ok(timefmt::parse_timestamp(value.read_text())?)
    }
}

impl ToSql<PInterval, Sqlite> for TimeDelta {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        out.set_value(timefmt::format_interval(self)?);
        Ok(IsNull::No)
    }
}

impl FromSql<PInterval, Sqlite> for TimeDelta {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        match value.value_type() {
            // The column default `'0'` lands as the integer 0 (NUMERIC affinity).
            Some(SqliteType::Long) | Some(SqliteType::Integer) | Some(SqliteType::SmallInt) => {
                match value.read_long() {
                    0 => Ok(TimeDelta::zero()),
                    n => Err(timefmt::TimeTextError::Interval(n.to_string()).into()),
                }
            }
            Some(SqliteType::Double) | Some(SqliteType::Float) => {
                let x = value.read_double();
                if x == 0.0 {
                    Ok(TimeDelta::zero())
                } else {
                    Err(timefmt::TimeTextError::Interval(x.to_string()).into())
                }
            }
            _ => Ok(timefmt::parse_interval(value.read_text())?),
        }
    }
}

fn json_to_sql(value: &serde_json::Value, out: &mut Output<'_, '_, Sqlite>) -> serialize::Result {
    out.set_value(json_text::to_prefect_json_text(value)?);
    Ok(IsNull::No)
}

fn json_from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<serde_json::Value> {
    // JSON columns have NUMERIC affinity: a top-level number is stored as INTEGER or REAL.
    match value.value_type() {
        Some(SqliteType::Long) | Some(SqliteType::Integer) | Some(SqliteType::SmallInt) => {
            Ok(serde_json::Value::from(value.read_long()))
        }
        Some(SqliteType::Double) | Some(SqliteType::Float) => {
            let x = value.read_double();
            Ok(serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number))
        }
        _ => {
            let text = value.read_text();
            json_text::parse_lenient(text).map_err(|e| format!("invalid JSON text: {e}").into())
        }
    }
}

impl ToSql<PJsonb, Sqlite> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        json_to_sql(self, out)
    }
}

impl FromSql<PJsonb, Sqlite> for serde_json::Value {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        json_from_sql(value)
    }
}

impl ToSql<PJson, Sqlite> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        json_to_sql(self, out)
    }
}

impl FromSql<PJson, Sqlite> for serde_json::Value {
    fn from_sql(value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        json_from_sql(value)
    }
}
