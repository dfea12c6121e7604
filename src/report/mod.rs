//! The release report (JSON, `target/docker-release/report.json`, and on stdout with
//! `--message-format json`) and the human summary at the end of a release.

pub mod outcomes;
pub mod timings;

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

pub use self::outcomes::{TagOutcome, TagPush};
use crate::checks::TestReport;
use crate::engine::build::Builder;
use crate::error::{Error, Result};
use crate::ui::{human_bytes, short_id};

/// Everything one release did.
#[derive(Debug, Clone, Serialize)]
pub struct ReleaseReport {
    /// Version of cargo-docker-release.
    pub tool_version: String,
    /// Whether every selected service was released.
    pub success: bool,
    /// When the release started (RFC 3339, UTC).
    pub started: String,
    /// Wall time of the whole release.
    pub duration_ms: u64,
    /// One entry per selected service, in plan order.
    pub services: Vec<ServiceReport>,
}

/// How far a service got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceState {
    /// Built, tested and tagged.
    Released,
    /// Built and tested, but not tagged because another service failed.
    NotTagged,
    /// A step of this service failed.
    Failed,
}

/// What the release did for one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceReport {
    /// Cargo package.
    pub package: String,
    /// Crate version.
    pub version: String,
    /// Image repository.
    pub image: String,
    /// Full revision.
    pub revision: String,
    /// How far it got.
    pub state: ServiceState,
    /// The built (or reused) image ID.
    pub image_id: Option<String>,
    /// Image size in bytes.
    pub size: Option<u64>,
    /// Whether an existing image of the same revision and Dockerfile was reused.
    pub reused: bool,
    /// The builder that built the image (`buildkit` or `classic`; for a reused image, the one
    /// its label names).
    pub builder: Option<Builder>,
    /// Bytes of build context sent to the engine.
    pub context_bytes: u64,
    /// Every tag of the plan and what happened to it.
    pub tags: Vec<TagOutcome>,
    /// The tags pushed to the registry (with `--push`), in push order.
    pub pushed: Vec<String>,
    /// Per pushed tag: the digest the registry serves and whether it was verified to be the
    /// tested image (and what `--force` replaced).
    pub push: Vec<TagPush>,
    /// The manifest digest the registry serves for the pushed tags (checked to be the tested
    /// image: its config digest is [`Self::image_id`]).
    pub digest: Option<String>,
    /// Cargo's feature flags the binary was built with (`--features a,b`, `--all-features`,
    /// `--no-default-features`); empty for cargo's defaults.
    pub features: Vec<String>,
    /// The image's labels (the plan's).
    pub labels: BTreeMap<String, String>,
    /// The test stage's results.
    pub tests: Option<TestReport>,
    /// Milliseconds per step.
    pub timings: StepTimings,
    /// The SBOM, provenance and signature attached to [`Self::digest`] (with `--push`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached: Option<crate::supply_chain::Documents>,
    /// The error that stopped this service.
    pub error: Option<String>,
}

/// Milliseconds spent in each step of one service.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StepTimings {
    /// Rendering or reading the Dockerfile.
    pub dockerfile_ms: u64,
    /// `cargo build` on the host (and assembling the context).
    pub cargo_ms: u64,
    /// The engine's image build.
    pub image_ms: u64,
    /// The test stage.
    pub test_ms: u64,
    /// Tagging.
    pub tag_ms: u64,
    /// Pushing and reading the digest back.
    pub push_ms: u64,
    /// Writing and attaching the SBOM, provenance and signature.
    pub attach_ms: u64,
    /// Each phase on the release's timeline (what `--timings` draws).
    pub spans: Vec<timings::Span>,
}

impl ReleaseReport {
    /// Writes the report to `<target_dir>/docker-release/report.json`; returns the path.
    pub fn write(&self, target_dir: &Utf8Path) -> Result<Utf8PathBuf> {
        let dir = target_dir.join("docker-release");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating `{dir}`"), e))?;
        let path = dir.join("report.json");
        std::fs::write(&path, self.json())
            .map_err(|e| Error::io(format!("writing `{path}`"), e))?;
        Ok(path)
    }

