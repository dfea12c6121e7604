//! The test stage: a container of the exact image just built, readiness, checks, shutdown.
//!
//! PLACEHOLDER: the interface the pipeline calls; the runner lands with the test-stage work.

use serde::Serialize;

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Name shown to people and in JUnit, e.g. `ready: http GET /healthz`.
    pub name: String,
    /// `structure`, `ready`, `exec`, `cargo`, `host`, `http`, `shutdown`.
    pub kind: String,
    /// Whether it passed.
    pub passed: bool,
    /// How long it took.
    pub duration_ms: u64,
    /// Output worth showing (on failure especially).
    pub output: String,
}

/// Everything the test stage did for one image.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    /// Checks in the order they ran.
    pub checks: Vec<CheckResult>,
}
