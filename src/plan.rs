//! PURE: configuration + git state + known releases -> [`ReleasePlan`].
//!
//! Every tag rule lives here: which tags an image gets, which are held back and why,
//! and which labels it carries. Nothing here touches the file system, git or the engine, so the
//! rules are tested as tables.

use std::collections::BTreeMap;

use camino::Utf8PathBuf;
use semver::Version;
use serde::Serialize;

use crate::config::ServiceConfig;
use crate::error::{Error, Result};
use crate::features::CargoFeatures;
use crate::git::Revision;

/// Label prefix of OCI annotations.
pub const OCI: &str = "org.opencontainers.image";
/// Label marking what the tool built and which package it came from.
pub const LABEL_PACKAGE: &str = "io.cargo-docker-release.package";
/// Label saying whether an image is a release or a development (dirty) build.
pub const LABEL_BUILD: &str = "io.cargo-docker-release.build";
/// Label with the URL of the CI run that built the image.
pub const LABEL_CI_RUN: &str = "io.cargo-docker-release.ci-run";
/// Label with the `sha256:` digest of the workspace's `Cargo.lock` the binary was built from.
pub const LABEL_CARGO_LOCK: &str = "io.cargo-docker-release.cargo-lock";

/// What a release will do, for every selected service.
#[derive(Debug, Clone, Serialize)]
pub struct ReleasePlan {
    /// One entry per service, in the order they were selected.
    pub images: Vec<ImagePlan>,
}

/// What the release will do for one service.
#[derive(Debug, Clone, Serialize)]
pub struct ImagePlan {
    /// Cargo package name.
    pub package: String,
    /// Crate version exactly as in Cargo.toml.
    pub version: String,
    /// Image repository.
    pub image: String,
    /// Full 40-hex revision the image is attributed to.
    pub revision: String,
    /// The revision's commit, branch and dirty state.
    pub git: Revision,
    /// Every tag considered, applied or held back, with the rule that decided.
    pub tags: Vec<TagDecision>,
    /// Image labels (OCI and the user's).
    pub labels: BTreeMap<String, String>,
    /// Directory of the package's Cargo.toml.
    pub package_dir: Utf8PathBuf,
    /// Workspace root directory.
    pub workspace_root: Utf8PathBuf,
    /// cargo's target directory of the workspace.
    pub target_dir: Utf8PathBuf,
    /// Path of the package's Cargo.toml.
    pub manifest_path: Utf8PathBuf,
    /// Resolved configuration.
    pub config: ServiceConfig,
    /// Cargo's feature selection (`--features`, ...), part of the image's build inputs.
    #[serde(skip_serializing_if = "CargoFeatures::is_default")]
    pub features: CargoFeatures,
}

impl ImagePlan {
    /// Tags that will be applied.
    pub fn applied_tags(&self) -> impl Iterator<Item = &TagDecision> {
        self.tags.iter().filter(|t| t.applied)
    }

    /// The host build of this service's binary and test binaries ([`crate::rustflags`]).
    pub fn host_build(&self) -> crate::rustflags::HostBuild<'_> {
        crate::rustflags::HostBuild {
            workspace_root: &self.workspace_root,
            target_dir: &self.target_dir,
            static_link: self.config.static_link,
        }
    }

    /// `image:tag` of the first applied immutable tag (the exact version or the SHA tag).
    pub fn primary_reference(&self) -> String {
        let tag = self
            .applied_tags()
            .find(|t| t.kind.is_immutable())
            .or_else(|| self.applied_tags().next())
            .map(|t| t.name.as_str())
            .unwrap_or("untagged");
        format!("{}:{tag}", self.image)
    }
}

/// Why a tag exists and whether the release applies it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagDecision {
    /// The tag (without repository).
    pub name: String,
    /// Whether the release applies it.
    pub applied: bool,
    /// Which rule produced it.
    pub kind: TagKind,
    /// Why it is applied or held back.
    pub reason: String,
}

/// The rule that produced a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagKind {
    /// `X.Y.Z` (immutable).
    Exact,
    /// `X.Y` (floating).
    Minor,
    /// `X` (floating).
    Major,
    /// `latest` (floating).
    Latest,
    /// The commit SHA (immutable).
    Sha,
    /// `<sha>-dirty` (development build).
    Dirty,
    /// A user template.
    Extra,
}

