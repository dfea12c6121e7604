//! Checks on single layers (located at the offending value) and on the merged result.
//!
//! Every error names the key, shows the value printable and short, and says how to fix it.

use std::time::Duration;

use crate::config::layer::DockerLayer;
use crate::config::messages::strsim_best;
use crate::config::paths::{PathKind, resolve_inside};
use crate::config::reference::*;
use crate::config::source::ManifestSource;
mod test_section;

use crate::config::user::NumericUser;
use crate::config::*;
use crate::error::{Result, printable};
use test_section::{resolve_test_checks, test_layer};

/// Longest scalar string value (image names, paths, vendor, …).
pub const MAX_VALUE: usize = 4096;
/// Longest `env`, `build-args` or `labels` key: keys are written inline on a Dockerfile line.
pub const MAX_KEY: usize = 1024;
/// Longest exec-form array (entrypoint, cmd, smoke test, healthcheck) as written on its line:
/// Docker's parser reads lines of at most 65,535 bytes, and the instruction needs room.
pub const MAX_EXEC_FORM: usize = 60_000;
/// Longest duration Docker can hold: Go's `time.Duration` is an `int64` of nanoseconds.
pub const MAX_GO_DURATION: Duration = Duration::from_nanos(i64::MAX as u64);
/// Shortest healthcheck interval, timeout or start period Docker accepts (besides 0 for the last).
pub const MIN_HEALTHCHECK_DURATION: Duration = Duration::from_millis(1);

/// A value short enough to quote in a one-line message, printable.
pub(super) fn shown(value: &str) -> String {
    printable(value, 60)
}

/// The key path of `keys` below the table at `table`, as [`ManifestSource::error_at`] takes it.
pub(super) fn below<S: AsRef<str>>(table: &[S], keys: &[&str]) -> Vec<String> {
    table
        .iter()
        .map(|k| k.as_ref())
        .chain(keys.iter().copied())
        .map(str::to_owned)
        .collect()
}

