//! The only code that talks to the Docker engine (bollard): build, run, exec, tag, push, inspect.
//!
//! [`Engine::connect`] finds the engine as the docker CLI does (`DOCKER_HOST`, TLS through
//! `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH`, else the CLI's current context), negotiates the API
//! version and pings before anything else happens. Every request has a timeout; long streamed
//! calls are watched by [`Engine::supervised`], and an engine that goes away is an error naming
//! it and the step ([`engine_fault`]). The image operations the release steps need are behind the narrow
//! [`images::ImageStore`] trait so that the steps can be tested with a recording fake as well as
//! against the real engine.

pub mod build;
pub mod container;
pub mod context;
pub mod credentials;
pub mod docker_context;
pub mod forward;
pub mod images;
pub mod info;
pub mod registry;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};

use crate::error::{Error, Result};

/// Seconds any single request may wait for the engine's answer to begin (a build's answer starts
/// once the context is received). Streamed answers (build output, exec output, pushes) have no
/// wall-clock deadline: [`Engine::supervised`] notices an engine that stops answering instead.
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// How long the first ping may take before the engine counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(15);
/// The docker CLI's default on Linux.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A connection to the Docker engine, checked to answer.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    host: String,
    published: Published,
    /// `[user@]host[:port]` of an ssh engine, whose published ports are forwarded.
    ssh: Option<String>,
}

/// Where the engine publishes test containers' ports and where this host reaches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The engine host's address the ports are bound to (`127.0.0.1` for a local engine; every
    /// address, `0.0.0.0`, for a remote one, which this host reaches from the outside).
    pub bind_ip: String,
    /// The address this host connects to: loopback for a local engine, the engine host's
    /// address (`DOCKER_HOST`'s host) for a remote one.
    pub host: String,
}

impl Endpoint {
    /// Where test containers are published, from where the engine is: a unix socket or a
    /// loopback address is this host; any other address is the engine host's, so ports are bound
    /// to all its addresses and reached at that one.
    pub fn published(&self) -> Published {
        let local = Published {
            bind_ip: "127.0.0.1".into(),
            host: "127.0.0.1".into(),
        };
        let addr = match self {
            // An ssh engine publishes on its own loopback; the test stage forwards the ports
            // (`crate::engine::forward`) and reaches them on this host's.
            Endpoint::Unix(_) | Endpoint::Ssh(_) => return local,
            Endpoint::Tcp(addr) | Endpoint::Tls { addr, .. } => addr,
        };
        let host = match addr.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => h,
            _ => addr.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if loopback {
            local
        } else {
            Published {
                bind_ip: "0.0.0.0".into(),
                host: host.to_owned(),
            }
        }
    }
}

/// Where the engine is and how to talk to it, from the environment (as the docker CLI reads it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket path.
    Unix(String),
    /// Plain HTTP over TCP, `host:port`.
    Tcp(String),
    /// SSH to the engine host, `[user@]host[:port]`: the engine's socket through `ssh` (the
    /// OpenSSH client and its config), and test ports reached through forwarded ports.
    Ssh(String),
    /// TCP with TLS: the address and the directory holding `ca.pem`, `cert.pem`, `key.pem`.
    Tls {
        /// `host:port`.
        addr: String,
        /// `DOCKER_CERT_PATH`, else `~/.docker`.
        cert_path: PathBuf,
    },
}

