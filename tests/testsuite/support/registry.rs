//! Real registries for the tests: Debian's `docker-registry` (the CNCF distribution registry)
//! with filesystem storage in a temp dir, as users have them:
//! - on a loopback port over plain HTTP, optionally with htpasswd (bcrypt) Basic auth;
//! - over TLS under the test host name [`TEST_HOST`] (mapped to 127.0.0.1 in `/etc/hosts` while
//!   a test uses it), with a CA and server certificate the test generates (`openssl`), the CA
//!   trusted as the engine trusts it (`/etc/docker/certs.d/<host:port>/ca.crt`), and either
//!   htpasswd Basic auth or `auth: token` behind [`TokenServer`], which checks Basic credentials
//!   (or an identity token) and issues real RS256 JWTs with an `x5c` header; the registry verifies
//!   every token itself through `rootcertbundle`. Anonymous requests get pull-only tokens.
//!
//! - over TLS under [`TEST_HOST`] with one certificate made by Docker's documented self-signed
//!   recipe (`openssl req -newkey rsa:4096 -nodes -sha256 -keyout domain.key -addext
//!   "subjectAltName = DNS:host" -x509 -days 365 -out domain.crt`), served by the registry and
//!   that same file trusted as `certs.d/<host:port>/ca.crt` ([`Registry::start_self_signed`]).
//!
//! Everything is undone on drop: the registry and token server stop, the certs.d directory and
//! (when no other test needs it) the `/etc/hosts` line go.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

use super::engine::{block_on, engine};
use super::{
    Endpoint, FileLock, HttpResponse, base64, free_port, require_tool, run_ok, send, unique,
};

/// Where Debian installs the registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// The host name TLS registries are served under (mapped to 127.0.0.1 while in use).
pub const TEST_HOST: &str = "cdr-registry.test";

/// Where the engine reads registry CAs.
pub const CERTS_D: &str = "/etc/docker/certs.d";

/// The token service's name for the registry, and the tokens' issuer.
const SERVICE: &str = "cdr-test-registry";
const ISSUER: &str = "cdr-test-issuer";

/// How a registry authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Anyone may push.
    None,
    /// htpasswd (bcrypt) Basic auth for one user.
    Basic(String, String),
    /// `auth: token` behind the suite's token server, which knows one user.
    Token(String, String),
}

/// A running registry, killed on drop.
pub struct Registry {
    /// `host:port` as in image names (`127.0.0.1:PORT` or `cdr-registry.test:PORT`).
    pub addr: String,
    /// `user:password` when authentication is on.
    pub credentials: Option<(String, String)>,
    child: Child,
    dir: TempDir,
    port: u16,
    tls: Option<Pki>,
    token_server: Option<TokenServer>,
    _trust: Option<CaTrust>,
    _host: Option<HostMapping>,
}

impl Registry {
    /// The registry process's id, e.g. for a test that takes the registry down mid-release.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A loopback registry over plain HTTP without authentication.
    pub fn start() -> Self {
        Self::start_inner(Auth::None, false, false)
    }

