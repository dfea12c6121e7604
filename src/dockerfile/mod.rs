//! Dockerfiles: embedded templates rendered strictly, the drift check and the lint of the
//! Dockerfile a package uses. The Dockerfile language itself (the tokenizer and the one escaping
//! function) is the leaf module [`crate::dockerfile_syntax`].
//!
//! [`for_image`] is what the build step calls: the generated Dockerfile, or the user's
//! hand-written one after it passed [`lint`] (a failing one blocks the release, exit 2).
//!
//! # What is in a generated Dockerfile, and what `--check` compares
//!
//! A generated Dockerfile depends on the manifest only, never on the commit: the values that change
//! with every commit (`SHA`, `VERSION`, `CREATED`, `BUILD`) are declared as
//! `ARG`s in the runtime stage and fill `ENV SHA=${SHA}` and the matching OCI labels; the build
//! passes them from [`Rendered::build_args`]. So the file that `dockerfile --write` commits is
//! byte for byte what [`for_image`] builds, `dockerfile --check` compares the two exactly, and it
//! fails only when the manifest (or the workspace layout, or the tool's templates) changed, never
//! because of a new commit or a version bump. A committed file can never hold the SHA of the commit
//! that contains it anyway. Labels that only some builds have (`ref.name`, the CI run URL) are
//! not in the file: the build sets them through the engine API's labels.
//!
//! Every other value from Cargo.toml or the command line goes through [`escape::word`] (or
//! [`escape::exec_form`] for exec-form arrays). A value a Dockerfile line cannot hold (a line feed,
//! more than 16 KiB) is passed exactly as a build argument instead: an `ARG LABEL_n`/`ARG ENV_n`
//! referenced as `"${LABEL_n}"`, with a comment holding the value JSON-escaped (only its size when
//! it is longer than 16 KiB) so that `--check` still sees it change. Docker expands build arguments without parsing them again, so nothing is
//! lost and nothing can inject an instruction.
//!
//! # Template variables
//!
//! The built-in templates (`templates/`) and a user's `template = "path"` get the same variables,
//! already written for a Dockerfile (an unknown variable is an error):
//! `header`, `package`, `bin`, `binary` (`/usr/local/bin/<bin>`), `strategy` (`host`/`docker`),
//! `base` and `builder` (pinned, `image@digest` when a digest is configured), `static`, `target`,
//! `copy_binary` (the `COPY` arguments putting the binary at `binary`), `user`, `args` (list of
//! `{name, comment}` to declare with `ARG`), `labels` and `env` (lists of `{key, value}` words),
//! `expose` (ports), `entrypoint`, `cmd`, `smoke_test` (exec-form JSON, `cmd`/`smoke_test` may be
//! none), `healthcheck` (`{options, cmd}` or none), `stop_signal` (or none), `build_args` (names of
//! the manifest's `build-args`, declared in the `docker` strategy's builder stage), `buildkit`
//! (whether the file is for BuildKit, `buildkit = false` in the manifest renders the classic
//! builder's) and, for the `docker` strategy, `workspace` (`{manifests, sources, stub_script,
//! touch_script, cargo_build, binary, target_binary, cache_id}`).
//! User templates may `{% include "runtime.dockerfile" %}`, the shared runtime part.
//!
//! # Reading a Dockerfile
//!
//! [`crate::dockerfile_syntax`] is the one Dockerfile tokenizer (BuildKit's parser: directives, continuations with
//! the escape character, heredocs, flags, words, `ARG`/`ENV` expansion and scopes). The lint,
//! the build's label reading and build arguments, the progress mapping, revisions and the build
//! context's source check all read Dockerfiles through it.
//!
//! # Lint
//!
//! [`lint::lint`] checks the Dockerfile a package uses (`path:line: rule: message`): `no-revision`
//! (no `ENV SHA` in the final stage), `missing-labels` (title, version, revision, created),
//! `unpinned-base` / `latest-base`, `add-url`, `shell-form` (`CMD`/`ENTRYPOINT` of the final
//! stage), `root-user`, `secret-in-env` / `secret-in-arg` (`*_TOKEN`, `*PASSWORD*`, `*_SECRET*`,
//! `*_KEY`), `no-healthcheck`; plus hadolint's findings with their codes when it is on `PATH`.
//! Findings at `error` fail `lint` (exit 1; `--deny warnings` lowers the threshold to `warning`)
//! and block a release that uses a hand-written Dockerfile (exit 2, from [`for_image`]); warnings
//! are shown and do not fail, so a generated Dockerfile without a healthcheck passes.
//!
//! [`escape::word`]: crate::dockerfile_syntax::escape::word
//! [`escape::exec_form`]: crate::dockerfile_syntax::escape::exec_form

pub mod lint;
pub mod render;

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};

