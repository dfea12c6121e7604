//! The release pipeline end to end, against the real engine: a fixture service in a real git
//! repository, released by the built binary as a user runs it, then the engine checked for the
//! image, its labels, `ENV SHA` and tags.
//!
//! Every fixture has a unique package and repository name and carries the label
//! `cargo-docker-release.test=1`; everything it made is removed by its guard, on success and
//! failure. The tests run in parallel.

use std::collections::{BTreeMap, HashMap};

use crate::support;

use support::service::*;
use support::{TEST_LABEL, TOKEN_LABEL, TestImages};

use cargo_docker_release::engine::images::ImageStore;
use serde_json::Value;

/// How many containers (running or not) were made from `image_id`.
fn containers_of(image_id: &str) -> usize {
    block_on(async {
        let filters = HashMap::from([("ancestor".to_owned(), vec![image_id.to_owned()])]);
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

#[test]
fn release_builds_the_planned_image_with_its_labels_sha_and_exactly_its_tags() {
    let fx = Fixture::new("release", None, "1.2.3", "");
    let (sha, commit_time) = fx.head();
    let plan = fx.plan();
    assert!(fx.tags().is_empty(), "--dry-run changes nothing");

    let out = fx.run(&[]);
    assert_success(&out);

    let tags = fx.tags();
    let names: Vec<String> = tags.keys().cloned().collect();
    assert_eq!(names, applied_tags(&plan));
    // `names` is sorted: so is the expectation (a SHA tag may sort before `1`).
    let mut expected = ["1", "1.2", "1.2.3", &sha[..7], "latest"].map(String::from);
    expected.sort();
    assert_eq!(names, expected);
    let ids: std::collections::BTreeSet<&String> = tags.values().collect();
    assert_eq!(ids.len(), 1, "every tag names the same image: {tags:?}");
    let id = ids.into_iter().next().unwrap().clone();

    let info = block_on(async { engine().await.image(&id).await.unwrap().unwrap() });
    let planned: BTreeMap<String, String> =
        serde_json::from_value(plan["images"][0]["labels"].clone()).unwrap();
    for (k, v) in &planned {
        assert_eq!(info.labels.get(k), Some(v), "label {k}");
    }
    let oci = |k: &str| info.labels[&format!("org.opencontainers.image.{k}")].clone();
    assert_eq!(oci("revision"), sha);
    assert_eq!(oci("version"), "1.2.3");
    assert_eq!(oci("title"), fx.package);
    assert_eq!(
        oci("source"),
        format!("https://example.com/acme/{}", fx.package)
    );
    assert_eq!(
        oci("created"),
        chrono::DateTime::from_timestamp(commit_time, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    assert_eq!(info.env_var("SHA"), Some(sha.as_str()));
    assert_eq!(
        info.labels.get(TEST_LABEL_KEY).map(String::as_str),
        Some("1")
    );
    assert_eq!(containers_of(&id), 0, "no container of the image is left");

    // The report: in the workspace target dir, with the image, its tags and timings.
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(fx.path().join("target/docker-release/report.json")).unwrap(),
    )
    .unwrap();
    let service = &report["services"][0];
    assert_eq!(report["success"], true);
    assert_eq!(service["image_id"], Value::String(id.clone()));
    assert_eq!(service["state"], "released");
    assert!(service["size"].as_u64().unwrap() > 0);
    // Assembled by the tool: nothing is sent to a builder.
    assert_eq!(service["builder"], "assembled");
    assert_eq!(service["context_bytes"], 0);
    assert!(
        service["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["applied"] == t["planned"] && t["moved"] == t["applied"])
    );

    // Re-running on the same commit reuses the image and moves nothing.
    let again = fx.run(&["--message-format", "json"]);
    assert_success(&again);
    assert!(
        text(&again.stderr).contains("Reusing"),
        "{}",
        text(&again.stderr)
    );
    assert!(
        text(&again.stderr).contains("Skipping"),
        "an image already released from this commit is not tested again: {}",
        text(&again.stderr)
    );
    assert_eq!(fx.tags(), tags);
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(report["services"][0]["reused"], true);
    assert!(
        report["services"][0]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["moved"] == false)
    );

    // inspect reads it back without running it.
    let out = fx.run(&[
        "inspect",
        &format!("{}:1.2.3", fx.image),
        "--message-format",
        "json",
    ]);
    assert_success(&out);
    let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspected["version"], "1.2.3");
    assert_eq!(inspected["revision"], Value::String(sha.clone()));
    assert_eq!(inspected["sha"], Value::String(sha.clone()));
    assert_eq!(inspected["id"], Value::String(id));
    assert_eq!(inspected["tags"].as_array().unwrap().len(), 5);
    let human = fx.run(&["inspect", &format!("{}:latest", fx.image)]);
    assert_success(&human);
    assert!(text(&human.stdout).contains(&sha));
}

#[test]
fn a_new_commit_without_a_version_bump_cannot_overwrite_the_version_without_force() {
    let fx = Fixture::new("release", None, "0.4.0", "");
    assert_success(&fx.run(&[]));
    let first = fx.tags()["0.4.0"].clone();

    fx.write("src/extra.rs", "// a source change\n");
    fx.commit("change without a version bump");
    let out = fx.run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains(&format!("{}:0.4.0", fx.image)), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(fx.tags()["0.4.0"], first, "nothing moved");

    let out = fx.run(&["--force"]);
    assert_success(&out);
    let tags = fx.tags();
    assert_ne!(tags["0.4.0"], first);
    assert_eq!(tags["0.4.0"], tags["latest"]);
}

#[test]
fn an_unreachable_engine_is_one_clear_line_and_creates_nothing() {
    let fx = Fixture::new("release", None, "0.1.0", "");
    let out = fx.run_env(&[], &[("DOCKER_HOST", "tcp://127.0.0.1:1")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let line = stderr
        .lines()
        .find(|l| l.contains("cannot reach the Docker engine"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(line.contains("tcp://127.0.0.1:1"), "{stderr}");
    assert!(!fx.path().join("target").exists(), "nothing was built");
    assert!(fx.tags().is_empty());
}

#[test]
fn a_failing_build_exits_1_and_tags_nothing() {
    let fx = Fixture::new("release", None, "0.1.0", "");
    fx.write("src/main.rs", "fn main() { this does not compile }\n");
    fx.commit("broken");
    let out = fx.run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("build failed"),
        "{}",
        text(&out.stderr)
    );
    assert!(fx.tags().is_empty());
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(fx.path().join("target/docker-release/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(report["success"], false);
    assert_eq!(report["services"][0]["state"], "failed");
}

#[test]
fn a_failing_dockerfile_step_shows_its_output_and_leaves_no_container() {
    use cargo_docker_release::build_context as context;
    use cargo_docker_release::engine::build::{BuildJob, Builder};
    let dir = tempfile::tempdir().unwrap();
    // Its own token label: the intermediate containers (which inherit the image's labels) of this
    // build alone are counted, whatever other tests run meanwhile.
    let images = TestImages::new("broken-step");
    let dockerfile = format!(
        "FROM scratch\nLABEL {TEST_LABEL} {TOKEN_LABEL}={}\nCOPY [\"missing\", \"/missing\"]\n",
        images.token()
    );
    let ours = || bollard::query_parameters::ListContainersOptions {
        all: true,
        filters: Some(HashMap::from([(
            "label".to_owned(),
            vec![format!("{TOKEN_LABEL}={}", images.token())],
        )])),
        ..Default::default()
    };
    let ctx = context::directory_context(
        camino::Utf8Path::from_path(dir.path()).unwrap(),
        "",
        &dockerfile,
        0,
    )
    .unwrap();
    for builder in [Builder::BuildKit, Builder::Classic] {
        let error = block_on(async {
            let engine = engine().await;
            let before = engine
                .docker()
                .list_containers(Some(ours()))
                .await
                .unwrap()
                .len();
            let job = BuildJob {
                options: bollard::query_parameters::BuildImageOptions {
                    dockerfile: ctx.dockerfile.clone(),
                    rm: true,
                    forcerm: true,
                    ..Default::default()
                },
                builder,
                context: &ctx,
                dockerfile: &dockerfile,
                dockerfile_name: "Dockerfile",
                credentials: Default::default(),
                name: "broken",
            };
            let e = engine.build_image(job, &mut |_| {}).await.unwrap_err();
            let after = engine
                .docker()
                .list_containers(Some(ours()))
                .await
                .unwrap()
                .len();
            assert!(
                after <= before,
                "{builder:?}: {before} containers before, {after} after"
            );
            e
        });
        assert_eq!(error.exit_code(), 1);
        let text = format!("{error:?}");
        assert!(
            text.contains("COPY"),
            "{builder:?} names the failing step: {text}"
        );
        assert!(
            text.contains("Dockerfile:3"),
            "{builder:?} names its line: {text}"
        );
        assert!(
            error.to_string().contains("missing"),
            "{builder:?}: {error}"
        );
    }
}

#[test]
fn prune_keeps_latest_the_newest_release_and_n_more_and_removes_leftover_containers() {
    let fx = Fixture::new("release", None, "0.1.0", "");
    assert_success(&fx.run(&[]));
    for version in ["0.2.0", "0.3.0"] {
        fx.write_manifest(version, "");
        fx.commit(&format!("release {version}"));
        assert_success(&fx.run(&[]));
    }
    let before = fx.tags();
    assert!(before.contains_key("0.1.0") && before.contains_key("0.3.0"));

    // A test container left behind by a run that no longer exists.
    let host = cargo_docker_release::engine::container::owner_id()
        .rsplit_once(':')
        .map(|(h, _)| h.to_owned())
        .unwrap();
    let container = block_on(async {
        let engine = engine().await;
        let labels = HashMap::from([
            (
                "io.cargo-docker-release.container".to_owned(),
                "test".to_owned(),
            ),
            // This host, a pid that cannot exist: the run that made it is gone.
            (
                "io.cargo-docker-release.owner".to_owned(),
                format!("{host}:99999999"),
            ),
            (TEST_LABEL_KEY.to_owned(), "1".to_owned()),
        ]);
        engine
            .docker()
            .create_container(
                Some(bollard::query_parameters::CreateContainerOptions {
                    name: Some(format!("cdr-test-leftover-{}", unique())),
                    ..Default::default()
                }),
                bollard::models::ContainerCreateBody {
                    image: Some(before["latest"].clone()),
                    labels: Some(labels),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .id
    });

    let out = fx.run(&["prune", "--keep", "1"]);
    assert_success(&out);
    let after = fx.tags();
    let sha_of = |version: &str| {
        before
            .iter()
            .find(|(t, id)| **id == before[version] && t.len() == 7)
            .map(|(t, _)| t.clone())
            .unwrap()
    };
    assert!(!after.contains_key("0.1.0"), "{after:?}");
    assert!(!after.contains_key(&sha_of("0.1.0")), "{after:?}");
    for kept in ["0.2.0", "0.3.0", "0.3", "latest"] {
        assert!(after.contains_key(kept), "{kept} kept: {after:?}");
    }
    let gone = block_on(async {
        engine()
            .await
            .docker()
            .inspect_container(
                &container,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .is_err()
    });
    assert!(gone, "the leftover container was removed");
}

/// The example workspace with the suite's builder image, its `orders` image under the test
/// images' names, `extra` added to the workspace's `[workspace.metadata.docker]`.
fn docker_strategy_workspace(
    images: &support::TestImages,
    extra: impl FnOnce(&mut support::Project),
) -> (support::Project, String) {
    let builder = support::rust_builder_image();
    let mut fx = support::project()
        .copy_of(support::example_dir("workspace"))
        .build();
    let repo = images.repo("orders");
    fx.edit_toml("orders/Cargo.toml", |d| {
        let docker = &mut d["package"]["metadata"]["docker"];
        docker["image"] = toml_edit::value(repo.as_str());
        let mut labels = toml_edit::InlineTable::new();
        labels.insert(TEST_LABEL_KEY, "1".into());
        labels.insert(support::TOKEN_LABEL, images.token().into());
        docker["labels"] = toml_edit::value(labels);
    });
    fx.edit_toml("Cargo.toml", |d| {
        d["workspace"]["metadata"]["docker"]["builder"] = toml_edit::value(builder.as_str());
    });
    extra(&mut fx);
    fx.commit_all("test images and builder");
    (fx, repo)
}

#[test]
fn classic_docker_strategy_builds_in_the_builder_image_and_a_source_change_reuses_the_dependency_layer()
 {
    let images = support::TestImages::new("release-docker");
    let (fx, repo) = docker_strategy_workspace(&images, |fx| {
        fx.edit_toml("Cargo.toml", |d| {
            d["workspace"]["metadata"]["docker"]["buildkit"] = toml_edit::value(false);
        });
    });

    let first = fx.run(["-p", "orders", "-v"]);
    first.success();
    let sha = fx.head_sha();
    let tags = block_on(async { engine().await.repository_tags(&repo).await.unwrap() });
    let names: Vec<&str> = tags.iter().map(|t| t.tag.as_str()).collect();
    assert!(
        names.contains(&"1.4.2") && names.contains(&&sha[..7]),
        "{names:?}"
    );
    let info = block_on(async {
        engine()
            .await
            .image(&format!("{repo}:1.4.2"))
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(info.env_var("SHA"), Some(sha.as_str()));
    // The docker strategy sends the sources, never `target/` or `.git`.
    let sent = &first.stderr;
    assert!(sent.contains("of build context"), "{sent}");
    assert!(sent.contains("with the classic builder"), "{sent}");

    fx.write("orders/src/extra.rs", "// a source-only change\n");
    fx.commit_all("source-only change");
    let second = fx.run(["-p", "orders", "-v", "--force"]);
    second.success();
    let log: Vec<&str> = second.stderr.lines().collect();
    let deps_step = log
        .iter()
        .position(|l| l.starts_with("Step ") && l.contains(" : RUN ") && l.contains("cargo build"))
        .unwrap_or_else(|| panic!("no dependency step in:\n{}", second.stderr));
    assert_eq!(
        log.get(deps_step + 1).map(|l| l.trim()),
        Some("---> Using cache"),
        "the dependency layer is reused after a source-only change:\n{}",
        second.stderr
    );
}

#[test]
fn buildkit_docker_strategy_keeps_cargo_s_target_dir_in_a_cache_mount_across_source_changes() {
    let images = support::TestImages::new("release-docker-bk");
    // A vendored dependency (directory source replacing crates.io): compiled once, then found
    // in the target directory's cache mount by the next build.
    let (fx, repo) = docker_strategy_workspace(&images, |fx| {
        fx.write(
            "vendor/tinydep/Cargo.toml",
            "[package]\nname = \"tinydep\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        );
        fx.write(
            "vendor/tinydep/src/lib.rs",
            "pub fn answer() -> u32 {\n    42\n}\n",
        );
        fx.write(
            "vendor/tinydep/.cargo-checksum.json",
            "{\"files\":{},\"package\":null}",
        );
        fx.write(
            ".cargo/config.toml",
            "[source.crates-io]\nreplace-with = \"vendored\"\n\n[source.vendored]\ndirectory = \"vendor\"\n",
        );
        fx.edit_toml("orders/Cargo.toml", |d| {
            d["dependencies"]["tinydep"] = toml_edit::value("0.1");
        });
        let lock = std::process::Command::new("cargo")
            .args(["generate-lockfile", "--offline"])
            .current_dir(fx.path(""))
            .output()
            .unwrap();
        assert!(lock.status.success(), "{}", text(&lock.stderr));
    });
    let dockerfile = fx.run(["dockerfile", "-p", "orders"]);
    dockerfile.success();
    assert!(
        dockerfile.stdout.contains("--mount=type=cache"),
        "{}",
        dockerfile.stdout
    );

    let first = fx.run(["-p", "orders", "-v"]);
    first.success();
    assert!(first.stderr.contains("with BuildKit"), "{}", first.stderr);
    assert!(
        first.stderr.contains("Compiling tinydep v0.1.0"),
        "the first build compiles the dependency:\n{}",
        first.stderr
    );
    let sha = fx.head_sha();
    let info = block_on(async {
        engine()
            .await
            .image(&format!("{repo}:1.4.2"))
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(info.env_var("SHA"), Some(sha.as_str()));

    fx.write(
        "orders/src/main.rs",
        &format!(
            "{}\n// a source-only change\n",
            fx.read("orders/src/main.rs")
        ),
    );
    fx.commit_all("source-only change");
    let second = fx.run(["-p", "orders", "-v", "--force"]);
    second.success();
    assert!(
        second.stderr.contains("Compiling orders v1.4.2"),
        "the changed crate is compiled:\n{}",
        second.stderr
    );
    assert!(
        !second.stderr.contains("Compiling tinydep"),
        "the dependency comes from the cache mount:\n{}",
        second.stderr
    );
    let info = block_on(async {
        engine()
            .await
            .image(&format!("{repo}:1.4.2"))
            .await
            .unwrap()
            .unwrap()
    });
    assert_eq!(info.env_var("SHA"), Some(fx.head_sha().as_str()));
}

/// The image ID the fixture's last release built (tagged or not), by its package label.
fn built_image(fx: &Fixture) -> String {
    block_on(async {
        engine()
            .await
            .images_labelled(&[("io.cargo-docker-release.package", &fx.package)])
            .await
            .unwrap()
            .into_iter()
            .next()
            .expect("the release built an image")
            .id
    })
}

#[test]
fn a_service_that_crashes_at_start_fails_fast_with_its_logs_no_tags_and_no_container() {
    let fx = Fixture::new(
        "release",
        None,
        "0.1.0",
        "\n[package.metadata.docker.test]\nready = { timeout = \"60s\" }\n",
    );
    fx.write(
        "src/main.rs",
        &MAIN_RS.replace(
            "let listener = TcpListener::bind",
            "eprintln!(\"fatal: DATABASE_URL is not set\");\n            std::process::exit(3);\n            #[allow(unreachable_code)]\n            let listener = TcpListener::bind",
        ),
    );
    fx.commit("crash at start");
    let started = std::time::Instant::now();
    let out = fx.run(&[]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        took < std::time::Duration::from_secs(45),
        "fails fast, not at the 60s deadline: {took:?}"
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("DATABASE_URL is not set"), "{stderr}");
    assert!(fx.tags().is_empty());
    assert_eq!(containers_of(&built_image(&fx)), 0);
}

#[test]
fn a_service_that_never_becomes_healthy_fails_at_its_deadline_with_no_tags_and_no_container() {
    let fx = Fixture::new(
        "release",
        None,
        "0.1.0",
        "\n[package.metadata.docker.test]\nready = { timeout = \"4s\" }\n",
    );
    fx.write(
        "src/main.rs",
        &MAIN_RS.replace(
            "if TcpStream::connect(\"127.0.0.1:8080\").is_err() {",
            "if true {\n                eprintln!(\"health: still warming up\");",
        ),
    );
    fx.commit("never healthy");
    let out = fx.run(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(fx.tags().is_empty());
    assert_eq!(containers_of(&built_image(&fx)), 0);
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(fx.path().join("target/docker-release/report.json")).unwrap(),
    )
    .unwrap();
    let checks = report["services"][0]["tests"]["checks"].as_array().unwrap();
    assert!(
        checks.iter().any(|c| c["passed"] == false),
        "the report holds the failed check: {checks:?}"
    );
    let test_ms = report["services"][0]["timings"]["test_ms"]
        .as_u64()
        .unwrap();
    assert!(
        (4_000..4_000 + 15_000).contains(&test_ms),
        "fails at the 4s deadline plus a small margin: {test_ms} ms\n{}",
        text(&out.stderr)
    );
}

/// Processes running the fixture's binary from inside an image (`/usr/local/bin/<package>`).
fn processes_of(fx: &Fixture) -> Vec<String> {
    let out = std::process::Command::new("pgrep")
        .args(["-a", "-f", &format!("/usr/local/bin/{} ", fx.package)])
        .output()
        .unwrap();
    text(&out.stdout).lines().map(str::to_owned).collect()
}

/// Polls `done` until it holds; panics after `limit`.
fn eventually(limit: std::time::Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "waited {limit:?} for {what}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_during_the_image_build_stops_the_build_with_nothing_tagged_for_both_builders() {
    use std::io::BufRead;
    let fx = Fixture::new("release", None, "0.1.0", "");
    // The smoke test, run by the build, outlasts the signal.
    with_smoke_test(
        &fx,
        "std::thread::sleep(std::time::Duration::from_secs(120));",
    );
    for (builder, env) in [("BuildKit", "1"), ("classic", "0")] {
        let mut child = fx.spawn_release_with(&[], &[("DOCKER_BUILDKIT", env)]);
        let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut seen = Vec::new();
        let mut lines = stderr.lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            let running = line.contains(&format!(" RUN [\"/usr/local/bin/{}\"", fx.package));
            seen.push(line);
            if running {
                break;
            }
        }
        assert!(
            seen.iter().any(|l| l.contains(" RUN [")),
            "{builder}: {}",
            seen.join("\n")
        );
        // The smoke test has started once its step is shown; interrupt it.
        eventually(
            std::time::Duration::from_secs(20),
            "the smoke test to run",
            || !processes_of(&fx).is_empty(),
        );
        let signalled = std::time::Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        seen.extend(lines.map_while(|l| l.ok()));
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{builder}: {}", seen.join("\n"));
        assert!(
            signalled.elapsed() < std::time::Duration::from_secs(10),
            "{builder}: exited {:?} after SIGINT",
            signalled.elapsed()
        );
        assert!(fx.tags().is_empty(), "{builder}: nothing tagged");
        // The engine cancels the build whose connection closed: the step's process goes.
        eventually(
            std::time::Duration::from_secs(20),
            "the build's smoke test to be stopped",
            || processes_of(&fx).is_empty(),
        );
    }
}

#[test]
fn ctrl_c_during_the_tests_removes_the_container_and_tags_nothing() {
    use std::io::BufRead;
    // A host check that outlasts the signal: the release is inside the test stage when it comes.
    let fx = Fixture::new(
        "release",
        None,
        "0.1.0",
        "[[package.metadata.docker.test.host]]\ncmd = [\"sleep\", \"60\"]\n",
    );
    fx.commit("slow host check");
    let mut child = fx.spawn_release();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    let mut lines = stderr.lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let ready = line.contains("Passed") && line.contains("ready:");
        seen.push(line);
        if ready {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("ready:")),
        "{}",
        seen.join("\n")
    );
    // The host check has started once readiness passed; interrupt it.
    std::thread::sleep(std::time::Duration::from_millis(500));
    let signalled = std::time::Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let rest: Vec<String> = lines.map_while(|l| l.ok()).collect();
    let status = child.wait().unwrap();
    let took = signalled.elapsed();
    seen.extend(rest);
    assert!(!status.success(), "{}", seen.join("\n"));
    assert!(
        took < std::time::Duration::from_secs(10),
        "exited {took:?} after SIGINT:\n{}",
        seen.join("\n")
    );
    assert!(
        fx.tags().is_empty(),
        "no tag after an interrupted test stage"
    );
    // Containers inherit the image's labels: this finds any container of the fixture's images.
    let containers = containers_of_package(&fx.package);
    assert_eq!(containers, 0, "no container of the service is left");
}

/// The comments of an image's history: BuildKit marks each layer it made
/// `buildkit.dockerfile.v0`, the classic builder leaves them empty.
fn history_comments(image: &str) -> Vec<String> {
    support::docker_ok(["history", "--no-trunc", "--format", "{{.Comment}}", image])
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The report of the fixture's last release.
fn report_of(fx: &Fixture) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(fx.path().join("target/docker-release/report.json")).unwrap(),
    )
    .unwrap()
}

#[test]
fn a_host_image_is_assembled_unless_docker_buildkit_or_the_manifest_choose_a_builder() {
    let fx = Fixture::new("release", None, "0.0.1", "");
    // By default no builder runs: the tool writes the image, and sends no build context.
    let out = fx.run(&[]);
    assert_success(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("Assembled"), "status line: {stderr}");
    assert!(
        stderr.contains("assembled by the tool"),
        "summary: {stderr}"
    );
    let service = &report_of(&fx)["services"][0];
    assert_eq!(service["builder"], "assembled");
    assert_eq!(service["context_bytes"], 0);
    let id = fx.tags()["0.0.1"].clone();
    let comments = history_comments(&id);
    assert!(
        !comments.is_empty() && comments.iter().all(|c| c == "cargo docker-release"),
        "the tool wrote the history: {comments:?}"
    );

    // DOCKER_BUILDKIT=1 is a builder the user chose.
    fx.write_manifest("0.1.0", "");
    fx.commit("0.1.0");
    let out = fx.run_env(&[], &[("DOCKER_BUILDKIT", "1")]);
    assert_success(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("with BuildKit"), "status line: {stderr}");
    assert!(stderr.contains("built by BuildKit"), "summary: {stderr}");
    assert_eq!(report_of(&fx)["services"][0]["builder"], "buildkit");
    let id = fx.tags()["0.1.0"].clone();
    let comments = history_comments(&id);
    assert!(
        comments.iter().any(|c| c == "buildkit.dockerfile.v0"),
        "BuildKit made the layers: {comments:?}"
    );
    let info = block_on(async { engine().await.image(&id).await.unwrap().unwrap() });
    assert_eq!(
        info.labels
            .get("io.cargo-docker-release.builder")
            .map(String::as_str),
        Some("buildkit")
    );

    fx.write_manifest("0.2.0", "");
    fx.commit("0.2.0");
    let out = fx.run_env(&["--message-format", "json"], &[("DOCKER_BUILDKIT", "0")]);
    assert_success(&out);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("with the classic builder"), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["services"][0]["builder"], "classic");
    let comments = history_comments(&fx.tags()["0.2.0"]);
    assert!(
        comments.iter().all(|c| c != "buildkit.dockerfile.v0"),
        "the classic builder made the layers: {comments:?}"
    );

    // The manifest's `buildkit = false` selects the classic builder too; a wrong type is a
    // located configuration error.
    fx.write_manifest("0.3.0", "buildkit = false\n");
    fx.commit("0.3.0");
    let out = fx.run(&[]);
    assert_success(&out);
    assert_eq!(report_of(&fx)["services"][0]["builder"], "classic");
    fx.write_manifest("0.4.0", "buildkit = \"no\"\n");
    fx.commit("0.4.0");
    let out = fx.run(&[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("Cargo.toml:") && stderr.contains("buildkit"),
        "{stderr}"
    );
}

#[test]
fn a_handwritten_dockerfile_with_copy_chmod_releases_with_buildkit() {
    let fx = Fixture::new("release", None, "0.1.0", "");
    let generated = fx.run(&["dockerfile"]);
    assert_success(&generated);
    let bin = format!("[\"bin/{0}\", \"/usr/local/bin/{0}\"]", fx.package);
    let dockerfile =
        text(&generated.stdout).replace(&format!("COPY {bin}"), &format!("COPY --chmod=755 {bin}"));
    assert!(dockerfile.contains("COPY --chmod=755"), "{dockerfile}");
    fx.write("Dockerfile", &dockerfile);
    fx.write_manifest("0.1.0", "dockerfile = \"Dockerfile\"\n");
    fx.commit("hand-written Dockerfile with COPY --chmod");

    // The classic builder cannot build it: a located error before anything is built.
    let out = fx.run_env(&[], &[("DOCKER_BUILDKIT", "0")]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    let line = dockerfile
        .lines()
        .position(|l| l.starts_with("COPY --chmod"))
        .unwrap()
        + 1;
    assert!(
        stderr.contains(&format!("Dockerfile:{line}: `COPY --chmod` needs BuildKit")),
        "{stderr}"
    );
    assert!(fx.tags().is_empty());

    let out = fx.run(&[]);
    assert_success(&out);
    assert_eq!(report_of(&fx)["services"][0]["builder"], "buildkit");
    assert!(fx.tags().contains_key("0.1.0"));
}

/// The fixture's service, whose `--version` (its smoke test) does `behaviour` instead of
/// printing its version.
fn with_smoke_test(fx: &Fixture, behaviour: &str) {
    fx.write(
        "src/main.rs",
        &MAIN_RS.replace(
            "Some(\"--version\") => println!(\"{} {}\", env!(\"CARGO_PKG_NAME\"), env!(\"CARGO_PKG_VERSION\")),",
            &format!("Some(\"--version\") => {{ {behaviour} }}"),
        ),
    );
    fx.write_manifest(
        "0.1.0",
        &format!(
            "smoke-test = [\"/usr/local/bin/{}\", \"--version\"]\n",
            fx.package
        ),
    );
    fx.commit("smoke test");
}

#[test]
fn a_failing_run_step_exits_1_with_its_last_output_lines_its_instruction_and_line() {
    let fx = Fixture::new("release", None, "0.1.0", "");
    with_smoke_test(
        &fx,
        "for i in 0..50 { eprintln!(\"smoke line {i}\"); } eprintln!(\"fatal: the smoke test failed\"); std::process::exit(3);",
    );
    let rendered = text(&fx.run(&["dockerfile"]).stdout);
    let line = rendered
        .lines()
        .position(|l| l.starts_with("RUN [\"/usr/local/bin/"))
        .unwrap()
        + 1;
    for (builder, env) in [("BuildKit", "1"), ("classic", "0")] {
        let out = fx.run_env(&[], &[("DOCKER_BUILDKIT", env)]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{builder}: {stderr}");
        assert!(
            stderr.contains("fatal: the smoke test failed"),
            "{builder}: {stderr}"
        );
        assert!(stderr.contains("smoke line 49"), "{builder}: {stderr}");
        assert!(
            !stderr.contains("smoke line 5\n"),
            "{builder}: only the last lines of the step's log: {stderr}"
        );
        // The help may be wrapped to the terminal's width.
        let words = stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            words.contains(&format!(
                "`RUN [\"/usr/local/bin/{}\", \"--version\"]` at Dockerfile (generated):{line} failed",
                fx.package
            )),
            "{builder}: names the instruction and its line: {stderr}"
        );
        assert!(fx.tags().is_empty());
    }
    // `-v` shows every line of every step as it runs.
    let verbose = fx.run_env(&["-v"], &[("DOCKER_BUILDKIT", "1")]);
    assert_eq!(verbose.status.code(), Some(1));
    let stderr = text(&verbose.stderr);
    for line in [
        "smoke line 0",
        "smoke line 25",
        "fatal: the smoke test failed",
    ] {
        assert!(stderr.contains(line), "{line} with -v: {stderr}");
    }
}
