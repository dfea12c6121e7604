//! `promote`: the floating tags of every selected service, moved inside the registry in one job
//! that has built nothing and holds no image (see [`crate::pipeline::promote`] for the policy).

use super::GlobalArgs;
use crate::error::{Error, Result};
use crate::pipeline::planning::make_plan;
use crate::pipeline::promote::{self, PromotionReport};
use crate::plan::ImagePlan;
use crate::ui::{MessageFormat, Shell};

/// `promote`.
pub fn run(global: &GlobalArgs, shell: &Shell) -> Result<()> {
    super::block_on(promote(global, shell))
}

/// Plans from the registry's releases, checks every service, moves the floating tags, reports.
async fn promote(global: &GlobalArgs, shell: &Shell) -> Result<()> {
    let started = std::time::Instant::now();
    let started_at = chrono::Utc::now();
    let (ws, services) = global.load_services(true)?;
    let images: Vec<&str> = services.iter().map(|s| s.config.image.as_str()).collect();
    let registries = promote::connect_registries(&images).await?;
    let known = promote::known_releases(&registries, &images).await?;
    let plan = make_plan(&services, &known, &global.plan_options())?;
    if let Some(dirty) = plan.images.iter().find(|p| p.git.dirty) {
        return Err(Error::usage(
            format!(
                "`{}` has uncommitted changes: development builds are never promoted",
                dirty.package
            ),
            Some("commit the changes, release them with `--stage immutable`, then promote".into()),
        ));
    }
    let plans: Vec<&ImagePlan> = plan.images.iter().collect();
    let (services, failure) = promote::promote(&registries, &plans, shell).await;
    let report = PromotionReport {
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        success: failure.is_none(),
        started: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        duration_ms: started.elapsed().as_millis() as u64,
        services,
    };
    let path = report.write(&ws.metadata.target_directory)?;
    match shell.format() {
        MessageFormat::Json => shell.stdout(&report.json())?,
        MessageFormat::Human => shell.raw(&format!("\n{}", report.human())),
    }
    shell.verbose("Wrote", &path);
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        report.append_markdown(std::path::Path::new(&summary))?;
    }
    match failure {
        Some(e) => Err(e),
        None => {
            shell.status(
                "Finished",
                format!(
                    "promotion of {} image(s) in {:.1}s",
                    plans.len(),
                    started.elapsed().as_secs_f64()
                ),
            );
            Ok(())
        }
    }
}
