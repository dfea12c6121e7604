//! A client on another host than the engine: the release runs in a network namespace of its own
//! (`ip netns`, a veth pair), reaching the engine over TCP at the host side of the pair
//! (`DOCKER_HOST=tcp://10.231.N.1:PORT`, through tests/testsuite/support/proxy.rs). Its loopback is not the
//! engine's, so the test stage must reach the container where the engine publishes it: the
//! engine host's address, which `SERVICE_HOST`/`SERVICE_ADDR` name. Only the pair's two
//! addresses and loopback are ever targets.

use std::path::Path;
use std::process::Command;

use crate::support;

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
        OtherHost::new_named("t")
    }

    /// `kind` tells apart the namespaces of tests that run at once (one letter).
    fn new_named(kind: &str) -> OtherHost {
        let n = std::process::id() % 250 + 1;
        let second = u32::from(kind == "s");
        let ns = format!("cdr-{kind}-{n}");
        let (host_if, ns_if) = (format!("cdrh{kind}{n}"), format!("cdrn{kind}{n}"));
        let (engine_ip, client_ip) = (
            format!("10.{}.{n}.1", 231 + second),
            format!("10.{}.{n}.2", 231 + second),
        );
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

/// An OpenSSH server on `addr:port` that lets in one generated key as this user, and a directory
/// whose `ssh` adds the client config (key, known hosts) to every ssh call, so that nothing of
/// the machine's own ssh setup is used or changed. Stopped when dropped.
struct Sshd {
    child: std::process::Child,
    dir: tempfile::TempDir,
}

impl Sshd {
    fn start(addr: &str) -> Sshd {
        let sshd = "/usr/sbin/sshd";
        assert!(
            Path::new(sshd).exists(),
            "this test needs sshd: apt-get install openssh-server (see .ci/install)"
        );
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "client_key"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(d.join(key))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::copy(d.join("client_key.pub"), d.join("authorized_keys")).unwrap();
        let port = std::net::TcpListener::bind((addr, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress {addr}\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\nPidFile {d}/sshd.pid\nAllowTcpForwarding yes\nPermitRootLogin prohibit-password\n",
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::write(
            d.join("ssh_config"),
            format!(
                "Host cdr-test-engine\n  HostName {addr}\n  Port {port}\nHost *\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  StrictHostKeyChecking no\n  BatchMode yes\n",
                d = d.display()
            ),
        )
        .unwrap();
        std::fs::create_dir(d.join("bin")).unwrap();
        let wrapper = d.join("bin/ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {}/ssh_config \"$@\"\n",
                d.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let child = Command::new(sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect((addr, port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "sshd did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Sshd { child, dir }
    }

    /// `PATH` with the configured `ssh` first.
    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_client_on_another_host_releases_through_an_ssh_engine_with_forwarded_ports() {
    let other = OtherHost::new_named("s");
    let sshd = Sshd::start(&other.engine_ip);
    let user = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    // The ssh config names the engine host's address and port (`Host cdr-test-engine`).
    let docker_host = format!("ssh://{}@cdr-test-engine", user.trim());
    // The engine publishes on its host's loopback, which the namespace cannot reach: readiness
    // and the HTTP probe pass only through the forwarded ports, on the client's loopback.
    let fx = Fixture::new(
        "ssh",
        None,
        "0.1.0",
        "[[package.metadata.docker.test.host]]\ncmd = [\"sh\", \"-c\", \"echo $SERVICE_ADDR\"]\nstdout = [\"127.0.0.1:\"]\n\n[[package.metadata.docker.test.http]]\npath = \"/\"\nport = 8080\nstatus = 200\n",
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &other.ns])
        .arg(env!("CARGO_BIN_EXE_cargo-docker-release"))
        .arg("docker-release")
        .arg("--manifest-path")
        .arg(fx.path().join("Cargo.toml"))
        .args(["--message-format", "json"])
        .current_dir(fx.path())
        .env("DOCKER_HOST", &docker_host)
        .env("PATH", sshd.path())
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
