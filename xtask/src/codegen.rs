//! `cargo xtask codegen [--check]`: generates the portable diesel schema and the typed models
//! of `prefect-orm` from the PostgreSQL migrations.
//!
//! Input: every `migrations/postgresql/*/up.sql` of the repository, applied in version (directory
//! name) order. The parser understands what `pg_dump` and hand-written migrations use to shape
//! tables: `CREATE TABLE`, `CREATE TYPE … AS ENUM`, `ALTER TYPE … ADD VALUE`, `ALTER TABLE` with
//! `ADD CONSTRAINT` (PRIMARY KEY / FOREIGN KEY; others are ignored), `ADD COLUMN`, `DROP COLUMN`,
//! `DROP CONSTRAINT`, `ALTER COLUMN` (NOT NULL, DEFAULT, TYPE) and `RENAME`, and `DROP TABLE` /
//! `DROP TYPE`. Statements that do not shape columns (indexes, `SET`, comments, extensions, data)
//! are skipped; an `ALTER TABLE` action it does not know is an error, so that the generated schema
//! never silently drifts from the migrations.
//!
//! Output (each file starts with a "generated, do not edit" header and is formatted by rustfmt):
//! - `crates/prefect-orm/src/schema.rs`: one `diesel::table!` per table in a single portable
//!   schema, `joinable!` per foreign key, `allow_tables_to_appear_in_same_query!`;
//! - `crates/prefect-orm/src/models/generated.rs`: per table a row struct, an insert struct with a
//!   constructor applying Prefect's client-side defaults, and a changeset.
//!
//! `--check` regenerates in memory and fails if a file on disk differs.

