//! The one client of registries' HTTP API (Distribution / OCI), used for every registry a release
//! reads: tags (with `Link` pagination), manifests by tag or digest (Docker v2 and OCI, images and
//! indexes, each checked against its digest), image configs (labels), and a manifest `PUT` that
//! copies a manifest under another tag without moving any layer; and the push of images the tool
//! assembled itself ([`upload`]): blobs (`HEAD`, cross-repository mount, monolithic or chunked
//! upload) and manifests given as bytes.
//!
//! [`RegistryClient::connect`] pings `/v2/` and keeps the challenge it answers; requests then
//! carry Basic credentials or a Bearer token for their scope ([`auth`]). Requests go through the
//! crate's one HTTP stack ([`crate::http`]) trusting what the engine trusts: the system roots plus
//! the host's `certs.d` directory ([`crate::docker_config::certs`]), or nothing verified for the
//! registries the engine treats as insecure ([`insecure`]). Images the engine built are pushed by
//! the engine, and this client checks them; images the tool assembled are pushed by this client.
//!
//! Every error names the registry and the step (`ping`, `token`, `list`, `manifest`, `config`,
//! `put`, `blob`, `mount`, `upload`), says what to do, and never holds a credential or token.

pub mod auth;
pub mod insecure;
pub mod referrers;
mod registries;
pub mod upload;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use serde::Deserialize;

use self::auth::{Challenge, TokenError, Tokens};
pub use self::insecure::InsecureRegistries;
pub use self::registries::{Registries, Target};
pub use self::upload::BlobPush;
use crate::docker_config::certs::{CERTS_D, CertsDir};
use crate::docker_config::credentials::Credentials;
use crate::error::{Error, Result};
use crate::http::tls::{self, TlsError, Trust};
use crate::http::{Client as Http, Response, USER_AGENT};

/// How long one request (connect, headers and body) to a registry may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Docker v2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker v2 manifest list.
pub const DOCKER_INDEX: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The manifest media types asked for.
const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.oci.image.index.v1+json";

/// Entries asked for per page of a list.
const PAGE: usize = 1000;

/// A manifest as the registry serves it, its digest checked against its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `sha256:…` of [`Self::bytes`].
    pub digest: String,
    /// The media type it was served as.
    pub media_type: String,
    /// The exact bytes (a `PUT` of them elsewhere keeps the digest).
    pub bytes: Bytes,
    /// `config.digest` of an image manifest: the image ID in the classic image store.
    pub config_digest: Option<String>,
    /// The manifests an index lists (none for an image manifest).
    pub children: Vec<ChildManifest>,
}

/// One entry of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildManifest {
    /// Its digest.
    pub digest: String,
    /// `os/architecture` when the index says it (`unknown/unknown` marks attestations).
    pub platform: Option<String>,
}

impl Manifest {
    /// Whether this is an index (manifest list).
    pub fn is_index(&self) -> bool {
        self.media_type == DOCKER_INDEX || self.media_type == OCI_INDEX
    }

    /// Parses `bytes` served as `media_type` (the header, else the body's `mediaType`).
    pub fn parse(bytes: Bytes, media_type: Option<&str>) -> std::result::Result<Self, String> {
        #[derive(Deserialize)]
        struct Descriptor {
            digest: String,
            #[serde(default)]
            platform: Option<Platform>,
        }
        #[derive(Deserialize)]
        struct Platform {
            #[serde(default)]
            os: String,
            #[serde(default)]
            architecture: String,
        }
        #[derive(Deserialize)]
        struct Body {
            #[serde(rename = "mediaType", default)]
            media_type: Option<String>,
            #[serde(default)]
            config: Option<Descriptor>,
            #[serde(default)]
            manifests: Vec<Descriptor>,
        }
        let body: Body =
            serde_json::from_slice(&bytes).map_err(|e| format!("not a manifest: {e}"))?;
        let media_type = media_type
            .map(|m| m.split(';').next().unwrap_or(m).trim().to_owned())
            .filter(|m| !m.is_empty() && m != "application/json")
            .or(body.media_type)
            .unwrap_or_else(|| {
                if body.manifests.is_empty() {
                    OCI_MANIFEST.to_owned()
                } else {
                    OCI_INDEX.to_owned()
                }
            });
        Ok(Manifest {
            digest: sha256_digest(&bytes),
            media_type,
            config_digest: body.config.map(|c| c.digest),
            children: body
                .manifests
                .into_iter()
                .map(|d| ChildManifest {
                    digest: d.digest,
                    platform: d.platform.map(|p| format!("{}/{}", p.os, p.architecture)),
                })
                .collect(),
            bytes,
        })
    }
}

