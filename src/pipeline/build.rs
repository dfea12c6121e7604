//! The build step: the host-built binary (for the `host` strategy), the build context, the image.
//!
//! An image is not rebuilt when the engine already has one built by this tool from the same
//! revision, package and Dockerfile (a clean tree only: a dirty tree changes without a new
//! revision). Otherwise the engine's layer cache does the rest.

use std::collections::{BTreeMap, HashMap};
use std::process::Stdio;

use bollard::query_parameters::BuildImageOptions;
use camino::Utf8PathBuf;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::build_context::{self, BuildContext};
use crate::config::Strategy;
use crate::docker_config::credentials::{self, Credentials, DockerConfig};
use crate::dockerfile::{DockerfileSource, Rendered};
use crate::dockerfile_syntax::{BuildArgs, Dockerfile};
use crate::engine::Engine;
use crate::engine::build::{BuildJob, Builder};
use crate::engine::images::ImageStore;
use crate::error::{Error, Result};
use crate::plan::{ImagePlan, LABEL_PACKAGE, OCI};
use crate::ui::{Shell, human_bytes, short_id};

use super::assemble::{self, Maker};
use super::builder;

pub use builder::{BuilderChoice, check_syntax, choose_builder, docker_buildkit_env};

/// Label holding a digest of the Dockerfile and build args an image was built from.
pub const LABEL_DOCKERFILE: &str = "io.cargo-docker-release.dockerfile";
pub use crate::engine::build::LABEL_BUILDER;

/// What the build step produced.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// Image ID (`sha256:…`).
    pub image_id: String,
    /// Whether an existing image was reused instead of building.
    pub reused: bool,
    /// The builder that built it (for a reused image: that image's, when it says).
    pub builder: Option<Builder>,
    /// The manifest digest of its base, when the manifest pins it or the tool resolved it to
    /// assemble the image (other ways to know it are asked only when provenance needs it).
    pub base_digest: Option<String>,
    /// Bytes of build context sent to the engine (0 when reused).
    pub context_bytes: u64,
    /// The host-built binary (`host` strategy).
    pub binary: Option<Utf8PathBuf>,
    /// The container's integration tests, when cargo built them with the binary.
    pub tests: Option<Vec<Utf8PathBuf>>,
    /// Milliseconds spent in `cargo build` on the host.
    pub cargo_ms: u64,
    /// Milliseconds spent building the image on the engine.
    pub image_ms: u64,
}

/// The base's digest when the manifest pins it (`base-digest`, or `base = "…@sha256:…"`).
fn pinned_base(plan: &ImagePlan) -> Option<String> {
    let base = &plan.config.base;
    (!base.is_scratch()).then(|| base.digest.as_ref().map(ToString::to_string))?
}

/// The registries of the images `dockerfile` pulls (`FROM`, `COPY --from`, `RUN --mount=from=`),
/// with the Docker config's credentials for each that has them. A config or credential helper
/// that fails only costs the credentials (with a warning): the images may be local.
fn pull_credentials(dockerfile: &str, shell: &Shell) -> BTreeMap<String, Credentials> {
    let parsed = Dockerfile::parse(dockerfile);
    let mut stages: Vec<String> = Vec::new();
    let mut images: Vec<String> = Vec::new();
    // Bases as the global `ARG`s' defaults expand them (`FROM ${BASE}`).
    for stage in parsed.stages() {
        let image = stage
            .base
            .unwrap_or_else(|| parsed.instructions[stage.from].from_parts().0);
        if !image.is_empty() && stage.parent.is_none() {
            images.push(image);
        }
        stages.extend(stage.name);
    }
    for ins in &parsed.instructions {
        for flag in &ins.flags {
            match (flag.name.as_str(), &flag.value) {
                ("from", Some(v)) => images.push(v.clone()),
                ("mount", Some(v)) => images.extend(
                    v.split(',')
                        .filter_map(|kv| kv.strip_prefix("from="))
                        .map(str::to_owned),
                ),
                _ => {}
            }
        }
    }
    let mut hosts: Vec<&str> = images
        .iter()
        .map(|i| i.trim_matches('"'))
        .filter(|i| {
            !i.is_empty()
                && !i.contains('$')
                && !i.eq_ignore_ascii_case("scratch")
                && !stages.contains(&i.to_ascii_lowercase())
                && !i.bytes().all(|b| b.is_ascii_digit())
        })
        .map(credentials::registry_host)
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    let mut found = BTreeMap::new();
    if hosts.is_empty() {
        return found;
    }
    let config = match DockerConfig::load() {
        Ok(c) => c,
        Err(e) => {
            shell.warn(format!("building without registry credentials: {e}"));
            return found;
        }
    };
    for host in hosts {
        match config.credentials(host) {
            Ok(Some(c)) => {
                found.insert(host.to_owned(), c);
            }
            Ok(None) => {}
            Err(e) => shell.warn(format!("building without credentials for {host}: {e}")),
        }
    }
    found
}

