//! The smoke test of an image the tool assembled itself (`io.cargo-docker-release.builder =
//! assembled`): no builder ran its `RUN`, so it is the first check of the test stage, in a one-off
//! container of the exact image; a failing one stops the stage before the service starts. Images
//! made by a builder ran it during the build and do not run it again.

use crate::support::test_stage;

use cargo_docker_release::checks::TestOptions;
use cargo_docker_release::engine::build::Builder;
use test_stage::*;

/// A service whose manifest names `smoke` as its smoke test, with a readiness check and an exec.
fn manifest(smoke: &str, test: &str) -> String {
    format!(
        r#"
[package.metadata.docker]
expose = [8080]
healthcheck = {{ cmd = ["/usr/local/bin/fixture-svc", "health"], interval = "30s" }}
smoke-test = {smoke}

[package.metadata.docker.test]
{test}

[[package.metadata.docker.test.exec]]
cmd = ["/usr/local/bin/fixture-svc", "--version"]
"#
    )
}

fn assembled() -> ImageOptions {
    ImageOptions {
        builder: Some(Builder::Assembled.label()),
        ..Default::default()
    }
}

const FAILING: &str = r#"["/bin/busybox", "sh", "-c", "echo 'cannot load libfoo' >&2; exit 3"]"#;

#[tokio::test(flavor = "multi_thread")]
async fn failing_smoke_test_of_an_assembled_image_stops_the_stage_before_the_service_starts() {
    let fx = fixture("smoke fails", &manifest(FAILING, ""), assembled());
    let (report, result) = run_stage_with_report(&fx, &TestOptions::default()).await;
    let message = step_failure(result.map(|()| report.clone()));
    let name = "smoke-test: /bin/busybox sh -c echo 'cannot load libfoo' >&2; exit 3";
    assert!(message.contains(&format!("`{name}`")), "{message}");
    assert!(message.contains("exit code 3, expected 0"), "{message}");
    assert!(message.contains("cannot load libfoo"), "{message}");
    let smoke = report.checks.iter().find(|c| c.name == name).unwrap();
    assert_eq!(smoke.kind, "smoke-test");
    assert!(!smoke.passed);
    // As a failed build would: no service, so no readiness and no tests.
    let kinds: Vec<&str> = report.checks.iter().map(|c| c.kind.as_str()).collect();
    assert!(
        !kinds
            .iter()
            .any(|k| ["ready", "exec", "shutdown"].contains(k)),
        "{kinds:?}"
    );
    assert_eq!(stage_containers_of(&fx), Vec::<String>::new());
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn passing_smoke_test_of_an_assembled_image_is_the_first_check() {
    let fx = fixture(
        "smoke passes",
        &manifest(r#"["/usr/local/bin/fixture-svc", "--version"]"#, ""),
        assembled(),
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let report = result.expect("the smoke test and every check pass");
    let first = &report.checks[0];
    assert_eq!(
        first.name,
        "smoke-test: /usr/local/bin/fixture-svc --version"
    );
    assert_eq!(first.kind, "smoke-test");
    assert!(first.output.contains("fixture-svc 1.2.3"), "{first:?}");
    let kinds: Vec<&str> = report.checks.iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "smoke-test").count(), 1);
    assert!(kinds[1..].starts_with(&["structure"]), "{kinds:?}");
    assert!(
        kinds.contains(&"ready") && kinds.contains(&"exec"),
        "{kinds:?}"
    );
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn image_made_by_buildkit_does_not_run_its_smoke_test_again() {
    // BuildKit ran the smoke test as the Dockerfile's RUN: the stage does not repeat it (this one
    // would fail).
    let fx = fixture(
        "smoke buildkit",
        &manifest(FAILING, ""),
        ImageOptions {
            builder: Some("buildkit"),
            ..Default::default()
        },
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let report = result.expect("no smoke test runs");
    assert!(
        !report.checks.iter().any(|c| c.kind == "smoke-test"),
        "{:?}",
        report.checks
    );
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_test_cut_short_by_the_stage_deadline_leaves_no_container() {
    let fx = fixture(
        "smoke deadline",
        &manifest(r#"["/bin/busybox", "sleep", "60"]"#, r#"timeout = "3s""#),
        assembled(),
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(
        message.contains("`smoke-test: /bin/busybox sleep 60`"),
        "{message}"
    );
    assert!(message.contains("ran out of its 3s deadline"), "{message}");
    assert_eq!(stage_containers_of(&fx), Vec::<String>::new());
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn smoke_test_of_a_program_missing_from_the_image_fails_as_a_build_would() {
    // An absolute path is looked up first; a bare name is refused by the runtime at start.
    for (program, said) in [
        (
            "/usr/local/bin/orders",
            "/usr/local/bin/orders is not in the image",
        ),
        ("orders", "executable file not found"),
    ] {
        let fx = fixture(
            &format!("smoke missing {program}"),
            &manifest(&format!("[\"{program}\", \"--version\"]"), ""),
            assembled(),
        );
        let (result, _) = run_stage(&fx, &TestOptions::default()).await;
        let message = step_failure(result);
        assert!(
            message.contains(&format!("`smoke-test: {program} --version`")),
            "{message}"
        );
        assert!(message.contains(said), "{message}");
        assert_eq!(stage_containers_of(&fx), Vec::<String>::new());
        assert_no_containers(&fx);
    }
}
