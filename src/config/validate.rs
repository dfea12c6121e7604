//! Checks on single layers (located at the offending value) and on the merged result.

use std::time::Duration;

use super::layer::DockerLayer;
use super::reference::*;
use super::source::{ManifestSource, strsim_best};
use super::test_section::{resolve_test_checks, test_layer};
use super::*;
use crate::error::Result;

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

/// Parses a humantime duration, pointing at `keys` when it is not one.
pub(super) fn duration(src: &ManifestSource, keys: &[String], value: &str) -> Result<Duration> {
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
        buildkit: layer.buildkit.unwrap_or(true),
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

pub(super) fn is_numeric_user(user: &str) -> bool {
    let mut parts = user.split(':');
    let num = |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.parse::<u32>().is_ok());
    match (parts.next(), parts.next(), parts.next()) {
        (uid, None, None) => num(uid),
        (uid, gid @ Some(_), None) => num(uid) && num(gid),
        _ => false,
    }
}

pub(super) fn is_env_name(name: &str) -> bool {
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
