//! The software bill of materials of a shipped binary: which crates were compiled into it.
//!
//! [`resolve`] asks cargo which crates the service's binary is made of, for the target it is
//! built for and the features it is built with, following normal dependencies only (build
//! dependencies on request, dev-dependencies never): `cargo metadata --filter-platform` for the
//! packages and their sources, `cargo tree` for the graph as resolver 2 builds it (metadata
//! unifies features with dev-dependencies), and `Cargo.lock` for each crate's checksum. The [`CrateGraph`] it returns is written as an SPDX 2.3
//! document ([`spdx()`]) or a CycloneDX 1.5 BOM ([`cyclonedx()`]), both describing the image
//! ([`Subject`]) that contains the binary; the same input gives the same bytes. `verify` reads
//! back which image a document describes with [`subject_digest_spdx`] and
//! [`subject_digest_cyclonedx`].

mod cyclonedx;
mod licence;
mod spdx;

use std::collections::{BTreeMap, BTreeSet};

use camino::Utf8Path;
use cargo_metadata::{DependencyKind, MetadataCommand, PackageId};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::features::CargoFeatures;

pub use cyclonedx::{cyclonedx, subject_digest_cyclonedx};
pub use licence::spdx_expression;
pub use spdx::{spdx, subject_digest_spdx};

/// What [`resolve`] needs: the package, how it is built and for which target.
#[derive(Debug, Clone, Copy)]
pub struct SbomInput<'a> {
    /// The `Cargo.toml` of the package (or of its workspace), as `--manifest-path`.
    pub manifest_path: &'a Utf8Path,
    /// The package's name.
    pub package: &'a str,
    /// The feature selection the binary is built with.
    pub features: &'a CargoFeatures,
    /// The target triple the binary is built for (`--filter-platform`), e.g.
    /// [`crate::toolchain::host_triple`].
    pub target: &'a str,
    /// Further cargo flags, e.g. `--locked`, `--offline`, `--frozen`.
    pub cargo_flags: &'a [String],
    /// Whether build dependencies (and what they pull in) are listed too. They run at build
    /// time and are not linked into the binary.
    pub include_build_deps: bool,
}

/// Where a crate came from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CrateSource {
    /// A registry, by its index URL as cargo names it (`https://github.com/rust-lang/crates.io-index`,
    /// `sparse+https://index.crates.io/`, or another registry's).
    Registry {
        /// The index URL.
        index: String,
    },
    /// A git repository at a commit.
    Git {
        /// The repository URL (without cargo's `?branch=`/`?rev=` query).
        url: String,
        /// The full commit SHA cargo resolved.
        commit: String,
    },
    /// A path on this machine (a workspace member or a `path` dependency): no source.
    Path,
}

impl CrateSource {
    /// Parses cargo's source string (`registry+…`, `sparse+…`, `git+…#<commit>`); `None` is a path.
    pub fn from_cargo(repr: Option<&str>) -> CrateSource {
        let Some(repr) = repr else {
            return CrateSource::Path;
        };
        if let Some(rest) = repr.strip_prefix("git+") {
            let (url, commit) = rest.split_once('#').unwrap_or((rest, ""));
            let url = url.split_once('?').map_or(url, |(u, _)| u);
            return CrateSource::Git {
                url: url.to_owned(),
                commit: commit.to_owned(),
            };
        }
        CrateSource::Registry {
            index: repr.strip_prefix("registry+").unwrap_or(repr).to_owned(),
        }
    }

    /// Whether this is crates.io (git or sparse index).
    pub fn is_crates_io(&self) -> bool {
        matches!(self, CrateSource::Registry { index }
            if index == "https://github.com/rust-lang/crates.io-index"
                || index.trim_end_matches('/') == "sparse+https://index.crates.io")
    }
}

