//! `cargo docker-release`: turns a crate, or every service crate of a workspace, into a released,
//! tested, traceable container image.
//!
//! The pipeline is the architecture:
//!
//! ```text
//! manifest -> plan -> dockerfile -> build -> test -> tag -> push -> report
//! ```
//!
//! [`config`] and [`workspace`] read the manifests, [`git`] the revision, [`plan`] decides (purely)
//! what the release does, [`dockerfile`] renders or validates the Dockerfile (the language itself,
//! tokenizer and escaping, is the leaf [`dockerfile_syntax`]), [`pipeline`] sequences
//! the steps for every service through [`engine`] (the Docker Engine API) and [`registry`], the
//! test stage's [`checks`] prove the image, and [`report`] records the result. [`commands`] holds
//! one file per subcommand. [`ui`] is the only module that prints.
#![warn(missing_docs, clippy::print_stdout, clippy::print_stderr)]
// Errors are the cold path and carry the manifest text for their snippets; boxing buys nothing.
#![allow(clippy::result_large_err)]

pub mod build_context;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod docker_config;
pub mod dockerfile;
pub mod dockerfile_syntax;
pub mod engine;
pub mod error;
pub mod features;
pub mod git;
pub mod http;
pub mod image;
pub mod interrupt;
pub mod pipeline;
pub mod plan;
pub mod registry;
pub mod report;
pub mod rustflags;
pub mod signal;
pub mod supply_chain;
pub mod toolchain;
pub mod ui;
pub mod workspace;
