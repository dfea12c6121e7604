//! `dockerfile [--write | --check]`: the Dockerfile and .dockerignore rendered from the
//! templates, printed, written next to each crate, or compared with the committed files.

use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;

use super::GlobalArgs;
use crate::dockerfile::{DockerfileSource, Rendered, drift, rendered_in, written_paths};
use crate::error::{Error, Result};
use crate::plan::ImagePlan;
use crate::ui::{MessageFormat, Shell};

/// `dockerfile`.
#[derive(Debug, Args)]
pub struct DockerfileArgs {
    /// Write the Dockerfile and .dockerignore next to the crate
    #[arg(long, conflicts_with = "check")]
    pub write: bool,
    /// Exit 1 with a diff when the committed Dockerfile differs from a fresh render
    #[arg(long)]
    pub check: bool,
}

#[derive(Serialize)]
struct RenderedJson<'a> {
    package: &'a str,
    dockerfile: &'a str,
    dockerignore: &'a str,
    build_args: &'a BTreeMap<String, String>,
    generated: bool,
}

/// `cargo docker-release dockerfile [--write | --check]`.
pub fn run(global: &GlobalArgs, args: &DockerfileArgs, shell: &Shell) -> Result<()> {
    let (ws, plans) = global.render_plans()?;
    let mut drifted = Vec::new();
    let mut json = Vec::new();
    let rendered: Vec<(ImagePlan, Rendered)> = plans
        .into_iter()
        .map(|p| rendered_in(&ws, &p).map(|r| (p, r)))
        .collect::<Result<_>>()?;
    for (plan, r) in &rendered {
        let generated = r.source == DockerfileSource::Generated;
        if args.write || args.check {
            if !generated {
                shell.note(format!(
                    "`{}` uses its hand-written Dockerfile; nothing to {}",
                    plan.package,
                    if args.write { "write" } else { "check" }
                ));
                continue;
            }
            let (dockerfile, dockerignore) = written_paths(plan);
            for (path, text) in [
                (&dockerfile, &r.dockerfile),
                (&dockerignore, &r.dockerignore),
            ] {
                if args.write {
                    std::fs::write(path, text)
                        .map_err(|e| Error::io(format!("cannot write `{path}`"), e))?;
                    shell.status("Writing", path);
                } else {
                    let old = match std::fs::read_to_string(path) {
                        Ok(old) => old,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                        Err(e) => return Err(Error::io(format!("cannot read `{path}`"), e)),
                    };
                    if let Some(diff) = drift(path.as_str(), &old, text) {
                        shell.stdout(&diff)?;
                        drifted.push(path.to_string());
                    } else {
                        shell.status("Checked", path);
                    }
                }
            }
        } else if shell.format() == MessageFormat::Json {
            json.push(RenderedJson {
                package: &plan.package,
                dockerfile: &r.dockerfile,
                dockerignore: &r.dockerignore,
                build_args: &r.build_args,
                generated,
            });
        } else {
            if rendered.len() > 1 {
                shell.status("Rendering", &plan.package);
            }
            shell.stdout(&r.dockerfile)?;
        }
    }
    if !json.is_empty() {
        let text = serde_json::to_string_pretty(&json).expect("rendered files serialize");
        shell.stdout(&format!("{text}\n"))?;
    }
    if !drifted.is_empty() {
        return Err(Error::Findings {
            message: format!("generated files are out of date: {}", drifted.join(", ")),
            help: Some(
                "run `cargo docker-release dockerfile --write` and commit the result".into(),
            ),
        });
    }
    Ok(())
}
