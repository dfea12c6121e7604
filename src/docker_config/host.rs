//! Where the engine is, as the docker CLI reads it: `DOCKER_HOST`, `DOCKER_TLS_VERIFY`,
//! `DOCKER_CERT_PATH` (and, through [`super::context`], the current context), and where an
//! engine at that address publishes the test containers' ports.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The docker CLI's default on Linux.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

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
            // (`crate::checks::forward`) and reaches them on this host's.
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
}