/// The image config a manifest names: its digest and labels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    /// `sha256:…` of the config blob.
    pub digest: String,
    /// `config.Labels`.
    pub labels: BTreeMap<String, String>,
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = String::from("sha256:");
    for b in d.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A client of one registry host for the life of a release.
#[derive(Debug)]
pub struct RegistryClient {
    host: String,
    base: String,
    http: Http,
    credentials: Option<Credentials>,
    challenge: Challenge,
    tokens: Tokens,
    page: usize,
    read_actions: &'static str,
    chunk_size: usize,
}

/// The HTTP client of one registry host, with that host's TLS trust: the system roots and
/// `certs_d/<host>/` (its CAs and client certificate); with `insecure`, server certificates are
/// not verified (the engine's behaviour for insecure registries).
fn http_client(host: &str, insecure: bool, certs_d: &Path) -> Result<Http> {
    let files = CertsDir::for_host(certs_d, host)?;
    let dir = files.dir.display().to_string();
    let trust = Trust {
        extra_roots: files.cas,
        client: files.client,
        verify: !insecure,
    };
    let config = tls::client_config(trust).map_err(|e| match e {
        TlsError::Ca(e) => Error::usage(
            format!("a CA certificate in `{dir}` is not usable: {e}"),
            Some("put the registry's CA there as PEM (`ca.crt`)".to_owned()),
        ),
        TlsError::ClientCert(e) => Error::usage(
            format!("the client certificate in `{dir}` is not usable: {e}"),
            Some("`client.cert` and `client.key` must be a matching PEM pair".to_owned()),
        ),
        TlsError::Setup(e) => Error::step("push", format!("TLS setup for registry {host}: {e}")),
    })?;
    Ok(Http::https(config, TIMEOUT))
}

/// The API host of an image-name host: Docker Hub's API is `registry-1.docker.io`.
pub fn api_host(host: &str) -> &str {
    if host == "docker.io" {
        "registry-1.docker.io"
    } else {
        host
    }
}

impl RegistryClient {
    /// Pings `host`'s `/v2/` (HTTPS; for an insecure registry HTTPS without verification, then
    /// HTTP) and keeps its challenge; with Basic auth, checks the credentials there.
    pub async fn connect(
        host: &str,
        credentials: Option<Credentials>,
        insecure: &InsecureRegistries,
    ) -> Result<Self> {
        Self::connect_with(host, credentials, insecure, Path::new(CERTS_D)).await
    }