impl TagKind {
    /// Immutable tags never move to a different image without `--force`.
    pub fn is_immutable(self) -> bool {
        matches!(self, TagKind::Exact | TagKind::Sha)
    }

    /// Floating tags move only after every selected service passed (and was pushed).
    pub fn is_floating(self) -> bool {
        matches!(self, TagKind::Minor | TagKind::Major | TagKind::Latest)
    }
}

/// Releases already known for each image repository (from the engine or the registry).
pub type KnownReleases = BTreeMap<String, Vec<Version>>;

/// The facts about one package the plan needs besides its configuration.
#[derive(Debug, Clone)]
pub struct PackageInput {
    /// Package name.
    pub name: String,
    /// Version from Cargo.toml.
    pub version: Version,
    /// `description`.
    pub description: Option<String>,
    /// `repository`.
    pub repository: Option<String>,
    /// `homepage`.
    pub homepage: Option<String>,
    /// `documentation`.
    pub documentation: Option<String>,
    /// `license`.
    pub license: Option<String>,
    /// `authors`.
    pub authors: Vec<String>,
    /// Directory of its Cargo.toml.
    pub dir: Utf8PathBuf,
    /// Path of its Cargo.toml.
    pub manifest_path: Utf8PathBuf,
    /// Workspace root.
    pub workspace_root: Utf8PathBuf,
    /// cargo's target directory.
    pub target_dir: Utf8PathBuf,
    /// Whether it is the workspace's root package (a `v{version}` git tag is its).
    pub is_root: bool,
}

/// The releases among a repository's tags: each semver tag (`1.4.2`, `1.5.0-rc.1`, and
/// `1.4.2_ab` read back as `1.4.2+ab`, since `+` cannot be in a tag), sorted, once each.
pub fn released_versions<'a>(tags: impl IntoIterator<Item = &'a str>) -> Vec<Version> {
    let mut versions: Vec<Version> = tags
        .into_iter()
        .filter_map(|t| Version::parse(&t.replace('_', "+")).ok())
        .collect();
    versions.sort();
    versions.dedup();
    versions
}

/// Options from the command line that change the plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Allow uncommitted changes in the crate's inputs (only a `-dirty` tag is produced).
    pub allow_dirty: bool,
    /// URL of the CI run, recorded as a label.
    pub ci_run_url: Option<String>,
    /// Cargo's feature selection from the command line.
    pub features: CargoFeatures,
}

