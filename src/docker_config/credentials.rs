//! Registry credentials from the Docker config, found the way the docker CLI finds them.
//!
//! The config is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. For a registry host
//! the CLI looks at `credHelpers[host]` first, then `credsStore`, then `auths[host].auth`
//! (base64 `user:password`). A helper is `docker-credential-<name> get` with the server address on
//! stdin and `{"Username": …, "Secret": …}` on stdout; the user name `<token>` means the secret is
//! an identity token.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde::Deserialize;

use crate::error::{Error, Result};

/// Docker Hub's server address as credential stores know it.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// Credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name (empty with an identity token).
    pub username: String,
    /// Password or secret.
    pub password: String,
    /// An identity (refresh) token instead of a password.
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    /// The form bollard sends in `X-Registry-Auth`.
    pub fn for_engine(&self, host: &str) -> bollard::auth::DockerCredentials {
        bollard::auth::DockerCredentials {
            username: (!self.username.is_empty()).then(|| self.username.clone()),
            password: (!self.password.is_empty()).then(|| self.password.clone()),
            identitytoken: self.identity_token.clone(),
            serveraddress: Some(server_address(host)),
            ..Default::default()
        }
    }

    /// `Basic base64(user:password)` for a registry's HTTP API.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The registry host of an image name: its first component when that looks like a host
/// (`127.0.0.1:5000/acme/app`, `ghcr.io/acme/app`, `localhost/app`), else Docker Hub (`docker.io`).
/// Docker Hub's other names (`index.docker.io`, `registry-1.docker.io`) are `docker.io`.
pub fn registry_host(image: &str) -> &str {
    match image.split_once('/') {
        Some(("index.docker.io" | "registry-1.docker.io", _)) => "docker.io",
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

/// The repository path inside its registry: `127.0.0.1:5000/acme/app` -> `acme/app`,
/// `app` -> `library/app` (Docker Hub's official images).
pub fn repository_path(image: &str) -> String {
    let host = registry_host(image);
    let named = image.split_once('/').map_or("", |(first, _)| first);
    let rest = match image.split_once('/') {
        Some((_, rest)) if named == host || (host == "docker.io" && named.contains('.')) => rest,
        _ => image,
    };
    if host == "docker.io" && !rest.contains('/') {
        format!("library/{rest}")
    } else {
        rest.to_owned()
    }
}

/// The server address credential stores and `auths` use for `host`.
pub fn server_address(host: &str) -> String {
    if host == "docker.io" {
        DOCKER_HUB_SERVER.to_owned()
    } else {
        host.to_owned()
    }
}

/// `https://registry.example.com/v1/` -> `registry.example.com` (how `auths` keys are matched).
fn normalize_key(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        other => other.to_owned(),
    }
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

/// The parts of a Docker `config.json` that hold credentials.
#[derive(Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(skip)]
    path: Option<PathBuf>,
}

/// Where the CLI reads its config: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path(get: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let get = |k: &str| get(k).filter(|v| !v.is_empty());
    if let Some(dir) = get("DOCKER_CONFIG") {
        return Some(Path::new(&dir).join("config.json"));
    }
    get("HOME").map(|h| Path::new(&h).join(".docker").join("config.json"))
}

impl DockerConfig {
    /// The config the docker CLI would read; an empty one when there is no file.
    pub fn load() -> Result<Self> {
        match config_path(|k| std::env::var(k).ok()) {
            Some(path) => Self::load_from(&path),
            None => Ok(Self::default()),
        }
    }