/// Builds (or reuses) the image of `plan` from `rendered`.
///
/// The builder is BuildKit whenever the engine offers it (see [`choose_builder`]). When the
/// classic builder is chosen for a generated `docker`-strategy Dockerfile written for BuildKit,
/// the classic builder's version is rendered instead (`dockerfile --check` compares the
/// manifest's choice, which does not depend on the engine).
///
/// `cargo_flags` are `--locked`/`--offline`/`--frozen` as given on the command line.
pub async fn build(
    engine: &Engine,
    plan: &ImagePlan,
    rendered: &Rendered,
    compiled: Option<(Utf8PathBuf, Vec<Utf8PathBuf>)>,
    cargo_flags: &[String],
    shell: &Shell,
) -> Result<BuiltImage> {
    let name = format!("{} {}", plan.package, plan.version);
    let env = docker_buildkit_env(std::env::var("DOCKER_BUILDKIT").ok().as_deref())?;
    let builders = engine.builders().await?;
    let choice = choose_builder(plan.config.buildkit, env, builders.buildkit);
    let builder = choice.builder();
    let classic_render;
    let rendered = if builder == Builder::Classic
        && plan.config.buildkit
        && rendered.source == DockerfileSource::Generated
        && plan.config.strategy == Strategy::Docker
        && plan.config.template.is_none()
    {
        let mut classic = plan.clone();
        classic.config.buildkit = false;
        classic_render = crate::dockerfile::for_image(&classic)?;
        &classic_render
    } else {
        rendered
    };
    let dockerfile_name = match &rendered.source {
        DockerfileSource::HandWritten(path) => path.to_string(),
        DockerfileSource::Generated => "Dockerfile (generated)".to_owned(),
    };
    check_syntax(&rendered.dockerfile, &dockerfile_name, choice, builders)?;
    let args = build_args(plan, rendered);
    let digest = inputs_digest(&rendered.dockerfile, &digest_inputs(plan, &args));
    if let Some((id, built_by)) = reusable_image(engine, plan, &digest).await? {
        shell.status(
            "Reusing",
            format!(
                "{name} image {} (built from {} with the same Dockerfile)",
                short_id(&id),
                &plan.revision[..plan.revision.len().min(12)]
            ),
        );
        return Ok(BuiltImage {
            image_id: id,
            reused: true,
            builder: built_by,
            base_digest: pinned_base(plan),
            context_bytes: 0,
            binary: None,
            tests: None,
            cargo_ms: 0,
            image_ms: 0,
        });
    }

    // After the reuse check: a reused image needs no word from its base's registry.
    let maker = assemble::resolve(engine, plan, rendered, &args, choice).await;
    let mtime = plan.git.commit_time.timestamp();
    let started = std::time::Instant::now();
    let builder = match maker {
        Maker::Assembled(_) => Builder::Assembled,
        Maker::Builder(_) => builder,
    };
    let labels = build_labels(plan, rendered, &args, &digest, builder);
    let (context, binary) = match plan.config.strategy {
        Strategy::Host => {
            let (binary, tests) = match compiled {
                Some(compiled) => compiled,
                None => cargo_build(plan, cargo_flags, shell).await?,
            };
            let tests = Some(tests);
            if let Maker::Assembled(spec) = &maker {
                let cargo_ms = started.elapsed().as_millis() as u64;
                let started = std::time::Instant::now();
                let image = assemble::assemble(engine, plan, spec, &binary, labels).await?;
                let image_ms = started.elapsed().as_millis() as u64;
                check_labels(engine, plan, image.image_id()).await?;
                shell.status(
                    "Assembled",
                    format!(
                        "{name} image {} ({}, manifest {}) in {image_ms} ms",
                        short_id(image.image_id()),
                        human_bytes(image.layers.iter().map(|l| l.blob.data.len() as u64).sum()),
                        short_id(image.manifest_digest()),
                    ),
                );
                return Ok(BuiltImage {
                    image_id: image.image_id().to_owned(),
                    reused: false,
                    builder: Some(Builder::Assembled),
                    base_digest: image.base.as_ref().map(|b| b.manifest_digest.clone()),
                    context_bytes: 0,
                    binary: Some(binary),
                    tests,
                    cargo_ms,
                    image_ms,
                });
            }
            if let Maker::Builder(why) = &maker {
                shell.verbose("Building", format!("{name} with {builder}: {why}"));
            }
            let ctx = build_context::host_context(
                &rendered.dockerfile,
                &plan.config.bin,
                &binary,
                mtime,
            )?;
            (ctx, Some((binary, tests)))
        }
        Strategy::Docker => {
            let ctx = build_context::service_context(
                &plan.config.context,
                &rendered.dockerignore,
                plan.config.dockerfile.as_deref(),
                &rendered.dockerfile,
                mtime,
            )?;
            (ctx, None)
        }
    };
    let cargo_ms = started.elapsed().as_millis() as u64;
    shell.verbose(
        "Sending",
        format!(
            "{} of build context ({} files) for {name} to {builder} ({})",
            human_bytes(context.size() as u64),
            context.files.len(),
            choice.reason()
        ),
    );
    let started = std::time::Instant::now();
    let options = build_options(&context, &args, labels);
    let job = BuildJob {
        options,
        builder,
        context: &context,
        dockerfile: &rendered.dockerfile,
        dockerfile_name: &dockerfile_name,
        credentials: pull_credentials(&rendered.dockerfile, shell),
        name: &name,
    };
    let image_id = {
        let view = crate::ui::BuildView::new(shell, &name);
        engine.build_image(job, &mut |p| view.show(p)).await?
    };
    let image_ms = started.elapsed().as_millis() as u64;
    check_labels(engine, plan, &image_id).await?;
    shell.status(
        "Built",
        format!(
            "{name} image {} with {builder} in {:.1}s",
            short_id(&image_id),
            image_ms as f64 / 1000.0
        ),
    );
    Ok(BuiltImage {
        image_id,
        reused: false,
        builder: Some(builder),
        base_digest: pinned_base(plan),
        context_bytes: context.size() as u64,
        tests: binary.as_ref().and_then(|(_, tests)| tests.clone()),
        binary: binary.map(|(binary, _)| binary),
        cargo_ms,
        image_ms,
    })
}