    /// [`Self::connect`] reading certificates from `certs_d` instead of `/etc/docker/certs.d`.
    pub async fn connect_with(
        host: &str,
        credentials: Option<Credentials>,
        insecure: &InsecureRegistries,
        certs_d: &Path,
    ) -> Result<Self> {
        let is_insecure = insecure.contains(host);
        let http = http_client(host, is_insecure, certs_d)?;
        let schemes: &[&str] = if is_insecure {
            &["https", "http"]
        } else {
            &["https"]
        };
        let mut last = String::new();
        for scheme in schemes {
            let base = format!("{scheme}://{}", api_host(host));
            let request = Request::get(format!("{base}/v2/"))
                .header("User-Agent", USER_AGENT)
                .body(Full::new(Bytes::new()))
                .expect("a valid ping request");
            let response = match http.send(request).await {
                Ok(r) => r,
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let challenge = match response.status.as_u16() {
                200 => Challenge::Open,
                401 => {
                    auth::challenge_of(response.header("www-authenticate")).ok_or_else(|| {
                        fail(
                            host,
                            "ping",
                            "`/v2/` answered 401 without a Basic or Bearer challenge".to_owned(),
                            "check that this is a Docker/OCI registry",
                        )
                    })?
                }
                other => {
                    return Err(fail(
                        host,
                        "ping",
                        format!("`{base}/v2/` answered HTTP {other}"),
                        "check the image name: is this host a Docker/OCI registry?",
                    ));
                }
            };
            let client = RegistryClient {
                host: host.to_owned(),
                base,
                http,
                credentials,
                challenge,
                tokens: Tokens::default(),
                page: PAGE,
                read_actions: "pull",
                chunk_size: upload::DEFAULT_CHUNK_SIZE,
            };
            if client.challenge == Challenge::Basic {
                client.check_basic().await?;
            }
            return Ok(client);
        }
        let help = if last.contains("self-signed") {
            format!(
                "the registry serves a self-signed certificate: trust it as the engine does, by copying that certificate to {CERTS_D}/{host}/ca.crt"
            )
        } else if last.contains("certificate") || last.contains("UnknownIssuer") {
            format!("trust the registry's CA as the engine does: put it in {CERTS_D}/{host}/ca.crt")
        } else {
            format!(
                "check the image name and that registry {host} is up; a private CA goes in {CERTS_D}/{host}/ca.crt"
            )
        };
        Err(fail(host, "ping", format!("unreachable: {last}"), &help))
    }

    /// Reads ask for `pull,push` tokens, as a client about to push does: one token per
    /// repository serves the whole release, and registries that hide a repository that does not
    /// exist yet from pull-only tokens (Docker Hub answers 401) answer 404 instead. A token
    /// service grants what the user may (pull-only for anonymous users).
    pub fn for_push(mut self) -> Self {
        self.read_actions = "pull,push";
        self
    }

    fn read_scope(&self, repository: &str) -> String {
        format!("repository:{repository}:{}", self.read_actions)
    }

    /// Asks for `n` entries per page of a list (the registry may send fewer).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page = n.max(1);
        self
    }

    /// The registry host (as in image names).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The base URL chosen at the ping (`https://host`, or `http://host` for an insecure one).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// What `/v2/` asked for.
    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    async fn check_basic(&self) -> Result<()> {
        let response = self
            .send(Method::GET, "/v2/", &[], Bytes::new(), "")
            .await?;
        match response.status.as_u16() {
            200 => Ok(()),
            401 | 403 => Err(self.refused("ping", "checking the credentials", &response)),
            other => Err(fail(
                &self.host,
                "ping",
                format!("`/v2/` answered HTTP {other} with credentials"),
                "check the registry",
            )),
        }
    }

    /// The `Authorization` value for `scope`, if any.
    async fn authorization(&self, scope: &str) -> Result<Option<String>> {
        match &self.challenge {
            Challenge::Open => Ok(None),
            Challenge::Basic => Ok(self.credentials.as_ref().map(Credentials::basic_header)),
            Challenge::Bearer { realm, service } => {
                if realm.starts_with("http://")
                    && self.base.starts_with("https://")
                    && self.credentials.is_some()
                {
                    return Err(fail(
                        &self.host,
                        "token",
                        format!(
                            "its token service {realm} is plain HTTP; the credentials are not sent there"
                        ),
                        "serve the token service over HTTPS, or declare the registry insecure in the engine",
                    ));
                }
                match self
                    .tokens
                    .get(
                        &self.http,
                        realm,
                        service.as_deref(),
                        scope,
                        self.credentials.as_ref(),
                    )
                    .await
                {
                    Ok(token) => Ok(Some(format!("Bearer {token}"))),
                    Err(TokenError::Refused(status)) => Err(fail(
                        &self.host,
                        "token",
                        format!(
                            "the token service {realm} refused {} for `{scope}` (HTTP {status})",
                            if self.credentials.is_some() {
                                "the credentials from the Docker config"
                            } else {
                                "anonymous access"
                            }
                        ),
                        &self.login_help(),
                    )),
                    Err(TokenError::Failed(why)) => Err(fail(
                        &self.host,
                        "token",
                        format!("no token from {realm}: {why}"),
                        "check that the token service is reachable",
                    )),
                }
            }
        }
    }

    fn login_help(&self) -> String {
        format!(
            "run `docker login {}` (or set DOCKER_CONFIG to a config with its credentials); check the token's scope",
            self.host
        )
    }