use anyhow::{Context, Result, anyhow, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Tables that exist in a Prefect database but are not part of the domain schema.
const SKIPPED_TABLES: &[&str] = &["alembic_version"];

/// Where the inputs and outputs live, relative to the workspace root.
const MIGRATIONS_DIR: &str = "migrations/postgresql";
const ENUMS_FILE: &str = "crates/prefect-orm/src/types/enums.rs";
const SCHEMA_FILE: &str = "crates/prefect-orm/src/schema.rs";
const MODELS_FILE: &str = "crates/prefect-orm/src/models/generated.rs";

/// Rust names of tables whose Prefect ORM class is not the camel case of the table name.
const MODEL_NAME_OVERRIDES: &[(&str, &str)] =
    &[("events", "Event"), ("event_resources", "EventResource")];

/// What the `new` constructor of an insert struct writes for a column: one of Prefect's
/// Python-side defaults (spec §6.3) that differs from the database default, or that exists where
/// the database has none.
struct PythonDefault {
    table: &'static str,
    column: &'static str,
    /// A Rust expression; `now` is the constructor's timestamp (the one of `created`).
    expr: &'static str,
    /// The Python default as Prefect spells it, for the docs.
    python: &'static str,
    /// The column must always be written, even though the database has a default.
    always: bool,
}

const fn pydef(
    table: &'static str,
    column: &'static str,
    expr: &'static str,
    python: &'static str,
) -> PythonDefault {
    PythonDefault {
        table,
        column,
        expr,
        python,
        always: false,
    }
}

const JSON_EMPTY_LIST: &str = "serde_json::Value::Array(Vec::new())";
const JSON_EMPTY_OBJECT: &str = "serde_json::Value::Object(serde_json::Map::new())";

const PYTHON_DEFAULTS: &[PythonDefault] = &[
    // Timestamps Prefect takes from the client clock, to the microsecond (the SQLite database
    // default only has milliseconds).
    pydef("agent", "last_activity_time", "now", "now(\"UTC\")"),
    pydef("flow_run_state", "timestamp", "now", "now(\"UTC\")"),
    pydef("task_run_state", "timestamp", "now", "now(\"UTC\")"),
    pydef("worker", "last_heartbeat_time", "now", "now(\"UTC\")"),
    // NOT NULL columns whose only default is Python's.
    pydef("automation", "description", "String::new()", "\"\""),
    pydef(
        "automation_bucket",
        "bucketing_key",
        JSON_EMPTY_LIST,
        "list()",
    ),
    pydef(
        "automation_event_follower",
        "scope",
        "String::new()",
        "\"\"",
    ),
    pydef("concurrency_limit_v2", "active", "true", "True"),
    pydef("concurrency_limit_v2", "active_slots", "0", "0"),
    pydef("concurrency_limit_v2", "denied_slots", "0", "0"),
    pydef(
        "concurrency_limit_v2",
        "slot_decay_per_second",
        "0.0",
        "0.0",
    ),
    pydef(
        "concurrency_limit_v2",
        "avg_slot_occupancy_seconds",
        "2.0",
        "2.0",
    ),
    pydef("deployment_schedule", "active", "true", "True"),
    // Nullable columns Prefect fills.
    pydef(
        "deployment",
        "parameter_openapi_schema",
        JSON_EMPTY_OBJECT,
        "dict()",
    ),
    pydef("deployment", "pull_steps", JSON_EMPTY_LIST, "list()"),
    // Python and database defaults disagree: Prefect's wins.
    pydef("deployment", "enforce_parameter_schema", "true", "True"),
    // SQLite's default `'0'` would store the integer 0, which Prefect cannot read back.
    PythonDefault {
        table: "flow_run",
        column: "total_run_time",
        expr: "TimeDelta::zero()",
        python: "datetime.timedelta(0)",
        always: true,
    },
    PythonDefault {
        table: "task_run",
        column: "total_run_time",
        expr: "TimeDelta::zero()",
        python: "datetime.timedelta(0)",
        always: true,
    },
];

/// Python defaults the constructor leaves to the caller: Pydantic objects whose serialised form
/// is a higher layer's business, and generated names. Mentioned in the docs only.
const PYTHON_DEFAULT_NOTES: &[(&str, &str, &str)] = &[
    ("flow_run", "name", "generate_slug(2)"),
    ("task_run", "name", "generate_slug(2)"),
    ("flow_run", "empirical_policy", "FlowRunPolicy()"),
    ("task_run", "empirical_policy", "TaskRunPolicy()"),
    ("flow_run_state", "state_details", "StateDetails()"),
    ("task_run_state", "state_details", "StateDetails()"),
    (
        "work_pool",
        "storage_configuration",
        "WorkPoolStorageConfiguration()",
    ),
];

/// Runs the generator: writes the files, or with `check` only compares them.
pub fn run(check: bool) -> Result<()> {
    let root = workspace_root();
    let files = generate(&root)?;
    let mut stale = Vec::new();
    for (rel, contents) in &files {
        let path = root.join(rel);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() == Some(contents.as_str()) {
            continue;
        }
        if check {
            stale.push(rel.clone());
        } else {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(&path, contents)
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("codegen: wrote {rel}");
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated files are out of date: {}\nrun `cargo xtask codegen` and commit the result",
            stale.join(", ")
        );
    }
    if check {
        eprintln!("codegen: {} generated files are up to date", files.len());
    }
    Ok(())
}

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Reads the migrations and returns `(relative path, formatted contents)` for every output.
fn generate(root: &Path) -> Result<Vec<(String, String)>> {
    let mut schema = Schema::default();
    let sources = migration_sources(root)?;
    for (rel, sql) in &sources {
        apply_sql(&mut schema, sql).with_context(|| format!("parsing {rel}"))?;
    }
    for t in SKIPPED_TABLES {
        schema.tables.remove(*t);
    }
    if schema.tables.is_empty() {
        bail!("no CREATE TABLE found in {MIGRATIONS_DIR}/*/up.sql");
    }
    let enums_src = std::fs::read_to_string(root.join(ENUMS_FILE))
        .with_context(|| format!("reading {ENUMS_FILE}"))?;
    let rust_enums = parse_rust_enums(&enums_src)?;
    let model = Model::build(&schema, &rust_enums)?;
    let inputs: Vec<&str> = sources.iter().map(|(rel, _)| rel.as_str()).collect();
    let schema_rs = rustfmt(root, &model.schema_rs(&inputs))?;
    let models_rs = rustfmt(root, &model.models_rs(&inputs))?;
    Ok(vec![
        (SCHEMA_FILE.to_owned(), schema_rs),
        (MODELS_FILE.to_owned(), models_rs),
    ])
}

/// The `up.sql` files of the PostgreSQL migrations, in version order.
fn migration_sources(root: &Path) -> Result<Vec<(String, String)>> {
    let dir = root.join(MIGRATIONS_DIR);
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_type()?.is_dir() && entry.path().join("up.sql").is_file() {
            dirs.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    dirs.sort();
    if dirs.is_empty() {
        bail!("no migration with an up.sql in {}", dir.display());
    }
    dirs.into_iter()
        .map(|d| {
            let rel = format!("{MIGRATIONS_DIR}/{d}/up.sql");
            let sql = std::fs::read_to_string(root.join(&rel))
                .with_context(|| format!("reading {rel}"))?;
            Ok((rel, sql))
        })
        .collect()
}

fn rustfmt(root: &Path, src: &str) -> Result<String> {
    let rustfmt = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".to_owned());
    let mut child = Command::new(&rustfmt)
        .current_dir(root)
        .args(["--edition", "2024", "--emit", "stdout", "--config-path"])
        .arg(root.join("rustfmt.toml"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {rustfmt}"))?;
    let mut stdin = child.stdin.take().ok_or_else(|| anyhow!("rustfmt stdin"))?;
    let input = src.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| anyhow!("rustfmt writer panicked"))??;
    if !out.status.success() {
        bail!("rustfmt failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

// ---------------------------------------------------------------------------------------------
// SQL tokens

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An unquoted identifier or keyword, as written.
    Word(String),
    /// A double-quoted identifier, unescaped.
    Quoted(String),
    /// A string literal's contents (single- or dollar-quoted).
    Str(String),
    Num,
    /// Punctuation; `::` is one symbol.
    Sym(&'static str),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    start: usize,
    end: usize,
}

fn tokenize(src: &str) -> Result<Vec<Token>> {
    let b = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    let mut line_start = true;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line_start = true;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        // psql meta-commands (`\restrict …`) take the rest of their line.
        if line_start && c == b'\\' {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        line_start = false;
        let start = i;
        if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let end = src[i + 2..]
                .find("*/")
                .ok_or_else(|| anyhow!("unterminated comment"))?;
            i += 2 + end + 2;
            continue;
        }
        let tok = if c == b'\'' {
            let mut s = String::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => bail!("unterminated string literal"),
                    Some(b'\'') if b.get(i + 1) == Some(&b'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        let ch = src[i..].chars().next().unwrap_or('\0');
                        s.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            Tok::Str(s)
        } else if c == b'"' {
            let mut s = String::new();
            i += 1;
            loop {
                match b.get(i) {
                    None => bail!("unterminated quoted identifier"),
                    Some(b'"') if b.get(i + 1) == Some(&b'"') => {
                        s.push('"');
                        i += 2;
                    }
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => {
                        let ch = src[i..].chars().next().unwrap_or('\0');
                        s.push(ch);
                        i += ch.len_utf8();
                    }
                }
            }
            Tok::Quoted(s)
        } else if c == b'$' && dollar_tag_len(&b[i..]).is_some() {
            let tag_len = dollar_tag_len(&b[i..]).unwrap_or(2);
            let tag = &src[i..i + tag_len];
            let body_start = i + tag_len;
            let end = src[body_start..]
                .find(tag)
                .ok_or_else(|| anyhow!("unterminated dollar-quoted string"))?;
            i = body_start + end + tag_len;
            Tok::Str(src[body_start..body_start + end].to_owned())
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            Tok::Word(src[start..i].to_owned())
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                i += 1;
            }
            Tok::Num
        } else if c == b':' && b.get(i + 1) == Some(&b':') {
            i += 2;
            Tok::Sym("::")
        } else {
            i += 1;
            Tok::Sym(match c {
                b'(' => "(",
                b')' => ")",
                b',' => ",",
                b';' => ";",
                b'.' => ".",
                b'[' => "[",
                b']' => "]",
                b'=' => "=",
                _ => "?",
            })
        };
        toks.push(Token { tok, start, end: i });
    }
    Ok(toks)
}

/// The length of a `$tag$` opener at the start of `b`, if there is one.
fn dollar_tag_len(b: &[u8]) -> Option<usize> {
    let mut j = 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
        j += 1;
    }
    (b.get(j) == Some(&b'$') && !b[1..j].first().is_some_and(u8::is_ascii_digit)).then_some(j + 1)
}

/// A cursor over one statement's tokens.
struct Cur<'a> {
    src: &'a str,
    toks: &'a [Token],
    pos: usize,
}

impl<'a> Cur<'a> {
    fn new(src: &'a str, toks: &'a [Token]) -> Self {
        Cur { src, toks, pos: 0 }
    }

    fn done(&self) -> bool {
        self.pos >= self.toks.len()
    }

    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn is_kw_at(&self, offset: usize, kw: &str) -> bool {
        matches!(self.toks.get(self.pos + offset).map(|t| &t.tok), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn eat_kws(&mut self, kws: &[&str]) -> bool {
        if kws.iter().enumerate().all(|(k, kw)| self.is_kw_at(k, kw)) {
            self.pos += kws.len();
            true
        } else {
            false
        }
    }

    fn expect_kw(&mut self, kw: &str) -> Result<()> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            bail!("expected {kw} at {}", self.context())
        }
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Some(Tok::Sym(x)) if *x == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let hit = self.is_sym(s);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_sym(&mut self, s: &str) -> Result<()> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            bail!("expected `{s}` at {}", self.context())
        }
    }

    /// An identifier: unquoted ones fold to lower case, as PostgreSQL does.
    fn ident(&mut self) -> Result<String> {
        let name = match self.peek() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            Some(Tok::Quoted(q)) => q.clone(),
            _ => bail!("expected an identifier at {}", self.context()),
        };
        self.pos += 1;
        Ok(name)
    }

    /// A possibly schema-qualified name; the schema is dropped.
    fn qualified(&mut self) -> Result<String> {
        let mut name = self.ident()?;
        while self.eat_sym(".") {
            name = self.ident()?;
        }
        Ok(name)
    }

    /// `( a, b, … )`.
    fn ident_list(&mut self) -> Result<Vec<String>> {
        self.expect_sym("(")?;
        let mut out = vec![self.ident()?];
        while self.eat_sym(",") {
            out.push(self.ident()?);
        }
        self.expect_sym(")")?;
        Ok(out)
    }

    /// Skips one token, or a whole parenthesised group.
    fn skip_one(&mut self) {
        if self.is_sym("(") {
            let mut depth = 0usize;
            while let Some(t) = self.peek() {
                self.pos += 1;
                match t {
                    Tok::Sym("(") => depth += 1,
                    Tok::Sym(")") => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
        } else {
            self.pos += 1;
        }
    }

    /// Splits the rest at top-level commas.
    fn split_commas(&self) -> Vec<&'a [Token]> {
        let rest = &self.toks[self.pos..];
        let mut parts = Vec::new();
        let mut depth = 0usize;
        let mut from = 0;
        for (k, t) in rest.iter().enumerate() {
            match t.tok {
                Tok::Sym("(") => depth += 1,
                Tok::Sym(")") => depth = depth.saturating_sub(1),
                Tok::Sym(",") if depth == 0 => {
                    parts.push(&rest[from..k]);
                    from = k + 1;
                }
                _ => {}
            }
        }
        if from < rest.len() {
            parts.push(&rest[from..]);
        }
        parts
    }

    /// The source text from token `from` up to (excluding) the current token.
    fn text_since(&self, from: usize) -> String {
        if from >= self.pos {
            return String::new();
        }
        self.src[self.toks[from].start..self.toks[self.pos - 1].end].to_owned()
    }

    fn context(&self) -> String {
        match self.toks.get(self.pos) {
            Some(t) => {
                let end = (t.start + 60).min(self.src.len());
                let end = (t.start..=end)
                    .rev()
                    .find(|&e| self.src.is_char_boundary(e))
                    .unwrap_or(t.start);
                format!("`{}`", self.src[t.start..end].replace('\n', " "))
            }
            None => "end of statement".to_owned(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The schema as the migrations shape it

#[derive(Debug, Default)]
struct Schema {
    /// Enum type name → labels, in declaration order.
    enums: BTreeMap<String, Vec<String>>,
    /// Tables by name; `order` keeps creation order.
    tables: BTreeMap<String, Table>,
    order: Vec<String>,
}

#[derive(Debug, Default)]
struct Table {
    name: String,
    columns: Vec<Column>,
    primary_key: Vec<String>,
    primary_key_name: Option<String>,
    foreign_keys: Vec<ForeignKey>,
    /// Unique constraints and unique indexes: (name, columns).
    uniques: Vec<(String, Vec<String>)>,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    /// The type as written, lower-cased, schema dropped: `character varying(32)`.
    type_text: String,
    not_null: bool,
    default: Option<String>,
}

#[derive(Debug, Clone)]
struct ForeignKey {
    name: Option<String>,
    columns: Vec<String>,
    ref_table: String,
    ref_columns: Vec<String>,
    on_delete: Option<String>,
}

/// Words that end a column's type or its DEFAULT expression.
const COLUMN_CONSTRAINT_WORDS: &[&str] = &[
    "default",
    "not",
    "null",
    "constraint",
    "primary",
    "references",
    "check",
    "unique",
    "generated",
    "collate",
];

fn is_constraint_word(t: Option<&Tok>) -> bool {
    matches!(t, Some(Tok::Word(w)) if COLUMN_CONSTRAINT_WORDS.iter().any(|k| w.eq_ignore_ascii_case(k)))
}

fn apply_sql(schema: &mut Schema, src: &str) -> Result<()> {
    let toks = tokenize(src)?;
    for stmt in toks.split(|t| t.tok == Tok::Sym(";")) {
        if stmt.is_empty() {
            continue;
        }
        let mut cur = Cur::new(src, stmt);
        apply_statement(schema, &mut cur).with_context(|| {
            let start = stmt[0].start;
            let end = stmt[stmt.len() - 1].end.min(start + 120);
            let end = (start..=end)
                .rev()
                .find(|&e| src.is_char_boundary(e))
                .unwrap_or(start);
            format!("in statement `{}`", src[start..end].replace('\n', " "))
        })?;
    }
    Ok(())
}

fn apply_statement(schema: &mut Schema, cur: &mut Cur<'_>) -> Result<()> {
    if cur.eat_kw("create") {
        // CREATE [UNLOGGED | TEMP | TEMPORARY] TABLE …
        while cur.eat_kw("unlogged") || cur.eat_kw("temp") || cur.eat_kw("temporary") {}
        if cur.eat_kw("table") {
            return create_table(schema, cur);
        }
        if cur.eat_kws(&["unique", "index"]) {
            return create_unique_index(schema, cur);
        }
        if cur.eat_kw("type") {
            let name = cur.qualified()?;
            if cur.eat_kws(&["as", "enum"]) {
                cur.expect_sym("(")?;
                let mut labels = Vec::new();
                while let Some(Tok::Str(s)) = cur.peek() {
                    labels.push(s.clone());
                    cur.pos += 1;
                    if !cur.eat_sym(",") {
                        break;
                    }
                }
                cur.expect_sym(")")?;
                schema.enums.insert(name, labels);
            }
        }
        return Ok(());
    }
    if cur.eat_kw("alter") {
        if cur.eat_kw("table") {
            return alter_table(schema, cur);
        }
        if cur.eat_kw("type") {
            return alter_type(schema, cur);
        }
        return Ok(());
    }
    if cur.eat_kw("drop") {
        if cur.eat_kw("index") {
            cur.eat_kw("concurrently");
            cur.eat_kws(&["if", "exists"]);
            loop {
                let name = cur.qualified()?;
                for t in schema.tables.values_mut() {
                    t.uniques.retain(|(n, _)| *n != name);
                }
                if !cur.eat_sym(",") {
                    break;
                }
            }
            return Ok(());
        }
        let is_table = cur.eat_kw("table");
        let is_type = !is_table && cur.eat_kw("type");
        if is_table || is_type {
            cur.eat_kws(&["if", "exists"]);
            loop {
                let name = cur.qualified()?;
                if is_table {
                    schema.tables.remove(&name);
                    schema.order.retain(|t| *t != name);
                } else {
                    schema.enums.remove(&name);
                }
                if !cur.eat_sym(",") {
                    break;
                }
            }
        }
        return Ok(());
    }
    Ok(())
}

/// `CREATE UNIQUE INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON [ONLY] table [USING method]
/// (col [ASC | DESC] [NULLS …], …) …`: recorded with its columns (ordering words dropped).
fn create_unique_index(schema: &mut Schema, cur: &mut Cur<'_>) -> Result<()> {
    cur.eat_kw("concurrently");
    cur.eat_kws(&["if", "not", "exists"]);
    let name = cur.ident()?;
    cur.expect_kw("on")?;
    cur.eat_kw("only");
    let table_name = cur.qualified()?;
    if cur.eat_kw("using") {
        cur.ident()?;
    }
    cur.expect_sym("(")?;
    let mut columns = Vec::new();
    loop {
        columns.push(cur.ident()?);
        while cur.eat_kw("asc") || cur.eat_kw("desc") || cur.eat_kws(&["nulls", "first"]) || cur.eat_kws(&["nulls", "last"]) {}
        if !cur.eat_sym(",") {
            break;
        }
    }
    cur.expect_sym(")")?;
    let table = schema
        .tables
        .get_mut(&table_name)
        .ok_or_else(|| anyhow!("CREATE UNIQUE INDEX {name} on unknown table {table_name}"))?;
    table.uniques.push((name, columns));
    Ok(())
}

fn create_table(schema: &mut Schema, cur: &mut Cur<'_>) -> Result<()> {
    cur.eat_kws(&["if", "not", "exists"]);
    let name = cur.qualified()?;
    if schema.tables.contains_key(&name) {
        bail!("table {name} created twice");
    }
    cur.expect_sym("(")?;
    let mut table = Table {
        name: name.clone(),
        ..Table::default()
    };
    // The elements end at the matching `)`.
    let body_start = cur.pos;
    let mut depth = 1usize;
    while depth > 0 {
        match cur.peek() {
            None => bail!("unterminated CREATE TABLE {name}"),
            Some(Tok::Sym("(")) => depth += 1,
            Some(Tok::Sym(")")) => depth -= 1,
            _ => {}
        }
        cur.pos += 1;
    }
    let body = &cur.toks[body_start..cur.pos - 1];
    let inner = Cur::new(cur.src, body);
    for element in inner.split_commas() {
        let mut el = Cur::new(cur.src, element);
        if el.is_kw("constraint")
            || el.is_kw("primary")
            || el.is_kw("foreign")
            || el.is_kw("unique")
            || el.is_kw("check")
            || el.is_kw("exclude")
        {
            table_constraint(&mut table, &mut el)?;
        } else if el.is_kw("like") {
            bail!("CREATE TABLE … (LIKE …) is not supported");
        } else {
            let column = column_def(&mut table, &mut el)?;
            table.columns.push(column);
        }
    }
    schema.order.push(name.clone());
    schema.tables.insert(name, table);
    Ok(())
}

/// `[CONSTRAINT name] PRIMARY KEY (…) | FOREIGN KEY (…) REFERENCES … | UNIQUE … | CHECK …`.
fn table_constraint(table: &mut Table, cur: &mut Cur<'_>) -> Result<()> {
    let name = if cur.eat_kw("constraint") {
        Some(cur.ident()?)
    } else {
        None
    };
    if cur.eat_kws(&["primary", "key"]) {
        table.primary_key = cur.ident_list()?;
        table.primary_key_name = name;
        for c in &table.primary_key {
            if let Some(col) = table.columns.iter_mut().find(|x| x.name == *c) {
                col.not_null = true;
            }
        }
    } else if cur.eat_kws(&["foreign", "key"]) {
        let columns = cur.ident_list()?;
        let mut fk = references(cur)?;
        fk.name = name;
        fk.columns = columns;
        table.foreign_keys.push(fk);
    } else if cur.eat_kw("unique") {
        cur.eat_kws(&["nulls", "not", "distinct"]);
        let columns = cur.ident_list()?;
        if let Some(name) = name {
            table.uniques.push((name, columns));
        }
    } else if cur.is_kw("check") || cur.is_kw("exclude") {
        // Not part of the diesel schema.
    } else {
        bail!("unsupported table constraint at {}", cur.context());
    }
    Ok(())
}

/// `REFERENCES table [(cols)] [ON DELETE action] [ON UPDATE action] …`.
fn references(cur: &mut Cur<'_>) -> Result<ForeignKey> {
    cur.expect_kw("references")?;
    let ref_table = cur.qualified()?;
    let ref_columns = if cur.is_sym("(") {
        cur.ident_list()?
    } else {
        vec!["id".to_owned()]
    };
    let mut on_delete = None;
    while !cur.done() {
        if cur.eat_kws(&["on", "delete"]) {
            let from = cur.pos;
            if cur.eat_kws(&["set", "null"])
                || cur.eat_kws(&["set", "default"])
                || cur.eat_kws(&["no", "action"])
                || cur.eat_kw("cascade")
                || cur.eat_kw("restrict")
            {
                on_delete = Some(cur.text_since(from).to_ascii_uppercase());
            }
        } else {
            cur.skip_one();
        }
    }
    Ok(ForeignKey {
        name: None,
        columns: Vec::new(),
        ref_table,
        ref_columns,
        on_delete,
    })
}

fn column_def(table: &mut Table, cur: &mut Cur<'_>) -> Result<Column> {
    let name = cur.ident()?;
    let type_text = column_type(cur)?;
    let mut col = Column {
        name,
        type_text,
        not_null: false,
        default: None,
    };
    while !cur.done() {
        if cur.eat_kws(&["not", "null"]) {
            col.not_null = true;
        } else if cur.eat_kw("null") {
            col.not_null = false;
        } else if cur.eat_kw("default") {
            col.default = Some(default_expr(cur)?);
        } else if cur.eat_kw("constraint") {
            cur.ident()?;
        } else if cur.eat_kws(&["primary", "key"]) {
            col.not_null = true;
            table.primary_key = vec![col.name.clone()];
        } else if cur.eat_kw("unique") {
        } else if cur.eat_kw("check") {
            cur.skip_one();
        } else if cur.eat_kw("collate") {
            cur.qualified()?;
        } else if cur.is_kw("references") {
            let mut fk = references(cur)?;
            fk.columns = vec![col.name.clone()];
            table.foreign_keys.push(fk);
        } else if cur.eat_kw("generated") {
            col.default = Some("GENERATED".to_owned());
            while !cur.done() {
                cur.skip_one();
            }
        } else {
            bail!("unexpected column clause at {}", cur.context());
        }
    }
    Ok(col)
}

/// A column type, up to the first column-constraint word: lower-cased, schema dropped.
fn column_type(cur: &mut Cur<'_>) -> Result<String> {
    let mut out = String::new();
    while !cur.done() && !is_constraint_word(cur.peek()) {
        match cur.peek() {
            Some(Tok::Word(_) | Tok::Quoted(_)) => {
                let word = cur.ident()?;
                if cur.is_sym(".") {
                    // A schema qualifier.
                    cur.pos += 1;
                    continue;
                }
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&word);
            }
            Some(Tok::Sym("(")) => {
                let from = cur.pos;
                cur.skip_one();
                let text: String = cur
                    .text_since(from)
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                out.push_str(&text);
            }
            Some(Tok::Sym("[")) => {
                cur.pos += 1;
                cur.expect_sym("]")?;
                out.push_str("[]");
            }
            _ => bail!("unexpected token in column type at {}", cur.context()),
        }
    }
    if out.is_empty() {
        bail!("missing column type at {}", cur.context());
    }
    Ok(out)
}

/// A DEFAULT expression: everything up to the next column-constraint word.
fn default_expr(cur: &mut Cur<'_>) -> Result<String> {
    let from = cur.pos;
    if cur.done() {
        bail!("missing DEFAULT expression");
    }
    cur.skip_one();
    while !cur.done() && !is_constraint_word(cur.peek()) {
        cur.skip_one();
    }
    Ok(cur.text_since(from))
}

fn alter_table(schema: &mut Schema, cur: &mut Cur<'_>) -> Result<()> {
    cur.eat_kws(&["if", "exists"]);
    cur.eat_kw("only");
    let name = cur.qualified()?;
    if cur.eat_kws(&["rename", "to"]) {
        let new_name = cur.ident()?;
        let mut table = schema
            .tables
            .remove(&name)
            .ok_or_else(|| anyhow!("ALTER TABLE on unknown table {name}"))?;
        table.name = new_name.clone();
        for t in schema.tables.values_mut() {
            for fk in &mut t.foreign_keys {
                if fk.ref_table == name {
                    fk.ref_table = new_name.clone();
                }
            }
        }
        for t in &mut schema.order {
            if *t == name {
                t.clone_from(&new_name);
            }
        }
        schema.tables.insert(new_name, table);
        return Ok(());
    }
    let actions = cur.split_commas();
    let Some(table) = schema.tables.get_mut(&name) else {
        // pg_dump emits `ALTER TABLE … OWNER TO` for sequences too; anything else is an error.
        if actions
            .iter()
            .all(|a| Cur::new(cur.src, a).eat_kws(&["owner", "to"]))
        {
            return Ok(());
        }
        bail!("ALTER TABLE on unknown table {name}");
    };
    for action in actions {
        let mut a = Cur::new(cur.src, action);
        alter_table_action(table, &mut a)?;
    }
    Ok(())
}

fn find_column<'t>(table: &'t mut Table, name: &str) -> Result<&'t mut Column> {
    let table_name = table.name.clone();
    table
        .columns
        .iter_mut()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow!("unknown column {table_name}.{name}"))
}

fn alter_table_action(table: &mut Table, cur: &mut Cur<'_>) -> Result<()> {
    if cur.eat_kw("add") {
        if cur.is_kw("constraint")
            || cur.is_kw("primary")
            || cur.is_kw("foreign")
            || cur.is_kw("unique")
            || cur.is_kw("check")
            || cur.is_kw("exclude")
        {
            return table_constraint(table, cur);
        }
        cur.eat_kw("column");
        cur.eat_kws(&["if", "not", "exists"]);
        let col = column_def(table, cur)?;
        if table.columns.iter().any(|c| c.name == col.name) {
            bail!("column {}.{} added twice", table.name, col.name);
        }
        table.columns.push(col);
    } else if cur.eat_kw("drop") {
        if cur.eat_kw("constraint") {
            cur.eat_kws(&["if", "exists"]);
            let name = cur.ident()?;
            table
                .foreign_keys
                .retain(|fk| fk.name.as_deref() != Some(name.as_str()));
            table.uniques.retain(|(n, _)| *n != name);
            if table.primary_key_name.as_deref() == Some(name.as_str()) {
                table.primary_key.clear();
                table.primary_key_name = None;
            }
        } else {
            cur.eat_kw("column");
            cur.eat_kws(&["if", "exists"]);
            let name = cur.ident()?;
            table.columns.retain(|c| c.name != name);
            table.foreign_keys.retain(|fk| !fk.columns.contains(&name));
        }
    } else if cur.eat_kw("alter") {
        cur.eat_kw("column");
        let name = cur.ident()?;
        let col = find_column(table, &name)?;
        if cur.eat_kws(&["set", "not", "null"]) {
            col.not_null = true;
        } else if cur.eat_kws(&["drop", "not", "null"]) {
            col.not_null = false;
        } else if cur.eat_kws(&["set", "default"]) {
            col.default = Some(default_expr(cur)?);
        } else if cur.eat_kws(&["drop", "default"]) {
            col.default = None;
        } else if cur.eat_kws(&["set", "data", "type"]) || cur.eat_kw("type") {
            col.type_text = column_type(cur)?;
        } else if cur.eat_kw("set") && (cur.eat_kw("statistics") || cur.eat_kw("storage")) {
        } else {
            bail!("unsupported ALTER COLUMN action at {}", cur.context());
        }
    } else if cur.eat_kw("rename") {
        if cur.eat_kw("constraint") {
            let old = cur.ident()?;
            cur.expect_kw("to")?;
            let new = cur.ident()?;
            for fk in &mut table.foreign_keys {
                if fk.name.as_deref() == Some(old.as_str()) {
                    fk.name = Some(new.clone());
                }
            }
            if table.primary_key_name.as_deref() == Some(old.as_str()) {
                table.primary_key_name = Some(new);
            }
        } else {
            cur.eat_kw("column");
            let old = cur.ident()?;
            cur.expect_kw("to")?;
            let new = cur.ident()?;
            find_column(table, &old)?.name.clone_from(&new);
            for c in table.primary_key.iter_mut().chain(
                table
                    .foreign_keys
                    .iter_mut()
                    .flat_map(|f| f.columns.iter_mut()),
            ) {
                if *c == old {
                    c.clone_from(&new);
                }
            }
        }
    } else if cur.eat_kws(&["owner", "to"]) {
    } else {
        bail!("unsupported ALTER TABLE action at {}", cur.context());
    }
    Ok(())
}

fn alter_type(schema: &mut Schema, cur: &mut Cur<'_>) -> Result<()> {
    let name = cur.qualified()?;
    let Some(labels) = schema.enums.get_mut(&name) else {
        return Ok(());
    };
    if cur.eat_kws(&["add", "value"]) {
        cur.eat_kws(&["if", "not", "exists"]);
        let Some(Tok::Str(label)) = cur.peek().cloned() else {
            bail!("expected a label at {}", cur.context());
        };
        cur.pos += 1;
        if labels.contains(&label) {
            return Ok(());
        }
        let before = cur.eat_kw("before");
        let after = !before && cur.eat_kw("after");
        let at = match cur.peek() {
            Some(Tok::Str(anchor)) if before || after => {
                let k = labels
                    .iter()
                    .position(|l| l == anchor)
                    .ok_or_else(|| anyhow!("unknown enum label {anchor}"))?;
                if before { k } else { k + 1 }
            }
            _ => labels.len(),
        };
        labels.insert(at, label);
    } else if cur.eat_kws(&["rename", "value"]) {
        let (Some(Tok::Str(old)), Some(Tok::Word(_)), Some(Tok::Str(new))) = (
            cur.toks.get(cur.pos).map(|t| &t.tok),
            cur.toks.get(cur.pos + 1).map(|t| &t.tok),
            cur.toks.get(cur.pos + 2).map(|t| &t.tok),
        ) else {
            bail!("malformed RENAME VALUE at {}", cur.context());
        };
        for l in labels.iter_mut() {
            if l == old {
                l.clone_from(new);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The Rust enums of `types/enums.rs`

#[derive(Debug)]
struct RustEnum {
    /// The Rust value type (`StateType`).
    name: String,
    /// The diesel SQL type (`StateTypeType`).
    sql: String,
    labels: Vec<String>,
}

/// Reads the `prefect_enum! { Name, NameType, "pg_name" { Variant = "LABEL", … } }` invocations.
fn parse_rust_enums(src: &str) -> Result<BTreeMap<String, RustEnum>> {
    let mut out = BTreeMap::new();
    for (at, _) in src.match_indices("prefect_enum! {") {
        let body = &src[at..];
        // The header is the first line ending in `{` after the doc comments.
        let header = body
            .lines()
            .skip(1)
            .map(str::trim)
            .find(|l| !l.starts_with("///") && !l.starts_with("#[") && !l.is_empty())
            .ok_or_else(|| anyhow!("malformed prefect_enum! in {ENUMS_FILE}"))?;
        let Some((names, rest)) = header.split_once('"') else {
            continue;
        };
        let Some((pg_name, _)) = rest.split_once('"') else {
            continue;
        };
        let parts: Vec<&str> = names
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        let [name, sql] = parts[..] else {
            bail!("malformed prefect_enum! header `{header}` in {ENUMS_FILE}");
        };
        // Labels: every `= "LABEL"` up to the closing brace of the variant list.
        let list_start = body.find(header).unwrap_or(0) + header.len();
        let list_end = body[list_start..]
            .find("\n    }")
            .map_or(body.len(), |e| list_start + e);
        let labels = body[list_start..list_end]
            .split("= \"")
            .skip(1)
            .filter_map(|s| s.split_once('"').map(|(l, _)| l.to_owned()))
            .collect();
        out.insert(
            pg_name.to_owned(),
            RustEnum {
                name: name.to_owned(),
                sql: sql.to_owned(),
                labels,
            },
        );
    }
    if out.is_empty() {
        bail!("no prefect_enum! found in {ENUMS_FILE}");
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// The model the generators work from

/// How a column's values are bound.
#[derive(Debug, Clone)]
struct RustType {
    /// The diesel SQL type in `table!` (`PUuid`, `Text`, `StateTypeType`).
    sql: String,
    /// The Rust value type (`Uuid`, `String`, `StateType`).
    rust: String,
    /// Bound through `Val` (a portable type on a foreign Rust type).
    wrapped: bool,
    /// One of the enums of `types/enums.rs`.
    is_enum: bool,
}

#[derive(Debug)]
struct ColumnModel {
    /// The SQL name.
    name: String,
    /// The Rust identifier (`type_` for `type`).
    ident: String,
    ty: RustType,
    not_null: bool,
    default: Option<String>,
    type_text: String,
}

#[derive(Debug)]
struct ForeignKeyModel {
    child: String,
    column: String,
    parent: String,
    name: String,
    on_delete: Option<String>,
    not_null: bool,
}

#[derive(Debug)]
struct TableModel {
    name: String,
    model: String,
    columns: Vec<ColumnModel>,
    primary_key: Vec<String>,
    /// Unique constraints and indexes: (name, columns), sorted by name.
    uniques: Vec<(String, Vec<String>)>,
}

struct Model {
    tables: Vec<TableModel>,
    foreign_keys: Vec<ForeignKeyModel>,
    /// Composite foreign keys, which diesel cannot join on (named, for a comment).
    composite_foreign_keys: Vec<String>,
}

/// Identifiers a column cannot have in a diesel `table!` or a Rust struct.
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
    // Names a `table!` module already defines.
    "table", "columns", "dsl", "star", "all_columns",
];

fn pascal(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut cs = part.chars();
            cs.next()
                .map(|c| c.to_ascii_uppercase().to_string() + cs.as_str())
                .unwrap_or_default()
        })
        .collect()
}

impl Model {
    fn build(schema: &Schema, enums: &BTreeMap<String, RustEnum>) -> Result<Model> {
        for (pg, labels) in &schema.enums {
            let e = enums.get(pg).ok_or_else(|| {
                anyhow!("enum type {pg} of the migrations has no prefect_enum! in {ENUMS_FILE}")
            })?;
            if &e.labels != labels {
                bail!(
                    "enum {pg}: the migrations declare {labels:?}, {ENUMS_FILE} has {:?}",
                    e.labels
                );
            }
        }
        let mut tables = Vec::new();
        for name in &schema.order {
            let Some(t) = schema.tables.get(name) else {
                continue;
            };
            if RESERVED.contains(&t.name.as_str()) {
                bail!("table name {} is a Rust keyword", t.name);
            }
            let mut columns = Vec::new();
            for c in &t.columns {
                let ty = map_type(&c.type_text, &schema.enums, enums)
                    .with_context(|| format!("column {}.{}", t.name, c.name))?;
                let ident = if RESERVED.contains(&c.name.as_str()) || c.name == t.name {
                    format!("{}_", c.name)
                } else {
                    c.name.clone()
                };
                if !ident
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
                {
                    bail!("column name {}.{} is not a Rust identifier", t.name, c.name);
                }
                columns.push(ColumnModel {
                    name: c.name.clone(),
                    ident,
                    ty,
                    not_null: c.not_null,
                    default: c.default.clone(),
                    type_text: c.type_text.clone(),
                });
            }
            if t.primary_key.is_empty() {
                bail!("table {} has no primary key", t.name);
            }
            let model = MODEL_NAME_OVERRIDES
                .iter()
                .find(|(tn, _)| *tn == t.name)
                .map_or_else(|| pascal(&t.name), |(_, m)| (*m).to_owned());
            let mut uniques = t.uniques.clone();
            uniques.sort();
            tables.push(TableModel {
                name: t.name.clone(),
                model,
                columns,
                primary_key: t.primary_key.clone(),
                uniques,
            });
        }
        let mut foreign_keys = Vec::new();
        let mut composite_foreign_keys = Vec::new();
        for name in &schema.order {
            let Some(t) = schema.tables.get(name) else {
                continue;
            };
            for fk in &t.foreign_keys {
                let fk_name = fk
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{}.{:?}", t.name, fk.columns));
                if !schema.tables.contains_key(&fk.ref_table) {
                    bail!(
                        "foreign key {fk_name} references unknown table {}",
                        fk.ref_table
                    );
                }
                if fk.columns.len() != 1 || fk.ref_columns.len() != 1 {
                    composite_foreign_keys.push(fk_name);
                    continue;
                }
                let column = fk.columns[0].clone();
                let not_null = t
                    .columns
                    .iter()
                    .find(|c| c.name == column)
                    .is_some_and(|c| c.not_null);
                foreign_keys.push(ForeignKeyModel {
                    child: t.name.clone(),
                    column,
                    parent: fk.ref_table.clone(),
                    name: fk_name,
                    on_delete: fk.on_delete.clone(),
                    not_null,
                });
            }
        }
        foreign_keys.sort_by(|a, b| (&a.child, &a.name).cmp(&(&b.child, &b.name)));
        let model = Model {
            tables,
            foreign_keys,
            composite_foreign_keys,
        };
        for d in PYTHON_DEFAULTS {
            model.column(d.table, d.column)?;
        }
        for (t, c, _) in PYTHON_DEFAULT_NOTES {
            model.column(t, c)?;
        }
        Ok(model)
    }

    fn column(&self, table: &str, column: &str) -> Result<&ColumnModel> {
        self.tables
            .iter()
            .find(|t| t.name == table)
            .and_then(|t| t.columns.iter().find(|c| c.name == column))
            .ok_or_else(|| anyhow!("the Python default table names {table}.{column}, which the migrations do not create"))
    }
}

fn map_type(
    type_text: &str,
    pg_enums: &BTreeMap<String, Vec<String>>,
    enums: &BTreeMap<String, RustEnum>,
) -> Result<RustType> {
    let base = type_text.split('(').next().unwrap_or(type_text).trim();
    let ty = |sql: &str, rust: &str, wrapped: bool, is_enum: bool| RustType {
        sql: sql.to_owned(),
        rust: rust.to_owned(),
        wrapped,
        is_enum,
    };
    let plain = |sql: &str, rust: &str| ty(sql, rust, false, false);
    let portable = |sql: &str, rust: &str| ty(sql, rust, true, false);
    Ok(match base {
        "uuid" => portable("PUuid", "Uuid"),
        "timestamp with time zone" | "timestamptz" => portable("PTimestamp", "DateTime<Utc>"),
        "interval" => portable("PInterval", "TimeDelta"),
        "jsonb" => portable("PJsonb", "serde_json::Value"),
        "json" => portable("PJson", "serde_json::Value"),
        "character varying" | "varchar" | "text" | "character" | "char" => plain("Text", "String"),
        "integer" | "int" | "int4" => plain("Integer", "i32"),
        "smallint" | "int2" => plain("SmallInt", "i16"),
        "bigint" | "int8" => plain("BigInt", "i64"),
        "double precision" | "float8" => plain("Double", "f64"),
        "real" | "float4" => plain("Float", "f32"),
        "boolean" | "bool" => plain("Bool", "bool"),
        other if pg_enums.contains_key(other) => {
            let e = enums
                .get(other)
                .ok_or_else(|| anyhow!("enum type {other} has no prefect_enum! in {ENUMS_FILE}"))?;
            ty(&e.sql, &e.name, false, true)
        }
        other => bail!("no portable type for SQL type `{other}`"),
    })
}

/// What the insert struct does with a column.
#[derive(Debug, Clone, Copy, PartialEq)]
enum InsertKind {
    /// `id`, `created`, `updated`: always written, set by `new`.
    Base,
    /// NOT NULL without any default: a parameter of `new`.
    Required,
    /// Always written (`T`), with a Python default set by `new`.
    Always,
    /// Nullable without a database default: `Option<T>`, always written (None is NULL).
    Nullable,
    /// Has a database default: `Option<T>`, None leaves the default.
    Defaulted,
}

impl ColumnModel {
    fn python_default(&self, table: &str) -> Option<&'static PythonDefault> {
        PYTHON_DEFAULTS
            .iter()
            .find(|d| d.table == table && d.column == self.name)
    }

    fn insert_kind(&self, table: &str) -> InsertKind {
        if matches!(self.name.as_str(), "id" | "created" | "updated") {
            return InsertKind::Base;
        }
        let py = self.python_default(table);
        if py.is_some_and(|d| d.always) {
            return InsertKind::Always;
        }
        match (self.default.is_some(), self.not_null, py.is_some()) {
            (true, _, _) => InsertKind::Defaulted,
            (false, false, _) => InsertKind::Nullable,
            (false, true, true) => InsertKind::Always,
            (false, true, false) => InsertKind::Required,
        }
    }

    /// The field type: `T` or `Option<T>`.
    fn field_type(&self) -> String {
        if self.not_null {
            self.ty.rust.clone()
        } else {
            format!("Option<{}>", self.ty.rust)
        }
    }

    /// The type bound for this column's value (`Val<T>`, `Val<Option<T>>`, `T`, `Option<T>`).
    fn bound_type(&self, nullable_value: bool) -> String {
        let inner = if nullable_value {
            format!("Option<{}>", self.ty.rust)
        } else {
            self.ty.rust.clone()
        };
        if self.ty.wrapped {
            format!("Val<{inner}>")
        } else {
            inner
        }
    }

    fn wrap(&self, value: &str) -> String {
        if self.ty.wrapped {
            format!("Val({value})")
        } else {
            value.to_owned()
        }
    }

    fn describe(&self) -> String {
        let mut s = format!("`{}`", self.type_text);
        s.push_str(if self.not_null {
            ", not null"
        } else {
            ", nullable"
        });
        if let Some(d) = &self.default {
            let _ = write!(s, ", database default `{d}`");
        }
        s
    }
}

const BACKEND_CHECKS: &str = r#"#[cfg_attr(
    all(feature = "postgres", feature = "sqlite"),
    diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))
)]
#[cfg_attr(
    all(feature = "postgres", not(feature = "sqlite")),
    diesel(check_for_backend(diesel::pg::Pg))
)]
#[cfg_attr(
    all(feature = "sqlite", not(feature = "postgres")),
    diesel(check_for_backend(diesel::sqlite::Sqlite))
)]
"#;

