//! Image references and tags: the distribution grammar for repositories (with registry hosts,
//! IPv6 included), Docker's tag grammar, digests, and the placeholders of tag templates.
//!
//! [`ImageRef`] is the one type every key holding an image reference parses into (`base`,
//! `builder`, their digests): what renders into `FROM` is its [`Display`](std::fmt::Display), made
//! only of characters the grammar allows, so no value can continue a line, add `AS`, expand `${…}`
//! or start another instruction.

use std::fmt;

use serde::Serialize;

/// Placeholders an extra tag template may use.
pub const TAG_PLACEHOLDERS: [&str; 5] = ["branch", "sha7", "sha", "version", "timestamp"];

/// A content digest: a registered algorithm and its lower-case hex (`sha256:` + 64 digits, or
/// `sha512:` + 128), as the OCI image spec registers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    algorithm: &'static str,
    hex: String,
}

impl Digest {
    /// Parses `algorithm:hex`.
    pub fn parse(text: &str) -> std::result::Result<Digest, String> {
        let Some((algorithm, hex)) = text.split_once(':') else {
            return Err("a digest is `sha256:` followed by 64 lower-case hex digits".into());
        };
        let (algorithm, len) = match algorithm {
            "sha256" => ("sha256", 64),
            "sha512" => ("sha512", 128),
            _ => {
                return Err(format!(
                    "`{}` is not a digest algorithm (use `sha256`)",
                    crate::error::printable(algorithm, 20)
                ));
            }
        };
        if hex.len() != len {
            return Err(format!(
                "a {algorithm} digest has {len} hex digits, this one has {}",
                hex.chars().count()
            ));
        }
        if let Some(c) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(if c.is_ascii_hexdigit() {
                "digests are written in lower-case hex".into()
            } else {
                format!(
                    "`{}` is not a hex digit",
                    crate::error::printable(&c.to_string(), 4)
                )
            });
        }
        Ok(Digest {
            algorithm,
            hex: hex.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

/// A validated image reference `repository[:tag][@digest]`, or `scratch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Repository, with its registry host when it has one.
    pub repository: String,
    /// Tag.
    pub tag: Option<String>,
    /// Digest pinning the content.
    pub digest: Option<Digest>,
}

impl ImageRef {
    /// Parses and validates a reference.
    pub fn parse(text: &str) -> std::result::Result<ImageRef, String> {
        if text == "scratch" {
            return Ok(ImageRef::scratch());
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (text, None),
        };
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t)),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !is_valid_tag(t)
        {
            return Err(format!(
                "`{}` is not a valid tag (letters, digits, `_`, `.`, `-`; at most 128)",
                crate::error::printable(t, 40)
            ));
        }
        check_image_name(repository)?;
        Ok(ImageRef {
            repository: repository.to_owned(),
            tag: tag.map(str::to_owned),
            digest,
        })
    }

    /// The empty base image.
    pub fn scratch() -> ImageRef {
        ImageRef {
            repository: "scratch".into(),
            tag: None,
            digest: None,
        }
    }

    /// Whether this is `scratch`.
    pub fn is_scratch(&self) -> bool {
        self.repository == "scratch" && self.tag.is_none() && self.digest.is_none()
    }

