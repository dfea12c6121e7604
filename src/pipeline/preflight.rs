//! Before the first build: every check of every selected service, with all their failures
//! reported at once (as cargo-deny collects every diagnostic and cargo-release runs all its
//! checks before step 1). A release that starts building has nothing left to find out from its
//! configuration.
//!
//! In order: each service's manifest, the lock file, the engine, the registry (with `--push`),
//! the plan, each Dockerfile (render, the hand-written file's lint, the builder's syntax, the
//! COPY/ADD sources the build context would leave out), then
//! the tag conflicts in the engine and the registry. A check that needs what an earlier one could
//! not give (a plan needs a loadable manifest) is skipped for that service only.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::build_context;
use crate::config::Strategy;
use crate::dockerfile::{self, DockerfileSource, Rendered};
use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::plan::{ImagePlan, KnownReleases, ReleasePlan};
use crate::supply_chain::sign::SigningKey;
use crate::ui::Shell;
use crate::workspace::{self, Workspace};

use super::build::build_args;
use super::builder::{check_syntax, choose_builder, docker_buildkit_env};
use super::planning::make_plan;
use super::push::Pusher;
use super::{ReleaseOptions, promote, tag};

/// A release that passed its preflight: what the pipeline needs to build, test, tag and push.
pub struct Cleared {
    /// The workspace.
    pub ws: Workspace,
    /// The plan of every service.
    pub plan: ReleasePlan,
    /// Each image's Dockerfile, in plan order.
    pub rendered: Vec<Rendered>,
    /// Milliseconds each render took, in plan order.
    pub render_ms: Vec<u64>,
    /// The engine.
    pub engine: Engine,
    /// The registries, with `--push`.
    pub pusher: Option<Pusher>,
    /// The manifest digest of each service the registry already holds whole from this revision
    /// (a retried job), in plan order.
    pub in_registry: Vec<Option<String>>,
    /// The key each image is signed with (with `--push`), in plan order.
    pub keys: Vec<Option<Arc<SigningKey>>>,
}

/// What the preflight leads to.
pub enum Outcome {
    /// Every check passed.
    Cleared(Box<Cleared>),
    /// `--dry-run`: the plan, with whatever the engine and registry could tell.
    DryRun(ReleasePlan),
}

