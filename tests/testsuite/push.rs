//! `--push` end to end against real registries (Debian's `docker-registry`, see
//! `support::registry`): on a loopback HTTP registry, the registry gets exactly the plan's tags,
//! each serving the tested image, and the report carries the digest; credentials come from
//! `DOCKER_CONFIG`; a refusing or absent registry fails the release before anything is tagged.
//! Over HTTPS with token auth (under a test host name, CA in `/etc/docker/certs.d`), on an
//! engine that holds no image of the repository: the registry alone keeps `latest` from moving
//! back, refuses an immutable tag from another revision before anything is built (exit 2,
//! `--force` overwrites and names what it replaced), and a wrong password or an unreachable
//! registry stops the release before the build. An immutable tag another job pushes during the
//! release is refused right before its push, and no floating tag moves.
//!
//! Each test starts its own registry (killed and its storage deleted on drop) and a fixture with
//! a unique package and repository whose local images its guard removes. They run in parallel.

use crate::support;

use std::collections::BTreeMap;

use cargo_docker_release::engine::images::ImageStore;
use serde_json::Value;
use support::Registry;
use support::registry::{Auth, TEST_HOST};
use support::service::*;

fn applied_tags(plan: &Value) -> Vec<String> {
    let mut tags: Vec<String> = plan["images"][0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["applied"] == true)
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    tags.sort();
    tags
}

impl Fixture {
    /// The repository path inside the registry (`cdr-test/push-…`).
    fn repo(&self) -> &str {
        self.image.split_once('/').unwrap().1
    }
}

/// A `DOCKER_CONFIG` directory with no credentials (so the user's own config plays no part).
fn empty_docker_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{}\n").unwrap();
    dir
}

#[test]
fn push_sends_exactly_the_plans_tags_and_the_registry_serves_the_tested_image() {
    let registry = Registry::start();
    let fx = Fixture::new("push", Some(&registry.addr), "1.2.3", "");
    let config = empty_docker_config();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    let (sha, _) = fx.head();

    let plan = fx.run_env(&["--dry-run", "--push", "--message-format", "json"], &env);
    assert_success(&plan);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    assert!(
        registry.tags(fx.repo()).is_empty(),
        "--dry-run pushes nothing"
    );

    let out = fx.run_env(&["--push", "--message-format", "json"], &env);
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is JSON");

    let pushed = registry.release_tags(fx.repo());
    assert_eq!(pushed, applied_tags(&plan));
    // Both sides sorted (a SHA tag may sort before `1`).
    let mut expected = ["1", "1.2", "1.2.3", &sha[..7], "latest"].map(String::from);
    expected.sort();
    assert_eq!(pushed, expected);
    let local = fx.tags();
    let id = local["1.2.3"].clone();
    for tag in &pushed {
        assert_eq!(
            registry.config_digest(fx.repo(), tag).as_deref(),
            Some(id.as_str()),
            "{tag} in the registry is the tested image"
        );
    }
    let service = &report["services"][0];
    assert_eq!(service["image_id"], id.as_str());
    let digest = registry.manifest_digest(fx.repo(), "1.2.3").unwrap();
    assert_eq!(
        service["digest"],
        digest.as_str(),
        "the report has the digest"
    );
    assert_eq!(
        registry.manifest_digest(fx.repo(), "latest").as_deref(),
        Some(digest.as_str())
    );
    let mut reported: Vec<String> = service["pushed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_owned())
        .collect();
    // Immutable tags go first, floating ones last.
    let floating_from = reported.iter().position(|t| t == "1.2").unwrap();
    assert!(
        reported[..floating_from].contains(&"1.2.3".to_owned())
            && reported[..floating_from].contains(&sha[..7].to_owned()),
        "immutable tags are pushed before floating ones: {reported:?}"
    );
    reported.sort();
    assert_eq!(reported, pushed);

    let human = fx.run_env(&["--push"], &env);
    assert_success(&human);
    let stderr = text(&human.stderr) + &text(&human.stdout);
    assert!(
        stderr.contains(&digest),
        "the summary shows the digest:\n{stderr}"
    );
}

#[test]
fn credentials_come_from_docker_config_and_without_them_nothing_is_tagged_or_pushed() {
    let registry = Registry::start_with_auth("ci", "s3cret");
    let fx = Fixture::new("push", Some(&registry.addr), "0.4.2", "");
    let none = empty_docker_config();

    let refused = fx.run_env(
        &["--push"],
        &[("DOCKER_CONFIG", none.path().to_str().unwrap())],
    );
    assert_eq!(
        refused.status.code(),
        Some(1),
        "stderr:\n{}",
        text(&refused.stderr)
    );
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains(&format!("docker login {}", registry.addr)),
        "the hint names docker login:\n{stderr}"
    );
    assert!(
        stderr.contains("401"),
        "the message says the registry refused:\n{stderr}"
    );
    assert!(
        fx.tags().is_empty(),
        "nothing tagged locally: {:?}",
        fx.tags()
    );
    assert!(registry.tags(fx.repo()).is_empty(), "nothing pushed");

    let config = registry.docker_config();
    let out = fx.run_env(&["--push"], &[("DOCKER_CONFIG", config.to_str().unwrap())]);
    assert_success(&out);
    let (sha, _) = fx.head();
    assert_eq!(
        registry.release_tags(fx.repo()),
        ["0.4", "0.4.2", &sha[..7], "latest"].map(String::from)
    );
    let id = fx.tags()["0.4.2"].clone();
    assert_eq!(registry.config_digest(fx.repo(), "latest"), Some(id));
}

