//! Help lines for configuration errors: an example for every key, "did you mean" for enum values
//! and for a misspelt `[package.metadata.docker]` section.

/// An example of each key, as it is written in `Cargo.toml`.
const EXAMPLES: &[(&str, &str)] = &[
    ("image", r#"image = "ghcr.io/acme/orders""#),
    ("bin", r#"bin = "orders""#),
    ("strategy", r#"strategy = "docker""#),
    ("builder", r#"builder = "rust:1-bookworm""#),
    (
        "builder-digest",
        r#"builder-digest = "sha256:<64 hex digits>""#,
    ),
    ("base", r#"base = "gcr.io/distroless/cc-debian12:nonroot""#),
    ("base-digest", r#"base-digest = "sha256:<64 hex digits>""#),
    ("static", "static = true"),
    ("buildkit", "buildkit = false"),
    ("dockerfile", r#"dockerfile = "Dockerfile""#),
    ("template", r#"template = "docker/Dockerfile.j2""#),
    ("context", r#"context = ".""#),
    ("build-args", r#"build-args = { RUST_LOG = "info" }"#),
    ("env", r#"env = { RUST_LOG = "info" }"#),
    ("expose", "expose = [8080]"),
    ("user", r#"user = "65532:65532""#),
    ("entrypoint", r#"entrypoint = ["/usr/local/bin/orders"]"#),
    ("cmd", r#"cmd = ["serve", "--port", "8080"]"#),
    ("labels", r#"labels = { "com.acme.team" = "payments" }"#),
    (
        "healthcheck",
        r#"healthcheck = { cmd = ["/usr/local/bin/orders", "health"], interval = "10s" }"#,
    ),
    ("stop-signal", r#"stop-signal = "SIGTERM""#),
    (
        "smoke-test",
        r#"smoke-test = ["/usr/local/bin/orders", "--version"]"#,
    ),
    ("vendor", r#"vendor = "Acme""#),
    ("revision", r#"revision = "crate""#),
    ("sbom", "sbom = false"),
    ("sbom-build-dependencies", "sbom-build-dependencies = true"),
    ("provenance", "provenance = false"),
    ("sign-key", r#"sign-key = "env://COSIGN_PRIVATE_KEY""#),
    (
        "tags",
        r#"tags = { sha-length = 12, extra = ["{branch}-{sha7}"] }"#,
    ),
    ("semver", "semver = true"),
    ("sha", "sha = true"),
    ("sha-length", "sha-length = 12"),
    ("latest", "latest = false"),
    ("extra", r#"extra = ["{branch}-{sha7}"]"#),
    ("test", r#"[package.metadata.docker.test] timeout = "2m""#),
    ("timeout", r#"timeout = "30s""#),
    ("interval", r#"interval = "10s""#),
    ("start-period", r#"start-period = "5s""#),
    ("retries", "retries = 3"),
    ("ready", r#"ready = { timeout = "30s", tcp = [8080] }"#),
    ("health", "health = true"),
    ("tcp", "tcp = [8080]"),
    ("http", r#"http = { path = "/healthz", status = 200 }"#),
    ("log", r#"log = "listening on""#),
    ("path", r#"path = "/healthz""#),
    ("port", "port = 8080"),
    ("status", "status = 0"),
    ("method", r#"method = "GET""#),
    ("body", r#"body = ["{version}"]"#),
    ("body-not", r#"body-not = ["error"]"#),
    ("data", r#"data = "{}""#),
    (
        "structure",
        r#"structure = { user = "non-root", healthcheck = true }"#,
    ),
    ("max-size", r#"max-size = "50MB""#),
    (
        "files",
        r#"files = [{ path = "/usr/local/bin/orders", mode = "0755" }]"#,
    ),
    ("absent", r#"absent = ["/bin/sh"]"#),
    ("mode", r#"mode = "0755""#),
    ("owner", r#"owner = "0:0""#),
    (
        "exec",
        r#"[[package.metadata.docker.test.exec]] cmd = ["/usr/local/bin/orders", "--version"]"#,
    ),
    (
        "cargo",
        r#"[[package.metadata.docker.test.cargo]] test = "smoke""#,
    ),
    (
        "host",
        r#"[[package.metadata.docker.test.host]] cmd = ["./check.sh"]"#,
    ),
    ("args", r#"args = ["--test-threads", "1"]"#),
    ("name", r#"name = "version""#),
    ("stdout", r#"stdout = ["{version}"]"#),
    ("stdout-not", r#"stdout-not = ["panicked"]"#),
    ("stderr", r#"stderr = ["ready"]"#),
    ("stderr-not", r#"stderr-not = ["error"]"#),
    (
        "shutdown",
        r#"shutdown = { timeout = "10s", exit-code = 0 }"#,
    ),
    ("exit-code", "exit-code = 0"),
];

/// How `key` is written, e.g. `expose = [8080]`.
pub fn example(key: &str) -> Option<&'static str> {
    EXAMPLES.iter().find(|(k, _)| *k == key).map(|(_, e)| *e)
}

/// The help of a wrong-type error on `key` (`None`: the key is unknown), from serde's `expected …`.
pub fn type_help(key: Option<&str>, message: &str) -> String {
    let expected = message
        .split_once(", expected ")
        .map(|(_, e)| e.lines().next().unwrap_or(e).trim().to_owned());
    let expected = expected.map(|e| match e.as_str() {
        "a sequence" => "a list `[…]`".to_owned(),
        "a map" | "struct" => "a table `{ … }`".to_owned(),
        "a boolean" => "`true` or `false`".to_owned(),
        other => other.to_owned(),
    });
    match (key, key.and_then(example), expected) {
        (Some(k), Some(ex), Some(exp)) => format!("`{k}` takes {exp}, e.g. `{ex}`"),
        (Some(k), Some(ex), None) => format!("write `{k}` like this: `{ex}`"),
        (_, _, Some(exp)) => format!("this value must be {exp}; README.md lists every key"),
        _ => "this is not valid TOML at the caret: check quotes, brackets and commas (https://toml.io)".into(),
    }
}

/// "did you mean" for an enum value: the same word in the right case, else the closest.
pub fn enum_help(value: &str, expected: &[String]) -> String {
    let choices = expected
        .iter()
        .map(|e| format!("`{e}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    let best = expected
        .iter()
        .find(|e| e.eq_ignore_ascii_case(value))
        .map(String::as_str)
        .or_else(|| strsim_best(&value.to_ascii_lowercase(), expected));
    match best {
        Some(b) => format!("did you mean `{b}`? (values are lower-case: {choices})"),
        None => format!("use {choices}"),
    }
}

/// A key of `[package.metadata]` that is probably a misspelt `docker` (`dockr`, `Docker`,
/// `docker-release`), when there is no `docker` key.
pub fn section_typo<'a>(keys: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let keys: Vec<&str> = keys.into_iter().collect();
    if keys.contains(&"docker") {
        return None;
    }
    keys.into_iter()
        .find(|k| {
            let lower = k.to_ascii_lowercase();
            lower == "docker"
                || lower.starts_with("docker")
                || strsim::damerau_levenshtein(&lower, "docker") <= 2 && lower.len() >= 4
        })
        .map(str::to_owned)
}

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub fn strsim_best<'a>(input: &str, candidates: &'a [String]) -> Option<&'a str> {
    // Comparing costs the product of the lengths: a 1 MB key is no typo of a 10-byte one.
    if input.len() > 100 {
        return None;
    }
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_values_get_a_suggestion() {
        let choices = ["host".to_string(), "docker".to_string()];
        assert!(enum_help("Docker", &choices).contains("`docker`"));
        assert!(enum_help("dokcer", &choices).contains("`docker`"));
        let revisions = ["crate".to_string(), "head".to_string()];
        assert!(enum_help("HEAD", &revisions).contains("did you mean `head`"));
        assert!(enum_help("zzz", &revisions).starts_with("use"));
    }

    #[test]
    fn misspelt_sections_are_found() {
        for typo in ["dockr", "Docker", "docker-release", "dcoker", "doker"] {
            assert_eq!(
                section_typo(["docs", typo]).as_deref(),
                Some(typo),
                "{typo}"
            );
        }
        assert_eq!(section_typo(["docs", "release", "deb"]), None);
        assert_eq!(section_typo(["docker", "dockr"]), None);
    }

    #[test]
    fn every_key_of_the_layers_has_an_example() {
        // layer.rs is the one list of keys: `"key" field: Type => rule,` in the mergeable layers,
        // `pub field: Type,` (serde's kebab-case of the field) in the others.
        let text = include_str!("layer.rs");
        let mut keys = 0;
        for line in text.lines().map(str::trim) {
            let key = if let Some(rest) = line.strip_prefix('"') {
                match rest.split_once('"') {
                    Some((key, decl)) if decl.contains("=>") => key.to_owned(),
                    _ => continue,
                }
            } else if let Some(field) = line.strip_prefix("pub ") {
                match field.split_once(':') {
                    Some((name, _)) if !name.contains([' ', '(', '$']) => name.replace('_', "-"),
                    _ => continue,
                }
            } else {
                continue;
            };
            assert!(example(&key).is_some(), "no example for `{key}`");
            keys += 1;
        }
        assert!(keys > 60, "only {keys} keys found in layer.rs");
    }
}