/// One crate compiled into the binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crate {
    /// The package name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Where it came from.
    pub source: CrateSource,
    /// The SHA-256 of the `.crate` file, hex, from `Cargo.lock` (registry crates only).
    pub checksum: Option<String>,
    /// The manifest's `license`, as written (may be cargo's old `MIT/Apache-2.0` style).
    pub license: Option<String>,
    /// Whether the manifest names a `license-file` instead.
    pub license_file: bool,
    /// The manifest's `description`.
    pub description: Option<String>,
    /// The manifest's `repository`.
    pub repository: Option<String>,
}

impl Crate {
    /// The package URL: `pkg:cargo/<name>@<version>`, with `repository_url=<index>` for another
    /// registry than crates.io, `vcs_url=git+<url>@<commit>` for a git crate and
    /// `vcs_url=git+<repository>` (if declared) for a path crate.
    pub fn purl(&self) -> String {
        self.purl_at(None)
    }

    /// [`Self::purl`], a path crate pinned to `revision` (the service's own commit).
    pub fn purl_at(&self, revision: Option<&str>) -> String {
        let mut qualifiers = BTreeMap::new();
        match &self.source {
            CrateSource::Registry { .. } if self.source.is_crates_io() => {}
            CrateSource::Registry { index } => {
                qualifiers.insert("repository_url", index.clone());
            }
            CrateSource::Git { url, commit } => {
                qualifiers.insert("vcs_url", format!("git+{url}@{commit}"));
            }
            CrateSource::Path => {
                if let Some(repo) = &self.repository {
                    let vcs = match revision {
                        Some(rev) => format!("git+{repo}@{rev}"),
                        None => format!("git+{repo}"),
                    };
                    qualifiers.insert("vcs_url", vcs);
                }
            }
        }
        purl("cargo", &self.name, &self.version, &qualifiers)
    }

    /// Where the crate's source can be fetched, as SPDX's `downloadLocation` says it: the
    /// crates.io download URL, `git+<url>@<commit>`, or `None` (`NOASSERTION`) for a path crate
    /// or another registry.
    pub fn download_location(&self) -> Option<String> {
        match &self.source {
            CrateSource::Registry { .. } if self.source.is_crates_io() => Some(format!(
                "https://crates.io/api/v1/crates/{}/{}/download",
                self.name, self.version
            )),
            CrateSource::Registry { .. } | CrateSource::Path => None,
            CrateSource::Git { url, commit } => Some(format!("git+{url}@{commit}")),
        }
    }

    /// The licence as a valid SPDX expression, `None` when it is missing, a `license-file`, or
    /// not a valid expression of known identifiers.
    pub fn spdx_license(&self) -> Option<String> {
        self.license.as_deref().and_then(spdx_expression)
    }
}

/// The crates of a binary and their dependency edges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateGraph {
    /// Every crate, sorted by name, version and source.
    pub crates: Vec<Crate>,
    /// The index in [`Self::crates`] of the service package itself.
    pub root: usize,
    /// `(from, to)`: crate `from` depends on crate `to` (indices in [`Self::crates`]), sorted.
    pub edges: Vec<(usize, usize)>,
}

impl CrateGraph {
    /// The service package.
    pub fn root(&self) -> &Crate {
        &self.crates[self.root]
    }

    /// The indices of the crates `index` depends on directly, in order.
    pub fn dependencies_of(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges
            .iter()
            .filter(move |(from, _)| *from == index)
            .map(|(_, to)| *to)
    }

    /// A stable identifier per crate, `<name>-<version>` reduced to `[A-Za-z0-9.-]`, made unique
    /// with a `-2`, `-3`… suffix in the (sorted) order of the crates.
    pub fn ids(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        self.crates
            .iter()
            .map(|c| {
                let base = sanitize(&format!("{}-{}", c.name, c.version));
                let mut id = base.clone();
                let mut n = 1;
                while !seen.insert(id.clone()) {
                    n += 1;
                    id = format!("{base}-{n}");
                }
                id
            })
            .collect()
    }
}

