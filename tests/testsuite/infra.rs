//! Tests of the shared test infrastructure (`tests/testsuite/support`) and of the bundled examples, against
//! the real engine: if these fail, every other integration test's failure is suspect.

use crate::support;

use std::time::{Duration, Instant};

use support::*;

#[test]
fn busybox_image_runs_a_shell_command() {
    require_docker();
    let start = Instant::now();
    let image = busybox_image();
    eprintln!("busybox image ready in {:?}", start.elapsed());
    let images = TestImages::new("busybox");
    let out = docker_ok([
        "run",
        "--rm",
        "--label",
        TEST_LABEL,
        "--name",
        &images.container("sh"),
        &image,
        "sh",
        "-c",
        "echo hello from $(basename $(readlink /bin/sh))",
    ]);
    assert_eq!(out, "hello from busybox");
    assert_eq!(
        image_inspect(
            &image,
            &format!("{{{{index .Config.Labels \"{TEST_LABEL_KEY}\"}}}}")
        ),
        "1"
    );
}

#[test]
fn test_images_guard_removes_its_images_and_containers() {
    let image = busybox_image();
    let images = TestImages::new("guard");
    let tagged = format!("{}:1.0.0", images.repo("svc"));
    docker_ok(["tag", &image, &tagged]);
    docker_ok([
        "create",
        "--label",
        TEST_LABEL,
        "--name",
        &images.container("c"),
        &tagged,
        "true",
    ]);
    assert!(image_exists(&tagged));
    // A container made from an image only the guard names, by ID and with no telling name, goes
    // too (the tool names its test containers its own way).
    let own = format!("{}:own", images.repo("own"));
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {image}\n{}\n", images.label_line()),
    )
    .unwrap();
    docker_ok(["build", "-q", "-t", &own, &ctx.path().to_string_lossy()]);
    let own_id = image_inspect(&own, "{{.Id}}");
    let anonymous = docker_ok(["create", "--label", TEST_LABEL, &own_id, "true"]);
    // A container of the shared image that merely shares its ID with a guarded tag stays.
    let bystander = docker_ok(["create", "--label", TEST_LABEL, &image, "true"]);
    drop(images);
    assert!(
        !docker(["inspect", &anonymous]).status.success(),
        "container of a guarded image survived"
    );
    assert!(
        docker(["inspect", &bystander]).status.success(),
        "bystander container was removed"
    );
    docker_ok(["rm", "-f", &bystander]);
    assert!(!image_exists(&own));
    assert!(!image_exists(&tagged), "{tagged} survived the guard");
    assert!(image_exists(&image), "the shared image must survive");
}

#[test]
fn registry_accepts_a_push_and_reports_tags_and_digest() {
    let image = busybox_image();
    let start = Instant::now();
    let registry = Registry::start();
    eprintln!("registry answered /v2/ in {:?}", start.elapsed());
    let images = TestImages::new("push");
    let repo = images.repo("svc");
    assert!(registry.tags(&repo).is_empty());
    for tag in ["1.0.0", "latest"] {
        let remote = format!("{}:{tag}", registry.image(&repo));
        docker_ok(["tag", &image, &remote]);
        docker_ok(["push", &remote]);
    }
    assert_eq!(registry.release_tags(&repo), ["1.0.0", "latest"]);
    let digest = registry
        .manifest_digest(&repo, "1.0.0")
        .expect("pushed tag has a digest");
    assert!(digest.starts_with("sha256:"), "{digest}");
    let repo_digests = image_inspect(
        &format!("{}:1.0.0", registry.image(&repo)),
        "{{json .RepoDigests}}",
    );
    assert!(
        repo_digests.contains(&digest),
        "{digest} not in {repo_digests}"
    );
    assert_eq!(registry.manifest_digest(&repo, "nope"), None);
    assert_eq!(
        registry.config_digest(&repo, "latest"),
        Some(image_inspect(&image, "{{.Id}}")),
        "the pushed image is the local one"
    );
}