/// Validates the values of one layer, pointing at `section` in `src` on failure.
pub fn layer(src: &ManifestSource, section: &[&str], layer: &DockerLayer) -> Result<()> {
    let at = |keys: &[&str]| below(section, keys);
    let err = |keys: &[&str], msg: String| src.error_at(&at(keys), msg);

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
            let example = messages::example(key).unwrap_or_default();
            if v.trim().is_empty() {
                return Err(err(&[key], format!("`{key}` must not be empty"))
                    .help(format!(
                        "set a value, e.g. `{example}`, or remove the key for the default"
                    ))
                    .into());
            }
            if v.len() > MAX_VALUE {
                return Err(
                    err(&[key], format!("`{key}` is too long ({} bytes)", v.len()))
                        .help(format!(
                            "values are limited to {MAX_VALUE} bytes, e.g. `{example}`"
                        ))
                        .into(),
                );
            }
        }
    }
    if let Some(image) = &layer.image
        && let Err(why) = check_image_name(image)
    {
        return Err(err(&["image"], format!("invalid image name `{}`: {why}", shown(image)))
                .label("invalid image repository")
                .help("use a repository without tag, e.g. `ghcr.io/acme/orders`: lower-case letters, digits and separators (`.`, `_`, `__`, `-`), components separated by `/`")
                .into());
    }
    for (key, image) in [("builder", &layer.builder), ("base", &layer.base)] {
        if let Some(image) = image
            && let Err(why) = ImageRef::parse(image)
        {
            return Err(err(&[key], format!("invalid {key} image `{}`: {why}", shown(image)))
                .label("not an image reference")
                .help(format!("use `repository:tag` or `repository:tag@sha256:<64 hex digits>`, e.g. `debian:bookworm-slim`{}", if key == "base" { " (or `scratch`)" } else { "" }))
                .into());
        }
    }
    for (key, digest) in [
        ("builder-digest", &layer.builder_digest),
        ("base-digest", &layer.base_digest),
    ] {
        if let Some(d) = digest
            && let Err(why) = Digest::parse(d)
        {
            return Err(err(&[key], format!("invalid digest `{}`: {why}", shown(d)))
                .label("not a digest")
                .help("a digest is `sha256:` followed by 64 lower-case hex digits, as `docker buildx imagetools inspect IMAGE` prints it")
                .into());
        }
    }
    if let Some(user) = &layer.user {
        match NumericUser::parse(user) {
            Err(why) => {
                return Err(err(&["user"], format!("`user` must be numeric `uid[:gid]`, got `{}`: {why}", shown(user)))
                    .help("use `uid` or `uid:gid`, e.g. `65532:65532`; numeric ids let Kubernetes verify `runAsNonRoot`")
                    .into());
            }
            Ok(u) if u.is_root() => {
                return Err(err(
                    &["user"],
                    format!("`user = \"{}\"` is uid 0: the service would run as root", shown(user)),
                )
                .help("run as a non-root uid, e.g. `65532:65532` (Docker reads `00`, `+0` and `0000` as 0 too)")
                .into());
            }
            Ok(_) => {}
        }
    }
    if let Some(ports) = &layer.expose
        && let Some(i) = ports.iter().position(|p| *p == 0)
    {
        return Err(err(
            &["expose", &i.to_string()],
            "port 0 cannot be exposed".into(),
        )
        .help("list the ports the service listens on, 1 to 65535, e.g. `expose = [8080]`")
        .into());
    }
    for (key, list) in [
        ("entrypoint", &layer.entrypoint),
        ("cmd", &layer.cmd),
        ("smoke-test", &layer.smoke_test),
    ] {
        let Some(list) = list else { continue };
        if key != "cmd" && list.first().is_none_or(|s| s.trim().is_empty()) {
            return Err(err(&[key], format!("`{key}` needs at least a program"))
                .help(format!(
                    "exec form: `{key} = [\"/usr/local/bin/app\", \"--flag\"]`"
                ))
                .into());
        }
        exec_form_fits(src, &at(&[key]), key, list)?;
    }
    for (key, map) in [("env", &layer.env), ("build-args", &layer.build_args)] {
        for name in map.iter().flat_map(|m| m.keys()) {
            if !is_env_name(name) || name.len() > MAX_KEY {
                return Err(err(&[key, name], format!("invalid variable name `{}`", shown(name)))
                    .help(format!("names are letters, digits and `_`, not starting with a digit, at most {MAX_KEY} bytes, e.g. `RUST_LOG`"))
                    .into());
            }
        }
    }
    for name in layer.labels.iter().flat_map(|m| m.keys()) {
        if name.is_empty()
            || name.len() > MAX_KEY
            || name
                .chars()
                .any(|c| c.is_whitespace() || c == '=' || crate::error::is_unprintable(c))
        {
            return Err(
                err(&["labels", name], format!("invalid label key `{}`", shown(name)))
                    .help(format!("label keys are reverse-DNS names such as `com.acme.team`: no spaces, `=` or control characters, at most {MAX_KEY} bytes"))
                    .into(),
            );
        }
    }
    if let Some(hc) = &layer.healthcheck {
        match &hc.cmd {
            Some(cmd) if cmd.first().is_some_and(|s| !s.trim().is_empty()) => {
                exec_form_fits(src, &at(&["healthcheck", "cmd"]), "healthcheck.cmd", cmd)?;
            }
            _ => {
                return Err(err(&["healthcheck"], "`healthcheck.cmd` needs at least a program".into())
                    .help("exec form only, e.g. `cmd = [\"/usr/local/bin/app\", \"health\"]`: it works on scratch and distroless, which have no shell")
                    .into());
            }
        }
        for (key, value) in [
            ("interval", &hc.interval),
            ("timeout", &hc.timeout),
            ("start-period", &hc.start_period),
        ] {
            if let Some(v) = value {
                healthcheck_duration(src, &at(&["healthcheck", key]), key, v)?;
            }
        }
        if let Some(r) = hc.retries
            && !(1..=1000).contains(&r)
        {
            return Err(err(
                &["healthcheck", "retries"],
                format!("`retries = {r}` is out of range"),
            )
            .help("consecutive failures before `unhealthy`: 1 to 1000, e.g. `retries = 3`")
            .into());
        }
    }
    if let Some(signal) = &layer.stop_signal
        && canonical_signal(signal).is_none()
    {
        return Err(err(
            &["stop-signal"],
            format!("unknown signal `{}`", shown(signal)),
        )
        .help(
            "use a signal name like `SIGTERM`, `sigint` or `SIGRTMIN+3`, or a number from 1 to 64",
        )
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
            .help("hex digits of the commit SHA tag, e.g. `sha-length = 12` (the default is 7)")
            .into());
        }
        let extra = tags.extra.as_deref().unwrap_or_default();
        // A set, not a scan of the earlier ones: a list of 100,000 templates is checked in
        // linear time.
        let mut seen = std::collections::HashSet::with_capacity(extra.len());
        for (i, template) in extra.iter().enumerate() {
            let at_template = at(&["tags", "extra", &i.to_string()]);
            check_tag_template(template).map_err(|why| {
                src.error_at(
                    &at_template,
                    format!("invalid tag template `{}`: {why}", shown(template)),
                )
                .help(format!(
                    "extra tags are immutable and claim no version: combine placeholders ({}) with text, e.g. `\"{{branch}}-{{sha7}}\"` or `\"v{{version}}-{{timestamp}}\"`",
                    TAG_PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ))
            })?;
            if !seen.insert(template.as_str()) {
                return Err(src
                    .error_at(
                        &at_template,
                        format!("the tag template `{}` is listed twice", shown(template)),
                    )
                    .help("remove the duplicate: each template gives one tag")
                    .into());
            }
        }
    }
    if let Some(test) = &layer.test {
        test_layer(src, &at(&["test"]), test)?;
    }
    Ok(())
}

