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
//! what the release does, [`dockerfile`] renders or validates the Dockerfile, [`steps`] act through
//! [`engine`], and [`report`] records the result. [`ui`] is the only module that prints.
#![warn(missing_docs, clippy::print_stdout, clippy::print_stderr)]
// Errors are the cold path and carry the manifest text for their snippets; boxing buys nothing.
#![allow(clippy::result_large_err)]

pub mod cli;
pub mod config;
pub mod dockerfile;
pub mod engine;
pub mod error;
pub mod git;
pub mod init;
pub mod plan;
pub mod report;
pub mod steps;
pub mod ui;
pub mod workspace;

use cli::{Cli, Command, GlobalArgs, MessageFormat, ReleaseArgs};
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
        Some(Command::Plan) => block_on(plan_command(global, shell)),
        Some(Command::Init) => {
            let ws = Workspace::load(&global.selection())?;
            for package in ws.select(&global.selection(), false)? {
                let path = init::init(&ws, package)?;
                shell.status("Adding", format!("[package.metadata.docker] to {path}"));
            }
            Ok(())
        }
        Some(Command::Inspect(inspect)) => block_on(inspect_command(&inspect.image, shell)),
        Some(Command::Prune(prune)) => block_on(prune_command(global, prune.keep, shell)),
        None => block_on(release(global, &args.release, shell)),
        Some(Command::Dockerfile(args)) => dockerfile::dockerfile_command(shell, global, &args),
        Some(Command::Lint) => dockerfile::lint_command(shell, global),
    }
}

