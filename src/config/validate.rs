//! Checks on single layers (located at the offending value) and on the merged result.

use std::time::Duration;

use super::layer::{DockerLayer, StructureLayer, TestLayer};
use super::source::{ManifestSource, strsim_best};
use super::*;
use crate::error::Result;

/// Placeholders an extra tag template may use.
pub const TAG_PLACEHOLDERS: [&str; 5] = ["branch", "sha7", "sha", "version", "timestamp"];

/// Validates the values of one layer, pointing at `section` in `src` on failure.
pub fn layer(src: &ManifestSource, section: &[&str], layer: &DockerLayer) -> Result<()> {
    let at = |keys: &[&str]| -> Vec<String> {
        section.iter().chain(keys).map(|k| k.to_string()).collect()
    };
    let err = |keys: &[&str], msg: String| src.error_at(&at(keys), msg);

    let non_empty = |keys: &[&str], value: &str| -> Result<()> {
        if value.trim().is_empty() {
            return Err(err(keys, format!("`{}` must not be empty", keys.join("."))).into());
        }
        Ok(())
    };
    let optional_strings: [(&str, &Option<String>); 9] = [
        ("image", &layer.image),
        ("bin", &layer.bin),
        ("builder", &layer.builder),
        ("base", &layer.base),
        ("dockerfile", &layer.dockerfile),
        ("template", &layer.template),
        ("context", &layer.context),
        ("stop-signal", &layer.stop_signal),
        ("vendor", &layer.vendor),
    ];
    for (key, value) in optional_strings {
        if let Some(v) = value {
            non_empty(&[key], v)?;
            if v.len() > 4096 {
                return Err(
                    err(&[key], format!("`{key}` is too long ({} bytes)", v.len()))
                        .help("values are limited to 4096 bytes")
                        .into(),
                );
            }
        }
    }
    if let Some(image) = &layer.image
        && let Err(why) = check_image_name(image)
    {
        return Err(err(&["image"], format!("invalid image name `{}`: {why}", shorten(image)))
                .label("invalid image repository")
                .help("use a repository without tag, e.g. `ghcr.io/acme/orders`: lower-case letters, digits and separators (`.`, `_`, `__`, `-`), components separated by `/`")
                .into());
    }
    for (key, image) in [("builder", &layer.builder), ("base", &layer.base)] {
        if let Some(image) = image
            && let Err(why) = check_image_ref(image)
        {
            return Err(err(&[key], format!("invalid {key} image `{image}`: {why}"))
                .help("use `repository:tag`, e.g. `debian:bookworm-slim` (or `scratch` for `base`)")
                .into());
        }
    }
    for (key, digest) in [
        ("builder-digest", &layer.builder_digest),
        ("base-digest", &layer.base_digest),
    ] {
        if let Some(d) = digest {
            let ok = d
                .strip_prefix("sha256:")
                .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
            if !ok {
                return Err(err(&[key], format!("invalid digest `{d}`"))
                    .help("a digest is `sha256:` followed by 64 hex digits")
                    .into());
            }
        }
    }
    if let Some(user) = &layer.user {
        if !is_numeric_user(user) {
            return Err(err(&["user"], format!("`user` must be numeric, got `{user}`"))
                .help("use `uid` or `uid:gid`, e.g. `65532:65532`; numeric ids let Kubernetes verify `runAsNonRoot`")
                .into());
        }
        if user.split(':').next() == Some("0") {
            return Err(
                err(&["user"], "`user` must not be root (uid 0)".to_string())
                    .help("run as a non-root uid, e.g. `65532:65532`")
                    .into(),
            );
        }
    }
    if let Some(ports) = &layer.expose
        && let Some(i) = ports.iter().position(|p| *p == 0)
    {
        return Err(err(
            &["expose", &i.to_string()],
            "port 0 cannot be exposed".into(),
        )
        .into());
    }
    for (key, list) in [
        ("entrypoint", &layer.entrypoint),
        ("cmd", &layer.cmd),
        ("smoke-test", &layer.smoke_test),
    ] {
        if let Some(list) = list
            && key != "cmd"
            && list.first().is_none_or(|s| s.trim().is_empty())
        {
            return Err(err(&[key], format!("`{key}` needs at least a program"))
                .help(format!(
                    "exec form: `{key} = [\"/usr/local/bin/app\", \"--flag\"]`"
                ))
                .into());
        }
    }
    for (key, map) in [("env", &layer.env), ("build-args", &layer.build_args)] {
        for name in map.iter().flat_map(|m| m.keys()) {
            if !is_env_name(name) {
                return Err(err(&[key, name], format!("invalid variable name `{name}`"))
                    .help("names are letters, digits and `_`, not starting with a digit")
                    .into());
            }
        }
    }
    for name in layer.labels.iter().flat_map(|m| m.keys()) {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '=') {
            return Err(
                err(&["labels", name], format!("invalid label key `{name}`"))
                    .help("label keys are reverse-DNS names such as `com.acme.team`")
                    .into(),
            );
        }
    }
    if let Some(hc) = &layer.healthcheck {
        if hc
            .cmd
            .as_ref()
            .is_none_or(|c| c.first().is_none_or(|s| s.trim().is_empty()))
        {
            return Err(err(&["healthcheck"], "`healthcheck.cmd` needs at least a program".into())
                .help("exec form only, e.g. `cmd = [\"/usr/local/bin/app\", \"health\"]`: it works on scratch and distroless, which have no shell")
                .into());
        }
        for (key, value) in [
            ("interval", &hc.interval),
            ("timeout", &hc.timeout),
            ("start-period", &hc.start_period),
        ] {
            if let Some(v) = value {
                duration(src, &at(&["healthcheck", key]), v)?;
            }
        }
    }
    if let Some(signal) = &layer.stop_signal
        && !is_signal(signal)
    {
        return Err(err(&["stop-signal"], format!("unknown signal `{signal}`"))
            .help("use a name like `SIGTERM` or `SIGINT`, or a number")
            .into());
    }
    if let Some(tags) = &layer.tags {
        if let Some(n) = tags.sha_length
            && !(4..=40).contains(&n)
        {
            return Err(err(
                &["tags", "sha-length"],
                format!("`sha-length` must be between 4 and 40, got {n}"),
            )
            .into());
        }
        for (i, template) in tags.extra.iter().flatten().enumerate() {
            check_tag_template(template).map_err(|why| {
                err(
                    &["tags", "extra", &i.to_string()],
                    format!("invalid tag template `{template}`: {why}"),
                )
                .help(format!(
                    "placeholders: {}",
                    TAG_PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ))
            })?;
        }
    }
    if let Some(test) = &layer.test {
        test_layer(src, &at(&["test"]), test)?;
    }
    Ok(())
}

