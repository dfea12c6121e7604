//! From loaded services to a release plan: each service's revision read from git, then the pure
//! planner ([`crate::plan`]) with the releases already known.

use crate::error::Result;
use crate::git;
use crate::plan::{self, KnownReleases, PlanOptions, ReleasePlan};
use crate::workspace::{CargoFeatures, Service};

/// Reads each service's revision from git and computes the release plan.
pub fn make_plan(
    services: &[Service],
    known: &KnownReleases,
    options: &PlanOptions,
) -> Result<ReleasePlan> {
    let Some(first) = services.first() else {
        return Ok(ReleasePlan { images: Vec::new() });
    };
    let repo = git::open(&first.package.workspace_root)?;
    let queries: Vec<git::RevisionQuery<'_>> = services
        .iter()
        .map(|s| git::RevisionQuery {
            package: &s.package.name,
            inputs: &s.inputs,
            mode: s.config.revision,
        })
        .collect();
    let revisions = git::revisions(&repo, &queries)?;
    let lock = std::fs::read(first.package.workspace_root.join("Cargo.lock"))
        .ok()
        .map(|bytes| crate::image::digest(&bytes));
    let mut images = Vec::new();
    for (service, revision) in services.iter().zip(revisions) {
        let known = known
            .get(&service.config.image)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut image =
            plan::plan_image(&service.package, &service.config, &revision, known, options)?;
        if let Some(lock) = &lock {
            image
                .labels
                .insert(plan::LABEL_CARGO_LOCK.into(), lock.clone());
        }
        images.push(image);
    }
    Ok(ReleasePlan { images })
}

/// Plan options: `--allow-dirty`, the features, and the CI run the release belongs to.
pub fn options(allow_dirty: bool, features: CargoFeatures) -> PlanOptions {
    PlanOptions {
        allow_dirty,
        ci_run_url: ci_run_url(),
        features,
    }
}

/// The URL of the CI run, when the CI says it (GitHub Actions, GitLab CI).
fn ci_run_url() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let (Some(server), Some(repo), Some(run)) = (
        var("GITHUB_SERVER_URL"),
        var("GITHUB_REPOSITORY"),
        var("GITHUB_RUN_ID"),
    ) {
        return Some(format!("{server}/{repo}/actions/runs/{run}"));
    }
    var("CI_JOB_URL")
}
