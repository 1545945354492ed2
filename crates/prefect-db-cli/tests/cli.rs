//! The `prefect-db` binary: help, a copy between two SQLite files of the real fixture, and the
//! refusal of a non-empty target with a clear message and a failing exit status.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/prefect-3.9.1.sqlite.db")
}

fn prefect_db() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prefect-db"));
    cmd.env_remove("RUST_BACKTRACE");
    cmd
}

#[test]
fn help_lists_the_copy_options() {
    let out = prefect_db().args(["copy", "--help"]).output().expect("runs");
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--from", "--to", "--replace", "--batch-size"] {
        assert!(text.contains(flag), "{flag} in {text}");
    }
}

#[test]
fn copies_sqlite_to_sqlite_and_refuses_a_full_target() {
    let dir = tempfile_dir();
    let src = dir.join("src.db");
    std::fs::copy(fixture(), &src).expect("copy fixture");
    let dst = dir.join("dst.db");
    let from = format!("sqlite+aiosqlite:///{}", src.display());
    let to = format!("sqlite:///{}", dst.display());

    let out = prefect_db().args(["copy", "--from", &from, "--to", &to, "--batch-size", "100"]).output().expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("flow_run: done, 21 rows"), "plain lines when not a terminal: {stdout}");
    assert!(stdout.contains("rows/s"), "{stdout}");
    assert!(stdout.contains("checksums of every table match"), "{stdout}");

    let out = prefect_db().args(["copy", "--from", &from, "--to", &to]).output().expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not empty") && stderr.contains("--replace"), "{stderr}");

    let out = prefect_db().args(["copy", "--from", &from, "--to", &to, "--replace"]).output().expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prefect-db-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
