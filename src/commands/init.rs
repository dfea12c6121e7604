//! `cargo docker-release init`: appends a commented `[package.metadata.docker]` section.
//!
//! The section is appended, never merged into existing tables, so every byte already in the file
//! stays where it was; toml_edit checks that the file still parses and now has the section.
//!
//! `bin` is what a user ships ([`choose_bin`]): the bin named like the package, else one whose
//! name says it serves (server, service, daemon, api, web), never a `-cli`/`-client` bin when
//! another exists; with several bins, all of them are listed beside `bin`.

use super::GlobalArgs;
use crate::error::{Error, Result};
use crate::ui::Shell;
use crate::workspace::Workspace;

/// `init`: a section for each selected package.
pub fn run(global: &GlobalArgs, shell: &Shell) -> Result<()> {
    let selection = global.selection();
    let ws = Workspace::load(&selection)?;
    for package in ws.select(&selection, false)? {
        let path = init(&ws, package)?;
        shell.status("Adding", format!("[package.metadata.docker] to {path}"));
    }
    Ok(())
}

/// Adds the section to the manifest of `package` and returns the path written.
pub fn init(ws: &Workspace, package: &cargo_metadata::Package) -> Result<String> {
    let path = package.manifest_path.as_str();
    let text =
        std::fs::read_to_string(path).map_err(|e| Error::io(format!("cannot read `{path}`"), e))?;
    let doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| Error::Workspace {
                message: format!("{path} is not valid TOML: {}", e.message()),
                help: None,
            })?;
    let has_section = doc
        .get("package")
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("docker"))
        .is_some();
    if has_section {
        return Err(Error::usage(
            format!(
                "`{}` already has a [package.metadata.docker] section in {path}",
                package.name
            ),
            Some("edit it by hand; `cargo docker-release plan` shows what it does".to_string()),
        ));
    }
    let bins: Vec<&str> = package
        .targets
        .iter()
        .filter(|t| t.is_bin())
        .map(|t| t.name.as_str())
        .collect();
    let _ = ws;
    let section = section_text(
        &package.name.to_lowercase(),
        &choose_bin(&package.name, &bins),
    );

    let mut new_text = text.clone();
    if !new_text.is_empty() && !new_text.ends_with('\n') {
        new_text.push('\n');
    }
    new_text.push_str(&section);
    let check: std::result::Result<toml_edit::DocumentMut, _> = new_text.parse();
    match check {
        Ok(doc)
            if doc
                .get("package")
                .and_then(|p| p.get("metadata"))
                .and_then(|m| m.get("docker"))
                .is_some() => {}
        _ => {
            return Err(Error::usage(
                format!("cannot append a [package.metadata.docker] table to {path}: `package.metadata` is written inline"),
                Some("turn `metadata = { … }` into a `[package.metadata]` table, then run init again".to_string()),
            ));
        }
    }
    std::fs::write(path, new_text).map_err(|e| Error::io(format!("cannot write `{path}`"), e))?;
    Ok(path.to_owned())
}

/// The bin `init` writes, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinChoice {
    /// The chosen bin target (the package name when it has none).
    pub bin: String,
    /// Every bin target of the package, in name order.
    pub candidates: Vec<String>,
    /// Why this one, for the comment (`named like the package`, `its name says "server"`, …).
    pub reason: &'static str,
}

/// Words in a bin's name that say it is the service.
const SERVICE_WORDS: [&str; 5] = ["server", "service", "daemon", "api", "web"];

/// The bin a user ships out of `bins`: the one named like the package; else one whose name
/// says server, service or daemon (anywhere: `apiserver`), or api or web (as a `-`/`_`
/// separated word: not `rapid`); never a `-cli`/`-client` bin when another exists; else the
/// first in name order.
pub fn choose_bin(package: &str, bins: &[&str]) -> BinChoice {
    let mut candidates: Vec<String> = bins.iter().map(|b| (*b).to_owned()).collect();
    candidates.sort();
    candidates.dedup();
    let choice = |bin: &str, reason| BinChoice {
        bin: bin.to_owned(),
        candidates: candidates.clone(),
        reason,
    };
    let norm = |s: &str| s.replace('_', "-").to_lowercase();
    if let Some(b) = candidates.iter().find(|b| norm(b) == norm(package)) {
        return choice(b, "named like the package");
    }
    let not_clients: Vec<&String> = candidates.iter().filter(|b| !is_client(b)).collect();
    let pool: Vec<&String> = if not_clients.is_empty() {
        candidates.iter().collect()
    } else {
        not_clients
    };
    for word in SERVICE_WORDS {
        if let Some(b) = pool.iter().find(|b| says(b, word)) {
            return choice(
                b,
                match word {
                    "server" => "its name says \"server\"",
                    "service" => "its name says \"service\"",
                    "daemon" => "its name says \"daemon\"",
                    "api" => "its name says \"api\"",
                    _ => "its name says \"web\"",
                },
            );
        }
    }
    match pool.first() {
        Some(b) if pool.len() < candidates.len() => choice(b, "the first that is not a client"),
        Some(b) => choice(b, "the first in name order"),
        None => BinChoice {
            bin: package.to_owned(),
            candidates: Vec::new(),
            reason: "the package name",
        },
    }
}