#[test]
fn a_registry_that_is_down_fails_the_release_and_moves_no_tag() {
    let addr = format!("127.0.0.1:{}", support::free_port());
    let fx = Fixture::new("push", Some(&addr), "1.0.0", "");
    let config = empty_docker_config();
    let out = fx.run_env(
        &["--push"],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("unreachable"), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    let tags = fx.tags();
    assert!(
        !tags.contains_key("latest") && !tags.contains_key("1") && !tags.contains_key("1.0"),
        "no floating tag moved: {tags:?}"
    );
}

#[test]
fn an_immutable_tag_with_another_image_in_the_registry_is_a_conflict_unless_forced() {
    let registry = Registry::start();
    let fx = Fixture::new("push", Some(&registry.addr), "2.0.0", "");
    let config = empty_docker_config();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    assert_success(&fx.run_env(&["--push"], &env));
    let first = registry.config_digest(fx.repo(), "2.0.0").unwrap();

    // Another revision released as the same version, with no local trace of the first one.
    fx.write("src/extra.txt", "changed\n");
    fx.commit("change without a version bump");
    block_on(async {
        let engine = engine().await;
        for t in engine.repository_tags(&fx.image).await.unwrap() {
            engine
                .untag(&format!("{}:{}", fx.image, t.tag))
                .await
                .unwrap();
        }
    });
    let out = fx.run_env(&["--push"], &env);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("in the registry"), "{stderr}");
    assert_eq!(
        registry.config_digest(fx.repo(), "2.0.0").as_deref(),
        Some(first.as_str()),
        "nothing was pushed"
    );
    assert_eq!(
        registry.config_digest(fx.repo(), "latest").as_deref(),
        Some(first.as_str())
    );

    assert_success(&fx.run_env(&["--push", "--force"], &env));
    let second = registry.config_digest(fx.repo(), "2.0.0").unwrap();
    assert_ne!(second, first);
    assert_eq!(registry.config_digest(fx.repo(), "latest"), Some(second));
}

