//! Images the tool assembles (the host strategy, no builder): the image is what its Dockerfile
//! says, two checkouts of one commit at different paths give one image ID, and `--push` sends
//! the exact bytes with the registry client: the registry's digest is the one computed locally,
//! a blob the registry has is not sent again, and a release a dead job pushed in part is
//! completed rather than refused.

use crate::support;

use std::path::Path;

use serde_json::Value;
use support::Registry;
use support::service::*;

/// A build script whose generated code embeds its own absolute path (`file!()` in `OUT_DIR`),
/// as code generators' output does: without path remapping two checkouts differ.
fn with_generated_code(fx: &Fixture) {
    fx.write(
        "build.rs",
        "fn main() {\n    let out = std::env::var(\"OUT_DIR\").unwrap();\n    std::fs::write(format!(\"{out}/gen.rs\"), \"#[used] static ORIGIN: &str = file!();\\n\").unwrap();\n}\n",
    );
    fx.write(
        "src/main.rs",
        &format!("{MAIN_RS}\ninclude!(concat!(env!(\"OUT_DIR\"), \"/gen.rs\"));\n"),
    );
    fx.commit("generated code");
}

/// The service's OCI layout: (manifest digest, config digest, the blobs' files).
fn layout(root: &Path, package: &str) -> (String, String, Vec<(String, Vec<u8>)>) {
    let dir = root
        .join("target/docker-release")
        .join(package)
        .join("image");
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    let blob = |d: &str| std::fs::read(dir.join("blobs/sha256").join(&d[7..])).unwrap();
    let manifest: Value = serde_json::from_slice(&blob(&manifest_digest)).unwrap();
    let config = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let mut blobs: Vec<(String, Vec<u8>)> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .chain([config.clone(), manifest_digest.clone()])
        .map(|d| {
            let data = blob(&d);
            (d, data)
        })
        .collect();
    blobs.dedup();
    (manifest_digest, config, blobs)
}

fn inspect(id: &str) -> Value {
    let out = support::docker_ok(["image", "inspect", id]);
    serde_json::from_str::<Value>(&out).unwrap()[0].clone()
}