/// An exec-form array must fit on one Dockerfile line.
fn exec_form_fits(src: &ManifestSource, keys: &[String], key: &str, list: &[String]) -> Result<()> {
    let len = crate::dockerfile_syntax::escape::exec_form(list).len();
    if len > MAX_EXEC_FORM {
        return Err(src
            .error_at(keys, format!("`{key}` is {len} bytes as an exec-form array"))
            .help(format!("Docker reads Dockerfile lines of at most 65,535 bytes; keep `{key}` under {MAX_EXEC_FORM} bytes (pass long data through a file or `env`)"))
            .into());
    }
    Ok(())
}

/// Parses a humantime duration, pointing at `keys` when it is not one.
pub(super) fn duration(src: &ManifestSource, keys: &[String], value: &str) -> Result<Duration> {
    humantime::parse_duration(value).map_err(|e| {
        src.error_at(keys, format!("invalid duration `{}`: {e}", shown(value)))
            .help("write durations like `500ms`, `30s` or `2m`")
            .into()
    })
}

/// Longest timeout of a test step: anything longer is a typo, and timers cannot hold every value.
pub const MAX_TEST_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A timeout of the test stage: more than 0 and at most [`MAX_TEST_TIMEOUT`].
pub(super) fn test_timeout(src: &ManifestSource, keys: &[String], value: &str) -> Result<Duration> {
    let d = duration(src, keys, value)?;
    if d.is_zero() || d > MAX_TEST_TIMEOUT {
        return Err(src
            .error_at(
                keys,
                format!("the timeout `{}` is out of range", shown(value)),
            )
            .help("test timeouts are more than 0 and at most 24h, e.g. `30s` or `5m`")
            .into());
    }
    Ok(d)
}

/// A healthcheck duration Docker can hold and keeps exactly: whole milliseconds or finer, at least
/// 1ms (0 only for `start-period`), at most Go's ~292 years.
fn healthcheck_duration(
    src: &ManifestSource,
    keys: &[String],
    key: &str,
    value: &str,
) -> Result<Duration> {
    let d = duration(src, keys, value)?;
    let zero_ok = key == "start-period" && d.is_zero();
    if !zero_ok && d < MIN_HEALTHCHECK_DURATION {
        return Err(src
            .error_at(keys, format!("`{key} = \"{}\"` is shorter than Docker's 1ms minimum", shown(value)))
            .help(format!("Docker reads a healthcheck {key} under 1ms as its default (30s); write at least `1ms`, e.g. `{}`", messages::example(key).unwrap_or("interval = \"10s\"")))
            .into());
    }
    if d > MAX_GO_DURATION {
        return Err(src
            .error_at(keys, format!("`{key} = \"{}\"` is longer than Docker can hold", shown(value)))
            .help("Docker stores durations as Go's `time.Duration` (at most ~292 years); use a realistic value such as `30s`")
            .into());
    }
    Ok(d)
}

