//! The bundled example (`examples/hello`) passes a full test section: structure, readiness, its
//! own smoke tests run inside the container, an exec, an HTTP probe of `{sha}`/`{version}`, and a
//! clean shutdown on SIGTERM.

use crate::support::test_stage;

use cargo_docker_release::checks::TestOptions;
use test_stage::*;

/// The test section of `examples/hello/Cargo.toml`, as the README shows it.
fn example_test_section() -> String {
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello/Cargo.toml"),
    )
    .unwrap();
    let start = manifest
        .find("[package.metadata.docker.test]")
        .expect("the example declares a test section");
    manifest[start..].to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn bundled_example_passes_a_full_test_section() {
    let fx = example_fixture(&example_test_section());
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
