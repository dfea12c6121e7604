//! The release report (JSON, `target/docker-release/report.json`) and the human summary.
//! Filled in by the release pipeline.