fn test_layer(src: &ManifestSource, at: &[String], test: &TestLayer) -> Result<()> {
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

/// Parses a humantime duration, pointing at `keys` when it is not one.
fn duration(src: &ManifestSource, keys: &[String], value: &str) -> Result<Duration> {
    humantime::parse_duration(value).map_err(|e| {
        src.error_at(keys, format!("invalid duration `{value}`: {e}"))
            .help("write durations like `500ms`, `30s` or `2m`")
            .into()
    })
}

/// Applies defaults to the merged layer and checks combinations that no single layer shows.
pub fn resolved(
    facts: &PackageFacts<'_>,
    src: &ManifestSource,
    layer: DockerLayer,
) -> Result<ServiceConfig> {
    let section = super::source::PACKAGE_SECTION;
    let at = |keys: &[&str]| -> Vec<String> {
        section.iter().chain(keys).map(|k| k.to_string()).collect()
    };

    let bin = match &layer.bin {
        Some(bin) if facts.bins.contains(bin) => bin.clone(),
        Some(bin) => {
            let mut e = src
                .error_at(
                    &at(&["bin"]),
                    format!("package `{}` has no binary target `{bin}`", facts.name),
                )
                .label("no such binary");
            e = match strsim_best(bin, &facts.bins) {
                Some(best) => e.help(format!("did you mean `{best}`?")),
                None => e.help(format!("binary targets: {}", list_or_none(&facts.bins))),
            };
            return Err(e.into());
        }
        None => match facts.bins.as_slice() {
            [only] => only.clone(),
            bins if bins.iter().any(|b| b == facts.name) => facts.name.to_owned(),
            [] => {
                return Err(src
                    .error_at(
                        &section,
                        format!(
                            "package `{}` has no binary target to put in an image",
                            facts.name
                        ),
                    )
                    .help("add a `src/main.rs` or a `[[bin]]` target")
                    .into());
            }
            bins => {
                return Err(src
                    .error_at(
                        &section,
                        format!(
                            "package `{}` has several binaries; which one goes in the image?",
                            facts.name
                        ),
                    )
                    .help(format!("set `bin` to one of: {}", bins.join(", ")))
                    .into());
            }
        },
    };

    let image = match layer.image {
        Some(image) => image,
        None => {
            let name = facts.name.to_lowercase();
            check_image_name(&name).map_err(|why| {
                src.error_at(
                    &section,
                    format!("the package name `{name}` is not a valid image name: {why}"),
                )
                .help("set `image`, e.g. `image = \"ghcr.io/acme/orders\"`")
            })?;
            name
        }
    };

    if layer.dockerfile.is_some() && layer.template.is_some() {
        return Err(src
            .error_at(&at(&["template"]), "`dockerfile` and `template` cannot both be set")
            .help("`dockerfile` uses a hand-written file as is; `template` renders your own template. Keep one")
            .into());
    }
    let strategy = layer.strategy.unwrap_or(Strategy::Host);
    let base = layer.base.clone().unwrap_or_else(|| {
        if layer.static_link == Some(false) {
            DEFAULT_DYNAMIC_BASE.to_owned()
        } else {
            "scratch".to_owned()
        }
    });
    let static_link = layer.static_link.unwrap_or(base == "scratch");
    if base == "scratch" && !static_link {
        return Err(src
            .error_at(&at(&["static"]), "a dynamically linked binary cannot run on `scratch`")
            .help("remove `static = false`, or set `base` to an image with a C library such as `gcr.io/distroless/cc-debian12:nonroot`")
            .into());
    }
    if base == "scratch" && layer.base_digest.is_some() {
        return Err(src
            .error_at(&at(&["base-digest"]), "`scratch` has no digest")
            .help("remove `base-digest`")
            .into());
    }
    if strategy == Strategy::Host && (layer.builder.is_some() || layer.builder_digest.is_some()) {
        return Err(src
            .error_at(
                &at(&["builder"]),
                "`builder` is only used by `strategy = \"docker\"`",
            )
            .help("remove `builder`, or set `strategy = \"docker\"` to build inside that image")
            .into());
    }
    if let Some(args) = &layer.build_args
        && let Some(reserved) = args.keys().find(|k| *k == "SHA" || *k == "VERSION")
    {
        return Err(src
            .error_at(
                &at(&["build-args", reserved]),
                format!("build arg `{reserved}` is set by the tool"),
            )
            .help("the revision and version come from git and Cargo.toml; remove this entry")
            .into());
    }
    if layer
        .env
        .as_ref()
        .is_some_and(|env| env.contains_key("SHA"))
    {
        return Err(src
            .error_at(
                &at(&["env", "SHA"]),
                "`SHA` is set by the tool to the full commit SHA",
            )
            .help("remove this entry")
            .into());
    }

    let rel = |p: &str, base: &Utf8Path| -> Utf8PathBuf {
        let p = Utf8Path::new(p);
        if p.is_absolute() {
            p.to_owned()
        } else {
            base.join(p)
        }
    };
    let default_entrypoint = vec![format!("/usr/local/bin/{bin}")];

    let healthcheck = layer.healthcheck.map(|hc| {
        let d = |v: Option<String>, default: u64| {
            v.and_then(|v| humantime::parse_duration(&v).ok())
                .unwrap_or(Duration::from_secs(default))
        };
        Healthcheck {
            cmd: hc.cmd.unwrap_or_default(),
            interval: d(hc.interval, 30),
            timeout: d(hc.timeout, 5),
            start_period: d(hc.start_period, 5),
            retries: hc.retries.unwrap_or(3),
        }
    });
    let tags = layer.tags.unwrap_or_default();
    let expose = layer.expose.unwrap_or_default();
    let raw_test = layer.test.unwrap_or_default();
    let ready = raw_test.ready.clone().unwrap_or_default();
    let parse = |v: &Option<String>, default: u64| {
        v.as_deref()
            .and_then(|v| humantime::parse_duration(v).ok())
            .unwrap_or(Duration::from_secs(default))
    };
    let http = match ready.http {
        Some(h) => {
            let port = match h.port.or(expose.first().copied()) {
                Some(p) => p,
                None => {
                    return Err(src
                        .error_at(
                            &at(&["test", "ready", "http"]),
                            "the HTTP readiness check needs a port",
                        )
                        .help("set `port` here or list the service's port in `expose`")
                        .into());
                }
            };
            Some(HttpReady {
                port,
                path: h.path.unwrap_or_else(|| "/".into()),
                status: h.status.unwrap_or(200),
            })
        }
        None => None,
    };
    let test_checks = resolve_test_checks(src, &raw_test, &expose)?;
    if ready.health == Some(true) && healthcheck.is_none() && layer.dockerfile.is_none() {
        return Err(src
            .error_at(
                &at(&["test", "ready", "health"]),
                "readiness waits for `healthy` but no healthcheck is configured",
            )
            .help(
                "add a `[package.metadata.docker.healthcheck]` section, or remove `health = true`",
            )
            .into());
    }

    Ok(ServiceConfig {
        image,
        bin,
        strategy,
        builder: layer.builder.unwrap_or_else(|| DEFAULT_BUILDER.to_owned()),
        builder_digest: layer.builder_digest,
        base,
        base_digest: layer.base_digest,
        static_link,
        dockerfile: layer.dockerfile.map(|p| rel(&p, facts.dir)),
        template: layer.template.map(|p| rel(&p, facts.dir)),
        context: layer
            .context
            .map(|p| rel(&p, facts.dir))
            .unwrap_or_else(|| facts.workspace_root.to_owned()),
        build_args: layer.build_args.unwrap_or_default(),
        env: layer.env.unwrap_or_default(),
        expose,
        user: layer.user.unwrap_or_else(|| DEFAULT_USER.to_owned()),
        entrypoint: layer.entrypoint.unwrap_or(default_entrypoint),
        cmd: layer.cmd.unwrap_or_default(),
        labels: layer.labels.unwrap_or_default(),
        healthcheck,
        stop_signal: layer.stop_signal,
        smoke_test: layer.smoke_test,
        vendor: layer.vendor,
        revision: layer.revision.unwrap_or(RevisionMode::Crate),
        tags: TagRules {
            semver: tags.semver.unwrap_or(true),
            sha: tags.sha.unwrap_or(true),
            sha_length: tags.sha_length.unwrap_or(7),
            latest: tags.latest.unwrap_or(true),
            extra: tags.extra.unwrap_or_default(),
        },
        test: TestConfig {
            timeout: parse(&raw_test.timeout, 300),
            ready: Readiness {
                timeout: parse(&ready.timeout, 30),
                health: ready.health,
                tcp: ready.tcp.unwrap_or_default(),
                http,
                log: ready.log,
            },
            structure: test_checks.structure,
            exec: test_checks.exec,
            cargo: test_checks.cargo,
            host: test_checks.host,
            http: test_checks.http,
            shutdown: test_checks.shutdown,
        },
    })
}

/// The checks of `[…docker.test]` with defaults applied (the layer is already validated).
struct TestChecks {
    structure: StructureChecks,
    exec: Vec<ExecCheck>,
    cargo: Vec<CargoCheck>,
    host: Vec<HostCheck>,
    http: Vec<HttpProbe>,
    shutdown: Option<ShutdownCheck>,
}

fn resolve_test_checks(
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

/// A value short enough to quote in a one-line message.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(40) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// Checks an image repository name (no tag, no digest) against the distribution grammar.
pub fn check_image_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("it is empty".into());
    }
    if name.len() > 255 {
        return Err(format!(
            "it is {} characters long, the limit is 255",
            name.len()
        ));
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    if parts.len() > 1 && (first.contains('.') || first.contains(':') || first == "localhost") {
        let (host, port) = match first.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (first, None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(format!("`{first}` is not a valid registry host"));
        }
        if let Some(p) = port
            && p.parse::<u16>().is_err()
        {
            return Err(format!("`{p}` is not a valid port"));
        }
        parts.remove(0);
        if parts.is_empty() {
            return Err("it names a registry but no repository".into());
        }
    }
    for part in parts {
        if let Err(why) = check_path_component(part) {
            return Err(format!("component `{part}` {why}"));
        }
    }
    Ok(())
}

fn check_path_component(part: &str) -> std::result::Result<(), &'static str> {
    if part.is_empty() {
        return Err("is empty");
    }
    if part.contains(':') || part.contains('@') {
        return Err("contains a tag or digest; `image` is the repository only");
    }
    if part.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("has upper-case letters");
    }
    let bytes = part.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err("must start and end with a letter or digit");
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &part[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err("has an invalid separator (allowed: `.`, `_`, `__`, `-`)");
        }
    }
    Ok(())
}

