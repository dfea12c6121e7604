//! The test-stage fixture: a tiny static HTTP service (`fixture-svc` from
//! `tests/fixtures/test_stage/`, built once per test run), a real git repository per test holding
//! its manifest, the plan computed by the library from it, and an image imported from a tarball
//! with that plan's revision. The stage runs in-process, through the library.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cargo_docker_release::checks::{TestOptions, TestReport};
use cargo_docker_release::cli::Cli;
use cargo_docker_release::error::{Error, Result};
use cargo_docker_release::plan::{ImagePlan, KnownReleases};
use cargo_docker_release::ui::Shell;
use clap::Parser;

pub use super::engine::TEST_LABEL;
use super::engine::{docker, engine, require_docker};
use super::images::{Profile, static_binary_in};
use super::project::{Clock, Project, copy_tree, project};
use super::require_tool;

/// The static fixture binary, built once per test run (release profile: the structure checks
/// hold it to a size).
pub fn fixture_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixture-svc");
        write_crate(&dir, "");
        static_binary_in(&dir, "fixture-svc", Profile::Release, &dir.join("target"))
    })
}

/// Writes the fixture crate into `dir` with `metadata` appended to its Cargo.toml.
fn write_crate(dir: &Path, metadata: &str) {
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    let manifest = format!(
        "[package]\nname = \"fixture-svc\"\nversion = \"1.2.3\"\nedition = \"2021\"\n\n[workspace]\n\n{metadata}"
    );
    let files: [(&str, &str); 4] = [
        ("Cargo.toml", &manifest),
        (
            "src/main.rs",
            include_str!("../../fixtures/test_stage/service.rs"),
        ),
        (
            "tests/smoke.rs",
            include_str!("../../fixtures/test_stage/smoke.rs"),
        ),
        (
            "tests/broken.rs",
            include_str!("../../fixtures/test_stage/broken.rs"),
        ),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(path, text).unwrap();
        }
    }
}

/// What goes in the test image besides the service.
#[derive(Debug, Clone, Copy)]
pub struct ImageOptions {
    /// Copy busybox to `/bin/busybox` (no `/bin/sh` link).
    pub busybox: bool,
    /// Declare the service's own health subcommand as HEALTHCHECK.
    pub healthcheck: bool,
    /// `ENV SHA` value instead of the plan's revision.
    pub wrong_sha: bool,
    /// Docker checks health every second and gives up after one failure.
    pub fast_health: bool,
    /// The `io.cargo-docker-release.builder` label: who made the image (`assembled`: the tool
    /// itself, so no builder ran the smoke test).
    pub builder: Option<&'static str>,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            busybox: true,
            healthcheck: true,
            wrong_sha: false,
            fast_health: false,
            builder: None,
        }
    }
}

/// One test's service: a git repository with its manifest, its plan and its image.
pub struct Fixture {
    /// The repository.
    pub project: Project,
    /// The plan the library computes for it.
    pub plan: ImagePlan,
    /// The image built for it.
    pub image_id: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = docker(["rmi", "-f", &self.image_id]);
    }
}

/// Makes a fixture: `metadata` is the `[package.metadata.docker…]` text of its Cargo.toml.
pub fn fixture(name: &str, metadata: &str, image: ImageOptions) -> Fixture {
    require_docker();
    let binary = fixture_binary();
    let project = project().clock(Clock::Now).build_uncommitted();
    // The test's name in the manifest makes every fixture's commit (and so its SHA) unique.
    write_crate(project.root(), &format!("# fixture for {name}\n{metadata}"));
    project.commit_all("fixture");
    let plan = plan_for(project.root());
    let image_id = build_image(binary, &plan, image);
    Fixture {
        project,
        plan,
        image_id,
    }
}

/// The bundled example `examples/hello` in a repository of its own, its `[…docker.test]` section
/// replaced by `test_section`, built statically on the host and packaged from `scratch`.
pub fn example_fixture(test_section: &str) -> Fixture {
    require_docker();
    let example = super::example_dir("hello");
    let project = project().clock(Clock::Now).build_uncommitted();
    for sub in ["src", "tests"] {
        copy_tree(&example.join(sub), &project.path(sub)).unwrap();
    }
    std::fs::copy(example.join("Cargo.lock"), project.path("Cargo.lock")).unwrap();
    let manifest = std::fs::read_to_string(example.join("Cargo.toml")).unwrap();
    let start = manifest
        .find("[package.metadata.docker.test]")
        .unwrap_or(manifest.len());
    project.write(
        "Cargo.toml",
        &format!("{}{test_section}", &manifest[..start]),
    );
    project.commit_all("fixture");
    let plan = plan_for(project.root());
    // The example's own target directory, shared by runs: the build is incremental.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("example-hello-target");
    let binary = static_binary_in(project.root(), "hello", Profile::Release, &target);
    let image_id = build_image(
        &binary,
        &plan,
        ImageOptions {
            busybox: false,
            ..Default::default()
        },
    );
    Fixture {
        project,
        plan,
        image_id,
    }
}

