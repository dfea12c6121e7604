//! PURE: an [`ImagePlan`] (and, for the `docker` strategy, the [`WorkspaceLayout`]) -> Dockerfile
//! text, `.dockerignore` text and the build arguments the Dockerfile expects.
//!
//! Every value reaches the template already written for the Dockerfile: words through
//! [`escape::word`], exec-form arrays through [`escape::exec_form`], paths checked by
//! [`check_path`]. Values a Dockerfile line cannot hold become build arguments.

use std::collections::BTreeMap;

use camino::Utf8Path;
use cargo_metadata::TargetKind;
use minijinja::{Environment, UndefinedBehavior, value::Serde};
use serde::Serialize;

use crate::config::Strategy;
use crate::dockerfile_syntax::escape;
use crate::error::{Error, Result};
use crate::plan::{ImagePlan, LABEL_BUILD, LABEL_CARGO_LOCK, LABEL_CI_RUN};
use crate::workspace::Workspace;

/// The built-in templates, embedded in the binary.
pub const TEMPLATES: [(&str, &str); 4] = [
    (
        "host.dockerfile",
        include_str!("../../templates/host.dockerfile"),
    ),
    (
        "docker.dockerfile",
        include_str!("../../templates/docker.dockerfile"),
    ),
    (
        "runtime.dockerfile",
        include_str!("../../templates/runtime.dockerfile"),
    ),
    ("dockerignore", include_str!("../../templates/dockerignore")),
];

/// Build arguments whose values change with every commit; the Dockerfile declares them and the
/// build passes them (see the module docs of [`super`]). `(name, label it fills)`.
pub const VOLATILE_ARGS: [(&str, &str); 4] = [
    ("SHA", "org.opencontainers.image.revision"),
    ("VERSION", "org.opencontainers.image.version"),
    ("CREATED", "org.opencontainers.image.created"),
    ("BUILD", LABEL_BUILD),
];

/// Labels that only some builds have (the CI run, the tag the image is released as): the build
/// sets them through the engine API's labels, so a Dockerfile never declares them empty.
pub const BUILD_ONLY_LABELS: [&str; 3] = [
    "org.opencontainers.image.ref.name",
    LABEL_CI_RUN,
    LABEL_CARGO_LOCK,
];

/// What the `docker` strategy needs to know about the workspace: every member's manifest and
/// targets, as paths relative to the build context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkspaceLayout {
    /// The workspace root inside the build context (`""` when the context is the root).
    pub root: String,
    /// Whether `Cargo.lock` exists (then cargo runs with `--locked`).
    pub lockfile: bool,
    /// Files and directories of the workspace root that cargo reads before compiling anything
    /// and that exist: `.cargo` (config, e.g. vendored sources), `vendor`, `rust-toolchain.toml`,
    /// `rust-toolchain`.
    pub cargo_inputs: Vec<String>,
    /// Every workspace member.
    pub members: Vec<MemberLayout>,
}

/// One workspace member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberLayout {
    /// Package name.
    pub name: String,
    /// Its directory relative to the workspace root (`""` for the root package).
    pub dir: String,
    /// Its targets' entry files relative to the workspace root, and whether each is a library.
    pub targets: Vec<(String, bool)>,
}

impl WorkspaceLayout {
    /// Reads the layout from cargo's metadata; `context` is the build context directory.
    pub fn from_workspace(ws: &Workspace, context: &Utf8Path) -> Result<Self> {
        let root = &ws.metadata.workspace_root;
        let root_in_context = root.strip_prefix(context).map_err(|_| Error::Dockerfile {
            message: format!(
                "the workspace root `{root}` is not inside the build context `{context}`"
            ),
            help: Some(
                "the `docker` strategy copies the workspace into the image: point `context` at the workspace root or a parent of it".into(),
            ),
        })?;
        let mut members = Vec::new();
        for package in ws.metadata.workspace_packages() {
            let dir = package.manifest_path.parent().unwrap_or(root.as_path());
            let rel = |p: &Utf8Path| -> Result<String> {
                let rel = p.strip_prefix(root).map_err(|_| Error::Dockerfile {
                    message: format!(
                        "`{p}` of package `{}` is outside the workspace root `{root}`",
                        package.name
                    ),
                    help: Some("the `docker` strategy only copies the workspace; move it inside, or use `strategy = \"host\"`".into()),
                })?;
                let rel = rel.as_str().to_owned();
                check_path(&rel)?;
                Ok(rel)
            };
            let mut targets = Vec::new();
            for target in &package.targets {
                let lib = target.kind.iter().any(|k| {
                    matches!(
                        k,
                        TargetKind::Lib
                            | TargetKind::RLib
                            | TargetKind::DyLib
                            | TargetKind::CDyLib
                            | TargetKind::StaticLib
                            | TargetKind::ProcMacro
                    )
                });
                targets.push((rel(&target.src_path)?, lib));
            }
            targets.sort();
            members.push(MemberLayout {
                name: package.name.to_string(),
                dir: rel(dir)?,
                targets,
            });
        }
        members.sort_by(|a, b| a.dir.cmp(&b.dir));
        let root_in_context = root_in_context.as_str().to_owned();
        check_path(&root_in_context)?;
        Ok(WorkspaceLayout {
            root: root_in_context,
            lockfile: root.join("Cargo.lock").exists(),
            cargo_inputs: CARGO_INPUTS
                .iter()
                .filter(|name| root.join(name).exists())
                .map(|name| name.to_string())
                .collect(),
            members,
        })
    }
}