/// The image an SBOM describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// The repository, e.g. `localhost:5000/hello`.
    pub repository: String,
    /// `sha256:<hex>` of the image manifest.
    pub digest: String,
    /// The full commit SHA the service was built from.
    pub revision: String,
    /// RFC 3339 UTC, the commit time (for determinism), e.g. `2026-01-02T03:04:05Z`.
    pub created: String,
    /// The base image, `None` for `FROM scratch`.
    pub base: Option<BaseImage>,
    /// The tool that wrote the document, e.g. `cargo-docker-release 0.1.0`.
    pub tool: String,
}

/// The image a service image was built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The reference as written, e.g. `debian:bookworm-slim`.
    pub reference: String,
    /// `sha256:<hex>` of its manifest.
    pub digest: String,
}

impl Subject {
    /// The image's package URL: `pkg:oci/<last path part>@sha256%3A<hex>?repository_url=<repository>`.
    pub fn purl(&self) -> String {
        oci_purl(&self.repository, &self.digest)
    }

    /// The hex of [`Self::digest`] (without `sha256:`).
    pub fn digest_hex(&self) -> &str {
        digest_hex(&self.digest)
    }

    /// The last part of the repository path, lowercase (the purl's name), e.g. `hello`.
    pub fn name(&self) -> String {
        oci_name(&self.repository)
    }
}

impl BaseImage {
    /// The repository of [`Self::reference`], without tag or digest, e.g. `debian` or
    /// `registry.example/team/base`.
    pub fn repository(&self) -> &str {
        let r = self
            .reference
            .split_once('@')
            .map_or(&*self.reference, |(r, _)| r);
        match r.rfind(':') {
            Some(i) if !r[i..].contains('/') => &r[..i],
            _ => r,
        }
    }

    /// The base's package URL (as [`Subject::purl`]).
    pub fn purl(&self) -> String {
        oci_purl(self.repository(), &self.digest)
    }
}