    /// `repository[:tag]`, without the digest.
    pub fn name(&self) -> String {
        match &self.tag {
            Some(t) => format!("{}:{t}", self.repository),
            None => self.repository.clone(),
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())?;
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl Serialize for ImageRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Checks a registry host: a domain name or IPv4 address, or an IPv6 address in brackets
/// (`[::1]`), with an optional port.
fn check_registry_host(host_port: &str) -> std::result::Result<(), String> {
    let shown = || crate::error::printable(host_port, 60);
    let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Err(format!("`{}` has an unclosed `[`", shown()));
        };
        if ip.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`{}` is not an IPv6 address", shown()));
        }
        match after {
            "" => ("", None),
            _ => match after.strip_prefix(':') {
                Some(p) => ("", Some(p)),
                None => return Err(format!("`{}` is not a valid registry host", shown())),
            },
        }
    } else {
        match host_port.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (host_port, None),
        }
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if !host.is_empty() && !host.split('.').all(label_ok) {
        return Err(format!("`{}` is not a valid registry host", shown()));
    }
    if let Some(p) = port
        && !(p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return Err(format!(
            "`{}` is not a valid port",
            crate::error::printable(p, 20)
        ));
    }
    Ok(())
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
    let is_host = first.contains('.')
        || first.contains(':')
        || first.starts_with('[')
        || first == "localhost";
    if parts.len() > 1 && is_host {
        check_registry_host(first)?;
        parts.remove(0);
    }
    for part in parts {
        if let Err(why) = check_path_component(part) {
            return Err(format!(
                "component `{}` {why}",
                crate::error::printable(part, 40)
            ));
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

/// Docker's tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Why `tag` cannot be an extra tag: `latest`, or shaped like a semver version (`1.2.3`,
/// `1.2.3-rc.1`, `1.2.3_build`) or a compatibility line (`1`, `1.2`). Those belong to the semver
/// rules, which move floating tags forward only; an extra tag is immutable and claims no version.
/// Numbers of more than 6 digits (a timestamp, a date) are not version lines.
pub fn reserved_tag(tag: &str) -> Option<&'static str> {
    if tag.eq_ignore_ascii_case("latest") {
        return Some("`latest` is a floating tag that only the `latest` rule moves");
    }
    let component =
        |c: &str| !c.is_empty() && c.len() <= 6 && c.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = tag.split('.').collect();
    if parts.len() <= 2 && parts.iter().all(|c| component(c)) {
        return Some(
            "it is shaped like a compatibility line (`X` or `X.Y`), which the semver rules move",
        );
    }
    if semver::Version::parse(&tag.replacen('_', "+", 1)).is_ok() {
        return Some("it is shaped like a semver version, which only the exact-version rule tags");
    }
    None
}

/// Sample values a template is tried with, so that a template whose every rendering is reserved
/// (`{version}`, `latest`, `2`) is refused where it is written.
const SAMPLE_VERSIONS: [&str; 3] = ["1.2.3", "1.2.3-rc.1", "1.2.3_b"];

/// Checks that a tag template only uses known placeholders, is otherwise tag-safe, and cannot
/// spell `latest`, a version or a version line.
pub fn check_tag_template(template: &str) -> std::result::Result<(), String> {
    let mut rest = template;
    let mut literal = String::new();
    let mut samples: Vec<String> = SAMPLE_VERSIONS.iter().map(|_| String::new()).collect();
    while let Some(open) = rest.find('{') {
        literal.push_str(&rest[..open]);
        for s in &mut samples {
            s.push_str(&rest[..open]);
        }
        let Some(close) = rest[open..].find('}') else {
            return Err("unclosed `{`".into());
        };
        let name = &rest[open + 1..open + close];
        if !TAG_PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "unknown placeholder `{{{}}}`",
                crate::error::printable(name, 30)
            ));
        }
        literal.push('x');
        for (s, version) in samples.iter_mut().zip(SAMPLE_VERSIONS) {
            s.push_str(match name {
                "branch" => "main",
                "sha7" => "abcdef0",
                "sha" => "abcdef0123456789abcdef0123456789abcdef01",
                "version" => version,
                _ => "20260102030405",
            });
        }
        rest = &rest[open + close + 1..];
    }
    literal.push_str(rest);
    for s in &mut samples {
        s.push_str(rest);
    }
    if literal.contains('}') {
        return Err("unmatched `}`".into());
    }
    if !is_valid_tag(&literal) {
        return Err("the text around the placeholders is not valid in a tag (letters, digits, `_`, `.`, `-`; not starting with `.` or `-`)".into());
    }
    if let Some(why) = samples.iter().find_map(|s| reserved_tag(s)) {
        return Err(why.into());
    }
    Ok(())
}
