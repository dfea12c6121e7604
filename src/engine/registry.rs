//! A small client of a registry's HTTP API (distribution v2): the tags of a repository and the
//! manifest (digest and config digest) a tag names.
//!
//! It speaks plain HTTP/1.1 over a tokio `TcpStream`, so it serves loopback registries
//! (`localhost`, `127.0.0.0/8`, `[::1]`), which the engine also reaches over plain HTTP. HTTPS
//! registries are read through the engine instead (see [`crate::steps::push`]). Authentication is
//! HTTP Basic with the Docker config's credentials (htpasswd registries); bearer-token realms are
//! not spoken here.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::credentials::Credentials;
use crate::error::{Error, Result};

/// How long one request to the registry may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The manifest media types asked for (Docker v2 and OCI, single images and indexes).
const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.oci.image.index.v1+json";

/// What the registry says about a tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestInfo {
    /// The manifest digest (`Docker-Content-Digest`).
    pub digest: String,
    /// `config.digest` of the manifest: the local image ID of the image pushed (none for an index).
    pub config_digest: Option<String>,
}

/// A plain-HTTP client of one loopback registry.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    host: String,
    authorization: Option<String>,
}

/// Whether `host` (`name[:port]`) is a loopback registry, reached over plain HTTP.
pub fn is_loopback(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => host.rsplit_once(':').map_or(host, |(n, _)| n),
    };
    name == "localhost"
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

struct Response {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl RegistryClient {
    /// A client of `host` when it is a loopback registry; `None` otherwise.
    pub fn for_host(host: &str, credentials: Option<&Credentials>) -> Option<Self> {
        is_loopback(host).then(|| RegistryClient {
            host: host.to_owned(),
            authorization: credentials
                .filter(|c| c.identity_token.is_none())
                .map(Credentials::basic_header),
        })
    }

    /// The registry host this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The tags of `repository` (its path inside the registry); empty when it does not exist.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let path = format!("/v2/{repository}/tags/list?n=10000");
        let resp = self.get(&path, &[]).await?;
        match resp.status {
            200 => {}
            404 => return Ok(Vec::new()),
            _ => return Err(self.refused(&resp, &format!("listing the tags of `{repository}`"))),
        }
        let json: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| {
            Error::step(
                "push",
                format!(
                    "registry {} answered tags/list with no JSON: {e}",
                    self.host
                ),
            )
        })?;
        Ok(json["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The manifest `repository:reference` names, or `None` when there is no such tag.
    pub async fn manifest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<ManifestInfo>> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let resp = self.get(&path, &[("Accept", ACCEPT)]).await?;
        match resp.status {
            200 => {}
            404 => return Ok(None),
            _ => {
                return Err(self.refused(
                    &resp,
                    &format!("reading the manifest of `{repository}:{reference}`"),
                ));
            }
        }
        let json: serde_json::Value = serde_json::from_slice(&resp.body).unwrap_or_default();
        let digest = resp
            .headers
            .get("docker-content-digest")
            .cloned()
            .unwrap_or_default();
        Ok(Some(ManifestInfo {
            digest,
            config_digest: json["config"]["digest"].as_str().map(str::to_owned),
        }))
    }

    fn refused(&self, resp: &Response, what: &str) -> Error {
        let body = String::from_utf8_lossy(&resp.body);
        let body = body.trim();
        if resp.status == 401 || resp.status == 403 {
            Error::step_with_help(
                "push",
                format!(
                    "registry {} refused {what} (HTTP {}): {}",
                    self.host,
                    resp.status,
                    if self.authorization.is_some() {
                        "the credentials from the Docker config were not accepted"
                    } else {
                        "no credentials for it in the Docker config"
                    }
                ),
                format!(
                    "run `docker login {}` (or set DOCKER_CONFIG to a config with its credentials)",
                    self.host
                ),
            )
        } else {
            Error::step(
                "push",
                format!(
                    "registry {} answered HTTP {} when {what}: {body}",
                    self.host, resp.status
                ),
            )
        }
    }

    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        let unreachable = |why: String| {
            Error::step_with_help(
                "push",
                format!("registry {} is unreachable: {why}", self.host),
                format!(
                    "start the registry or check the image name; `curl http://{}/v2/` should answer",
                    self.host
                ),
            )
        };
        let request = async {
            let mut stream = TcpStream::connect(&self.host).await?;
            let mut req = format!(
                "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: cargo-docker-release\r\n",
                self.host
            );
            if let Some(auth) = &self.authorization {
                req.push_str(&format!("Authorization: {auth}\r\n"));
            }
            for (k, v) in headers {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            req.push_str("\r\n");
            stream.write_all(req.as_bytes()).await?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await?;
            parse_response(&raw)
        };
        match tokio::time::timeout(TIMEOUT, request).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable(format!(
                "no answer within {}s",
                TIMEOUT.as_secs()
            ))),
        }
    }
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let bad = |why: &str| std::io::Error::other(format!("bad HTTP response: {why}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .get("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        body = dechunk(&body).ok_or_else(|| bad("broken chunked body"))?;
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        raw = &raw[end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_plain_http() {
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.1.2.3:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("ghcr.io"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(RegistryClient::for_host("ghcr.io", None).is_none());
    }

    #[test]
    fn responses_parse_with_and_without_chunks() {
        let plain = b"HTTP/1.1 200 OK\r\nDocker-Content-Digest: sha256:ab\r\n\r\n{\"a\":1}";
        let r = parse_response(plain).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["docker-content-digest"], "sha256:ab");
        assert_eq!(r.body, b"{\"a\":1}");
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let r = parse_response(chunked).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, b"abcde".as_slice()));
    }

    #[tokio::test]
    async fn a_closed_port_is_an_unreachable_registry() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = RegistryClient::for_host(&format!("127.0.0.1:{port}"), None).unwrap();
        let err = client.tags("acme/app").await.unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("unreachable"), "{err}");
    }
}