/// The crates `input.package`'s binary is compiled from: the packages of `cargo metadata
/// --filter-platform <target>`, the graph of `cargo tree -e normal` (with `,build` when asked) for
/// the target and features, the checksums of `Cargo.lock`. Errors: [`Error::Workspace`]
/// (exit 2) when cargo fails or the package is not a member of the workspace, [`Error::Io`] when
/// cargo cannot be started or `Cargo.lock` cannot be read.
pub fn resolve(input: &SbomInput) -> Result<CrateGraph> {
    let mut flags = vec!["--filter-platform".to_owned(), input.target.to_owned()];
    flags.extend(input.features.flags());
    flags.extend(input.cargo_flags.iter().cloned());
    let metadata = MetadataCommand::new()
        .manifest_path(input.manifest_path)
        .other_options(flags)
        .exec()
        .map_err(|e| Error::Workspace {
            message: match &e {
                cargo_metadata::Error::CargoMetadata { stderr } => {
                    format!("`cargo metadata` for the SBOM failed:\n{}", stderr.trim_end())
                }
                other => format!("`cargo metadata` for the SBOM failed: {other}"),
            },
            help: Some(format!(
                "run `cargo metadata --format-version 1 --filter-platform {} --manifest-path {}` to see cargo's own error",
                input.target, input.manifest_path
            )),
        })?;
    let workspace_error = |message: String| Error::Workspace {
        message,
        help: None,
    };
    let packages: BTreeMap<&PackageId, &cargo_metadata::Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let root_id = metadata
        .workspace_members
        .iter()
        .find(|id| {
            packages
                .get(id)
                .is_some_and(|p| p.name.as_str() == input.package)
        })
        .ok_or_else(|| {
            workspace_error(format!(
                "package `{}` is not a member of the workspace of {}",
                input.package, input.manifest_path
            ))
        })?;
    let resolve = metadata.resolve.as_ref().ok_or_else(|| {
        workspace_error("`cargo metadata` returned no dependency graph".to_owned())
    })?;
    let nodes: BTreeMap<&PackageId, &cargo_metadata::Node> =
        resolve.nodes.iter().map(|n| (&n.id, n)).collect();

    // Walk from the root over normal (and, when asked, build) edges: every crate the binary
    // can be made of, for this target.
    let followed = |kind: DependencyKind| {
        kind == DependencyKind::Normal
            || (input.include_build_deps && kind == DependencyKind::Build)
    };
    let mut reached: BTreeSet<&PackageId> = BTreeSet::from([root_id]);
    let mut edges: BTreeSet<(&PackageId, &PackageId)> = BTreeSet::new();
    let mut stack = vec![root_id];
    while let Some(id) = stack.pop() {
        let node = nodes
            .get(id)
            .ok_or_else(|| workspace_error(format!("`cargo metadata` has no node for {id}")))?;
        for dep in &node.deps {
            if !dep.dep_kinds.iter().any(|k| followed(k.kind)) {
                continue;
            }
            edges.insert((id, &dep.pkg));
            if reached.insert(&dep.pkg) {
                stack.push(&dep.pkg);
            }
        }
    }

    // `cargo metadata` unifies features over every target and dependency kind (RFC 2957: it
    // does not model resolver 2), so its walk is a superset: an optional crate that only a
    // dev-dependency's feature enables is in it, yet not in the binary. `cargo tree` resolves
    // features as the build does; its edges, each checked against the walk, are the graph.
    // Cargo 1.77+ writes package IDs as specs (`path+file:///…#name@1.0.0`); older ones do not.
    let spec = if root_id.repr.contains('#') {
        root_id.repr.clone()
    } else {
        format!("{}@{}", input.package, packages[root_id].version)
    };
    let tree = cargo_tree(input, &spec)?;
    let mut tree_ids: Vec<&PackageId> = Vec::new();
    for (name, version, hint) in &tree.nodes {
        let candidates: Vec<&PackageId> = reached
            .iter()
            .copied()
            .filter(|id| {
                let p = packages[id];
                p.name.as_str() == name && p.version.to_string() == *version
            })
            .collect();
        let id = match candidates.as_slice() {
            [one] => *one,
            [] => {
                return Err(workspace_error(format!(
                    "`cargo tree` lists {name} v{version}, which `cargo metadata` does not reach"
                )));
            }
            several => several
                .iter()
                .copied()
                .find(|id| tree_hint_matches(packages[id], hint.as_deref()))
                .ok_or_else(|| {
                    workspace_error(format!(
                        "`cargo tree` lists {name} v{version} ({}), which matches none of its sources",
                        hint.as_deref().unwrap_or("crates.io")
                    ))
                })?,
        };
        tree_ids.push(id);
    }
    if tree_ids.first() != Some(&root_id) {
        return Err(workspace_error(format!(
            "`cargo tree` does not start at {}",
            input.package
        )));
    }
    let mut tree_edges: BTreeSet<(&PackageId, &PackageId)> = BTreeSet::new();
    for (from, to) in &tree.edges {
        let edge = (tree_ids[*from], tree_ids[*to]);
        if !edges.contains(&edge) {
            return Err(workspace_error(format!(
                "`cargo tree` has an edge {} -> {} that `cargo metadata` does not",
                edge.0, edge.1
            )));
        }
        tree_edges.insert(edge);
    }
    let reached: BTreeSet<&PackageId> = tree_ids.iter().copied().collect();
    let edges = tree_edges;

    let checksums = lock_checksums(&metadata.workspace_root.join("Cargo.lock"))?;
    let mut crates: Vec<(Crate, &PackageId)> = reached
        .iter()
        .map(|id| {
            let p = packages
                .get(id)
                .ok_or_else(|| workspace_error(format!("`cargo metadata` has no package {id}")))?;
            let source_repr = p.source.as_ref().map(|s| s.repr.as_str());
            let version = p.version.to_string();
            Ok((
                Crate {
                    name: p.name.to_string(),
                    checksum: checksums
                        .get(&(
                            p.name.to_string(),
                            version.clone(),
                            source_repr.unwrap_or("").to_owned(),
                        ))
                        .cloned(),
                    version,
                    source: CrateSource::from_cargo(source_repr),
                    license: p.license.clone(),
                    license_file: p.license_file.is_some(),
                    description: p.description.clone(),
                    repository: p.repository.clone(),
                },
                *id,
            ))
        })
        .collect::<Result<_>>()?;
    crates.sort_by(|(a, ida), (b, idb)| {
        (&a.name, semver_key(&a.version), &a.source, ida).cmp(&(
            &b.name,
            semver_key(&b.version),
            &b.source,
            idb,
        ))
    });
    let index: BTreeMap<&PackageId, usize> = crates
        .iter()
        .enumerate()
        .map(|(i, (_, id))| (*id, i))
        .collect();
    let edges: BTreeSet<(usize, usize)> = edges
        .iter()
        .map(|(from, to)| (index[from], index[to]))
        .collect();
    Ok(CrateGraph {
        root: index[root_id],
        crates: crates.into_iter().map(|(c, _)| c).collect(),
        edges: edges.into_iter().collect(),
    })
}