/// `plan`: what a release would do, knowing the releases the local engine already has (read
/// only). Without an engine the plan is still printed, as if no release existed yet.
async fn plan_command(global: &GlobalArgs, shell: &Shell) -> Result<()> {
    let (_, services) = load_services(global, true)?;
    let repositories: Vec<&str> = services.iter().map(|s| s.config.image.as_str()).collect();
    let known = match engine::Engine::connect().await {
        Ok(engine) => steps::tag::known_releases(&engine, &repositories).await?,
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
    let ws = Workspace::load(&selection)?;
    let services = ws
        .select(&selection, require_section)?
        .into_iter()
        .map(|p| ws.service(p))
        .collect::<Result<Vec<_>>>()?;
    Ok((ws, services))
}

/// Reads each service's revision from git and computes the release plan.
pub fn make_plan(
    services: &[Service],
    known: &KnownReleases,
    options: &PlanOptions,
) -> Result<ReleasePlan> {
    let mut images = Vec::new();
    for service in services {
        let repo = git::open(&service.package.dir)?;
        let revision = git::revision(
            &repo,
            &service.package.name,
            &service.inputs,
            service.config.revision,
        )?;
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

/// The whole release: engine -> plan (with the engine's known releases) -> for each service
/// dockerfile -> build -> test -> then tags on every image that passed -> report.
///
/// `--dry-run` stops after printing the plan. Nothing is tagged unless every selected service
/// built and passed, and no immutable tag moves to another image without `--force`.
pub async fn release(global: &GlobalArgs, release: &ReleaseArgs, shell: &Shell) -> Result<()> {
    let started = std::time::Instant::now();
    let started_at = chrono::Utc::now();
    let (ws, services) = load_services(global, true)?;
    let repositories: Vec<&str> = services.iter().map(|s| s.config.image.as_str()).collect();
    let engine = match engine::Engine::connect().await {
        Ok(engine) => Some(engine),
        Err(e) if release.dry_run => {
            shell.warn(format!(
                "{e}; the plan below does not know the engine's existing releases"
            ));
            None
        }
        Err(e) => return Err(e),
    };
    let mut known = match &engine {
        Some(engine) => steps::tag::known_releases(engine, &repositories).await?,
        None => KnownReleases::new(),
    };
    // With --push the registry's releases decide the forward-only rule; a registry that refuses
    // or does not answer stops the release here, before anything is built or tagged.
    let pusher = if release.push {
        let pusher = steps::push::Pusher::new(&repositories)?;
        match pusher.known_releases(&mut known, shell).await {
            Ok(()) => {}
            Err(e) if release.dry_run => shell.warn(format!(
                "{e}; the plan below does not know the registry's releases"
            )),
            Err(e) => return Err(e),
        }
        Some(pusher)
    } else {
        None
    };
    let plan = make_plan(&services, &known, &plan_options(global))?;
    if release.dry_run {
        return print_plan(shell, &plan);
    }
    let engine = engine.expect("connected unless dry-run");
    if release.push {
        for image in plan.images.iter().filter(|p| p.git.dirty) {
            shell.status(
                "Pushing",
                format!(
                    "the development build {} of {} (-dirty): --push and --allow-dirty were both given",
                    image.primary_reference(),
                    image.package
                ),
            );
        }
    }
    let plans: Vec<&plan::ImagePlan> = plan.images.iter().collect();
    steps::tag::preflight(&engine, &plans, release.force).await?;
    let leftovers = steps::test::remove_leftovers(&engine).await?;
    if leftovers > 0 {
        shell.status(
            "Removed",
            format!("{leftovers} test container(s) left by earlier runs"),
        );
    }

    let cargo_flags = global.selection().cargo_flags;
    let jobs = release
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    let test_options = steps::TestStageOptions {
        keep_on_failure: release.keep_on_failure,
        junit: release.junit.clone(),
    };
    // Ctrl-C stops the dockerfile and build steps where they are (the cargo child is killed, the
    // engine cancels a build whose connection closes); the test stage handles it itself and
    // removes its container. Nothing is tagged either way.
    let (interrupt_tx, interrupt) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = interrupt_tx.send(true);
        }
    });
    use futures_util::StreamExt;
    let mut runs: Vec<ServiceRun> = futures_util::stream::iter(plans.iter().map(|p| {
        service_run(
            &engine,
            p,
            &cargo_flags,
            &test_options,
            interrupt.clone(),
            shell,
        )
    }))
    .buffered(jobs)
    .collect()
    .await;
    watcher.abort();
    let interrupted = *interrupt.borrow()
        || runs
            .iter()
            .any(|r| matches!(r.error, Some(error::Error::Interrupted)));

    let all_passed = !interrupted && runs.iter().all(|r| r.error.is_none());
    let mut failure: Option<error::Error> = None;
    if all_passed {
        let released: Vec<(&plan::ImagePlan, &str)> = plans
            .iter()
            .zip(&runs)
            .filter_map(|(p, r)| r.image_id.as_deref().map(|id| (*p, id)))
            .collect();
        let tag_started = std::time::Instant::now();
        if let Some(pusher) = &pusher {
            let (outcomes, pushed, error) =
                tag_and_push(&engine, pusher, &released, release.force, shell).await;
            let elapsed = tag_started.elapsed().as_millis() as u64 / runs.len().max(1) as u64;
            if let Some(outcomes) = outcomes {
                for ((run, outcomes), pushed) in runs.iter_mut().zip(outcomes).zip(pushed) {
                    run.tags = Some(outcomes);
                    run.pushed = pushed.tags;
                    run.digest = pushed.digest;
                    run.timings.push_ms = pushed.push_ms;
                    run.timings.tag_ms = elapsed.saturating_sub(pushed.push_ms);
                }
            }
            failure = error;
        } else {
            let tagged = match steps::tag::check_conflicts(&engine, &released, release.force).await
            {
                Ok(()) => steps::tag::apply_tags(&engine, &released, all_passed, shell).await,
                Err(e) => Err(e),
            };
            let tag_ms = tag_started.elapsed().as_millis() as u64 / runs.len().max(1) as u64;
            match tagged {
                Ok(outcomes) => {
                    for (run, outcomes) in runs.iter_mut().zip(outcomes) {
                        run.tags = Some(outcomes);
                        run.timings.tag_ms = tag_ms;
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
    }

    let mut services_report = Vec::new();
    for (plan, run) in plans.iter().zip(runs.iter_mut()) {
        let size = match &run.image_id {
            Some(id) => engine::images::ImageStore::image(&engine, id)
                .await
                .ok()
                .flatten()
                .map(|i| i.size),
            None => None,
        };
        let state = match (&run.error, &run.tags, &failure) {
            (Some(_), _, _) => report::ServiceState::Failed,
            (None, Some(_), None) => report::ServiceState::Released,
            _ => report::ServiceState::NotTagged,
        };
        let tags = run.tags.take().unwrap_or_else(|| {
            plan.tags
                .iter()
                .map(|t| steps::tag::TagOutcome {
                    name: t.name.clone(),
                    kind: t.kind,
                    planned: t.applied,
                    applied: false,
                    moved: false,
                    previous: None,
                    reason: if t.applied {
                        "not applied: the release did not pass".to_owned()
                    } else {
                        t.reason.clone()
                    },
                })
                .collect()
        });
        services_report.push(report::ServiceReport {
            package: plan.package.clone(),
            version: plan.version.clone(),
            image: plan.image.clone(),
            revision: plan.revision.clone(),
            state,
            image_id: run.image_id.clone(),
            size,
            reused: run.reused,
            context_bytes: run.context_bytes,
            tags,
            pushed: std::mem::take(&mut run.pushed),
            digest: run.digest.take(),
            labels: plan.labels.clone(),
            tests: run.tests.take(),
            timings: run.timings,
            error: run.error.as_ref().map(|e| e.to_string()),
        });
    }
    let report = report::ReleaseReport {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        success: all_passed && failure.is_none(),
        started: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_ms: started.elapsed().as_millis() as u64,
        services: services_report,
    };
    let path = report.write(&ws.metadata.target_directory)?;
    match shell.format() {
        MessageFormat::Json => shell.stdout(&report.json())?,
        MessageFormat::Human => shell.raw(&format!("\n{}", report.human())),
    }
    shell.verbose("Wrote", &path);

    if interrupted {
        return Err(error::Error::Interrupted);
    }
    let mut errors = runs.into_iter().filter_map(|r| r.error);
    match failure.or_else(|| errors.next()) {
        Some(first) => {
            for other in errors {
                shell.error(&other);
            }
            Err(first)
        }
        None => {
            shell.status(
                "Finished",
                format!(
                    "release of {} image(s) in {:.1}s",
                    plan.images.len(),
                    started.elapsed().as_secs_f64()
                ),
            );
            Ok(())
        }
    }
}

/// How one service's dockerfile -> build -> test went.
#[derive(Debug, Default)]
struct ServiceRun {
    image_id: Option<String>,
    reused: bool,
    context_bytes: u64,
    tests: Option<steps::TestReport>,
    tags: Option<Vec<steps::tag::TagOutcome>>,
    pushed: Vec<String>,
    digest: Option<String>,
    timings: report::StepTimings,
    error: Option<error::Error>,
}

/// What `--push` did for one service.
#[derive(Debug, Default)]
struct Pushed {
    tags: Vec<String>,
    digest: Option<String>,
    push_ms: u64,
}

/// `plan` with only its floating (or only its other) tags.
fn plan_part(plan: &plan::ImagePlan, floating: bool) -> plan::ImagePlan {
    let mut part = plan.clone();
    part.tags.retain(|t| t.kind.is_floating() == floating);
    part
}

/// Tagging with `--push` (SPEC 5 and 7): the registry's and the engine's immutable tags are
/// checked before anything is tagged or pushed; then every service's non-floating tags are
/// tagged, pushed and read back; only when all of them are in the registry do the floating tags
/// (`X.Y`, `X`, `latest`) move, locally and in the registry.
///
/// Returns the tag outcomes per service (none when nothing was tagged), what was pushed, and the
/// error that stopped it.
async fn tag_and_push(
    engine: &engine::Engine,
    pusher: &steps::push::Pusher,
    released: &[(&plan::ImagePlan, &str)],
    force: bool,
    shell: &Shell,
) -> (
    Option<Vec<Vec<steps::tag::TagOutcome>>>,
    Vec<Pushed>,
    Option<error::Error>,
) {
    let mut pushed: Vec<Pushed> = released.iter().map(|_| Pushed::default()).collect();
    let checked = match steps::tag::check_conflicts(engine, released, force).await {
        Ok(()) => pusher.check_conflicts(released, force).await,
        Err(e) => Err(e),
    };
    if let Err(e) = checked {
        return (None, pushed, Some(e));
    }
    let parts = |floating: bool| -> Vec<plan::ImagePlan> {
        released
            .iter()
            .map(|(p, _)| plan_part(p, floating))
            .collect()
    };
    let (fixed_plans, floating_plans) = (parts(false), parts(true));
    let ids = |plans: &[plan::ImagePlan]| -> Vec<(plan::ImagePlan, String)> {
        plans
            .iter()
            .cloned()
            .zip(released.iter().map(|(_, id)| (*id).to_owned()))
            .collect()
    };
    let (fixed, floating) = (ids(&fixed_plans), ids(&floating_plans));
    fn as_refs(v: &[(plan::ImagePlan, String)]) -> Vec<(&plan::ImagePlan, &str)> {
        v.iter().map(|(p, id)| (p, id.as_str())).collect()
    }
    // Outcomes of the whole plan from the two parts; a floating part not applied is held back.
    let merge = |fixed_out: &[Vec<steps::tag::TagOutcome>],
                 floating_out: Option<&[Vec<steps::tag::TagOutcome>]>,
                 why: &str|
     -> Vec<Vec<steps::tag::TagOutcome>> {
        released
            .iter()
            .enumerate()
            .map(|(i, (p, _))| {
                p.tags
                    .iter()
                    .map(|t| {
                        let from = if t.kind.is_floating() {
                            floating_out.map(|o| &o[i])
                        } else {
                            Some(&fixed_out[i])
                        };
                        from.and_then(|o| o.iter().find(|x| x.name == t.name).cloned())
                            .unwrap_or_else(|| steps::tag::TagOutcome {
                                name: t.name.clone(),
                                kind: t.kind,
                                planned: t.applied,
                                applied: false,
                                moved: false,
                                previous: None,
                                reason: if t.applied {
                                    why.to_owned()
                                } else {
                                    t.reason.clone()
                                },
                            })
                    })
                    .collect()
            })
            .collect()
    };

    // 1. Every service's non-floating tags, locally then in the registry, read back.
    let fixed_out = match steps::tag::apply_tags(engine, &as_refs(&fixed), true, shell).await {
        Ok(o) => o,
        Err(e) => return (None, pushed, Some(e)),
    };
    let held = "held back: the immutable tags of every service were not all pushed";
    for (i, (p, id)) in fixed.iter().enumerate() {
        let started = std::time::Instant::now();
        let tags: Vec<&str> = p.applied_tags().map(|t| t.name.as_str()).collect();
        let result = match pusher.push_tags(engine, p, &tags, shell).await {
            Ok(()) => pusher.verify(engine, p, id, &tags).await,
            Err(e) => Err(e),
        };
        pushed[i].push_ms += started.elapsed().as_millis() as u64;
        match result {
            Ok(digest) => {
                pushed[i].tags.extend(tags.iter().map(|t| (*t).to_owned()));
                pushed[i].digest = digest;
            }
            Err(e) => return (Some(merge(&fixed_out, None, held)), pushed, Some(e)),
        }
    }

    // 2. Only now the floating tags of all services.
    let floating_out = match steps::tag::apply_tags(engine, &as_refs(&floating), true, shell).await
    {
        Ok(o) => o,
        Err(e) => return (Some(merge(&fixed_out, None, held)), pushed, Some(e)),
    };
    for (i, (p, id)) in floating.iter().enumerate() {
        let started = std::time::Instant::now();
        let tags: Vec<&str> = p.applied_tags().map(|t| t.name.as_str()).collect();
        let result = match pusher.push_tags(engine, p, &tags, shell).await {
            Ok(()) => pusher.verify(engine, p, id, &tags).await,
            Err(e) => Err(e),
        };
        pushed[i].push_ms += started.elapsed().as_millis() as u64;
        match result {
            Ok(digest) => {
                pushed[i].tags.extend(tags.iter().map(|t| (*t).to_owned()));
                if pushed[i].digest.is_none() {
                    pushed[i].digest = digest;
                }
            }
            Err(e) => {
                let outcomes = merge(&fixed_out, Some(&floating_out), held);
                return (Some(outcomes), pushed, Some(e));
            }
        }
    }
    let outcomes = merge(&fixed_out, Some(&floating_out), held);
    (Some(outcomes), pushed, None)
}

/// Dockerfile, build and test of one service; a failure is recorded, not returned, so that the
/// other services finish and the report shows every service's state.
async fn service_run(
    engine: &engine::Engine,
    plan: &plan::ImagePlan,
    cargo_flags: &[String],
    test_options: &steps::TestStageOptions,
    mut interrupt: tokio::sync::watch::Receiver<bool>,
    shell: &Shell,
) -> ServiceRun {
    let mut run = ServiceRun::default();
    if *interrupt.borrow() {
        run.error = Some(error::Error::Interrupted);
        return run;
    }
    let step = std::time::Instant::now();
    let rendered = match dockerfile::for_image(plan) {
        Ok(r) => r,
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    run.timings.dockerfile_ms = step.elapsed().as_millis() as u64;
    let build = steps::build::build(engine, plan, &rendered, cargo_flags, shell);
    let built = tokio::select! {
        built = build => built,
        _ = interrupt.wait_for(|stop| *stop) => Err(error::Error::Interrupted),
    };
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    run.timings.cargo_ms = built.cargo_ms;
    run.timings.image_ms = built.image_ms;
    run.image_id = Some(built.image_id.clone());
    run.reused = built.reused;
    run.context_bytes = built.context_bytes;
    if *interrupt.borrow() {
        run.error = Some(error::Error::Interrupted);
        return run;
    }
    if built.reused && already_released(engine, plan, &built.image_id).await {
        shell.status(
            "Skipping",
            format!(
                "tests of {} {}: this image passed them and carries the release's tags",
                plan.package, plan.version
            ),
        );
        return run;
    }
    let step = std::time::Instant::now();
    let (report, passed) =
        steps::run_tests(engine, plan, &built.image_id, test_options, shell).await;
    run.tests = Some(report);
    run.error = passed.err();
    run.timings.test_ms = step.elapsed().as_millis() as u64;
    run
}

/// Whether every immutable tag the plan applies already names `image_id`: the image was released
/// (so it passed its tests) from this same revision.
async fn already_released(engine: &engine::Engine, plan: &plan::ImagePlan, image_id: &str) -> bool {
    let mut immutable = plan
        .applied_tags()
        .filter(|t| t.kind.is_immutable())
        .peekable();
    if immutable.peek().is_none() {
        return false;
    }
    for tag in immutable {
        let reference = format!("{}:{}", plan.image, tag.name);
        match engine::images::ImageStore::image(engine, &reference).await {
            Ok(Some(info)) if info.id == image_id => {}
            _ => return false,
        }
    }
    true
}

/// `inspect IMAGE`: what an image carries, from its labels and `ENV SHA`.
pub async fn inspect_command(reference: &str, shell: &Shell) -> Result<()> {
    let engine = engine::Engine::connect().await?;
    let inspection = steps::inspect::inspect(&engine, reference).await?;
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
    let pruned = steps::prune::prune(&engine, &managed, keep, shell).await?;
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
