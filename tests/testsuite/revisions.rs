//! The revision each service is attributed to, in real git repositories: one walk for a large
//! workspace with a long history (written by `git fast-import`), shallow clones refused until
//! unshallowed, every kind of input changing exactly the services it should, the lock file
//! checked before a release, and the user's `.dockerignore` in a built image's file system.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::support;

use support::{Project, TEST_LABEL, TOKEN_LABEL, TestImages, project, run_tool};

/// Runs `git ARGS` in `dir` with a fixed identity, asserting success; returns stdout.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "advice.detachedHead=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git is installed");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn service_manifest(name: &str, version: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\n\n\
         [package.metadata.docker]\nbase = \"scratch\"\nstatic = true\n"
    )
}

/// A synthetic monorepo history for `git fast-import`: the first commit adds a workspace of
/// `services` services (`services/svc-NNN`); each of the next `commits` commits changes
/// `docs/churn.txt`, and commit `k` also changes the services `touches[k]` lists.
struct History {
    services: usize,
    commits: usize,
    touches: BTreeMap<usize, Vec<usize>>,
}

impl History {
    fn name(i: usize) -> String {
        format!("svc-{i:03}")
    }

    fn stream(&self) -> Vec<u8> {
        let mut out = String::new();
        let file = |out: &mut String, path: &str, text: &str| {
            let _ = write!(out, "M 100644 inline {path}\ndata {}\n{text}\n", text.len());
        };
        let commit = |out: &mut String, mark: usize, message: &str| {
            let _ = write!(
                out,
                "commit refs/heads/main\nmark :{mark}\ncommitter Test <test@example.com> {} +0000\ndata {}\n{message}\n",
                1_700_000_000 + mark * 60,
                message.len()
            );
        };
        commit(&mut out, 1, "initial");
        let members: Vec<String> = (0..self.services)
            .map(|i| format!("\"services/{}\"", Self::name(i)))
            .collect();
        file(
            &mut out,
            "Cargo.toml",
            &format!(
                "[workspace]\nresolver = \"2\"\nmembers = [{}]\n",
                members.join(", ")
            ),
        );
        let mut lock = String::from("version = 4\n");
        for i in 0..self.services {
            let name = Self::name(i);
            let _ = write!(
                lock,
                "\n[[package]]\nname = \"{name}\"\nversion = \"1.0.0\"\n"
            );
            file(
                &mut out,
                &format!("services/{name}/Cargo.toml"),
                &service_manifest(&name, "1.0.0"),
            );
            file(
                &mut out,
                &format!("services/{name}/src/main.rs"),
                "fn main() {}\n",
            );
        }
        file(&mut out, "Cargo.lock", &lock);
        file(&mut out, ".gitignore", "target/\n");
        for k in 1..=self.commits {
            commit(&mut out, k + 1, &format!("change {k}"));
            file(&mut out, "docs/churn.txt", &k.to_string());
            for &i in self.touches.get(&k).into_iter().flatten() {
                file(
                    &mut out,
                    &format!("services/{}/src/main.rs", Self::name(i)),
                    &format!("fn main() {{ let _ = {k}; }}\n"),
                );
            }
        }
        out.push_str("done\n");
        out.into_bytes()
    }

    /// Writes the history into a new repository at `dir` with its work tree checked out;
    /// returns the SHA of each commit by number (0: the initial one).
    fn write(&self, dir: &Path) -> Vec<String> {
        git(dir, &["init", "-q"]);
        let marks = dir.join(".git/marks");
        let mut child = Command::new("git")
            .args(["fast-import", "--quiet", "--done"])
            .arg(format!("--export-marks={}", marks.display()))
            .current_dir(dir)
            .stdin(Stdio::piped())
            .spawn()
            .expect("git is installed");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&self.stream())
            .unwrap();
        assert!(child.wait().unwrap().success(), "git fast-import failed");
        git(dir, &["checkout", "-q", "-f", "main"]);
        let marks = std::fs::read_to_string(marks).unwrap();
        let mut shas = vec![String::new(); self.commits + 1];
        for line in marks.lines() {
            let (mark, sha) = line.split_once(' ').unwrap();
            let n: usize = mark.trim_start_matches(':').parse().unwrap();
            shas[n - 1] = sha.to_owned();
        }
        shas
    }

    /// The commit number that last touched service `i`.
    fn last_touch(&self, i: usize) -> usize {
        self.touches
            .iter()
            .filter(|(_, s)| s.contains(&i))
            .map(|(k, _)| *k)
            .max()
            .unwrap_or(0)
    }
}