/// `cargo tree`'s view of a package's graph: nodes in the order printed (the root first) as
/// `(name, version, source hint)`, and `(parent, child)` edges between their indices.
struct Tree {
    nodes: Vec<(String, String, Option<String>)>,
    edges: Vec<(usize, usize)>,
}

/// Runs `cargo tree -e normal[,build] --prefix depth --format {p}` for the package `spec`.
fn cargo_tree(input: &SbomInput, spec: &str) -> Result<Tree> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let edges = if input.include_build_deps {
        "normal,build"
    } else {
        "normal"
    };
    let out = std::process::Command::new(cargo)
        .args(["tree", "--manifest-path", input.manifest_path.as_str()])
        .args(["-p", spec, "-e", edges, "--target", input.target])
        .args(["--prefix", "depth", "--format", "{p}", "--charset", "ascii"])
        .args(input.features.flags())
        .args(input.cargo_flags)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("running `cargo tree`", e))?;
    if !out.status.success() {
        return Err(Error::Workspace {
            message: format!(
                "`cargo tree` for the SBOM failed:\n{}",
                String::from_utf8_lossy(&out.stderr).trim_end()
            ),
            help: None,
        });
    }
    parse_tree(&String::from_utf8_lossy(&out.stdout)).ok_or_else(|| Error::Workspace {
        message: "`cargo tree` printed what this tool cannot read".to_owned(),
        help: None,
    })
}

/// Reads `cargo tree --prefix depth --format {p}` output: `<depth><name> v<version>[ (<source>)]
/// [ (proc-macro)][ (*)]` per line.
fn parse_tree(text: &str) -> Option<Tree> {
    let mut tree = Tree {
        nodes: Vec::new(),
        edges: Vec::new(),
    };
    let mut index: BTreeMap<(String, String, Option<String>), usize> = BTreeMap::new();
    let mut stack: Vec<usize> = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let depth: usize = line[..digits].parse().ok()?;
        let mut rest = line[digits..].trim();
        for suffix in [" (*)", " (proc-macro)"] {
            rest = rest.strip_suffix(suffix).unwrap_or(rest);
        }
        let (name, rest) = rest.split_once(' ')?;
        let (version, hint) = match rest.split_once(' ') {
            Some((v, h)) => (v, Some(h.trim_start_matches('(').trim_end_matches(')'))),
            None => (rest, None),
        };
        let key = (
            name.to_owned(),
            version.strip_prefix('v')?.to_owned(),
            hint.map(str::to_owned),
        );
        let node = *index.entry(key.clone()).or_insert_with(|| {
            tree.nodes.push(key);
            tree.nodes.len() - 1
        });
        if depth > stack.len() {
            return None;
        }
        stack.truncate(depth);
        if let Some(parent) = stack.last() {
            tree.edges.push((*parent, node));
        }
        stack.push(node);
    }
    Some(tree)
}

