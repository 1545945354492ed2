//! Reading a request body as Prefect's REST API does: FastAPI's embedded body parameters and
//! Pydantic v2's lax validation, with every error collected and named by its location
//! (`body.flow_runs.state.type.any_.0`) and Pydantic's error type (`enum`, `extra_forbidden`,
//! `list_type`, …), so a body Prefect answers with 422 is refused here with the same errors.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// One validation error: where, and Pydantic's error type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Issue {
    /// The location, `.`-joined (`body.flows.name.like_`, list indices included).
    pub loc: String,
    /// Pydantic's error type (`extra_forbidden`, `enum`, `missing`, `list_type`, …).
    pub kind: &'static str,
}

/// Why a request body is refused, as Prefect refuses it (both are HTTP 422 unless `status` says
/// otherwise).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Validation errors, sorted by location and type (Prefect's `exception_detail`).
    #[error("invalid request body: {}", issues.iter().map(|i| format!("{} ({})", i.loc, i.kind)).collect::<Vec<_>>().join(", "))]
    Invalid {
        /// Every error found.
        issues: Vec<Issue>,
    },
    /// A check Prefect makes with an `HTTPException` (a limit out of range, a history interval
    /// under a second, an unknown work pool): its status and `detail`.
    #[error("{detail}")]
    Http {
        /// The HTTP status (422 or 404).
        status: u16,
        /// Prefect's `detail`, verbatim.
        detail: String,
    },
}

impl BodyError {
    /// The first location at fault (for a one-line message), if any.
    pub fn field(&self) -> String {
        match self {
            BodyError::Invalid { issues } => issues.first().map(|i| i.loc.clone()).unwrap_or_else(|| "body".to_owned()),
            BodyError::Http { .. } => "body".to_owned(),
        }
    }

    /// The HTTP status Prefect answers with.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::Invalid { .. } => 422,
            BodyError::Http { status, .. } => *status,
        }
    }
}

/// The validation state: the current location and the errors found so far.
#[derive(Debug)]
pub(crate) struct Ctx {
    path: Vec<String>,
    issues: Vec<Issue>,
}

impl Ctx {
    pub(crate) fn new() -> Self {
        Ctx { path: vec!["body".to_owned()], issues: Vec::new() }
    }

    pub(crate) fn error(&mut self, kind: &'static str) {
        self.issues.push(Issue { loc: self.path.join("."), kind });
    }

    /// Runs `f` one level deeper, at `key`.
    pub(crate) fn at<T>(&mut self, key: &str, f: impl FnOnce(&mut Ctx) -> T) -> T {
        self.path.push(key.to_owned());
        let out = f(self);
        self.path.pop();
        out
    }

    /// `Ok(value)` when no error was found, else every error, sorted.
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, BodyError> {
        if self.issues.is_empty() {
            Ok(value)
        } else {
            self.issues.sort();
            Err(BodyError::Invalid { issues: self.issues })
        }
    }
}

/// A JSON object whose keys are checked against the fields of a filter model
/// (`extra="forbid"`): read the fields with [`Obj::field`], then [`Obj::done`] reports the rest.
pub(crate) struct Obj<'a> {
    map: &'a Map<String, Value>,
    used: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    /// The object at the current location; a non-object is `model_attributes_type` (FastAPI
    /// validates models from attributes).
    pub(crate) fn of(ctx: &mut Ctx, v: &'a Value) -> Option<Obj<'a>> {
        match v {
            Value::Object(map) => Some(Obj { map, used: Vec::new() }),
            _ => {
                ctx.error("model_attributes_type");
                None
            }
        }
    }

    /// The field `key` parsed by `f`; absent or `null` is `None`.
    pub(crate) fn field<T>(&mut self, ctx: &mut Ctx, key: &'static str, f: impl FnOnce(&mut Ctx, &Value) -> Option<T>) -> Option<T> {
        self.used.push(key);
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => ctx.at(key, |ctx| f(ctx, v)),
        }
    }

    /// Whether the key is present (even `null`).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Whether the key is present with the value `null`.
    pub(crate) fn is_null(&self, key: &str) -> bool {
        matches!(self.map.get(key), Some(Value::Null))
    }

    /// Reports every key that is not a field (`extra_forbidden`).
    pub(crate) fn done(self, ctx: &mut Ctx) {
        for key in self.map.keys() {
            if !self.used.iter().any(|u| u == key) {
                ctx.at(key, |ctx| ctx.error("extra_forbidden"));
            }
        }
    }
}

