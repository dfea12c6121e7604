//! The pipeline driver: for every selected service, in order and concurrently up to `--jobs`,
//! dockerfile -> build -> test; then tag (and push) only when every service passed; then the
//! report. The steps are its submodules; this module only sequences them.

pub mod assemble;
pub mod attest;
pub mod build;
mod builder;
pub mod planning;
pub mod preflight;
pub mod promote;
pub mod push;
pub mod tag;
pub mod test_stage;

use crate::report::timings::Span;
use camino::Utf8PathBuf;

use crate::error::{self, Result};
use crate::interrupt::Interrupt;
use crate::plan::{self, PlanOptions};
use crate::report::print_plan;
use crate::ui::{MessageFormat, Shell};
use crate::workspace::Selection;
use crate::{dockerfile, engine, report};

/// What a release is asked to do.
#[derive(Debug, Clone, Default)]
pub struct ReleaseOptions {
    /// The packages to release and cargo's flags.
    pub selection: Selection,
    /// How to plan their tags.
    pub plan: PlanOptions,
    /// Push every tag after the tests pass.
    pub push: bool,
    /// Print the plan and change nothing.
    pub dry_run: bool,
    /// Services built and tested at once (default: the number of CPUs).
    pub jobs: Option<usize>,
    /// Keep the container of a failed test.
    pub keep_on_failure: bool,
    /// Overwrite an immutable tag that points to another image.
    pub force: bool,
    /// Where to write the tests' JUnit XML report.
    pub junit: Option<Utf8PathBuf>,
    /// Push only the immutable tags (`--stage immutable`): `promote` moves the floating ones.
    pub immutable_only: bool,
    /// Release the services that passed even when another failed.
    pub keep_going: bool,
    /// `--timings`: also write the HTML timeline of every service's phases.
    pub timings: bool,
    /// `--sign-key`: the cosign key signing every pushed image (over the manifests' `sign-key`).
    pub sign_key: Option<String>,
}