    /// A loopback registry over plain HTTP that requires `user`/`password` (htpasswd).
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::start_inner(Auth::Basic(user.into(), password.into()), false, false)
    }

    /// A registry over TLS at `cdr-registry.test:PORT`, its CA trusted in
    /// `/etc/docker/certs.d/<host:port>/ca.crt`.
    pub fn start_tls(auth: Auth) -> Self {
        Self::start_inner(auth, true, true)
    }

    /// Like [`Self::start_tls`] but nobody trusts its CA.
    pub fn start_tls_untrusted(auth: Auth) -> Self {
        Self::start_inner(auth, true, false)
    }

    /// A registry over TLS at `cdr-registry.test:PORT` serving a certificate made by Docker's
    /// self-signed recipe; with `trusted`, that certificate is
    /// `/etc/docker/certs.d/<host:port>/ca.crt`, as Docker's documentation says to install it.
    pub fn start_self_signed(auth: Auth, trusted: bool) -> Self {
        Self::start_with(auth, Tls::SelfSigned, trusted)
    }

    fn start_inner(auth: Auth, tls: bool, trust: bool) -> Self {
        Self::start_with(auth, if tls { Tls::Ca } else { Tls::Plain }, trust)
    }

    fn start_with(auth: Auth, kind: Tls, trust: bool) -> Self {
        let tls = kind != Tls::Plain;
        let bin = require_tool(
            REGISTRY_BIN,
            "install the registry with `apt-get install docker-registry`",
        );
        let dir = tempfile::Builder::new()
            .prefix("cdr-registry-")
            .tempdir()
            .expect("temp dir");
        let pki = match kind {
            Tls::Plain => None,
            Tls::Ca => Some(Pki::generate(dir.path())),
            Tls::SelfSigned => Some(Pki::docker_self_signed(dir.path())),
        };
        let host_mapping = tls.then(HostMapping::acquire);
        let mut token_server = None;
        let (auth_config, credentials) = match &auth {
            Auth::None => (String::new(), None),
            Auth::Basic(user, password) => {
                require_tool(
                    "htpasswd",
                    "install it with `apt-get install apache2-utils`",
                );
                let htpasswd = dir.path().join("htpasswd");
                let line = run_ok("htpasswd", &["-nbB", user, password]);
                fs::write(&htpasswd, format!("{line}\n")).expect("write htpasswd");
                (
                    format!(
                        "auth:\n  htpasswd:\n    realm: cdr-test\n    path: {}\n",
                        htpasswd.display()
                    ),
                    Some((user.clone(), password.clone())),
                )
            }
            Auth::Token(user, password) => {
                let pki = pki.as_ref().expect("token auth is served over TLS");
                let server = TokenServer::start(pki, user, password);
                let config = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    server.realm,
                    pki.token_cert.display()
                );
                token_server = Some(server);
                (config, Some((user.clone(), password.clone())))
            }
        };
        let tls_config = match &pki {
            Some(p) => format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                p.server_cert.display(),
                p.server_key.display()
            ),
            None => String::new(),
        };
        // The port is free when we look; another process may take it before the registry
        // binds, so retry a few times.
        for _ in 0..5 {
            let port = free_port();
            let listen = format!("127.0.0.1:{port}");
            let addr = if tls {
                format!("{TEST_HOST}:{port}")
            } else {
                listen.clone()
            };
            let config = dir.path().join("config.yml");
            fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: warn\n  accesslog:\n    disabled: false\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: {listen}\n  secret: cdr-test-secret\n{tls_config}\
                     {auth_config}",
                    dir.path().join("data").display()
                ),
            )
            .expect("write registry config");
            let log = fs::File::create(dir.path().join("registry.log")).expect("registry log");
            let mut child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .spawn()
                .expect("start docker-registry");
            let ready = {
                let start = Instant::now();
                let mut ok = false;
                while start.elapsed() < Duration::from_secs(20) {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    if let Ok(resp) =
                        raw_request(port, &addr, pki.as_ref(), "GET", "/v2/", &[], &[])
                        && (resp.status == 200 || resp.status == 401)
                    {
                        ok = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
                ok
            };
            if ready {
                let trust =
                    trust.then(|| CaTrust::install(&addr, &pki.as_ref().expect("tls").ca_cert));
                let registry = Registry {
                    addr,
                    credentials,
                    child,
                    dir,
                    port,
                    tls: pki,
                    token_server,
                    _trust: trust,
                    _host: host_mapping,
                };
                if tls {
                    registry.wait_until_the_engine_resolves_it();
                }
                return registry;
            }
            let _ = child.kill();
            let _ = child.wait();
            let log = fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
            if !log.contains("address already in use") {
                panic!("docker-registry did not answer /v2/ on {listen}:\n{log}");
            }
        }
        panic!("docker-registry found no free port in 5 attempts")
    }

    /// `host:port/<repo>`: the image name to tag and push.
    pub fn image(&self, repo: &str) -> String {
        format!("{}/{repo}", self.addr)
    }

    /// The requests the registry answered so far, oldest first, as `METHOD /path STATUS`
    /// (from its access log), e.g. to show that a push sent nothing.
    pub fn access_log(&self) -> Vec<String> {
        let log = fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        log.lines()
            .filter_map(|line| {
                // `ip - user [time] "METHOD /path HTTP/1.1" STATUS SIZE "referer" "agent"`
                let (_, rest) = line.split_once('"')?;
                let (request, rest) = rest.split_once('"')?;
                let mut request = request.split_whitespace();
                let (method, path) = (request.next()?, request.next()?);
                request.next()?.starts_with("HTTP/").then_some(())?;
                let status = rest.split_whitespace().next()?;
                Some(format!("{method} {path} {status}"))
            })
            .collect()
    }

    /// The token server, for a token registry.
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token_server.as_ref()
    }

    /// The generated CA (PEM), for a TLS registry.
    pub fn ca_cert(&self) -> Option<&Path> {
        self.tls.as_ref().map(|p| p.ca_cert.as_path())
    }

    /// A Docker config directory (for `DOCKER_CONFIG`) whose `config.json` has this registry's
    /// credentials in `auths` (or no auths without authentication).
    pub fn docker_config(&self) -> PathBuf {
        match &self.credentials {
            Some((user, password)) => self.docker_config_with(user, password),
            None => {
                let dir = self.dir.path().join("docker-config");
                fs::create_dir_all(&dir).expect("docker config dir");
                fs::write(dir.join("config.json"), "{\"auths\": {}}\n").expect("docker config");
                dir
            }
        }
    }

    /// A Docker config directory with `user`/`password` for this registry (e.g. a wrong one).
    pub fn docker_config_with(&self, user: &str, password: &str) -> PathBuf {
        let dir = self.dir.path().join(format!(
            "docker-config-{}",
            base64(user.as_bytes()).trim_end_matches('=')
        ));
        fs::create_dir_all(&dir).expect("docker config dir");
        fs::write(
            dir.join("config.json"),
            format!(
                "{{\"auths\": {{\"{}\": {{\"auth\": \"{}\"}}}}}}\n",
                self.addr,
                base64(format!("{user}:{password}").as_bytes())
            ),
        )
        .expect("write docker config");
        dir
    }

    /// One request to the registry as it is (no credentials added).
    fn raw_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<HttpResponse> {
        raw_request(
            self.port,
            &self.addr,
            self.tls.as_ref(),
            method,
            path,
            headers,
            body,
        )
    }

    /// The `Authorization` the test itself uses: Basic, or a token it signs for the repository
    /// of `path` with every action.
    fn authorization(&self, path: &str) -> Option<String> {
        let (user, password) = self.credentials.as_ref()?;
        match &self.token_server {
            None => Some(format!(
                "Basic {}",
                base64(format!("{user}:{password}").as_bytes())
            )),
            Some(server) => {
                let rest = path.strip_prefix("/v2/").unwrap_or("");
                let repo = ["/tags/", "/manifests/", "/blobs/"]
                    .iter()
                    .find_map(|m| rest.find(m).map(|i| &rest[..i]))
                    .unwrap_or("");
                let access = if rest.starts_with("_catalog") {
                    vec![Access::new("registry", "catalog", &["*"])]
                } else {
                    vec![Access::new("repository", repo, &["pull", "push", "delete"])]
                };
                Some(format!("Bearer {}", server.sign("test-admin", &access)))
            }
        }
    }

    /// `METHOD path` against the registry with full access.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let auth = self.authorization(path);
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            all.push(("Authorization", a));
        }
        self.raw_request(method, path, &all, body)
            .unwrap_or_else(|e| panic!("{method} {path} on registry {}: {e}", self.addr))
    }

    /// `GET path` against the registry with full access.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        self.request("GET", path, headers, &[])
    }

    /// The tags of `repo` (sorted), empty when the repository does not exist.
    pub fn tags(&self, repo: &str) -> Vec<String> {
        let resp = self.get(&format!("/v2/{repo}/tags/list"), &[]);
        if resp.status == 404 {
            return Vec::new();
        }
        assert_eq!(resp.status, 200, "tags/list of {repo}: {}", resp.body);
        let json: serde_json::Value = serde_json::from_str(&resp.body).expect("tags/list is JSON");
        let mut tags: Vec<String> = json["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// The tags of `repo` a release names (sorted): without cosign's attachment tags
    /// (`sha256-<hex>.sig`, `.att`), which `tests/testsuite/supply_chain.rs` checks.
    pub fn release_tags(&self, repo: &str) -> Vec<String> {
        let attachment =
            |t: &String| t.starts_with("sha256-") && (t.ends_with(".sig") || t.ends_with(".att"));
        self.tags(repo)
            .into_iter()
            .filter(|t| !attachment(t))
            .collect()
    }

    fn manifest_response(&self, repo: &str, reference: &str) -> Option<HttpResponse> {
        let accept = "application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json, \
                      application/vnd.oci.image.manifest.v1+json, \
                      application/vnd.oci.image.index.v1+json";
        let resp = self.get(
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", accept)],
        );
        if resp.status == 404 {
            return None;
        }
        assert_eq!(
            resp.status, 200,
            "manifest {repo}:{reference}: {}",
            resp.body
        );
        Some(resp)
    }

    /// The manifest digest (`sha256:…`) of `repo:tag` as the registry serves it.
    pub fn manifest_digest(&self, repo: &str, tag: &str) -> Option<String> {
        self.manifest_response(repo, tag)?
            .header("docker-content-digest")
            .map(str::to_owned)
    }

    /// The manifest of `repo:tag` as JSON.
    pub fn manifest(&self, repo: &str, tag: &str) -> Option<serde_json::Value> {
        let resp = self.manifest_response(repo, tag)?;
        Some(serde_json::from_str(&resp.body).expect("manifest is JSON"))
    }

    /// The config digest of `repo:tag`: the local image ID (classic store) of what was pushed.
    pub fn config_digest(&self, repo: &str, tag: &str) -> Option<String> {
        let manifest = self.manifest(repo, tag)?;
        manifest["config"]["digest"].as_str().map(str::to_owned)
    }

    /// Uploads `blob` to `repo` (monolithic upload); returns its digest.
    pub fn put_blob(&self, repo: &str, blob: &[u8]) -> String {
        let digest = sha256(blob);
        let start = self.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[]);
        assert_eq!(start.status, 202, "blob upload start: {}", start.body);
        let location = start
            .header("location")
            .expect("upload location")
            .to_owned();
        let path = location
            .split_once("://")
            .map(|(_, rest)| &rest[rest.find('/').unwrap_or(rest.len())..])
            .unwrap_or(&location)
            .to_owned();
        let sep = if path.contains('?') { '&' } else { '?' };
        let done = self.request(
            "PUT",
            &format!("{path}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            blob,
        );
        assert_eq!(done.status, 201, "blob upload: {}", done.body);
        digest
    }

    /// Puts a tiny image manifest (an empty config with `labels`, no layers) under each of
    /// `tags` of `repo`: tags made cheaply, without the engine. Returns the manifest digest.
    pub fn put_tiny_image(&self, repo: &str, labels: &[(&str, &str)], tags: &[String]) -> String {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": labels},
            "rootfs": {"type": "layers", "diff_ids": []}
        })
        .to_string();
        let config_digest = self.put_blob(repo, config.as_bytes());
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": config.len(),
                "digest": config_digest
            },
            "layers": []
        })
        .to_string();
        for tag in tags {
            let resp = self.request(
                "PUT",
                &format!("/v2/{repo}/manifests/{tag}"),
                &[(
                    "Content-Type",
                    "application/vnd.docker.distribution.manifest.v2+json",
                )],
                manifest.as_bytes(),
            );
            assert_eq!(resp.status, 201, "manifest PUT {repo}:{tag}: {}", resp.body);
        }
        sha256(manifest.as_bytes())
    }

    /// Waits until the engine resolves [`TEST_HOST`] (Go's resolver re-reads `/etc/hosts` at
    /// most every 5 s, so a fresh mapping may take that long to reach it).
    fn wait_until_the_engine_resolves_it(&self) {
        let reference = format!("{}/cdr-probe/none:probe", self.addr);
        block_on(async {
            let engine = engine().await;
            let start = Instant::now();
            loop {
                let answer = engine
                    .docker()
                    .inspect_registry_image(&reference, None)
                    .await;
                let unresolved =
                    matches!(&answer, Err(e) if e.to_string().contains("no such host"));
                if !unresolved {
                    return;
                }
                assert!(
                    start.elapsed() < Duration::from_secs(15),
                    "the engine does not resolve {TEST_HOST} from /etc/hosts"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
    }
}

/// One request to the registry on 127.0.0.1:`port` (over TLS with `pki`, for [`TEST_HOST`]),
/// `Host: addr`; 10 s deadline.
fn raw_request(
    port: u16,
    addr: &str,
    pki: Option<&Pki>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let connect = format!("127.0.0.1:{port}");
    let endpoint = match pki {
        None => Endpoint::plain(&connect),
        Some(pki) => Endpoint::tls(&connect, addr, TEST_HOST, pki.client_config()),
    };
    send(
        &endpoint,
        method,
        path,
        headers,
        body,
        Duration::from_secs(10),
    )
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sha256:<hex>`.
pub fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = String::from("sha256:");
    for b in d.as_ref() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// How a registry serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    /// Plain HTTP on a loopback address.
    Plain,
    /// A server certificate signed by a test CA.
    Ca,
    /// One self-signed certificate (Docker's recipe).
    SelfSigned,
}

/// A CA, a server certificate for [`TEST_HOST`] and 127.0.0.1 signed by it, and a self-signed
/// token-signing certificate, all made by `openssl` in a registry's temp dir. For a self-signed
/// registry the "CA" is the server certificate itself.
struct Pki {
    ca_cert: PathBuf,
    self_signed: bool,
    server_cert: PathBuf,
    server_key: PathBuf,
    token_cert: PathBuf,
    token_key: PathBuf,
}

impl Pki {
    fn generate(dir: &Path) -> Self {
        require_tool("openssl", "install it with `apt-get install openssl`");
        let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cdr-test-ca",
            "-keyout",
            &p("ca.key"),
            "-out",
            &p("ca.pem"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={TEST_HOST}"),
            "-keyout",
            &p("server.key"),
            "-out",
            &p("server.csr"),
        ]);
        fs::write(
            dir.join("server.ext"),
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=serverAuth\nsubjectAltName=DNS:{TEST_HOST},IP:127.0.0.1\n"
            ),
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p("server.csr"),
            "-CA",
            &p("ca.pem"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("server.ext"),
            "-out",
            &p("server.pem"),
        ]);
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=cdr-test-token-signer",
            "-keyout",
            &p("token.key"),
            "-out",
            &p("token.pem"),
        ]);
        Pki {
            ca_cert: dir.join("ca.pem"),
            self_signed: false,
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            token_cert: dir.join("token.pem"),
            token_key: dir.join("token.key"),
        }
    }

    /// Docker's self-signed recipe, word for word but for the host name and `-subj` (the
    /// recipe asks for the subject interactively), plus the token-signing certificate.
    fn docker_self_signed(dir: &Path) -> Self {
        require_tool("openssl", "install it with `apt-get install openssl`");
        let p = |n: &str| dir.join(n).to_str().unwrap().to_owned();
        for (args, what) in [
            (
                vec![
                    "req".to_owned(),
                    "-newkey".into(),
                    "rsa:4096".into(),
                    "-nodes".into(),
                    "-sha256".into(),
                    "-keyout".into(),
                    p("domain.key"),
                    "-addext".into(),
                    format!("subjectAltName = DNS:{TEST_HOST}"),
                    "-x509".into(),
                    "-days".into(),
                    "365".into(),
                    "-out".into(),
                    p("domain.crt"),
                    "-subj".into(),
                    format!("/CN={TEST_HOST}"),
                ],
                "the registry certificate",
            ),
            (
                [
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=cdr-test-token-signer",
                    "-keyout",
                ]
                .iter()
                .map(|a| a.to_string())
                .chain([p("token.key"), "-out".into(), p("token.pem")])
                .collect(),
                "the token signer",
            ),
        ] {
            let out = Command::new("openssl")
                .args(&args)
                .stdin(Stdio::null())
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl for {what}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Pki {
            ca_cert: dir.join("domain.crt"),
            self_signed: true,
            server_cert: dir.join("domain.crt"),
            server_key: dir.join("domain.key"),
            token_cert: dir.join("token.pem"),
            token_key: dir.join("token.key"),
        }
    }

    /// A TLS client configuration trusting only the test CA (for a self-signed registry: exactly
    /// its certificate).
    fn client_config(&self) -> rustls::ClientConfig {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in rustls_pki_types::CertificateDer::pem_file_iter(&self.ca_cert).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        if self.self_signed {
            let pinned = rustls_pki_types::CertificateDer::from_pem_file(&self.ca_cert).unwrap();
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned { pinned, provider }))
                .with_no_client_auth()
        } else {
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls_pki_types::pem::PemObject;
        let chain: Vec<_> = rustls_pki_types::CertificateDer::pem_file_iter(&self.server_cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = rustls_pki_types::PrivateKeyDer::from_pem_file(&self.server_key).unwrap();
        Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
        )
    }
}

/// The test's own check of a self-signed registry: the server presents exactly this certificate
/// (and, as rustls checks, holds its key).
#[derive(Debug)]
struct Pinned {
    pinned: rustls_pki_types::CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        _intermediates: &[rustls_pki_types::CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not the pinned certificate".into()))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algs = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

// ---------------------------------------------------------------------------------------------
// The token server
// ---------------------------------------------------------------------------------------------

/// One entry of a token's `access` claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    kind: String,
    name: String,
    actions: Vec<String>,
}

impl Access {
    fn new(kind: &str, name: &str, actions: &[&str]) -> Self {
        Access {
            kind: kind.into(),
            name: name.into(),
            actions: actions.iter().map(|a| (*a).to_owned()).collect(),
        }
    }
}

/// A Distribution token server over TLS: `GET /token?service=…&scope=…` with Basic credentials
/// (or none: pull-only), and the OAuth2 `POST /token` with `grant_type=password` or
/// `refresh_token` (the identity token it knows). Answers RS256 JWTs with an `x5c` header.
pub struct TokenServer {
    /// `https://cdr-registry.test:PORT/token`.
    pub realm: String,
    /// The refresh (identity) token it accepts for its user.
    pub identity_token: String,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    signer: Arc<Signer>,
}

struct Signer {
    key: ring::signature::RsaKeyPair,
    x5c: String,
    user: String,
    password: String,
    identity_token: String,
}

impl Signer {
    fn sign(&self, subject: &str, access: &[Access]) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let access: Vec<serde_json::Value> = access
            .iter()
            .map(|a| serde_json::json!({"type": a.kind, "name": a.name, "actions": a.actions}))
            .collect();
        let claims = serde_json::json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": format!("{now}-{}", unique()),
            "access": access,
        });
        let signing_input = format!(
            "{}.{}",
            base64url(header.to_string().as_bytes()),
            base64url(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .expect("RS256 signing");
        format!("{signing_input}.{}", base64url(&signature))
    }
}

impl TokenServer {
    fn start(pki: &Pki, user: &str, password: &str) -> Self {
        use rustls_pki_types::pem::PemObject;
        let key_der = rustls_pki_types::PrivateKeyDer::from_pem_file(&pki.token_key).unwrap();
        let key = ring::signature::RsaKeyPair::from_pkcs8(key_der.secret_der())
            .expect("the token key is PKCS#8 RSA");
        let cert = rustls_pki_types::CertificateDer::from_pem_file(&pki.token_cert).unwrap();
        let signer = Arc::new(Signer {
            key,
            x5c: base64(&cert),
            user: user.into(),
            password: password.into(),
            identity_token: format!("refresh-{}", unique()),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the token server");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let config = pki.server_config();
        {
            let (signer, requests, stop) = (signer.clone(), requests.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((tcp, _)) => {
                            let (signer, requests, config) =
                                (signer.clone(), requests.clone(), config.clone());
                            std::thread::spawn(move || {
                                let _ = serve_token(tcp, config, &signer, &requests);
                            });
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            });
        }
        TokenServer {
            realm: format!("https://{TEST_HOST}:{port}/token"),
            identity_token: signer.identity_token.clone(),
            requests,
            stop,
            signer,
        }
    }

    /// How many token requests it answered (any outcome).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// A token for `subject` with `access`, signed as the server signs them.
    pub fn sign(&self, subject: &str, access: &[Access]) -> String {
        self.signer.sign(subject, access)
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_token(
    tcp: TcpStream,
    config: Arc<rustls::ServerConfig>,
    signer: &Signer,
    requests: &AtomicUsize,
) -> io::Result<()> {
    tcp.set_nonblocking(false)?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let conn = rustls::ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut tls);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    drop(reader);
    requests.fetch_add(1, Ordering::SeqCst);

    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("").to_owned();
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut params: Vec<(String, String)> = parse_form(query);
    if method == "POST" {
        params.extend(parse_form(&String::from_utf8_lossy(&body)));
    }
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());

    // Who is asking: Basic credentials, an OAuth2 password or refresh-token grant, or nobody.
    let basic = headers.get("authorization").and_then(|a| {
        let encoded = a.strip_prefix("Basic ")?;
        let decoded = decode_base64(encoded)?;
        let text = String::from_utf8(decoded).ok()?;
        let (u, p) = text.split_once(':')?;
        Some((u.to_owned(), p.to_owned()))
    });
    let identity: Result<Option<String>, ()> =
        match (method.as_str(), param("grant_type").as_deref()) {
            ("POST", Some("refresh_token")) => {
                if param("refresh_token").as_deref() == Some(signer.identity_token.as_str()) {
                    Ok(Some(signer.user.clone()))
                } else {
                    Err(())
                }
            }
            ("POST", Some("password")) => {
                if param("username").as_deref() == Some(signer.user.as_str())
                    && param("password").as_deref() == Some(signer.password.as_str())
                {
                    Ok(Some(signer.user.clone()))
                } else {
                    Err(())
                }
            }
            _ => match basic {
                Some((u, p)) if u == signer.user && p == signer.password => Ok(Some(u)),
                Some(_) => Err(()),
                None => Ok(None),
            },
        };
    let response = match identity {
        Err(()) => {
            let body = r#"{"details":"invalid credentials"}"#;
            format!(
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
        Ok(who) => {
            let access: Vec<Access> = params
                .iter()
                .filter(|(k, _)| k == "scope")
                .flat_map(|(_, v)| v.split(' ').map(str::to_owned).collect::<Vec<_>>())
                .filter_map(|scope| {
                    let mut it = scope.splitn(3, ':');
                    let (kind, name, actions) = (it.next()?, it.next()?, it.next()?);
                    let granted: Vec<&str> = actions
                        .split(',')
                        .filter(|a| who.is_some() || *a == "pull")
                        .collect();
                    Some(Access::new(kind, name, &granted))
                })
                .collect();
            let token = signer.sign(who.as_deref().unwrap_or(""), &access);
            let body = serde_json::json!({
                "token": token,
                "access_token": token,
                "expires_in": 300,
                "issued_at": chrono::Utc::now().to_rfc3339(),
            })
            .to_string();
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
        }
    };
    tls.write_all(response.as_bytes())?;
    tls.flush()?;
    tls.conn.send_close_notify();
    let _ = tls.flush();
    Ok(())
}

fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (b, _) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

// ---------------------------------------------------------------------------------------------
// /etc/hosts and /etc/docker/certs.d
// ---------------------------------------------------------------------------------------------

const HOSTS: &str = "/etc/hosts";
const HOSTS_LINE: &str = "127.0.0.1 cdr-registry.test # cargo-docker-release tests";

/// The `/etc/hosts` line mapping [`TEST_HOST`] to 127.0.0.1, shared by every test (of any
/// process) that holds one; the last one to go removes it. Users are recorded as `pid:nonce`
/// lines under the lock, so a crashed test's entry is dropped by the next user.
pub struct HostMapping {
    me: String,
}

fn users_file() -> PathBuf {
    std::env::temp_dir().join("cdr-test-hosts-users")
}

fn live_users() -> Vec<String> {
    fs::read_to_string(users_file())
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.split(':')
                .next()
                .and_then(|p| p.parse::<u32>().ok())
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists())
        })
        .map(str::to_owned)
        .collect()
}

impl HostMapping {
    fn acquire() -> Self {
        let _lock = FileLock::acquire("etc-hosts");
        let me = format!("{}:{}", std::process::id(), unique());
        let mut users = live_users();
        users.push(me.clone());
        fs::write(users_file(), users.join("\n") + "\n").expect("write the hosts users");
        let hosts = fs::read_to_string(HOSTS).expect("read /etc/hosts");
        if !hosts.lines().any(|l| l == HOSTS_LINE) {
            let mut text = hosts;
            if !text.ends_with('\n') && !text.is_empty() {
                text.push('\n');
            }
            text.push_str(HOSTS_LINE);
            text.push('\n');
            // Written in place: /etc/hosts is often a bind mount.
            fs::write(HOSTS, text).unwrap_or_else(|e| {
                panic!("cannot map {TEST_HOST} in /etc/hosts (the push tests run as root): {e}")
            });
        }
        HostMapping { me }
    }
}

impl Drop for HostMapping {
    fn drop(&mut self) {
        let _lock = FileLock::acquire("etc-hosts");
        let users: Vec<String> = live_users().into_iter().filter(|u| *u != self.me).collect();
        let _ = fs::write(users_file(), users.join("\n") + "\n");
        if users.is_empty() {
            if let Ok(hosts) = fs::read_to_string(HOSTS) {
                let kept: Vec<&str> = hosts.lines().filter(|l| *l != HOSTS_LINE).collect();
                let _ = fs::write(HOSTS, kept.join("\n") + "\n");
            }
            let _ = fs::remove_file(users_file());
        }
    }
}

/// A CA trusted as the engine trusts it, in `/etc/docker/certs.d/<host:port>/ca.crt`; removed on
/// drop (under the `certs-d` [`FileLock`]).
pub struct CaTrust {
    dir: PathBuf,
}

impl CaTrust {
    /// Installs `ca` as `/etc/docker/certs.d/<addr>/ca.crt`.
    pub fn install(addr: &str, ca: &Path) -> Self {
        let _lock = FileLock::acquire("certs-d");
        let dir = Path::new(CERTS_D).join(addr);
        fs::create_dir_all(&dir)
            .expect("create the certs.d directory (the push tests run as root)");
        fs::copy(ca, dir.join("ca.crt")).expect("install the test CA");
        CaTrust { dir }
    }
}

impl Drop for CaTrust {
    fn drop(&mut self) {
        let _lock = FileLock::acquire("certs-d");
        let _ = fs::remove_dir_all(&self.dir);
        // certs.d itself goes too when nothing else is in it (it may not have existed before).
        let _ = fs::remove_dir(CERTS_D);
    }
}