#[test]
fn an_assembled_image_is_its_dockerfile_and_two_checkouts_of_a_commit_give_one_image_id() {
    let fx = Fixture::new("assembled", None, "1.0.0", "");
    with_generated_code(&fx);
    let (sha, commit_time) = fx.head();
    let out = fx.run(&["--timings", "--message-format", "json"]);
    assert_success(&out);
    let id = fx.tags()["1.0.0"].clone();

    // `--timings`: the phases on one timeline, in the report and as a page.
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let spans = report["services"][0]["timings"]["spans"]
        .as_array()
        .unwrap();
    let phases: Vec<&str> = spans.iter().map(|s| s["phase"].as_str().unwrap()).collect();
    for phase in ["cargo", "image", "test", "tag"] {
        assert!(phases.contains(&phase), "{phase}: {phases:?}");
    }
    let span = |phase: &str| {
        let s = spans.iter().find(|s| s["phase"] == phase).unwrap();
        let start = s["start_ms"].as_u64().unwrap();
        (start, start + s["duration_ms"].as_u64().unwrap())
    };
    let (cargo, image, test, tag) = (span("cargo"), span("image"), span("test"), span("tag"));
    assert!(
        cargo.0 <= image.0 && image.0 <= test.0 && test.1 <= tag.0,
        "{spans:?}"
    );
    // Each check on the same timeline, inside the test stage.
    let checks: Vec<&Value> = spans
        .iter()
        .filter(|s| s["phase"].as_str().unwrap().starts_with("check: "))
        .collect();
    assert!(checks.len() >= 3, "{spans:?}");
    for check in checks {
        let start = check["start_ms"].as_u64().unwrap();
        assert!(test.0 <= start && start <= test.1, "{check} in {test:?}");
    }
    let page = std::fs::read_to_string(
        fx.path()
            .join("target/docker-release-timings/docker-release-timing.html"),
    )
    .unwrap();
    assert_eq!(page.matches("<rect").count(), spans.len(), "{page}");

    // What the Dockerfile says, as the engine reads it.
    let info = inspect(&id);
    let config = &info["Config"];
    assert_eq!(config["User"], "65532:65532");
    assert!(config["ExposedPorts"]["8080/tcp"].is_object(), "{config}");
    assert_eq!(
        config["Entrypoint"][0],
        format!("/usr/local/bin/{}", fx.package)
    );
    assert!(
        config["Env"]
            .as_array()
            .unwrap()
            .contains(&Value::String(format!("SHA={sha}"))),
        "{config}"
    );
    assert_eq!(config["Healthcheck"]["Interval"], 1_000_000_000u64);
    let labels = &config["Labels"];
    assert_eq!(labels["org.opencontainers.image.revision"], sha.as_str());
    assert_eq!(labels["io.cargo-docker-release.builder"], "assembled");
    assert!(
        labels["io.cargo-docker-release.rustc"]
            .as_str()
            .unwrap()
            .starts_with("rustc 1."),
        "{labels}"
    );
    let created = chrono::DateTime::parse_from_rfc3339(info["Created"].as_str().unwrap()).unwrap();
    assert_eq!(
        created.timestamp(),
        commit_time,
        "created at the commit time"
    );
    assert_eq!(info["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    // The layout the push reads holds the same image.
    let (_, config_digest, _) = layout(fx.path(), &fx.package);
    assert_eq!(config_digest, id);

    // Another checkout of the commit, at another path with its own target directory, on an
    // engine without the image: the same bytes, so the same ID.
    let other = tempfile::tempdir().unwrap();
    let clone = other.path().join("deeper/checkout");
    let cloned = std::process::Command::new("git")
        .args(["clone", "-q"])
        .arg(fx.path())
        .arg(&clone)
        .status()
        .unwrap();
    assert!(cloned.success());
    support::docker_ok(["rmi", "-f", &id]);
    let manifest = clone.join("Cargo.toml");
    let out = support::run_tool_with_env(
        ["--manifest-path", manifest.to_str().unwrap()],
        &clone,
        &[(
            "CARGO_TARGET_DIR",
            clone.join("elsewhere/target").to_str().unwrap(),
        )],
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert_eq!(fx.tags()["1.0.0"], id, "{}", out.stderr);
}

#[test]
fn the_tool_pushes_the_exact_bytes_and_completes_a_release_a_dead_job_pushed_in_part() {
    let registry = Registry::start();
    let fx = Fixture::new("assembled", Some(&registry.addr), "1.2.3", "");
    let repo = fx.image.split_once('/').unwrap().1.to_owned();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("config.json"), "{}\n").unwrap();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];

    // A release without --push assembles the image; a job that died pushed its blobs and the
    // `1.2.3` tag only.
    assert_success(&fx.run_env(&[], &env));
    let id = fx.tags()["1.2.3"].clone();
    let (manifest_digest, _, blobs) = layout(fx.path(), &fx.package);
    for (digest, data) in &blobs[..blobs.len() - 1] {
        assert_eq!(&registry.put_blob(&repo, data), digest);
    }
    let manifest = &blobs.last().unwrap().1;
    let put = registry.request(
        "PUT",
        &format!("/v2/{repo}/manifests/1.2.3"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        manifest,
    );
    assert_eq!(put.status, 201, "{}", put.body);
    assert_eq!(registry.release_tags(&repo), ["1.2.3"]);

    // A fresh runner: the engine has no image. The release builds the same bytes, finds the
    // tag already holding them (not a conflict), uploads no blob, and pushes the rest.
    support::docker_ok(["rmi", "-f", &id]);
    let before = registry.access_log().len();
    let out = fx.run_env(&["--push", "--message-format", "json"], &env);
    assert_success(&out);
    let stderr = text(&out.stderr);
    let uploads: Vec<String> = registry.access_log()[before..]
        .iter()
        .filter(|l| l.starts_with("POST ") || l.starts_with("PATCH "))
        .cloned()
        .collect();
    // Only the SBOM and provenance the dead job never attached are uploaded: their layers and
    // the config of their attachment manifest.
    let att = format!("{}.att", manifest_digest.replacen(':', "-", 1));
    let attached = registry.manifest(&repo, &att).expect("attached");
    assert_eq!(
        uploads.len(),
        attached["layers"].as_array().unwrap().len() + 1,
        "no image blob uploaded: {uploads:?}\n{stderr}"
    );
    assert!(stderr.contains("0 blob(s) uploaded"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["services"][0]["image_id"], id.as_str());
    assert_eq!(report["services"][0]["digest"], manifest_digest.as_str());
    let mut tags = registry.release_tags(&repo);
    tags.sort();
    let sha7 = &fx.head().0[..7];
    let mut wanted = vec!["1", "1.2", "1.2.3", "latest", sha7];
    wanted.sort();
    assert_eq!(tags, wanted);
    for tag in &wanted {
        assert_eq!(
            registry.manifest_digest(&repo, tag).as_deref(),
            Some(manifest_digest.as_str()),
            "{tag}: the digest computed before the build"
        );
    }
}

/// `docker rmi` of a tag this test made, when it ends.
struct LocalTag(String);

impl Drop for LocalTag {
    fn drop(&mut self) {
        support::docker(["rmi", &self.0]);
    }
}

/// A base image on the suite's busybox with `instructions` added, built as
/// `<registry>/cdr-test/base-<unique>:1` and pushed there.
fn pushed_base(registry: &Registry, instructions: &str) -> String {
    let base_ref = format!(
        "{}:1",
        registry.image(&format!("cdr-test/base-{}", support::unique()))
    );
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}\n{instructions}", support::busybox_image()),
    )
    .unwrap();
    support::docker_ok([
        "build",
        "-q",
        "-t",
        &base_ref,
        &ctx.path().to_string_lossy(),
    ]);
    support::docker_ok(["push", &base_ref]);
    base_ref
}

/// A committed static service whose manifest names `base_ref` as its base.
fn fixture_on(base_ref: &str, registry: Option<&str>) -> Fixture {
    let fx = Fixture::new("assembledbase", registry, "1.0.0", "");
    fx.write_manifest("1.0.0", "static = true\n");
    let manifest = fx.path().join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("base = \"scratch\"", &format!("base = \"{base_ref}\"")),
    )
    .unwrap();
    fx.commit(&format!("on the base {base_ref}"));
    fx
}

