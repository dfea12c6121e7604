//! First contact with a service that gets its port wrong, as a new user meets it: a static
//! fixture service (tests/fixtures/first_contact/main.rs, its mode as `cmd`) released from
//! `scratch` by the built binary, against the real engine. Readiness reads the container's
//! listening sockets when a probe is refused or reset: a loopback bind or another port fails at
//! once with the address and the fix; a service that accepts and closes is named as such; one
//! that never listens is waited for until the deadline, then reported with its process state and
//! its last log lines.
//!
//! Each case prints its time to failure (`first-contact <case>: …`; `cargo test -- --nocapture`).

use crate::support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::service::*;

const FIXTURE_MAIN: &str = include_str!("../fixtures/first_contact/main.rs");
/// The readiness deadline of the cases that must not wait for it (the default's value).
const DEADLINE: Duration = Duration::from_secs(20);
/// The deadline of the cases that wait for it.
const SHORT_DEADLINE: Duration = Duration::from_secs(4);
/// The fixture binds this late, so that the time from the socket's appearance shows.
const BIND_DELAY_MS: u64 = 1500;

/// One release of the fixture in `mode`.
struct Case {
    fx: Fixture,
    out: std::process::Output,
    /// The whole release (build included).
    took: Duration,
    /// The readiness deadline.
    deadline: Duration,
}

impl Case {
    /// Stderr as one line: the error renderer wraps long lines behind a `│` gutter.
    fn stderr(&self) -> String {
        text(&self.out.stderr)
            .lines()
            .map(|l| l.trim_start().trim_start_matches('│').trim())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The readiness check the release failed (or passed), from its JSON report.
    fn ready_check(&self) -> Value {
        let report: Value = serde_json::from_str(
            &std::fs::read_to_string(self.fx.path().join("target/docker-release/report.json"))
                .expect("the release writes its report"),
        )
        .unwrap();
        report["services"][0]["tests"]["checks"]
            .as_array()
            .expect("the report has the test checks")
            .iter()
            .find(|c| c["kind"] == "ready")
            .cloned()
            .unwrap_or_else(|| panic!("no readiness check in {report:#}"))
    }

    /// Time from the start of readiness to its verdict.
    fn time_to_verdict(&self) -> Duration {
        Duration::from_millis(self.ready_check()["duration_ms"].as_u64().unwrap())
    }

    #[track_caller]
    fn assert_failed_with(&self, needles: &[&str]) {
        let stderr = self.stderr();
        assert_eq!(self.out.status.code(), Some(1), "{stderr}");
        for needle in needles {
            assert!(
                stderr.contains(needle),
                "`{needle}` missing from:\n{stderr}"
            );
        }
        assert_eq!(
            containers_of_package(&self.fx.package),
            0,
            "the test container is removed"
        );
        assert!(self.fx.tags().is_empty(), "nothing is tagged");
    }

    fn print(&self, case: &str) {
        eprintln!(
            "first-contact {case}: readiness verdict after {} ms (deadline {}s), whole release {:.1}s",
            self.time_to_verdict().as_millis(),
            self.deadline.as_secs(),
            self.took.as_secs_f64()
        );
        let raw = text(&self.out.stderr);
        if let Some(at) = raw.find("\nerror:") {
            eprintln!("{}", &raw[at + 1..]);
        }
    }
}

/// Releases the fixture in `mode`, ready when `probe` (`tcp = …` or `http = …`) holds within
/// `deadline`, with the fixture's `env` (inline TOML table content).
fn release(mode: &str, deadline: Duration, probe: &str, env: &str) -> Case {
    release_with(mode, deadline, probe, env, "scratch", &[])
}

/// [`release`] on the image `base`, with `wrap` (a program and its arguments) before the tool's
/// command line.
fn release_with(
    mode: &str,
    deadline: Duration,
    probe: &str,
    env: &str,
    base: &str,
    wrap: &[&str],
) -> Case {
    let fx = Fixture::new("first", None, "0.1.0", "");
    fx.write(
        "Cargo.toml",
        &format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
description = "first-contact readiness fixture"
license = "MIT"

[workspace]

[package.metadata.docker]
image = "{image}"
strategy = "host"
base = "{base}"
static = true
expose = [8080]
cmd = ["{mode}"]
env = {{ {env} }}
labels = {{ "{TEST_LABEL_KEY}" = "1" }}

[package.metadata.docker.test]
ready = {{ timeout = "{deadline}s", {probe} }}
"#,
            name = fx.package,
            image = fx.image,
            deadline = deadline.as_secs(),
        ),
    );
    fx.write("src/main.rs", FIXTURE_MAIN);
    fx.commit(&format!("first contact: {mode}"));
    let started = Instant::now();
    let out = if wrap.is_empty() {
        fx.run(&[])
    } else {
        // As `Fixture::run` does, behind the wrapper.
        std::process::Command::new(wrap[0])
            .args(&wrap[1..])
            .arg(env!("CARGO_BIN_EXE_cargo-docker-release"))
            .arg("docker-release")
            .arg("--manifest-path")
            .arg(fx.path().join("Cargo.toml"))
            .current_dir(fx.path())
            .env_remove("RUSTFLAGS")
            .env("CARGO_TARGET_DIR", fx.path().join("target"))
            .output()
            .expect("the built binary runs")
    };
    let took = started.elapsed();
    Case {
        fx,
        out,
        took,
        deadline,
    }
}

