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
pub mod images;
pub mod info;
pub mod progress;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::{API_DEFAULT_VERSION, Docker};

use crate::docker_config::host::{DEFAULT_HOST, Endpoint, Published, endpoint_from};
use crate::error::{Error, Result, innermost};

/// Seconds any single request may wait for the engine's answer to begin (a build's answer starts
/// once the context is received). Streamed answers (build output, exec output, pushes) have no
/// wall-clock deadline: [`Engine::supervised`] notices an engine that stops answering instead.
const REQUEST_TIMEOUT_SECS: u64 = 120;
/// How long the first ping may take before the engine counts as unreachable.
const PING_TIMEOUT: Duration = Duration::from_secs(15);

/// A connection to the Docker engine, checked to answer.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    host: String,
    published: Published,
    /// `[user@]host[:port]` of an ssh engine, whose published ports are forwarded.
    ssh: Option<String>,
}

impl Endpoint {
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
        } else if let Some((name, endpoint)) = crate::docker_config::context::current_context(env)?
        {
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
