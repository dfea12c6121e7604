//! `[…docker.test]`: validation of each check at its TOML line, and the checks with defaults.

use std::time::Duration;

use super::layer::{StructureLayer, TestLayer};
use super::source::ManifestSource;
use super::validate::{duration, is_env_name, is_numeric_user};
use super::*;
use crate::error::Result;

pub(super) fn test_layer(src: &ManifestSource, at: &[String], test: &TestLayer) -> Result<()> {
    let path = |keys: &[&str]| -> Vec<String> {
        at.iter()
            .map(String::as_str)
            .chain(keys.iter().copied())
            .map(str::to_owned)
            .collect()
    };
    if let Some(t) = &test.timeout {
        duration(src, &path(&["timeout"]), t)?;
    }
    if let Some(ready) = &test.ready {
        if let Some(t) = &ready.timeout {
            duration(src, &path(&["ready", "timeout"]), t)?;
        }
        if let Some(pattern) = &ready.log
            && let Err(e) = regex::Regex::new(pattern)
        {
            return Err(src
                .error_at(
                    &path(&["ready", "log"]),
                    format!("invalid log pattern: {e}"),
                )
                .into());
        }
        if let Some(http) = &ready.http {
            if let Some(p) = &http.path
                && !p.starts_with('/')
            {
                return Err(src
                    .error_at(
                        &path(&["ready", "http", "path"]),
                        "HTTP path must start with `/`",
                    )
                    .into());
            }
            if let Some(s) = http.status
                && !(100..=599).contains(&s)
            {
                return Err(src
                    .error_at(
                        &path(&["ready", "http", "status"]),
                        format!("{s} is not an HTTP status"),
                    )
                    .into());
            }
        }
    }
    if let Some(structure) = &test.structure {
        test_structure(src, &path(&["structure"]), structure)?;
    }
    let program = |keys: Vec<String>, cmd: &[String]| -> Result<()> {
        if cmd.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(src
                .error_at(&keys, "`cmd` needs at least a program")
                .help("exec form, e.g. `cmd = [\"/usr/local/bin/app\", \"--version\"]`")
                .into());
        }
        Ok(())
    };
    for (i, exec) in test.exec.iter().flatten().enumerate() {
        let i = i.to_string();
        program(path(&["exec", &i, "cmd"]), &exec.cmd)?;
        if let Some(t) = &exec.timeout {
            duration(src, &path(&["exec", &i, "timeout"]), t)?;
        }
        if let Some(user) = &exec.user
            && !is_numeric_user(user)
        {
            return Err(src
                .error_at(
                    &path(&["exec", &i, "user"]),
                    format!("`user` must be numeric, got `{user}`"),
                )
                .help("use `uid` or `uid:gid`, e.g. `65532:65532`")
                .into());
        }
        for name in exec.env.iter().flat_map(|m| m.keys()) {
            if !is_env_name(name) {
                return Err(src
                    .error_at(
                        &path(&["exec", &i, "env", name]),
                        format!("invalid variable name `{name}`"),
                    )
                    .help("names are letters, digits and `_`, not starting with a digit")
                    .into());
            }
        }
    }
    for (i, cargo) in test.cargo.iter().flatten().enumerate() {
        let i = i.to_string();
        let name = &cargo.test;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(src
                .error_at(
                    &path(&["cargo", &i, "test"]),
                    format!("`{name}` is not a test target name"),
                )
                .help(
                    "name an integration test target, e.g. `test = \"smoke\"` for `tests/smoke.rs`",
                )
                .into());
        }
        if let Some(t) = &cargo.timeout {
            duration(src, &path(&["cargo", &i, "timeout"]), t)?;
        }
    }
    for (i, host) in test.host.iter().flatten().enumerate() {
        let i = i.to_string();
        program(path(&["host", &i, "cmd"]), &host.cmd)?;
        if let Some(t) = &host.timeout {
            duration(src, &path(&["host", &i, "timeout"]), t)?;
        }
    }
    for (i, probe) in test.http.iter().flatten().enumerate() {
        let i = i.to_string();
        if !probe.path.starts_with('/') {
            return Err(src
                .error_at(
                    &path(&["http", &i, "path"]),
                    "HTTP path must start with `/`",
                )
                .into());
        }
        if let Some(m) = &probe.method
            && (m.is_empty() || !m.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(src
                .error_at(
                    &path(&["http", &i, "method"]),
                    format!("`{m}` is not an HTTP method"),
                )
                .help("use an upper-case method such as `GET`, `POST` or `HEAD`")
                .into());
        }
        if let Some(s) = probe.status
            && !(100..=599).contains(&s)
        {
            return Err(src
                .error_at(
                    &path(&["http", &i, "status"]),
                    format!("{s} is not an HTTP status"),
                )
                .into());
        }
        if let Some(t) = &probe.timeout {
            duration(src, &path(&["http", &i, "timeout"]), t)?;
        }
    }
    if let Some(t) = test.shutdown.as_ref().and_then(|s| s.timeout.as_ref()) {
        duration(src, &path(&["shutdown", "timeout"]), t)?;
    }
    Ok(())
}

