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
//! what the release does, [`dockerfile`] renders or validates the Dockerfile, [`pipeline`] sequences
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
pub mod engine;
pub mod error;
pub mod git;
pub mod http;
pub mod interrupt;
pub mod pipeline;
pub mod plan;
pub mod registry;
pub mod report;
pub mod toolchain;
pub mod ui;
pub mod workspace;

use cli::{Cli, Command, GlobalArgs, MessageFormat};
use error::Result;
use plan::{KnownReleases, PlanOptions, ReleasePlan};
use ui::Shell;
use workspace::{Service, Workspace};

/// The output shell the command line asks for.
pub fn shell_for(cli: &Cli) -> Shell {
    let Cli::DockerRelease(args) = cli;
    let g = &args.global;
    Shell::new(g.verbose, g.quiet, g.color, g.message_format)
}

/// Runs the command line.
pub fn run(cli: Cli, shell: &Shell) -> Result<()> {
    let Cli::DockerRelease(args) = cli;
    let global = &args.global;
    match args.command {
        Some(Command::Plan(plan)) if plan.matrix => block_on(commands::plan::matrix(global, shell)),
        Some(Command::Plan(_)) => block_on(plan_command(global, shell)),
        Some(Command::Promote) => block_on(commands::promote::promote(global, shell)),
        Some(Command::Init) => {
            let ws = Workspace::load(&global.selection())?;
            for package in ws.select(&global.selection(), false)? {
                let path = commands::init::init(&ws, package)?;
                shell.status("Adding", format!("[package.metadata.docker] to {path}"));
            }
            Ok(())
        }
        Some(Command::Inspect(inspect)) => block_on(inspect_command(&inspect.image, shell)),
        Some(Command::Prune(prune)) => block_on(prune_command(global, prune.keep, shell)),
        None => block_on(pipeline::release(global, &args.release, shell)),
        Some(Command::Dockerfile(args)) => dockerfile::dockerfile_command(shell, global, &args),
        Some(Command::Lint(args)) => dockerfile::lint_command(shell, global, &args),
    }
}

/// `plan`: what a release would do, knowing the releases the local engine already has (read
/// only). Without an engine the plan is still printed, as if no release existed yet.
async fn plan_command(global: &GlobalArgs, shell: &Shell) -> Result<()> {
    let (_, services) = load_services(global, true)?;
    let repositories: Vec<&str> = services.iter().map(|s| s.config.image.as_str()).collect();
    let known = match engine::Engine::connect().await {
        Ok(engine) => crate::pipeline::tag::known_releases(&engine, &repositories).await?,
        Err(e) => {
            shell.warn(format!(
                "{e}; floating tags are planned as if no release existed yet"
            ));
            KnownReleases::new()
        }
    };
    let plan = make_plan(&services, &known, &plan_options(global))?;
    print_plan(shell, &plan)
}

