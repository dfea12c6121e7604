//! Ctrl-C during the test stage: a real SIGINT sent to this process while a check runs. The signal
//! goes to the whole process (and the library remembers it for the rest of the process's life),
//! so the test runs in a run of the test binary of its own ([`support::in_own_process`]).

use std::time::{Duration, Instant};

use cargo_docker_release::checks::TestOptions;
use cargo_docker_release::error::Error;

use crate::support;
use support::test_stage::*;

#[tokio::test(flavor = "multi_thread")]
async fn sigint_during_a_check_removes_the_container_and_reports_interrupted() {
    if !support::in_own_process(concat!(
        module_path!(),
        "::sigint_during_a_check_removes_the_container_and_reports_interrupted"
    )) {
        return;
    }
    let fx = fixture(
        "sigint",
        r#"
[package.metadata.docker]
expose = [8080]

[[package.metadata.docker.test.exec]]
name = "long"
cmd = ["/bin/busybox", "sleep", "60"]
timeout = "2m"
"#,
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
    let deadline = Instant::now() + Duration::from_secs(30);
    while containers_of(&fx).is_empty() {
        assert!(Instant::now() < deadline, "no container started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-INT", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the stage stops within seconds of SIGINT")
        .unwrap();
    let took = sent.elapsed();
    match result {
        Err(e @ Error::Interrupted) => assert_ne!(e.exit_code(), 0),
        other => panic!("expected Interrupted, got {other:?}"),
    }
    assert!(
        took < Duration::from_secs(5),
        "stopped {took:?} after SIGINT"
    );
    eprintln!("stopped {took:?} after SIGINT");
    assert_no_containers(&fx);
}
