//! `cargo xtask tidy`: the architecture invariants, checked. The same checks run as tests of
//! this crate, so `cargo test` enforces them.
//!
//! - Dependency edges: the connection vocabulary knows nothing of settings, pools, the schema or
//!   the queries; the ORM crate knows nothing of pools, settings or figment; the settings crate
//!   knows nothing of the schema, models or queries; the query components know nothing of the
//!   interface.
//! - Only `prefect-db-config` reads the environment (test tooling excepted).
//! - Every library crate's `lib.rs` opens with a `//!` doc of its one job.

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

/// (crate, dependencies it must not have, even indirectly, in normal builds)
const FORBIDDEN: &[(&str, &[&str])] = &[
    (
        "prefect-db-conn",
        &["deadpool", "figment", "prefect-db-config", "prefect-orm", "prefect-query-components", "prefect-db-interface"],
    ),
    ("prefect-orm", &["deadpool", "figment", "prefect-db-config", "prefect-query-components", "prefect-db-interface"]),
    ("prefect-db-config", &["prefect-orm", "prefect-query-components", "prefect-db-interface"]),
    ("prefect-query-components", &["prefect-db-interface"]),
];

/// Crates allowed to read environment variables.
const ENV_READERS: &[&str] = &["prefect-db-config", "prefect-db-test"];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

/// Runs every check; returns the violations found.
pub fn violations() -> Result<Vec<String>> {
    let mut found = dependency_violations()?;
    found.extend(source_violations()?);
    Ok(found)
}

/// Prints the violations and fails when there are any.
pub fn run() -> Result<()> {
    let found = violations()?;
    for v in &found {
        println!("{v}");
    }
    if !found.is_empty() {
        bail!("{} architecture invariant(s) broken", found.len());
    }
    println!("tidy: all invariants hold");
    Ok(())
}

fn dependency_violations() -> Result<Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut found = Vec::new();
    for (krate, forbidden) in FORBIDDEN {
        let out = Command::new(&cargo)
            .current_dir(workspace_root())
            .args(["tree", "-p", krate, "-e", "normal", "--prefix", "none", "--format", "{p}"])
            .output()
            .with_context(|| format!("cargo tree -p {krate}"))?;
        if !out.status.success() {
            bail!("cargo tree -p {krate}: {}", String::from_utf8_lossy(&out.stderr));
        }
        let tree = String::from_utf8_lossy(&out.stdout);
        for dep in *forbidden {
            if tree.lines().any(|l| l.split_whitespace().next() == Some(dep)) {
                found.push(format!("{krate} depends on {dep} (forbidden: see docs/ARCHITECTURE.md)"));
            }
        }
    }
    Ok(found)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn source_violations() -> Result<Vec<String>> {
    let root = workspace_root();
    let mut found = Vec::new();
    let crates_dir = root.join("crates");
    for entry in std::fs::read_dir(&crates_dir).context("crates/")?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let src = entry.path().join("src");
        let lib = src.join("lib.rs");
        if lib.exists() {
            let text = std::fs::read_to_string(&lib)?;
            if !text.trim_start().starts_with("//!") {
                found.push(format!("crates/{name}/src/lib.rs does not open with a `//!` doc of its job"));
            }
        }
        if ENV_READERS.contains(&name.as_str()) {
            continue;
        }
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file)?;
            for (i, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if code.contains("env::var(") || code.contains("env::vars(") || code.contains("env::var_os(") {
                    let rel = file.strip_prefix(&root).unwrap_or(&file).display().to_string();
                    found.push(format!("{rel}:{}: reads the environment; only prefect-db-config may", i + 1));
                }
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #[test]
    fn architecture_invariants_hold() {
        let found = super::violations().unwrap_or_else(|e| vec![e.to_string()]);
        assert!(found.is_empty(), "{}", found.join("\n"));
    }
}