fn test_structure(src: &ManifestSource, at: &[String], s: &StructureLayer) -> Result<()> {
    let path = |keys: &[&str]| -> Vec<String> {
        at.iter()
            .map(String::as_str)
            .chain(keys.iter().copied())
            .map(str::to_owned)
            .collect()
    };
    if let Some(user) = &s.user
        && user != "non-root"
        && !is_numeric_user(user)
    {
        return Err(src
            .error_at(&path(&["user"]), format!("`user` must be `non-root` or numeric, got `{user}`"))
            .help("`user = \"non-root\"` accepts any uid but 0; `user = \"65532:65532\"` requires exactly that")
            .into());
    }
    if let Some(size) = &s.max_size
        && let Err(why) = parse_size(size)
    {
        return Err(src
            .error_at(
                &path(&["max-size"]),
                format!("invalid size `{size}`: {why}"),
            )
            .help("write sizes like `50MB`, `512MiB` or `1GB`")
            .into());
    }
    if let Some(ports) = &s.expose
        && let Some(i) = ports.iter().position(|p| *p == 0)
    {
        return Err(src
            .error_at(
                &path(&["expose", &i.to_string()]),
                "port 0 cannot be exposed",
            )
            .into());
    }
    for (i, file) in s.files.iter().flatten().enumerate() {
        let i = i.to_string();
        if !file.path.starts_with('/') {
            return Err(src
                .error_at(
                    &path(&["files", &i, "path"]),
                    "paths in the image must be absolute",
                )
                .into());
        }
        if let Some(mode) = &file.mode
            && parse_mode(mode).is_none()
        {
            return Err(src
                .error_at(
                    &path(&["files", &i, "mode"]),
                    format!("`{mode}` is not an octal mode"),
                )
                .help("write modes in octal, e.g. `\"0755\"`")
                .into());
        }
        if let Some(owner) = &file.owner
            && !is_numeric_user(owner)
        {
            return Err(src
                .error_at(
                    &path(&["files", &i, "owner"]),
                    format!("`owner` must be numeric, got `{owner}`"),
                )
                .help("use `uid` or `uid:gid`, e.g. `0:0`")
                .into());
        }
    }
    for (i, p) in s.absent.iter().flatten().enumerate() {
        if !p.starts_with('/') {
            return Err(src
                .error_at(
                    &path(&["absent", &i.to_string()]),
                    "paths in the image must be absolute",
                )
                .into());
        }
    }
    Ok(())
}

/// Parses an octal permission mode such as `0755`.
pub fn parse_mode(mode: &str) -> Option<u32> {
    let digits = mode.strip_prefix("0o").unwrap_or(mode);
    if digits.is_empty() || digits.len() > 5 {
        return None;
    }
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o7777)
}

/// Parses a size such as `50MB`, `512MiB` or `1000` (bytes).
pub fn parse_size(size: &str) -> std::result::Result<u64, String> {
    let size = size.trim();
    let split = size
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(size.len());
    let (number, unit) = size.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| "it does not start with a number".to_string())?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" | "k" => 1_000,
        "MB" | "M" => 1_000_000,
        "GB" | "G" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit `{other}`")),
    };
    Ok((number * factor as f64) as u64)
}

fn numeric_owner(owner: &str) -> (u64, Option<u64>) {
    let mut parts = owner.split(':');
    let uid = parts.next().and_then(|u| u.parse().ok()).unwrap_or(0);
    (uid, parts.next().and_then(|g| g.parse().ok()))
}