#[test]
fn a_push_that_fails_after_the_tests_moves_no_floating_tag() {
    // The registry answers the checks before the build, then a host check of the test stage takes
    // it down: the release builds and tests, tags the immutable tags, then the push fails.
    let registry = Registry::start();
    let addr = registry.addr.clone();
    let fx = Fixture::new(
        "push",
        Some(&addr),
        "1.1.0",
        &format!(
            "[[package.metadata.docker.test.host]]\ncmd = [\"kill\", \"-9\", \"{}\"]\n",
            registry.pid()
        ),
    );
    let config = empty_docker_config();
    let out = fx.run_env(
        &["--push", "--message-format", "json"],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("push failed"), "{stderr}");
    assert!(stderr.contains(&addr), "{stderr}");
    let tags = fx.tags();
    let (sha, _) = fx.head();
    // Immutable tags may have been applied locally before the push; floating ones never.
    assert!(
        tags.keys().all(|t| t == "1.1.0" || *t == sha[..7]),
        "no floating tag moved: {tags:?}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is JSON");
    let service = &report["services"][0];
    assert_eq!(report["success"], false);
    assert_eq!(service["digest"], Value::Null);
    let latest = service["tags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "latest")
        .unwrap();
    assert_eq!(latest["applied"], false);
    let reason = latest["reason"].as_str().unwrap();
    assert!(
        reason.contains("held back") || reason.contains("not applied"),
        "{latest}"
    );
}

#[test]
fn a_dirty_build_is_pushed_only_with_push_and_allow_dirty_and_gets_only_its_dirty_tag() {
    let registry = Registry::start();
    let fx = Fixture::new("push", Some(&registry.addr), "3.0.0", "");
    let config = empty_docker_config();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    fx.write("src/main.rs", &format!("{MAIN_RS}\n// uncommitted\n"));
    let (sha, _) = fx.head();

    let refused = fx.run_env(&["--push"], &env);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    assert!(registry.tags(fx.repo()).is_empty());

    let out = fx.run_env(&["--push", "--allow-dirty"], &env);
    assert_success(&out);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("--push and --allow-dirty were both given"),
        "a status line says the development build is pushed:\n{stderr}"
    );
    let dirty = format!("{}-dirty", &sha[..7]);
    assert_eq!(registry.release_tags(fx.repo()), vec![dirty.clone()]);
    assert_eq!(
        registry.config_digest(fx.repo(), &dirty),
        Some(fx.tags()[&dirty].clone())
    );
}

#[test]
fn a_workspace_pushes_every_services_immutable_tags_before_any_floating_tag() {
    let registry = Registry::start();
    let images = support::TestImages::new("push-ws");
    let fx = support::project()
        .copy_of(support::example_dir("workspace"))
        .build();
    let repos: Vec<String> = ["orders", "billing"]
        .iter()
        .map(|s| images.repo(s))
        .collect();
    for (service, repo) in ["orders", "billing"].iter().zip(&repos) {
        let image = registry.image(repo);
        fx.edit_toml(format!("{service}/Cargo.toml"), |d| {
            let docker = &mut d["package"]["metadata"]["docker"];
            docker["image"] = toml_edit::value(image.as_str());
            let mut labels = toml_edit::InlineTable::new();
            labels.insert(TEST_LABEL_KEY, "1".into());
            labels.insert(support::TOKEN_LABEL, images.token().into());
            docker["labels"] = toml_edit::value(labels);
        });
    }
    fx.edit_toml("Cargo.toml", |d| {
        d["workspace"]["metadata"]["docker"]["strategy"] = toml_edit::value("host");
    });
    fx.commit_all("push to the test registry");
    let config = empty_docker_config();
    let out = fx.run_with_env(
        ["--workspace", "--push"],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
    );
    out.success();

    let pushed: Vec<&str> = out
        .stderr
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("Pushed "))
        .collect();
    assert_eq!(pushed.len(), 4, "two pushes per service: {pushed:?}");
    let last_fixed = pushed.iter().rposition(|l| l.contains("1.4.2")).unwrap();
    let first_floating = pushed.iter().position(|l| l.contains("latest")).unwrap();
    assert!(
        last_fixed < first_floating,
        "every service's immutable tags are in the registry before any floating tag: {pushed:?}"
    );
    let sha = fx.head_sha();
    for repo in &repos {
        let tags = registry.release_tags(repo);
        for tag in ["1", "1.4", "1.4.2", &sha[..7], "latest"] {
            assert!(tags.iter().any(|t| t == tag), "{repo}: {tags:?}");
        }
        assert_eq!(
            registry.config_digest(repo, "latest"),
            registry.config_digest(repo, "1.4.2")
        );
    }
}

