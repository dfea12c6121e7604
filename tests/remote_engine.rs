//! A client on another host than the engine: the release runs in a network namespace of its own
//! (`ip netns`, a veth pair), reaching the engine over TCP at the host side of the pair
//! (`DOCKER_HOST=tcp://10.231.N.1:PORT`, through tests/support/proxy.rs). Its loopback is not the
//! engine's, so the test stage must reach the container where the engine publishes it: the
//! engine host's address, which `SERVICE_HOST`/`SERVICE_ADDR` name. Only the pair's two
//! addresses and loopback are ever targets.

use std::process::Command;

mod support;

use support::proxy::EngineProxy;
use support::service::*;

/// A network namespace joined to this host by a veth pair; removed when dropped.
struct OtherHost {
    ns: String,
    host_if: String,
    /// This host's address on the pair.
    engine_ip: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl OtherHost {
    fn new() -> OtherHost {
        let n = std::process::id() % 250 + 1;
        let ns = format!("cdr-test-{n}");
        let (host_if, ns_if) = (format!("cdrh{n}"), format!("cdrn{n}"));
        let (engine_ip, client_ip) = (format!("10.231.{n}.1"), format!("10.231.{n}.2"));
        // A namespace left by a killed run of the same PID would make `add` fail.
        let _ = Command::new("ip").args(["netns", "del", &ns]).output();
        let _ = Command::new("ip").args(["link", "del", &host_if]).output();
        ip(&["netns", "add", &ns]);
        let other = OtherHost {
            ns: ns.clone(),
            host_if: host_if.clone(),
            engine_ip: engine_ip.clone(),
        };
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &ns]);
        ip(&["addr", "add", &format!("{engine_ip}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        let in_ns = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &ns, "ip"];
            all.extend_from_slice(args);
            ip(&all);
        };
        in_ns(&["addr", "add", &format!("{client_ip}/30"), "dev", &ns_if]);
        in_ns(&["link", "set", &ns_if, "up"]);
        in_ns(&["link", "set", "lo", "up"]);
        other
    }
}

impl Drop for OtherHost {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .output();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).output();
    }
}

#[test]
fn a_client_on_another_host_releases_through_a_tcp_engine() {
    let other = OtherHost::new();
    let proxy = EngineProxy::start_on(&format!("{}:0", other.engine_ip));
    let engine_ip = other.engine_ip.clone();
    // The host check proves what the environment says; the HTTP probe and readiness prove the
    // container is reached there.
    let fx = Fixture::new(
        "remote",
        None,
        "0.1.0",
        &format!(
            "[[package.metadata.docker.test.host]]\ncmd = [\"sh\", \"-c\", \"echo $SERVICE_HOST $SERVICE_ADDR\"]\nstdout = [\"{engine_ip} {engine_ip}:\"]\n\n[[package.metadata.docker.test.http]]\npath = \"/\"\nport = 8080\nstatus = 200\n"
        ),
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &other.ns])
        .arg(env!("CARGO_BIN_EXE_cargo-docker-release"))
        .arg("docker-release")
        .arg("--manifest-path")
        .arg(fx.path().join("Cargo.toml"))
        .args(["--message-format", "json"])
        .current_dir(fx.path())
        .env("DOCKER_HOST", proxy.docker_host())
        .env("CI", "1")
        .env_remove("RUSTFLAGS")
        .env("CARGO_TARGET_DIR", fx.path().join("target"))
        .output()
        .unwrap();
    assert_success(&out);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["services"][0]["tests"]["checks"].as_array().unwrap();
    for kind in ["ready", "host", "http"] {
        assert!(
            checks
                .iter()
                .any(|c| c["kind"] == kind && c["passed"] == true),
            "a passed {kind} check: {checks:?}"
        );
    }
    assert!(fx.tags().contains_key("0.1.0"));
    assert_eq!(containers_of_package(&fx.package), 0);
}

#[test]
fn the_docker_cli_current_context_selects_the_engine_when_docker_host_is_unset() {
    let proxy = EngineProxy::start();
    let config = tempfile::tempdir().unwrap();
    let dir = config.path().to_str().unwrap();
    // The docker CLI writes the context in its own format; the tool reads it.
    support::docker_ok([
        "--config",
        dir,
        "context",
        "create",
        "cdr-test-remote",
        "--docker",
        &format!("host={}", proxy.docker_host()),
    ]);
    support::docker_ok(["--config", dir, "context", "use", "cdr-test-remote"]);
    let fx = Fixture::new("context", None, "0.1.0", "");
    let plan = |fx: &Fixture| {
        Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
            .args(["docker-release", "plan", "--manifest-path"])
            .arg(fx.path().join("Cargo.toml"))
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env("DOCKER_CONFIG", dir)
            .output()
            .unwrap()
    };
    let out = plan(&fx);
    assert_success(&out);
    assert!(
        !text(&out.stderr).contains("warning"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        proxy.connections() > 0,
        "the engine was reached through the context's host"
    );

    // The context's engine gone: the plan says which engine, and where it came from.
    proxy.cut();
    let out = plan(&fx);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "cannot reach the Docker engine at {}",
            proxy.docker_host()
        )) && stderr.contains("(docker context `cdr-test-remote`)"),
        "{stderr}"
    );
}
