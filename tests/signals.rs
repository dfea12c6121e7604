//! SIGINT, SIGTERM and SIGHUP take one path, in the build stage and in the test stage: the built
//! binary, started in a process group of its own as a CI runner starts it, gets the signal (it
//! alone, not its children); afterwards no child process is left (cargo, a build script, a host
//! check and its background job), no test container, no tag, and the exit code is `128 + signal`.
//! A second signal exits at once.
//!
//! Every process the release starts inherits a marker variable, so that any survivor is found in
//! `/proc` whatever its parent became.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod support;

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

/// The release in its own process group with the marker in its environment.
fn spawn(fx: &Fixture, token: &str) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
        .arg("docker-release")
        .arg("--manifest-path")
        .arg(fx.path().join("Cargo.toml"))
        .current_dir(fx.path())
        .env("CI", "1")
        .env(MARK, token)
        .env_remove("RUSTFLAGS")
        .env("CARGO_TARGET_DIR", fx.path().join("target"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("the built binary starts")
}

/// Reads `child`'s stderr on a thread; the lines so far are in the returned buffer.
fn collect_stderr(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

fn wait_for(what: &str, log: &std::sync::Mutex<Vec<String>>, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}:\n{}",
            log.lock().unwrap().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn send(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Containers (running or not) labelled as the fixture package's.
fn containers_of_package(fx: &Fixture) -> usize {
    let label = format!("io.cargo-docker-release.package={}", fx.package);
    block_on(async {
        let filters = HashMap::from([("label".to_owned(), vec![label])]);
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

/// Waits for the interrupted release and checks what it left: nothing.
fn assert_clean_exit(
    fx: &Fixture,
    mut child: Child,
    signal: (&str, i32),
    token: &str,
    log: &std::sync::Mutex<Vec<String>>,
) {
    let sent = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if sent.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!(
                "still running 15s after {}:\n{}",
                signal.0,
                log.lock().unwrap().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = sent.elapsed();
    eprintln!(
        "{}: exit {:?} {took:?} after the signal",
        signal.0,
        status.code()
    );
    // The pipe closes when the process ends; give the reader a moment to take the last lines.
    std::thread::sleep(Duration::from_millis(100));
    let text = log.lock().unwrap().join("\n");
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
        containers_of_package(fx),
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
        let mut child = spawn(&fx, &token);
        let log = collect_stderr(&mut child);
        wait_for("the build script", &log, || {
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
        let mut child = spawn(&fx, &token);
        let log = collect_stderr(&mut child);
        wait_for("the host check", &log, || {
            marked(&token)
                .iter()
                .filter(|(_, cmd)| cmd.starts_with("sleep 120"))
                .count()
                == 2
        });
        assert_eq!(containers_of_package(&fx), 1, "the test container runs");
        send(child.id(), signal.0);
        let (name, n) = full(signal);
        assert_clean_exit(&fx, child, (&name, n), &token, &log);
    }

    // A second signal exits at once, killing the check's process group; the container it could
    // not wait to remove is removed by the next run.
    let token = unique();
    let mut child = spawn(&fx, &token);
    let log = collect_stderr(&mut child);
    wait_for("the host check", &log, || {
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
        cargo_docker_release::steps::test::remove_leftovers(&engine().await)
            .await
            .unwrap()
    });
    assert_eq!(
        containers_of_package(&fx),
        0,
        "the next run removes the leftover"
    );
}