/// Whether [`build`] will reuse an image for this host-strategy `plan` (its inputs are those
/// of an image the engine has): then cargo need not build it.
pub async fn reuses_image(engine: &Engine, plan: &ImagePlan, rendered: &Rendered) -> Result<bool> {
    let args = build_args(plan, rendered);
    let digest = inputs_digest(&rendered.dockerfile, &digest_inputs(plan, &args));
    Ok(reusable_image(engine, plan, &digest).await?.is_some())
}

/// The built image carries every plan label with exactly the plan's value.
async fn check_labels(store: &impl ImageStore, plan: &ImagePlan, image_id: &str) -> Result<()> {
    let info = store.image(image_id).await?.ok_or_else(|| {
        Error::step(
            "build",
            format!("the built image {image_id} is not in the engine"),
        )
    })?;
    let wrong: Vec<String> = plan
        .labels
        .iter()
        .filter(|(k, v)| info.labels.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "  {k}: wanted {v:?}, got {:?}",
                info.labels
                    .get(k)
                    .map(String::as_str)
                    .unwrap_or("(missing)")
            )
        })
        .collect();
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Error::step_with_help(
        "build",
        format!(
            "image {} does not carry the plan's labels:\n{}",
            short_id(image_id),
            wrong.join("\n")
        ),
        "a later LABEL in the Dockerfile overrides them; remove it",
    ))
}

/// An image this tool built from the same clean revision, package and Dockerfile, with the
/// builder its label names.
async fn reusable_image(
    store: &impl ImageStore,
    plan: &ImagePlan,
    digest: &str,
) -> Result<Option<(String, Option<Builder>)>> {
    if plan.git.dirty {
        return Ok(None);
    }
    let revision = format!("{OCI}.revision");
    let found = store
        .images_labelled(&[
            (revision.as_str(), plan.revision.as_str()),
            (LABEL_PACKAGE, plan.package.as_str()),
            (LABEL_DOCKERFILE, digest),
        ])
        .await?;
    Ok(found.into_iter().next().map(|i| {
        let builder = i
            .labels
            .get(LABEL_BUILDER)
            .and_then(|l| Builder::from_label(l));
        (i.id, builder)
    }))
}