#[test]
fn with_push_the_registrys_releases_keep_latest_from_moving_backwards() {
    let registry = Registry::start();
    let fx = Fixture::new("push", Some(&registry.addr), "2.0.0", "");
    let config = empty_docker_config();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    assert_success(&fx.run_env(&["--push"], &env));
    let newest = registry.config_digest(fx.repo(), "latest").unwrap();

    // An older line released later, from a machine whose engine never saw 2.0.0.
    fx.write_manifest("1.9.0", "");
    let sha = fx.commit("a 1.9 maintenance release");
    block_on(async {
        let engine = engine().await;
        for t in engine.repository_tags(&fx.image).await.unwrap() {
            engine
                .untag(&format!("{}:{}", fx.image, t.tag))
                .await
                .unwrap();
        }
    });
    let plan = fx.run_env(&["--dry-run", "--push", "--message-format", "json"], &env);
    assert_success(&plan);
    let plan: Value = serde_json::from_slice(&plan.stdout).unwrap();
    let applied = applied_tags(&plan);
    let mut expected = ["1", "1.9", "1.9.0", &sha[..7]].map(String::from);
    expected.sort();
    assert_eq!(applied, expected);

    assert_success(&fx.run_env(&["--push"], &env));
    assert_eq!(
        registry.config_digest(fx.repo(), "latest").as_deref(),
        Some(newest.as_str()),
        "latest stays on 2.0.0"
    );
    let id = fx.tags()["1.9.0"].clone();
    for tag in &applied {
        assert_eq!(
            registry.config_digest(fx.repo(), tag).as_deref(),
            Some(id.as_str())
        );
    }
}

