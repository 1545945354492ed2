//! JSON text exactly as Python's `json.dumps` writes it with default arguments, which is what
//! Prefect stores in SQLite (and in the plain `json` columns of PostgreSQL): `", "` and `": "`
//! separators, every non-ASCII character escaped as `\uXXXX` (surrogate pairs above U+FFFF),
//! and floats in Python's `repr` form (`1.0`, `1e+20`, `1e-05`).

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use std::io::{self, Write};

/// Serializes a JSON value to Prefect's text form.
pub fn to_prefect_json_text(value: &serde_json::Value) -> Result<String, serde_json::Error> {
    let mut out = Vec::with_capacity(64);
    let mut ser = Serializer::with_formatter(&mut out, PythonJsonFormatter);
    value.serialize(&mut ser)?;
    // The formatter writes ASCII only.
    String::from_utf8(out).map_err(|e| serde_json::Error::io(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// A `serde_json` formatter reproducing Python's `json.dumps` defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonJsonFormatter;

impl Formatter for PythonJsonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f64<W: ?Sized + Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W: ?Sized + Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        w.write_all(python_float_repr(f64::from(value)).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            w.write_all(&bytes[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + ch.len_utf8();
        }
        w.write_all(&bytes[start..])
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, w: &mut W, escape: CharEscape) -> io::Result<()> {
        let s: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(w, "\\u{byte:04x}"),
        };
        w.write_all(s)
    }
}

/// Python's `repr(float)`: the shortest round-trip digits, positional notation for decimal
/// exponents in `-4..16`, scientific (`1e+20`, `1.5e-07`) otherwise, and `.0` on integral values.
pub fn python_float_repr(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity".to_owned() } else { "-Infinity".to_owned() };
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0.0".to_owned() } else { "0.0".to_owned() };
    }
    // Rust's `{:e}` gives the shortest round-trip digits: "1.2345e-7", "1e20".
    let sci = format!("{value:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |m| ("-", m));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let n = digits.len() as i32;
        let point = exp + 1; // position of the decimal point within the digits
        let body = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point >= n {
            format!("{}{}.0", digits, "0".repeat((point - n) as usize))
        } else {
            let (int, frac) = digits.split_at(point as usize);
            format!("{int}.{frac}")
        };
        format!("{sign}{body}")
    } else {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        format!("{sign}{first}{frac}e{esign}{:02}", exp.abs())
    }
}

/// Replaces NaN and ±Infinity by `null`, as Prefect does before storing JSON. A
/// `serde_json::Value` cannot hold them, so this applies to text parsed from elsewhere.
pub fn parse_lenient(text: &str) -> Result<serde_json::Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(first) => {
            if text.contains("NaN") || text.contains("Infinity") {
                let cleaned = replace_non_finite(text);
                serde_json::from_str(&cleaned).map_err(|_| first)
            } else {
                Err(first)
            }
        }
    }
}

/// Rewrites the bare tokens `NaN`, `Infinity` and `-Infinity` outside strings to `null`.
fn replace_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        if in_string {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
            rest = &rest[ch.len_utf8()..];
            continue;
        }
        if ch == '"' {
            in_string = true;
        }
        let mut replaced = false;
        for token in ["-Infinity", "Infinity", "NaN"] {
            if let Some(after) = rest.strip_prefix(token) {
                out.push_str("null");
                rest = after;
                replaced = true;
                break;
            }
        }
        if !replaced {
            out.push(ch);
            rest = &rest[ch.len_utf8()..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_python_dumps() {
        let v = json!({"x": "ünï", "f": 1.0, "n": null, "a": [1, 2, {"b": true}]});
        // serde_json's map keeps keys sorted unless `preserve_order` is on; Python keeps insertion
        // order. Both parse to the same value; the spacing and escapes must match exactly.
        let text = to_prefect_json_text(&v).unwrap_or_default();
        assert_eq!(text, r#"{"a": [1, 2, {"b": true}], "f": 1.0, "n": null, "x": "\u00fcn\u00ef"}"#);
        assert_eq!(to_prefect_json_text(&json!("héllo ☃")).unwrap_or_default(), r#""h\u00e9llo \u2603""#);
        assert_eq!(to_prefect_json_text(&json!("😀\u{7f}\n\"/")).unwrap_or_default(), r#""\ud83d\ude00\u007f\n\"/""#);
    }

    #[test]
    fn floats_like_python_repr() {
        for (v, s) in [(1.0, "1.0"), (1.5, "1.5"), (1e20, "1e+20"), (1e16, "1e+16"), (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"), (0.00001, "1e-05"), (-2.5e-7, "-2.5e-07"), (3601.5, "3601.5"), (0.1, "0.1"),
            (123456789.125, "123456789.125"), (-0.0, "-0.0"), (1.7976931348623157e308, "1.7976931348623157e+308")] {
            assert_eq!(python_float_repr(v), s, "{v}");
        }
    }

    #[test]
    fn non_finite_become_null() {
        assert_eq!(parse_lenient(r#"{"a": NaN, "b": [Infinity, -Infinity], "c": "NaN"}"#).ok(),
            Some(json!({"a": null, "b": [null, null], "c": "NaN"})));
        assert!(parse_lenient("{not json").is_err());
    }
}