/// Computes the plan of one service.
pub fn plan_image(
    package: &PackageInput,
    config: &ServiceConfig,
    git: &Revision,
    known: &[Version],
    options: &PlanOptions,
) -> Result<ImagePlan> {
    check_git_tags(package, git)?;
    if git.dirty && !options.allow_dirty {
        return Err(Error::Git {
            message: format!(
                "`{}` has uncommitted changes in its inputs:\n{}",
                package.name,
                git.dirty_files
                    .iter()
                    .map(|f| format!("  {f}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            help: Some(
                "commit or stash them, or pass `--allow-dirty` for a development build tagged `<sha>-dirty`"
                    .into(),
            ),
        });
    }
    let tags = tags_for(&package.version, config, git, known);
    for tag in tags.iter().filter(|t| t.applied) {
        if !crate::config::is_valid_tag(&tag.name) {
            return Err(Error::Plan {
                message: format!(
                    "`{}` would get the invalid tag `{}`",
                    package.name, tag.name
                ),
                help: Some(format!(
                    "tags are at most 128 characters of letters, digits, `_`, `.` and `-`, not starting with `.` or `-`; it came from the {} rule",
                    tag.reason
                )),
            });
        }
    }
    if !tags.iter().any(|t| t.applied) {
        return Err(Error::Plan {
            message: format!("`{}` would get no tag at all", package.name),
            help: Some(
                "enable `tags.sha` or `tags.semver`, or add an `extra` template in [package.metadata.docker.tags]"
                    .into(),
            ),
        });
    }
    Ok(ImagePlan {
        package: package.name.clone(),
        version: package.version.to_string(),
        image: config.image.clone(),
        revision: git.sha.clone(),
        git: git.clone(),
        labels: labels_for(package, config, git, &tags, options),
        tags,
        package_dir: package.dir.clone(),
        workspace_root: package.workspace_root.clone(),
        target_dir: package.target_dir.clone(),
        manifest_path: package.manifest_path.clone(),
        config: config.clone(),
        features: options.features.clone(),
    })
}

/// Refuses a release when HEAD carries this crate's release tag for another version.
fn check_git_tags(package: &PackageInput, git: &Revision) -> Result<()> {
    let prefix = format!("{}-v", package.name);
    for tag in &git.head_tags {
        let version = if let Some(v) = tag.strip_prefix(&prefix) {
            v
        } else if package.is_root {
            match tag.strip_prefix('v') {
                Some(v) if Version::parse(v).is_ok() => v,
                _ => continue,
            }
        } else {
            continue;
        };
        if Version::parse(version).ok().as_ref() != Some(&package.version) {
            return Err(Error::Plan {
                message: format!(
                    "HEAD is tagged `{tag}` but `{}` is version {} in {}",
                    package.name, package.version, package.manifest_path
                ),
                help: Some(
                    "bump `version` in Cargo.toml to match the git tag, or move the tag to the right commit"
                        .into(),
                ),
            });
        }
    }
    Ok(())
}

/// A semver version as a tag: build metadata's `+` is not allowed in tags and becomes `_`.
pub fn version_tag(version: &Version) -> String {
    version.to_string().replace('+', "_")
}

/// Every tag rule for `version` at `git`, with whether it applies and why.
pub fn tags_for(
    version: &Version,
    config: &ServiceConfig,
    git: &Revision,
    known: &[Version],
) -> Vec<TagDecision> {
    let rules = &config.tags;
    let sha = &git.sha[..rules.sha_length.min(git.sha.len())];
    let mut tags = Vec::new();
    let decide = |name: String, kind: TagKind, applied: bool, reason: String| TagDecision {
        name,
        applied,
        kind,
        reason,
    };

    if git.dirty {
        tags.push(decide(
            format!("{sha}-dirty"),
            TagKind::Dirty,
            true,
            "development build of uncommitted changes (--allow-dirty)".into(),
        ));
        let held = "held back: the tree has uncommitted changes";
        if rules.semver {
            tags.push(decide(
                version_tag(version),
                TagKind::Exact,
                false,
                held.into(),
            ));
        }
        if rules.sha {
            tags.push(decide(sha.to_owned(), TagKind::Sha, false, held.into()));
        }
        if rules.latest {
            tags.push(decide("latest".into(), TagKind::Latest, false, held.into()));
        }
        return tags;
    }

    if rules.semver {
        tags.push(decide(
            version_tag(version),
            TagKind::Exact,
            true,
            "exact version (immutable)".into(),
        ));
        tags.extend(floating_tags_for(version, known));
    }
    if rules.sha {
        tags.push(decide(
            sha.to_owned(),
            TagKind::Sha,
            true,
            format!("commit {} (immutable)", &git.sha[..sha.len()]),
        ));
    }
    if rules.latest {
        tags.push(latest_for(version, known));
    }
    let mut names: std::collections::HashSet<String> =
        tags.iter().map(|t| t.name.clone()).collect();
    for template in &rules.extra {
        let name = render_tag_template(template, version, git);
        let decision = if let Some(why) = crate::config::reserved_tag(&name) {
            let reason = format!(
                "held back: template `{template}` gives `{name}` and {}; extra tags are immutable and claim no version",
                why.strip_prefix("it ").unwrap_or(why)
            );
            decide(name, TagKind::Extra, false, reason)
        } else if !names.insert(name.clone()) {
            let reason =
                format!("held back: template `{template}` duplicates a tag of another rule");
            decide(name, TagKind::Extra, false, reason)
        } else {
            decide(name, TagKind::Extra, true, format!("template `{template}`"))
        };
        tags.push(decision);
    }
    tags
}

/// The compatibility-line tags (`X.Y`, `X`) of `version`, moving only forward.
pub fn floating_tags_for(version: &Version, known: &[Version]) -> Vec<TagDecision> {
    let mut tags = Vec::new();
    let line = |name: String, kind: TagKind, same_line: &dyn Fn(&Version) -> bool| {
        if !version.pre.is_empty() {
            return TagDecision {
                name,
                applied: false,
                kind,
                reason: "held back: pre-releases never move floating tags".into(),
            };
        }
        match newer_release(version, known, same_line) {
            Some(newer) => TagDecision {
                name,
                applied: false,
                kind,
                reason: format!(
                    "held back: {newer} is newer on this line; floating tags only move forward"
                ),
            },
            None => TagDecision {
                name,
                applied: true,
                kind,
                reason: "highest release on this line".into(),
            },
        }
    };
    if version.major > 0 {
        tags.push(line(
            format!("{}.{}", version.major, version.minor),
            TagKind::Minor,
            &|v| v.major == version.major && v.minor == version.minor,
        ));
        tags.push(line(version.major.to_string(), TagKind::Major, &|v| {
            v.major == version.major
        }));
    } else if version.minor > 0 {
        // Cargo's compatibility line for 0.y.z is 0.y; `0` alone would span breaking changes.
        tags.push(line(format!("0.{}", version.minor), TagKind::Minor, &|v| {
            v.major == 0 && v.minor == version.minor
        }));
    }
    tags
}

/// `latest`: only the highest stable release gets it.
fn latest_for(version: &Version, known: &[Version]) -> TagDecision {
    let decide = |applied: bool, reason: String| TagDecision {
        name: "latest".into(),
        applied,
        kind: TagKind::Latest,
        reason,
    };
    if !version.pre.is_empty() {
        return decide(false, "held back: pre-releases never move `latest`".into());
    }
    match newer_release(version, known, &|_| true) {
        Some(newer) => decide(
            false,
            format!("held back: {newer} is a newer stable release; `latest` only moves forward"),
        ),
        None => decide(true, "highest stable release".into()),
    }
}

/// The highest stable known release on the same line that is newer than `version`.
fn newer_release<'a>(
    version: &Version,
    known: &'a [Version],
    same_line: &dyn Fn(&Version) -> bool,
) -> Option<&'a Version> {
    known
        .iter()
        .filter(|k| k.pre.is_empty() && same_line(k))
        .filter(|k| k.cmp_precedence(version) == std::cmp::Ordering::Greater)
        .max_by(|a, b| a.cmp_precedence(b))
}