/// Reads the workspace and resolves every selected service's configuration.
pub fn load_services(
    global: &GlobalArgs,
    require_section: bool,
) -> Result<(Workspace, Vec<Service>)> {
    let selection = global.selection();
    selection.features.check_names()?;
    let ws = Workspace::load(&selection)?;
    let services = ws
        .select(&selection, require_section)?
        .into_iter()
        .map(|p| {
            let service = ws.service(p)?;
            selection.features.check_required(p, &service.config.bin)?;
            Ok(service)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((ws, services))
}

/// Reads each service's revision from git and computes the release plan.
pub fn make_plan(
    services: &[Service],
    known: &KnownReleases,
    options: &PlanOptions,
) -> Result<ReleasePlan> {
    let Some(first) = services.first() else {
        return Ok(ReleasePlan { images: Vec::new() });
    };
    let repo = git::open(&first.package.workspace_root)?;
    let queries: Vec<git::RevisionQuery<'_>> = services
        .iter()
        .map(|s| git::RevisionQuery {
            package: &s.package.name,
            inputs: &s.inputs,
            mode: s.config.revision,
        })
        .collect();
    let revisions = git::revisions(&repo, &queries)?;
    let mut images = Vec::new();
    for (service, revision) in services.iter().zip(revisions) {
        let known = known
            .get(&service.config.image)
            .map(Vec::as_slice)
            .unwrap_or_default();
        images.push(plan::plan_image(
            &service.package,
            &service.config,
            &revision,
            known,
            options,
        )?);
    }
    Ok(ReleasePlan { images })
}

/// Plan options from the command line and the CI environment.
pub fn plan_options(global: &GlobalArgs) -> PlanOptions {
    PlanOptions {
        allow_dirty: global.allow_dirty,
        ci_run_url: ci_run_url(),
        features: global.selection().features,
    }
}

/// The URL of the CI run, when the CI says it (GitHub Actions, GitLab CI).
fn ci_run_url() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(server), Some(repo), Some(run)) = (
        var("GITHUB_SERVER_URL"),
        var("GITHUB_REPOSITORY"),
        var("GITHUB_RUN_ID"),
    ) {
        return Some(format!("{server}/{repo}/actions/runs/{run}"));
    }
    var("CI_JOB_URL")
}

/// Prints the plan: JSON on stdout, or a readable summary.
pub fn print_plan(shell: &Shell, plan: &ReleasePlan) -> Result<()> {
    match shell.format() {
        MessageFormat::Json => {
            let json = serde_json::to_string_pretty(plan).expect("plans serialize");
            shell.stdout(&format!("{json}\n"))
        }
        MessageFormat::Human if shell.verbosity() >= ui::Verbosity::Verbose => {
            shell.stdout(&plan.human_with_inputs())
        }
        MessageFormat::Human => shell.stdout(&plan.human()),
    }
}

/// Runs the async part of a command on a runtime of its own.
fn block_on<F: std::future::Future<Output = Result<()>>>(future: F) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| error::Error::io("starting the async runtime", e))?
        .block_on(future)
}

/// `inspect IMAGE`: what an image carries, from its labels and `ENV SHA`.
pub async fn inspect_command(reference: &str, shell: &Shell) -> Result<()> {
    let engine = engine::Engine::connect().await?;
    let inspection = commands::inspect::inspect(&engine, reference).await?;
    if inspection.revision.is_some() && !inspection.consistent() {
        shell.warn(format!(
            "`{reference}`: ENV SHA ({}) differs from its revision label ({})",
            inspection.sha.as_deref().unwrap_or("unset"),
            inspection.revision.as_deref().unwrap_or_default()
        ));
    }
    match shell.format() {
        MessageFormat::Json => {
            let json = serde_json::to_string_pretty(&inspection).expect("inspections serialize");
            shell.stdout(&format!("{json}\n"))
        }
        MessageFormat::Human => shell.stdout(&inspection.human()),
    }
}

/// `prune --keep N`: stale tags of the selected services' repositories and leftover containers.
pub async fn prune_command(global: &GlobalArgs, keep: usize, shell: &Shell) -> Result<()> {
    let (_, services) = load_services(global, true)?;
    let engine = engine::Engine::connect().await?;
    let managed: Vec<(&str, &str)> = services
        .iter()
        .map(|s| (s.config.image.as_str(), s.package.name.as_str()))
        .collect();
    let pruned = commands::prune::prune(&engine, &managed, keep, shell).await?;
    match shell.format() {
        MessageFormat::Json => {
            let json = serde_json::to_string_pretty(&pruned).expect("prune results serialize");
            shell.stdout(&format!("{json}\n"))
        }
        MessageFormat::Human => {
            shell.status(
                "Pruned",
                format!(
                    "{} tag(s), {} untagged build(s) and {} container(s)",
                    pruned.tags.len(),
                    pruned.images.len(),
                    pruned.containers
                ),
            );
            Ok(())
        }
    }
}