/// Runs every check; the error lists every failure ([`Error::all`]).
pub async fn run(release: &ReleaseOptions, shell: &Shell) -> Result<Outcome> {
    let mut problems = Problems::default();
    let (ws, services, failed) = workspace::load_each(&release.selection, true)?;
    problems.extend(failed);
    problems.note(ws.check_lockfile());
    let repositories: Vec<&str> = services.iter().map(|s| s.config.image.as_str()).collect();

    let engine = match Engine::connect().await {
        Ok(engine) => Some(engine),
        Err(e) if release.dry_run => {
            shell.warn(format!(
                "{e}; the plan below does not know the engine's existing releases"
            ));
            None
        }
        Err(e) => {
            problems.push(e);
            None
        }
    };
    let mut known = match &engine {
        Some(engine) => problems
            .note(tag::known_releases(engine, &repositories).await)
            .unwrap_or_default(),
        None => KnownReleases::new(),
    };
    // With --push the registry's releases decide the forward-only rule; a registry that refuses
    // or does not answer stops the release before anything is built or tagged.
    let mut pusher = None;
    if release.push {
        let facts = match &engine {
            Some(engine) => problems.note(engine.push_facts().await),
            None => Some(engine::info::PushFacts::default()),
        };
        if let Some(facts) = facts {
            let connected = match Pusher::connect(&facts, &repositories).await {
                Ok(mut p) => p.known_releases(&mut known).await.map(|()| p),
                Err(e) => Err(e),
            };
            match connected {
                Ok(p) => pusher = Some(p),
                Err(e) if release.dry_run => shell.warn(format!(
                    "{e}; the plan below does not know the registry's releases"
                )),
                Err(e) => problems.push(e),
            }
        }
    }
    let Some(mut plan) = problems.note(make_plan(&services, &known, &release.plan)) else {
        return Err(problems.into_error().expect("a problem was noted"));
    };
    if release.immutable_only {
        plan.images.iter_mut().for_each(promote::immutable_stage);
    }
    if release.dry_run {
        return match problems.into_error() {
            Some(e) => Err(e),
            None => Ok(Outcome::DryRun(plan)),
        };
    }

    let builders = match &engine {
        Some(engine) => problems.note(engine.builders().await),
        None => None,
    };
    let buildkit_env = problems
        .note(docker_buildkit_env(
            std::env::var("DOCKER_BUILDKIT").ok().as_deref(),
        ))
        .flatten();
    let mut rendered = Vec::new();
    let mut render_ms = Vec::new();
    for image in &plan.images {
        let started = std::time::Instant::now();
        let Some(r) = problems.note(dockerfile::for_image_in(&ws, image)) else {
            continue;
        };
        render_ms.push(started.elapsed().as_millis() as u64);
        // A generated Dockerfile is rendered for the builder that runs it; a hand-written one (or
        // a template's) must suit that builder as it is.
        let as_written =
            matches!(r.source, DockerfileSource::HandWritten(_)) || image.config.template.is_some();
        if let (true, Some(builders)) = (as_written, builders) {
            let choice = choose_builder(image.config.buildkit, buildkit_env, builders.buildkit);
            problems.note(check_syntax(
                &r.dockerfile,
                &dockerfile_name(&r),
                choice,
                builders,
            ));
        }
        // A COPY/ADD source the context leaves out would fail the build, or worse, build
        // without it.
        if image.config.strategy == Strategy::Docker {
            problems.note(build_context::check_copy_sources(
                &image.config.context,
                image.config.dockerfile.as_deref(),
                &dockerfile_name(&r),
                &r.dockerfile,
                &r.dockerignore,
                &build_args(image, &r),
            ));
        }
        rendered.push(r);
    }

    let plans: Vec<&ImagePlan> = plan.images.iter().collect();
    let mut in_registry: Vec<Option<String>> = vec![None; plans.len()];
    if let Some(engine) = &engine {
        problems.note(tag::preflight(engine, &plans, release.force).await);
    }
    if let Some(pusher) = &mut pusher {
        let checked = problems.note(pusher.preflight(&plans, release.force, shell).await);
        if checked.is_some() && !release.force {
            for (plan, done) in plans.iter().zip(&mut in_registry) {
                *done = problems
                    .note(pusher.released_in_registry(plan).await)
                    .flatten();
            }
        }
    }
    let keys = match release.push {
        true => signing_keys(&plans, release.sign_key.as_deref(), &mut problems),
        false => vec![None; plans.len()],
    };
    if let Some(e) = problems.into_error() {
        return Err(e);
    }
    Ok(Outcome::Cleared(Box::new(Cleared {
        ws,
        plan,
        rendered,
        render_ms,
        engine: engine.expect("an engine unless a problem was noted"),
        pusher,
        in_registry,
        keys,
    })))
}

/// Each image's signing key (`--sign-key`, else its manifest's `sign-key`), each key loaded once
/// with the password in `COSIGN_PASSWORD`: an unreadable key or a wrong password stops the
/// release before the build, not after the push.
fn signing_keys(
    plans: &[&ImagePlan],
    flag: Option<&str>,
    problems: &mut Problems,
) -> Vec<Option<Arc<SigningKey>>> {
    let password = std::env::var("COSIGN_PASSWORD").ok();
    let mut loaded: BTreeMap<&str, Option<Arc<SigningKey>>> = BTreeMap::new();
    plans
        .iter()
        .map(|plan| {
            let reference = flag.or(plan.config.supply_chain.sign_key.as_deref())?;
            loaded
                .entry(reference)
                .or_insert_with(|| {
                    problems
                        .note(SigningKey::load(reference, password.as_deref()))
                        .map(Arc::new)
                })
                .clone()
        })
        .collect()
}

/// The name a build error gives the Dockerfile.
pub fn dockerfile_name(rendered: &Rendered) -> String {
    match &rendered.source {
        DockerfileSource::HandWritten(path) => path.to_string(),
        DockerfileSource::Generated => "Dockerfile (generated)".to_owned(),
    }
}

/// The failures found so far.
#[derive(Default)]
struct Problems(Vec<Error>);

impl Problems {
    fn push(&mut self, e: Error) {
        // Several services of one workspace share a lock file, an engine and a registry: one
        // cause is reported once.
        let text = e.to_string();
        if !self.0.iter().any(|p| p.to_string() == text) {
            self.0.push(e);
        }
    }

    fn extend(&mut self, errors: Vec<Error>) {
        errors.into_iter().for_each(|e| self.push(e));
    }

    /// The value of a check that passed; a failure is kept and gives `None`.
    fn note<T>(&mut self, result: Result<T>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    fn into_error(self) -> Option<Error> {
        Error::all(self.0)
    }
}