/// Linux signal names Docker knows (`moby/sys/signal`), without `SIG`.
const SIGNALS: [&str; 34] = [
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
];

/// A stop signal as Docker reads it (a name in any case, with or without `SIG`, `RTMIN+n`,
/// `RTMAX-n`, or a number from 1 to 64), in canonical form: `SIGTERM`, `SIGRTMIN+3`, `15`.
pub fn canonical_signal(signal: &str) -> Option<String> {
    if signal.bytes().all(|b| b.is_ascii_digit()) {
        return signal
            .parse::<u8>()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .map(|n| n.to_string());
    }
    let upper = signal.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if SIGNALS.contains(&name) {
        return Some(format!("SIG{name}"));
    }
    for (base, sign) in [("RTMIN", '+'), ("RTMAX", '-')] {
        let Some(rest) = name.strip_prefix(base) else {
            continue;
        };
        if rest.is_empty() {
            return Some(format!("SIG{base}"));
        }
        let digits = rest.strip_prefix(sign)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u8 = digits.parse().ok().filter(|n| (1..=15).contains(n))?;
        return Some(format!("SIG{base}{sign}{n}"));
    }
    None
}

/// Where the value of a top-level key came from: the package's section, or the workspace's
/// defaults when the package does not set it.
pub struct Origins<'a> {
    /// The package manifest.
    pub package: &'a ManifestSource,
    /// The manifest holding the workspace defaults, when it has a section.
    pub workspace: Option<&'a ManifestSource>,
    /// Top-level keys the package sets itself.
    pub package_keys: Vec<&'static str>,
}

impl Origins<'_> {
    /// A located error at `keys` below the section that holds `keys[0]`.
    fn error_at(&self, keys: &[&str], message: impl Into<String>) -> crate::error::ManifestError {
        let (src, section) = match self.workspace {
            Some(ws) if !self.package_keys.contains(&keys[0]) => (ws, source::WORKSPACE_SECTION),
            _ => (self.package, source::PACKAGE_SECTION),
        };
        src.error_at(&below(&section, keys), message)
    }
}

/// The default image repository of a package: its name lower-cased, accents dropped (`ñandú` ->
/// `nandu`), other characters the grammar refuses turned into `-`.
pub fn image_from_package(name: &str) -> String {
    let mut mapped = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' | '_' => mapped.push(c),
            _ => mapped.push_str(match c {
                'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
                'æ' => "ae",
                'ç' | 'ć' | 'č' => "c",
                'ď' | 'đ' | 'ð' => "d",
                'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
                'ğ' => "g",
                'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
                'ł' | 'ľ' | 'ĺ' => "l",
                'ñ' | 'ń' | 'ň' => "n",
                'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
                'œ' => "oe",
                'ř' | 'ŕ' => "r",
                'ś' | 'š' | 'ş' => "s",
                'ß' => "ss",
                'ť' | 'ţ' => "t",
                'þ' => "th",
                'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
                'ý' | 'ÿ' => "y",
                'ź' | 'ż' | 'ž' => "z",
                _ => "-",
            }),
        }
    }
    // Separators: `_`, `__` or dashes; any other run becomes one `-`; none at the ends.
    let mut out = String::new();
    let mut run = String::new();
    for c in mapped.chars() {
        if c == '_' || c == '-' {
            run.push(c);
            continue;
        }
        if !run.is_empty() && !out.is_empty() {
            let ok = run == "_" || run == "__" || run.bytes().all(|b| b == b'-');
            out.push_str(if ok { &run } else { "-" });
        }
        run.clear();
        out.push(c);
    }
    out
}