/// Root files and directories that cargo reads before compiling (see [`WorkspaceLayout`]).
pub const CARGO_INPUTS: [&str; 4] = [".cargo", "vendor", "rust-toolchain.toml", "rust-toolchain"];

/// The cache mounts' id prefix for `image`: the repository, which the manifest validation keeps
/// to Docker's reference grammar (checked again here: it goes into a `--mount` option list).
fn cache_id(image: &str) -> Result<String> {
    let ok = !image.is_empty()
        && image
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b));
    if ok {
        Ok(image.to_owned())
    } else {
        Err(Error::Dockerfile {
            message: format!("the image name {image:?} cannot name a BuildKit cache mount"),
            help: Some(
                "image names are lower-case letters, digits, `.`, `_`, `-`, `/` and `:`".into(),
            ),
        })
    }
}

/// Paths go into `COPY` arguments and shell commands: only characters that are literal in both
/// (letters and digits of any script, as in a package named `ñandú`, are).
pub fn check_path(path: &str) -> Result<()> {
    let ok = path
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '+'))
        && !path.starts_with('-')
        && !path.split('/').any(|part| part == "..");
    if ok {
        return Ok(());
    }
    Err(Error::Dockerfile {
        message: format!("the path `{path}` cannot be used in a generated Dockerfile"),
        help: Some("directory and file names of the crate may use letters, digits, `.`, `_`, `-` and `+`; rename it, or write the Dockerfile by hand (`dockerfile = \"path\"`)".into()),
    })
}

/// What a rendering produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// Dockerfile text.
    pub dockerfile: String,
    /// `.dockerignore` text.
    pub dockerignore: String,
    /// Build arguments the Dockerfile declares, with their values for this plan.
    pub build_args: BTreeMap<String, String>,
}

/// `KEY=VALUE` for the template: both already Dockerfile words.
#[derive(Debug, Serialize)]
struct Pair {
    key: String,
    value: String,
}

/// An `ARG` the Dockerfile declares.
#[derive(Debug, Serialize)]
struct ArgDecl {
    name: String,
    comment: Option<String>,
}

#[derive(Debug, Serialize)]
struct HealthcheckVars {
    options: String,
    cmd: String,
}

#[derive(Debug, Serialize)]
struct WorkspaceVars {
    /// `COPY` arguments of the manifests and the lock file.
    manifests: Vec<String>,
    /// `COPY` arguments of the members' sources.
    sources: Vec<String>,
    /// Shell command creating stub targets.
    stub_script: String,
    /// Shell command marking the real targets newer than the stubs' outputs.
    touch_script: String,
    /// The cargo command.
    cargo_build: String,
    /// Where the binary ends up in the builder.
    binary: String,
    /// Where cargo puts the binary (BuildKit copies it out of the cached target directory).
    target_binary: String,
    /// The prefix of the BuildKit cache mounts' ids: the image repository, so that two
    /// projects with a package of the same name on one engine never share a target directory.
    cache_id: String,
}