fn header(out: &mut String, inputs: &[&str]) {
    let _ = writeln!(out, "// @generated by `cargo xtask codegen`, do not edit.");
    let _ = writeln!(out, "// Source: {}.", inputs.join(", "));
    let _ = writeln!(
        out,
        "// Regenerate with `cargo xtask codegen`; CI runs `cargo xtask codegen --check`."
    );
    out.push('\n');
}

impl Model {
    fn schema_rs(&self, inputs: &[&str]) -> String {
        let mut out = String::new();
        header(&mut out, inputs);
        out.push_str(
            "//! The portable diesel schema of a Prefect 3.9.1 database: one `table!` per table, \
             columns in\n//! physical (PostgreSQL) order, typed with the portable SQL types of \
             [`crate::types`] so that the\n//! same schema serves PostgreSQL and SQLite.\n\n",
        );
        for t in &self.tables {
            let _ = writeln!(out, "diesel::table! {{");
            out.push_str("    use crate::types::*;\n    use diesel::sql_types::*;\n\n");
            let _ = writeln!(out, "    /// The `{}` table.", t.name);
            let pk: Vec<&str> = t
                .primary_key
                .iter()
                .map(|p| {
                    t.columns
                        .iter()
                        .find(|c| c.name == *p)
                        .map_or(p.as_str(), |c| c.ident.as_str())
                })
                .collect();
            let _ = writeln!(out, "    {} ({}) {{", t.name, pk.join(", "));
            for c in &t.columns {
                let _ = writeln!(out, "        /// {}", c.describe());
                if c.ident != c.name {
                    let _ = writeln!(out, "        #[sql_name = \"{}\"]", c.name);
                }
                let ty = if c.not_null {
                    c.ty.sql.clone()
                } else {
                    format!("Nullable<{}>", c.ty.sql)
                };
                let _ = writeln!(out, "        {} -> {},", c.ident, ty);
            }
            out.push_str("    }\n}\n\n");
        }
        // joinable!: one per (child, parent) pair — diesel implements JoinTo both ways, so a pair
        // counts in either direction — and none for self-references.
        let mut candidates: BTreeMap<(String, String), Vec<&ForeignKeyModel>> = BTreeMap::new();
        for fk in &self.foreign_keys {
            if fk.child == fk.parent {
                continue;
            }
            let key = if fk.child < fk.parent {
                (fk.child.clone(), fk.parent.clone())
            } else {
                (fk.parent.clone(), fk.child.clone())
            };
            candidates.entry(key).or_default().push(fk);
        }
        let mut chosen: BTreeSet<&str> = BTreeSet::new();
        for fks in candidates.values() {
            // An owning foreign key (ON DELETE CASCADE) wins, then a NOT NULL one, then DDL order.
            let best = fks
                .iter()
                .enumerate()
                .min_by_key(|(k, fk)| {
                    (fk.on_delete.as_deref() != Some("CASCADE"), !fk.not_null, *k)
                })
                .map(|(_, fk)| fk.name.as_str());
            if let Some(b) = best {
                chosen.insert(b);
            }
        }
        out.push_str(
            "// Foreign keys. diesel allows one `joinable!` per pair of tables (in either \
             direction) and none\n// for a self-reference: per pair the owning key (ON DELETE \
             CASCADE) wins, then a NOT NULL one,\n// then the first; the others are listed as \
             comments and need an explicit `.on(…)`.\n",
        );
        for fk in &self.foreign_keys {
            let on_delete = fk.on_delete.as_deref().unwrap_or("NO ACTION");
            let line = format!(
                "diesel::joinable!({} -> {} ({}));",
                fk.child,
                fk.parent,
                self.ident_of(&fk.child, &fk.column)
            );
            if chosen.contains(fk.name.as_str()) {
                let _ = writeln!(out, "{line} // {}, ON DELETE {on_delete}", fk.name);
            } else {
                let _ = writeln!(out, "// {line} // {}, ON DELETE {on_delete}", fk.name);
            }
        }
        for name in &self.composite_foreign_keys {
            let _ = writeln!(out, "// composite foreign key {name}: no joinable!");
        }
        out.push_str("\ndiesel::allow_tables_to_appear_in_same_query!(\n");
        for t in &self.tables {
            let _ = writeln!(out, "    {},", t.name);
        }
        out.push_str(");\n");
        out.push_str(
            "\n/// Every column declared above: (table, column, portable SQL type, nullable). Generated\n\
             /// from the same migrations as the `table!`s; a test compares it with live databases\n\
             /// migrated by our migrations on both dialects, so `schema.rs` cannot drift silently.\n\
             pub const COLUMNS: &[(&str, &str, &str, bool)] = &[\n",
        );
        for t in &self.tables {
            for c in &t.columns {
                let _ = writeln!(out, "    ({:?}, {:?}, {:?}, {}),", t.name, c.name, c.ty.sql, !c.not_null);
            }
        }
        out.push_str("];\n");
        out.push_str(
            "\n/// Every unique constraint and unique index: (table, name, columns). A unique violation is\n\
             /// reported by name on PostgreSQL and by its columns on SQLite; this maps one to the other.\n\
             pub const UNIQUE_CONSTRAINTS: &[(&str, &str, &[&str])] = &[\n",
        );
        for t in &self.tables {
            for (name, columns) in &t.uniques {
                let _ = writeln!(out, "    ({:?}, {:?}, &{:?}),", t.name, name, columns);
            }
        }
        out.push_str("];\n");
        out
    }

