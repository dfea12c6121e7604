//! `[…docker.test]`: validation of each check at its TOML line, and the checks with defaults.

use std::time::Duration;

use super::{below, is_env_name, shown, test_timeout};
use crate::config::layer::{StructureLayer, TestLayer};
use crate::config::source::{self, ManifestSource};
use crate::config::user::NumericUser;
use crate::config::*;
use crate::error::{Result, printable};

pub(super) fn test_layer(src: &ManifestSource, at: &[String], test: &TestLayer) -> Result<()> {
    let path = |keys: &[&str]| below(at, keys);
    let fail = |keys: &[&str], message: String, help: &str| -> crate::error::Error {
        src.error_at(&path(keys), message).help(help).into()
    };
    let timeout = |keys: &[&str], value: &Option<String>| -> Result<()> {
        if let Some(t) = value {
            test_timeout(src, &path(keys), t)?;
        }
        Ok(())
    };
    let port = |keys: &[&str], port: Option<u16>| -> Result<()> {
        if port == Some(0) {
            return Err(fail(
                keys,
                "port 0 is not a port a service listens on".into(),
                "use the container port the service listens on, 1 to 65535, e.g. `port = 8080`",
            ));
        }
        Ok(())
    };
    let status = |keys: &[&str], status: Option<i64>| -> Result<()> {
        if let Some(s) = status
            && !(0..=255).contains(&s)
        {
            return Err(fail(
                keys,
                format!("exit status {s} is outside 0 to 255"),
                "a process exit status is 0 to 255 (a signal shows as 128 + its number), e.g. `status = 0`",
            ));
        }
        Ok(())
    };
    let http_path = |keys: &[&str], p: &str| -> Result<()> {
        if !p.starts_with('/') || !p.bytes().all(|b| b.is_ascii_graphic()) || p.len() > 8192 {
            return Err(fail(
                keys,
                format!(
                    "{}: `{}` is not a request path",
                    if p.starts_with('/') {
                        "HTTP path must be visible ASCII (no spaces, CR or LF)"
                    } else {
                        "HTTP path must start with `/`"
                    },
                    shown(p)
                ),
                "write an absolute path of visible ASCII, at most 8 KiB, e.g. `/healthz?full=1`; percent-encode spaces and other bytes (`%20`)",
            ));
        }
        Ok(())
    };
    let http_status = |keys: &[&str], s: Option<u16>| -> Result<()> {
        if let Some(s) = s
            && !(100..=599).contains(&s)
        {
            return Err(fail(
                keys,
                format!("{s} is not an HTTP status"),
                "HTTP statuses are 100 to 599, e.g. `status = 200`",
            ));
        }
        Ok(())
    };
    timeout(&["timeout"], &test.timeout)?;
    if let Some(ready) = &test.ready {
        timeout(&["ready", "timeout"], &ready.timeout)?;
        if let Some(pattern) = &ready.log
            && let Err(e) = regex::RegexBuilder::new(pattern)
                .size_limit(1 << 20)
                .build()
        {
            return Err(fail(
                &["ready", "log"],
                format!("invalid log pattern: {}", printable(&e.to_string(), 200)),
                "a regular expression (Rust `regex` syntax) some log line must match, e.g. `log = \"listening on\"`",
            ));
        }
        for (i, p) in ready.tcp.iter().flatten().enumerate() {
            port(&["ready", "tcp", &i.to_string()], Some(*p))?;
        }
        if let Some(http) = &ready.http {
            if let Some(p) = &http.path {
                http_path(&["ready", "http", "path"], p)?;
            }
            port(&["ready", "http", "port"], http.port)?;
            http_status(&["ready", "http", "status"], http.status)?;
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
        timeout(&["exec", &i, "timeout"], &exec.timeout)?;
        status(&["exec", &i, "status"], exec.status)?;
        if let Some(user) = &exec.user
            && let Err(why) = NumericUser::parse(user)
        {
            return Err(fail(
                &["exec", &i, "user"],
                format!("`user` must be numeric, got `{}`: {why}", shown(user)),
                "use `uid` or `uid:gid`, e.g. `65532:65532`",
            ));
        }
        for name in exec.env.iter().flat_map(|m| m.keys()) {
            if !is_env_name(name) {
                return Err(fail(
                    &["exec", &i, "env", name],
                    format!("invalid variable name `{}`", shown(name)),
                    "names are letters, digits and `_`, not starting with a digit, e.g. `RUST_LOG`",
                ));
            }
        }
    }
    for (i, cargo) in test.cargo.iter().flatten().enumerate() {
        let i = i.to_string();
        let name = &cargo.test;
        if name.is_empty()
            || name.len() > 200
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        {
            return Err(fail(
                &["cargo", &i, "test"],
                format!("`{}` is not a test target name", shown(name)),
                "name an integration test target, e.g. `test = \"smoke\"` for `tests/smoke.rs`",
            ));
        }
        timeout(&["cargo", &i, "timeout"], &cargo.timeout)?;
    }
    for (i, host) in test.host.iter().flatten().enumerate() {
        let i = i.to_string();
        program(path(&["host", &i, "cmd"]), &host.cmd)?;
        timeout(&["host", &i, "timeout"], &host.timeout)?;
        status(&["host", &i, "status"], host.status)?;
    }
    for (i, probe) in test.http.iter().flatten().enumerate() {
        let i = i.to_string();
        http_path(&["http", &i, "path"], &probe.path)?;
        if let Some(m) = &probe.method
            && (m.is_empty() || m.len() > 20 || !m.bytes().all(|b| b.is_ascii_uppercase()))
        {
            return Err(fail(
                &["http", &i, "method"],
                format!("`{}` is not an HTTP method", shown(m)),
                "use an upper-case method such as `GET`, `POST` or `HEAD`",
            ));
        }
        port(&["http", &i, "port"], probe.port)?;
        http_status(&["http", &i, "status"], probe.status)?;
        timeout(&["http", &i, "timeout"], &probe.timeout)?;
    }
    if let Some(shutdown) = &test.shutdown {
        timeout(&["shutdown", "timeout"], &shutdown.timeout)?;
        status(&["shutdown", "exit-code"], shutdown.exit_code)?;
    }
    Ok(())
}

fn test_structure(src: &ManifestSource, at: &[String], s: &StructureLayer) -> Result<()> {
    let path = |keys: &[&str]| below(at, keys);
    let fail = |keys: &[&str], message: String, help: &str| -> crate::error::Error {
        src.error_at(&path(keys), message).help(help).into()
    };
    if let Some(user) = &s.user
        && user != "non-root"
        && let Err(why) = NumericUser::parse(user)
    {
        return Err(fail(
            &["user"],
            format!(
                "`user` must be `non-root` or numeric, got `{}`: {why}",
                shown(user)
            ),
            "`user = \"non-root\"` accepts any uid but 0; `user = \"65532:65532\"` requires exactly that",
        ));
    }
    if let Some(size) = &s.max_size
        && let Err(why) = parse_size(size)
    {
        return Err(fail(
            &["max-size"],
            format!("invalid size `{}`: {why}", shown(size)),
            "write sizes like `50MB`, `512MiB` or `1GB`",
        ));
    }
    if let Some(ports) = &s.expose
        && let Some(i) = ports.iter().position(|p| *p == 0)
    {
        return Err(fail(
            &["expose", &i.to_string()],
            "port 0 cannot be exposed".into(),
            "list ports from 1 to 65535, e.g. `expose = [8080]`",
        ));
    }
    let image_path = |keys: &[&str], p: &str| -> Result<()> {
        if !p.starts_with('/') || p.contains('\0') || p.len() > 4096 {
            return Err(fail(
                keys,
                format!(
                    "`{}` cannot be checked: paths in the image must be absolute, without NUL, at most 4 KiB",
                    shown(p)
                ),
                "paths in the image are absolute, e.g. `/usr/local/bin/orders`",
            ));
        }
        Ok(())
    };
    for (i, file) in s.files.iter().flatten().enumerate() {
        let i = i.to_string();
        image_path(&["files", &i, "path"], &file.path)?;
        if let Some(mode) = &file.mode
            && parse_mode(mode).is_none()
        {
            return Err(fail(
                &["files", &i, "mode"],
                format!("`{}` is not an octal mode", shown(mode)),
                "write modes in octal, e.g. `\"0755\"`",
            ));
        }
        if let Some(owner) = &file.owner
            && let Err(why) = NumericUser::parse(owner)
        {
            return Err(fail(
                &["files", &i, "owner"],
                format!("`owner` must be numeric, got `{}`: {why}", shown(owner)),
                "use `uid` or `uid:gid`, e.g. `0:0`",
            ));
        }
    }
    for (i, p) in s.absent.iter().flatten().enumerate() {
        image_path(&["absent", &i.to_string()], p)?;
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
        other => return Err(format!("unknown unit `{}`", printable(other, 20))),
    };
    let bytes = number * factor as f64;
    if !(1.0..=1e15).contains(&bytes) {
        return Err("sizes are from 1 byte to 1 PB".into());
    }
    Ok(bytes as u64)
}

fn numeric_owner(owner: &str) -> (u64, Option<u64>) {
    match NumericUser::parse(owner) {
        Ok(u) => (u.uid.into(), u.gid.map(Into::into)),
        Err(_) => (0, None),
    }
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