/// `x-cli`, `x_client`, `cli`: a command-line client, not the service.
fn is_client(bin: &str) -> bool {
    let words: Vec<String> = words(bin);
    matches!(words.last().map(String::as_str), Some("cli" | "client"))
        || matches!(words.first().map(String::as_str), Some("cli" | "client"))
}

fn words(bin: &str) -> Vec<String> {
    bin.to_lowercase()
        .split(['-', '_', '.'])
        .map(str::to_owned)
        .collect()
}

fn says(bin: &str, word: &str) -> bool {
    match word {
        "api" | "web" => words(bin).iter().any(|w| w == word),
        _ => bin.to_lowercase().contains(word),
    }
}

/// The commented section `init` appends.
pub fn section_text(image: &str, choice: &BinChoice) -> String {
    let bin = choice.bin.as_str();
    let bin_line = if choice.candidates.len() > 1 {
        format!(
            "bin = \"{bin}\"  # candidates: {} (chosen: {})\n",
            choice
                .candidates
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", "),
            choice.reason,
        )
    } else {
        format!("# bin = \"{bin}\"\n")
    };
    format!(
        r#"
[package.metadata.docker]
# Image repository, without tag, e.g. "ghcr.io/acme/{image}" (default: the package name).
image = "{image}"
# Binary target that goes in the image (default: the only one).
{bin_line}# "host": cargo builds on this machine and the image only packages the binary (fast).
# "docker": a multi-stage Dockerfile builds inside `builder`, dependencies in a cached layer.
strategy = "host"
# Runtime base: "scratch" for a static binary, or e.g. "gcr.io/distroless/cc-debian12:nonroot".
base = "scratch"
# Ports the service listens on.
# expose = [8080]
# Exec-form healthcheck: works without a shell, e.g. the binary's own health subcommand.
# healthcheck = {{ cmd = ["/usr/local/bin/{bin}", "health"], interval = "10s" }}
# Tags: X.Y.Z, X.Y, X, the commit SHA and latest, floating tags moving only forward.
# tags = {{ sha-length = 7, latest = true, extra = ["{{branch}}-{{sha7}}"] }}
# Readiness before the tests: Docker health, TCP ports, an HTTP status, a log line.
# test.ready = {{ timeout = "30s", http = {{ path = "/healthz", status = 200 }} }}
# With --push: an SBOM and SLSA provenance are attached to the image (sbom/provenance = false
# turn them off), all signed with this cosign key, its password in COSIGN_PASSWORD.
# sign-key = "env://COSIGN_PRIVATE_KEY"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chosen(package: &str, bins: &[&str]) -> String {
        choose_bin(package, bins).bin
    }

    #[test]
    fn the_bin_named_like_the_package_wins() {
        assert_eq!(
            chosen("orders", &["orders-cli", "orders", "migrate"]),
            "orders"
        );
        assert_eq!(chosen("my-app", &["my_app", "my-app-server"]), "my_app");
        let c = choose_bin("orders", &["orders"]);
        assert_eq!((c.bin.as_str(), c.candidates.len()), ("orders", 1));
    }

    #[test]
    fn a_bin_that_says_it_serves_wins_over_a_client() {
        // mini-redis: the first bin in name order is the client.
        let c = choose_bin("mini-redis", &["mini-redis-cli", "mini-redis-server"]);
        assert_eq!(c.bin, "mini-redis-server");
        assert_eq!(c.reason, "its name says \"server\"");
        assert_eq!(c.candidates, ["mini-redis-cli", "mini-redis-server"]);
        assert_eq!(chosen("x", &["x-tool", "x-service"]), "x-service");
        assert_eq!(chosen("x", &["x-admin", "xd-daemon"]), "xd-daemon");
        assert_eq!(
            chosen("x", &["kube-apiserver", "kubectl"]),
            "kube-apiserver"
        );
        assert_eq!(chosen("x", &["bench", "x-api"]), "x-api");
        assert_eq!(chosen("x", &["bench", "web"]), "web");
        // "api" and "web" count as words only.
        assert_eq!(chosen("x", &["a-tool", "rapid", "cobweb"]), "a-tool");
        // A client never, when another bin exists, even if its name says "server".
        assert_eq!(chosen("x", &["server-cli", "worker"]), "worker");
        assert_eq!(chosen("x", &["api-client", "zeta"]), "zeta");
        assert_eq!(
            choose_bin("x", &["a-cli", "b"]).reason,
            "the first that is not a client"
        );
    }

    #[test]
    fn only_clients_or_no_bin_still_choose_something() {
        assert_eq!(chosen("x", &["x-cli"]), "x-cli");
        assert_eq!(chosen("x", &["y-client", "x-cli"]), "x-cli");
        let none = choose_bin("lib-only", &[]);
        assert_eq!((none.bin.as_str(), none.candidates.len()), ("lib-only", 0));
    }

    #[test]
    fn several_bins_are_listed_beside_bin() {
        let text = section_text("x", &choose_bin("x", &["x-cli", "x-server"]));
        assert!(
            text.contains(
                "\nbin = \"x-server\"  # candidates: \"x-cli\", \"x-server\" (chosen: its name says \"server\")\n"
            ),
            "{text}"
        );
        let one = section_text("x", &choose_bin("x", &["x"]));
        assert!(one.contains("\n# bin = \"x\"\n"), "{one}");
        let doc: toml_edit::DocumentMut = text.parse().unwrap();
        assert_eq!(
            doc["package"]["metadata"]["docker"]["bin"].as_str(),
            Some("x-server")
        );
    }
}