/// The whole release: engine -> plan (with the engine's known releases) -> for each service
/// dockerfile -> build -> test -> then tags on every image that passed -> report.
///
/// `--dry-run` stops after printing the plan. Nothing is tagged unless every selected service
/// built and passed, and no immutable tag moves to another image without `--force`.
pub async fn release(release: &ReleaseOptions, shell: &Shell) -> Result<()> {
    let started = std::time::Instant::now();
    let started_at = chrono::Utc::now();
    // SIGINT, SIGTERM and SIGHUP stop the dockerfile and build steps where they are (cargo's
    // process group is killed, the engine cancels a build whose connection closes); the test
    // stage removes its container. Nothing is tagged either way.
    let interrupt = Interrupt::listen()?;
    let cleared = match preflight::run(release, shell).await? {
        preflight::Outcome::DryRun(plan) => return print_plan(shell, &plan),
        preflight::Outcome::Cleared(cleared) => *cleared,
    };
    let preflight::Cleared {
        ws,
        plan,
        rendered,
        render_ms,
        engine,
        pusher,
        in_registry,
        keys,
    } = cleared;
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
    let leftovers = crate::checks::remove_leftovers(&engine).await?;
    if leftovers > 0 {
        shell.status(
            "Removed",
            format!("{leftovers} test container(s) left by earlier runs"),
        );
    }

    let cargo_flags = release.selection.cargo_flags.clone();
    let jobs = release
        .jobs
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
        .max(1);
    let test_options = test_stage::TestStageOptions {
        keep_on_failure: release.keep_on_failure,
        junit: release.junit.clone(),
        several_services: plans.len() > 1,
        interrupt: Some(interrupt.clone()),
    };
    // The SBOMs' crate graphs are asked of cargo while the services build and are tested.
    let graphs: Vec<Option<attest::GraphTask>> = plans
        .iter()
        .map(|p| match &pusher {
            Some(_) => attest::start_graph(p, &cargo_flags),
            None => None,
        })
        .collect();
    let compiled = compile_together(
        &engine,
        &plans,
        &rendered,
        &in_registry,
        &cargo_flags,
        interrupt.clone(),
        shell,
    )
    .await;
    use futures_util::StreamExt;
    let mut runs: Vec<ServiceRun> = futures_util::stream::iter(
        plans
            .iter()
            .zip(&in_registry)
            .zip(rendered.iter().zip(&render_ms))
            .zip(compiled)
            .map(|(((p, done), (r, ms)), compiled)| {
                let service = Service {
                    plan: p,
                    rendered: r,
                    render_ms: *ms,
                    in_registry: done.as_deref(),
                    compiled: compiled.map(|(binary, tests, at, ms)| {
                        (binary, tests, Span::at("cargo", started, at, ms))
                    }),
                    origin: started,
                };
                service_run(
                    &engine,
                    service,
                    &cargo_flags,
                    &test_options,
                    interrupt.clone(),
                    shell,
                )
            }),
    )
    .buffered(jobs)
    .collect()
    .await;
    let interrupted = interrupt.received().is_some()
        || runs
            .iter()
            .any(|r| matches!(r.error, Some(error::Error::Interrupted)));

    let all_passed = !interrupted && runs.iter().all(|r| r.error.is_none());
    let failed: Vec<&str> = plans
        .iter()
        .zip(&runs)
        .filter(|(_, r)| r.error.is_some())
        .map(|(p, _)| p.package.as_str())
        .collect();
    // All or none by default; with --keep-going the services that passed are released anyway.
    let held_back = format!(
        "held back: {} failed (--keep-going releases the services that passed)",
        failed.join(", ")
    );
    let passed = |r: &ServiceRun| r.image_id.is_some() && r.error.is_none();
    let mut failure: Option<error::Error> = None;
    if all_passed || (release.keep_going && !interrupted) {
        let released: Vec<(&plan::ImagePlan, &str)> = plans
            .iter()
            .zip(&runs)
            .filter(|(_, r)| passed(r))
            .filter_map(|(p, r)| r.image_id.as_deref().map(|id| (*p, id)))
            .collect();
        let tag_started = std::time::Instant::now();
        if released.is_empty() {
            // Every service was already released: nothing to tag or push.
        } else if let Some(pusher) = &pusher {
            let attesting: Vec<(attest::Facts, attest::Attesting<'_>)> = plans
                .iter()
                .zip(&runs)
                .zip(&keys)
                .zip(graphs)
                .filter(|(((_, r), _), _)| passed(r))
                .map(|(((_, r), key), graph)| {
                    let how = attest::Attesting {
                        engine: &engine,
                        key: key.as_deref(),
                        started: started_at,
                        cargo_flags: &cargo_flags,
                    };
                    (r.facts(graph), how)
                })
                .collect();
            let (outcomes, pushed, error) =
                tag_and_push(&engine, pusher, &released, attesting, release.force, shell).await;
            let elapsed = tag_started.elapsed().as_millis() as u64 / runs.len().max(1) as u64;
            if let Some(outcomes) = outcomes {
                let built = runs.iter_mut().filter(|r| passed(r));
                for ((run, outcomes), pushed) in built.zip(outcomes).zip(pushed) {
                    run.tags = Some(outcomes);
                    run.pushed = pushed.tags;
                    run.digest = pushed.digest;
                    run.push = pushed.push;
                    run.timings.push_ms = pushed.push_ms;
                    run.timings.attach_ms = pushed.attach_ms;
                    run.timings.tag_ms = elapsed.saturating_sub(pushed.push_ms + pushed.attach_ms);
                    run.attached = pushed.attached;
                    let spans = &mut run.timings.spans;
                    spans.push(Span::at("tag", started, tag_started, run.timings.tag_ms));
                    let push_started =
                        tag_started + std::time::Duration::from_millis(run.timings.tag_ms);
                    spans.push(Span::at("push", started, push_started, pushed.push_ms));
                    if pushed.attach_ms > 0 {
                        let at = push_started + std::time::Duration::from_millis(pushed.push_ms);
                        spans.push(Span::at("attach", started, at, pushed.attach_ms));
                    }
                }
            }
            failure = error;
        } else {
            let tagging = async {
                tag::check_conflicts(&engine, &released, release.force).await?;
                tag::apply_tags(&engine, &released, true, shell).await
            };
            let tagged = engine.supervised("tag", tagging).await;
            let tag_ms = tag_started.elapsed().as_millis() as u64 / runs.len().max(1) as u64;
            match tagged {
                Ok(outcomes) => {
                    let built = runs.iter_mut().filter(|r| passed(r));
                    for (run, outcomes) in built.zip(outcomes) {
                        run.tags = Some(outcomes);
                        run.timings.tag_ms = tag_ms;
                        let span = Span::at("tag", started, tag_started, tag_ms);
                        run.timings.spans.push(span);
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
    }

    let mut services_report = Vec::new();
    for (plan, run) in plans.iter().zip(runs.iter_mut()) {
        let size = match &run.image_id {
            // The size is worth a moment, not a wait on an engine that stopped answering.
            Some(id) => tokio::time::timeout(
                std::time::Duration::from_secs(5),
                engine::images::ImageStore::image(&engine, id),
            )
            .await
            .ok()
            .and_then(|r| r.ok())
            .flatten()
            .map(|i| i.size),
            None => None,
        };
        let state = match (&run.error, &run.tags, &failure) {
            (Some(_), _, _) => report::ServiceState::Failed,
            (None, Some(_), None) => report::ServiceState::Released,
            _ => report::ServiceState::NotTagged,
        };
        let why = if run.error.is_some() {
            "not applied: this service failed"
        } else if failed.is_empty() {
            "not applied: the release did not pass"
        } else {
            &held_back
        };
        let tags = run.tags.take().unwrap_or_else(|| {
            plan.tags
                .iter()
                .map(|t| tag::TagOutcome::unapplied(t, false, why))
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
            builder: run.builder,
            context_bytes: run.context_bytes,
            tags,
            pushed: std::mem::take(&mut run.pushed),
            push: std::mem::take(&mut run.push),
            digest: run.digest.take(),
            features: plan.features.flags(),
            labels: plan.labels.clone(),
            tests: run.tests.take(),
            timings: std::mem::take(&mut run.timings),
            attached: run.attached.take(),
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
    if release.timings {
        let page = report::timings::write(&ws.metadata.target_directory, &report)?;
        shell.status("Timing", format!("report saved to {page}"));
    }
    if let Some(summary) = crate::ui::github::step_summary_path() {
        report.append_markdown(&summary)?;
    }
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
    builder: Option<engine::build::Builder>,
    base_digest: Option<String>,
    context_bytes: u64,
    tests: Option<test_stage::TestReport>,
    tags: Option<Vec<tag::TagOutcome>>,
    pushed: Vec<String>,
    push: Vec<push::TagPush>,
    digest: Option<String>,
    attached: Option<crate::supply_chain::Documents>,
    timings: report::StepTimings,
    error: Option<error::Error>,
}

impl ServiceRun {
    /// What its provenance says of its build and tests.
    fn facts(&self, graph: Option<attest::GraphTask>) -> attest::Facts {
        attest::Facts {
            graph,
            builder: self
                .builder
                .map_or("unknown", engine::build::Builder::label)
                .to_owned(),
            image_id: self.image_id.clone().unwrap_or_default(),
            base_digest: self.base_digest.clone(),
            checks_passed: self
                .tests
                .as_ref()
                .map_or(0, |t| t.checks.iter().filter(|c| c.passed).count()),
        }
    }

    /// A service whose release the registry already holds (`digest`): its tags stay as they are.
    fn in_registry(plan: &plan::ImagePlan, digest: &str) -> Self {
        let tags = plan
            .tags
            .iter()
            .map(|t| {
                tag::TagOutcome::unapplied(t, true, "already in the registry from this revision")
            })
            .collect();
        ServiceRun {
            reused: true,
            tags: Some(tags),
            digest: Some(digest.to_owned()),
            ..ServiceRun::default()
        }
    }
}

/// What `--push` did for one service.
#[derive(Debug, Default)]
struct Pushed {
    tags: Vec<String>,
    push: Vec<push::TagPush>,
    digest: Option<String>,
    push_ms: u64,
    attached: Option<crate::supply_chain::Documents>,
    attach_ms: u64,
}

/// `plan` with only its floating (or only its other) tags.
fn plan_part(plan: &plan::ImagePlan, floating: bool) -> plan::ImagePlan {
    let mut part = plan.clone();
    part.tags.retain(|t| t.kind.is_floating() == floating);
    part
}

/// Tagging with `--push`: the registry's and the engine's immutable tags are
/// checked before anything is tagged or pushed; then every service's non-floating tags are
/// tagged, pushed and read back, and its SBOM, provenance and signature attached to the pushed
/// digest; only when all of that is in the registry do the floating tags (`X.Y`, `X`, `latest`)
/// move, locally and in the registry.
///
/// Returns the tag outcomes per service (none when nothing was tagged), what was pushed, and the
/// error that stopped it.
async fn tag_and_push(
    engine: &engine::Engine,
    pusher: &push::Pusher,
    released: &[(&plan::ImagePlan, &str)],
    attesting: Vec<(attest::Facts, attest::Attesting<'_>)>,
    force: bool,
    shell: &Shell,
) -> (
    Option<Vec<Vec<tag::TagOutcome>>>,
    Vec<Pushed>,
    Option<error::Error>,
) {
    let mut pushed: Vec<Pushed> = released.iter().map(|_| Pushed::default()).collect();
    let checking = async {
        tag::check_conflicts(engine, released, force).await?;
        pusher.check_conflicts(released, force, shell)
    };
    let checked = engine.supervised("push", checking).await;
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
    let merge = |fixed_out: &[Vec<tag::TagOutcome>],
                 floating_out: Option<&[Vec<tag::TagOutcome>]>,
                 why: &str|
     -> Vec<Vec<tag::TagOutcome>> {
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
                            .unwrap_or_else(|| tag::TagOutcome::unapplied(t, false, why))
                    })
                    .collect()
            })
            .collect()
    };

    // 1. Every service's non-floating tags, locally then in the registry, read back.
    let fixed_out = match engine
        .supervised(
            "tag",
            tag::apply_tags(engine, &as_refs(&fixed), true, shell),
        )
        .await
    {
        Ok(o) => o,
        Err(e) => return (None, pushed, Some(e)),
    };
    let held = "held back: the immutable tags of every service were not all pushed";
    if let Err(e) = push_part(engine, pusher, &fixed, &mut pushed, shell).await {
        return (Some(merge(&fixed_out, None, held)), pushed, Some(e));
    }
    let unattested =
        "held back: the SBOM, provenance or signature of every service was not all attached";
    if let Err(e) = attach_all(pusher, released, attesting, &mut pushed, shell).await {
        return (Some(merge(&fixed_out, None, unattested)), pushed, Some(e));
    }

    // 2. Only now the floating tags of all services.
    let floating_out = match engine
        .supervised(
            "tag",
            tag::apply_tags(engine, &as_refs(&floating), true, shell),
        )
        .await
    {
        Ok(o) => o,
        Err(e) => return (Some(merge(&fixed_out, None, held)), pushed, Some(e)),
    };
    if let Err(e) = push_part(engine, pusher, &floating, &mut pushed, shell).await {
        let outcomes = merge(&fixed_out, Some(&floating_out), held);
        return (Some(outcomes), pushed, Some(e));
    }
    let outcomes = merge(&fixed_out, Some(&floating_out), held);
    (Some(outcomes), pushed, None)
}

/// Pushes the applied tags of each service's `part` (one entry per service, in `pushed`'s order)
/// and reads the digest back; the first digest a service gets is its report's.
async fn push_part(
    engine: &engine::Engine,
    pusher: &push::Pusher,
    part: &[(plan::ImagePlan, String)],
    pushed: &mut [Pushed],
    shell: &Shell,
) -> Result<()> {
    for ((p, id), pushed) in part.iter().zip(pushed.iter_mut()) {
        let started = std::time::Instant::now();
        let tags: Vec<&str> = p.applied_tags().map(|t| t.name.as_str()).collect();
        let result = engine
            .supervised("push", pusher.push_tags(engine, p, id, &tags, shell))
            .await;
        pushed.push_ms += started.elapsed().as_millis() as u64;
        let done = result?;
        pushed.tags.extend(tags.iter().map(|t| (*t).to_owned()));
        if pushed.digest.is_none() {
            pushed.digest = done.first().map(|t| t.digest.clone());
        }
        pushed.push.extend(done);
    }
    Ok(())
}

/// The supply-chain step of every pushed service, concurrently (each asks cargo for its graph);
/// the first failure is the error, after all have finished.
async fn attach_all(
    pusher: &push::Pusher,
    released: &[(&plan::ImagePlan, &str)],
    attesting: Vec<(attest::Facts, attest::Attesting<'_>)>,
    pushed: &mut [Pushed],
    shell: &Shell,
) -> Result<()> {
    let runs = released.iter().zip(attesting).zip(pushed.iter()).map(
        |(((plan, _), (facts, how)), pushed)| async move {
            let digest = pushed.digest.as_deref()?;
            if !attest::wanted(plan, how.key) {
                return None;
            }
            let started = std::time::Instant::now();
            let result = attest::attest(pusher, plan, digest, facts, how, shell).await;
            Some((result, started.elapsed().as_millis() as u64))
        },
    );
    let results = futures_util::future::join_all(runs).await;
    let mut first = None;
    for (pushed, result) in pushed.iter_mut().zip(results) {
        match result {
            Some((Ok(documents), ms)) => {
                pushed.attached = Some(documents);
                pushed.attach_ms = ms;
            }
            Some((Err(e), ms)) => {
                pushed.attach_ms = ms;
                first.get_or_insert(e);
            }
            None => {}
        }
    }
    first.map_or(Ok(()), Err)
}

/// One service as the preflight cleared it.
struct Service<'a> {
    plan: &'a plan::ImagePlan,
    rendered: &'a dockerfile::Rendered,
    render_ms: u64,
    /// The manifest digest when the registry already holds this release whole.
    in_registry: Option<&'a str>,
    /// Its binary, its container tests and the span of the cargo run that built them with other
    /// services.
    compiled: Option<(camino::Utf8PathBuf, Vec<camino::Utf8PathBuf>, Span)>,
    /// When the release started: the origin of every span.
    origin: std::time::Instant,
}

/// The host-strategy services that will be built, compiled together: one cargo invocation per
/// linking mode for two or more of them, so that their shared dependencies are built once and
/// no second cargo waits on the target directory's lock. `None` for every other service, which
/// its own run compiles, as it does when the shared build fails (each service then reports its
/// own error) or is interrupted (each run then stops).
async fn compile_together(
    engine: &engine::Engine,
    plans: &[&plan::ImagePlan],
    rendered: &[dockerfile::Rendered],
    in_registry: &[Option<String>],
    cargo_flags: &[String],
    mut interrupt: Interrupt,
    shell: &Shell,
) -> Vec<
    Option<(
        camino::Utf8PathBuf,
        Vec<camino::Utf8PathBuf>,
        std::time::Instant,
        u64,
    )>,
> {
    let mut compiled = vec![None; plans.len()];
    // cargo takes `--features` for one package only.
    if plans.iter().any(|p| !p.features.is_default()) {
        return compiled;
    }
    for static_link in [false, true] {
        let mut group = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            if plan.config.strategy == crate::config::Strategy::Host
                && plan.config.static_link == static_link
                && in_registry[i].is_none()
                && !build::reuses_image(engine, plan, &rendered[i])
                    .await
                    .unwrap_or(true)
            {
                group.push(i);
            }
        }
        if group.len() < 2 {
            continue;
        }
        let together: Vec<&plan::ImagePlan> = group.iter().map(|&i| plans[i]).collect();
        let started = std::time::Instant::now();
        let built = tokio::select! {
            built = build::cargo_build_all(&together, cargo_flags, shell) => built.ok(),
            _ = interrupt.wait() => None,
        };
        let ms = started.elapsed().as_millis() as u64;
        if let Some(built) = built {
            let each = built.binaries.into_iter().zip(built.tests);
            for (i, (binary, tests)) in group.into_iter().zip(each) {
                compiled[i] = Some((binary, tests, started, ms));
            }
        }
    }
    compiled
}

/// Dockerfile, build and test of one service; a failure is recorded, not returned, so that the
/// other services finish and the report shows every service's state.
async fn service_run(
    engine: &engine::Engine,
    service: Service<'_>,
    cargo_flags: &[String],
    test_options: &test_stage::TestStageOptions,
    mut interrupt: Interrupt,
    shell: &Shell,
) -> ServiceRun {
    let Service {
        plan,
        rendered,
        render_ms,
        in_registry,
        compiled,
        origin,
    } = service;
    let compiled_span = compiled.as_ref().map(|(_, _, span)| span.clone());
    let mut run = ServiceRun::default();
    if interrupt.received().is_some() {
        run.error = Some(error::Error::Interrupted);
        return run;
    }
    if let Some(digest) = in_registry {
        shell.status(
            "Skipping",
            format!(
                "{} {}: the registry already holds this release ({digest} from revision {}, every tag in place); nothing to build, test or push",
                plan.package,
                plan.version,
                &plan.revision[..plan.revision.len().min(12)]
            ),
        );
        return ServiceRun::in_registry(plan, digest);
    }
    run.timings.dockerfile_ms = render_ms;
    let build_started = std::time::Instant::now();
    let build = engine.supervised(
        "build",
        build::build(
            engine,
            plan,
            rendered,
            compiled.map(|(binary, tests, _)| (binary, tests)),
            cargo_flags,
            shell,
        ),
    );
    let built = tokio::select! {
        built = build => built,
        _ = interrupt.wait() => Err(error::Error::Interrupted),
    };
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            run.error = Some(e);
            return run;
        }
    };
    let spans = &mut run.timings.spans;
    match compiled_span {
        Some(span) => {
            run.timings.cargo_ms = span.duration_ms + built.cargo_ms;
            spans.push(span);
        }
        None => {
            run.timings.cargo_ms = built.cargo_ms;
            if built.cargo_ms > 0 {
                spans.push(Span::at("cargo", origin, build_started, built.cargo_ms));
            }
        }
    }
    let image_started = build_started + std::time::Duration::from_millis(built.cargo_ms);
    spans.push(Span::at("image", origin, image_started, built.image_ms));
    run.timings.image_ms = built.image_ms;
    run.image_id = Some(built.image_id.clone());
    run.reused = built.reused;
    run.builder = built.builder;
    run.base_digest = built.base_digest.clone();
    run.context_bytes = built.context_bytes;
    if interrupt.received().is_some() {
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
    let (report, passed) = test_stage::run_tests(
        engine,
        plan,
        &built.image_id,
        built.tests,
        test_options,
        shell,
    )
    .await;
    run.timings.test_ms = step.elapsed().as_millis() as u64;
    let spans = &mut run.timings.spans;
    spans.push(Span::at("test", origin, step, run.timings.test_ms));
    for check in &report.checks {
        let started = step + std::time::Duration::from_millis(check.started_ms);
        let phase = format!("check: {}", check.name);
        spans.push(Span::at(phase, origin, started, check.duration_ms));
    }
    run.tests = Some(report);
    run.error = passed.err();
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