/// Reads `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` the way the docker CLI does.
///
/// `get` is the environment lookup, so the rules are tested without touching the process env.
pub fn endpoint_from(get: impl Fn(&str) -> Option<String>) -> Result<Endpoint> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    let host = get("DOCKER_HOST").unwrap_or_else(|| DEFAULT_HOST.to_owned());
    let tls = get("DOCKER_TLS_VERIFY").is_some();
    let bad = |why: &str| {
        Error::usage(
            format!("DOCKER_HOST `{host}` {why}"),
            Some(
                "use unix:///path/to/docker.sock, tcp://HOST:PORT (with DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH for TLS) or ssh://[USER@]HOST"
                    .to_owned(),
            ),
        )
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad("names no socket"));
        }
        return Ok(Endpoint::Unix(path.to_owned()));
    }
    if let Some(target) = host.strip_prefix("ssh://") {
        let target = target.trim_end_matches('/');
        if target.is_empty() || target.contains('/') {
            return Err(bad("names no ssh host (use ssh://[user@]host)"));
        }
        if target
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            // bollard hands the whole `host:port` to ssh as the host name.
            return Err(Error::usage(
                format!("DOCKER_HOST `{host}`: a port in an ssh:// engine address is not supported"),
                Some(
                    "name the port in your ssh config (`Host build` / `HostName …` / `Port …`) and use ssh://[user@]build"
                        .to_owned(),
                ),
            ));
        }
        return Ok(Endpoint::Ssh(target.to_owned()));
    }
    let addr = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
        .or_else(|| host.strip_prefix("https://"));
    let Some(addr) = addr else {
        return Err(bad("is not supported"));
    };
    let addr = addr.trim_end_matches('/');
    if addr.is_empty() {
        return Err(bad("names no address"));
    }
    // The CLI's default port: 2376 with TLS, 2375 without.
    let addr = if addr
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        addr.to_owned()
    } else if tls {
        format!("{addr}:2376")
    } else {
        format!("{addr}:2375")
    };
    if tls || host.starts_with("https://") {
        let cert_path = get("DOCKER_CERT_PATH")
            .map(PathBuf::from)
            .or_else(|| get("HOME").map(|h| Path::new(&h).join(".docker")))
            .unwrap_or_else(|| PathBuf::from(".docker"));
        return Ok(Endpoint::Tls { addr, cert_path });
    }
    Ok(Endpoint::Tcp(addr))
}

impl Endpoint {
    /// The address as people write it, for messages.
    pub fn display(&self) -> String {
        match self {
            Endpoint::Unix(p) => format!("unix://{p}"),
            Endpoint::Tcp(a) => format!("tcp://{a}"),
            Endpoint::Ssh(t) => format!("ssh://{t}"),
            Endpoint::Tls { addr, .. } => format!("tcp://{addr} (TLS)"),
        }
    }

    fn client(&self) -> Result<Docker> {
        let version = API_DEFAULT_VERSION;
        let refused = |e: bollard::errors::Error| {
            Error::usage(
                format!("cannot use the Docker engine at {}: {e}", self.display()),
                Some("check DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH".to_owned()),
            )
        };
        match self {
            Endpoint::Unix(path) => {
                Docker::connect_with_unix(path, REQUEST_TIMEOUT_SECS, version).map_err(refused)
            }
            Endpoint::Ssh(target) => Docker::connect_with_ssh(
                &format!("ssh://{target}"),
                REQUEST_TIMEOUT_SECS,
                version,
                None,
            )
            .map_err(refused),
            Endpoint::Tcp(addr) => {
                Docker::connect_with_http(addr, REQUEST_TIMEOUT_SECS, version).map_err(refused)
            }
            Endpoint::Tls { addr, cert_path } => {
                let file = |name: &str| -> Result<PathBuf> {
                    let p = cert_path.join(name);
                    if p.is_file() {
                        Ok(p)
                    } else {
                        Err(Error::usage(
                            format!(
                                "DOCKER_TLS_VERIFY is set but `{}` does not exist",
                                p.display()
                            ),
                            Some(
                                "point DOCKER_CERT_PATH at the directory holding ca.pem, cert.pem and key.pem"
                                    .to_owned(),
                            ),
                        ))
                    }
                };
                let (key, cert, ca) = (file("key.pem")?, file("cert.pem")?, file("ca.pem")?);
                Docker::connect_with_ssl(
                    &format!("https://{addr}"),
                    &key,
                    &cert,
                    &ca,
                    REQUEST_TIMEOUT_SECS,
                    version,
                )
                .map_err(refused)
            }
        }
    }
}

