//! `cargo docker-release init`: appends a commented `[package.metadata.docker]` section.
//!
//! The section is appended, never merged into existing tables, so every byte already in the file
//! stays where it was; toml_edit checks that the file still parses and now has the section.

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
    let bin = bins
        .iter()
        .find(|b| **b == package.name.as_str())
        .or(bins.first())
        .copied()
        .unwrap_or(package.name.as_str());
    let _ = ws;
    let section = section_text(&package.name.to_lowercase(), bin, bins.len() > 1);

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

/// The commented section `init` appends.
pub fn section_text(image: &str, bin: &str, several_bins: bool) -> String {
    let bin_line = if several_bins {
        format!("bin = \"{bin}\"\n")
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
"#
    )
}
