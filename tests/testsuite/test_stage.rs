//! The test stage against the real engine: a fixture service in a real git repository, its image
//! built from `scratch`, and `checks::run` called as the release pipeline calls it.

use crate::support::test_stage;

use std::time::Duration;

use cargo_docker_release::checks::TestOptions;
use cargo_docker_release::error::Error;
use test_stage::*;

const SERVICE: &str = r#"
[package.metadata.docker]
expose = [8080]
healthcheck = { cmd = ["/usr/local/bin/fixture-svc", "health"], interval = "30s" }
"#;

fn manifest(env: &str, test: &str) -> String {
    format!("{SERVICE}env = {{ {env} }}\n\n[package.metadata.docker.test]\n{test}")
}

const EVERY_KIND: &str = r#"
timeout = "2m"
ready = { timeout = "20s", tcp = [8080], http = { path = "/healthz", status = 200 }, log = "listening on" }
structure = { user = "non-root", healthcheck = true, entrypoint = ["/usr/local/bin/fixture-svc"], expose = [8080], max-size = "20MB", files = [{ path = "/usr/local/bin/fixture-svc", mode = "0755", owner = "0:0" }], absent = ["/bin/sh"] }
shutdown = { timeout = "5s", exit-code = 0 }

[[package.metadata.docker.test.exec]]
cmd = ["/usr/local/bin/fixture-svc", "--version"]
stdout = ["fixture-svc {version}"]
stderr-not = ["error"]

[[package.metadata.docker.test.cargo]]
test = "smoke"

[[package.metadata.docker.test.host]]
name = "version endpoint from the host"
cmd = ["sh", "-c", "busybox wget -qO- http://$SERVICE_HOST:$SERVICE_PORT/version && echo $CONTAINER_ID $IMAGE_ID"]
stdout = ["{sha}", "sha256:"]

[[package.metadata.docker.test.http]]
path = "/version"
body = ["{sha}", "{version}"]
"#;