impl Engine {
    /// Connects as the docker CLI does (`DOCKER_HOST`, else the docker CLI's current context,
    /// else the local socket; TLS with `DOCKER_TLS_VERIFY`), negotiates the API version and pings, so that an unreachable engine is
    /// reported before anything else happens.
    pub async fn connect() -> Result<Engine> {
        let env = |k: &str| std::env::var(k).ok();
        let (endpoint, source) = if std::env::var_os("DOCKER_HOST").is_some_and(|h| !h.is_empty()) {
            (endpoint_from(env)?, "DOCKER_HOST".to_owned())
        } else if let Some((name, endpoint)) = docker_context::current_context(env)? {
            (endpoint, format!("docker context `{name}`"))
        } else {
            (endpoint_from(env)?, "the default".to_owned())
        };
        let engine = Self::connect_to(&endpoint).await.map_err(|e| match e {
            Error::Step {
                step,
                message,
                help,
            } => Error::Step {
                step,
                message: format!("{message} ({source})"),
                help,
            },
            other => other,
        })?;
        if let Ok(mut connected) = CONNECTED.write() {
            *connected = Some(format!("{} ({source})", engine.host));
        }
        Ok(engine)
    }

    /// Connects to `endpoint` and checks that the engine answers.
    pub async fn connect_to(endpoint: &Endpoint) -> Result<Engine> {
        let host = endpoint.display();
        let unreachable = |why: String| {
            Error::step_with_help(
                "engine",
                format!("cannot reach the Docker engine at {host}: {why}"),
                "start the Docker daemon, or point DOCKER_HOST at a running engine",
            )
        };
        let docker = match endpoint {
            // No socket file: the daemon is not running there.
            Endpoint::Unix(path) if !Path::new(path).exists() => {
                return Err(unreachable("no such socket".to_owned()));
            }
            _ => endpoint.client()?,
        };
        let ping = async {
            docker
                .ping()
                .await
                .map_err(|e| unreachable(innermost(&e)))?;
            docker
                .negotiate_version()
                .await
                .map_err(|e| unreachable(innermost(&e)))
        };
        let docker = tokio::time::timeout(PING_TIMEOUT, ping)
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", PING_TIMEOUT.as_secs())))??;
        if let Ok(mut connected) = CONNECTED.write() {
            *connected = Some(host.clone());
        }
        Ok(Engine {
            docker,
            host,
            published: endpoint.published(),
            ssh: match endpoint {
                Endpoint::Ssh(target) => Some(target.clone()),
                _ => None,
            },
        })
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Where the engine is, as people write it (`unix:///var/run/docker.sock`).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `[user@]host[:port]` when the engine is reached over ssh.
    pub fn ssh_target(&self) -> Option<&str> {
        self.ssh.as_deref()
    }

    /// Where test containers' ports are published and reached (see [`Endpoint::published`]).
    pub fn published(&self) -> &Published {
        &self.published
    }
}

/// What happened to the connection, in words: `closed the connection`, `did not answer within 60s`.
fn connection_why(e: &bollard::errors::Error) -> String {
    if matches!(e, bollard::errors::Error::RequestTimeoutError) {
        return format!("did not answer within {REQUEST_TIMEOUT_SECS}s");
    }
    let cause = innermost(e);
    let lower = cause.to_ascii_lowercase();
    if lower.contains("connection closed")
        || lower.contains("incomplete message")
        || lower.contains("unexpected eof")
        || lower.contains("reset by peer")
        || lower.contains("broken pipe")
    {
        format!("closed the connection ({cause})")
    } else {
        format!("cannot be reached ({cause})")
    }
}

/// The most specific cause of an error, on one line (hyper wraps the OS error several times).
pub(crate) fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    let last = parts.last().cloned().unwrap_or_default().replace('\n', " ");
    // "Connection refused (os error 111)" -> "connection refused"
    let last = match last.rfind(" (os error ") {
        Some(i) if last.ends_with(')') => last[..i].to_owned(),
        _ => last,
    };
    let mut chars = last.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => last,
    }
}