    /// One request with authentication for `scope`: a Bearer token the registry rejects is
    /// renewed once. Redirects of `GET`/`HEAD` (blob storage) are followed without the
    /// `Authorization` header when they leave the registry host.
    async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        scope: &str,
    ) -> Result<Response> {
        let mut renewed = false;
        loop {
            let authorization = self.authorization(scope).await?;
            let mut url = if path.starts_with("http://") || path.starts_with("https://") {
                path.to_owned()
            } else {
                format!("{}{path}", self.base)
            };
            let mut hops = 0;
            let response = loop {
                let same_host = url.starts_with(&format!("{}/", self.base));
                let mut b = Request::builder()
                    .method(method.clone())
                    .uri(&url)
                    .header("User-Agent", USER_AGENT);
                if same_host && let Some(a) = &authorization {
                    b = b.header("Authorization", a);
                }
                for (k, v) in headers {
                    b = b.header(*k, *v);
                }
                let request = b.body(Full::new(body.clone())).map_err(|e| {
                    fail(
                        &self.host,
                        "request",
                        format!("bad URL `{url}`: {e}"),
                        "check the image name",
                    )
                })?;
                let response = self.http.send(request).await.map_err(|e| {
                    fail(
                        &self.host,
                        "request",
                        format!("unreachable: {e}"),
                        &format!("check that registry {} is up and reachable", self.host),
                    )
                })?;
                let redirect = matches!(response.status.as_u16(), 301 | 302 | 303 | 307 | 308)
                    && (method == Method::GET || method == Method::HEAD);
                match response.header("location") {
                    Some(location) if redirect && hops < 5 => {
                        hops += 1;
                        url = if location.starts_with('/') {
                            format!("{}{location}", self.base)
                        } else {
                            location.to_owned()
                        };
                    }
                    _ => break response,
                }
            };
            if response.status == StatusCode::UNAUTHORIZED
                && !renewed
                && matches!(self.challenge, Challenge::Bearer { .. })
            {
                renewed = true;
                self.tokens.forget(scope).await;
                continue;
            }
            return Ok(response);
        }
    }

    fn refused(&self, step: &str, what: &str, response: &Response) -> Error {
        let said = registry_error_text(&String::from_utf8_lossy(&response.body));
        fail(
            &self.host,
            step,
            format!(
                "refused {what} (HTTP {}): {}{}",
                response.status.as_u16(),
                if self.credentials.is_some() {
                    "the credentials from the Docker config were not accepted"
                } else {
                    "no credentials for it in the Docker config"
                },
                said.map(|s| format!(" ({s})")).unwrap_or_default()
            ),
            &self.login_help(),
        )
    }

    fn unexpected(&self, step: &str, what: &str, response: &Response) -> Error {
        if matches!(response.status.as_u16(), 401 | 403) {
            return self.refused(step, what, response);
        }
        let said = registry_error_text(&String::from_utf8_lossy(&response.body));
        fail(
            &self.host,
            step,
            format!(
                "answered HTTP {} when {what}{}",
                response.status.as_u16(),
                said.map(|s| format!(": {s}")).unwrap_or_default()
            ),
            "check the registry's state and logs",
        )
    }

    /// Every tag of `repository` (its path inside the registry), following `Link` pages; empty
    /// when the repository does not exist.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let pages: Vec<Page> = self
            .pages(
                format!("/v2/{repository}/tags/list?n={}", self.page),
                &self.read_scope(repository),
                &format!("listing the tags of `{repository}`"),
            )
            .await?;
        Ok(pages
            .into_iter()
            .flat_map(|p| p.tags.unwrap_or_default())
            .collect())
    }

    /// Every repository of the registry (`/v2/_catalog`, following `Link` pages).
    pub async fn repositories(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            repositories: Vec<String>,
        }
        let pages: Vec<Page> = self
            .pages(
                format!("/v2/_catalog?n={}", self.page),
                "registry:catalog:*",
                "listing the catalog",
            )
            .await?;
        Ok(pages.into_iter().flat_map(|p| p.repositories).collect())
    }

    /// The JSON pages of a paginated list starting at `first`, following `Link: <…>; rel="next"`;
    /// none when the first page is a 404 (no such repository).
    async fn pages<T: serde::de::DeserializeOwned>(
        &self,
        first: String,
        scope: &str,
        what: &str,
    ) -> Result<Vec<T>> {
        let mut pages = Vec::new();
        let mut next = Some(first);
        while let Some(path) = next.take() {
            let response = self
                .send(Method::GET, &path, &[], Bytes::new(), scope)
                .await?;
            match response.status.as_u16() {
                200 => {}
                404 if pages.is_empty() => return Ok(pages),
                _ => return Err(self.unexpected("list", what, &response)),
            }
            let page: T = serde_json::from_slice(&response.body).map_err(|e| {
                fail(
                    &self.host,
                    "list",
                    format!("{what}: the answer is not JSON: {e}"),
                    "check the registry",
                )
            })?;
            pages.push(page);
            next = response.header("link").and_then(next_link);
        }
        Ok(pages)
    }

    /// The digest the registry serves for `repository:reference` (`HEAD`), or `None` when there
    /// is no such tag or digest.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let scope = self.read_scope(repository);
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(
                Method::HEAD,
                &path,
                &[("Accept", ACCEPT)],
                Bytes::new(),
                &scope,
            )
            .await?;
        match response.status.as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => {
                return Err(self.unexpected(
                    "manifest",
                    &format!("reading the digest of `{repository}:{reference}`"),
                    &response,
                ));
            }
        }
        match response.header("docker-content-digest") {
            Some(d) => Ok(Some(d.to_owned())),
            // Not every registry sends the header on HEAD: read the manifest itself.
            None => Ok(self
                .manifest(repository, reference)
                .await?
                .map(|m| m.digest)),
        }
    }

    /// The manifest `repository:reference` names, or `None` when there is none. Its bytes must
    /// hash to the digest asked for (a digest reference) and to the digest the registry names.
    pub async fn manifest(&self, repository: &str, reference: &str) -> Result<Option<Manifest>> {
        let scope = self.read_scope(repository);
        let path = format!("/v2/{repository}/manifests/{reference}");
        let what = format!("reading the manifest of `{repository}:{reference}`");
        let response = self
            .send(
                Method::GET,
                &path,
                &[("Accept", ACCEPT)],
                Bytes::new(),
                &scope,
            )
            .await?;
        match response.status.as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.unexpected("manifest", &what, &response)),
        }
        let manifest = Manifest::parse(response.body.clone(), response.header("content-type"))
            .map_err(|e| {
                fail(
                    &self.host,
                    "manifest",
                    format!("{what}: {e}"),
                    "check the registry",
                )
            })?;
        let named = response
            .header("docker-content-digest")
            .map(str::to_owned)
            .or_else(|| {
                reference
                    .starts_with("sha256:")
                    .then(|| reference.to_owned())
            });
        if let Some(named) = named
            && named.starts_with("sha256:")
            && named != manifest.digest
        {
            return Err(fail(
                &self.host,
                "manifest",
                format!(
                    "{what}: the registry names it {named} but its content is {}",
                    manifest.digest
                ),
                "the registry (or something between) altered the manifest; do not trust this tag",
            ));
        }
        Ok(Some(manifest))
    }

    /// The image config of `manifest` (for an index: of its first platform image, skipping
    /// attestations), with its labels; `None` when the registry does not have it.
    pub async fn image_config(
        &self,
        repository: &str,
        manifest: &Manifest,
    ) -> Result<Option<ImageConfig>> {
        let image = if manifest.is_index() {
            let Some(child) = manifest
                .children
                .iter()
                .find(|c| c.platform.as_deref() != Some("unknown/unknown"))
            else {
                return Ok(None);
            };
            match self.manifest(repository, &child.digest).await? {
                Some(m) => m,
                None => return Ok(None),
            }
        } else {
            manifest.clone()
        };
        let Some(config_digest) = image.config_digest.clone() else {
            return Ok(None);
        };
        let what = format!("reading the config {config_digest} of `{repository}`");
        let Some(body) = self
            .fetch_blob(repository, &config_digest, "config", &what)
            .await?
        else {
            return Ok(None);
        };
        #[derive(Deserialize)]
        struct Config {
            #[serde(default)]
            config: Option<Inner>,
        }
        #[derive(Deserialize)]
        struct Inner {
            #[serde(rename = "Labels", default)]
            labels: Option<BTreeMap<String, String>>,
        }
        let config: Config = serde_json::from_slice(&body).map_err(|e| {
            fail(
                &self.host,
                "config",
                format!("{what}: not an image config: {e}"),
                "check the registry",
            )
        })?;
        Ok(Some(ImageConfig {
            digest: config_digest,
            labels: config.config.and_then(|c| c.labels).unwrap_or_default(),
        }))
    }

    /// The manifest of `repository:reference` and its image config's labels, in one call.
    pub async fn labels(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<(Manifest, ImageConfig)>> {
        let Some(manifest) = self.manifest(repository, reference).await? else {
            return Ok(None);
        };
        let config = self
            .image_config(repository, &manifest)
            .await?
            .unwrap_or_default();
        Ok(Some((manifest, config)))
    }

    /// Puts `manifest` (already in `repository`, e.g. read by digest) under `tag`: the registry
    /// copies nothing but the manifest. Returns the digest the registry answers, which must be
    /// the manifest's.
    pub async fn put_manifest(
        &self,
        repository: &str,
        tag: &str,
        manifest: &Manifest,
    ) -> Result<String> {
        self.put_manifest_bytes(
            repository,
            tag,
            &manifest.media_type,
            manifest.bytes.clone(),
        )
        .await
    }
}