    fn ident_of<'s>(&'s self, table: &str, column: &'s str) -> &'s str {
        self.tables
            .iter()
            .find(|t| t.name == table)
            .and_then(|t| t.columns.iter().find(|c| c.name == column))
            .map_or(column, |c| c.ident.as_str())
    }

    fn models_rs(&self, inputs: &[&str]) -> String {
        let mut out = String::new();
        header(&mut out, inputs);
        out.push_str(
            "//! Typed models of every table, generated from the schema.\n//!\n\
             //! Per table `foo` (Rust name `Foo`):\n\
             //! - `Foo`: the full row (`Queryable`, `Selectable`, `Insertable`; `Identifiable` by \
             `Val<Uuid>`\n//!   where the primary key is `id`). Inserting it writes every column, \
             `None` as NULL.\n\
             //! - `NewFoo`: a normal insert. `NewFoo::new(required…)` sets a fresh v4 `id`, \
             `created` and\n//!   `updated` to [`crate::types::now`], Prefect's client-side \
             defaults where they differ from the\n//!   database's, and leaves every other \
             defaulted column to the database (`None` renders as\n//!   `DEFAULT` on \
             PostgreSQL and omits the column on SQLite).\n\
             //! - `FooChangeset`: an update. Every field is optional (`Option<Option<T>>` on \
             nullable columns,\n//!   so that `Some(None)` sets NULL) except `updated`, \
             which `FooChangeset::new()` sets to now:\n//!   Prefect has no trigger and every \
             update writes it.\n//!\n\
             //! Values of the portable types (UUIDs, timestamps, intervals, JSON) are bound \
             through\n//! [`Val`](crate::types::Val); that is why the insert and changeset \
             traits are implemented by hand.\n\n",
        );
        let mut uses: BTreeSet<String> = BTreeSet::new();
        let mut enums: BTreeSet<String> = BTreeSet::new();
        for t in &self.tables {
            for c in &t.columns {
                match c.ty.rust.as_str() {
                    "Uuid" => {
                        uses.insert("use uuid::Uuid;".to_owned());
                    }
                    "DateTime<Utc>" => {
                        uses.insert("use chrono::{DateTime, Utc};".to_owned());
                    }
                    "TimeDelta" => {
                        uses.insert("use chrono::TimeDelta;".to_owned());
                    }
                    _ => {}
                }
                if c.ty.is_enum {
                    enums.insert(c.ty.rust.clone());
                }
            }
        }
        let tables: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
        let _ = writeln!(out, "use crate::schema::{{{}}};", tables.join(", "));
        let mut types: Vec<String> = enums.into_iter().collect();
        types.push("Val".to_owned());
        let _ = writeln!(out, "use crate::types::{{{}}};", types.join(", "));
        for u in &uses {
            let _ = writeln!(out, "{u}");
        }
        out.push_str("use diesel::ExpressionMethods;\n\n");
        for t in &self.tables {
            self.row_struct(&mut out, t);
            self.insert_struct(&mut out, t);
            self.changeset_struct(&mut out, t);
            self.from_row_impls(&mut out, t);
        }
        out.push_str(
            "/// Calls the macro `$m` (a `macro_rules!` in scope at the call) once with every table whose\n\
             /// primary key is `id` and its three models, in schema order:\n\
             /// `$m! { agent => Agent, NewAgent, AgentChangeset; … }`. The per-table data access of\n\
             /// [`crate::access`] is implemented from this list, so no table can be left out.\n\
             #[macro_export]\n\
             macro_rules! for_each_table {\n    ($m:ident) => {\n        $m! {\n",
        );
        for t in &self.tables {
            if t.primary_key == ["id"] {
                let m = &t.model;
                let _ = writeln!(out, "            {} => {m}, New{m}, {m}Changeset;", t.name);
            }
        }
        out.push_str("        }\n    };\n}\n");
        out
    }

