//! PostgreSQL encodings of the portable types: diesel's binary codecs, plus asyncpg's interval
//! split and Python-formatted text for plain `json` columns.

use super::{PInterval, PJson, PJsonb, PTimestamp, PUuid, json_text, timefmt};
use chrono::{DateTime, TimeDelta, Utc};
use diesel::data_types::PgInterval;
use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types;
use std::io::Write;

impl ToSql<PUuid, Pg> for uuid::Uuid {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <uuid::Uuid as ToSql<sql_types::Uuid, Pg>>::to_sql(self, out)
    }
}

impl FromSql<PUuid, Pg> for uuid::Uuid {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <uuid::Uuid as FromSql<sql_types::Uuid, Pg>>::from_sql(value)
    }
}

impl ToSql<PTimestamp, Pg> for DateTime<Utc> {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let truncated = timefmt::truncate_to_micros(*self);
        <DateTime<Utc> as ToSql<sql_types::Timestamptz, Pg>>::to_sql(&truncated, &mut out.reborrow())
    }
}

impl FromSql<PTimestamp, Pg> for DateTime<Utc> {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <DateTime<Utc> as FromSql<sql_types::Timestamptz, Pg>>::from_sql(value)
    }
}

impl ToSql<PInterval, Pg> for TimeDelta {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        let (days, microseconds) = timefmt::split_days_micros(self)
            .ok_or_else(|| format!("interval out of range: {self}"))?;
        let interval = PgInterval { microseconds, days, months: 0 };
        <PgInterval as ToSql<sql_types::Interval, Pg>>::to_sql(&interval, &mut out.reborrow())
    }
}

impl FromSql<PInterval, Pg> for TimeDelta {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let PgInterval { microseconds, days, months } =
            <PgInterval as FromSql<sql_types::Interval, Pg>>::from_sql(value)?;
        // Prefect never writes months; a month read from elsewhere counts 30 days, as in Python.
        let days = i64::from(days) + 30 * i64::from(months);
        TimeDelta::try_days(days)
            .and_then(|d| d.checked_add(&TimeDelta::microseconds(microseconds)))
            .ok_or_else(|| "interval out of range".into())
    }
}

impl ToSql<PJsonb, Pg> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <serde_json::Value as ToSql<sql_types::Jsonb, Pg>>::to_sql(self, out)
    }
}

impl FromSql<PJsonb, Pg> for serde_json::Value {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        <serde_json::Value as FromSql<sql_types::Jsonb, Pg>>::from_sql(value)
    }
}

impl ToSql<PJson, Pg> for serde_json::Value {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        // `json` keeps the text as sent: send Prefect's own text form.
        out.write_all(json_text::to_prefect_json_text(self)?.as_bytes())?;
        Ok(IsNull::No)
    }
}

impl FromSql<PJson, Pg> for serde_json::Value {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        let text = std::str::from_utf8(value.as_bytes())?;
        Ok(json_text::parse_lenient(text)?)
    }
}
