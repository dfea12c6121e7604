//! An engine that goes away mid-release: the tool reaches the engine over TCP through a proxy
//! (`DOCKER_HOST=tcp://…`, tests/testsuite/support/proxy.rs) that the test cuts or freezes. The release
//! ends with exit 1 within seconds, its error names the engine and the step, nothing is tagged,
//! and the next run removes what was left.

use std::time::Duration;

use crate::support;

use support::proxy::EngineProxy;
use support::service::*;

#[test]
fn an_engine_that_closes_the_connection_mid_test_fails_the_release_naming_it() {
    // A host check that waits until the test lets it pass, so the cut comes mid-test.
    let fx = Fixture::new(
        "fault",
        None,
        "0.1.0",
        "[[package.metadata.docker.test.host]]\ncmd = [\"sh\", \"-c\", \"[ -e target/go ] || sleep 60\"]\n",
    );
    fx.commit("a host check that waits");
    let proxy = EngineProxy::start();
    let host = proxy.docker_host();
    let mut child = fx.spawn_release_with(&[], &[("DOCKER_HOST", &host)]);
    let log = StderrLog::of(&mut child);
    log.wait_for("readiness", |t| {
        t.contains("Passed") && t.contains("ready:")
    });
    std::thread::sleep(Duration::from_millis(300));
    proxy.cut();
    let (status, took) = wait_at_most(&mut child, Duration::from_secs(30), &log);
    let text = log.text();
    eprintln!("exit {:?} {took:?} after the cut", status.code());
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(took < Duration::from_secs(10), "{took:?}\n{text}");
    assert!(
        text.contains(&format!(
            "test failed: the Docker engine at {host} (DOCKER_HOST)"
        )),
        "the error names the step and the engine:\n{text}"
    );
    assert!(fx.tags().is_empty(), "nothing is tagged");
    assert_eq!(
        containers_of_package(&fx.package),
        1,
        "the engine was gone: the container is left for the next run"
    );

    // The next run, on the engine directly, removes the leftover and releases.
    fx.write("target/go", "");
    let out = fx.run(&[]);
    assert_success(&out);
    assert!(
        text_of(&out).contains("test container(s) left by earlier runs"),
        "{}",
        text_of(&out)
    );
    assert_eq!(containers_of_package(&fx.package), 0);
    assert!(!fx.tags().is_empty());
}

#[test]
fn an_engine_that_stops_answering_mid_build_fails_within_seconds_naming_it() {
    let fx = Fixture::new("fault", None, "0.1.0", "");
    let proxy = EngineProxy::start();
    let host = proxy.docker_host();
    let mut child = fx.spawn_release_with(&[], &[("DOCKER_HOST", &host)]);
    let log = StderrLog::of(&mut child);
    log.wait_for("the build", |t| t.contains("Compiling"));
    proxy.freeze();
    let (status, took) = wait_at_most(&mut child, Duration::from_secs(60), &log);
    let text = log.text();
    eprintln!("exit {:?} {took:?} after the freeze", status.code());
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(took < Duration::from_secs(15), "{took:?}\n{text}");
    assert!(
        text.contains(&format!(
            "build failed: the Docker engine at {host} (DOCKER_HOST) stopped answering"
        )),
        "the error names the step and the engine:\n{text}"
    );
    drop(proxy);
    assert!(fx.tags().is_empty(), "nothing is tagged");
}

#[test]
fn an_engine_that_stops_answering_mid_push_fails_naming_it_and_moves_no_floating_tag() {
    let registry = support::Registry::start();
    let fx = Fixture::new("fault", Some(&registry.addr), "1.0.0", "");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("config.json"), "{}\n").unwrap();
    let proxy = EngineProxy::start();
    let host = proxy.docker_host();
    let mut child = fx.spawn_release_with(
        &["--push"],
        &[
            ("DOCKER_HOST", &host),
            ("DOCKER_CONFIG", config.path().to_str().unwrap()),
            // A builder-made image, which the engine pushes (the tool pushes the images it
            // assembles itself).
            ("DOCKER_BUILDKIT", "1"),
        ],
    );
    let log = StderrLog::of(&mut child);
    // The immutable tags are applied right before they are pushed.
    log.wait_for("the tags", |t| t.contains("Tagged"));
    proxy.freeze();
    let (status, took) = wait_at_most(&mut child, Duration::from_secs(60), &log);
    let text = log.text();
    eprintln!("exit {:?} {took:?} after the freeze", status.code());
    assert_eq!(status.code(), Some(1), "{text}");
    assert!(took < Duration::from_secs(20), "{took:?}\n{text}");
    assert!(
        text.contains(&format!(
            "push failed: the Docker engine at {host} (DOCKER_HOST) stopped answering"
        )),
        "the error names the step and the engine:\n{text}"
    );
    drop(proxy);
    let repo = fx.image.split_once('/').unwrap().1;
    let pushed = registry.release_tags(repo);
    assert!(
        !pushed.contains(&"latest".to_owned()) && !pushed.contains(&"1.0".to_owned()),
        "no floating tag reaches the registry: {pushed:?}"
    );
    assert!(
        !fx.tags().contains_key("latest"),
        "no floating tag moves locally"
    );
}

fn text_of(out: &std::process::Output) -> String {
    text(&out.stderr)
}