/// `text` without whitespace and miette's margin, so that wrapped messages can be searched.
fn flat(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

/// Removes every local tag of the fixture's repository: the engine of a fresh CI runner.
fn forget_local_images(fx: &Fixture) {
    block_on(async {
        let engine = engine().await;
        for t in engine.repository_tags(&fx.image).await.unwrap() {
            engine
                .untag(&format!("{}:{}", fx.image, t.tag))
                .await
                .unwrap();
        }
    });
}

/// Images the engine holds that were built for the fixture's package (tagged or not).
fn built_images(fx: &Fixture) -> usize {
    block_on(async {
        engine()
            .await
            .images_labelled(&[("io.cargo-docker-release.package", &fx.package)])
            .await
            .unwrap()
            .len()
    })
}

/// Tag -> manifest digest of the fixture's repository in `registry`.
fn registry_state(registry: &Registry, fx: &Fixture) -> BTreeMap<String, String> {
    registry
        .tags(fx.repo())
        .into_iter()
        .map(|t| {
            let d = registry.manifest_digest(fx.repo(), &t).unwrap();
            (t, d)
        })
        .collect()
}

#[test]
fn on_an_https_token_registry_the_registry_alone_decides_what_moves() {
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let fx = Fixture::new("push", Some(&registry.addr), "2.0.0", "");
    let config = registry.docker_config();
    let env = [("DOCKER_CONFIG", config.to_str().unwrap())];

    // 2.0.0, pushed over HTTPS with tokens; the report has every tag's digest, verified.
    let out = fx.run_env(&["--push", "--message-format", "json"], &env);
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let push = report["services"][0]["push"].as_array().unwrap().clone();
    assert_eq!(push.len(), 5, "{push:?}");
    for p in &push {
        let tag = p["tag"].as_str().unwrap();
        assert_eq!(
            p["digest"].as_str(),
            registry.manifest_digest(fx.repo(), tag).as_deref(),
            "{tag}"
        );
        assert_eq!(p["verified"], true, "{p}");
    }
    let id = fx.tags()["2.0.0"].clone();
    assert_eq!(registry.config_digest(fx.repo(), "latest"), Some(id));
    let newest = registry.manifest_digest(fx.repo(), "latest").unwrap();
    assert!(
        registry.token_server().unwrap().requests() > 0,
        "the engine and the tool got tokens"
    );
    forget_local_images(&fx);

    // 1.9.0 released later from an engine that never saw 2.0.0: latest stays on 2.0.0.
    fx.write_manifest("1.9.0", "");
    fx.commit("a 1.9 maintenance release");
    let out = fx.run_env(&["--push"], &env);
    assert_success(&out);
    assert_eq!(
        registry.manifest_digest(fx.repo(), "latest").as_deref(),
        Some(newest.as_str()),
        "latest stays on 2.0.0"
    );
    assert_eq!(
        registry.manifest_digest(fx.repo(), "1"),
        registry.manifest_digest(fx.repo(), "1.9.0")
    );
    let human = text(&out.stderr) + &text(&out.stdout);
    assert!(
        human.contains("verified"),
        "the summary says verified:\n{human}"
    );
    forget_local_images(&fx);

    // 2.0.0 again from another commit: exit 2 before anything is built; registry unchanged.
    fx.write_manifest("2.0.0", "");
    fx.write("src/extra.txt", "changed\n");
    fx.commit("2.0.0 again, without a version bump");
    let before = registry_state(&registry, &fx);
    let built_before = built_images(&fx);
    let out = fx.run_env(&["--push"], &env);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        flat(&stderr).contains(&flat(&format!(
            "{}:2.0.0 in registry {}",
            fx.image, registry.addr
        ))),
        "{stderr}"
    );
    assert!(
        stderr.contains("--force"),
        "the hint names --force:\n{stderr}"
    );
    assert_eq!(built_images(&fx), built_before, "nothing was built");
    assert_eq!(
        registry_state(&registry, &fx),
        before,
        "the registry is unchanged"
    );

    // --force overwrites it and says which image it replaced.
    let out = fx.run_env(&["--push", "--force"], &env);
    assert_success(&out);
    let stderr = text(&out.stderr);
    let replaced = &before["2.0.0"];
    assert!(
        stderr.contains("--force") && flat(&stderr).contains(replaced.as_str()),
        "the warning names the replaced image {replaced}:\n{stderr}"
    );
    let now = registry.manifest_digest(fx.repo(), "2.0.0").unwrap();
    assert_ne!(&now, replaced);
    assert_eq!(registry.manifest_digest(fx.repo(), "latest"), Some(now));
}

#[test]
fn a_wrong_password_or_an_unreachable_https_registry_stops_the_release_before_the_build() {
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let fx = Fixture::new("push", Some(&registry.addr), "1.0.0", "");
    let wrong = registry.docker_config_with("ci", "wrong-password");
    let out = fx.run_env(&["--push"], &[("DOCKER_CONFIG", wrong.to_str().unwrap())]);
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        flat(&stderr).contains(&flat(&format!("registry {} (token)", registry.addr))),
        "{stderr}"
    );
    assert!(stderr.contains("docker login"), "{stderr}");
    assert!(
        !stderr.contains("wrong-password"),
        "no secret printed:\n{stderr}"
    );
    assert_eq!(built_images(&fx), 0, "nothing was built");
    assert!(registry.tags(fx.repo()).is_empty(), "nothing pushed");

    // Nothing listens there (the host name resolves while the registry above holds it).
    let addr = format!("{TEST_HOST}:{}", support::free_port());
    let gone = Fixture::new("push", Some(&addr), "1.0.0", "");
    let config = empty_docker_config();
    let out = gone.run_env(
        &["--push"],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(1), "stderr:\n{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        flat(&stderr).contains(&flat(&format!("registry {addr} (ping)")))
            && stderr.contains("unreachable"),
        "{stderr}"
    );
    assert_eq!(built_images(&gone), 0, "nothing was built");
}