#[test]
fn registry_with_auth_accepts_only_its_credentials() {
    let image = busybox_image();
    let registry = Registry::start_with_auth("ci", "s3cret pass");
    let anonymous = http_request(&registry.addr, "GET", "/v2/", &[]).unwrap();
    assert_eq!(anonymous.status, 401);
    assert_eq!(registry.get("/v2/", &[]).status, 200);

    let images = TestImages::new("auth");
    let remote = format!("{}:1.0.0", registry.image(&images.repo("svc")));
    docker_ok(["tag", &image, &remote]);
    let empty = tempfile::tempdir().unwrap();
    let denied = docker(["--config", &empty.path().to_string_lossy(), "push", &remote]);
    assert!(
        !denied.status.success(),
        "anonymous push succeeded: {denied}"
    );
    docker_ok([
        "--config",
        &registry.docker_config().to_string_lossy(),
        "push",
        &remote,
    ]);
    assert_eq!(registry.release_tags(&images.repo("svc")), ["1.0.0"]);
}

#[test]
fn fixture_repos_have_stable_shas_and_run_the_tool() {
    let a = project().copy_of(example_dir("hello")).build();
    let b = project().copy_of(example_dir("hello")).build();
    assert_eq!(a.head_sha(), b.head_sha(), "same fixture, same commit");
    assert!(!a.path("target").exists());

    b.write("src/extra.rs", "// more\n");
    let second = b.commit_all("Add a file");
    assert_ne!(second, a.head_sha());
    assert_eq!(b.head_sha(), second);
    b.tag("v0.1.0").tag_annotated("hello-v0.1.0", "release");
    let tags = b.repo().tag_names(None).unwrap();
    assert_eq!(tags.len(), 2);

    let out = b.run(["plan"]);
    out.success();
    assert!(out.stdout.contains(&second[..7]), "{out}");
    assert!(
        out.stdout.contains("created=2024-01-02T03:05:05Z"),
        "second commit one minute after the epoch: {out}"
    );

    b.edit_toml("Cargo.toml", |doc| {
        doc["package"]["metadata"]["docker"]["image"] = toml_edit::value("cdr-test/renamed");
    });
    assert!(
        b.read("Cargo.toml").contains("# Run during the build"),
        "comments kept"
    );
    b.commit_all("Rename the image");
    let out = b.run(["plan"]);
    assert!(
        out.success().stdout.contains("-> cdr-test/renamed"),
        "{out}"
    );
}

#[test]
fn hello_example_in_scratch_serves_and_stops_cleanly() {
    let binary = static_binary(example_dir("hello"), "hello");
    let images = TestImages::new("hello");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::copy(&binary, ctx.path().join("hello")).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM scratch\n\
             COPY hello /usr/local/bin/hello\n\
             RUN [\"/usr/local/bin/hello\", \"--version\"]\n\
             ENV SHA=0123456789abcdef0123456789abcdef01234567\n\
             USER 65532:65532\n\
             EXPOSE 8080\n\
             HEALTHCHECK --interval=1s --timeout=3s CMD [\"/usr/local/bin/hello\", \"health\"]\n\
             LABEL {TEST_LABEL}\n\
             ENTRYPOINT [\"/usr/local/bin/hello\"]\n"
        ),
    )
    .unwrap();
    let image = format!("{}:test", images.repo("hello"));
    docker_ok(["build", "-q", "-t", &image, &ctx.path().to_string_lossy()]);

    let name = images.container("run");
    docker_ok([
        "run",
        "-d",
        "--label",
        TEST_LABEL,
        "--name",
        &name,
        "-p",
        "127.0.0.1::8080",
        &image,
    ]);
    let addr = docker_ok(["port", &name, "8080/tcp"]);
    let addr = addr.lines().next().unwrap().to_owned();
    let start = Instant::now();
    loop {
        let logs = docker(["logs", &name]);
        if logs.stdout.contains("listening on 0.0.0.0:8080") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "not ready: {logs}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let health = http_request(&addr, "GET", "/healthz", &[]).unwrap();
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let version = http_request(&addr, "GET", "/version", &[]).unwrap();
    assert_eq!(
        version.body,
        "{\"version\": \"0.1.0\", \"sha\": \"0123456789abcdef0123456789abcdef01234567\"}\n"
    );
    docker_ok(["exec", &name, "/usr/local/bin/hello", "health"]);
    // The example's own smoke tests, from the host, against the container.
    cargo_in(
        example_dir("hello"),
        &["test", "--locked", "--offline", "--test", "smoke"],
        &[("SERVICE_ADDR", &addr)],
    )
    .success();

    let stop = Instant::now();
    docker_ok(["stop", "-t", "10", &name]);
    assert!(
        stop.elapsed() < Duration::from_secs(5),
        "SIGTERM was not handled: stop took {:?}",
        stop.elapsed()
    );
    assert_eq!(
        docker_ok(["inspect", "--format", "{{.State.ExitCode}}", &name]),
        "0"
    );
}

