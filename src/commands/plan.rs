//! `plan --matrix`: the services a release still has to build, as the JSON a CI matrix takes
//! directly (`{"include":[{"package":…,"image":…,"version":…,"revision":…},…]}`), one line on
//! stdout.
//!
//! The registry is the source of truth: a service whose immutable tags of this revision are all
//! there, carrying this revision's labels (what `promote` checks), is already current and is left
//! out. A registry that cannot be read fails the command (exit 1) rather than guess: building a
//! service again would only conflict with its immutable tags.

use serde::Serialize;

use crate::cli::GlobalArgs;
use crate::error::Result;
use crate::pipeline::promote::{self, Registries};
use crate::ui::Shell;
use crate::{load_services, make_plan, plan_options};

/// One job of the matrix.
#[derive(Debug, Clone, Serialize)]
pub struct MatrixEntry {
    /// Cargo package (`-p` of the job's release).
    pub package: String,
    /// Image repository.
    pub image: String,
    /// Crate version.
    pub version: String,
    /// Full revision the job releases.
    pub revision: String,
}

/// `{"include": [...]}`.
#[derive(Debug, Clone, Serialize)]
pub struct Matrix {
    /// One entry per service to build.
    pub include: Vec<MatrixEntry>,
}

/// Prints the matrix of the selected services that are not current in the registry.
pub async fn matrix(global: &GlobalArgs, shell: &Shell) -> Result<()> {
    let (_, services) = load_services(global, true)?;
    let images: Vec<&str> = services.iter().map(|s| s.config.image.as_str()).collect();
    let registries = Registries::connect(&images).await?;
    let known = promote::known_releases(&registries, &images).await?;
    let plan = make_plan(&services, &known, &plan_options(global))?;
    let mut include = Vec::new();
    for image in &plan.images {
        if promote::is_current(&registries, image).await? {
            shell.status(
                "Skipping",
                format!(
                    "{} {}: {} of revision {} is already in the registry",
                    image.package,
                    image.version,
                    image.primary_reference(),
                    &image.revision[..12]
                ),
            );
            continue;
        }
        include.push(MatrixEntry {
            package: image.package.clone(),
            image: image.image.clone(),
            version: image.version.clone(),
            revision: image.revision.clone(),
        });
    }
    let json = serde_json::to_string(&Matrix { include }).expect("matrices serialize");
    shell.stdout(&format!("{json}\n"))
}