/// The checks of `[…docker.test]` with defaults applied (the layer is already validated).
pub(super) struct TestChecks {
    pub(super) structure: StructureChecks,
    pub(super) exec: Vec<ExecCheck>,
    pub(super) cargo: Vec<CargoCheck>,
    pub(super) host: Vec<HostCheck>,
    pub(super) http: Vec<HttpProbe>,
    pub(super) shutdown: Option<ShutdownCheck>,
}

pub(super) fn resolve_test_checks(
    src: &ManifestSource,
    test: &TestLayer,
    expose: &[u16],
) -> Result<TestChecks> {
    let parse = |v: &Option<String>, default: u64| {
        v.as_deref()
            .and_then(|v| humantime::parse_duration(v).ok())
            .unwrap_or(Duration::from_secs(default))
    };
    let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default();
    let structure = test
        .structure
        .clone()
        .map(|s| StructureChecks {
            user: s.user.map(|u| if u == "non-root" { None } else { Some(u) }),
            healthcheck: s.healthcheck.unwrap_or(false),
            entrypoint: s.entrypoint,
            expose: s.expose.unwrap_or_default(),
            max_size: s.max_size.and_then(|m| parse_size(&m).ok()),
            files: s
                .files
                .unwrap_or_default()
                .into_iter()
                .map(|f| FileCheck {
                    mode: f.mode.as_deref().and_then(parse_mode),
                    owner: f.owner.as_deref().map(numeric_owner),
                    path: f.path,
                })
                .collect(),
            absent: s.absent.unwrap_or_default(),
        })
        .unwrap_or_default();
    let exec = test
        .exec
        .iter()
        .flatten()
        .map(|e| ExecCheck {
            name: e.name.clone().unwrap_or_else(|| e.cmd.join(" ")),
            cmd: e.cmd.clone(),
            expect: OutputExpectations {
                status: e.status.unwrap_or(0),
                stdout: list(&e.stdout),
                stdout_not: list(&e.stdout_not),
                stderr: list(&e.stderr),
                stderr_not: list(&e.stderr_not),
            },
            timeout: parse(&e.timeout, 30),
            user: e.user.clone(),
            env: e.env.clone().unwrap_or_default(),
        })
        .collect();
    let cargo = test
        .cargo
        .iter()
        .flatten()
        .map(|c| CargoCheck {
            test: c.test.clone(),
            args: list(&c.args),
            timeout: parse(&c.timeout, 120),
        })
        .collect();
    let host = test
        .host
        .iter()
        .flatten()
        .map(|h| HostCheck {
            name: h.name.clone().unwrap_or_else(|| h.cmd.join(" ")),
            cmd: h.cmd.clone(),
            expect: OutputExpectations {
                status: h.status.unwrap_or(0),
                stdout: list(&h.stdout),
                stdout_not: list(&h.stdout_not),
                stderr: list(&h.stderr),
                stderr_not: list(&h.stderr_not),
            },
            timeout: parse(&h.timeout, 120),
        })
        .collect();
    let mut http = Vec::new();
    for (i, p) in test.http.iter().flatten().enumerate() {
        let Some(port) = p.port.or(expose.first().copied()) else {
            return Err(src
                .error_at(
                    &[
                        &source::PACKAGE_SECTION[..],
                        &["test", "http", &i.to_string()],
                    ]
                    .concat(),
                    "the HTTP probe needs a port",
                )
                .help("set `port` here or list the service's port in `expose`")
                .into());
        };
        let method = p.method.clone().unwrap_or_else(|| "GET".into());
        http.push(HttpProbe {
            name: p
                .name
                .clone()
                .unwrap_or_else(|| format!("{method} {}", p.path)),
            method,
            path: p.path.clone(),
            port,
            status: p.status.unwrap_or(200),
            body: list(&p.body),
            body_not: list(&p.body_not),
            data: p.data.clone(),
            timeout: parse(&p.timeout, 10),
        });
    }
    let shutdown = test.shutdown.as_ref().map(|s| ShutdownCheck {
        timeout: parse(&s.timeout, 10),
        exit_code: s.exit_code.unwrap_or(0),
    });
    Ok(TestChecks {
        structure,
        exec,
        cargo,
        host,
        http,
        shutdown,
    })
}