/// The labels an image gets besides the Dockerfile's: every plan label the Dockerfile does not
/// already set to exactly its value (so that every value round-trips exactly without one extra
/// build step per label the Dockerfile got right), the Dockerfile digest, what made it, and for
/// a host-built binary the toolchain.
pub fn build_labels(
    plan: &ImagePlan,
    rendered: &Rendered,
    build_args: &BTreeMap<String, String>,
    digest: &str,
    builder: Builder,
) -> BTreeMap<String, String> {
    let mut labels = missing_labels(&plan.labels, &rendered.dockerfile, build_args);
    labels.insert(LABEL_DOCKERFILE.to_owned(), digest.to_owned());
    labels.insert(LABEL_BUILDER.to_owned(), builder.label().to_owned());
    if plan.config.strategy == Strategy::Host {
        labels.insert(assemble::LABEL_RUSTC.to_owned(), assemble::rustc_label());
    }
    labels
}

/// The engine's build parameters: the build args, the classic builder, intermediate containers
/// removed even when a step fails, and `labels` ([`build_labels`]) through the API.
///
/// This is the one place that decides what the engine is asked to do.
pub fn build_options(
    context: &BuildContext,
    build_args: &BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
) -> BuildImageOptions {
    BuildImageOptions {
        dockerfile: context.dockerfile.clone(),
        rm: true,
        forcerm: true,
        labels: Some(labels.into_iter().collect::<HashMap<_, _>>()),
        buildargs: (!build_args.is_empty()).then(|| {
            build_args
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        ..Default::default()
    }
}

/// The labels of `wanted` that `dockerfile` does not set to exactly the wanted value.
pub fn missing_labels(
    wanted: &BTreeMap<String, String>,
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let set = dockerfile_labels(dockerfile, build_args);
    wanted
        .iter()
        .filter(|(k, v)| set.get(*k) != Some(v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The labels a Dockerfile's final stage sets with `LABEL key=value …` (with those of the
/// stages it is built `FROM`), read by [`crate::dockerfile_syntax`] as BuildKit reads them: quotes, the escape
/// directive, continuations, and variables expanded in their stage's scope with `build_args`.
/// A pair whose value depends on something the file does not tell (the base image's
/// environment, a build argument not given), and the legacy `LABEL key value` form, are left
/// out, so that the API sets them instead.
pub fn dockerfile_labels(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let parsed = Dockerfile::parse(dockerfile);
    // Per stage: key -> value (`None`: set to something unknown).
    let mut stages: Vec<BTreeMap<String, Option<String>>> = Vec::new();
    parsed.walk(BuildArgs::Given(build_args), |stage, ins, scope| {
        let Some(stage) = stage else { return };
        if ins.keyword == "FROM" {
            let inherited = stage.parent.map(|p| stages[p].clone()).unwrap_or_default();
            stages.push(inherited);
            return;
        }
        if ins.keyword != "LABEL" || !ins.words().first().is_some_and(|w| w.contains('=')) {
            return;
        }
        let labels = &mut stages[stage.index];
        for (key, value) in ins.pairs() {
            let Ok(key) = scope.expand(&key) else {
                continue;
            };
            labels.insert(key, scope.expand(&value).ok());
        }
    });
    stages
        .pop()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect()
}

/// Build args: the manifest's `build-args`, the ones the Dockerfile needs ([`Rendered::build_args`]),
/// plus the release facts (`REVISION`/`SHA`, `VERSION`, `CREATED`) for each one a (hand-written)
/// Dockerfile declares with `ARG` and nothing else sets.
pub fn build_args(plan: &ImagePlan, rendered: &Rendered) -> BTreeMap<String, String> {
    let mut args = plan.config.build_args.clone();
    args.extend(rendered.build_args.clone());
    let declared = Dockerfile::parse(&rendered.dockerfile).declared_args();
    let created = plan
        .git
        .commit_time
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for (name, value) in [
        ("REVISION", plan.revision.as_str()),
        ("SHA", plan.revision.as_str()),
        ("VERSION", plan.version.as_str()),
        ("CREATED", created.as_str()),
    ] {
        if declared.iter().any(|d| d == name) && !args.contains_key(name) {
            args.insert(name.to_owned(), value.to_owned());
        }
    }
    args
}

/// What goes into [`inputs_digest`] besides the Dockerfile: the build args, and cargo's feature
/// flags when there are any (a host build's Dockerfile does not show them; without flags the
/// digest is what it always was, so earlier images are still reused).
fn digest_inputs(plan: &ImagePlan, args: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut inputs = args.clone();
    if !plan.features.is_default() {
        // NUL cannot appear in a build arg's name: no clash with a real one.
        inputs.insert("\0cargo-features".into(), plan.features.flags().join(" "));
    }
    inputs
}

/// A stable digest of what, besides the revision, decides the image: the Dockerfile text and the
/// build args (FNV-1a, 64 bits; it identifies, it does not protect).
pub fn inputs_digest(dockerfile: &str, args: &BTreeMap<String, String>) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(dockerfile.as_bytes());
    for (k, v) in args {
        eat(&[0]);
        eat(k.as_bytes());
        eat(&[0]);
        eat(v.as_bytes());
    }
    format!("fnv1a64:{hash:016x}")
}

/// The container's integration tests of `plan` (`[[package.metadata.docker.test.cargo]]`).
fn container_tests(plan: &ImagePlan) -> Vec<&str> {
    plan.config
        .test
        .cargo
        .iter()
        .map(|c| c.test.as_str())
        .collect()
}

/// The cargo command line of the host strategy (without the program): `cargo build --release`
/// of each plan's bin or, when a plan has container tests, `cargo test --release --no-run
/// --test …`, which builds the packages' bins beside them in the same invocation, so that the
/// tests share the services' compiled dependencies.
pub fn cargo_args(plans: &[&ImagePlan], cargo_flags: &[String]) -> Vec<String> {
    let first = plans[0];
    let mut tests: Vec<&str> = plans.iter().flat_map(|p| container_tests(p)).collect();
    tests.sort_unstable();
    tests.dedup();
    let command: &[&str] = if tests.is_empty() {
        &["build", "--release"]
    } else {
        &["test", "--release", "--no-run"]
    };
    let mut args: Vec<String> = command.iter().map(|a| (*a).to_owned()).collect();
    args.extend(
        [
            "--message-format=json-render-diagnostics",
            "--manifest-path",
            first.manifest_path.as_str(),
        ]
        .map(str::to_owned),
    );
    for plan in plans {
        args.extend(["--package", plan.package.as_str()].map(str::to_owned));
        if tests.is_empty() {
            args.extend(["--bin", plan.config.bin.as_str()].map(str::to_owned));
        }
    }
    for test in tests {
        args.extend(["--test", test].map(str::to_owned));
    }
    if first.config.static_link {
        args.push("--target".into());
        args.push(crate::toolchain::host_triple().to_owned());
    }
    args.extend(cargo_flags.iter().cloned());
    // The image is built from the revision's Cargo.lock, never from one cargo rewrote.
    if !cargo_flags
        .iter()
        .any(|f| f == "--locked" || f == "--frozen")
    {
        args.push("--locked".into());
    }
    args.extend(first.features.flags());
    args
}

/// What one cargo invocation built.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Each plan's binary, in order.
    pub binaries: Vec<Utf8PathBuf>,
    /// Each plan's container tests, in the order of its `[[test.cargo]]`.
    pub tests: Vec<Vec<Utf8PathBuf>>,
}

/// Runs cargo for the plan's binary and the container's integration tests in one invocation,
/// cargo's output streamed to stderr; returns the executables from cargo's artifact messages.
pub async fn cargo_build(
    plan: &ImagePlan,
    cargo_flags: &[String],
    shell: &Shell,
) -> Result<(Utf8PathBuf, Vec<Utf8PathBuf>)> {
    let mut compiled = cargo_build_all(&[plan], cargo_flags, shell).await?;
    Ok((compiled.binaries.remove(0), compiled.tests.remove(0)))
}

/// Several services of one workspace, with the same linking and features, built by one cargo
/// invocation (`-p a --bin a -p b --bin b`, or `cargo test --no-run` with their container
/// tests): cargo compiles their shared dependencies once, instead of two cargo processes
/// waiting on one target directory's lock. Returns each plan's binary and tests, in order.
pub async fn cargo_build_all(
    plans: &[&ImagePlan],
    cargo_flags: &[String],
    shell: &Shell,
) -> Result<Compiled> {
    let plan = plans[0];
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let args = cargo_args(plans, cargo_flags);
    let mut tests: Vec<&str> = plans.iter().flat_map(|p| container_tests(p)).collect();
    tests.sort_unstable();
    tests.dedup();
    let names: Vec<String> = plans
        .iter()
        .map(|p| format!("{} {}", p.package, p.version))
        .collect();
    let bins: Vec<&str> = plans.iter().map(|p| p.config.bin.as_str()).collect();
    let command = if tests.is_empty() {
        format!("cargo build --release --bin {}", bins.join(" --bin "))
    } else {
        format!(
            "cargo test --release --no-run --test {}: the bin and the container's tests",
            tests.join(" --test ")
        )
    };
    shell.status(
        "Compiling",
        format!(
            "{} ({command}{})",
            names.join(", "),
            if plan.config.static_link {
                ", static"
            } else {
                ""
            }
        ),
    );
    shell.verbose("Running", format!("`{cargo} {}`", args.join(" ")));
    let mut command = tokio::process::Command::new(&cargo);
    command
        .args(&args)
        .current_dir(&plan.package_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group: the whole build (rustc, build scripts) stops with the step.
        .process_group(0);
    plan.host_build().apply(&mut command);
    let mut child = command.spawn().map_err(|e| {
        Error::step_with_help(
            "build",
            format!("cannot run `{cargo}`: {e}"),
            "install Rust with rustup, or set CARGO to the cargo binary",
        )
    })?;
    let _group = crate::interrupt::ProcessGroup::new(child.id());
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let stderr_task = {
        let shell = shell.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            let mut kept = Vec::new();
            while let Ok(Some(line)) = lines.next_line().await {
                shell.raw(&format!("{line}\n"));
                kept.push(line);
            }
            kept
        })
    };
    let mut executables: Vec<Option<Utf8PathBuf>> = vec![None; plans.len()];
    let mut test_executables: Vec<Vec<Option<Utf8PathBuf>>> = plans
        .iter()
        .map(|p| vec![None; p.config.test.cargo.len()])
        .collect();
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Ok(cargo_metadata::Message::CompilerArtifact(artifact)) =
            serde_json::from_str::<cargo_metadata::Message>(&line)
        else {
            continue;
        };
        let Some(exe) = artifact.executable else {
            continue;
        };
        if artifact.profile.test {
            // Each plan's tests of its own package: two packages may have tests of one name.
            for (plan, slots) in plans.iter().zip(&mut test_executables) {
                let wanted = container_tests(plan);
                if artifact.target.is_test()
                    && artifact.manifest_path == plan.manifest_path
                    && let Some(i) = wanted
                        .iter()
                        .position(|t| *t == artifact.target.name.as_str())
                {
                    slots[i] = Some(exe.clone());
                }
            }
        } else if artifact.target.is_bin() {
            // Each plan's bin of its own package: two packages may have bins of one name.
            for (plan, slot) in plans.iter().zip(&mut executables) {
                if artifact.target.name.as_str() == plan.config.bin.as_str()
                    && artifact.manifest_path == plan.manifest_path
                {
                    *slot = Some(exe.clone());
                }
            }
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| Error::io("waiting for cargo", e))?;
    let stderr_lines = stderr_task.await.unwrap_or_default();
    if !status.success() {
        if shell.verbosity() == crate::ui::Verbosity::Quiet {
            shell.raw_always(&format!("{}\n", stderr_lines.join("\n")));
        }
        let packages: Vec<&str> = plans.iter().map(|p| p.package.as_str()).collect();
        return Err(Error::step_with_help(
            "build",
            format!(
                "`cargo build` of `{}` failed ({status})",
                packages.join("`, `")
            ),
            "cargo's errors are above",
        ));
    }
    let binaries = plans
        .iter()
        .zip(executables)
        .map(|(plan, exe)| {
            exe.ok_or_else(|| {
                Error::step(
                    "build",
                    format!(
                        "cargo built `{}` but reported no executable `{}`",
                        plan.package, plan.config.bin
                    ),
                )
            })
        })
        .collect::<Result<_>>()?;
    let tests = plans
        .iter()
        .zip(test_executables)
        .map(|(plan, slots)| {
            container_tests(plan)
                .into_iter()
                .zip(slots)
                .map(|(test, exe)| {
                    exe.ok_or_else(|| Error::TestConfig {
                        message: format!(
                            "cargo built no test executable for `{test}` of `{}`",
                            plan.package
                        ),
                        help: Some("name an integration test target (`tests/NAME.rs`)".into()),
                    })
                })
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    Ok(Compiled { binaries, tests })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_containers_tests_are_built_with_the_bin_in_one_release_invocation() {
        let plan = crate::pipeline::test_stage::tests_support::image_plan(
            "acme/app",
            "1.0.0",
            "c",
            vec![],
        );
        let mut with_tests = plan.clone();
        with_tests.config.test.cargo = ["smoke", "api"]
            .map(|t| crate::config::CargoCheck {
                test: t.into(),
                args: vec![],
                timeout: std::time::Duration::from_secs(60),
            })
            .to_vec();
        let args = cargo_args(&[&with_tests], &[]);
        assert_eq!(args[..3], ["test", "--release", "--no-run"]);
        let joined = args.join(" ");
        assert!(
            joined.contains("--package app --test api --test smoke"),
            "{joined}"
        );
        assert!(
            !joined.contains("--bin"),
            "the bins come with the tests: {joined}"
        );
        let args = cargo_args(&[&plan], &[]);
        assert_eq!(args[..2], ["build", "--release"]);
        assert!(args.join(" ").contains("--package app --bin app"));
    }

    #[test]
    fn cargo_always_builds_from_the_lock_file() {
        let plan = crate::pipeline::test_stage::tests_support::image_plan(
            "acme/app",
            "1.0.0",
            "c",
            vec![],
        );
        let count = |flags: &[&str]| {
            let flags: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
            let args = cargo_args(&[&plan], &flags);
            (
                args.iter().filter(|a| *a == "--locked").count(),
                args.iter().filter(|a| *a == "--offline").count(),
            )
        };
        assert_eq!(count(&[]), (1, 0));
        assert_eq!(count(&["--locked"]), (1, 0));
        assert_eq!(count(&["--offline"]), (1, 1));
        assert_eq!(
            count(&["--frozen"]),
            (0, 0),
            "--frozen already means --locked"
        );
    }

    #[test]
    fn declared_args_are_found_case_insensitively() {
        let declared = |text: &str| Dockerfile::parse(text).declared_args();
        assert_eq!(
            declared("FROM x\narg REVISION\n  ARG VERSION=1\nRUN [\"a\"]\nARG\n"),
            ["REVISION", "VERSION"]
        );
        // Several names, continued lines (with either escape character), not heredoc bodies.
        assert_eq!(
            declared("FROM x\nARG A=1 \\\n  SHA\nRUN <<EOF\nARG NOT\nEOF\n"),
            ["A", "SHA"]
        );
        assert_eq!(
            declared("# escape=`\nFROM x\nARG A=c:\\ `\n  CREATED\n"),
            ["A", "CREATED"]
        );
    }

    #[test]
    fn the_digest_changes_with_the_dockerfile_and_the_args() {
        let none = BTreeMap::new();
        let one = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        let d = inputs_digest("FROM scratch\n", &none);
        assert_eq!(d, inputs_digest("FROM scratch\n", &none));
        assert_ne!(d, inputs_digest("FROM scratch \n", &none));
        assert_ne!(d, inputs_digest("FROM scratch\n", &one));
    }

    #[test]
    fn dockerfile_labels_follow_the_builders_quoting() {
        let text = "FROM scratch\nLABEL \"a\"=\"x \\\"q\\\" \\\\ \\$y\" b=plain \\\n  # comment\n  \"c\"=\"line\\nbreak\"\nlabel d='single $q' e=\"$HOME\"\nLABEL legacy value\n";
        let labels = dockerfile_labels(text, &BTreeMap::new());
        assert_eq!(labels["a"], "x \"q\" \\ $y");
        assert_eq!(labels["b"], "plain");
        // The classic builder keeps an unknown escape as it is.
        assert_eq!(labels["c"], "line\\nbreak");
        assert_eq!(labels["d"], "single $q");
        assert!(!labels.contains_key("e"), "expanded by the builder");
        assert!(!labels.contains_key("legacy"));

        let wanted = BTreeMap::from([
            ("a".to_owned(), "x \"q\" \\ $y".to_owned()),
            ("c".to_owned(), "line\nbreak".to_owned()),
            ("z".to_owned(), "new".to_owned()),
        ]);
        let missing: Vec<String> = missing_labels(&wanted, text, &BTreeMap::new())
            .into_keys()
            .collect();
        assert_eq!(missing, ["c", "z"]);

        let args = BTreeMap::from([
            ("SHA".to_owned(), "abc".to_owned()),
            ("UNDECLARED".to_owned(), "x".to_owned()),
        ]);
        let text = "FROM scratch\nARG SHA\nLABEL r=${SHA} s=\"v-$SHA\" t=$UNDECLARED u=${SHA:-d} v=${SHA:+set}\n";
        let labels = dockerfile_labels(text, &args);
        assert_eq!(labels["r"], "abc");
        assert_eq!(labels["s"], "v-abc");
        assert!(!labels.contains_key("t"));
        // BuildKit's modifiers are read too (they were left to the API before).
        assert_eq!((labels["u"].as_str(), labels["v"].as_str()), ("abc", "set"));
    }

    #[test]
    fn dockerfile_labels_are_the_final_stages_with_buildkits_scopes() {
        let args = BTreeMap::from([("SHA".to_owned(), "abc".to_owned())]);
        // A global `ARG` is not seen in a stage that does not declare it again: the builder
        // sets `r` to the base image's SHA, if any, not to the build argument.
        let text = "ARG SHA\nFROM scratch\nLABEL r=${SHA}\n";
        assert!(!dockerfile_labels(text, &args).contains_key("r"));
        let text = "ARG SHA=x\nFROM scratch\nARG SHA\nLABEL r=${SHA}\n";
        assert_eq!(dockerfile_labels(text, &args)["r"], "abc");
        // A builder stage's labels never reach the image; a stage built from another keeps
        // its labels and variables.
        let text = "FROM scratch AS build\nARG SHA\nLABEL b=1 r=$SHA\nFROM build AS final\nLABEL f=$SHA\nFROM scratch AS other\nLABEL o=1\n";
        assert_eq!(
            dockerfile_labels(text, &args),
            BTreeMap::from([("o".to_owned(), "1".to_owned())])
        );
        let text = "FROM scratch AS build\nARG SHA\nLABEL b=1 r=$SHA\nFROM build\nLABEL f=$SHA\n";
        let labels = dockerfile_labels(text, &args);
        assert_eq!(
            labels.values().collect::<Vec<_>>(),
            ["1", "abc", "abc"],
            "{labels:?}"
        );
        // A continuation with the escape directive's character.
        let text = "# escape=`\nFROM scratch\nLABEL a=\"c:\\dir\" `\n  b=\"x`\"y\"\n";
        let labels = dockerfile_labels(text, &args);
        assert_eq!(
            (labels["a"].as_str(), labels["b"].as_str()),
            ("c:\\dir", "x\"y")
        );
    }

    #[test]
    fn an_image_is_reused_only_for_the_same_clean_revision_package_and_dockerfile() {
        let rev = "cccccccccccccccccccccccccccccccccccccccc";
        let mut plan = crate::pipeline::test_stage::tests_support::image_plan(
            "acme/app",
            "1.0.0",
            rev,
            vec![],
        );
        let store = crate::pipeline::tag::fake::FakeStore::default().with_image(
            "sha256:built",
            &[
                ("org.opencontainers.image.revision", rev),
                (LABEL_PACKAGE, "app"),
                (LABEL_DOCKERFILE, "fnv1a64:1"),
            ],
            &[],
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let reuse = |plan: &ImagePlan, digest: &str| {
            rt.block_on(reusable_image(&store, plan, digest)).unwrap()
        };
        assert_eq!(
            reuse(&plan, "fnv1a64:1").map(|(id, _)| id).as_deref(),
            Some("sha256:built")
        );
        assert_eq!(reuse(&plan, "fnv1a64:2"), None, "another Dockerfile");
        plan.package = "other".into();
        assert_eq!(reuse(&plan, "fnv1a64:1"), None, "another package");
        plan.package = "app".into();
        plan.git.dirty = true;
        assert_eq!(
            reuse(&plan, "fnv1a64:1"),
            None,
            "a dirty tree is always rebuilt"
        );
    }

    #[test]
    fn feature_flags_are_build_inputs_and_no_flags_keep_the_old_digest() {
        let rev = "cccccccccccccccccccccccccccccccccccccccc";
        let mut plan = crate::pipeline::test_stage::tests_support::image_plan(
            "acme/app",
            "1.0.0",
            rev,
            vec![],
        );
        let args = BTreeMap::new();
        let plain = inputs_digest("FROM scratch\n", &digest_inputs(&plan, &args));
        assert_eq!(plain, inputs_digest("FROM scratch\n", &args));
        plan.features.features = vec!["metrics".into()];
        let with = inputs_digest("FROM scratch\n", &digest_inputs(&plan, &args));
        assert_ne!(with, plain);
        assert!(cargo_args(&[&plan], &[]).ends_with(&["--features".into(), "metrics".into()]));
        plan.features.features.clear();
        plan.features.all_features = true;
        assert_ne!(
            inputs_digest("FROM scratch\n", &digest_inputs(&plan, &args)),
            with
        );
    }

    #[test]
    fn sizes_and_ids_read_well() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
    }
}