/// Expands `{branch}`, `{sha7}`, `{sha}`, `{version}` and `{timestamp}` (commit time, UTC).
pub fn render_tag_template(template: &str, version: &Version, git: &Revision) -> String {
    let branch = git
        .branch
        .as_deref()
        .unwrap_or("detached")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect::<String>();
    template
        .replace("{branch}", &branch)
        .replace("{sha7}", &git.sha[..7])
        .replace("{sha}", &git.sha)
        .replace("{version}", &version_tag(version))
        .replace(
            "{timestamp}",
            &git.commit_time.format("%Y%m%d%H%M%S").to_string(),
        )
}

/// The image's labels: OCI annotations from the crate's metadata, the tool's own, the user's.
pub fn labels_for(
    package: &PackageInput,
    config: &ServiceConfig,
    git: &Revision,
    tags: &[TagDecision],
    options: &PlanOptions,
) -> BTreeMap<String, String> {
    // The user's labels go first: the traceability labels below cannot be overridden.
    let mut labels = config.labels.clone();
    let mut set = |key: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            labels.insert(format!("{OCI}.{key}"), v);
        }
    };
    set("title", Some(package.name.clone()));
    set("description", package.description.clone());
    set("version", Some(package.version.to_string()));
    set("revision", Some(git.sha.clone()));
    set(
        "created",
        Some(
            git.commit_time
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    );
    set("source", package.repository.clone());
    set("url", package.homepage.clone());
    set("documentation", package.documentation.clone());
    set("licenses", package.license.clone());
    set("authors", Some(package.authors.join(", ")));
    set("vendor", config.vendor.clone());
    set(
        "ref.name",
        tags.iter()
            .find(|t| t.applied && t.kind.is_immutable() || t.kind == TagKind::Dirty)
            .map(|t| t.name.clone()),
    );
    if !config.base.is_scratch() {
        set("base.name", Some(config.base.name()));
        set(
            "base.digest",
            config.base.digest.as_ref().map(ToString::to_string),
        );
    }
    labels.insert(LABEL_PACKAGE.into(), package.name.clone());
    labels.insert(
        LABEL_BUILD.into(),
        if git.dirty { "development" } else { "release" }.into(),
    );
    if let Some(url) = &options.ci_run_url {
        labels.insert(LABEL_CI_RUN.into(), url.clone());
    }
    labels
}

impl ReleasePlan {
    /// The plan for people: each image, each tag with its reason, the labels.
    pub fn human(&self) -> String {
        self.human_text(false)
    }