fn delayed() -> String {
    format!("FIXTURE_DELAY_MS = \"{BIND_DELAY_MS}\"")
}

#[test]
fn a_service_listening_on_every_address_passes() {
    let case = release("serve", DEADLINE, "tcp = [8080]", &delayed());
    assert_success(&case.out);
    let verdict = case.time_to_verdict();
    case.print("serve (control)");
    assert!(
        verdict >= Duration::from_millis(BIND_DELAY_MS),
        "ready after {verdict:?}, before the service listened"
    );
    assert!(
        case.fx.tags().contains_key("latest"),
        "released: {:?}",
        case.fx.tags()
    );
}

#[test]
fn a_loopback_bind_fails_at_once_with_the_address_and_the_fix() {
    let case = release("loopback", DEADLINE, "tcp = [8080]", &delayed());
    case.assert_failed_with(&[
        "binds loopback inside the container",
        "127.0.0.1:8080",
        "bind 0.0.0.0:8080 (or [::]:8080)",
        "cannot succeed however long it waits",
        // The source of the diagnosis: the container's own tables, read on this host.
        "net/tcp and tcp6 on this host): 127.0.0.1:8080",
    ]);
    let verdict = case.time_to_verdict();
    case.print("loopback (tcp)");
    assert!(
        verdict >= Duration::from_millis(BIND_DELAY_MS),
        "{verdict:?}"
    );
    assert!(verdict < DEADLINE / 2, "failed after {verdict:?}");
}

#[test]
fn a_loopback_bind_fails_at_once_for_http_readiness_too() {
    let case = release(
        "loopback",
        DEADLINE,
        r#"http = { port = 8080, path = "/", status = 200 }"#,
        "",
    );
    case.assert_failed_with(&[
        "binds loopback inside the container",
        "127.0.0.1:8080",
        "bind 0.0.0.0:8080 (or [::]:8080)",
    ]);
    let verdict = case.time_to_verdict();
    case.print("loopback (http)");
    assert!(verdict < DEADLINE / 2, "failed after {verdict:?}");
}

#[test]
fn an_ipv6_loopback_bind_is_named_with_the_fix() {
    let case = release("loopback6", DEADLINE, "tcp = [8080]", "");
    // Docker's default bridge gives containers no IPv6 loopback address: the bind fails and the
    // service exits; with IPv6 enabled it listens on [::1] and the sockets say so. Both name the
    // address and the fix, at once.
    case.assert_failed_with(&["[::1]:8080", "bind 0.0.0.0:8080 (or [::]:8080)"]);
    let stderr = case.stderr();
    let what = if stderr.contains("exited with code 1") {
        assert!(stderr.contains("no IPv6 loopback"), "{stderr}");
        "the bind failed (no IPv6 in the container), the service exited"
    } else {
        assert!(
            stderr.contains("binds loopback inside the container"),
            "{stderr}"
        );
        "listened on [::1]"
    };
    let verdict = case.time_to_verdict();
    case.print(&format!("loopback6 ({what})"));
    assert!(verdict < DEADLINE / 2, "failed after {verdict:?}");
}

