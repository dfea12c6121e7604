//! SIGINT, SIGTERM and SIGHUP take one path, in the build stage and in the test stage: the built
//! binary, started in a process group of its own as a CI runner starts it, gets the signal (it
//! alone, not its children); afterwards no child process is left (cargo, a build script, a host
//! check and its background job), no test container, no tag, and the exit code is `128 + signal`.
//! A second signal exits at once.
//!
//! Every process the release starts inherits a marker variable, so that any survivor is found in
//! `/proc` whatever its parent became.

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::support;

use support::service::*;

const MARK: &str = "CDR_SIGNAL_TEST";

/// `(pid, command line)` of every live process carrying `MARK=token` in its environment.
fn marked(token: &str) -> Vec<(u32, String)> {
    let needle = format!("{MARK}={token}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, cmdline));
        }
    }
    found
}

/// The release (in its own process group) with the marker in its environment.
fn spawn(fx: &Fixture, token: &str) -> (Child, StderrLog) {
    let mut child = fx.spawn_release_with(&[], &[(MARK, token)]);
    let log = StderrLog::of(&mut child);
    (child, log)
}

fn send(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits for the interrupted release and checks what it left: nothing.
fn assert_clean_exit(
    fx: &Fixture,
    mut child: Child,
    signal: (&str, i32),
    token: &str,
    log: &StderrLog,
) {
    let (status, took) = wait_at_most(&mut child, Duration::from_secs(15), log);
    eprintln!(
        "{}: exit {:?} {took:?} after the signal",
        signal.0,
        status.code()
    );
    let text = log.text();
    assert_eq!(status.code(), Some(128 + signal.1), "{}:\n{text}", signal.0);
    assert!(
        text.contains(&format!("interrupted by {}", signal.0)),
        "the error names the signal:\n{text}"
    );
    // Killed processes may take a moment to be reaped by whoever inherited them.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !marked(token).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        marked(token),
        vec![],
        "child processes survived {}",
        signal.0
    );
    assert!(fx.tags().is_empty(), "nothing is tagged after {}", signal.0);
    assert_eq!(
        containers_of_package(&fx.package),
        0,
        "no container after {}",
        signal.0
    );
}

const SIGNALS: [(&str, i32); 3] = [("INT", 2), ("TERM", 15), ("HUP", 1)];

fn full((name, n): (&'static str, i32)) -> (String, i32) {
    (format!("SIG{name}"), n)
}

#[test]
fn each_signal_during_cargo_build_stops_the_whole_build_and_tags_nothing() {
    let fx = Fixture::new("signal", None, "0.1.0", "");
    // A build script that outlasts the signal: a grandchild of the release (release -> cargo ->
    // build script), which only a process-group kill reaches.
    fx.write(
        "build.rs",
        "fn main() {\n    println!(\"cargo:rerun-if-changed=build.rs\");\n    std::thread::sleep(std::time::Duration::from_secs(120));\n}\n",
    );
    fx.commit("slow build script");
    for signal in SIGNALS {
        let token = unique();
        let (child, log) = spawn(&fx, &token);
        log.wait_for("the build script", |_| {
            marked(&token)
                .iter()
                .any(|(_, cmd)| cmd.contains("build-script-build"))
        });
        send(child.id(), signal.0);
        let (name, n) = full(signal);
        assert_clean_exit(&fx, child, (&name, n), &token, &log);
    }
}

#[test]
fn each_signal_during_a_host_check_removes_the_container_and_kills_the_check() {
    // A host check with a background job: a grandchild that only a process-group kill reaches.
    let fx = Fixture::new(
        "signal",
        None,
        "0.1.0",
        "[[package.metadata.docker.test.host]]\ncmd = [\"sh\", \"-c\", \"sleep 120 & sleep 120\"]\ntimeout = \"5m\"\n",
    );
    fx.commit("slow host check");
    for signal in SIGNALS {
        let token = unique();
        let (child, log) = spawn(&fx, &token);
        log.wait_for("the host check", |_| {
            marked(&token)
                .iter()
                .filter(|(_, cmd)| cmd.starts_with("sleep 120"))
                .count()
                == 2
        });
        assert_eq!(
            containers_of_package(&fx.package),
            1,
            "the test container runs"
        );
        send(child.id(), signal.0);
        let (name, n) = full(signal);
        assert_clean_exit(&fx, child, (&name, n), &token, &log);
    }

    // A second signal exits at once, killing the check's process group; the container it could
    // not wait to remove is removed by the next run.
    let token = unique();
    let (mut child, log) = spawn(&fx, &token);
    log.wait_for("the host check", |_| {
        marked(&token)
            .iter()
            .filter(|(_, cmd)| cmd.starts_with("sleep 120"))
            .count()
            == 2
    });
    send(child.id(), "TERM");
    // Signals sent back to back may be delivered as one.
    std::thread::sleep(Duration::from_millis(200));
    send(child.id(), "TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143));
    let deadline = Instant::now() + Duration::from_secs(3);
    while !marked(&token).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        marked(&token),
        vec![],
        "the second signal kills the children too"
    );
    assert!(fx.tags().is_empty());
    block_on(async {
        cargo_docker_release::checks::remove_leftovers(&engine().await)
            .await
            .unwrap()
    });
    // A removal the interrupted run had started may still be finishing in the engine.
    let deadline = Instant::now() + Duration::from_secs(10);
    while containers_of_package(&fx.package) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        containers_of_package(&fx.package),
        0,
        "the next run removes the leftover"
    );
}