#[test]
fn an_image_on_a_registry_base_is_assembled_on_its_layers_and_pushed_mounting_them() {
    let registry = Registry::start();
    // A base with its own environment and label, on the suite's busybox, in the registry.
    let base_ref = pushed_base(
        &registry,
        &format!(
            "ENV BASE_VAR=from-base\nLABEL io.test.base=yes {}\n",
            support::TEST_LABEL
        ),
    );
    let _local = LocalTag(base_ref.clone());
    let base_layers = inspect(&base_ref)["RootFS"]["Layers"].clone();
    let base_layers = base_layers.as_array().unwrap().clone();
    assert!(!base_layers.is_empty());

    let fx = fixture_on(&base_ref, Some(&registry.addr));
    let repo = fx.image.split_once('/').unwrap().1.to_owned();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("config.json"), "{}\n").unwrap();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];

    let out = fx.run_env(&["--message-format", "json"], &env);
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["services"][0]["builder"],
        "assembled",
        "{}",
        text(&out.stderr)
    );
    let id = fx.tags()["1.0.0"].clone();
    let info = inspect(&id);
    let layers = info["RootFS"]["Layers"].as_array().unwrap();
    assert_eq!(layers.len(), base_layers.len() + 1, "{info}");
    assert_eq!(&layers[..base_layers.len()], &base_layers[..], "base first");
    let config = &info["Config"];
    let env_vars = config["Env"].as_array().unwrap();
    assert!(
        env_vars.contains(&Value::String("BASE_VAR=from-base".into())),
        "{config}"
    );
    assert!(
        env_vars.contains(&Value::String(format!("SHA={}", fx.head().0))),
        "{config}"
    );
    assert_eq!(config["Labels"]["io.test.base"], "yes", "{config}");
    assert_eq!(
        config["Labels"]["io.cargo-docker-release.builder"],
        "assembled"
    );
    assert_eq!(config["User"], "65532:65532", "the Dockerfile's USER wins");

    // The push mounts the base's layers from its repository: none of them is uploaded.
    // The layout holds no base blob: the engine had the base, nothing was downloaded.
    let dir = fx
        .path()
        .join("target/docker-release")
        .join(&fx.package)
        .join("image");
    let index: Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("blobs/sha256").join(&digest[7..])).unwrap(),
    )
    .unwrap();
    let base_blobs: Vec<String> = manifest["layers"].as_array().unwrap()[..base_layers.len()]
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_owned())
        .collect();
    let before = registry.access_log().len();
    let out = fx.run_env(&["--push"], &env);
    assert_success(&out);
    let stderr = text(&out.stderr);
    let log = registry.access_log()[before..].to_vec();
    for digest in &base_blobs {
        assert!(
            log.iter().any(|l| l.starts_with("POST ")
                && l.contains(&format!("mount={digest}"))
                && l.ends_with(" 201")),
            "{digest} mounted: {log:?}"
        );
        assert!(
            !log.iter()
                .any(|l| l.starts_with("PUT ") && l.contains(&format!("digest={digest}"))),
            "{digest} not uploaded: {log:?}"
        );
    }
    assert!(
        stderr.contains(&format!("{} mounted", base_blobs.len())),
        "{stderr}"
    );
    assert_eq!(
        registry.config_digest(&repo, "1.0.0").as_deref(),
        Some(id.as_str())
    );

    // The provenance and the SBOM name the base by the digest the registry serves for it.
    let (base_name, _) = base_ref.rsplit_once(':').unwrap();
    let base_repo = base_name.split_once('/').unwrap().1;
    let base_digest = registry.manifest_digest(base_repo, "1").unwrap();
    let docs = fx.path().join("target/docker-release").join(&fx.package);
    let provenance: Value =
        serde_json::from_slice(&std::fs::read(docs.join("provenance.json")).unwrap()).unwrap();
    let deps = provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    let base = deps.iter().find(|d| d["name"] == "base").expect("base");
    assert_eq!(base["digest"]["sha256"], &base_digest[7..], "{provenance}");
    assert_eq!(
        base["uri"],
        format!("pkg:docker/{base_name}@{base_digest}").as_str()
    );
    let spdx = std::fs::read_to_string(docs.join("sbom.spdx.json")).unwrap();
    assert!(
        spdx.contains(&base_digest[7..]),
        "the SBOM names the base: {spdx}"
    );
    support::sbom::assert_valid_spdx(&docs.join("sbom.spdx.json"));
}

