//! cargo_metadata: which packages are services, which are selected, their binaries and the
//! workspace path dependencies that are part of their inputs.

use std::collections::BTreeSet;

use camino::{Utf8Path, Utf8PathBuf};
use cargo_metadata::{Metadata, MetadataCommand, Package, PackageId, TargetKind};

use crate::config::{self, ManifestSource, PackageFacts, ServiceConfig};
use crate::error::{Error, Result};
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
                let hint = config::source::strsim_best(name, &names)
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

        let mut inputs = vec![dir.clone()];
        inputs.extend(self.path_dependencies(&package.id));
        inputs.push(root.join("Cargo.lock"));
        inputs.extend(config.dockerfile.iter().cloned());
        inputs.extend(config.template.iter().cloned());
        if self.root_manifest.is_some() && root.as_path() != dir.as_path() {
            // The root manifest holds workspace defaults and profiles.
            inputs.push(root.join("Cargo.toml"));
        }

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
                is_root: self.metadata.root_package().map(|p| &p.id) == Some(&package.id)
                    || self.metadata.workspace_members.len() == 1,
                dir,
            },
            config,
            inputs,
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