/// The plan the library computes for the package in `dir`.
fn plan_for(dir: &Path) -> ImagePlan {
    let manifest = dir.join("Cargo.toml");
    let cli = Cli::parse_from([
        "cargo",
        "docker-release",
        "--manifest-path",
        manifest.to_str().unwrap(),
    ]);
    let Cli::DockerRelease(args) = cli;
    let (_, services) = args.global.load_services(true).expect("load the fixture");
    let plan = cargo_docker_release::pipeline::planning::make_plan(
        &services,
        &KnownReleases::new(),
        &args.global.plan_options(),
    )
    .expect("plan the fixture");
    plan.images.into_iter().next().unwrap()
}

/// Imports a one-layer image (no build steps: `docker import` with the image config as changes,
/// which takes a fraction of a second where a classic build takes seconds per instruction).
fn build_image(binary: &Path, plan: &ImagePlan, image: ImageOptions) -> String {
    let bin = binary.file_name().unwrap().to_str().unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8], dir: bool| {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(if dir {
            tar::EntryType::Directory
        } else {
            tar::EntryType::Regular
        });
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        tar.append_data(&mut header, path, data).unwrap();
    };
    for dir in ["usr/", "usr/local/", "usr/local/bin/", "tmp/"] {
        add(dir, &[], true);
    }
    add(
        &format!("usr/local/bin/{bin}"),
        &std::fs::read(binary).unwrap(),
        false,
    );
    if image.busybox {
        let busybox = require_tool(
            "/bin/busybox",
            "install the static busybox with `apt-get install busybox-static`",
        );
        add("bin/", &[], true);
        add("bin/busybox", &std::fs::read(busybox).unwrap(), false);
    }
    let archive = tar.into_inner().unwrap();
    let sha = if image.wrong_sha {
        "0".repeat(40)
    } else {
        plan.revision.clone()
    };
    let mut changes = vec![
        format!("ENV SHA={sha}"),
        format!("LABEL {TEST_LABEL}"),
        format!(
            "LABEL org.opencontainers.image.revision={} org.opencontainers.image.version={}",
            plan.revision, plan.version
        ),
        "USER 65532:65532".to_string(),
        "EXPOSE 8080".to_string(),
        format!("ENTRYPOINT [\"/usr/local/bin/{bin}\"]"),
        "CMD [\"serve\"]".to_string(),
    ];
    if let Some(builder) = image.builder {
        changes.push(format!(
            "LABEL {}={builder}",
            cargo_docker_release::engine::build::LABEL_BUILDER
        ));
    }
    if image.healthcheck {
        let timing = if image.fast_health {
            "--interval=1s --timeout=1s --retries=1"
        } else {
            "--interval=30s --timeout=5s --start-period=30s"
        };
        changes.push(format!(
            "HEALTHCHECK {timing} CMD [\"/usr/local/bin/{bin}\", \"health\"]"
        ));
    }
    let mut cmd = Command::new("docker");
    cmd.arg("import");
    for change in &changes {
        cmd.args(["--change", change]);
    }
    let mut child = cmd
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run docker import");
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&archive).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker import failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Runs the test stage through the library; returns its result and how long it took.
pub async fn run_stage(fx: &Fixture, options: &TestOptions) -> (Result<TestReport>, Duration) {
    let engine = engine().await;
    let started = Instant::now();
    let result =
        cargo_docker_release::checks::run(&engine, &fx.plan, &fx.image_id, options, &shell()).await;
    (result, started.elapsed())
}

/// Runs the test stage and returns the report even when it fails.
pub async fn run_stage_with_report(
    fx: &Fixture,
    options: &TestOptions,
) -> (TestReport, Result<()>) {
    let engine = engine().await;
    cargo_docker_release::checks::run_with_report(
        &engine,
        &fx.plan,
        &fx.image_id,
        options,
        &shell(),
    )
    .await
}

/// A silent shell, or with `CDR_TEST_SHELL=1` the human output a user sees (`-v`).
pub fn shell() -> Shell {
    if std::env::var_os("CDR_TEST_SHELL").is_some() {
        use cargo_docker_release::ui::{ColorChoice, MessageFormat};
        Shell::new(1, false, ColorChoice::Never, MessageFormat::Human)
    } else {
        Shell::silent()
    }
}

/// Containers (running or not) of the fixture's image.
pub fn containers_of(fx: &Fixture) -> Vec<String> {
    docker([
        "ps",
        "-aq",
        "--filter",
        &format!("ancestor={}", fx.image_id),
    ])
    .stdout
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The tool's test containers (by their label) of the fixture's image, running or not.
pub fn stage_containers_of(fx: &Fixture) -> Vec<String> {
    docker([
        "ps",
        "-aq",
        "--filter",
        &format!("label={}", cargo_docker_release::checks::CONTAINER_LABEL),
        "--filter",
        &format!("ancestor={}", fx.image_id),
    ])
    .stdout
    .lines()
    .map(str::to_owned)
    .collect()
}

/// Asserts that the test stage left no container of the fixture's image behind.
pub fn assert_no_containers(fx: &Fixture) {
    // Removal by a dropped guard happens on a spawned task: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = containers_of(fx);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "containers left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The failure message of a failed stage (panics when it did not fail as a step).
pub fn step_failure(result: Result<TestReport>) -> String {
    match result {
        Err(e @ Error::Step { step: "test", .. }) => {
            assert_eq!(e.exit_code(), 1);
            e.to_string()
        }
        other => panic!("expected a failed test step, got {other:?}"),
    }
}