/// The variables every template gets (the built-in ones and a user's `template = "path"`).
#[derive(Debug, Serialize)]
struct Vars {
    /// Comment lines saying the file is generated and by which command.
    header: String,
    /// Package name.
    package: String,
    /// Binary name.
    bin: String,
    /// Absolute path of the binary in the image.
    binary: String,
    /// `host` or `docker`.
    strategy: &'static str,
    /// Pinned runtime base (`image:tag[@digest]`).
    base: String,
    /// Pinned builder.
    builder: String,
    /// Whether the binary is statically linked.
    #[serde(rename = "static")]
    static_link: bool,
    /// The Rust target triple of static builds.
    target: Option<&'static str>,
    /// `COPY` arguments that put the binary at `binary`.
    copy_binary: String,
    /// Numeric `uid[:gid]`.
    user: String,
    /// `ARG`s declared in the runtime stage.
    args: Vec<ArgDecl>,
    /// Labels.
    labels: Vec<Pair>,
    /// Environment.
    env: Vec<Pair>,
    /// Exposed ports.
    expose: Vec<u16>,
    /// Exec-form entrypoint.
    entrypoint: String,
    /// Exec-form default arguments.
    cmd: Option<String>,
    /// Healthcheck options and exec-form command.
    healthcheck: Option<HealthcheckVars>,
    /// `STOPSIGNAL` word.
    stop_signal: Option<String>,
    /// Exec-form smoke test.
    smoke_test: Option<String>,
    /// Workspace layout for the `docker` strategy.
    workspace: Option<WorkspaceVars>,
    /// Names of the manifest's `build-args`, declared where cargo runs so the build sees them.
    build_args: Vec<String>,
    /// Whether the file is for BuildKit (`buildkit = true`, the default) or the classic builder.
    buildkit: bool,
}

/// Collects the values that must travel as build arguments.
#[derive(Default)]
struct Args {
    decls: Vec<ArgDecl>,
    values: BTreeMap<String, String>,
    counts: BTreeMap<String, usize>,
}

impl Args {
    /// `value` as a word, or a reference to a new build argument holding it exactly.
    fn word(&mut self, prefix: &str, what: &str, value: &str) -> String {
        if let Some(word) = escape::word(value) {
            return word;
        }
        let n = self.counts.entry(prefix.to_owned()).or_default();
        *n += 1;
        let name = format!("{prefix}_{n}");
        let shown = if value.len() <= escape::MAX_INLINE {
            serde_json::to_string(value).expect("strings serialize")
        } else {
            format!("({} bytes)", value.len())
        };
        self.decls.push(ArgDecl {
            name: name.clone(),
            comment: Some(format!(
                "{what} = {shown}: a Dockerfile line cannot hold it, the build passes it as {name}"
            )),
        });
        self.values.insert(name.clone(), value.to_owned());
        format!("\"${{{name}}}\"")
    }
}

/// Seconds, with an exact fraction when needed (`0.5s`, `0.0015s`): Go's duration syntax for
/// Docker, and the one hadolint's parser reads (it rejects `ms` and compound units). The config
/// keeps durations within what Go's `time.Duration` holds.
fn go_duration(d: std::time::Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        let text = format!("{}.{:09}", d.as_secs(), d.subsec_nanos());
        format!("{}s", text.trim_end_matches('0'))
    }
}

/// Longest line Docker's parser reads (Go's `bufio.Scanner` token limit, 64 KiB minus one).
pub const MAX_LINE: usize = 65_535;

/// Fuel of one rendering: far more than any template of a real workspace needs (the built-in ones
/// for a workspace of 100 members take a few thousand), far less than a loop of 10^10 iterations:
/// minijinja charges about one unit per instruction and one per byte of a string it builds, and
/// 5 million units take well under a second.
pub const TEMPLATE_FUEL: u64 = 5_000_000;

/// Largest rendered Dockerfile.
pub const MAX_OUTPUT: usize = 4 << 20;

/// A writer that refuses to grow past [`MAX_OUTPUT`] bytes.
struct Capped(Vec<u8>);