    /// Reads `path`; an empty config when it does not exist.
    pub fn load_from(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io(format!("reading `{}`", path.display()), e)),
        };
        let mut config = Self::parse(&text).map_err(|e| {
            Error::usage(
                format!("`{}` is not a valid Docker config: {e}", path.display()),
                Some("fix the file, or run `docker login` to rewrite it".to_owned()),
            )
        })?;
        config.path = Some(path.to_owned());
        Ok(config)
    }

    /// Parses the text of a `config.json`.
    pub fn parse(text: &str) -> std::result::Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The credentials for registry `host` (as [`registry_host`] gives it), if any.
    pub fn credentials(&self, host: &str) -> Result<Option<Credentials>> {
        let helper = self
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_key(k) == host)
            .map(|(_, v)| v)
            .or(self.creds_store.as_ref())
            .filter(|h| !h.is_empty());
        if let Some(helper) = helper
            && let Some(found) = run_helper(
                &format!("docker-credential-{helper}"),
                &server_address(host),
            )?
        {
            return Ok(Some(found));
        }
        let Some(entry) = self
            .auths
            .iter()
            .find(|(k, _)| normalize_key(k) == host)
            .map(|(_, v)| v)
        else {
            return Ok(None);
        };
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad =
                || {
                    Error::usage(
                        format!(
                            "the `auth` of `{host}` in {} is not base64 `user:password`",
                            self.path.as_deref().map_or(
                                "the Docker config".to_owned(),
                                |p| format!("`{}`", p.display())
                            )
                        ),
                        Some(format!("run `docker login {host}` again")),
                    )
                };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad())?;
            let text = String::from_utf8(raw).map_err(|_| bad())?;
            let (user, password) = text.split_once(':').ok_or_else(bad)?;
            return Ok(Some(Credentials {
                username: user.to_owned(),
                password: password.to_owned(),
                identity_token: entry.identity_token.clone(),
            }));
        }
        if entry.username.is_some() || entry.identity_token.is_some() {
            return Ok(Some(Credentials {
                username: entry.username.clone().unwrap_or_default(),
                password: entry.password.clone().unwrap_or_default(),
                identity_token: entry.identity_token.clone(),
            }));
        }
        Ok(None)
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `program get` with `server` on stdin. `None` when the helper has no credentials for it.
pub fn run_helper(program: &str, server: &str) -> Result<Option<Credentials>> {
    let failed = |why: String| {
        Error::step_with_help(
            "push",
            format!("credential helper `{program}` {why}"),
            format!("check the helper, or run `docker login {server}`"),
        )
    };
    let mut child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("could not be run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| failed(format!("did not read its input: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("did not finish: {e}")))?;
    if !out.status.success() {
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        if said.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(failed(format!("failed: {}", said.trim())));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|e| failed(format!("answered something that is not its JSON: {e}")))?;
    Ok(Some(if answer.username == "<token>" {
        Credentials {
            username: String::new(),
            password: String::new(),
            identity_token: Some(answer.secret),
        }
    } else {
        Credentials {
            username: answer.username,
            password: answer.secret,
            identity_token: None,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_paths_follow_docker_reference_rules() {
        assert_eq!(registry_host("127.0.0.1:5000/acme/app"), "127.0.0.1:5000");
        assert_eq!(registry_host("ghcr.io/acme/app"), "ghcr.io");
        assert_eq!(registry_host("localhost/app"), "localhost");
        assert_eq!(registry_host("acme/app"), "docker.io");
        assert_eq!(registry_host("app"), "docker.io");
        assert_eq!(repository_path("127.0.0.1:5000/acme/app"), "acme/app");
        assert_eq!(repository_path("app"), "library/app");
        assert_eq!(repository_path("acme/app"), "acme/app");
        assert_eq!(registry_host("docker.io/acme/app"), "docker.io");
        assert_eq!(repository_path("docker.io/acme/app"), "acme/app");
        assert_eq!(registry_host("index.docker.io/app"), "docker.io");
        assert_eq!(repository_path("index.docker.io/app"), "library/app");
        assert_eq!(repository_path("registry-1.docker.io/acme/app"), "acme/app");
        assert_eq!(registry_host("localhost:5000/app"), "localhost:5000");
        assert_eq!(repository_path("localhost/app"), "app");
        assert_eq!(server_address("docker.io"), DOCKER_HUB_SERVER);
    }

    #[test]
    fn auths_decode_base64_user_and_password() {
        let config = DockerConfig::parse(
            r#"{"auths": {"127.0.0.1:5000": {"auth": "YWxpY2U6czNjcjN0OmV4dHJh"},
                          "https://index.docker.io/v1/": {"auth": "Ym9iOnB3"}}}"#,
        )
        .unwrap();
        let alice = config.credentials("127.0.0.1:5000").unwrap().unwrap();
        assert_eq!(alice.username, "alice");
        assert_eq!(alice.password, "s3cr3t:extra");
        let bob = config.credentials("docker.io").unwrap().unwrap();
        assert_eq!(
            (bob.username.as_str(), bob.password.as_str()),
            ("bob", "pw")
        );
        assert_eq!(config.credentials("ghcr.io").unwrap(), None);
        assert_eq!(
            alice.basic_header(),
            "Basic YWxpY2U6czNjcjN0OmV4dHJh",
            "the Basic header is the same base64"
        );
    }

    #[test]
    fn a_broken_auth_is_a_usage_error_naming_docker_login() {
        let config = DockerConfig::parse(r#"{"auths": {"r.io": {"auth": "!!"}}}"#).unwrap();
        let err = config.credentials("r.io").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(format!("{err:?}").contains("docker login r.io"), "{err:?}");
    }

    #[test]
    fn config_path_prefers_docker_config() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(
            config_path(env(&[("DOCKER_CONFIG", "/cfg"), ("HOME", "/home/u")])),
            Some(PathBuf::from("/cfg/config.json"))
        );
        assert_eq!(
            config_path(env(&[("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.docker/config.json"))
        );
        assert_eq!(config_path(env(&[])), None);
    }

    #[test]
    fn a_missing_config_file_means_no_credentials() {
        let config = DockerConfig::load_from(Path::new("/nonexistent/cdr/config.json")).unwrap();
        assert_eq!(config.credentials("127.0.0.1:5000").unwrap(), None);
    }

    /// A credential helper script that answers for `r.example` and knows nothing else.
    fn helper_script(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("docker-credential-fake");
        std::fs::write(
            &path,
            "#!/bin/sh\nread server\ncase \"$server\" in\n  r.example) echo '{\"ServerURL\":\"r.example\",\"Username\":\"carol\",\"Secret\":\"pw\"}' ;;\n  t.example) echo '{\"Username\":\"<token>\",\"Secret\":\"tok\"}' ;;\n  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn helpers_answer_on_stdout_and_not_found_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let helper = helper_script(dir.path());
        let helper = helper.to_str().unwrap();
        let carol = run_helper(helper, "r.example").unwrap().unwrap();
        assert_eq!(
            (carol.username.as_str(), carol.password.as_str()),
            ("carol", "pw")
        );
        let token = run_helper(helper, "t.example").unwrap().unwrap();
        assert_eq!(token.identity_token.as_deref(), Some("tok"));
        assert_eq!(run_helper(helper, "other.example").unwrap(), None);
        let missing = run_helper("/nonexistent/docker-credential-x", "r.example").unwrap_err();
        assert!(
            missing.to_string().contains("could not be run"),
            "{missing}"
        );
    }
}