    fn row_struct(&self, out: &mut String, t: &TableModel) {
        let m = &t.model;
        let has_id = t.primary_key == ["id"];
        let _ = writeln!(
            out,
            "/// A full row of `{}`, every column in physical order.",
            t.name
        );
        let _ = writeln!(
            out,
            "#[derive(Debug, Clone, PartialEq, diesel::Queryable, diesel::Selectable, diesel::Insertable)]"
        );
        let _ = writeln!(out, "#[diesel(table_name = {})]", t.name);
        let _ = writeln!(out, "#[diesel(treat_none_as_default_value = false)]");
        out.push_str(BACKEND_CHECKS);
        let _ = writeln!(out, "pub struct {m} {{");
        for c in &t.columns {
            let _ = writeln!(out, "    /// `{}`: {}.", c.name, c.describe());
            if c.ty.wrapped {
                let wrapper = c.bound_type(!c.not_null);
                let _ = writeln!(
                    out,
                    "    #[diesel(serialize_as = {wrapper}, deserialize_as = {wrapper})]"
                );
            }
            let _ = writeln!(out, "    pub {}: {},", c.ident, c.field_type());
        }
        out.push_str("}\n\n");
        if has_id {
            let id = t.columns.iter().find(|c| c.name == "id");
            if let Some(id) = id {
                let id_ty = id.bound_type(false);
                let id_val = id.wrap("self.id");
                let _ = writeln!(
                    out,
                    "impl diesel::associations::HasTable for {m} {{\n    type Table = {t}::table;\n\n    \
                     fn table() -> Self::Table {{\n        {t}::table\n    }}\n}}\n\n\
                     impl diesel::Identifiable for &{m} {{\n    type Id = {id_ty};\n\n    \
                     fn id(self) -> Self::Id {{\n        {id_val}\n    }}\n}}\n",
                    t = t.name
                );
            }
        }
    }