/// The engine this process talks to, as [`Engine::connect`] found it, for fault messages.
static CONNECTED: std::sync::RwLock<Option<String>> = std::sync::RwLock::new(None);

/// `tcp://10.0.0.5:2375 (DOCKER_HOST)`: the engine of this run, for messages.
pub fn connected_engine() -> String {
    CONNECTED
        .read()
        .ok()
        .and_then(|h| h.clone())
        .unwrap_or_else(|| format!("{DEFAULT_HOST} (the default)"))
}

/// Whether `e` is the engine's connection failing (closed, refused, reset, timed out) rather than
/// the engine answering with an error.
pub(crate) fn is_connection_fault(e: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as E;
    matches!(
        e,
        E::RequestTimeoutError
            | E::IOError { .. }
            | E::HyperResponseError { .. }
            | E::HyperLegacyError { .. }
            | E::SocketNotFoundError(_)
    )
}

/// The release step `step` failed because the engine went away: the error names the engine (and
/// where it came from) and the step, so a CI log says which host to look at.
pub fn engine_fault(step: &'static str, what: &str, why: &str) -> Error {
    let doing = if what.is_empty() {
        String::new()
    } else {
        format!(" while {}", what.trim_end_matches(':'))
    };
    Error::step_with_help(
        step,
        format!("the Docker engine at {} {why}{doing}", connected_engine()),
        "check that the engine is running and reachable from here (DOCKER_HOST, or the docker \
         context); nothing was tagged, and the next run removes what this one left",
    )
}

/// How often a long engine call checks that the engine still answers.
const WATCH_INTERVAL: Duration = Duration::from_secs(2);
/// How long such a check may wait for the engine's answer.
const WATCH_TIMEOUT: Duration = Duration::from_secs(5);

impl Engine {
    /// Resolves when the engine stops answering or closes the connection during step `step`
    /// (a ping every 2 s, each allowed 5 s): the idle timeout of
    /// long calls (builds, test stages, pushes), which have no wall-clock cap of their own.
    pub async fn stops_answering(&self, step: &'static str) -> Error {
        loop {
            tokio::time::sleep(WATCH_INTERVAL).await;
            match tokio::time::timeout(WATCH_TIMEOUT, self.docker.ping()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) if is_connection_fault(&e) => {
                    return engine_fault(step, "", &innermost(&e));
                }
                Ok(Err(_)) => {}
                Err(_) => {
                    return engine_fault(
                        step,
                        "",
                        &format!(
                            "stopped answering (no answer within {}s)",
                            WATCH_TIMEOUT.as_secs()
                        ),
                    );
                }
            }
        }
    }

    /// Runs `work`, step `step` of the release, failing it as soon as the engine stops answering.
    pub async fn supervised<T>(
        &self,
        step: &'static str,
        work: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        tokio::select! {
            r = work => r,
            e = self.stops_answering(step) => Err(e),
        }
    }
}

/// A bollard error from a request, as a failed step with one readable line; the connection
/// failing is an [`engine_fault`] naming the engine.
pub(crate) fn engine_error(step: &'static str, what: &str, e: bollard::errors::Error) -> Error {
    if is_connection_fault(&e) {
        return engine_fault(step, what, &connection_why(&e));
    }
    let why = match &e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => innermost(other),
    };
    Error::step(step, format!("{what}: {}", why.trim()))
}