/// Checks an image reference `repo[:tag][@digest]` (or `scratch`).
pub fn check_image_ref(reference: &str) -> std::result::Result<(), String> {
    if reference == "scratch" {
        return Ok(());
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest
        && !d.starts_with("sha256:")
    {
        return Err(format!("`{d}` is not a sha256 digest"));
    }
    let (repo, tag) = match rest.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t)),
        _ => (rest, None),
    };
    if let Some(t) = tag
        && !is_valid_tag(t)
    {
        return Err(format!("`{t}` is not a valid tag"));
    }
    check_image_name(repo)
}

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Checks that a tag template only uses known placeholders and is otherwise tag-safe.
pub fn check_tag_template(template: &str) -> std::result::Result<(), String> {
    let mut rest = template;
    let mut literal = String::new();
    while let Some(open) = rest.find('{') {
        literal.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            return Err("unclosed `{`".into());
        };
        let name = &rest[open + 1..open + close];
        if !TAG_PLACEHOLDERS.contains(&name) {
            return Err(format!("unknown placeholder `{{{name}}}`"));
        }
        literal.push('x');
        rest = &rest[open + close + 1..];
    }
    literal.push_str(rest);
    if literal.contains('}') {
        return Err("unmatched `}`".into());
    }
    if !is_valid_tag(&literal) {
        return Err("the text around the placeholders is not valid in a tag (letters, digits, `_`, `.`, `-`; not starting with `.` or `-`)".into());
    }
    Ok(())
}