    /// [`Self::human`] with every service's inputs (`plan -v`): the paths, relative to the
    /// repository root, whose changes change its revision.
    pub fn human_with_inputs(&self) -> String {
        self.human_text(true)
    }

    fn human_text(&self, inputs: bool) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for image in &self.images {
            let dirty = if image.git.dirty { " (dirty)" } else { "" };
            let _ = writeln!(
                out,
                "{} {} -> {}\n  revision {}{dirty} committed {}",
                image.package,
                image.version,
                image.image,
                image.revision,
                image
                    .git
                    .commit_time
                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
            let _ = writeln!(out, "  tags:");
            let width = image.tags.iter().map(|t| t.name.len()).max().unwrap_or(0);
            for tag in &image.tags {
                let mark = if tag.applied { "+" } else { "-" };
                let _ = writeln!(out, "    {mark} {:width$}  {}", tag.name, tag.reason);
            }
            if inputs {
                let _ = writeln!(out, "  inputs:");
                for input in &image.git.inputs {
                    let shown = if input.is_empty() {
                        "(the whole repository)"
                    } else {
                        input
                    };
                    let _ = writeln!(out, "    {shown}");
                }
            }
            let chain = &image.config.supply_chain;
            let mut attached: Vec<String> = Vec::new();
            if chain.sbom {
                attached.push("SBOM (SPDX, CycloneDX)".into());
            }
            if chain.provenance {
                attached.push("provenance".into());
            }
            if let Some(key) = &chain.sign_key {
                attached.push(format!("signature (key {key})"));
            }
            if !attached.is_empty() {
                let _ = writeln!(out, "  attached when pushed: {}", attached.join(", "));
            }
            let _ = writeln!(out, "  labels:");
            for (k, v) in &image.labels {
                let _ = writeln!(out, "    {k}={}", v.escape_debug());
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ManifestSource, PackageFacts, resolve};
    use camino::Utf8Path;
    use chrono::{TimeZone, Utc};

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn config(section: &str) -> ServiceConfig {
        let text = format!(
            "[package]\nname = \"svc\"\nversion = \"1.0.0\"\n\n[package.metadata.docker]\n{section}\n"
        );
        let src = ManifestSource::parse("Cargo.toml", text).unwrap();
        let facts = PackageFacts {
            name: "svc",
            dir: Utf8Path::new("/w/svc"),
            workspace_root: Utf8Path::new("/w"),
            bins: vec!["svc".into()],
        };
        resolve(&facts, None, &src).unwrap()
    }

    fn revision(dirty: bool) -> Revision {
        Revision {
            sha: SHA.into(),
            commit_time: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            branch: Some("feature/x".into()),
            dirty,
            dirty_files: if dirty {
                vec!["svc/src/main.rs".into()]
            } else {
                vec![]
            },
            head_tags: vec![],
            inputs: vec![],
        }
    }

    fn applied(version: &str, known: &[&str], dirty: bool) -> Vec<String> {
        let known: Vec<Version> = known.iter().map(|v| Version::parse(v).unwrap()).collect();
        tags_for(
            &Version::parse(version).unwrap(),
            &config(""),
            &revision(dirty),
            &known,
        )
        .into_iter()
        .filter(|t| t.applied)
        .map(|t| t.name)
        .collect()
    }

    /// Every tag rule plus the forward-only rule.
    #[test]
    fn the_supply_chain_is_on_by_default_and_a_package_key_is_relative_to_its_manifest() {
        let chain = config("").supply_chain;
        assert!(chain.sbom && chain.provenance && !chain.sbom_build_dependencies);
        assert_eq!(chain.sign_key, None);
        let chain = config(
            "sbom = false\nprovenance = false\nsbom-build-dependencies = true\nsign-key = \"keys/cosign.key\"",
        )
        .supply_chain;
        assert!(!chain.sbom && !chain.provenance && chain.sbom_build_dependencies);
        assert_eq!(chain.sign_key.as_deref(), Some("/w/svc/keys/cosign.key"));
        let chain = config("sign-key = \"env://KEY\"").supply_chain;
        assert_eq!(chain.sign_key.as_deref(), Some("env://KEY"));
    }

    #[test]
    fn tag_rules_table() {
        let table: &[(&str, &[&str], bool, &[&str])] = &[
            (
                "1.4.2",
                &[],
                false,
                &["1.4.2", "1.4", "1", "0123456", "latest"],
            ),
            ("0.4.2", &[], false, &["0.4.2", "0.4", "0123456", "latest"]),
            ("0.0.3", &[], false, &["0.0.3", "0123456", "latest"]),
            ("1.5.0-rc.1", &[], false, &["1.5.0-rc.1", "0123456"]),
            (
                "1.4.2+ab",
                &[],
                false,
                &["1.4.2_ab", "1.4", "1", "0123456", "latest"],
            ),
            ("1.4.2", &[], true, &["0123456-dirty"]),
            // Forward only: an older line still moves its own floating tags, never `latest`.
            (
                "1.9.1",
                &["2.0.1"],
                false,
                &["1.9.1", "1.9", "1", "0123456"],
            ),
            ("1.4.2", &["1.4.3"], false, &["1.4.2", "0123456"]),
            ("1.4.2", &["1.5.0"], false, &["1.4.2", "1.4", "0123456"]),
            ("0.4.2", &["0.4.3", "0.5.0"], false, &["0.4.2", "0123456"]),
            // Pre-releases of newer versions do not hold back stable ones.
            (
                "1.4.2",
                &["2.0.0-rc.1"],
                false,
                &["1.4.2", "1.4", "1", "0123456", "latest"],
            ),
            // Re-releasing the same version moves nothing backwards.
            (
                "1.4.2",
                &["1.4.2", "1.4.1"],
                false,
                &["1.4.2", "1.4", "1", "0123456", "latest"],
            ),
            // Build metadata does not order releases.
            (
                "1.4.2+b",
                &["1.4.2+a"],
                false,
                &["1.4.2_b", "1.4", "1", "0123456", "latest"],
            ),
        ];
        for (version, known, dirty, expected) in table {
            assert_eq!(
                applied(version, known, *dirty),
                *expected,
                "version {version}, known {known:?}, dirty {dirty}"
            );
        }
    }

    #[test]
    fn held_back_tags_say_why() {
        let known = [Version::parse("2.0.1").unwrap()];
        let tags = tags_for(
            &Version::parse("1.9.1").unwrap(),
            &config(""),
            &revision(false),
            &known,
        );
        let latest = tags.iter().find(|t| t.name == "latest").unwrap();
        assert!(!latest.applied);
        assert!(latest.reason.contains("2.0.1"), "{}", latest.reason);
        let pre = tags_for(
            &Version::parse("1.5.0-rc.1").unwrap(),
            &config(""),
            &revision(false),
            &[],
        );
        assert!(
            pre.iter()
                .any(|t| t.name == "1.5" && !t.applied && t.reason.contains("pre-release"))
        );
    }

    #[test]
    fn sha_length_and_switches() {
        let c = config("tags = { sha-length = 12, latest = false, semver = false }");
        let tags: Vec<String> = tags_for(&Version::new(1, 0, 0), &c, &revision(false), &[])
            .into_iter()
            .filter(|t| t.applied)
            .map(|t| t.name)
            .collect();
        assert_eq!(tags, ["0123456789ab"]);
    }

    #[test]
    fn extra_templates_expand() {
        let c =
            config(r#"tags = { extra = ["{branch}-{sha7}-{timestamp}", "v{version}", "{sha}"] }"#);
        let tags = tags_for(
            &Version::parse("1.2.3+m").unwrap(),
            &c,
            &revision(false),
            &[],
        );
        let extra: Vec<&str> = tags
            .iter()
            .filter(|t| t.kind == TagKind::Extra)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(extra, ["feature-x-0123456-20260102030405", "v1.2.3_m", SHA]);
    }

    /// Item 6 of issue 12: `tags.extra` never applies `latest`, a version, a line or a duplicate.
    #[test]
    fn extra_tags_never_spell_floating_versions_or_duplicates() {
        let mut c = config("");
        c.tags.extra = [
            "latest",
            "2",
            "9.9.9",
            "{version}",
            "{sha7}",
            "{branch}-{sha7}",
        ]
        .map(String::from)
        .to_vec();
        let tags = tags_for(
            &Version::parse("2.0.0-rc.1").unwrap(),
            &c,
            &revision(false),
            &[],
        );
        let applied: Vec<&str> = tags
            .iter()
            .filter(|t| t.applied)
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(applied, ["2.0.0-rc.1", "0123456", "feature-x-0123456"]);
        for held in tags
            .iter()
            .filter(|t| t.kind == TagKind::Extra && !t.applied)
        {
            assert!(held.reason.starts_with("held back"), "{held:?}");
        }
        let mut names: Vec<&str> = applied.clone();
        names.dedup();
        assert_eq!(names.len(), applied.len());
    }

    fn input(version: &str) -> PackageInput {
        PackageInput {
            name: "svc".into(),
            version: Version::parse(version).unwrap(),
            description: Some("A \"quoted\"\nservice".into()),
            repository: Some("https://example.com/svc".into()),
            homepage: None,
            documentation: None,
            license: Some("MIT OR Apache-2.0".into()),
            authors: vec!["A <a@example.com>".into(), "B".into()],
            dir: "/w/svc".into(),
            manifest_path: "/w/svc/Cargo.toml".into(),
            workspace_root: "/w".into(),
            target_dir: "/w/target".into(),
            is_root: false,
        }
    }

    #[test]
    fn dirty_tree_is_refused_without_allow_dirty() {
        let err = plan_image(
            &input("1.0.0"),
            &config(""),
            &revision(true),
            &[],
            &PlanOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("svc/src/main.rs"));
        let options = PlanOptions {
            allow_dirty: true,
            ..Default::default()
        };
        let plan =
            plan_image(&input("1.0.0"), &config(""), &revision(true), &[], &options).unwrap();
        assert_eq!(plan.labels[LABEL_BUILD], "development");
    }

    #[test]
    fn no_tag_at_all_is_an_error() {
        let c = config("tags = { semver = false, sha = false, latest = false }");
        let err = plan_image(
            &input("1.0.0"),
            &c,
            &revision(false),
            &[],
            &PlanOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("no tag"), "{err}");
    }

    #[test]
    fn too_long_extra_tag_is_an_error() {
        let c = config(&format!(
            "tags = {{ extra = [\"{}{{sha}}\"] }}",
            "a".repeat(100)
        ));
        let err = plan_image(
            &input("1.0.0"),
            &c,
            &revision(false),
            &[],
            &PlanOptions::default(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("invalid tag"), "{err}");
    }

    #[test]
    fn git_tag_for_another_version_is_refused() {
        let mut git = revision(false);
        git.head_tags = vec!["svc-v1.0.1".into()];
        let err = plan_image(
            &input("1.0.0"),
            &config(""),
            &git,
            &[],
            &PlanOptions::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("svc-v1.0.1"), "{err}");
        git.head_tags = vec!["svc-v1.0.0".into(), "other-v9.0.0".into(), "v3.0.0".into()];
        // `v3.0.0` belongs to the root package, and another crate's tag is not ours.
        assert!(
            plan_image(
                &input("1.0.0"),
                &config(""),
                &git,
                &[],
                &PlanOptions::default()
            )
            .is_ok()
        );
        let mut root = input("1.0.0");
        root.is_root = true;
        assert!(plan_image(&root, &config(""), &git, &[], &PlanOptions::default()).is_err());
    }

    #[test]
    fn labels_come_from_the_crate() {
        let options = PlanOptions {
            ci_run_url: Some("https://ci/run/1".into()),
            ..Default::default()
        };
        let c = config(
            r#"vendor = "Acme"
labels = { "com.acme.team" = "pay", "org.opencontainers.image.revision" = "forged" }"#,
        );
        let plan = plan_image(&input("1.4.2+ab"), &c, &revision(false), &[], &options).unwrap();
        let l = |k: &str| plan.labels.get(&format!("{OCI}.{k}")).cloned();
        assert_eq!(l("revision").as_deref(), Some(SHA));
        assert_eq!(l("version").as_deref(), Some("1.4.2+ab"));
        assert_eq!(l("created").as_deref(), Some("2026-01-02T03:04:05Z"));
        assert_eq!(l("title").as_deref(), Some("svc"));
        assert_eq!(l("description").as_deref(), Some("A \"quoted\"\nservice"));
        assert_eq!(l("authors").as_deref(), Some("A <a@example.com>, B"));
        assert_eq!(l("licenses").as_deref(), Some("MIT OR Apache-2.0"));
        assert_eq!(l("vendor").as_deref(), Some("Acme"));
        assert_eq!(l("ref.name").as_deref(), Some("1.4.2_ab"));
        assert_eq!(l("url"), None);
        assert_eq!(plan.labels["com.acme.team"], "pay");
        assert_eq!(plan.labels[LABEL_CI_RUN], "https://ci/run/1");
    }
}
