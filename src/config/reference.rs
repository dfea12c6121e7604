//! Image references and tags: the distribution grammar for repositories, Docker's tag grammar and
//! the placeholders of tag templates.

/// Placeholders an extra tag template may use.
pub const TAG_PLACEHOLDERS: [&str; 5] = ["branch", "sha7", "sha", "version", "timestamp"];

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
