//! `plan`: what a release would do, knowing the releases the local engine already has (read
//! only); without an engine the plan is still printed, as if no release existed yet.
//!
//! `plan --matrix`: the services a release still has to build, as the JSON a CI matrix takes
//! directly (`{"include":[{"package":…,"image":…,"version":…,"revision":…},…]}`), one line on
//! stdout.
//!
//! The registry is the source of truth: a service whose immutable tags of this revision are all
//! there, carrying this revision's labels (what `promote` checks), is already current and is left
//! out. A registry that cannot be read fails the command (exit 1) rather than guess: building a
//! service again would only conflict with its immutable tags.

use clap::Args;
use serde::Serialize;

use super::GlobalArgs;
use crate::config::Strategy;
use crate::engine::Engine;
use crate::error::Result;
use crate::pipeline::planning::make_plan;
use crate::pipeline::promote;
use crate::plan::{ImagePlan, KnownReleases};
use crate::ui::{Shell, Verbosity};
use crate::workspace::Workspace;

/// `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Print the services a release still has to build, as a CI matrix (`{"include":[…]}`),
    /// skipping those whose immutable tags of this revision are already in the registry
    #[arg(long)]
    pub matrix: bool,
}

/// `plan [--matrix]`.
pub fn run(global: &GlobalArgs, args: &PlanArgs, shell: &Shell) -> Result<()> {
    if args.matrix {
        super::block_on(matrix(global, shell))
    } else {
        super::block_on(plan(global, shell))
    }
}

/// The plan, with the releases the local engine knows.
async fn plan(global: &GlobalArgs, shell: &Shell) -> Result<()> {
    let (ws, services) = global.load_services(true)?;
    let repositories: Vec<&str> = services.iter().map(|s| s.config.image.as_str()).collect();
    let known = match Engine::connect().await {
        Ok(engine) => crate::pipeline::tag::known_releases(&engine, &repositories).await?,
        Err(e) => {
            shell.warn(format!(
                "{e}; floating tags are planned as if no release existed yet"
            ));
            KnownReleases::new()
        }
    };
    let plan = make_plan(&services, &known, &global.plan_options())?;
    crate::report::print_plan(shell, &plan)?;
    for image in &plan.images {
        shell.status(
            "Image",
            format!("{}: {}", image.package, maker(&ws, image)?),
        );
    }
    if shell.verbosity() >= Verbosity::Verbose {
        for image in plan
            .images
            .iter()
            .filter(|p| p.config.strategy == Strategy::Docker)
        {
            note_exceptions(&ws, image, shell)?;
        }
    }
    Ok(())
}

/// How `image` will be made: assembled by the tool (reproducible), or by a builder and why.
fn maker(ws: &Workspace, image: &ImagePlan) -> Result<String> {
    use crate::pipeline::{assemble, build};
    let rendered = crate::dockerfile::rendered_in(ws, image)?;
    let env = build::docker_buildkit_env(std::env::var("DOCKER_BUILDKIT").ok().as_deref())?;
    let choice = build::choose_builder(image.config.buildkit, env, true);
    let args = build::build_args(image, &rendered);
    Ok(match assemble::maker(image, &rendered, &args, choice) {
        assemble::Maker::Assembled(_) => {
            "assembled by the tool (reproducible: the same commit is the same image ID and digest)"
                .to_owned()
        }
        assemble::Maker::Builder(why) => format!("built by {}: {why}", choice.builder()),
    })
}

/// `plan -v`: the files the user's `.dockerignore` sends although a built-in pattern would
/// leave them out.
fn note_exceptions(ws: &Workspace, image: &ImagePlan, shell: &Shell) -> Result<()> {
    let rendered = crate::dockerfile::rendered_in(ws, image)?;
    let summary = crate::build_context::context_summary(
        &image.config.context,
        &rendered.dockerignore,
        image.config.dockerfile.as_deref(),
    )?;
    for sent in &summary.sent_by_exception {
        shell.note(format!("{}: {sent}", image.package));
    }
    Ok(())
}

/// One job of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct MatrixEntry {
    /// Cargo package (`-p` of the job's release).
    pub package: String,
    /// Image repository.
    pub image: String,
    /// Crate version.
    pub version: String,
    /// Full revision the job releases.
    pub revision: String,
}

/// `{"include": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// One entry per service to build.
    pub include: Vec<MatrixEntry>,
}

/// Prints the matrix of the selected services that are not current in the registry.
async fn matrix(global: &GlobalArgs, shell: &Shell) -> Result<()> {
    let (_, services) = global.load_services(true)?;
    let images: Vec<&str> = services.iter().map(|s| s.config.image.as_str()).collect();
    let registries = promote::connect_registries(&images).await?;
    let known = promote::known_releases(&registries, &images).await?;
    let plan = make_plan(&services, &known, &global.plan_options())?;
    let mut include = Vec::new();
    for image in &plan.images {
        if promote::is_current(&registries, image).await? {
            shell.status(
                "Skipping",
                format!(
                    "{} {}: {} of revision {} is already in the registry",
                    image.package,
                    image.version,
                    image.primary_reference(),
                    &image.revision[..12]
                ),
            );
            continue;
        }
        include.push(MatrixEntry {
            package: image.package.clone(),
            image: image.image.clone(),
            version: image.version.clone(),
            revision: image.revision.clone(),
        });
    }
    let json = serde_json::to_string(&Matrix { include }).expect("matrices serialize");
    shell.stdout(&format!("{json}\n"))
}
