//! cargo_metadata: which packages are services, which are selected, their binaries and the
//! workspace path dependencies that are part of their inputs.

use std::collections::BTreeSet;

use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::{Metadata, MetadataCommand, Package, PackageId, TargetKind};

use crate::config::{self, ManifestSource, PackageFacts, ServiceConfig, Strategy};
use crate::error::{Error, Result};
pub use crate::features::CargoFeatures;
use crate::plan::PackageInput;

/// Package selection and cargo flags, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--manifest-path`.
    pub manifest_path: Option<Utf8PathBuf>,
    /// `-p/--package`.
    pub packages: Vec<String>,
    /// `--workspace`.
    pub workspace: bool,
    /// `--exclude`.
    pub exclude: Vec<String>,
    /// `--locked`, `--offline`, `--frozen`, passed to cargo.
    pub cargo_flags: Vec<String>,
    /// `-F/--features`, `--all-features`, `--no-default-features`.
    pub features: CargoFeatures,
}

/// The workspace as cargo sees it, with each manifest's text for located errors.
#[derive(Debug)]
pub struct Workspace {
    /// `cargo metadata --no-deps`.
    pub metadata: Metadata,
    /// The root manifest (holds `[workspace.metadata.docker]`).
    pub root_manifest: Option<ManifestSource>,
}

/// One selected service: cargo's facts, its manifest and its resolved configuration.
#[derive(Debug, Clone)]
pub struct Service {
    /// What the plan needs from cargo.
    pub package: PackageInput,
    /// Resolved `[package.metadata.docker]`.
    pub config: ServiceConfig,
    /// Files and directories whose changes change the image (absolute), crate directory first.
    pub inputs: Vec<Utf8PathBuf>,
}

/// Reads the workspace and resolves the configuration of every selected service; all their
/// errors at once ([`Error::all`]).
pub fn load_services(
    selection: &Selection,
    require_section: bool,
) -> Result<(Workspace, Vec<Service>)> {
    let (ws, services, problems) = load_each(selection, require_section)?;
    match Error::all(problems) {
        Some(e) => Err(e),
        None => Ok((ws, services)),
    }
}

/// [`load_services`], keeping the services that loaded beside the errors of those that did not
/// (for a preflight that checks the rest too). A workspace that cannot be read at all is the
/// one error.
pub fn load_each(
    selection: &Selection,
    require_section: bool,
) -> Result<(Workspace, Vec<Service>, Vec<Error>)> {
    selection.features.check_names()?;
    let ws = Workspace::load(selection)?;
    let mut services = Vec::new();
    let mut problems = Vec::new();
    for package in ws.select(selection, require_section)? {
        let service = ws.service(package).and_then(|service| {
            selection
                .features
                .check_required(package, &service.config.bin)
                .map(|()| service)
        });
        match service {
            Ok(service) => services.push(service),
            Err(e) => problems.push(e),
        }
    }
    Ok((ws, services, problems))
}

impl Workspace {
    /// Runs `cargo metadata` for the selection's manifest.
    pub fn load(selection: &Selection) -> Result<Self> {
        let mut cmd = MetadataCommand::new();
        cmd.no_deps();
        if let Some(path) = &selection.manifest_path {
            if !path.exists() {
                return Err(Error::usage(
                    format!("manifest path `{path}` does not exist"),
                    Some("point `--manifest-path` at a Cargo.toml".to_string()),
                ));
            }
            cmd.manifest_path(path);
        }
        cmd.other_options(selection.cargo_flags.clone());
        let metadata = cmd.exec().map_err(|e| Error::Workspace {
            message: match &e {
                cargo_metadata::Error::CargoMetadata { stderr } => {
                    format!("`cargo metadata` failed:\n{}", stderr.trim_end())
                }
                other => format!("`cargo metadata` failed: {other}"),
            },
            help: Some("run `cargo metadata --no-deps` to see cargo's own error".into()),
        })?;
        let root_path = metadata.workspace_root.join("Cargo.toml");
        let root_manifest = if root_path.exists() {
            Some(ManifestSource::read(root_path.as_str())?)
        } else {
            None
        };
        Ok(Workspace {
            metadata,
            root_manifest,
        })
    }