use crate::config::Strategy;
use crate::error::{Error, Result};
use crate::plan::ImagePlan;
use crate::workspace::{Selection, Workspace};

pub use lint::{Finding, Severity};
pub use render::{BUILD_ONLY_LABELS, WorkspaceLayout};

/// Where the Dockerfile of an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// Rendered from a template.
    Generated,
    /// The user's own file (`dockerfile = "path"`).
    HandWritten(camino::Utf8PathBuf),
}

/// The Dockerfile and `.dockerignore` an image is built from.
///
/// Build-context contract: for `strategy = "host"` the build step puts the host-built binary at
/// `bin/<bin>` in the context and nothing else but the Dockerfile; for `strategy = "docker"` the
/// context is `config.context` (the workspace root by default) filtered by `dockerignore`.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Dockerfile text.
    pub dockerfile: String,
    /// `.dockerignore` text applied when assembling the build context.
    pub dockerignore: String,
    /// Where it came from.
    pub source: DockerfileSource,
    /// Build arguments the build must pass (`SHA`, `VERSION`, `CREATED`, ... and values that a
    /// Dockerfile line cannot hold); the user's `build-args` are not included.
    pub build_args: BTreeMap<String, String>,
}

/// The Dockerfile an image is built from: rendered, or the validated hand-written one.
pub fn for_image(plan: &ImagePlan) -> Result<Rendered> {
    let ws = Workspace::load(&Selection {
        manifest_path: Some(plan.manifest_path.clone()),
        ..Selection::default()
    })?;
    for_image_in(&ws, plan)
}

/// [`for_image`] in a workspace already loaded: a hand-written Dockerfile must pass the lint's
/// error-level rules.
pub fn for_image_in(ws: &Workspace, plan: &ImagePlan) -> Result<Rendered> {
    let rendered = rendered_in(ws, plan)?;
    if let DockerfileSource::HandWritten(path) = &rendered.source {
        let findings = lint::lint(path.as_str(), &rendered.dockerfile, true);
        let blocking: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.severity >= Severity::Error)
            .collect();
        if !blocking.is_empty() {
            return Err(Error::Dockerfile {
                message: format!(
                    "the Dockerfile of `{}` fails the lint:\n{}",
                    plan.package,
                    blocking
                        .iter()
                        .map(|f| format!("  {f}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                help: Some(format!(
                    "fix them in {path}, or remove `dockerfile` to use the generated one"
                )),
            });
        }
    }
    Ok(rendered)
}

/// The Dockerfile of `plan` given the workspace layout (needed by the `docker` strategy);
/// hand-written files are read, not linted.
pub fn rendered_with(plan: &ImagePlan, layout: Option<&WorkspaceLayout>) -> Result<Rendered> {
    let config = &plan.config;
    let read = |path: &Utf8Path, what: &str| {
        crate::config::paths::read_bounded(path, crate::config::paths::MAX_FILE_SIZE).map_err(|e| {
            Error::Dockerfile {
                message: format!("cannot read the {what} `{path}`: {e}"),
                help: Some(format!(
                    "check the path in {} (relative to the package directory)",
                    plan.manifest_path
                )),
            }
        })
    };
    if let Some(path) = &config.dockerfile {
        let text = read(path, "Dockerfile")?;
        return Ok(Rendered {
            dockerfile: text,
            dockerignore: render::dockerignore(&plan.package),
            source: DockerfileSource::HandWritten(path.clone()),
            build_args: render::volatile_build_args(plan),
        });
    }
    let template = match &config.template {
        Some(path) => Some(read(path, "template")?),
        None => None,
    };
    let output = render::render(plan, layout, template.as_deref())?;
    Ok(Rendered {
        dockerfile: output.dockerfile,
        dockerignore: output.dockerignore,
        source: DockerfileSource::Generated,
        build_args: output.build_args,
    })
}

/// The Dockerfile of `plan` for the commands, reusing the loaded workspace.
pub fn rendered_in(ws: &Workspace, plan: &ImagePlan) -> Result<Rendered> {
    let layout = if plan.config.dockerfile.is_none() && plan.config.strategy == Strategy::Docker {
        Some(WorkspaceLayout::from_workspace(ws, &plan.config.context)?)
    } else {
        None
    };
    rendered_with(plan, layout.as_ref())
}

/// Where `--write` puts the generated files of `plan`.
pub fn written_paths(plan: &ImagePlan) -> (Utf8PathBuf, Utf8PathBuf) {
    (
        plan.package_dir.join("Dockerfile"),
        plan.package_dir.join(".dockerignore"),
    )
}

/// A unified diff from `old` (the file at `path`) to `new` (a fresh render); `None` when equal.
pub fn drift(path: &str, old: &str, new: &str) -> Option<String> {
    if old == new {
        return None;
    }
    Some(
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(path, &format!("{path} (fresh render)"))
            .to_string(),
    )
}