fn is_numeric_user(user: &str) -> bool {
    let mut parts = user.split(':');
    let num = |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.parse::<u32>().is_ok());
    match (parts.next(), parts.next(), parts.next()) {
        (uid, None, None) => num(uid),
        (uid, gid @ Some(_), None) => num(uid) && num(gid),
        _ => false,
    }
}

fn is_env_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

fn is_signal(signal: &str) -> bool {
    const NAMES: [&str; 12] = [
        "HUP", "INT", "QUIT", "KILL", "USR1", "USR2", "TERM", "STOP", "CONT", "WINCH", "PWR",
        "ABRT",
    ];
    signal.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n))
        || NAMES.contains(&signal.strip_prefix("SIG").unwrap_or(signal))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        for ok in [
            "orders",
            "acme/orders",
            "ghcr.io/acme/orders",
            "localhost:5000/a_b/c-d",
            "a__b",
            "a---b",
        ] {
            assert!(check_image_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "Orders",
            "acme/",
            "a:1",
            "-a",
            "a/b@sha256:x",
            "a..b",
            "ghcr.io/",
        ] {
            assert!(check_image_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tag_templates() {
        assert!(check_tag_template("{branch}-{sha7}-{timestamp}").is_ok());
        assert!(check_tag_template("{nope}").is_err());
        assert!(check_tag_template("a b").is_err());
        assert!(check_tag_template("{sha").is_err());
    }

    #[test]
    fn users_and_signals() {
        assert!(is_numeric_user("65532:65532") && is_numeric_user("1000"));
        assert!(!is_numeric_user("app") && !is_numeric_user("1:") && !is_numeric_user("1:2:3"));
        assert!(
            is_signal("SIGTERM") && is_signal("INT") && is_signal("15") && !is_signal("SIGFOO")
        );
    }
}
