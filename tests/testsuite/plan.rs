//! `cargo docker-release plan` on fixture crates in real git repositories: the release each
//! situation gets, and the errors bad input gets.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Clock, Project, project};

/// A crate or workspace in a fresh git repository with a fixed author and clock (the first
/// commit at 2026-01-01T00:01:00Z).
struct Repo(Project);

impl std::ops::Deref for Repo {
    type Target = Project;

    fn deref(&self) -> &Project {
        &self.0
    }
}

impl Repo {
    fn new(files: &[(&str, &str)]) -> Repo {
        Repo(
            project()
                .clock(Clock::Fixed(1_767_225_660))
                .file(".gitignore", "target/\n")
                .files(files)
                .build_uncommitted(),
        )
    }

    fn path(&self) -> &Path {
        self.0.root()
    }

    fn write(&self, path: &str, text: &str) -> &Self {
        self.0.write(path, text);
        self
    }

    /// Commits everything (`git add -A && git commit`), one minute after the previous commit.
    fn commit(&self, message: &str) -> String {
        self.0.commit_all(message)
    }

    /// Runs `cargo docker-release ARGS` in `subdir` as a user would.
    fn run(&self, subdir: &str, args: &[&str]) -> Run {
        let out = Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
            .arg("docker-release")
            .args(args)
            .current_dir(self.path().join(subdir))
            .env("NO_COLOR", "1")
            .env("CI", "1")
            .env_remove("GITHUB_RUN_ID")
            .env_remove("CI_JOB_URL")
            .output()
            .unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr)
                .replace(self.path().to_str().unwrap(), "[ROOT]"),
        }
    }

    /// The JSON plan, asserting success.
    fn plan(&self, subdir: &str, args: &[&str]) -> Value {
        let mut all = vec!["plan", "--message-format", "json"];
        all.extend(args);
        let run = self.run(subdir, &all);
        assert_eq!(run.code, 0, "plan failed:\n{}", run.stderr);
        serde_json::from_str(&run.stdout).unwrap()
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn manifest(name: &str, version: &str, docker: &str) -> String {
    format!(
        r#"[package]
name = "{name}"
version = "{version}"
edition = "2021"
description = "The {name} service"
repository = "https://example.com/{name}"
license = "MIT"

[package.metadata.docker]
{docker}
"#
    )
}

fn single(version: &str, docker: &str) -> Repo {
    let repo = Repo::new(&[
        ("Cargo.toml", &manifest("orders", version, docker)),
        ("src/main.rs", "fn main() {}\n"),
    ]);
    repo.write(
        "Cargo.lock",
        "version = 4\n\n[[package]]\nname = \"orders\"\nversion = \"0.0.0\"\n",
    );
    repo.commit("initial");
    repo
}

fn applied_tags(image: &Value) -> Vec<String> {
    image["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["applied"] == true)
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn clean_stable_release_gets_semver_sha_and_latest() {
    let repo = single("1.4.2", r#"image = "acme/orders""#);
    let sha = repo.head_sha();
    let plan = repo.plan("", &[]);
    let image = &plan["images"][0];
    assert_eq!(image["package"], "orders");
    assert_eq!(image["version"], "1.4.2");
    assert_eq!(image["image"], "acme/orders");
    assert_eq!(image["revision"], sha.as_str());
    assert_eq!(
        applied_tags(image),
        ["1.4.2", "1.4", "1", &sha[..7], "latest"]
    );
    for tag in image["tags"].as_array().unwrap() {
        assert!(!tag["reason"].as_str().unwrap().is_empty());
    }
    let labels = &image["labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], sha.as_str());
    assert_eq!(labels["org.opencontainers.image.version"], "1.4.2");
    assert_eq!(labels["org.opencontainers.image.title"], "orders");
    assert_eq!(
        labels["org.opencontainers.image.source"],
        "https://example.com/orders"
    );
    assert_eq!(
        labels["org.opencontainers.image.created"],
        "2026-01-01T00:01:00Z"
    );
}

#[test]
fn human_plan_lists_every_tag_with_its_reason() {
    let repo = single("1.5.0-rc.1", "");
    let run = repo.run("", &["plan"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("orders 1.5.0-rc.1 -> orders"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("+ 1.5.0-rc.1"), "{}", run.stdout);
    assert!(run.stdout.contains("- latest"), "{}", run.stdout);
    assert!(
        run.stdout.contains("pre-releases never move"),
        "{}",
        run.stdout
    );
}

#[test]
fn prerelease_gets_exact_and_sha_only() {
    let repo = single("1.5.0-rc.1", "");
    let sha = repo.head_sha();
    let plan = repo.plan("", &[]);
    assert_eq!(applied_tags(&plan["images"][0]), ["1.5.0-rc.1", &sha[..7]]);
}

#[test]
fn zero_major_versions_follow_cargo_compatibility() {
    let repo = single("0.4.2", "tags = { sha = false }");
    assert_eq!(
        applied_tags(&repo.plan("", &[])["images"][0]),
        ["0.4.2", "0.4", "latest"]
    );
    let repo = single("0.0.3", "tags = { sha = false }");
    assert_eq!(
        applied_tags(&repo.plan("", &[])["images"][0]),
        ["0.0.3", "latest"]
    );
}

#[test]
fn dirty_tree_is_refused_and_allow_dirty_gives_a_dirty_tag_only() {
    let repo = single("1.4.2", "");
    let sha = repo.head_sha();
    repo.write("src/main.rs", "fn main() { println!(\"changed\"); }\n");
    let run = repo.run("", &["plan"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    insta::assert_snapshot!("dirty_tree_error", run.stderr);

    let plan = repo.plan("", &["--allow-dirty"]);
    let image = &plan["images"][0];
    assert_eq!(applied_tags(image), [format!("{}-dirty", &sha[..7])]);
    assert_eq!(
        image["labels"]["io.cargo-docker-release.build"],
        "development"
    );
}

#[test]
fn untracked_build_output_does_not_make_the_tree_dirty() {
    let repo = single("1.4.2", "");
    std::fs::remove_file(repo.path().join(".gitignore")).unwrap();
    repo.commit("no gitignore");
    repo.write("target/release/orders", "binary");
    repo.plan("", &[]);
}

const WORKSPACE: &str = r#"[workspace]
members = ["orders", "billing", "common"]
resolver = "2"

[workspace.metadata.docker]
vendor = "Acme"
tags = { extra = ["{branch}-{sha7}"] }
labels = { "com.acme.team" = "platform" }
"#;

fn workspace() -> Repo {
    let repo = Repo::new(&[
        ("Cargo.toml", WORKSPACE),
        (
            "orders/Cargo.toml",
            &(manifest(
                "orders",
                "1.4.2",
                r#"image = "acme/orders"
labels = { "com.acme.team" = "orders" }"#,
            ) + "\n[dependencies]\ncommon = { path = \"../common\" }\n"),
        ),
        ("orders/src/main.rs", "fn main() {}\n"),
        (
            "billing/Cargo.toml",
            &manifest("billing", "0.3.0", r#"image = "acme/billing""#),
        ),
        ("billing/src/main.rs", "fn main() {}\n"),
        (
            "common/Cargo.toml",
            "[package]\nname = \"common\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        ),
        ("common/src/lib.rs", "\n"),
    ]);
    let lock = Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(repo.path())
        .output()
        .unwrap();
    assert!(
        lock.status.success(),
        "{}",
        String::from_utf8_lossy(&lock.stderr)
    );
    repo.commit("workspace");
    repo
}

fn by_package<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["package"] == name)
        .unwrap_or_else(|| panic!("{name} not in plan"))
}

#[test]
fn workspace_releases_every_service_with_workspace_defaults() {
    let repo = workspace();
    let plan = repo.plan("", &["--workspace"]);
    let names: Vec<&str> = plan["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["package"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["orders", "billing"],
        "`common` has no docker section and is not a service"
    );
    let orders = by_package(&plan, "orders");
    let billing = by_package(&plan, "billing");
    let sha7 = &orders["revision"].as_str().unwrap()[..7];
    assert!(applied_tags(orders).contains(&format!("main-{sha7}")));
    assert_eq!(orders["labels"]["org.opencontainers.image.vendor"], "Acme");
    assert_eq!(
        orders["labels"]["com.acme.team"], "orders",
        "package beats workspace"
    );
    assert_eq!(billing["labels"]["com.acme.team"], "platform");
    assert_eq!(applied_tags(billing)[..2], ["0.3.0", "0.3"]);

    let selected = repo.plan("", &["-p", "billing"]);
    assert_eq!(selected["images"].as_array().unwrap().len(), 1);
    let excluded = repo.plan("", &["--workspace", "--exclude", "orders"]);
    assert_eq!(excluded["images"][0]["package"], "billing");
}

#[test]
fn crate_revision_is_the_last_commit_touching_its_inputs() {
    let repo = workspace();
    let first = repo.head_sha();
    repo.write("billing/src/main.rs", "fn main() { let _ = 1; }\n");
    let second = repo.commit("billing only");
    let plan = repo.plan("", &["--workspace"]);
    assert_eq!(by_package(&plan, "orders")["revision"], first.as_str());
    assert_eq!(by_package(&plan, "billing")["revision"], second.as_str());

    // A path dependency is an input of its dependents.
    repo.write("common/src/lib.rs", "pub fn shared() {}\n");
    let third = repo.commit("common");
    let plan = repo.plan("", &["--workspace"]);
    assert_eq!(by_package(&plan, "orders")["revision"], third.as_str());
    assert_eq!(by_package(&plan, "billing")["revision"], second.as_str());

    // Dirty state is limited to the same inputs.
    repo.write("billing/src/main.rs", "fn main() { let _ = 2; }\n");
    let plan = repo.plan("", &["-p", "orders"]);
    assert_eq!(by_package(&plan, "orders")["git"]["dirty"], false);

    // `revision = "head"` follows HEAD whatever it touched.
    repo.write("billing/src/main.rs", "fn main() { let _ = 1; }\n");
    let text = std::fs::read_to_string(repo.path().join("orders/Cargo.toml")).unwrap();
    repo.write(
        "orders/Cargo.toml",
        &text.replace(
            "image = \"acme/orders\"",
            "image = \"acme/orders\"\nrevision = \"head\"",
        ),
    );
    repo.commit("orders follows head");
    repo.write("README.md", "docs\n");
    let head = repo.commit("docs only");
    let plan = repo.plan("", &["--workspace"]);
    assert_eq!(by_package(&plan, "orders")["revision"], head.as_str());
    assert_ne!(by_package(&plan, "billing")["revision"], head.as_str());
}

#[test]
fn git_tag_for_another_version_refuses_the_release() {
    let repo = single("1.4.2", "");
    repo.tag("orders-v1.4.3");
    let run = repo.run("", &["plan"]);
    assert_eq!(run.code, 2);
    insta::assert_snapshot!("git_tag_mismatch", run.stderr);
    let repo = single("1.4.2", "");
    repo.tag("v1.4.2");
    repo.plan("", &[]);
}

#[test]
fn never_committed_crate_is_an_error() {
    let repo = workspace();
    let text = std::fs::read_to_string(repo.path().join("Cargo.toml")).unwrap();
    repo.write(
        "Cargo.toml",
        &text.replace("\"common\"]", "\"common\", \"payments\"]"),
    );
    repo.write("payments/Cargo.toml", &manifest("payments", "0.1.0", ""));
    repo.write("payments/src/main.rs", "fn main() {}\n");
    let run = repo.run("", &["plan", "-p", "payments"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    insta::assert_snapshot!("never_committed", run.stderr);
}

#[test]
fn outside_a_git_repository_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        manifest("orders", "1.0.0", ""),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
        .args(["docker-release", "plan"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not inside a git repository"), "{stderr}");
    assert!(stderr.contains("git init"), "{stderr}");
}

/// Bad manifests: each gets a located message and exit 2, never a panic.
#[test]
fn bad_manifests_get_located_errors() {
    let cases: &[(&str, &str)] = &[
        ("unknown_key", r#"imgae = "acme/orders""#),
        ("wrong_type", "expose = \"8080\""),
        ("empty_image", r#"image = """#),
        ("invalid_image", r#"image = "Acme/Orders:1.0""#),
        (
            "bad_tag_template",
            r#"tags = { extra = ["{branch}-{nope}"] }"#,
        ),
        ("root_user", r#"user = "0:0""#),
        ("unknown_bin", r#"bin = "ordres""#),
        ("scratch_needs_static", "static = false\nbase = \"scratch\""),
        (
            "bad_duration",
            "healthcheck = { cmd = [\"/x\"], interval = \"often\" }",
        ),
        ("huge_value", &format!("image = \"{}\"", "a".repeat(300))),
        ("unknown_nested_key", "tags = { semvar = true }"),
    ];
    for (name, docker) in cases {
        let repo = single("1.0.0", docker);
        let run = repo.run("", &["plan"]);
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{name}: {}", run.stderr);
        insta::assert_snapshot!(format!("bad_manifest_{name}"), run.stderr);
    }
}

#[test]
fn malformed_toml_is_a_clear_error() {
    let repo = single("1.0.0", "");
    repo.write("Cargo.toml", "[package\nname = \"orders\"\n");
    let run = repo.run("", &["plan"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("Cargo.toml"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn non_utf8_manifest_path_is_a_clear_error() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/tmp/\xff/Cargo.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
        .arg("docker-release")
        .arg("plan")
        .arg("--manifest-path")
        .arg(PathBuf::from(bad))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("UTF-8"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn unknown_package_suggests_a_member() {
    let repo = workspace();
    let run = repo.run("", &["plan", "-p", "order"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("did you mean `orders`?"),
        "{}",
        run.stderr
    );
}

#[test]
fn package_without_a_section_points_at_init() {
    let repo = workspace();
    let run = repo.run("", &["plan", "-p", "common"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("cargo docker-release init -p common"),
        "{}",
        run.stderr
    );
}

/// `plan` reads the releases the local engine already has: an older line keeps its own floating
/// tags but not `latest`.
#[test]
fn plan_holds_back_floating_tags_the_engine_has_newer_releases_for() {
    support::require_docker();
    let images = support::TestImages::new("plan-known");
    let repository = images.repo("orders");
    // An empty image is enough to stand for release 2.0.1 of the repository.
    let mut import = Command::new("docker")
        .args(["import", "-", &format!("{repository}:2.0.1")])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut import.stdin.take().unwrap(), &[0u8; 1024]).unwrap();
    assert!(import.wait().unwrap().success());

    let repo = single("1.9.1", &format!("image = \"{repository}\""));
    let sha = repo.head_sha();
    let plan = repo.plan("", &[]);
    let image = &plan["images"][0];
    assert_eq!(applied_tags(image), ["1.9.1", "1.9", "1", &sha[..7]]);
    let latest = image["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "latest")
        .unwrap();
    assert!(
        latest["reason"].as_str().unwrap().contains("2.0.1"),
        "{latest}"
    );
}