    /// The packages the selection names, in workspace order.
    ///
    /// `--workspace` (and a virtual manifest without `-p`) selects every member with a
    /// `[package.metadata.docker]` section; `-p` may name any member but it must have one.
    pub fn select(&self, selection: &Selection, require_section: bool) -> Result<Vec<&Package>> {
        let members: Vec<&Package> = self.metadata.workspace_packages();
        for name in selection.packages.iter().chain(&selection.exclude) {
            if !members.iter().any(|p| p.name.as_str() == name) {
                let names: Vec<String> = members.iter().map(|p| p.name.to_string()).collect();
                let hint = config::messages::strsim_best(name, &names)
                    .map(|b| format!("did you mean `{b}`?"))
                    .unwrap_or_else(|| format!("workspace members: {}", names.join(", ")));
                return Err(Error::usage(
                    format!("package `{name}` is not a member of this workspace"),
                    Some(hint),
                ));
            }
        }
        let has_section = |p: &Package| p.metadata.get("docker").is_some();
        // A misspelt `[package.metadata.dockr]` is an error at its line, not a silent non-service.
        let misspelt = |p: &Package| -> Option<Error> {
            let keys = p.metadata.as_object()?.keys().map(String::as_str);
            config::messages::section_typo(keys)?;
            let src = ManifestSource::read(p.manifest_path.as_str()).ok()?;
            src.misspelt_section("package").map(Error::from)
        };
        if let Some(e) = members
            .iter()
            .filter(|p| !has_section(p))
            .find_map(|p| misspelt(p))
        {
            return Err(e);
        }
        let selected: Vec<&Package> = if !selection.packages.is_empty() {
            members
                .into_iter()
                .filter(|p| selection.packages.iter().any(|n| n == p.name.as_str()))
                .collect()
        } else if selection.workspace || self.metadata.root_package().is_none() {
            members.into_iter().filter(|p| has_section(p)).collect()
        } else {
            self.metadata.root_package().into_iter().collect()
        };
        let selected: Vec<&Package> = selected
            .into_iter()
            .filter(|p| !selection.exclude.iter().any(|n| n == p.name.as_str()))
            .collect();
        if require_section && let Some(p) = selected.iter().find(|p| !has_section(p)) {
            return Err(Error::Workspace {
                message: format!(
                    "package `{}` has no [package.metadata.docker] section in {}",
                    p.name, p.manifest_path
                ),
                help: Some(format!(
                    "run `cargo docker-release init -p {}` to add one",
                    p.name
                )),
            });
        }
        if selected.is_empty() {
            return Err(Error::Workspace {
                message: "no service selected: no workspace member has a [package.metadata.docker] section".into(),
                help: Some("run `cargo docker-release init -p <package>` to make a package a service".into()),
            });
        }
        Ok(selected)
    }

    /// Resolves the configuration and inputs of a selected package.
    pub fn service(&self, package: &Package) -> Result<Service> {
        let manifest = ManifestSource::read(package.manifest_path.as_str())?;
        let dir = package
            .manifest_path
            .parent()
            .unwrap_or(Utf8Path::new("."))
            .to_owned();
        let root = &self.metadata.workspace_root;
        let bins = package
            .targets
            .iter()
            .filter(|t| t.kind.contains(&TargetKind::Bin))
            .map(|t| t.name.clone())
            .collect();
        let facts = PackageFacts {
            name: &package.name,
            dir: &dir,
            workspace_root: root,
            bins,
        };
        let workspace_manifest = self
            .root_manifest
            .as_ref()
            .filter(|m| m.path != manifest.path);
        let config = config::resolve(&facts, workspace_manifest, &manifest)?;

        let inputs = self.inputs_of(package, &dir, &config);

        Ok(Service {
            package: PackageInput {
                name: package.name.to_string(),
                version: package.version.clone(),
                description: package.description.clone(),
                repository: package.repository.clone(),
                homepage: package.homepage.clone(),
                documentation: package.documentation.clone(),
                license: package.license.clone(),
                authors: package.authors.clone(),
                manifest_path: package.manifest_path.clone(),
                workspace_root: root.clone(),
                target_dir: self.metadata.target_directory.clone(),
                is_root: self.metadata.root_package().map(|p| &p.id) == Some(&package.id)
                    || self.metadata.workspace_members.len() == 1,
                dir,
            },
            config,
            inputs,
        })
    }

    /// Everything whose change changes the image of `package` (absolute paths, the crate
    /// directory first; some may not exist, and their creation is a change too): the crate, its
    /// path dependencies, `Cargo.lock`, the root manifest, `.cargo/config(.toml)` and
    /// `rust-toolchain(.toml)` from the crate up to the file system root, the vendored source
    /// directories those configs name, the Dockerfile or template, and for the `docker` strategy
    /// the `.dockerignore` and what a hand-written Dockerfile copies from the context.
    pub fn inputs_of(
        &self,
        package: &Package,
        dir: &Utf8Path,
        config: &ServiceConfig,
    ) -> Vec<Utf8PathBuf> {
        let root = &self.metadata.workspace_root;
        let mut inputs = vec![dir.to_owned()];
        inputs.extend(self.path_dependencies(&package.id));
        inputs.push(root.join("Cargo.lock"));
        if root.as_path() != dir {
            // The root manifest holds workspace defaults, profiles and patches.
            inputs.push(root.join("Cargo.toml"));
        }
        for ancestor in dir.ancestors() {
            for name in CARGO_CONFIGS {
                let path = ancestor.join(name);
                inputs.extend(vendored_sources(&path));
                inputs.push(path);
            }
            for name in TOOLCHAIN_FILES {
                inputs.push(ancestor.join(name));
            }
        }
        inputs.extend(config.dockerfile.iter().cloned());
        inputs.extend(config.template.iter().cloned());
        if config.strategy == Strategy::Docker {
            inputs.extend(crate::build_context::dockerignore_candidates(
                &config.context,
                config.dockerfile.as_deref(),
            ));
            if let Some(text) = config
                .dockerfile
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
            {
                for source in crate::dockerfile_syntax::copied_sources(&text) {
                    inputs.push(if source.is_empty() {
                        config.context.clone()
                    } else {
                        config.context.join(source)
                    });
                }
            }
        }
        inputs
    }

