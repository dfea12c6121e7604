//! The bundled example (`examples/hello`) passes a full test section: structure, readiness, its
//! own smoke tests run inside the container, an exec, an HTTP probe of `{sha}`/`{version}`, and a
//! clean shutdown on SIGTERM.

mod test_stage_support;

use cargo_docker_release::steps::test::TestOptions;
use test_stage_support::*;

/// The section proposed for `examples/hello/Cargo.toml` (and the README).
const EXAMPLE_TEST_SECTION: &str = r#"[package.metadata.docker.test]
timeout = "2m"
ready = { timeout = "30s", http = { path = "/healthz", status = 200 } }
structure = { user = "non-root", healthcheck = true, max-size = "20MB", absent = ["/bin/sh"] }
shutdown = { timeout = "10s", exit-code = 0 }

[[package.metadata.docker.test.exec]]
cmd = ["/usr/local/bin/hello", "--version"]
stdout = ["{version}"]

[[package.metadata.docker.test.cargo]]
test = "smoke"

[[package.metadata.docker.test.http]]
path = "/version"
body = ["{sha}", "{version}"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn bundled_example_passes_a_full_test_section() {
    let fx = example_fixture(EXAMPLE_TEST_SECTION);
    let (result, took) = run_stage(&fx, &TestOptions::default()).await;
    let report = result.expect("the example passes its tests");
    let names: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    for expected in [
        "structure: ENV SHA",
        "ready: health",
        "ready: http GET /healthz -> 200",
        "exec: /usr/local/bin/hello --version",
        "cargo: smoke",
        "http: GET /version",
        "shutdown: SIGTERM",
    ] {
        assert!(names.contains(&expected), "{expected} not in {names:?}");
    }
    eprintln!("example test stage: {took:?}");
    assert_no_containers(&fx);
}
