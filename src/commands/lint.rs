//! `lint [-D warnings]`: the Dockerfile each selected package uses, checked by the built-in rules
//! and by hadolint when it is installed.

use camino::Utf8Path;
use clap::Args;

use super::GlobalArgs;
use crate::dockerfile::{DockerfileSource, Severity, rendered_in, written_paths};
use crate::error::{Error, Result};
use crate::ui::{MessageFormat, Shell};

/// `lint`.
#[derive(Debug, Args, Default)]
pub struct LintArgs {
    /// Fail on findings of this level too (`warnings`), like clippy's `-D warnings`; by default
    /// only errors fail
    #[arg(short = 'D', long, value_name = "LEVEL")]
    pub deny: Option<DenyLevel>,
}

/// What `lint --deny` makes fail besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DenyLevel {
    /// Warnings fail too.
    Warnings,
}

impl LintArgs {
    /// The lowest severity that fails.
    pub fn threshold(&self) -> Severity {
        match self.deny {
            Some(DenyLevel::Warnings) => Severity::Warning,
            None => Severity::Error,
        }
    }
}

/// `cargo docker-release lint`: exit 1 when a finding is at or above the threshold: `error`, or
/// `warning` with `--deny warnings`.
pub fn run(global: &GlobalArgs, args: &LintArgs, shell: &Shell) -> Result<()> {
    let (ws, plans) = global.render_plans()?;
    let mut findings = Vec::new();
    for plan in &plans {
        let r = rendered_in(&ws, plan)?;
        let path = match &r.source {
            DockerfileSource::HandWritten(path) => display_path(path),
            DockerfileSource::Generated => {
                format!("{} (generated)", display_path(&written_paths(plan).0))
            }
        };
        findings.extend(crate::dockerfile::lint::lint(&path, &r.dockerfile, true));
    }
    let threshold = args.threshold();
    match shell.format() {
        MessageFormat::Json => {
            let text = serde_json::to_string_pretty(&serde_json::json!({ "findings": findings }))
                .expect("findings serialize");
            shell.stdout(&format!("{text}\n"))?;
        }
        MessageFormat::Human => {
            for f in &findings {
                shell.stdout(&format!("{f}\n"))?;
            }
        }
    }
    for f in &findings {
        shell.annotate_finding(f);
    }
    let blocking = findings.iter().filter(|f| f.severity >= threshold).count();
    if blocking > 0 {
        return Err(Error::Findings {
            message: format!(
                "{blocking} finding{} at or above `{threshold}`",
                if blocking == 1 { "" } else { "s" }
            ),
            help: Some(
                "fix the Dockerfile, or use the generated one (`cargo docker-release dockerfile`)"
                    .into(),
            ),
        });
    }
    shell.status(
        "Linted",
        format!(
            "{} Dockerfile{}: no finding at or above `{threshold}`",
            plans.len(),
            if plans.len() == 1 { "" } else { "s" }
        ),
    );
    Ok(())
}

/// A path relative to the current directory when it is below it.
fn display_path(path: &Utf8Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            path.as_std_path()
                .strip_prefix(cwd)
                .ok()
                .map(|p| p.to_owned())
        })
        .and_then(|p| p.to_str().map(str::to_owned))
        .unwrap_or_else(|| path.to_string())
}