#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_check_passes_and_junit_lists_each() {
    let fx = fixture(
        "every kind passes",
        &manifest("", EVERY_KIND),
        ImageOptions::default(),
    );
    let junit = fx.project.path("reports/junit.xml");
    let options = TestOptions {
        keep_on_failure: false,
        junit: Some(junit.clone().try_into().unwrap()),
        ..Default::default()
    };
    let (result, took) = run_stage(&fx, &options).await;
    let report = result.expect("every check passes");
    let kinds: std::collections::BTreeSet<&str> =
        report.checks.iter().map(|c| c.kind.as_str()).collect();
    for kind in [
        "structure",
        "ready",
        "exec",
        "cargo",
        "host",
        "http",
        "shutdown",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} check in {:?}",
            report.checks
        );
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    for check in &report.checks {
        let escaped = cargo_docker_release::checks::junit::escape(&check.name);
        assert!(
            xml.contains(&format!("<testcase name=\"{escaped}\"")),
            "{} missing from\n{xml}",
            check.name
        );
    }
    assert!(xml.contains(&format!("tests=\"{}\" failures=\"0\"", report.checks.len())));
    // The health command runs through exec at once: readiness does not wait for the 30s interval.
    let health = report
        .checks
        .iter()
        .find(|c| c.name == "ready: health")
        .expect("health is a readiness condition by default");
    assert!(
        health.duration_ms < 5_000,
        "ready after {} ms",
        health.duration_ms
    );
    eprintln!(
        "every-kind stage: {took:?}; ready: {:?}",
        report
            .checks
            .iter()
            .filter(|c| c.kind == "ready")
            .map(|c| (&c.name, c.duration_ms))
            .collect::<Vec<_>>()
    );
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_healthcheck_readiness_waits_for_the_exposed_port() {
    let fx = fixture(
        "tcp default",
        "[package.metadata.docker]\nexpose = [8080]\n",
        ImageOptions {
            healthcheck: false,
            ..Default::default()
        },
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let report = result.expect("ready when the port accepts connections");
    let ready: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.kind == "ready")
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(ready, ["ready: tcp 8080"]);
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_readiness_is_not_fooled_by_the_port_proxy() {
    // Docker's userland proxy accepts connections on the published port before the service
    // listens; readiness must wait for the service itself.
    let fx = fixture(
        "tcp waits",
        "[package.metadata.docker]\nexpose = [8080]\nenv = { FIXTURE_DELAY_MS = \"1500\" }\n",
        ImageOptions {
            healthcheck: false,
            ..Default::default()
        },
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let report = result.expect("ready once the service listens");
    let tcp = report
        .checks
        .iter()
        .find(|c| c.name == "ready: tcp 8080")
        .unwrap();
    assert!(
        tcp.duration_ms >= 1500,
        "ready after {} ms",
        tcp.duration_ms
    );
    assert!(tcp.duration_ms < 4000, "ready after {} ms", tcp.duration_ms);
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_for_health_of_an_image_without_healthcheck_is_a_configuration_error() {
    let fx = fixture(
        "health without healthcheck",
        &manifest("", "ready = { health = true }"),
        ImageOptions {
            healthcheck: false,
            ..Default::default()
        },
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    match result {
        Err(e @ Error::TestConfig { .. }) => {
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains("has no HEALTHCHECK"), "{e}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_structure_check_is_named() {
    let fx = fixture(
        "structure fails",
        &manifest(
            "",
            r#"structure = { files = [{ path = "/usr/local/bin/fixture-svc", mode = "0700" }], absent = ["/bin/busybox"] }"#,
        ),
        ImageOptions::default(),
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(
        message.contains("`structure: file /usr/local/bin/fixture-svc`"),
        "{message}"
    );
    assert!(
        message.contains("has mode 0755, expected 0700"),
        "{message}"
    );
    assert!(
        message.contains("`structure: absent /bin/busybox`"),
        "{message}"
    );
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn image_with_another_revision_fails_the_sha_check() {
    let fx = fixture(
        "wrong sha",
        &manifest("", ""),
        ImageOptions {
            wrong_sha: true,
            ..Default::default()
        },
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(message.contains("`structure: ENV SHA`"), "{message}");
    assert!(message.contains(&fx.plan.revision), "{message}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_exec_check_shows_its_output() {
    let fx = fixture(
        "exec fails",
        &manifest(
            "",
            r#"
[[package.metadata.docker.test.exec]]
name = "reports version 9.9.9"
cmd = ["/usr/local/bin/fixture-svc", "--version"]
stdout = ["9.9.9"]
"#,
        ),
        ImageOptions::default(),
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(
        message.contains("`exec: reports version 9.9.9`"),
        "{message}"
    );
    assert!(
        message.contains("stdout does not contain `9.9.9`"),
        "{message}"
    );
    assert!(message.contains("fixture-svc 1.2.3"), "{message}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn exec_of_a_program_missing_from_the_image_is_a_configuration_error() {
    // An absolute path is looked up before running; a bare name is found missing by the runtime.
    for program in ["/usr/bin/curl", "curl"] {
        let fx = fixture(
            &format!("exec missing {program}"),
            &manifest(
                "",
                &format!(
                    "[[package.metadata.docker.test.exec]]\ncmd = [\"{program}\", \"-f\", \"http://localhost:8080/healthz\"]\n"
                ),
            ),
            ImageOptions::default(),
        );
        let (result, _) = run_stage(&fx, &TestOptions::default()).await;
        match result {
            Err(e @ Error::TestConfig { .. }) => {
                assert_eq!(e.exit_code(), 2);
                assert!(
                    e.to_string()
                        .contains(&format!("`{program}` is not in the image")),
                    "{e}"
                );
            }
            other => panic!("expected a configuration error for {program}, got {other:?}"),
        }
        assert_no_containers(&fx);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_cargo_test_inside_the_container_fails_the_stage() {
    let fx = fixture(
        "cargo fails",
        &manifest(
            "",
            r#"
[[package.metadata.docker.test.cargo]]
test = "broken"
"#,
        ),
        ImageOptions::default(),
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(message.contains("`cargo: broken`"), "{message}");
    assert!(message.contains("missing_endpoint_answers"), "{message}");
    assert!(message.contains("HTTP/1.1 404"), "{message}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_host_command_is_named_with_its_output() {
    let fx = fixture(
        "host fails",
        &manifest(
            "",
            r#"
[[package.metadata.docker.test.host]]
name = "acceptance"
cmd = ["sh", "-c", "echo \"checking $SERVICE_HOST:$SERVICE_PORT\"; echo 'boom: order not found' >&2; exit 4"]
"#,
        ),
        ImageOptions::default(),
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(message.contains("`host: acceptance`"), "{message}");
    assert!(message.contains("exit code 4, expected 0"), "{message}");
    assert!(message.contains("boom: order not found"), "{message}");
    assert!(message.contains("checking 127.0.0.1:"), "{message}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn failing_http_probe_shows_status_and_body() {
    let fx = fixture(
        "http fails",
        &manifest(
            "",
            r#"
[[package.metadata.docker.test.http]]
path = "/orders/{version}"
"#,
        ),
        ImageOptions::default(),
    );
    let (report, result) = run_stage_with_report(&fx, &TestOptions::default()).await;
    let message = step_failure(result.map(|()| report.clone()));
    assert!(message.contains("`http: GET /orders/1.2.3`"), "{message}");
    let failed: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        failed,
        ["http: GET /orders/1.2.3"],
        "the report keeps the failure"
    );
    assert!(message.contains("status 404, expected 200"), "{message}");
    assert!(message.contains("not found"), "{message}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_dying_during_the_tests_fails_the_stage() {
    let fx = fixture(
        "dies during tests",
        &manifest(
            "",
            r#"
[[package.metadata.docker.test.exec]]
name = "stops the service"
cmd = ["/bin/busybox", "kill", "1"]
"#,
        ),
        ImageOptions::default(),
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(
        message.contains("`run: still running after the tests`"),
        "{message}"
    );
    assert!(message.contains("exited with code 0"), "{message}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_ignoring_its_stop_signal_fails_the_shutdown_check() {
    let fx = fixture(
        "shutdown fails",
        &manifest(
            "FIXTURE_MODE = \"ignore-term\"",
            r#"shutdown = { timeout = "1s" }"#,
        ),
        ImageOptions::default(),
    );
    let (result, took) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(message.contains("`shutdown: SIGTERM`"), "{message}");
    assert!(
        message.contains("still running 1s after SIGTERM"),
        "{message}"
    );
    assert!(took < Duration::from_secs(15), "{took:?}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn never_healthy_service_fails_at_the_readiness_deadline() {
    let fx = fixture(
        "never healthy",
        &manifest(
            "FIXTURE_MODE = \"never-healthy\"",
            r#"ready = { timeout = "3s" }"#,
        ),
        ImageOptions::default(),
    );
    let (result, took) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(message.contains("`ready: health`"), "{message}");
    assert!(message.contains("not ready within 3s"), "{message}");
    assert!(message.contains("database unreachable"), "{message}");
    assert!(
        message.contains("listening on 0.0.0.0:8080"),
        "last log lines: {message}"
    );
    assert!(
        took >= Duration::from_secs(3) && took < Duration::from_secs(6),
        "failed after {took:?}"
    );
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_turning_unhealthy_fails_fast_with_the_health_output() {
    let fx = fixture(
        "unhealthy",
        &manifest(
            "FIXTURE_MODE = \"never-healthy\"",
            r#"ready = { timeout = "60s" }"#,
        ),
        ImageOptions {
            fast_health: true,
            ..Default::default()
        },
    );
    let (result, took) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(
        message.contains("the container turned unhealthy"),
        "{message}"
    );
    assert!(message.contains("Docker health checks"), "{message}");
    assert!(message.contains("database unreachable"), "{message}");
    assert!(took < Duration::from_secs(10), "failed after {took:?}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_crashing_at_start_fails_fast_with_its_logs() {
    let fx = fixture(
        "crash",
        &manifest("FIXTURE_MODE = \"crash\"", r#"ready = { timeout = "60s" }"#),
        ImageOptions::default(),
    );
    let (result, took) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(message.contains("exited with code 3"), "{message}");
    assert!(message.contains("fatal: cannot open database"), "{message}");
    assert!(took < Duration::from_secs(5), "failed after {took:?}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn stage_deadline_names_the_check_that_was_running() {
    let fx = fixture(
        "deadline",
        &manifest(
            "",
            r#"timeout = "4s"

[[package.metadata.docker.test.exec]]
name = "slow"
cmd = ["/bin/busybox", "sleep", "60"]
timeout = "2m"
"#,
        ),
        ImageOptions::default(),
    );
    let (result, took) = run_stage(&fx, &TestOptions::default()).await;
    let message = step_failure(result);
    assert!(message.contains("`exec: slow`"), "{message}");
    assert!(message.contains("ran out of its 4s deadline"), "{message}");
    assert!(took < Duration::from_secs(8), "failed after {took:?}");
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn keep_on_failure_keeps_the_failed_container_running() {
    let fx = fixture(
        "keep",
        &manifest(
            "",
            r#"
[[package.metadata.docker.test.http]]
path = "/missing"
"#,
        ),
        ImageOptions::default(),
    );
    let options = TestOptions {
        keep_on_failure: true,
        ..Default::default()
    };
    let (result, _) = run_stage(&fx, &options).await;
    let message = step_failure(result);
    assert!(message.contains("`http: GET /missing`"), "{message}");
    let left = containers_of(&fx);
    assert_eq!(left.len(), 1, "{left:?}");
    let running = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", &left[0]])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&running.stdout).trim(), "true");
    // It stays until its owner process is gone; here, remove it by hand.
    let rm = std::process::Command::new("docker")
        .args(["rm", "-f", &left[0]])
        .output()
        .unwrap();
    assert!(rm.status.success());
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn leftovers_of_dead_runs_are_removed_and_live_ones_kept() {
    let fx = fixture("leftovers", &manifest("", ""), ImageOptions::default());
    let host = cargo_docker_release::engine::container::owner_id()
        .rsplit_once(':')
        .map(|(h, _)| h.to_owned())
        .unwrap();
    let create = |owner: String| {
        let out = std::process::Command::new("docker")
            .args(["create", "--label", TEST_LABEL, "--label"])
            .arg(format!(
                "{}=test",
                cargo_docker_release::checks::CONTAINER_LABEL
            ))
            .arg("--label")
            .arg(format!("io.cargo-docker-release.owner={owner}"))
            .arg(&fx.image_id)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let live = create(format!("{}:{}", host.trim(), std::process::id()));
    // A fresh container of another host sharing the engine may belong to a running release.
    let foreign = create("another-ci-runner:1".to_string());
    let engine = crate::support::engine().await;
    // Every release started on this host meanwhile (other tests of the suite run at the same
    // time) removes dead runs' containers too: when one of them took ours first, this call's
    // count cannot show it, so the dead container is made again (at most five times).
    let mut attempts = 0;
    let left = loop {
        attempts += 1;
        // pid_max is at most 2^22: this process cannot exist.
        let dead = create(format!("{}:{}", host.trim(), 1 << 23));
        let removed = cargo_docker_release::checks::remove_leftovers(&engine)
            .await
            .unwrap();
        let left = containers_of(&fx);
        assert!(
            !left.iter().any(|id| dead.starts_with(id.as_str())),
            "{left:?}"
        );
        if removed >= 1 {
            break left;
        }
        assert!(
            attempts < 5,
            "remove_leftovers removed nothing in {attempts} attempts (and the dead run's \
             container was gone each time)"
        );
    };
    assert!(
        left.iter().any(|id| live.starts_with(id.as_str())),
        "{left:?}"
    );
    assert!(
        left.iter().any(|id| foreign.starts_with(id.as_str())),
        "{left:?}"
    );
    std::process::Command::new("docker")
        .args(["rm", "-f", &live, &foreign])
        .output()
        .unwrap();
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_run_removes_its_container() {
    let fx = fixture(
        "cancelled",
        &manifest(
            "",
            r#"
[[package.metadata.docker.test.exec]]
cmd = ["/bin/busybox", "sleep", "60"]
timeout = "2m"
"#,
        ),
        ImageOptions::default(),
    );
    let plan = fx.plan.clone();
    let image = fx.image_id.clone();
    let task = tokio::spawn(async move {
        let engine = crate::support::engine().await;
        cargo_docker_release::checks::run(
            &engine,
            &plan,
            &image,
            &TestOptions::default(),
            &cargo_docker_release::ui::Shell::silent(),
        )
        .await
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while containers_of(&fx).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no container started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert_no_containers(&fx);
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_after_readiness_run_concurrently_and_are_reported_in_manifest_order() {
    let fx = fixture(
        "concurrent",
        &manifest(
            "",
            r#"shutdown = {}

[[package.metadata.docker.test.exec]]
name = "first sleeper"
cmd = ["/bin/busybox", "sleep", "1"]

[[package.metadata.docker.test.exec]]
name = "second sleeper"
cmd = ["/bin/busybox", "sleep", "1"]

[[package.metadata.docker.test.host]]
name = "host sleeper"
cmd = ["sleep", "1"]

[[package.metadata.docker.test.http]]
path = "/version"
"#,
        ),
        ImageOptions::default(),
    );
    let (result, _) = run_stage(&fx, &TestOptions::default()).await;
    let report = result.expect("every check passes");
    let tests: Vec<&cargo_docker_release::checks::CheckResult> = report
        .checks
        .iter()
        .filter(|c| ["exec", "host", "http"].contains(&c.kind.as_str()))
        .collect();
    let names: Vec<&str> = tests.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "exec: first sleeper",
            "exec: second sleeper",
            "host: host sleeper",
            "http: GET /version"
        ]
    );
    // Run one after another, each sleeper would start when the one before ended; together they
    // share most of their second.
    let sleepers = &tests[..3];
    for a in sleepers {
        for b in sleepers {
            let overlap = (a.started_ms + a.duration_ms).min(b.started_ms + b.duration_ms) as i64
                - a.started_ms.max(b.started_ms) as i64;
            assert!(
                overlap >= 100,
                "{} ({} ms from {} ms) and {} ({} ms from {} ms) did not overlap",
                a.name,
                a.duration_ms,
                a.started_ms,
                b.name,
                b.duration_ms,
                b.started_ms
            );
        }
    }
    // The shutdown comes after every test.
    let last_test_end = sleepers
        .iter()
        .map(|c| c.started_ms + c.duration_ms)
        .max()
        .unwrap();
    let shutdown = report.checks.last().unwrap();
    assert!(shutdown.name.starts_with("shutdown"), "{shutdown:?}");
    assert!(shutdown.started_ms >= last_test_end, "{:?}", report.checks);
    assert_no_containers(&fx);
}