    fn insert_struct(&self, out: &mut String, t: &TableModel) {
        let m = &t.model;
        let tn = &t.name;
        let _ = writeln!(
            out,
            "/// A normal insert into `{tn}`; build it with [`New{m}::new`]."
        );
        let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq)]");
        let _ = writeln!(out, "pub struct New{m} {{");
        let mut params = Vec::new();
        let mut inits = Vec::new();
        let mut uses_now = false;
        let mut tuple_types = Vec::new();
        let mut tuple_exprs = Vec::new();
        for c in &t.columns {
            let kind = c.insert_kind(tn);
            let py = c.python_default(tn);
            let note = PYTHON_DEFAULT_NOTES
                .iter()
                .find(|(nt, nc, _)| *nt == tn.as_str() && *nc == c.name);
            let mut doc = format!("`{}`: {}.", c.name, c.describe());
            let (field_ty, init) = match kind {
                InsertKind::Base => {
                    let init = match c.name.as_str() {
                        "id" if c.ty.rust == "Uuid" => "Uuid::new_v4()".to_owned(),
                        _ if c.ty.rust == "DateTime<Utc>" => {
                            uses_now = true;
                            "now".to_owned()
                        }
                        _ => {
                            params.push(format!("{}: {}", c.ident, c.ty.rust));
                            c.ident.clone()
                        }
                    };
                    doc.push_str(" Set by `new`.");
                    (c.field_type(), init)
                }
                InsertKind::Required => {
                    if c.ty.rust == "String" {
                        params.push(format!("{}: impl Into<String>", c.ident));
                        (c.field_type(), format!("{}.into()", c.ident))
                    } else {
                        params.push(format!("{}: {}", c.ident, c.ty.rust));
                        (c.field_type(), c.ident.clone())
                    }
                }
                InsertKind::Always => {
                    let py = py.map_or("?", |d| d.python);
                    let _ = write!(doc, " Always written; `new` sets Prefect's default `{py}`.");
                    (c.ty.rust.clone(), self.default_expr(c, tn, &mut uses_now))
                }
                InsertKind::Nullable => {
                    let init = match py {
                        Some(d) => {
                            let _ = write!(doc, " `new` sets Prefect's default `{}`.", d.python);
                            format!("Some({})", self.default_expr(c, tn, &mut uses_now))
                        }
                        None => "None".to_owned(),
                    };
                    doc.push_str(" `None` writes NULL.");
                    (format!("Option<{}>", c.ty.rust), init)
                }
                InsertKind::Defaulted => {
                    let init = match py {
                        Some(d) => {
                            let _ = write!(doc, " `new` sets Prefect's default `{}`.", d.python);
                            format!("Some({})", self.default_expr(c, tn, &mut uses_now))
                        }
                        None => "None".to_owned(),
                    };
                    doc.push_str(" `None` leaves the database default.");
                    (format!("Option<{}>", c.ty.rust), init)
                }
            };
            if let Some((_, _, py)) = note {
                let _ = write!(
                    doc,
                    " (Prefect's Python default `{py}` is the caller's to apply.)"
                );
            }
            let _ = writeln!(out, "    /// {doc}");
            let _ = writeln!(out, "    pub {}: {},", c.ident, field_ty);
            inits.push(if init == c.ident {
                init
            } else {
                format!("{}: {init}", c.ident)
            });
            let col = format!("{tn}::{}", c.ident);
            match kind {
                InsertKind::Base | InsertKind::Required | InsertKind::Always => {
                    tuple_types.push(format!("diesel::dsl::Eq<{col}, {}>", c.bound_type(false)));
                    tuple_exprs.push(format!(
                        "{col}.eq({})",
                        c.wrap(&format!("self.{}", c.ident))
                    ));
                }
                InsertKind::Nullable => {
                    tuple_types.push(format!("diesel::dsl::Eq<{col}, {}>", c.bound_type(true)));
                    tuple_exprs.push(format!(
                        "{col}.eq({})",
                        c.wrap(&format!("self.{}", c.ident))
                    ));
                }
                InsertKind::Defaulted => {
                    // A nullable column binds `Val<Option<T>>`: `types` has no
                    // `ToSql<Nullable<P>, _>` for a bare `Val<T>`.
                    let nullable = !c.not_null && c.ty.wrapped;
                    let value = if nullable { "Some(v)" } else { "v" };
                    tuple_types.push(format!(
                        "Option<diesel::dsl::Eq<{col}, {}>>",
                        c.bound_type(nullable)
                    ));
                    tuple_exprs.push(format!(
                        "self.{}.map(|v| {col}.eq({}))",
                        c.ident,
                        c.wrap(value)
                    ));
                }
            }
        }
        out.push_str("}\n\n");
        let _ = writeln!(out, "impl New{m} {{");
        let _ = writeln!(
            out,
            "    /// A new `{tn}` row: a fresh id, `created`/`updated` set to now, the given \
             required values,\n    /// Prefect's client-side defaults where they differ from \
             the database's, and every other\n    /// column left to its database default \
             (or NULL)."
        );
        if params.len() > 7 {
            let _ = writeln!(out, "    #[allow(clippy::too_many_arguments)]");
        }
        let _ = writeln!(out, "    pub fn new({}) -> Self {{", params.join(", "));
        if uses_now {
            let _ = writeln!(out, "        let now = crate::types::now();");
        }
        let _ = writeln!(out, "        Self {{ {} }}", inits.join(", "));
        out.push_str("    }\n}\n\n");
        if params.is_empty() {
            let _ = writeln!(
                out,
                "impl Default for New{m} {{\n    fn default() -> Self {{\n        Self::new()\n    }}\n}}\n"
            );
        }
        let values = format!("({},)", tuple_types.join(", "));
        let _ = writeln!(
            out,
            "impl diesel::Insertable<{tn}::table> for New{m} {{\n    \
             type Values = <{values} as diesel::Insertable<{tn}::table>>::Values;\n\n    \
             fn values(self) -> Self::Values {{\n        \
             diesel::Insertable::<{tn}::table>::values(({},))\n    }}\n}}\n\n\
             impl diesel::Insertable<{tn}::table> for &New{m} {{\n    \
             type Values = <New{m} as diesel::Insertable<{tn}::table>>::Values;\n\n    \
             fn values(self) -> Self::Values {{\n        \
             diesel::Insertable::<{tn}::table>::values(self.clone())\n    }}\n}}\n\n\
             impl diesel::internal::derives::insertable::UndecoratedInsertRecord<{tn}::table> for New{m} {{}}\n",
            tuple_exprs.join(", ")
        );
    }

    fn default_expr(&self, c: &ColumnModel, table: &str, uses_now: &mut bool) -> String {
        let expr = c
            .python_default(table)
            .map_or("Default::default()", |d| d.expr);
        if expr == "now" {
            *uses_now = true;
        }
        expr.to_owned()
    }

    /// `From<Row> for NewRow` (an insert writing every column of the row) and `From<Row> for
    /// RowChangeset` (an update setting every column but the key and `created` to the row's).
    fn from_row_impls(&self, out: &mut String, t: &TableModel) {
        let m = &t.model;
        let tn = &t.name;
        let mut caveat = String::new();
        let mut fields = Vec::new();
        for c in &t.columns {
            let f = &c.ident;
            let value = match c.insert_kind(tn) {
                InsertKind::Base | InsertKind::Required | InsertKind::Always | InsertKind::Nullable => format!("row.{f}"),
                InsertKind::Defaulted if c.not_null => format!("Some(row.{f})"),
                InsertKind::Defaulted => {
                    let _ = write!(
                        caveat,
                        " A NULL `{}` is written as the column's database default (`None` leaves it).",
                        c.name
                    );
                    format!("row.{f}")
                }
            };
            fields.push(format!("{f}: {value}"));
        }
        let _ = writeln!(
            out,
            "/// Every column of a stored row as an insert that writes them all (id and timestamps kept).{caveat}"
        );
        let _ = writeln!(out, "impl From<{m}> for New{m} {{");
        let _ = writeln!(out, "    fn from(row: {m}) -> Self {{");
        let _ = writeln!(out, "        Self {{ {} }}", fields.join(", "));
        out.push_str("    }\n}\n\n");
        let mut fields = Vec::new();
        for c in &t.columns {
            if c.name == "id" || c.name == "created" || t.primary_key.contains(&c.name) {
                continue;
            }
            let f = &c.ident;
            if c.name == "updated" && c.not_null && c.ty.rust == "DateTime<Utc>" {
                fields.push(format!("{f}: row.{f}"));
            } else {
                fields.push(format!("{f}: Some(row.{f})"));
            }
        }
        let _ = writeln!(
            out,
            "/// An update that sets every column of `{tn}` but the key and `created` to the row's values \
             (its `updated` included)."
        );
        let _ = writeln!(out, "impl From<{m}> for {m}Changeset {{");
        let _ = writeln!(out, "    fn from(row: {m}) -> Self {{");
        let _ = writeln!(out, "        Self {{ {} }}", fields.join(", "));
        out.push_str("    }\n}\n\n");
    }

    fn changeset_struct(&self, out: &mut String, t: &TableModel) {
        let m = &t.model;
        let tn = &t.name;
        let _ = writeln!(
            out,
            "/// An update of `{tn}`: `None` leaves a column unchanged{}; build it with \
             [`{m}Changeset::new`].",
            if t.columns.iter().any(|c| c.name == "updated") {
                ", `updated` is always set"
            } else {
                ""
            }
        );
        let _ = writeln!(out, "#[derive(Debug, Clone, PartialEq)]");
        let _ = writeln!(out, "pub struct {m}Changeset {{");
        let mut inits = Vec::new();
        let mut types = Vec::new();
        let mut exprs = Vec::new();
        for c in &t.columns {
            if c.name == "id" || c.name == "created" || t.primary_key.contains(&c.name) {
                continue;
            }
            let col = format!("{tn}::{}", c.ident);
            if c.name == "updated" && c.not_null && c.ty.rust == "DateTime<Utc>" {
                let _ = writeln!(
                    out,
                    "    /// `updated`: always written; `new` sets it to now."
                );
                let _ = writeln!(out, "    pub updated: {},", c.ty.rust);
                inits.push("updated: crate::types::now()".to_owned());
                types.push(format!("diesel::dsl::Eq<{col}, {}>", c.bound_type(false)));
                exprs.push(format!("{col}.eq({})", c.wrap("self.updated")));
                continue;
            }
            if c.not_null {
                let _ = writeln!(out, "    /// `{}`: {}.", c.name, c.describe());
                let _ = writeln!(out, "    pub {}: Option<{}>,", c.ident, c.ty.rust);
            } else {
                let _ = writeln!(
                    out,
                    "    /// `{}`: {}. `Some(None)` sets NULL.",
                    c.name,
                    c.describe()
                );
                let _ = writeln!(out, "    pub {}: Option<Option<{}>>,", c.ident, c.ty.rust);
            }
            inits.push(format!("{}: None", c.ident));
            types.push(format!(
                "Option<diesel::dsl::Eq<{col}, {}>>",
                c.bound_type(!c.not_null)
            ));
            exprs.push(format!(
                "self.{}.map(|v| {col}.eq({}))",
                c.ident,
                c.wrap("v")
            ));
        }
        out.push_str("}\n\n");
        let _ = writeln!(
            out,
            "impl {m}Changeset {{\n    /// A changeset that only sets `updated` to now; set the \
             fields to change.\n    pub fn new() -> Self {{\n        Self {{ {} }}\n    }}\n}}\n\n\
             impl Default for {m}Changeset {{\n    fn default() -> Self {{\n        Self::new()\n    }}\n}}\n",
            inits.join(", ")
        );
        let changes = format!("({},)", types.join(", "));
        let _ = writeln!(
            out,
            "impl diesel::AsChangeset for {m}Changeset {{\n    type Target = {tn}::table;\n    \
             type Changeset = <{changes} as diesel::AsChangeset>::Changeset;\n\n    \
             fn as_changeset(self) -> Self::Changeset {{\n        \
             diesel::AsChangeset::as_changeset(({},))\n    }}\n}}\n\n\
             impl diesel::AsChangeset for &{m}Changeset {{\n    type Target = {tn}::table;\n    \
             type Changeset = <{m}Changeset as diesel::AsChangeset>::Changeset;\n\n    \
             fn as_changeset(self) -> Self::Changeset {{\n        \
             diesel::AsChangeset::as_changeset(self.clone())\n    }}\n}}\n",
            exprs.join(", ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pg_dump_shapes() -> Result<()> {
        let sql = r#"
\restrict abc
-- comment; with a semicolon
CREATE TYPE public.state_type AS ENUM ('A', 'B');
CREATE TABLE public.t (
    id uuid DEFAULT gen_random_uuid() NOT NULL,
    "end" timestamp with time zone NOT NULL,
    note character varying(32) DEFAULT ''::character varying NOT NULL,
    s public.state_type,
    CONSTRAINT ck CHECK ((note <> 'x'))
);
CREATE TABLE u (id uuid PRIMARY KEY, t_id uuid REFERENCES t (id) ON DELETE SET NULL);
ALTER TABLE ONLY public.t ADD CONSTRAINT pk_t PRIMARY KEY (id);
ALTER TABLE t ADD COLUMN extra jsonb, ALTER COLUMN note DROP DEFAULT;
ALTER TYPE state_type ADD VALUE 'C' BEFORE 'B';
CREATE INDEX ix ON public.t USING btree (note);
"#;
        let mut schema = Schema::default();
        apply_sql(&mut schema, sql)?;
        assert_eq!(schema.enums["state_type"], ["A", "C", "B"]);
        let t = &schema.tables["t"];
        assert_eq!(t.primary_key, ["id"]);
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "end", "note", "s", "extra"]);
        assert_eq!(t.columns[0].default.as_deref(), Some("gen_random_uuid()"));
        assert_eq!(t.columns[2].type_text, "character varying(32)");
        assert!(t.columns[2].default.is_none());
        assert_eq!(t.columns[3].type_text, "state_type");
        assert!(!t.columns[3].not_null);
        let u = &schema.tables["u"];
        assert_eq!(u.primary_key, ["id"]);
        assert_eq!(u.foreign_keys[0].ref_table, "t");
        assert_eq!(u.foreign_keys[0].on_delete.as_deref(), Some("SET NULL"));
        Ok(())
    }
}