/// Whether a bollard error is the engine's 404.
pub(crate) fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn no_docker_host_means_the_local_socket() {
        assert_eq!(
            endpoint_from(env(&[])).unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
        assert_eq!(
            endpoint_from(env(&[("DOCKER_HOST", "")])).unwrap(),
            Endpoint::Unix("/var/run/docker.sock".into())
        );
    }

    #[test]
    fn tcp_hosts_get_the_cli_default_ports() {
        assert_eq!(
            endpoint_from(env(&[("DOCKER_HOST", "tcp://10.0.0.5")])).unwrap(),
            Endpoint::Tcp("10.0.0.5:2375".into())
        );
        assert_eq!(
            endpoint_from(env(&[("DOCKER_HOST", "tcp://127.0.0.1:1")])).unwrap(),
            Endpoint::Tcp("127.0.0.1:1".into())
        );
    }

    #[test]
    fn tls_verify_selects_tls_with_the_cert_path() {
        let e = endpoint_from(env(&[
            ("DOCKER_HOST", "tcp://build.example:2376"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", "/certs"),
        ]))
        .unwrap();
        assert_eq!(
            e,
            Endpoint::Tls {
                addr: "build.example:2376".into(),
                cert_path: "/certs".into()
            }
        );
        let e = endpoint_from(env(&[
            ("DOCKER_HOST", "tcp://build.example"),
            ("DOCKER_TLS_VERIFY", "1"),
            ("HOME", "/home/u"),
        ]))
        .unwrap();
        assert_eq!(
            e,
            Endpoint::Tls {
                addr: "build.example:2376".into(),
                cert_path: "/home/u/.docker".into()
            }
        );
    }

    #[test]
    fn remote_engines_publish_where_this_host_reaches_them() {
        let local = Published {
            bind_ip: "127.0.0.1".into(),
            host: "127.0.0.1".into(),
        };
        assert_eq!(Endpoint::Unix("/run/docker.sock".into()).published(), local);
        assert_eq!(Endpoint::Tcp("127.0.0.1:2375".into()).published(), local);
        assert_eq!(Endpoint::Tcp("localhost:2375".into()).published(), local);
        assert_eq!(
            Endpoint::Tcp("10.0.0.5:2375".into()).published(),
            Published {
                bind_ip: "0.0.0.0".into(),
                host: "10.0.0.5".into()
            }
        );
        assert_eq!(
            Endpoint::Tls {
                addr: "build.example:2376".into(),
                cert_path: "/c".into()
            }
            .published()
            .host,
            "build.example"
        );
    }

    #[test]
    fn ssh_hosts_are_ssh_endpoints() {
        assert_eq!(
            endpoint_from(env(&[("DOCKER_HOST", "ssh://ci@build.example")])).unwrap(),
            Endpoint::Ssh("ci@build.example".into())
        );
        let e = endpoint_from(env(&[("DOCKER_HOST", "ssh://ci@build.example:2222")])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(endpoint_from(env(&[("DOCKER_HOST", "ssh://")])).is_err());
        let local = Endpoint::Ssh("build".into()).published();
        assert_eq!(local.host, "127.0.0.1", "reached through forwarded ports");
    }

    #[test]
    fn unsupported_schemes_are_usage_errors() {
        let e = endpoint_from(env(&[("DOCKER_HOST", "ftp://x")])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("ftp://x"), "{e}");
    }

    #[test]
    fn tls_without_certificates_names_the_missing_file() {
        let e = Endpoint::Tls {
            addr: "127.0.0.1:2376".into(),
            cert_path: "/nonexistent-certs".into(),
        }
        .client()
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent-certs/key.pem"), "{e}");
    }

    #[tokio::test]
    async fn a_missing_socket_is_an_unreachable_engine() {
        let e = Engine::connect_to(&Endpoint::Unix("/nonexistent/docker.sock".into()))
            .await
            .unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(e.to_string().contains("no such socket"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_engine_is_one_clear_line() {
        let e = Engine::connect_to(&Endpoint::Tcp("127.0.0.1:1".into()))
            .await
            .unwrap_err();
        let text = e.to_string();
        assert_eq!(e.exit_code(), 1);
        assert!(
            text.contains("cannot reach the Docker engine at tcp://127.0.0.1:1"),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
        assert!(text.ends_with("connection refused"), "{text}");
    }
}
