//! A monorepo released across CI jobs, end to end against a real registry (TLS, token auth) and the
//! real engine:
//! `plan --matrix` -> one `--push --stage immutable` process per service (the engine holds no
//! image of the others: local images are removed between jobs) -> one `promote` process that
//! holds no image at all.
//!
//! - a job that fails leaves the promotion moving nothing and naming the service;
//! - once every job passed, the promotion moves every floating tag by manifest copy (the engine
//!   still holds no image afterwards: nothing was pulled), and a re-run is a no-op;
//! - two promotions racing (an older and a newer version) end with the newer on every tag.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;

use cargo_docker_release::engine::images::ImageStore;
use serde_json::Value;
use support::Registry;
use support::registry::Auth;
use support::service::{MAIN_RS, assert_success, docker_section, lock_file, text};
use support::{Clock, Project, block_on, engine, project, unique};

/// A virtual workspace of service crates in its own git repository, each crate a copy of the
/// fixture service with its image in `registry`.
struct Monorepo {
    project: Project,
    id: String,
    registry: String,
    members: Vec<String>,
    docker_config: PathBuf,
}

impl Monorepo {
    fn new(registry: &Registry, members: &[&str], version: &str) -> Monorepo {
        let docker_config = registry.docker_config();
        let repo = Monorepo {
            project: project().clock(Clock::Now).build_uncommitted(),
            id: unique(),
            registry: registry.addr.clone(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
            docker_config,
        };
        let list: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
        repo.write(
            "Cargo.toml",
            &format!(
                "[workspace]\nmembers = [{}]\nresolver = \"2\"\n",
                list.join(", ")
            ),
        );
        repo.write(".gitignore", "/target\n");
        for member in members {
            repo.write(&format!("{member}/src/main.rs"), MAIN_RS);
            repo.set_version(member, version);
        }
        repo.commit("initial");
        repo
    }

    fn path(&self) -> &Path {
        self.project.root()
    }

    fn write(&self, rel: &str, text: &str) {
        self.project.write(rel, text);
    }

    fn package(&self, member: &str) -> String {
        format!("{member}-{}", self.id)
    }

    fn repo(&self, member: &str) -> String {
        format!("cdr-test/promote-{}-{member}", self.id)
    }

    fn image(&self, member: &str) -> String {
        format!("{}/{}", self.registry, self.repo(member))
    }

    /// Writes `member`'s manifest at `version` and the workspace's lock file.
    fn set_version(&self, member: &str, version: &str) {
        let name = self.package(member);
        self.write(
            &format!("{member}/Cargo.toml"),
            &format!(
                r#"[package]
name = "{name}"
version = "{version}"
edition = "2021"
description = "promotion test fixture"
license = "MIT"

{docker}"#,
                docker = docker_section(&name, &self.image(member)),
            ),
        );
        let mut packages: Vec<(String, String)> = self
            .members
            .iter()
            .map(|m| {
                let manifest = std::fs::read_to_string(self.path().join(m).join("Cargo.toml"))
                    .unwrap_or_default();
                let v = manifest
                    .lines()
                    .find_map(|l| l.strip_prefix("version = \""))
                    .map(|v| v.trim_end_matches('"').to_owned())
                    .unwrap_or_else(|| version.to_owned());
                (self.package(m), v)
            })
            .collect();
        packages.sort();
        self.write("Cargo.lock", &lock_file(&packages));
    }

    fn head(&self) -> String {
        self.project.head_sha()
    }

    fn commit(&self, message: &str) -> String {
        self.project.commit_all(message)
    }

    /// `cargo docker-release ARGS` in `dir` (the monorepo or a clone of it), as a CI job runs it.
    fn command_in(&self, dir: &Path, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"));
        cmd.arg("docker-release")
            .args(args)
            .arg("--manifest-path")
            .arg(dir.join("Cargo.toml"))
            .current_dir(dir)
            .env("CI", "1")
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("RUSTFLAGS")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("CARGO_TARGET_DIR", self.path().join("target"));
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command_in(self.path(), args)
            .output()
            .expect("the built binary runs")
    }

    /// One CI job: the immutable part of `member`'s release, then the job's runner goes away
    /// (its images with it).
    fn job(&self, member: &str) -> Output {
        self.assert_engine_holds_no_image();
        let package = self.package(member);
        let out = self.run(&["-p", &package, "--push", "--stage", "immutable"]);
        self.remove_local_images();
        out
    }

    fn matrix(&self) -> Vec<String> {
        let out = self.run(&["plan", "--matrix", "--workspace"]);
        assert_success(&out);
        let stdout = text(&out.stdout);
        assert_eq!(
            stdout.lines().count(),
            1,
            "one line for $GITHUB_OUTPUT: {stdout}"
        );
        let matrix: Value = serde_json::from_str(&stdout).expect("the matrix is JSON");
        matrix["include"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                assert!(e["image"].as_str().unwrap().contains("/cdr-test/promote-"));
                assert_eq!(e["revision"].as_str().unwrap().len(), 40);
                e["package"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    /// The job summary file (`$GITHUB_STEP_SUMMARY`) the promotions append to.
    fn summary(&self) -> PathBuf {
        self.path().join("target").join("job-summary.md")
    }

    fn promote_in(&self, dir: &Path) -> Output {
        self.assert_engine_holds_no_image();
        let out = self
            .command_in(dir, &["promote", "--workspace", "--message-format", "json"])
            .env("GITHUB_STEP_SUMMARY", self.summary())
            .output()
            .expect("the built binary runs");
        // Promotion copies manifests inside the registry: nothing was pulled.
        self.assert_engine_holds_no_image();
        out
    }

    fn assert_engine_holds_no_image(&self) {
        let held = block_on(async {
            let engine = engine().await;
            let mut held = Vec::new();
            for m in &self.members {
                for t in engine.repository_tags(&self.image(m)).await.unwrap() {
                    held.push(format!("{}:{}", self.image(m), t.tag));
                }
            }
            held
        });
        assert!(held.is_empty(), "the engine holds {held:?}");
    }

    fn remove_local_images(&self) {
        let images: Vec<String> = self.members.iter().map(|m| self.image(m)).collect();
        let packages: Vec<String> = self.members.iter().map(|m| self.package(m)).collect();
        remove_images(&images, &packages);
    }
}

impl Drop for Monorepo {
    fn drop(&mut self) {
        let images: Vec<String> = self.members.iter().map(|m| self.image(m)).collect();
        let packages: Vec<String> = self.members.iter().map(|m| self.package(m)).collect();
        // Drop may run inside a panicking test; a fresh thread has no runtime of its own.
        let _ = std::thread::spawn(move || remove_images(&images, &packages)).join();
    }
}

/// Removes every tag of `images` and every image labelled as one of `packages` from the engine.
fn remove_images(images: &[String], packages: &[String]) {
    block_on(async {
        let engine = engine().await;
        for image in images {
            for t in engine.repository_tags(image).await.unwrap_or_default() {
                let _ = engine.untag(&format!("{image}:{}", t.tag)).await;
            }
        }
        for package in packages {
            let labelled = engine
                .images_labelled(&[("io.cargo-docker-release.package", package)])
                .await
                .unwrap_or_default();
            for i in labelled {
                let _ = engine.untag(&i.id).await;
            }
        }
    });
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn owned(v: &[&str]) -> Vec<String> {
    sorted(v.iter().map(|s| (*s).to_owned()).collect())
}

/// The three jobs, one failing; the promotion refuses; the failed service is fixed and only it is
/// built again (the matrix skips the others); the promotion then moves every floating tag; a
/// re-run changes nothing.
#[test]
fn three_jobs_then_one_promotion_moves_every_floating_tag_only_when_all_passed() {
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let members = ["orders", "billing", "search"];
    let ws = Monorepo::new(&registry, &members, "1.2.0");
    // Each crate's revision is the last commit that touched its inputs: orders and billing stay
    // at the first commit.
    let first = ws.head();
    // search's job will fail: its code does not compile at this commit.
    ws.write(
        "search/src/main.rs",
        "fn main() { this does not compile }\n",
    );
    ws.commit("search: broken");

    assert_eq!(
        sorted(ws.matrix()),
        sorted(members.iter().map(|m| ws.package(m)).collect())
    );
    for member in ["orders", "billing"] {
        let out = ws.job(member);
        assert_success(&out);
        assert_eq!(
            registry.release_tags(&ws.repo(member)),
            owned(&["1.2.0", &first[..7]]),
            "{member}'s job pushed its immutable tags only"
        );
    }
    let failed = ws.job("search");
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed.stderr));
    assert!(registry.tags(&ws.repo("search")).is_empty());

    // The promotion refuses, names search, and moves nothing anywhere.
    let out = ws.promote_in(ws.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&ws.package("search")), "{stderr}");
    assert!(stderr.contains("not promoting anything"), "{stderr}");
    let report = json(&out);
    assert_eq!(report["success"], false);
    let states: Vec<&str> = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["not-promoted", "not-promoted", "failed"]);
    for member in ["orders", "billing"] {
        assert_eq!(
            registry.release_tags(&ws.repo(member)),
            owned(&["1.2.0", &first[..7]])
        );
    }

    // Fixed: only search's inputs changed, so only search is in the matrix.
    ws.write("search/src/main.rs", MAIN_RS);
    let fixed = ws.commit("search: fixed");
    assert_eq!(ws.matrix(), [ws.package("search")]);
    assert_success(&ws.job("search"));

    let out = ws.promote_in(ws.path());
    assert_success(&out);
    let report = json(&out);
    assert_eq!(report["success"], true);
    for (member, sha) in [("orders", &first), ("billing", &first), ("search", &fixed)] {
        let repo = ws.repo(member);
        assert_eq!(
            registry.release_tags(&repo),
            owned(&["1", "1.2", "1.2.0", &sha[..7], "latest"])
        );
        let digest = registry.manifest_digest(&repo, "1.2.0").unwrap();
        for tag in ["1", "1.2", "latest", &sha[..7]] {
            assert_eq!(
                registry.manifest_digest(&repo, tag).as_deref(),
                Some(digest.as_str()),
                "{member}:{tag} names the tested manifest"
            );
        }
        let service = report["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["package"] == ws.package(member).as_str())
            .unwrap();
        assert_eq!(service["state"], "promoted");
        assert_eq!(service["digest"], digest.as_str());
    }
    assert!(ws.matrix().is_empty(), "everything is current");
    // The job summaries: the refused promotion names search's problem, the second one the moves.
    let summary = std::fs::read_to_string(ws.summary()).unwrap();
    assert!(
        summary.contains(&format!("**{}**", ws.package("search"))),
        "{summary}"
    );
    assert!(
        summary.contains(&format!(
            "| {} | 1.2.0 | Promoted | `1.2` `1` `latest` |",
            ws.package("orders")
        )),
        "{summary}"
    );

    // A re-run is a no-op.
    let before: Vec<Vec<Option<String>>> = members
        .iter()
        .map(|m| {
            ["1", "1.2", "latest"]
                .iter()
                .map(|t| registry.manifest_digest(&ws.repo(m), t))
                .collect()
        })
        .collect();
    let again = ws.promote_in(ws.path());
    assert_success(&again);
    let report = json(&again);
    for service in report["services"].as_array().unwrap() {
        for tag in service["tags"].as_array().unwrap() {
            assert_ne!(tag["outcome"], "moved", "{tag}");
        }
    }
    assert!(
        !text(&again.stderr).contains("Promoted"),
        "{}",
        text(&again.stderr)
    );
    let after: Vec<Vec<Option<String>>> = members
        .iter()
        .map(|m| {
            ["1", "1.2", "latest"]
                .iter()
                .map(|t| registry.manifest_digest(&ws.repo(m), t))
                .collect()
        })
        .collect();
    assert_eq!(before, after);
}

/// An older (1.0.1) and a newer (1.1.0) release of one service, both pushed by their jobs, then
/// promoted at once from two checkouts: the newer ends on `1` and `latest`, the older keeps only
/// its own `1.0`.
#[test]
fn two_racing_promotions_end_with_the_newer_release_on_every_shared_tag() {
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let ws = Monorepo::new(&registry, &["api"], "1.0.1");
    let older_sha = ws.head();
    assert_success(&ws.job("api"));
    // The older release's checkout, as its pipeline has it.
    let older: PathBuf = ws.path().join("target").join("older-checkout");
    git2::Repository::clone(ws.path().to_str().unwrap(), &older).unwrap();

    ws.set_version("api", "1.1.0");
    let newer_sha = ws.commit("api 1.1.0");
    assert_success(&ws.job("api"));

    let spawn = |dir: &Path| {
        ws.command_in(dir, &["promote", "--workspace", "--message-format", "json"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the built binary starts")
    };
    let (a, b) = (spawn(&older), spawn(ws.path()));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_success(&a);
    assert_success(&b);
    ws.assert_engine_holds_no_image();

    let repo = ws.repo("api");
    let older_digest = registry.manifest_digest(&repo, "1.0.1").unwrap();
    let newer_digest = registry.manifest_digest(&repo, "1.1.0").unwrap();
    assert_ne!(older_digest, newer_digest);
    assert_eq!(
        registry.manifest_digest(&repo, &older_sha[..7]),
        Some(older_digest.clone())
    );
    assert_eq!(
        registry.manifest_digest(&repo, &newer_sha[..7]),
        Some(newer_digest.clone())
    );
    for tag in ["1", "1.1", "latest"] {
        assert_eq!(
            registry.manifest_digest(&repo, tag).as_deref(),
            Some(newer_digest.as_str()),
            "{tag} names the newer release"
        );
    }
    assert_eq!(registry.manifest_digest(&repo, "1.0"), Some(older_digest));
    // The older promotion says why it left `1` and `latest` alone.
    let older_report = json(&a);
    let tags = older_report["services"][0]["tags"].as_array().unwrap();
    for name in ["1", "latest"] {
        let tag = tags.iter().find(|t| t["name"] == name).unwrap();
        assert!(
            tag["outcome"] == "held-back" || tag["outcome"] == "newer",
            "{tag}"
        );
        assert!(tag["reason"].as_str().unwrap().contains("1.1.0"), "{tag}");
    }
}
