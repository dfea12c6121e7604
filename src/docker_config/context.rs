//! The docker CLI's current context (`docker context use NAME`, or `DOCKER_CONTEXT`), read from
//! the Docker config directory as the CLI stores it, for when `DOCKER_HOST` is unset:
//!
//! ```text
//! $DOCKER_CONFIG/config.json                                   {"currentContext": "NAME"}
//! $DOCKER_CONFIG/contexts/meta/<sha256(NAME)>/meta.json        {"Endpoints": {"docker": {"Host": …}}}
//! $DOCKER_CONFIG/contexts/tls/<sha256(NAME)>/docker/{ca,cert,key}.pem   (TLS, when present)
//! ```
//!
//! (`$DOCKER_CONFIG` defaults to `~/.docker`.)

use std::path::{Path, PathBuf};

use super::host::{Endpoint, endpoint_from};
use crate::error::{Error, Result};

/// The current context's name and endpoint; `None` for the `default` context (the CLI's own
/// `DOCKER_HOST`-or-socket rules apply then).
///
/// `get` is the environment lookup, so the rules are tested without touching the process env.
pub fn current_context(get: impl Fn(&str) -> Option<String>) -> Result<Option<(String, Endpoint)>> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    let Some(dir) = get("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| Path::new(&h).join(".docker")))
    else {
        return Ok(None);
    };
    let (name, from) = match get("DOCKER_CONTEXT") {
        Some(name) => (name, "DOCKER_CONTEXT".to_owned()),
        None => {
            let config = dir.join("config.json");
            let Ok(text) = std::fs::read_to_string(&config) else {
                return Ok(None);
            };
            let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                Error::usage(
                    format!("cannot read the Docker config {}: {e}", config.display()),
                    Some("fix or remove the file".to_owned()),
                )
            })?;
            match json["currentContext"].as_str().filter(|c| !c.is_empty()) {
                Some(name) => (name.to_owned(), config.display().to_string()),
                None => return Ok(None),
            }
        }
    };
    if name == "default" {
        return Ok(None);
    }
    let id = hex_sha256(&name);
    let meta = dir.join("contexts/meta").join(&id).join("meta.json");
    let missing = |why: String| {
        Error::usage(
            format!("the docker context `{name}` (from {from}) {why}"),
            Some("run `docker context ls`, or `docker context use default`".to_owned()),
        )
    };
    let text = std::fs::read_to_string(&meta)
        .map_err(|e| missing(format!("cannot be read at {}: {e}", meta.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| missing(format!("has an unreadable {}: {e}", meta.display())))?;
    let Some(host) = json["Endpoints"]["docker"]["Host"].as_str() else {
        return Err(missing("has no docker endpoint".to_owned()));
    };
    let endpoint = endpoint_from(|k| (k == "DOCKER_HOST").then(|| host.to_owned()))?;
    let tls = dir.join("contexts/tls").join(&id).join("docker");
    let endpoint = match endpoint {
        Endpoint::Tcp(addr) if tls.join("ca.pem").is_file() => Endpoint::Tls {
            addr,
            cert_path: tls,
        },
        other => other,
    };
    Ok(Some((name, endpoint)))
}

/// The CLI's context directory name: the SHA-256 of the context name, in hex.
fn hex_sha256(text: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_directories_are_named_by_the_sha256_of_the_name() {
        assert_eq!(
            hex_sha256("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn config_with_context(name: &str, host: &str, tls: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            format!("{{\"currentContext\": \"{name}\"}}"),
        )
        .unwrap();
        let meta = dir.path().join("contexts/meta").join(hex_sha256(name));
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(
                "{{\"Name\":\"{name}\",\"Endpoints\":{{\"docker\":{{\"Host\":\"{host}\",\"SkipTLSVerify\":false}}}}}}"
            ),
        )
        .unwrap();
        if tls {
            let certs = dir
                .path()
                .join("contexts/tls")
                .join(hex_sha256(name))
                .join("docker");
            std::fs::create_dir_all(&certs).unwrap();
            std::fs::write(certs.join("ca.pem"), "").unwrap();
        }
        dir
    }

    #[test]
    fn the_current_context_names_the_engine() {
        let dir = config_with_context("remote", "tcp://10.0.0.9:2375", false);
        let path = dir.path().to_str().unwrap().to_owned();
        let get = |k: &str| (k == "DOCKER_CONFIG").then(|| path.clone());
        assert_eq!(
            current_context(get).unwrap(),
            Some(("remote".into(), Endpoint::Tcp("10.0.0.9:2375".into())))
        );
        // DOCKER_CONTEXT wins over the config; `default` is the CLI's own rules.
        let get = |k: &str| match k {
            "DOCKER_CONFIG" => Some(path.clone()),
            "DOCKER_CONTEXT" => Some("default".into()),
            _ => None,
        };
        assert_eq!(current_context(get).unwrap(), None);
        let get = |k: &str| match k {
            "DOCKER_CONFIG" => Some(path.clone()),
            "DOCKER_CONTEXT" => Some("gone".into()),
            _ => None,
        };
        let e = current_context(get).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().contains("`gone` (from DOCKER_CONTEXT)"),
            "{e}"
        );
    }

    #[test]
    fn a_context_with_certificates_is_tls() {
        let dir = config_with_context("secure", "tcp://build:2376", true);
        let path = dir.path().to_str().unwrap().to_owned();
        let (_, endpoint) = current_context(|k: &str| (k == "DOCKER_CONFIG").then(|| path.clone()))
            .unwrap()
            .unwrap();
        assert_eq!(
            endpoint,
            Endpoint::Tls {
                addr: "build:2376".into(),
                cert_path: dir
                    .path()
                    .join("contexts/tls")
                    .join(hex_sha256("secure"))
                    .join("docker"),
            }
        );
    }
}