/// Whether the source `cargo tree` shows in parentheses (`hint`) is that of `package`: none for
/// crates.io, the directory for a path, `<url>#<short commit>` for git, `registry \`name\``.
fn tree_hint_matches(package: &cargo_metadata::Package, hint: Option<&str>) -> bool {
    let source = CrateSource::from_cargo(package.source.as_ref().map(|s| s.repr.as_str()));
    match (hint, &source) {
        (None, s) => s.is_crates_io(),
        (Some(h), CrateSource::Path) => package
            .manifest_path
            .parent()
            .is_some_and(|dir| dir.as_str() == h),
        (Some(h), CrateSource::Git { url, commit }) => h
            .split_once('#')
            .is_some_and(|(u, c)| u.starts_with(url.as_str()) && commit.starts_with(c)),
        (Some(h), CrateSource::Registry { .. }) => h.starts_with("registry "),
    }
}

/// A version's sort key: semver order when it parses, else the text.
fn semver_key(version: &str) -> (Option<semver::Version>, &str) {
    (semver::Version::parse(version).ok(), version)
}

/// `(name, version, source)` → checksum of every `[[package]]` of a `Cargo.lock` (a missing
/// lock gives none).
fn lock_checksums(path: &Utf8Path) -> Result<BTreeMap<(String, String, String), String>> {
    #[derive(Deserialize)]
    struct Lock {
        #[serde(default)]
        package: Vec<LockPackage>,
    }
    #[derive(Deserialize)]
    struct LockPackage {
        name: String,
        version: String,
        source: Option<String>,
        checksum: Option<String>,
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(format!("reading {path}"), e)),
    };
    let lock: Lock = toml::from_str(&text).map_err(|e| Error::Workspace {
        message: format!("{path} is not a Cargo.lock: {e}"),
        help: None,
    })?;
    Ok(lock
        .package
        .into_iter()
        .filter_map(|p| {
            let checksum = p.checksum?;
            Some(((p.name, p.version, p.source.unwrap_or_default()), checksum))
        })
        .collect())
}

/// `<hex>` of `sha256:<hex>` (the text itself without the prefix).
fn digest_hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The lowercase last path part of an image repository.
fn oci_name(repository: &str) -> String {
    repository
        .rsplit('/')
        .next()
        .unwrap_or(repository)
        .to_ascii_lowercase()
}

/// `pkg:oci/<name>@sha256%3A<hex>?repository_url=<repository>`.
fn oci_purl(repository: &str, digest: &str) -> String {
    let qualifiers = BTreeMap::from([("repository_url", repository.to_owned())]);
    purl("oci", &oci_name(repository), digest, &qualifiers)
}

/// A package URL, each part percent-encoded as the purl spec says, qualifiers sorted by key.
fn purl(kind: &str, name: &str, version: &str, qualifiers: &BTreeMap<&str, String>) -> String {
    let mut out = format!(
        "pkg:{kind}/{}@{}",
        percent_encode(name, ""),
        percent_encode(version, "")
    );
    for (i, (key, value)) in qualifiers.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        out.push_str(&percent_encode(value, ":/"));
    }
    out
}