pub(crate) fn string(ctx: &mut Ctx, v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        _ => {
            ctx.error("string_type");
            None
        }
    }
}

/// A string of at most `max` characters (`string_too_long`).
pub(crate) fn string_max(ctx: &mut Ctx, v: &Value, max: usize) -> Option<String> {
    let s = string(ctx, v)?;
    if s.chars().count() > max {
        ctx.error("string_too_long");
        return None;
    }
    Some(s)
}

pub(crate) fn uuid(ctx: &mut Ctx, v: &Value) -> Option<Uuid> {
    match v {
        Value::String(s) => match Uuid::parse_str(s.trim()) {
            Ok(u) => Some(u),
            Err(_) => {
                ctx.error("uuid_parsing");
                None
            }
        },
        _ => {
            ctx.error("uuid_type");
            None
        }
    }
}

/// An integer in Pydantic's lax mode: integers, floats without a fraction, numeric strings.
pub(crate) fn int(ctx: &mut Ctx, v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                return Some(i);
            }
            match n.as_f64() {
                Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Some(f as i64),
                Some(_) => {
                    ctx.error("int_from_float");
                    None
                }
                None => {
                    ctx.error("int_parsing");
                    None
                }
            }
        }
        Value::Bool(b) => Some(i64::from(*b)),
        Value::String(s) => match s.trim().parse::<i64>() {
            Ok(i) => Some(i),
            Err(_) => {
                ctx.error("int_parsing");
                None
            }
        },
        _ => {
            ctx.error("int_type");
            None
        }
    }
}

/// An integer `>= min` (`greater_than_equal`).
pub(crate) fn int_ge(ctx: &mut Ctx, v: &Value, min: i64) -> Option<i64> {
    let i = int(ctx, v)?;
    if i < min {
        ctx.error("greater_than_equal");
        return None;
    }
    Some(i)
}

/// A float in Pydantic's lax mode.
pub(crate) fn float(ctx: &mut Ctx, v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::String(s) => match s.trim().parse::<f64>() {
            Ok(f) => Some(f),
            Err(_) => {
                ctx.error("float_parsing");
                None
            }
        },
        _ => {
            ctx.error("float_type");
            None
        }
    }
}

/// A boolean in Pydantic's lax mode: `true`/`false`, 0/1, and the strings Pydantic accepts.
pub(crate) fn boolean(ctx: &mut Ctx, v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f == 0.0 => Some(false),
            Some(f) if f == 1.0 => Some(true),
            _ => {
                ctx.error("bool_parsing");
                None
            }
        },
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "t" | "y" | "1" => Some(true),
            "false" | "no" | "off" | "f" | "n" | "0" => Some(false),
            _ => {
                ctx.error("bool_parsing");
                None
            }
        },
        _ => {
            ctx.error("bool_type");
            None
        }
    }
}

/// A point in time as Prefect's `DateTime` reads it: RFC 3339 / ISO 8601 (a `T`, `t`, space or
/// `_` between date and time; `Z` or an offset; naive values are UTC), a date alone (midnight),
/// or Unix seconds (milliseconds when larger than 2·10¹⁰). Anything else is `value_error`.
pub(crate) fn datetime(ctx: &mut Ctx, v: &Value) -> Option<DateTime<Utc>> {
    let parsed = match v {
        Value::Number(n) => n.as_f64().and_then(|f| {
            let secs = if f.abs() > 2e10 { f / 1000.0 } else { f };
            let micros = (secs * 1_000_000.0).round();
            (micros.abs() < 9.2e18).then(|| DateTime::from_timestamp_micros(micros as i64)).flatten()
        }),
        Value::String(s) => parse_datetime(s.trim()),
        _ => None,
    };
    if parsed.is_none() {
        ctx.error("value_error");
    }
    parsed.map(prefect_orm::types::timefmt::truncate_to_micros)
}

fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if s.len() >= 11 {
        let b = s.as_bytes();
        if matches!(b[10], b't' | b' ' | b'_') {
            let normalized = format!("{}T{}", &s[..10], &s[11..]);
            return parse_datetime(&normalized);
        }
    }
    let upper = s.replace('z', "Z");
    if let Ok(d) = DateTime::parse_from_rfc3339(&upper) {
        return Some(d.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%:z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%dT%H%:z"] {
        if let Ok(d) = DateTime::parse_from_str(&upper, fmt) {
            return Some(d.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y%m%dT%H%M%S"] {
        if let Ok(d) = NaiveDateTime::parse_from_str(&upper, fmt) {
            return Some(d.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|d| d.and_utc());
    }
    None
}

/// A list whose items `item` parses, each at its index; a non-list is `list_type`.
pub(crate) fn list<T>(ctx: &mut Ctx, v: &Value, mut item: impl FnMut(&mut Ctx, &Value) -> Option<T>) -> Option<Vec<T>> {
    match v {
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            let mut ok = true;
            for (i, it) in items.iter().enumerate() {
                match ctx.at(&i.to_string(), |ctx| item(ctx, it)) {
                    Some(x) => out.push(x),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
        _ => {
            ctx.error("list_type");
            None
        }
    }
}

/// One of the values of a string enum, exactly (`enum` otherwise).
pub(crate) fn one_of<T: Copy>(ctx: &mut Ctx, v: &Value, values: &[(&str, T)]) -> Option<T> {
    if let Value::String(s) = v {
        if let Some((_, t)) = values.iter().find(|(name, _)| name == s) {
            return Some(*t);
        }
    }
    ctx.error("enum");
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lax_scalars_follow_pydantic() {
        let mut ctx = Ctx::new();
        assert_eq!(int(&mut ctx, &json!("10")), Some(10));
        assert_eq!(int(&mut ctx, &json!(10.0)), Some(10));
        assert_eq!(boolean(&mut ctx, &json!("yes")), Some(true));
        assert_eq!(boolean(&mut ctx, &json!(0)), Some(false));
        assert!(ctx.issues.is_empty());
        assert_eq!(int(&mut ctx, &json!("ten")), None);
        assert_eq!(boolean(&mut ctx, &json!("maybe")), None);
        assert_eq!(uuid(&mut ctx, &json!("123")), None);
        let kinds: Vec<&str> = ctx.issues.iter().map(|i| i.kind).collect();
        assert_eq!(kinds, ["int_parsing", "bool_parsing", "uuid_parsing"]);
    }

    #[test]
    fn datetimes_are_read_as_prefect_reads_them() {
        let mut ctx = Ctx::new();
        let utc = |s: &str| DateTime::parse_from_rfc3339(s).map(|d| d.with_timezone(&Utc)).ok();
        assert_eq!(datetime(&mut ctx, &json!("2026-01-01T02:00:00+02:00")), utc("2026-01-01T00:00:00Z"));
        assert_eq!(datetime(&mut ctx, &json!("2026-01-01 00:00:00.5")), utc("2026-01-01T00:00:00.5Z"), "naive is UTC");
        assert_eq!(datetime(&mut ctx, &json!("2026-01-01")), utc("2026-01-01T00:00:00Z"));
        assert_eq!(datetime(&mut ctx, &json!(5)), utc("1970-01-01T00:00:05Z"));
        assert!(ctx.issues.is_empty());
        assert_eq!(datetime(&mut ctx, &json!("not-a-date")), None);
        assert_eq!(ctx.issues[0].kind, "value_error");
    }
}