#[test]
fn a_base_the_engine_lacks_is_downloaded_for_the_load_and_uploaded_to_another_registry() {
    let (origin, target) = (Registry::start(), Registry::start());
    let base_ref = pushed_base(
        &origin,
        &format!("ENV BASE_VAR=elsewhere\nLABEL {}\n", support::TEST_LABEL),
    );
    let base_id = inspect(&base_ref)["Id"].as_str().unwrap().to_owned();
    // The engine no longer has the base image (its layers may stay, shared with busybox).
    support::docker_ok(["rmi", &base_ref]);
    assert!(!support::image_exists(&base_id));
    // Pinned by digest, as `base-digest` renders it.
    let base_repo = base_ref.split_once('/').unwrap().1.trim_end_matches(":1");
    let base_digest = origin.manifest_digest(base_repo, "1").unwrap();
    let base_ref = format!("{base_ref}@{base_digest}");

    let fx = fixture_on(&base_ref, Some(&target.addr));
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("config.json"), "{}\n").unwrap();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    let out = fx.run_env(&["--push", "--message-format", "json"], &env);
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["services"][0]["builder"], "assembled");
    let id = fx.tags()["1.0.0"].clone();
    let env_vars = inspect(&id)["Config"]["Env"].clone();
    assert!(
        env_vars
            .as_array()
            .unwrap()
            .contains(&Value::String("BASE_VAR=elsewhere".into())),
        "{env_vars}"
    );
    // Every blob of the manifest is in the layout (the base's were downloaded) and in the
    // target registry, which served the tested image.
    let (manifest_digest, _, blobs) = layout(fx.path(), &fx.package);
    let repo = fx.image.split_once('/').unwrap().1.to_owned();
    for (digest, _) in &blobs {
        let head = target.request("HEAD", &format!("/v2/{repo}/blobs/{digest}"), &[], &[]);
        let is_manifest = *digest == manifest_digest;
        assert!(
            is_manifest || head.status == 200,
            "{digest}: {}",
            head.status
        );
    }
    assert_eq!(
        target.config_digest(&repo, "1.0.0").as_deref(),
        Some(id.as_str())
    );

    // A fresh runner (no image, no layout) computes the same image from the same base digest.
    support::docker_ok(["rmi", "-f", &id]);
    std::fs::remove_dir_all(fx.path().join("target/docker-release").join(&fx.package)).unwrap();
    let out = fx.run_env(&[], &env);
    assert_success(&out);
    assert_eq!(fx.tags()["1.0.0"], id, "{}", text(&out.stderr));
    assert_eq!(layout(fx.path(), &fx.package).0, manifest_digest);
}

