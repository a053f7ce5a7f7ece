//! Running the `es` binary in the end-to-end tests, against a PostgreSQL schema or a SQLite file. Each test binary
//! uses the part it needs.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;
use tests::database_url;

pub(crate) const ES: &str = env!("CARGO_BIN_EXE_es");

/// The control plane of a test's runner: instance `instance`, quick to poll and to report.
pub(crate) fn quick_control(instance: &str) -> es_core::control::ControlOptions {
    es_core::control::ControlOptions::new()
        .instance(instance)
        .poll(Duration::from_millis(50))
        .report_every(Duration::from_millis(200))
}

/// Where `es` finds the store.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target<'a> {
    /// `--schema SCHEMA`, on the tests' database.
    Schema(&'a str),
    /// `--sqlite FILE`.
    File(&'a Path),
}

/// Runs `es TARGET ARGS...`.
pub(crate) fn es(target: Target<'_>, args: &[&str]) -> Output {
    let mut command = Command::new(ES);
    match target {
        Target::Schema(schema) => command
            .arg("--schema")
            .arg(schema)
            .env("DATABASE_URL", database_url()),
        Target::File(file) => command.arg("--sqlite").arg(file),
    };
    command.args(args).output().expect("run es")
}

/// Runs `es`, expects exit code `code`, returns its stdout.
#[track_caller]
pub(crate) fn es_expect(target: Target<'_>, args: &[&str], code: i32) -> String {
    let out = es(target, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "es {args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    stdout
}

/// Runs `es ARGS... --json`, expects success, returns what it printed.
#[track_caller]
pub(crate) fn es_json(target: Target<'_>, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    let out = es_expect(target, &all, 0);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("es {args:?} printed no JSON ({e}): {out}"))
}

/// Polls `es projections status ledger --json` until `check` holds (at most 30 s).
pub(crate) fn status_until(
    target: Target<'_>,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Value {
    let started = std::time::Instant::now();
    let mut last = Value::Null;
    while started.elapsed() < Duration::from_secs(30) {
        let out = es(target, &["projections", "status", "ledger", "--json"]);
        if out.status.success() {
            last = serde_json::from_slice::<Value>(&out.stdout).unwrap()[0].clone();
            if check(&last) {
                return last;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("ledger never got {what}; last status {last:#}");
}