#[test]
fn another_port_is_named_with_the_manifest_keys_to_fix() {
    let case = release("wrong-port", DEADLINE, "tcp = [8080]", &delayed());
    case.assert_failed_with(&[
        "nothing listens on port 8080 in the container",
        "0.0.0.0:8081",
        "`expose = [8081]`",
        "test.ready",
    ]);
    let verdict = case.time_to_verdict();
    case.print("wrong port");
    assert!(
        verdict >= Duration::from_millis(BIND_DELAY_MS),
        "{verdict:?}"
    );
    assert!(verdict < DEADLINE / 2, "failed after {verdict:?}");
}

#[test]
fn a_service_that_accepts_and_closes_is_not_reported_as_nothing_listening() {
    let case = release("accept-close", SHORT_DEADLINE, "tcp = [8080]", "");
    case.assert_failed_with(&[
        "accepted then closed at once by the service itself",
        "it listens on 0.0.0.0:8080",
        "listening on 0.0.0.0:8080",
    ]);
    let stderr = case.stderr();
    assert!(!stderr.contains("nothing listens"), "{stderr}");
    let verdict = case.time_to_verdict();
    case.print("accept-close");
    assert!(verdict >= SHORT_DEADLINE, "{verdict:?}");
}

#[test]
fn a_service_that_never_listens_is_waited_for_then_shown_alive_with_its_logs() {
    let case = release("never", SHORT_DEADLINE, "tcp = [8080]", "");
    case.assert_failed_with(&[
        "not ready within 4s",
        "nothing listens on any TCP port in the container (expected port 8080)",
        // The process state, from /proc/<pid>/stat on this host.
        "its main process `",
        "is sleeping (S)",
        // The last log lines.
        "connecting to the database at db:5432",
    ]);
    let verdict = case.time_to_verdict();
    case.print("never listens");
    assert!(verdict >= SHORT_DEADLINE, "{verdict:?}");
}

/// `unshare` in a PID namespace of its own with its own `/proc`: the engine's pids mean nothing
/// there, as for an engine on another host, in a VM or behind another PID namespace.
fn other_pid_namespace() -> Vec<&'static str> {
    support::require_tool(
        "unshare",
        "install util-linux; the test runs as root (CI does), to make a PID namespace",
    );
    vec!["unshare", "--pid", "--fork", "--mount-proc"]
}

#[test]
fn where_this_hosts_proc_is_not_the_containers_the_sockets_are_read_inside_it() {
    let base = support::busybox_image();
    let case = release_with(
        "loopback",
        DEADLINE,
        "tcp = [8080]",
        &delayed(),
        &base,
        &other_pid_namespace(),
    );
    case.assert_failed_with(&[
        "binds loopback inside the container",
        "bind 0.0.0.0:8080 (or [::]:8080)",
        "(`cat /proc/net/tcp /proc/net/tcp6` in the container): 127.0.0.1:8080",
    ]);
    let verdict = case.time_to_verdict();
    case.print("loopback, sockets read by exec");
    assert!(
        verdict >= Duration::from_millis(BIND_DELAY_MS),
        "{verdict:?}"
    );
    assert!(verdict < DEADLINE / 2, "failed after {verdict:?}");
}

#[test]
fn when_no_way_reads_the_sockets_the_message_says_so_and_names_the_logged_address() {
    // Scratch: no `cat` to exec; another PID namespace: no /proc of the container here.
    let case = release_with(
        "loopback",
        SHORT_DEADLINE,
        "tcp = [8080]",
        "",
        "scratch",
        &other_pid_namespace(),
    );
    case.assert_failed_with(&[
        "not ready within 4s",
        "cannot read the container's sockets",
        "the engine runs elsewhere or in another PID namespace",
        "the image has no `cat`",
        // Not a guess from the sockets, but the service's own words.
        "its log names a loopback address, 127.0.0.1:8080 (`listening on 127.0.0.1:8080`)",
        "bind 0.0.0.0:8080 (or [::]:8080)",
    ]);
    let verdict = case.time_to_verdict();
    case.print("loopback, sockets unreadable");
    assert!(verdict >= SHORT_DEADLINE, "{verdict:?}");
}
