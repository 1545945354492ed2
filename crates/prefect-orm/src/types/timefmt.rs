//! Prefect's text formats for timestamps and intervals, as stored in SQLite files.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Timelike, Utc};

/// The fixed-width format Prefect writes: `YYYY-MM-DD HH:MM:SS.ffffff`, naive UTC.
pub const SQLITE_TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S%.6f";

/// What a stored text value failed to be.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TimeTextError {
    /// The text is not a timestamp in any format Prefect reads.
    #[error("invalid timestamp text {0:?}: expected `YYYY-MM-DD HH:MM:SS.ffffff`")]
    Timestamp(String),
    /// The stored value is not an interval Prefect could have written.
    #[error("invalid interval value {0:?}: expected an epoch-offset timestamp or the integer 0")]
    Interval(String),
    /// The value is outside the representable range.
    #[error("timestamp or interval out of range: {0}")]
    OutOfRange(String),
}

/// Drops everything below the microsecond (a floor: a point in time never moves forward).
pub fn truncate_to_micros(value: DateTime<Utc>) -> DateTime<Utc> {
    let nanos = value.nanosecond();
    let floored = nanos - nanos % 1_000;
    value.with_nanosecond(floored).unwrap_or(value)
}

/// Writes a timestamp the way Prefect stores it in SQLite.
pub fn format_timestamp(value: &DateTime<Utc>) -> String {
    truncate_to_micros(*value).naive_utc().format(SQLITE_TIMESTAMP_FORMAT).to_string()
}

/// Reads a SQLite timestamp leniently, as Prefect does: space or `T` separator, 0 to 9 fraction
/// digits, an optional UTC offset or `Z` (naive values are UTC).
pub fn parse_timestamp(text: &str) -> Result<DateTime<Utc>, TimeTextError> {
    let trimmed = text.trim();
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(trimmed, fmt) {
            return Ok(naive.and_utc());
        }
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(aware) = DateTime::parse_from_str(trimmed, fmt) {
            return Ok(aware.with_timezone(&Utc));
        }
    }
    if let Some(stripped) = trimmed.strip_suffix('Z').or_else(|| trimmed.strip_suffix('z')) {
        for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
            if let Ok(naive) = NaiveDateTime::parse_from_str(stripped, fmt) {
                return Ok(naive.and_utc());
            }
        }
    }
    Err(TimeTextError::Timestamp(text.to_owned()))
}

/// The epoch SQLite intervals are offset from.
pub fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

/// Writes an interval the way Prefect stores it in SQLite: the epoch plus the duration.
pub fn format_interval(value: &TimeDelta) -> Result<String, TimeTextError> {
    let micros = value
        .num_microseconds()
        .ok_or_else(|| TimeTextError::OutOfRange(format!("{value}")))?;
    let at = epoch()
        .checked_add_signed(TimeDelta::microseconds(micros))
        .ok_or_else(|| TimeTextError::OutOfRange(format!("{value}")))?;
    Ok(format_timestamp(&at))
}

/// Reads a SQLite interval: an epoch-offset timestamp.
pub fn parse_interval(text: &str) -> Result<TimeDelta, TimeTextError> {
    let trimmed = text.trim();
    if trimmed == "0" {
        return Ok(TimeDelta::zero());
    }
    let at = parse_timestamp(trimmed).map_err(|_| TimeTextError::Interval(text.to_owned()))?;
    Ok(at.signed_duration_since(epoch()))
}

/// Splits a duration the way Python's `timedelta` (and so asyncpg) does before sending it to
/// PostgreSQL: whole days (floored, possibly negative) and the non-negative microseconds left.
pub fn split_days_micros(value: &TimeDelta) -> Option<(i32, i64)> {
    const DAY_MICROS: i64 = 86_400_000_000;
    let total = value.num_microseconds()?;
    let days = total.div_euclid(DAY_MICROS);
    let rest = total.rem_euclid(DAY_MICROS);
    Some((i32::try_from(days).ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_have_six_digits_and_parse_back() {
        let t = Utc.with_ymd_and_hms(2024, 2, 29, 23, 59, 59).single().map(|t| t + TimeDelta::microseconds(999_999));
        let t = t.unwrap_or_default();
        assert_eq!(format_timestamp(&t), "2024-02-29 23:59:59.999999");
        assert_eq!(parse_timestamp("2024-02-29 23:59:59.999999"), Ok(t));
        let whole = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).single().unwrap_or_default();
        assert_eq!(format_timestamp(&whole), "2024-01-01 00:00:00.000000");
        assert_eq!(parse_timestamp("2024-01-01 00:00:00"), Ok(whole));
        assert_eq!(parse_timestamp("2024-01-01T00:00:00Z"), Ok(whole));
        assert_eq!(parse_timestamp("2024-01-01T09:00:00+09:00"), Ok(whole));
        assert_eq!(parse_timestamp("2024-01-01 00:00:00.000"), Ok(whole));
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn nanoseconds_are_floored() {
        let t = Utc.timestamp_opt(-1, 999_999_999).single().unwrap_or_default();
        assert_eq!(format_timestamp(&t), "1969-12-31 23:59:59.999999");
    }

    #[test]
    fn intervals_follow_prefect_examples() {
        assert_eq!(format_interval(&TimeDelta::microseconds(611_316)).as_deref(), Ok("1970-01-01 00:00:00.611316"));
        let two_days = TimeDelta::days(2) + TimeDelta::seconds(3) + TimeDelta::microseconds(5);
        assert_eq!(format_interval(&two_days).as_deref(), Ok("1970-01-03 00:00:03.000005"));
        assert_eq!(format_interval(&TimeDelta::seconds(-1)).as_deref(), Ok("1969-12-31 23:59:59.000000"));
        assert_eq!(parse_interval("1969-12-31 23:59:59.000000"), Ok(TimeDelta::seconds(-1)));
        assert_eq!(parse_interval("0"), Ok(TimeDelta::zero()));
        assert_eq!(split_days_micros(&TimeDelta::seconds(-1)), Some((-1, 86_399_000_000)));
        assert_eq!(split_days_micros(&two_days), Some((2, 3_000_005)));
    }
}
