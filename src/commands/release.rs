//! The release itself (no subcommand): the flags of the pipeline, handed to
//! [`crate::pipeline::release`].

use camino::Utf8PathBuf;
use clap::{Args, ValueEnum};

use super::GlobalArgs;
use crate::error::Result;
use crate::pipeline::{self, ReleaseOptions};
use crate::ui::Shell;

/// Options of the release pipeline.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Release Options")]
pub struct ReleaseArgs {
    /// Push every tag to the registry after the tests pass
    #[arg(long)]
    pub push: bool,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Services built and tested at once [default: number of CPUs]
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Tag (and push) the services that passed even when another failed; by default a
    /// workspace release is all or none
    #[arg(long)]
    pub keep_going: bool,
    /// Keep the container of a failed test and print how to reach it
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Overwrite an existing immutable tag (X.Y.Z or SHA) that points to another image
    #[arg(long)]
    pub force: bool,
    /// Write an HTML timeline of every service's phases to target/docker-release-timings/
    #[arg(long)]
    pub timings: bool,
    /// Sign each pushed image, its SBOM and its provenance with this cosign key: a PEM file or
    /// env://VAR (its password in COSIGN_PASSWORD); overrides the manifests' `sign-key`
    #[arg(long, value_name = "KEY", requires = "push")]
    pub sign_key: Option<String>,
    /// Write a JUnit XML report of the tests to PATH
    #[arg(long, value_name = "PATH")]
    pub junit: Option<Utf8PathBuf>,
    /// Run one stage of a release split across CI jobs: `immutable` pushes only the version, SHA
    /// and extra tags (then `promote` moves the floating ones for every service at once)
    #[arg(long, value_enum, value_name = "STAGE", requires = "push")]
    pub stage: Option<Stage>,
}

/// `--stage`: the part of a release one CI job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// Build, test and push only the immutable tags; nothing floating moves.
    Immutable,
}

/// The release: every selected service through the pipeline.
pub fn run(global: &GlobalArgs, args: &ReleaseArgs, shell: &Shell) -> Result<()> {
    let options = ReleaseOptions {
        selection: global.selection(),
        plan: global.plan_options(),
        push: args.push,
        dry_run: args.dry_run,
        jobs: args.jobs,
        keep_on_failure: args.keep_on_failure,
        force: args.force,
        junit: args.junit.clone(),
        immutable_only: args.stage == Some(Stage::Immutable),
        keep_going: args.keep_going,
        timings: args.timings,
        sign_key: args.sign_key.clone(),
    };
    super::block_on(pipeline::release(&options, shell))
}