/// A registry error for `host` at `step`.
fn fail(host: &str, step: &str, message: String, help: &str) -> Error {
    Error::step_with_help("push", format!("registry {host} ({step}): {message}"), help)
}

/// The `code: message` pairs of a Distribution error body, short; `None` for anything else.
fn registry_error_text(body: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<One>,
    }
    #[derive(Deserialize)]
    struct One {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let errors: Errors = serde_json::from_str(body).ok()?;
    let text = errors
        .errors
        .iter()
        .map(|e| format!("{}: {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ");
    let text: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    (!text.is_empty()).then_some(text)
}

/// The target of a `Link: <…>; rel="next"` header.
pub fn next_link(value: &str) -> Option<String> {
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|p| {
            let p: String = p
                .chars()
                .filter(|c| !c.is_whitespace() && *c != '"')
                .collect();
            p.eq_ignore_ascii_case("rel=next")
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_name_the_next_page() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?n=2&last=b>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(
            next_link(r#"<https://r.example/v2/a/tags/list?last=b>; rel=next"#).as_deref(),
            Some("https://r.example/v2/a/tags/list?last=b")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn manifests_parse_as_images_or_indexes_with_their_digest() {
        let image = Bytes::from_static(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:c0"},"layers":[]}"#,
        );
        let m = Manifest::parse(image.clone(), None).unwrap();
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        assert_eq!(m.config_digest.as_deref(), Some("sha256:c0"));
        assert_eq!(m.digest, sha256_digest(&image));
        assert!(!m.is_index());
        let index = Bytes::from_static(
            br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:a1","platform":{"os":"linux","architecture":"amd64"}},{"digest":"sha256:a2","platform":{"os":"unknown","architecture":"unknown"}}]}"#,
        );
        let m = Manifest::parse(index, Some("application/vnd.oci.image.index.v1+json")).unwrap();
        assert!(m.is_index());
        assert_eq!(m.children[0].platform.as_deref(), Some("linux/amd64"));
        assert_eq!(m.config_digest, None);
        assert!(Manifest::parse(Bytes::from_static(b"<html>"), None).is_err());
    }

    #[test]
    fn digests_are_sha256_hex() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn registry_errors_are_short_and_single_line() {
        let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required\nsecond","detail":[{"Type":"repository"}]}]}"#;
        assert_eq!(
            registry_error_text(body).as_deref(),
            Some("UNAUTHORIZED: authentication requiredsecond")
        );
        assert_eq!(registry_error_text("plain"), None);
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
    }

    #[tokio::test]
    async fn a_closed_port_is_an_unreachable_registry_named_in_the_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let err = RegistryClient::connect(&host, None, &InsecureRegistries::default())
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let text = err.to_string();
        assert!(text.contains(&format!("registry {host} (ping)")), "{text}");
        assert!(text.contains("unreachable"), "{text}");
    }
}