impl std::io::Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_OUTPUT {
            return Err(std::io::Error::other(format!(
                "the rendered Dockerfile is larger than {MAX_OUTPUT} bytes"
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuses a Dockerfile with a line Docker cannot read, naming the line.
pub fn check_line_lengths(name: &str, text: &str) -> Result<()> {
    match text
        .split('\n')
        .enumerate()
        .find(|(_, l)| l.len() > MAX_LINE)
    {
        Some((i, line)) => Err(Error::Dockerfile {
            message: format!(
                "line {} of the Dockerfile rendered from `{}` is {} bytes; Docker reads lines of at most {MAX_LINE}",
                i + 1,
                crate::error::printable(name, 120),
                line.len()
            ),
            help: Some("split the instruction with `\\` continuations, or pass long values through `env`/`labels` (they become build arguments)".into()),
        }),
        None => Ok(()),
    }
}

/// The header of generated files.
pub fn header(package: &str) -> String {
    format!(
        "# Generated by `cargo docker-release dockerfile --write` from [package.metadata.docker] of `{package}`.\n\
         # Do not edit: change Cargo.toml and run it again; `cargo docker-release dockerfile --check` verifies it.\n\
         # The build passes SHA, VERSION, CREATED and BUILD as build arguments."
    )
}

/// Renders the Dockerfile of `plan`: the built-in template of its strategy, or `user_template`.
pub fn render(
    plan: &ImagePlan,
    layout: Option<&WorkspaceLayout>,
    user_template: Option<&str>,
) -> Result<Output> {
    let config = &plan.config;
    check_path(&config.bin)?;
    let binary = format!("/usr/local/bin/{}", config.bin);
    let mut args = Args::default();
    let mut build_args = volatile_build_args(plan);
    for (name, _) in VOLATILE_ARGS {
        args.decls.push(ArgDecl {
            name: name.into(),
            comment: None,
        });
    }
    let mut labels = Vec::new();
    for (name, label) in VOLATILE_ARGS {
        labels.push(Pair {
            key: label.into(),
            value: format!("\"${{{name}}}\""),
        });
    }
    for (key, value) in &plan.labels {
        if VOLATILE_ARGS.iter().any(|(_, l)| l == key) || BUILD_ONLY_LABELS.contains(&key.as_str())
        {
            continue;
        }
        // `LABEL` splits `key=value` at the first `=` before unquoting: a key cannot hold one.
        let key_word = escape::word(key).filter(|_| !key.contains('=') && !key.is_empty());
        labels.push(Pair {
            key: key_word.ok_or_else(|| Error::Dockerfile {
                message: format!("the label key {key:?} cannot be written in a Dockerfile"),
                help: Some("label keys are one non-empty line without `=`".into()),
            })?,
            value: args.word("LABEL", &format!("label {key}"), value),
        });
    }
    labels.sort_by(|a, b| a.key.cmp(&b.key));
    let mut env = Vec::new();
    for (key, value) in &config.env {
        env.push(Pair {
            key: escape::word(key).unwrap_or_else(|| key.clone()),
            value: args.word("ENV", &format!("env {key}"), value),
        });
    }
    let Args { decls, values, .. } = args;
    build_args.extend(values);

    // `ImageRef`'s grammar has no white space, `\\`, `$` or `#`: it cannot change the instruction.
    let base = config.base.to_string();
    let builder = config.builder.to_string();
    // The Rust target of statically linked builds: the host's (see `crate::toolchain`).
    let target = config.static_link.then(crate::toolchain::host_triple);
    let workspace = match config.strategy {
        Strategy::Host => None,
        Strategy::Docker => {
            let layout = layout.ok_or_else(|| Error::Dockerfile {
                message: "the `docker` strategy needs the workspace layout".into(),
                help: None,
            })?;
            Some(workspace_vars(plan, layout, target, config.buildkit)?)
        }
    };
    let copy_binary = match &workspace {
        None => escape::exec_form(&[format!("bin/{}", config.bin), binary.clone()]),
        Some(ws) => escape::exec_form(&[ws.binary.clone(), binary.clone()]),
    };
    let healthcheck = config.healthcheck.as_ref().map(|hc| HealthcheckVars {
        options: format!(
            "--interval={} --timeout={} --start-period={} --retries={}",
            go_duration(hc.interval),
            go_duration(hc.timeout),
            go_duration(hc.start_period),
            hc.retries
        ),
        cmd: escape::exec_form(&hc.cmd),
    });
    let stop_signal = match &config.stop_signal {
        Some(s) => Some(escape::word(s).ok_or_else(|| Error::Dockerfile {
            message: format!("the stop signal {s:?} cannot be written in a Dockerfile"),
            help: Some("use a signal name like `SIGTERM`".into()),
        })?),
        None => None,
    };
    let vars = Vars {
        header: header(&plan.package),
        package: plan.package.clone(),
        bin: config.bin.clone(),
        binary,
        strategy: match config.strategy {
            Strategy::Host => "host",
            Strategy::Docker => "docker",
        },
        base,
        builder,
        static_link: config.static_link,
        buildkit: config.buildkit,
        build_args: config.build_args.keys().cloned().collect(),
        target,
        copy_binary,
        user: config.user.clone(),
        args: decls,
        labels,
        env,
        expose: config.expose.clone(),
        entrypoint: escape::exec_form(&config.entrypoint),
        cmd: (!config.cmd.is_empty()).then(|| escape::exec_form(&config.cmd)),
        healthcheck,
        stop_signal,
        smoke_test: config.smoke_test.as_deref().map(escape::exec_form),
        workspace,
    };

    let mut env = environment();
    let template_err = |name: &str, e: minijinja::Error| {
        Error::Dockerfile {
        message: format!("rendering the template `{}` failed: {}", crate::error::printable(name, 120), match e.kind() {
            minijinja::ErrorKind::OutOfFuel => format!("it does more than {TEMPLATE_FUEL} steps of work (a loop that never ends, or a huge one)"),
            _ => format!("{e:#}"),
        }),
        help: Some("templates get the variables listed in the docs of `cargo_docker_release::dockerfile`; an unknown variable is an error, and a rendering may take a bounded amount of work and output (4 MiB)".into()),
    }
    };
    let name = match (user_template, config.strategy) {
        (Some(source), _) => {
            let name = config
                .template
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_else(|| "template".into());
            env.add_template_owned(name.clone(), source.to_owned())
                .map_err(|e| template_err(&name, e))?;
            name
        }
        (None, Strategy::Host) => "host.dockerfile".into(),
        (None, Strategy::Docker) => "docker.dockerfile".into(),
    };
    let render = |name: &str| -> Result<String> {
        let mut out = Capped(Vec::new());
        env.get_template(name)
            .and_then(|t| t.render_captured_to(Serde(&vars), &mut out).map(|_| ()))
            .map_err(|e| template_err(name, e))?;
        let text = String::from_utf8(out.0).map_err(|_| Error::Dockerfile {
            message: format!(
                "the template `{}` rendered bytes that are not UTF-8",
                crate::error::printable(name, 120)
            ),
            help: Some("templates produce text".into()),
        })?;
        check_line_lengths(name, &text)?;
        Ok(text)
    };
    Ok(Output {
        dockerfile: render(&name)?,
        dockerignore: dockerignore(&plan.package),
        build_args,
    })
}

/// The template environment: strict, with the built-in templates.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(TEMPLATE_FUEL));
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .expect("the default delimiters are valid"),
    );
    for (name, source) in TEMPLATES {
        env.add_template(name, source)
            .expect("built-in templates parse");
    }
    env
}

/// The values of the build arguments that change with every commit ([`VOLATILE_ARGS`]).
pub fn volatile_build_args(plan: &ImagePlan) -> BTreeMap<String, String> {
    VOLATILE_ARGS
        .iter()
        .map(|(name, label)| {
            let value = match *name {
                "SHA" => plan.revision.clone(),
                "VERSION" => plan.version.clone(),
                _ => plan.labels.get(*label).cloned().unwrap_or_default(),
            };
            (name.to_string(), value)
        })
        .collect()
}

/// The generated `.dockerignore` of `package`.
pub fn dockerignore(package: &str) -> String {
    #[derive(Serialize)]
    struct Vars {
        header: String,
    }
    environment()
        .get_template("dockerignore")
        .and_then(|t| {
            t.render(Serde(&Vars {
                header: header(package),
            }))
        })
        .expect("the built-in .dockerignore renders")
}

/// The builder stage's copies and commands.
fn workspace_vars(
    plan: &ImagePlan,
    layout: &WorkspaceLayout,
    target: Option<&str>,
    buildkit: bool,
) -> Result<WorkspaceVars> {
    let config = &plan.config;
    let in_context = |p: &str| -> String {
        match (layout.root.as_str(), p) {
            ("", p) => p.to_owned(),
            (root, "") => root.to_owned(),
            (root, p) => format!("{root}/{p}"),
        }
    };
    let dest_dir = |dir: &str| -> String {
        if dir.is_empty() {
            "./".into()
        } else {
            format!("{dir}/")
        }
    };
    let mut manifests = Vec::new();
    let mut root_files = vec![in_context("Cargo.toml")];
    if layout.lockfile {
        root_files.push(in_context("Cargo.lock"));
    }
    let mut root_copy = root_files;
    root_copy.push("./".into());
    manifests.push(escape::exec_form(&root_copy));
    for input in &layout.cargo_inputs {
        let is_dir = !input.starts_with("rust-toolchain");
        let dest = if is_dir {
            format!("{input}/")
        } else {
            "./".into()
        };
        manifests.push(escape::exec_form(&[in_context(input), dest]));
    }
    for member in layout.members.iter().filter(|m| !m.dir.is_empty()) {
        manifests.push(escape::exec_form(&[
            in_context(&format!("{}/Cargo.toml", member.dir)),
            dest_dir(&member.dir),
        ]));
    }
    let mut sources = Vec::new();
    if layout.members.iter().any(|m| m.dir.is_empty()) {
        // A root package may read any file of the root (assets, migrations): copy the root,
        // which `.dockerignore` keeps free of build outputs and secrets.
        sources.push(escape::exec_form(&[in_context("."), "./".into()]));
    } else {
        for member in &layout.members {
            sources.push(escape::exec_form(&[
                in_context(&member.dir),
                dest_dir(&member.dir),
            ]));
        }
    }
    let mut stubs: Vec<String> = Vec::new();
    let mut dirs: Vec<String> = Vec::new();
    let mut files: Vec<String> = Vec::new();
    for member in &layout.members {
        for (path, lib) in &member.targets {
            if let Some((dir, _)) = path.rsplit_once('/') {
                dirs.push(dir.to_owned());
            }
            files.push(path.clone());
            stubs.push(if *lib {
                format!("touch {path}")
            } else {
                format!("echo 'fn main() {{}}' > {path}")
            });
        }
    }
    dirs.sort();
    dirs.dedup();
    let mut stub_script = Vec::new();
    if !dirs.is_empty() {
        stub_script.push(format!("mkdir -p {}", dirs.join(" ")));
    }
    stub_script.extend(stubs);
    let mut cargo = vec!["cargo build --release".to_string()];
    if layout.lockfile {
        cargo.push("--locked".into());
    }
    if let Some(t) = target {
        cargo.push(format!("--target {t}"));
    }
    check_path(&plan.package)?;
    cargo.push(format!("-p {} --bin {}", plan.package, config.bin));
    // `--features`, `--all-features`, `--no-default-features` from the command line.
    for flag in plan.features.flags() {
        cargo.push(escape::word(&flag).ok_or_else(|| Error::Dockerfile {
            message: format!("the cargo flag {flag:?} cannot be written in a Dockerfile"),
            help: Some("feature names are letters, digits, `_`, `-`, `+`, `.` and `/`".into()),
        })?);
    }
    let out_dir = match target {
        Some(t) => format!("/src/target/{t}/release"),
        None => "/src/target/release".into(),
    };
    Ok(WorkspaceVars {
        manifests,
        sources,
        stub_script: stub_script.join(" \\\n && "),
        touch_script: format!("touch {}", files.join(" ")),
        cargo_build: cargo.join(" "),
        binary: if buildkit {
            format!("/out/{}", config.bin)
        } else {
            format!("{out_dir}/{}", config.bin)
        },
        target_binary: format!("{out_dir}/{}", config.bin),
        cache_id: cache_id(&plan.image)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_are_seconds_hadolint_can_read() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(500)), "0.5s");
        assert_eq!(go_duration(Duration::from_millis(1250)), "1.25s");
        assert_eq!(go_duration(Duration::from_micros(1500)), "0.0015s");
        assert_eq!(go_duration(Duration::from_nanos(1)), "0.000000001s");
        let max = crate::config::MAX_GO_DURATION;
        assert_eq!(go_duration(max), "9223372036.854775807s");
    }

    #[test]
    fn long_lines_are_refused_with_their_number() {
        assert!(check_line_lengths("t", &"x".repeat(MAX_LINE)).is_ok());
        let text = format!("FROM scratch\n{}\n", "x".repeat(MAX_LINE + 1));
        let err = check_line_lengths("t", &text).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn paths_with_shell_or_glob_characters_are_refused() {
        assert!(check_path("crates/orders-api_v2").is_ok());
        assert!(check_path("ñandú/src/main.rs").is_ok());
        for bad in [
            "my dir",
            "a$b",
            "a*b",
            "-rf",
            "../x",
            "a'b",
            "a\u{202e}b",
            "a\nb",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
