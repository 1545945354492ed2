//! Prefect's log text search query (`parse_text_search_query`): terms to include (any), exclude
//! (none) and require (all), with `-`/`!` and `+` prefixes and `"quoted phrases"`.

/// A parsed search query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Query {
    pub(crate) include: Vec<String>,
    pub(crate) exclude: Vec<String>,
    pub(crate) required: Vec<String>,
}

/// Parses a query as Prefect does: whitespace separates terms; a `-` or `!` before a term
/// excludes it and a `+` requires it (a prefix followed by whitespace or the end is dropped);
/// `"…"` is a phrase (`\"` and `\\` unescaped, an unclosed quote runs to the end, a blank phrase
/// is dropped); an unquoted term ends at whitespace or `"`.
pub(crate) fn parse(query: &str) -> Query {
    let mut q = Query::default();
    if query.trim().is_empty() {
        return q;
    }
    let chars: Vec<char> = query.chars().collect();
    let n = chars.len();
    let mut i = 0;
    while i < n {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        let mut prefix = None;
        if matches!(chars[i], '-' | '!' | '+') {
            let p = chars[i];
            i += 1;
            if i < n && !chars[i].is_whitespace() {
                prefix = Some(p);
            } else {
                continue;
            }
        }
        let target = match prefix {
            Some('-' | '!') => &mut q.exclude,
            Some('+') => &mut q.required,
            _ => &mut q.include,
        };
        if i < n && chars[i] == '"' {
            i += 1;
            let start = i;
            while i < n {
                if chars[i] == '\\' && i + 1 < n {
                    i += 2;
                } else if chars[i] == '"' {
                    break;
                } else {
                    i += 1;
                }
            }
            let raw: Vec<char> = chars[start..i.min(n)].to_vec();
            if i < n {
                i += 1;
            }
            let mut phrase = String::new();
            let mut j = 0;
            while j < raw.len() {
                if raw[j] == '\\' && j + 1 < raw.len() && matches!(raw[j + 1], '"' | '\\') {
                    phrase.push(raw[j + 1]);
                    j += 2;
                } else {
                    phrase.push(raw[j]);
                    j += 1;
                }
            }
            if !phrase.trim().is_empty() {
                target.push(phrase);
            }
            continue;
        }
        let start = i;
        while i < n && !chars[i].is_whitespace() && chars[i] != '"' {
            i += 1;
        }
        if i > start {
            target.push(chars[start..i].iter().collect());
        }
    }
    q
}

/// A term as a literal `LIKE` substring with `/` as the escape character.
pub(crate) fn escape(term: &str) -> String {
    term.replace('/', "//").replace('%', "/%").replace('_', "/_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_parse_as_prefect_parses_them() {
        let q = parse("\"connection timeout\" -ConnectionError");
        assert_eq!(q.include, ["connection timeout"]);
        assert_eq!(q.exclude, ["ConnectionError"]);
        let q = parse("+notice +row - ! plain");
        assert_eq!(q.required, ["notice", "row"]);
        assert_eq!(q.include, ["plain"], "a prefix followed by whitespace is dropped");
        let q = parse(r#"-"a \"b\" c" "unclosed"#);
        assert_eq!(q.exclude, [r#"a "b" c"#]);
        assert_eq!(q.include, ["unclosed"]);
        assert_eq!(parse("   "), Query::default());
        assert_eq!(escape("50%_a/b"), "50/%/_a//b");
    }
}