#[test]
fn an_immutable_tag_pushed_by_someone_else_during_the_release_is_refused_and_nothing_floats() {
    // Between the check before the build and the push, "another CI job" puts an image under
    // 1.1.0 (a host test of the test stage does it with curl).
    let registry = Registry::start();
    let fx = Fixture::new("push", Some(&registry.addr), "1.1.0", "");
    let repo = fx.repo().to_owned();
    let (manifest, digest) = tiny_manifest(&registry, &repo);
    let path = fx.path().join("other-job-manifest.json");
    std::fs::write(&path, &manifest).unwrap();
    fx.write_manifest(
        "1.1.0",
        &format!(
            "[[package.metadata.docker.test.host]]\ncmd = [\"curl\", \"-sf\", \"-X\", \"PUT\", \"-H\", \"Content-Type: application/vnd.docker.distribution.manifest.v2+json\", \"--data-binary\", \"@{}\", \"http://{}/v2/{repo}/manifests/1.1.0\"]\n",
            path.display(),
            registry.addr
        ),
    );
    fx.write(".gitignore", "/target\nother-job-manifest.json\n");
    fx.commit("a release that races another job");
    let config = empty_docker_config();
    let out = fx.run_env(
        &["--push"],
        &[("DOCKER_CONFIG", config.path().to_str().unwrap())],
    );
    assert_eq!(out.status.code(), Some(2), "stderr:\n{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("appeared"), "{stderr}");
    assert_eq!(
        registry.manifest_digest(&repo, "1.1.0"),
        Some(digest),
        "the other job's 1.1.0 stays"
    );
    let tags = registry.release_tags(&repo);
    assert!(
        !tags.iter().any(|t| t == "latest" || t == "1" || t == "1.1"),
        "no floating tag moved: {tags:?}"
    );
}

/// A tiny image manifest whose config blob is already in `repo` (but no tag): what another job
/// would push. Returns the manifest bytes and digest.
fn tiny_manifest(registry: &Registry, repo: &str) -> (String, String) {
    let config = r#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = registry.put_blob(repo, config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.len(),
            "digest": config_digest
        },
        "layers": []
    })
    .to_string();
    let digest = support::registry::sha256(manifest.as_bytes());
    (manifest, digest)
}

#[test]
fn an_identity_token_from_a_credential_helper_pushes_to_a_token_registry() {
    use std::os::unix::fs::PermissionsExt;
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let fx = Fixture::new("push", Some(&registry.addr), "0.3.0", "");
    let identity = registry.token_server().unwrap().identity_token.clone();
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("docker-credential-cdrtest");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread server\n[ \"$server\" = \"{}\" ] || {{ echo 'credentials not found'; exit 1; }}\necho '{{\"Username\":\"<token>\",\"Secret\":\"{identity}\"}}'\n",
            registry.addr
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        format!(
            "{{\"credHelpers\": {{\"{}\": \"cdrtest\"}}}}\n",
            registry.addr
        ),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = fx.run_env(
        &["--push"],
        &[
            ("DOCKER_CONFIG", dir.path().to_str().unwrap()),
            ("PATH", &path),
        ],
    );
    assert_success(&out);
    assert!(
        !text(&out.stderr).contains(&identity),
        "the identity token is never printed"
    );
    let id = fx.tags()["0.3.0"].clone();
    assert_eq!(registry.config_digest(fx.repo(), "0.3.0"), Some(id.clone()));
    assert_eq!(registry.config_digest(fx.repo(), "latest"), Some(id));
}

/// A tag the test made on the engine, removed when dropped.
struct LocalTag(String);

impl Drop for LocalTag {
    fn drop(&mut self) {
        support::docker(["rmi", &self.0]);
    }
}

#[test]
fn a_base_image_from_a_private_registry_is_pulled_with_docker_config_credentials_by_both_builders()
{
    let registry = Registry::start_with_auth("ci", "s3cret");
    let config = registry.docker_config();
    let config_dir = config.to_str().unwrap();
    // The suite's busybox image, pushed to the private registry as the service's base.
    let base = registry.image(&format!("cdr-test/base-{}", unique()));
    let base_ref = format!("{base}:1");
    let _local = LocalTag(base_ref.clone());
    support::docker_ok(["tag", &support::busybox_image(), &base_ref]);
    support::docker_ok(["--config", config_dir, "push", &base_ref]);

    let fx = Fixture::new("privbase", None, "0.1.0", "");
    let with_base = |version: &str| {
        fx.write_manifest(version, "static = true\n");
        let manifest = fx.path().join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).unwrap();
        std::fs::write(
            &manifest,
            text.replace("base = \"scratch\"", &format!("base = \"{base_ref}\"")),
        )
        .unwrap();
        fx.commit(version);
    };
    with_base("0.1.0");
    let none = empty_docker_config();
    let none = none.path().to_str().unwrap();
    for (builder, env, version) in [("buildkit", "1", "0.1.0"), ("classic", "0", "0.2.0")] {
        if version != "0.1.0" {
            with_base(version);
        }
        // The engine holds no copy under that name (BuildKit keeps what it pulls in its own
        // store): the build must pull it.
        support::docker(["rmi", &base_ref]);
        assert!(!support::image_exists(&base_ref));
        let refused = fx.run_env(
            &["--message-format", "json"],
            &[("DOCKER_CONFIG", none), ("DOCKER_BUILDKIT", env)],
        );
        assert_eq!(
            refused.status.code(),
            Some(1),
            "{builder} without credentials: {}",
            text(&refused.stderr)
        );
        let words = text(&refused.stderr)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            words.contains("could not pull an image the Dockerfile starts FROM"),
            "{builder}: {words}"
        );
        assert!(
            !fx.tags().contains_key(version),
            "{builder}: nothing tagged"
        );

        let out = fx.run_env(
            &["--message-format", "json"],
            &[("DOCKER_CONFIG", config_dir), ("DOCKER_BUILDKIT", env)],
        );
        assert_success(&out);
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["services"][0]["builder"], builder);
        assert!(
            fx.tags().contains_key(version),
            "{builder}: {:?}",
            fx.tags()
        );
    }
}