/// `text` with every byte outside `A-Za-z0-9.-_~` and `keep` as `%XX`.
fn percent_encode(text: &str, keep: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `text` with every character outside `[A-Za-z0-9.-]` replaced by `-` (SPDX identifiers).
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn krate(name: &str, version: &str, source: Option<&str>) -> Crate {
        Crate {
            name: name.into(),
            version: version.into(),
            source: CrateSource::from_cargo(source),
            checksum: None,
            license: None,
            license_file: false,
            description: None,
            repository: None,
        }
    }

    #[test]
    fn purls_name_the_registry_or_the_commit_a_crate_came_from() {
        let io = krate(
            "serde",
            "1.0.0+build.1",
            Some("registry+https://github.com/rust-lang/crates.io-index"),
        );
        assert_eq!(io.purl(), "pkg:cargo/serde@1.0.0%2Bbuild.1");
        let sparse = krate("itoa", "1.0.19", Some("sparse+https://index.crates.io/"));
        assert_eq!(sparse.purl(), "pkg:cargo/itoa@1.0.19");
        assert_eq!(
            sparse.download_location().unwrap(),
            "https://crates.io/api/v1/crates/itoa/1.0.19/download"
        );
        let other = krate("x", "0.1.0", Some("sparse+https://reg.example/index/"));
        assert_eq!(
            other.purl(),
            "pkg:cargo/x@0.1.0?repository_url=sparse%2Bhttps://reg.example/index/"
        );
        assert_eq!(other.download_location(), None);
        let git = krate(
            "g",
            "0.2.0",
            Some("git+https://github.com/o/g?branch=main#0123456789abcdef0123456789abcdef01234567"),
        );
        assert_eq!(
            git.purl(),
            "pkg:cargo/g@0.2.0?vcs_url=git%2Bhttps://github.com/o/g%400123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(
            git.download_location().unwrap(),
            "git+https://github.com/o/g@0123456789abcdef0123456789abcdef01234567"
        );
        let mut path = krate("svc", "1.2.3", None);
        assert_eq!(path.purl(), "pkg:cargo/svc@1.2.3");
        path.repository = Some("https://github.com/o/svc".into());
        assert_eq!(
            path.purl_at(Some("abc")),
            "pkg:cargo/svc@1.2.3?vcs_url=git%2Bhttps://github.com/o/svc%40abc"
        );
    }

    #[test]
    fn cargo_tree_output_becomes_nodes_and_edges() {
        let text = "0svc v0.1.0 (/w/svc)\n1inner v0.3.0 (/w/svc/inner)\n2hex v0.4.3\n\
                    1serde_derive v1.0.229 (proc-macro)\n2hex v0.4.3 (*)\n\
                    1g v0.2.0 (https://github.com/o/g?branch=main#01234567)\n";
        let tree = parse_tree(text).unwrap();
        let names: Vec<&str> = tree.nodes.iter().map(|n| n.0.as_str()).collect();
        assert_eq!(names, ["svc", "inner", "hex", "serde_derive", "g"]);
        assert_eq!(tree.nodes[0].2.as_deref(), Some("/w/svc"));
        assert_eq!(tree.nodes[2].2, None);
        assert_eq!(tree.nodes[3].2, None, "(proc-macro) is no source");
        assert_eq!(
            tree.nodes[4].2.as_deref(),
            Some("https://github.com/o/g?branch=main#01234567")
        );
        assert_eq!(tree.edges, [(0, 1), (1, 2), (0, 3), (3, 2), (0, 4)]);
        assert!(parse_tree("0a v1\n2b v1\n").is_none(), "a skipped depth");
    }

    #[test]
    fn the_image_purl_escapes_the_digest_colon() {
        let subject = Subject {
            repository: "localhost:5000/team/Hello".into(),
            digest: "sha256:abcd".into(),
            revision: String::new(),
            created: String::new(),
            base: None,
            tool: String::new(),
        };
        assert_eq!(
            subject.purl(),
            "pkg:oci/hello@sha256%3Aabcd?repository_url=localhost:5000/team/Hello"
        );
        let base = BaseImage {
            reference: "localhost:5000/base:1.2@sha256:ef".into(),
            digest: "sha256:ef".into(),
        };
        assert_eq!(base.repository(), "localhost:5000/base");
        let base = BaseImage {
            reference: "localhost:5000/base".into(),
            digest: "sha256:ef".into(),
        };
        assert_eq!(base.repository(), "localhost:5000/base");
    }
}