/// Applies defaults to the merged layer and checks combinations that no single layer shows.
pub fn resolved(
    facts: &PackageFacts<'_>,
    origins: &Origins<'_>,
    layer: DockerLayer,
) -> Result<ServiceConfig> {
    let src = origins.package;
    let section = super::source::PACKAGE_SECTION;
    let at = |keys: &[&str]| below(&section, keys);

    let bin = match &layer.bin {
        Some(bin) if facts.bins.contains(bin) => bin.clone(),
        Some(bin) => {
            let mut e = src
                .error_at(
                    &at(&["bin"]),
                    format!(
                        "package `{}` has no binary target `{}`",
                        facts.name,
                        shown(bin)
                    ),
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
            let name = image_from_package(facts.name);
            check_image_name(&name).map_err(|why| {
                src.error_at(
                    &section,
                    format!(
                        "no image name can be made from the package name `{}`: {why}",
                        shown(facts.name)
                    ),
                )
                .help("set `image`, e.g. `image = \"ghcr.io/acme/orders\"`")
            })?;
            name
        }
    };

    if layer.dockerfile.is_some() && layer.template.is_some() {
        return Err(origins
            .error_at(&["template"], "`dockerfile` and `template` cannot both be set")
            .help("`dockerfile` uses a hand-written file as is; `template` renders your own template. Keep one")
            .into());
    }
    let strategy = layer.strategy.unwrap_or(Strategy::Host);
    let reference = |key: &str, value: &str| {
        ImageRef::parse(value).map_err(|why| {
            origins
                .error_at(
                    &[key],
                    format!("invalid {key} image `{}`: {why}", shown(value)),
                )
                .help("use `repository:tag`, e.g. `debian:bookworm-slim`")
        })
    };
    let mut base = match &layer.base {
        Some(b) => reference("base", b)?,
        None if layer.static_link == Some(false) => reference("base", DEFAULT_DYNAMIC_BASE)?,
        None => ImageRef::scratch(),
    };
    let static_link = layer.static_link.unwrap_or(base.is_scratch());
    if base.is_scratch() && !static_link {
        return Err(origins
            .error_at(&["static"], "a dynamically linked binary cannot run on `scratch`")
            .help("remove `static = false`, or set `base` to an image with a C library such as `gcr.io/distroless/cc-debian12:nonroot`")
            .into());
    }
    if base.is_scratch() && layer.base_digest.is_some() {
        return Err(origins
            .error_at(&["base-digest"], "`scratch` has no digest")
            .help("remove `base-digest`, or set `base` to the image the digest pins")
            .into());
    }
    if strategy == Strategy::Host && (layer.builder.is_some() || layer.builder_digest.is_some()) {
        let key = if layer.builder.is_some() {
            "builder"
        } else {
            "builder-digest"
        };
        return Err(origins
            .error_at(
                &[key],
                format!("`{key}` is only used by `strategy = \"docker\"`"),
            )
            .help("remove it, or set `strategy = \"docker\"` to build inside that image")
            .into());
    }
    let mut builder = match &layer.builder {
        Some(b) => reference("builder", b)?,
        None => reference("builder", DEFAULT_BUILDER)?,
    };
    for (key, image, digest) in [
        ("base-digest", &mut base, &layer.base_digest),
        ("builder-digest", &mut builder, &layer.builder_digest),
    ] {
        let Some(text) = digest else { continue };
        let digest = Digest::parse(text).map_err(|why| {
            origins
                .error_at(&[key], format!("invalid digest `{}`: {why}", shown(text)))
                .help("a digest is `sha256:` followed by 64 lower-case hex digits")
        })?;
        match &image.digest {
            Some(pinned) if *pinned != digest => {
                return Err(origins
                    .error_at(
                        &[key],
                        format!("`{key}` differs from the digest in the image reference `{image}`"),
                    )
                    .help("keep one digest: in the reference (`image:tag@sha256:…`) or in this key")
                    .into());
            }
            _ => image.digest = Some(digest),
        }
    }
    if let Some(args) = &layer.build_args
        && let Some(reserved) = args.keys().find(|k| *k == "SHA" || *k == "VERSION")
    {
        return Err(origins
            .error_at(
                &["build-args", reserved],
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
        return Err(origins
            .error_at(
                &["env", "SHA"],
                "`SHA` is set by the tool to the full commit SHA",
            )
            .help("remove this entry; the image gets `ENV SHA` from the revision")
            .into());
    }

    let path = |key: &str, value: &Option<String>, kind: PathKind| -> Result<Option<Utf8PathBuf>> {
        let Some(value) = value else { return Ok(None) };
        resolve_inside(value, facts.dir, facts.workspace_root, kind)
            .map(Some)
            .map_err(|why| {
                let what = match kind {
                    PathKind::File => "a regular file of at most 1 MiB",
                    PathKind::Dir => "a directory",
                };
                origins
                    .error_at(&[key], format!("`{key} = \"{}\"` cannot be used: {why}", shown(value)))
                    .help(format!("`{key}` is relative to the package directory and must name {what} inside the repository, e.g. `{}`", messages::example(key).unwrap_or_default()))
                    .into()
            })
    };
    let dockerfile = path("dockerfile", &layer.dockerfile, PathKind::File)?;
    let template = path("template", &layer.template, PathKind::File)?;
    let context = path("context", &layer.context, PathKind::Dir)?
        .unwrap_or_else(|| facts.workspace_root.to_owned());

    let default_entrypoint = vec![format!("/usr/local/bin/{bin}")];
    let parse = |v: &Option<String>, default: u64| {
        v.as_deref()
            .and_then(|v| humantime::parse_duration(v).ok())
            .unwrap_or(Duration::from_secs(default))
    };
    let healthcheck = layer.healthcheck.map(|hc| Healthcheck {
        cmd: hc.cmd.unwrap_or_default(),
        interval: parse(&hc.interval, 30),
        timeout: parse(&hc.timeout, 5),
        start_period: parse(&hc.start_period, 5),
        retries: hc.retries.unwrap_or(3),
    });
    let tags = layer.tags.unwrap_or_default();
    let expose = layer.expose.unwrap_or_default();
    let raw_test = layer.test.unwrap_or_default();
    let ready = raw_test.ready.clone().unwrap_or_default();
    let http = match ready.http {
        Some(h) => {
            let port = match h.port.or(expose.first().copied()) {
                Some(p) => p,
                None => {
                    return Err(origins
                        .error_at(
                            &["test", "ready", "http"],
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
    let test_src = match origins.workspace {
        Some(ws) if !origins.package_keys.contains(&"test") => ws,
        _ => src,
    };
    let test_checks = resolve_test_checks(test_src, &raw_test, &expose)?;
    if ready.health == Some(true) && healthcheck.is_none() && dockerfile.is_none() {
        return Err(origins
            .error_at(
                &["test", "ready", "health"],
                "readiness waits for `healthy` but no healthcheck is configured",
            )
            .help(
                "add a `[package.metadata.docker.healthcheck]` section, or remove `health = true`",
            )
            .into());
    }
    let user = match &layer.user {
        Some(u) => NumericUser::parse(u)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| u.clone()),
        None => DEFAULT_USER.to_owned(),
    };

    Ok(ServiceConfig {
        image,
        bin,
        strategy,
        builder,
        base,
        static_link,
        buildkit: layer.buildkit.unwrap_or(true),
        dockerfile,
        template,
        context,
        build_args: layer.build_args.unwrap_or_default(),
        env: layer.env.unwrap_or_default(),
        expose,
        user,
        entrypoint: layer.entrypoint.unwrap_or(default_entrypoint),
        cmd: layer.cmd.unwrap_or_default(),
        labels: layer.labels.unwrap_or_default(),
        healthcheck,
        stop_signal: layer.stop_signal.as_deref().and_then(canonical_signal),
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
        supply_chain: SupplyChain {
            sbom: layer.sbom.unwrap_or(true),
            sbom_build_dependencies: layer.sbom_build_dependencies.unwrap_or(false),
            provenance: layer.provenance.unwrap_or(true),
            sign_key: layer.sign_key.as_deref().map(|key| {
                // Relative to the manifest that sets it, as cargo resolves its own paths.
                let dir = if origins.package_keys.contains(&"sign-key") {
                    facts.dir
                } else {
                    facts.workspace_root
                };
                key_reference(key, dir)
            }),
        },
    })
}

/// A `sign-key` as the signer reads it: `env://VAR` as is, a path made absolute against `dir`.
pub fn key_reference(key: &str, dir: &camino::Utf8Path) -> String {
    if key.starts_with("env://") || camino::Utf8Path::new(key).is_absolute() {
        key.to_owned()
    } else {
        dir.join(key).into_string()
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

pub(super) fn is_env_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && !b[0].is_ascii_digit()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

#[cfg(test)]
mod tests {
    use crate::config::*;

    #[test]
    fn image_names() {
        for ok in [
            "orders",
            "acme/orders",
            "ghcr.io/acme/orders",
            "localhost:5000/a_b/c-d",
            "[::1]:5000/acme",
            "[fe80::1]/acme/orders",
            "127.0.0.1:5000/x",
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
            "[::1/acme",
            "[zz]:5000/acme",
            "localhost:0/acme",
            "localhost:+5/acme",
        ] {
            assert!(check_image_name(bad).is_err(), "{bad}");
        }
    }

    /// Item 1 of issue 12: nothing but a reference in the grammar gets through.
    #[test]
    fn references_cannot_carry_instructions() {
        let hex = "a".repeat(64);
        for bad in [
            "debian@sha256:x\nRUN touch /pwned".to_string(),
            format!("debian@sha256:{hex}\nRUN touch /pwned"),
            format!("debian@sha256:{}", hex.to_uppercase()),
            "debian:12 \\".into(),
            "debian:12\\".into(),
            "debian:12 AS evil".into(),
            "debian:${TAG}".into(),
            "${BASE}".into(),
            "debian:12\r".into(),
            "debian@md5:abc".into(),
            format!("debian@sha256:{hex}@sha256:{hex}"),
            "debian:12#x".into(),
            " debian".into(),
        ] {
            assert!(ImageRef::parse(&bad).is_err(), "{bad:?}");
        }
        let ok = ImageRef::parse(&format!("[::1]:5000/acme/base:1.2@sha256:{hex}")).unwrap();
        assert_eq!(ok.repository, "[::1]:5000/acme/base");
        assert_eq!(ok.tag.as_deref(), Some("1.2"));
        assert_eq!(
            ok.to_string(),
            format!("[::1]:5000/acme/base:1.2@sha256:{hex}")
        );
        assert!(ImageRef::parse("scratch").unwrap().is_scratch());
        assert!(Digest::parse(&format!("sha256:{}", hex.to_uppercase())).is_err());
    }

    #[test]
    fn tag_templates() {
        assert!(check_tag_template("{branch}-{sha7}-{timestamp}").is_ok());
        assert!(check_tag_template("v{version}").is_ok());
        assert!(check_tag_template("{timestamp}").is_ok());
        for bad in [
            "{nope}",
            "a b",
            "{sha",
            "latest",
            "LATEST",
            "2",
            "1.2",
            "9.9.9",
            "{version}",
            "{version}-{sha7}",
            "1.2.3_x",
            "0.4",
        ] {
            assert!(check_tag_template(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn signals_as_docker_reads_them() {
        for (given, canonical) in [
            ("SIGTERM", "SIGTERM"),
            ("term", "SIGTERM"),
            ("sigint", "SIGINT"),
            ("INT", "SIGINT"),
            ("15", "15"),
            ("SIGRTMIN+3", "SIGRTMIN+3"),
            ("sigrtmax-2", "SIGRTMAX-2"),
            ("RTMIN", "SIGRTMIN"),
        ] {
            assert_eq!(
                canonical_signal(given).as_deref(),
                Some(canonical),
                "{given}"
            );
        }
        for bad in [
            "SIGFOO",
            "0",
            "65",
            "SIGRTMIN+16",
            "SIGRTMIN-1",
            "RTMIN+",
            "",
            "SIG TERM",
            "-15",
        ] {
            assert_eq!(canonical_signal(bad), None, "{bad}");
        }
    }

    #[test]
    fn package_names_give_image_names() {
        for (name, image) in [
            ("orders", "orders"),
            ("Orders_API", "orders_api"),
            ("ñandú", "nandu"),
            ("a_-b", "a-b"),
            ("my__svc", "my__svc"),
            ("-x-", "x"),
            ("日本", ""),
        ] {
            assert_eq!(image_from_package(name), image, "{name}");
        }
    }
}