/// Removes every image built for the fixture's package: the engine of a fresh CI runner, which
/// would have to build the release again (and not bit-identically).
fn remove_built_images(fx: &Fixture) {
    let label = format!("label=io.cargo-docker-release.package={}", fx.package);
    let ids = std::process::Command::new("docker")
        .args(["images", "-q", "--filter", &label])
        .output()
        .unwrap();
    let ids = text(&ids.stdout);
    let mut ids: Vec<&str> = ids.split_whitespace().collect();
    ids.sort();
    ids.dedup();
    if !ids.is_empty() {
        let status = std::process::Command::new("docker")
            .args(["rmi", "-f"])
            .args(&ids)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
    }
    assert_eq!(built_images(fx), 0);
}

#[test]
fn a_retried_job_on_a_fresh_runner_finds_its_release_in_the_registry_and_changes_nothing() {
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let fx = Fixture::new("retry", Some(&registry.addr), "1.0.0", "");
    let config = registry.docker_config();
    let env = [("DOCKER_CONFIG", config.to_str().unwrap())];
    assert_success(&fx.run_env(&["--push"], &env));
    let before = registry_state(&registry, &fx);
    assert!(before.contains_key("latest"), "{before:?}");

    // The same job again on a runner whose engine has never seen the image.
    remove_built_images(&fx);
    let out = fx.run_env(&["--push", "--message-format", "json"], &env);
    assert_success(&out);
    let stderr = text(&out.stderr);
    assert!(
        flat(&stderr).contains(&flat("the registry already holds this release")),
        "{stderr}"
    );
    assert_eq!(built_images(&fx), 0, "nothing was built");
    assert_eq!(
        registry_state(&registry, &fx),
        before,
        "the registry is unchanged"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let service = &report["services"][0];
    assert_eq!(service["state"], "released", "{service}");
    assert_eq!(service["digest"].as_str(), Some(before["1.0.0"].as_str()));
    let tags = service["tags"].as_array().unwrap();
    assert!(
        tags.iter()
            .filter(|t| t["planned"] == true)
            .all(|t| t["applied"] == true && t["moved"] == false),
        "{tags:?}"
    );
    assert!(service["push"].as_array().unwrap().is_empty(), "{service}");
}
