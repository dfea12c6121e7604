//! The integration tests: one binary, as cargo's own testsuite is, with every area a module and
//! one support tree. They drive the real Docker engine, real git repositories and a real registry,
//! and never pull an image (see `support`).
//!
//! A new area is one file here and one `mod` line below; it imports what it needs from
//! `crate::support` (e.g. `use crate::support::{project, TestImages}` or
//! `use crate::support::service::*` for the release fixture service). Run one area with
//! `cargo test --test testsuite AREA::`.

mod support;

mod assembled;
mod context_exceptions;
mod dockerfile;
mod engine_faults;
mod features;
mod first_contact;
mod github_actions;
mod hostile;
mod infra;
mod init;
mod init_bins;
mod keep_going;
mod plan;
mod preflight;
mod promote;
mod push;
mod registry_client;
mod registry_self_signed;
mod registry_upload;
mod release;
mod remote_engine;
mod revisions;
mod sbom;
mod signals;
mod signing;
mod supply_chain;
mod test_stage;
mod test_stage_config;
mod test_stage_example;
mod test_stage_interrupt;
mod test_stage_smoke;