#[test]
fn a_base_whose_registry_does_not_answer_is_built_by_the_builder_with_the_reason() {
    // Only the engine has it: nothing listens on port 9.
    let base_ref = format!("127.0.0.1:9/cdr-test/nowhere-{}:1", support::unique());
    support::docker_ok(["tag", &support::busybox_image(), &base_ref]);
    let _local = LocalTag(base_ref.clone());
    let fx = fixture_on(&base_ref, None);
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("config.json"), "{}\n").unwrap();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    let out = fx.run_env(&["-v", "--message-format", "json"], &env);
    let stderr = text(&out.stderr);
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(report["services"][0]["builder"], "assembled", "{stderr}");
    let words = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        words.contains(&format!("its base `{base_ref}` is not readable")),
        "{words}"
    );
}

#[test]
fn a_builder_made_image_records_its_unpinned_base_by_the_digest_the_engine_pulled() {
    let registry = Registry::start();
    let base_ref = pushed_base(&registry, &format!("LABEL {}\n", support::TEST_LABEL));
    let _local = LocalTag(base_ref.clone());
    let fx = fixture_on(&base_ref, Some(&registry.addr));
    // The classic builder makes it (`buildkit = false`): the tool does not read the base itself.
    let manifest = fx.path().join("Cargo.toml");
    let text_now = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text_now.replace("static = true\n", "static = true\nbuildkit = false\n"),
    )
    .unwrap();
    fx.commit("the classic builder");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("config.json"), "{}\n").unwrap();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    let out = fx.run_env(&["--push", "--message-format", "json"], &env);
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["services"][0]["builder"], "classic");

    let (base_name, _) = base_ref.rsplit_once(':').unwrap();
    let base_digest = registry
        .manifest_digest(base_name.split_once('/').unwrap().1, "1")
        .unwrap();
    let docs = fx.path().join("target/docker-release").join(&fx.package);
    let provenance: Value =
        serde_json::from_slice(&std::fs::read(docs.join("provenance.json")).unwrap()).unwrap();
    let definition = &provenance["predicate"]["buildDefinition"];
    assert_eq!(definition["internalParameters"]["builder"], "classic");
    let deps = definition["resolvedDependencies"].as_array().unwrap();
    let base = deps.iter().find(|d| d["name"] == "base").expect("base");
    assert_eq!(base["digest"]["sha256"], &base_digest[7..], "{provenance}");
}