/// `plan --workspace` as JSON: each package's revision.
fn revisions(dir: &Path) -> BTreeMap<String, String> {
    let out = run_tool(["plan", "--workspace", "--message-format", "json"], dir);
    out.success();
    out.json()["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["package"].as_str().unwrap().to_owned(),
                i["revision"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_hundred_services_over_a_long_history_are_each_attributed_to_their_last_change() {
    let history = History {
        services: 100,
        commits: 2_000,
        // Two thirds of the services change somewhere in the history, the rest never again.
        touches: (0..100)
            .filter(|i| i % 3 != 0)
            .map(|i| ((i * 37) % 1_990 + 5, i))
            .fold(
                BTreeMap::new(),
                |mut m: BTreeMap<usize, Vec<usize>>, (k, i)| {
                    m.entry(k).or_default().push(i);
                    m
                },
            ),
    };
    let dir = tempfile::tempdir().unwrap();
    let shas = history.write(dir.path());
    let planned = revisions(dir.path());
    assert_eq!(planned.len(), 100);
    for i in 0..100 {
        assert_eq!(
            planned[&History::name(i)],
            shas[history.last_touch(i)],
            "{} last changed in commit {}",
            History::name(i),
            history.last_touch(i)
        );
    }
}

#[test]
fn a_shallow_clone_is_refused_until_unshallowed() {
    // Commits: 0 initial, 1 docs, 2 svc-000 changes, 3 docs.
    let history = History {
        services: 2,
        commits: 3,
        touches: BTreeMap::from([(2, vec![0])]),
    };
    let origin = tempfile::tempdir().unwrap();
    let shas = history.write(origin.path());
    let url = format!("file://{}", origin.path().display());

    let clones = tempfile::tempdir().unwrap();
    // Depth 3 holds commits 3, 2 and 1 (the boundary): svc-000 is known, svc-001 is not.
    git(
        clones.path(),
        &["clone", "-q", "--depth", "3", &url, "clone"],
    );
    let clone = clones.path().join("clone");
    let out = run_tool(["plan", "--workspace"], &clone);
    out.code_is(2);
    assert!(out.stderr.contains("shallow"), "{}", out.stderr);
    assert!(out.stderr.contains("`svc-001`"), "{}", out.stderr);
    assert!(!out.stderr.contains("`svc-000`"), "{}", out.stderr);
    for fix in [
        "fetch-depth: 0",
        "git fetch --unshallow",
        "revision = \"head\"",
    ] {
        assert!(out.stderr.contains(fix), "says `{fix}`: {}", out.stderr);
    }
    // Just svc-000 is fine: its last change is inside the clone.
    let out = run_tool(
        ["plan", "-p", "svc-000", "--message-format", "json"],
        &clone,
    );
    out.success();
    assert_eq!(out.json()["images"][0]["revision"], shas[2].as_str());

    git(&clone, &["fetch", "-q", "--unshallow"]);
    let planned = revisions(&clone);
    assert_eq!(planned["svc-000"], shas[2]);
    assert_eq!(planned["svc-001"], shas[0]);

    // A depth-1 clone knows nothing about any service.
    git(clones.path(), &["clone", "-q", "--depth", "1", &url, "one"]);
    let out = run_tool(["plan", "--workspace"], &clones.path().join("one"));
    out.code_is(2);
    assert!(
        out.stderr.contains("`svc-000`, `svc-001`"),
        "{}",
        out.stderr
    );
    // Rendering never needed the history.
    run_tool(["dockerfile", "--workspace"], &clones.path().join("one")).success();
}

/// A workspace with one of each kind of input, in a git repository.
struct Workspace {
    project: Project,
}

impl Workspace {
    fn new() -> Self {
        let ws = Workspace {
            project: project().build_uncommitted(),
        };
        ws.write(".gitignore", "target/\n")
            .write(
                "Cargo.toml",
                "[workspace]\nresolver = \"2\"\nmembers = [\"common\", \"api\", \"worker\", \"edge\"]\n",
            )
            .write(
                "Cargo.lock",
                "version = 4\n\n[[package]]\nname = \"api\"\nversion = \"1.0.0\"\ndependencies = [\"common\"]\n\n\
                 [[package]]\nname = \"common\"\nversion = \"0.1.0\"\n\n\
                 [[package]]\nname = \"edge\"\nversion = \"1.0.0\"\n\n\
                 [[package]]\nname = \"worker\"\nversion = \"1.0.0\"\n",
            )
            .write(
                "common/Cargo.toml",
                "[package]\nname = \"common\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
            )
            .write("common/src/lib.rs", "pub fn f() {}\n")
            .write(
                "api/Cargo.toml",
                &format!(
                    "{}\n[dependencies]\ncommon = {{ path = \"../common\" }}\n",
                    service_manifest("api", "1.0.0")
                ),
            )
            .write("api/src/main.rs", "fn main() { common::f() }\n")
            .write("worker/Cargo.toml", &service_manifest("worker", "1.0.0"))
            .write("worker/src/main.rs", "fn main() {}\n")
            // `edge` builds inside the engine from a hand-written Dockerfile that copies
            // `assets/` from the context (the workspace root).
            .write(
                "edge/Cargo.toml",
                "[package]\nname = \"edge\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n\
                 [package.metadata.docker]\nstrategy = \"docker\"\ndockerfile = \"Dockerfile\"\n",
            )
            .write("edge/src/main.rs", "fn main() {}\n")
            .write(
                "edge/Dockerfile",
                "FROM scratch\nCOPY --from=builder /x /x\nCOPY [\"assets/logo.txt\", \"/logo.txt\"]\nADD --chown=1:1 conf/*.toml /etc/\n",
            )
            .write("assets/logo.txt", "logo\n")
            .write("conf/a.toml", "a = 1\n")
            .write("docs/README.md", "docs\n");
        ws.commit("initial");
        ws
    }

    fn path(&self) -> &Path {
        self.project.root()
    }

    fn write(&self, path: &str, text: &str) -> &Self {
        self.project.write(path, text);
        self
    }

    fn commit(&self, message: &str) -> String {
        self.project.commit_all(message)
    }
}

#[test]
fn each_kind_of_input_changes_the_revision_of_exactly_its_services() {
    let ws = Workspace::new();
    // (what changes, the file and its new text, the services it belongs to).
    let steps: &[(&str, &str, &str, &[&str])] = &[
        (
            "a path dependency",
            "common/src/lib.rs",
            "pub fn f() { }\n",
            &["api"],
        ),
        (
            "the lock file",
            "Cargo.lock",
            "",
            &["api", "worker", "edge"],
        ),
        (
            "the root manifest",
            "Cargo.toml",
            "",
            &["api", "worker", "edge"],
        ),
        (
            "the workspace's cargo config",
            ".cargo/config.toml",
            "[source.crates-io]\nreplace-with = \"vendored\"\n\n[source.vendored]\ndirectory = \"third_party\"\n",
            &["api", "worker", "edge"],
        ),
        (
            "a vendored source the config names",
            "third_party/dep/lib.rs",
            "// vendored\n",
            &["api", "worker", "edge"],
        ),
        (
            "a crate's own cargo config",
            "worker/.cargo/config.toml",
            "[build]\nrustflags = [\"-Copt-level=2\"]\n",
            &["worker"],
        ),
        (
            "the toolchain file",
            "rust-toolchain.toml",
            "[toolchain]\nchannel = \"stable\"\n",
            &["api", "worker", "edge"],
        ),
        (
            "the hand-written Dockerfile",
            "edge/Dockerfile",
            "",
            &["edge"],
        ),
        (
            "a file the Dockerfile copies",
            "assets/logo.txt",
            "new logo\n",
            &["edge"],
        ),
        (
            "a file a Dockerfile glob copies",
            "conf/b.toml",
            "b = 2\n",
            &["edge"],
        ),
        (
            "the context's .dockerignore",
            ".dockerignore",
            "docs\n",
            &["edge"],
        ),
        (
            "the Dockerfile's own .dockerignore",
            "edge/Dockerfile.dockerignore",
            "docs\n",
            &["edge"],
        ),
        (
            "nothing that goes into an image",
            "docs/README.md",
            "more docs\n",
            &[],
        ),
    ];
    let mut expected = revisions(ws.path());
    for (what, path, text, services) in steps {
        let text = if text.is_empty() {
            // Append to the existing file (a comment stays valid TOML and Dockerfile).
            format!(
                "{}# {what}\n",
                std::fs::read_to_string(ws.path().join(path)).unwrap()
            )
        } else {
            (*text).to_owned()
        };
        ws.write(path, &text);
        let sha = ws.commit(what);
        for service in *services {
            expected.insert((*service).to_owned(), sha.clone());
        }
        assert_eq!(
            revisions(ws.path()),
            expected,
            "after changing {what} ({path})"
        );
    }

    // `plan -v` lists each service's inputs.
    let out = run_tool(["plan", "-p", "edge", "-v"], ws.path());
    out.success();
    for input in [
        "edge\n",
        "Cargo.lock",
        ".cargo/config.toml",
        "third_party",
        "rust-toolchain.toml",
        "edge/Dockerfile\n",
        "edge/Dockerfile.dockerignore",
        ".dockerignore",
        "assets/logo.txt",
        "conf\n",
    ] {
        assert!(
            out.stdout.contains(&format!("    {input}")),
            "lists `{input}`:\n{}",
            out.stdout
        );
    }
    assert!(!out.stdout.contains("    common"), "{}", out.stdout);
}

#[test]
fn a_version_bump_without_its_lock_file_stops_the_release_before_building() {
    let ws = Workspace::new();
    ws.write("worker/Cargo.toml", &service_manifest("worker", "1.1.0"));
    ws.commit("bump worker without Cargo.lock");
    let out = run_tool(["--workspace", "--dry-run"], ws.path());
    out.code_is(2);
    assert!(
        out.stderr.contains("`worker` is 1.1.0") && out.stderr.contains("1.0.0 in Cargo.lock"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("cargo update --workspace"),
        "{}",
        out.stderr
    );
    // Nothing was rewritten: the tree is as committed.
    assert_eq!(git(ws.path(), &["status", "--porcelain"]), "");

    let lock = std::fs::read_to_string(ws.path().join("Cargo.lock")).unwrap();
    ws.write(
        "Cargo.lock",
        &lock.replace(
            "name = \"worker\"\nversion = \"1.0.0\"",
            "name = \"worker\"\nversion = \"1.1.0\"",
        ),
    );
    ws.commit("update Cargo.lock");
    run_tool(["--workspace", "--dry-run"], ws.path()).success();
}

#[test]
fn the_users_dockerignore_decides_what_reaches_the_image() {
    use cargo_docker_release::build_context as context;

    let images = TestImages::new("dockerignore");
    let dir = tempfile::tempdir().unwrap();
    let root = camino::Utf8Path::from_path(dir.path()).unwrap();
    for path in [
        "Cargo.toml",
        "src/main.rs",
        ".env",
        "docs/guide.md",
        "docs/keep/README.md",
        "logs/today.log",
        "logs/keep.txt",
        "deep/er/old.bak",
        "notes/a.md",
        "notes/b.md",
        "target/debug/app",
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, path).unwrap();
    }
    std::fs::write(
        root.join(".dockerignore"),
        "# the user's rules\ndocs\n!docs/keep\nlogs**\n!logs/keep.txt\n**.bak\nnotes/[^a].md\n!.env\n",
    )
    .unwrap();
    let dockerfile = format!(
        "FROM scratch\nLABEL {TEST_LABEL} {TOKEN_LABEL}={}\nCOPY . /ctx/\n",
        images.token()
    );
    let ctx = context::service_context(
        root,
        &cargo_docker_release::dockerfile::render::dockerignore("app"),
        None,
        &dockerfile,
        0,
    )
    .unwrap();
    let tag = format!("{}:ctx", images.repo("app"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(async {
            let engine = support::engine().await;
            let options = bollard::query_parameters::BuildImageOptions {
                dockerfile: ctx.dockerfile.clone(),
                t: Some(tag.clone()),
                rm: true,
                forcerm: true,
                ..Default::default()
            };
            let job = cargo_docker_release::engine::build::BuildJob {
                options,
                builder: cargo_docker_release::engine::build::Builder::Classic,
                context: &ctx,
                dockerfile: &dockerfile,
                dockerfile_name: "Dockerfile",
                credentials: Default::default(),
                name: "dockerignore",
            };
            engine.build_image(job, &mut |_| {}).await
        })
        .unwrap();

    // The image's file system, read from an exported (never started) container.
    let container = images.container("fs");
    support::docker_ok(["create", "--name", &container, &tag, "/none"]);
    let export = Command::new("docker")
        .args(["export", &container])
        .output()
        .unwrap();
    support::docker(["rm", "-f", &container]);
    let mut archive = tar::Archive::new(export.stdout.as_slice());
    let mut files: Vec<String> = archive
        .entries()
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            (e.header().entry_type().is_file() && path.starts_with("ctx/")).then_some(path)
        })
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "ctx/.dockerignore",
            "ctx/.env",
            "ctx/Cargo.toml",
            "ctx/Dockerfile",
            "ctx/docs/keep/README.md",
            "ctx/logs/keep.txt",
            "ctx/notes/a.md",
            "ctx/src/main.rs",
        ],
        "`!.env` names the file the built-in `.env` pattern leaves out: the user's exception \
         wins (issue 17); target/ and .git stay out always"
    );
}