#[test]
fn rust_builder_builds_the_examples_offline_in_a_container() {
    let start = Instant::now();
    let builder = rust_builder_image();
    eprintln!("rust builder image ready in {:?}", start.elapsed());
    let images = TestImages::new("builder");
    let out = docker_ok([
        "run",
        "--rm",
        "--label",
        TEST_LABEL,
        "--name",
        &images.container("versions"),
        &builder,
        "sh",
        "-c",
        "cargo --version && rustc --version && gcc --version | head -n1",
    ]);
    assert!(out.contains("cargo 1.") && out.contains("gcc"), "{out}");

    // The workspace example, multi-stage and static, the way the `docker` strategy builds it.
    let ctx = project().copy_of(example_dir("workspace")).build();
    ctx.write(
        "Dockerfile",
        &format!(
            "FROM {builder} AS build\n\
             {}\n\
             WORKDIR /src\n\
             COPY . .\n\
             ENV RUSTFLAGS=\"-C target-feature=+crt-static\"\n\
             RUN [\"cargo\", \"build\", \"--offline\", \"--locked\", \"--target\", \"{triple}\", \"-p\", \"orders\"]\n\
             FROM scratch\n\
             COPY --from=build /src/target/{triple}/debug/orders /usr/local/bin/orders\n\
             LABEL {TEST_LABEL}\n\
             ENTRYPOINT [\"/usr/local/bin/orders\"]\n",
            images.label_line(),
            triple = host_target(),
        ),
    );
    let image = format!("{}:test", images.repo("orders"));
    let build = Instant::now();
    docker_ok(["build", "-q", "-t", &image, &ctx.root.to_string_lossy()]);
    eprintln!(
        "workspace example built in a container in {:?}",
        build.elapsed()
    );
    let out = docker_ok([
        "run",
        "--rm",
        "--label",
        TEST_LABEL,
        "--name",
        &images.container("orders"),
        &image,
        "--version",
    ]);
    assert_eq!(out, "orders 1.4.2");
}

#[test]
fn base64_matches_rfc4648() {
    for (input, expected) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(input.as_bytes()), expected);
    }
}

#[test]
fn debian_mirror_comes_from_apt_sources() {
    let mirror = debian_mirror();
    assert!(mirror.starts_with("http"), "{mirror}");
    assert!(!mirror.contains("security"), "{mirror}");
}

#[test]
fn examples_unit_tests_pass() {
    cargo_in(
        example_dir("hello"),
        &["test", "--locked", "--offline", "--bins"],
        &[],
    )
    .success();
    cargo_in(
        example_dir("workspace"),
        &[
            "test",
            "--locked",
            "--offline",
            "--workspace",
            "--lib",
            "--bins",
        ],
        &[],
    )
    .success();
}