    /// The report as pretty JSON, newline-terminated.
    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("reports serialize");
        text.push('\n');
        text
    }

    /// The GitHub Actions job summary (Markdown): per service its state, image (and its builder),
    /// tags (moved, unchanged or held back), digest, tests and time, then each failed service's error.
    pub fn markdown(&self) -> String {
        use crate::ui::github::cell;
        use std::fmt::Write;
        let mut out = String::new();
        let released = self
            .services
            .iter()
            .filter(|s| s.state == ServiceState::Released)
            .count();
        let headline = if self.success {
            format!("released {released} image(s)")
        } else {
            format!("failed ({released} of {} released)", self.services.len())
        };
        let _ = writeln!(out, "### cargo docker-release: {headline}\n");
        let _ = writeln!(
            out,
            "| Service | State | Image | Tags | Digest | Tests | Time |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for s in &self.services {
            let state = match s.state {
                ServiceState::Released => "✅ released",
                ServiceState::NotTagged => "⏸️ not tagged",
                ServiceState::Failed => "❌ failed",
            };
            let builder = match s.builder {
                Some(Builder::BuildKit) => ", BuildKit",
                Some(Builder::Classic) => ", classic builder",
                Some(Builder::Assembled) => ", assembled",
                None => "",
            };
            let image = match &s.image_id {
                Some(id) => format!("`{}` ({}{builder})", cell(&s.image), short_id(id)),
                None => format!("`{}`", cell(&s.image)),
            };
            let tags: Vec<String> = s
                .tags
                .iter()
                .filter(|t| t.planned || t.applied)
                .map(|t| {
                    let what = match (t.applied, t.moved) {
                        (true, true) => "moved",
                        (true, false) => "unchanged",
                        (false, _) => "held back",
                    };
                    format!("`{}` {what}", cell(&t.name))
                })
                .collect();
            let tests = match &s.tests {
                Some(t) if !t.checks.is_empty() => format!(
                    "{}/{} passed",
                    t.checks.iter().filter(|c| c.passed).count(),
                    t.checks.len()
                ),
                _ if s.reused => "passed earlier (reused)".to_owned(),
                _ => "–".to_owned(),
            };
            let t = &s.timings;
            let total = t.dockerfile_ms
                + t.cargo_ms
                + t.image_ms
                + t.test_ms
                + t.tag_ms
                + t.push_ms
                + t.attach_ms;
            let tags = if tags.is_empty() {
                "–".to_owned()
            } else {
                tags.join("<br>")
            };
            let digest = s
                .digest
                .as_deref()
                .map(|d| format!("`{d}`"))
                .unwrap_or_else(|| "–".into());
            let _ = writeln!(
                out,
                "| {} {} | {state} | {image} | {tags} | {digest} | {tests} | {:.1}s |",
                cell(&s.package),
                cell(&s.version),
                total as f64 / 1000.0
            );
        }
        for s in &self.services {
            if let Some(e) = &s.error {
                let fence = "```";
                let text = e.trim_end().replace(fence, "` ` `");
                let _ = writeln!(out, "\n**{}**:\n{fence}\n{text}\n{fence}", cell(&s.package));
            }
        }
        out
    }

    /// Appends [`Self::markdown`] to `path` (`$GITHUB_STEP_SUMMARY`).
    pub fn append_markdown(&self, path: &std::path::Path) -> Result<()> {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(format!("{}\n", self.markdown()).as_bytes()))
            .map_err(|e| Error::io(format!("writing the job summary {}", path.display()), e))
    }

    /// The summary for people: per service its state, image, ID, size, tags and step times.
    pub fn human(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let secs = |ms: u64| format!("{:.1}s", ms as f64 / 1000.0);
        let failed: Vec<&str> = self
            .services
            .iter()
            .filter(|s| s.state == ServiceState::Failed)
            .map(|s| s.package.as_str())
            .collect();
        let held_back = format!(
            "not tagged: held back because {} failed (--keep-going releases the services that pass)",
            failed.join(", ")
        );
        for s in &self.services {
            let state = match s.state {
                ServiceState::Released => "released",
                ServiceState::NotTagged if !failed.is_empty() => &held_back,
                ServiceState::NotTagged => "not tagged",
                ServiceState::Failed => "FAILED",
            };
            let _ = writeln!(out, "{} {} -> {}: {state}", s.package, s.version, s.image);
            if let Some(id) = &s.image_id {
                let _ = writeln!(
                    out,
                    "  image    {}{}{}{}",
                    short_id(id),
                    s.size
                        .map(|b| format!(", {}", human_bytes(b)))
                        .unwrap_or_default(),
                    if s.reused { ", reused" } else { "" },
                    match s.builder {
                        Some(Builder::BuildKit) => ", built by BuildKit",
                        Some(Builder::Classic) => ", built by the classic builder",
                        Some(Builder::Assembled) => ", assembled by the tool",
                        None => "",
                    }
                );
            }
            let tags: Vec<String> = s
                .tags
                .iter()
                .filter(|t| t.applied)
                .map(|t| {
                    if t.moved {
                        t.name.clone()
                    } else {
                        format!("{} (unchanged)", t.name)
                    }
                })
                .collect();
            if !tags.is_empty() {
                let _ = writeln!(out, "  tags     {}", tags.join(", "));
            }
            if let Some(digest) = &s.digest {
                let _ = writeln!(out, "  digest   {digest}");
            }
            for p in &s.push {
                let _ = writeln!(
                    out,
                    "  pushed   {} {}{}{}",
                    p.tag,
                    p.digest,
                    if p.verified {
                        " verified"
                    } else {
                        " NOT verified"
                    },
                    p.replaced
                        .as_deref()
                        .map(|r| format!(" (replaced {r})"))
                        .unwrap_or_default()
                );
            }
            if let Some(tests) = &s.tests
                && !tests.checks.is_empty()
            {
                let passed = tests.checks.iter().filter(|c| c.passed).count();
                let _ = writeln!(
                    out,
                    "  tests    {passed}/{} checks passed",
                    tests.checks.len()
                );
            }
            if let Some(docs) = &s.attached {
                let a = &docs.attached;
                let mut what: Vec<String> = a
                    .predicate_types
                    .iter()
                    .map(|t| crate::supply_chain::predicate_name(t).to_owned())
                    .collect();
                if a.signature.is_some() {
                    what.push("signature".to_owned());
                }
                let _ = writeln!(
                    out,
                    "  attached {} ({}; {})",
                    what.join(", "),
                    if a.signed { "signed" } else { "unsigned" },
                    docs.dir
                );
            }
            let t = &s.timings;
            let _ = writeln!(
                out,
                "  time     dockerfile {}, cargo {}, image {}, test {}, tag {}{}{}",
                secs(t.dockerfile_ms),
                secs(t.cargo_ms),
                secs(t.image_ms),
                secs(t.test_ms),
                secs(t.tag_ms),
                if s.pushed.is_empty() {
                    String::new()
                } else {
                    format!(", push {}", secs(t.push_ms))
                },
                if s.attached.is_none() {
                    String::new()
                } else {
                    format!(", attach {}", secs(t.attach_ms))
                }
            );
            if let Some(e) = &s.error {
                let first = e.lines().next().unwrap_or_default();
                let _ = writeln!(out, "  error    {first}");
            }
        }
        let _ = writeln!(out, "total {}", secs(self.duration_ms));
        out
    }
}

/// Prints a release plan: JSON on stdout, or a readable summary (with each image's inputs at
/// `-v`).
pub fn print_plan(shell: &crate::ui::Shell, plan: &crate::plan::ReleasePlan) -> Result<()> {
    use crate::ui::{MessageFormat, Verbosity};
    match shell.format() {
        MessageFormat::Json => {
            let json = serde_json::to_string_pretty(plan).expect("plans serialize");
            shell.stdout(&format!("{json}\n"))
        }
        MessageFormat::Human if shell.verbosity() >= Verbosity::Verbose => {
            shell.stdout(&plan.human_with_inputs())
        }
        MessageFormat::Human => shell.stdout(&plan.human()),
    }
}