    /// Whether the committed `Cargo.lock` builds the workspace as cargo's `--locked` requires:
    /// it exists, holds every member at its manifest's version, and a package for every
    /// dependency that satisfies its requirement. Checked before anything is built, so that a
    /// version bump committed without its lock file stops the release (exit 2) instead of cargo
    /// rewriting the lock in the middle of it.
    pub fn check_lockfile(&self) -> Result<()> {
        let path = self.metadata.workspace_root.join("Cargo.lock");
        let fix = "run `cargo update --workspace` and commit Cargo.lock; the image is built from \
                   the lock file of the commit it is attributed to (cargo runs with `--locked`)";
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::Workspace {
                    message: format!("`{path}` does not exist"),
                    help: Some(
                        "run `cargo generate-lockfile` and commit Cargo.lock; cargo builds the image with `--locked`".into(),
                    ),
                });
            }
            Err(e) => return Err(Error::io(format!("reading `{path}`"), e)),
        };
        let lock: LockFile = toml::from_str(&text).map_err(|e| Error::Workspace {
            message: format!("`{path}` is not a valid lock file: {}", e.message()),
            help: Some("regenerate it with `cargo generate-lockfile` and commit it".into()),
        })?;
        let mut problems = Vec::new();
        for member in self.metadata.workspace_packages() {
            let locked: Vec<&LockedPackage> = lock
                .package
                .iter()
                .filter(|p| p.name == member.name.as_str() && p.source.is_none())
                .collect();
            if !locked.iter().any(|p| p.version == member.version) {
                problems.push(match locked.first() {
                    Some(p) => format!(
                        "`{}` is {} in {} but {} in Cargo.lock",
                        member.name, member.version, member.manifest_path, p.version
                    ),
                    None => format!("`{}` {} is not in Cargo.lock", member.name, member.version),
                });
                continue;
            }
            for dep in &member.dependencies {
                let satisfied = lock.package.iter().any(|p| {
                    // A path or git dependency without a version accepts pre-releases too.
                    p.name == dep.name
                        && (dep.path.is_some()
                            || dep.req == semver::VersionReq::STAR
                            || dep.req.matches(&p.version))
                });
                if !satisfied {
                    problems.push(format!(
                        "`{}` depends on `{} {}`, which Cargo.lock does not have",
                        member.name, dep.name, dep.req
                    ));
                }
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::Workspace {
            message: format!(
                "`{path}` is out of date with the manifests:\n{}",
                problems
                    .iter()
                    .map(|p| format!("  {p}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            help: Some(fix.into()),
        })
    }

    /// Directories of workspace members `id` depends on by path, transitively.
    pub fn path_dependencies(&self, id: &PackageId) -> Vec<Utf8PathBuf> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![id.clone()];
        let mut dirs = Vec::new();
        while let Some(id) = stack.pop() {
            let Some(pkg) = self.metadata.packages.iter().find(|p| p.id == id) else {
                continue;
            };
            for dep in &pkg.dependencies {
                let Some(path) = &dep.path else { continue };
                if !seen.insert(path.clone()) {
                    continue;
                }
                dirs.push(path.clone());
                if let Some(member) = self
                    .metadata
                    .packages
                    .iter()
                    .find(|p| p.manifest_path.parent() == Some(path.as_path()))
                {
                    stack.push(member.id.clone());
                }
            }
        }
        dirs
    }
}

/// Cargo's configuration files in a directory's `.cargo/` (cargo reads them from the working
/// directory up to the file system root).
const CARGO_CONFIGS: [&str; 2] = [".cargo/config.toml", ".cargo/config"];

/// rustup's toolchain files (searched from the working directory up).
const TOOLCHAIN_FILES: [&str; 2] = ["rust-toolchain.toml", "rust-toolchain"];

/// The `directory` of every `[source.*]` of a cargo config file (vendored sources), resolved as
/// cargo does: relative to the directory holding `.cargo/`.
fn vendored_sources(config: &Utf8Path) -> Vec<Utf8PathBuf> {
    let Ok(text) = std::fs::read_to_string(config) else {
        return Vec::new();
    };
    let Ok(value) = toml::from_str::<toml::Table>(&text) else {
        return Vec::new();
    };
    let base = config
        .parent()
        .and_then(Utf8Path::parent)
        .unwrap_or(Utf8Path::new("."));
    value
        .get("source")
        .and_then(toml::Value::as_table)
        .into_iter()
        .flat_map(|sources| sources.values())
        .filter_map(|source| source.get("directory")?.as_str())
        .map(|d| base.join(d))
        .collect()
}

/// The parts of `Cargo.lock` the lock check reads.
#[derive(Debug, serde::Deserialize)]
struct LockFile {
    #[serde(default)]
    package: Vec<LockedPackage>,
}

#[derive(Debug, serde::Deserialize)]
struct LockedPackage {
    name: String,
    version: semver::Version,
    source: Option<String>,
}
