//! The Docker engine as the tests see it: the test label, the docker CLI for setup and
//! verification (the product itself never runs it), the product's own bollard [`Engine`] for
//! inspection, and cleanup of everything a test creates ([`TestImages`]).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use cargo_docker_release::engine::Engine;

use super::{Output, unique_name};

/// One definition of the test label's key, for the two constants below.
macro_rules! test_label_key {
    () => {
        "cargo-docker-release.test"
    };
}

/// The key of the label every test image and container carries, so that leftovers can always be
/// found: for label maps (`labels = { "<key>" = "1" }` in a manifest, bollard's `HashMap`s).
pub const TEST_LABEL_KEY: &str = test_label_key!();

/// The same label as `key=value`: for `--label`, `LABEL` and `label=` filters.
pub const TEST_LABEL: &str = concat!(test_label_key!(), "=1");

/// Label key whose value is a [`TestImages`] token: images carrying it (even untagged ones, such
/// as the build stage of a multi-stage Dockerfile) are removed with the token's images.
pub const TOKEN_LABEL: &str = "cargo-docker-release.test.token";

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

/// The product's engine client (`DOCKER_HOST` or the default socket); panics with an install hint
/// when the engine does not answer.
pub async fn engine() -> Engine {
    Engine::connect().await.unwrap_or_else(|e| {
        panic!(
            "these tests need a running Docker engine (install docker.io and start dockerd, or \
             set DOCKER_HOST): {e}"
        )
    })
}

/// Runs `f` to completion on a fresh current-thread runtime (for the engine calls of a
/// synchronous test, or of a `Drop` on a thread of its own).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Containers (running or not) labelled as `package`'s.
pub fn containers_of_package(package: &str) -> usize {
    let label = format!("io.cargo-docker-release.package={package}");
    block_on(async {
        let filters = HashMap::from([("label".to_owned(), vec![label])]);
        engine()
            .await
            .docker()
            .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                all: true,
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .unwrap()
            .len()
    })
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
