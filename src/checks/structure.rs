//! Structure checks: facts about the image itself, read without starting it (labels, `ENV SHA`,
//! user, healthcheck, entrypoint, ports, size, files). Files are read through a created, never
//! started container and the engine's archive API, so they work on `scratch` images.

use std::collections::HashMap;
use std::time::Instant;

use bollard::models::ImageInspect;

use super::{CheckResult, Session};
use crate::engine::container::{CONTAINER_LABEL, ContainerSpec, OWNER_LABEL, owner_id};
use crate::error::Result;
use crate::plan::OCI;

/// The image's healthcheck command as the engine records it (`["CMD", …]` / `["CMD-SHELL", …]`).
pub fn healthcheck_test(image: &ImageInspect) -> Option<Vec<String>> {
    let test = image.config.as_ref()?.healthcheck.as_ref()?.test.clone()?;
    match test.first().map(String::as_str) {
        None | Some("NONE") => None,
        _ => Some(test),
    }
}

/// The exec-form command that runs the image's health check.
pub fn health_command(test: &[String]) -> Option<Vec<String>> {
    match test.split_first() {
        Some((kind, rest)) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        Some((kind, [script])) if kind == "CMD-SHELL" => {
            Some(vec!["/bin/sh".into(), "-c".into(), script.clone()])
        }
        _ => None,
    }
}

impl Session<'_> {
    /// Runs every structure check; returns their results.
    pub(super) async fn structure(&self, image: &ImageInspect) -> Result<Vec<CheckResult>> {
        let checks = &self.plan.config.test.structure;
        let config = image.config.clone().unwrap_or_default();
        let revision = &self.plan.revision;
        let mut results = Vec::new();
        let started = Instant::now();
        let check = |name: &str, problem: Option<String>| {
            CheckResult::new(
                &format!("structure: {name}"),
                "structure",
                started,
                problem.is_none(),
                problem.unwrap_or_default(),
            )
        };

        let labels = config.labels.clone().unwrap_or_default();
        let mut problems = Vec::new();
        for key in ["revision", "version"] {
            let key = format!("{OCI}.{key}");
            let Some(expected) = self.plan.labels.get(&key) else {
                continue;
            };
            match labels.get(&key) {
                Some(v) if v == expected => {}
                Some(v) => problems.push(format!("label {key} is `{v}`, expected `{expected}`")),
                None => problems.push(format!("label {key} is missing (expected `{expected}`)")),
            }
        }
        results.push(check("labels", join(problems)));

        let env = config.env.clone().unwrap_or_default();
        let sha = env.iter().find_map(|e| e.strip_prefix("SHA="));
        results.push(check(
            "ENV SHA",
            match sha {
                Some(s) if s == revision => None,
                Some(s) => Some(format!("ENV SHA is `{s}`, expected `{revision}`")),
                None => Some(format!("the image has no ENV SHA (expected `{revision}`)")),
            },
        ));

        if let Some(required) = &checks.user {
            let user = config.user.clone().unwrap_or_default();
            let uid = user.split(':').next().unwrap_or_default();
            let problem = match required {
                None if uid.is_empty() || uid == "0" || uid == "root" => Some(format!(
                    "the image runs as root (USER is `{}`)",
                    if user.is_empty() { "unset" } else { &user }
                )),
                None => None,
                Some(u) if *u != user => Some(format!("USER is `{user}`, expected `{u}`")),
                Some(_) => None,
            };
            results.push(check("user", problem));
        }
        if checks.healthcheck {
            let problem = healthcheck_test(image)
                .is_none()
                .then(|| "the image declares no HEALTHCHECK".to_string());
            results.push(check("healthcheck", problem));
        }
        if let Some(required) = &checks.entrypoint {
            let actual = config.entrypoint.clone().unwrap_or_default();
            let problem = (actual != *required)
                .then(|| format!("ENTRYPOINT is {actual:?}, expected {required:?}"));
            results.push(check("entrypoint", problem));
        }
        if !checks.expose.is_empty() {
            let exposed = config.exposed_ports.clone().unwrap_or_default();
            let missing: Vec<String> = checks
                .expose
                .iter()
                .filter(|p| !exposed.contains(&format!("{p}/tcp")))
                .map(|p| format!("port {p} is not exposed (EXPOSE: {exposed:?})"))
                .collect();
            results.push(check("exposed ports", join(missing)));
        }
        if let Some(max) = checks.max_size {
            let size = image.size.unwrap_or(0).max(0) as u64;
            let problem = (size > max).then(|| {
                format!(
                    "the image is {} bytes, more than the limit of {max} bytes",
                    size
                )
            });
            results.push(check("size", problem));
        }
        if !checks.files.is_empty() || !checks.absent.is_empty() {
            results.extend(self.file_checks(image).await?);
        }
        Ok(results)
    }

    async fn file_checks(&self, image: &ImageInspect) -> Result<Vec<CheckResult>> {
        let checks = self.plan.config.test.structure.clone();
        let config = image.config.clone().unwrap_or_default();
        let needs_cmd = config.entrypoint.as_ref().is_none_or(Vec::is_empty)
            && config.cmd.as_ref().is_none_or(Vec::is_empty);
        let spec = ContainerSpec {
            name: format!("{}-files", self.container_name),
            image: self.image_id.to_owned(),
            labels: HashMap::from([
                (CONTAINER_LABEL.to_string(), "test".to_string()),
                (OWNER_LABEL.to_string(), owner_id()),
            ]),
            cmd: needs_cmd.then(|| vec!["/nonexistent".to_string()]),
            ..Default::default()
        };
        let id = self.engine.create_container(&spec).await?;
        let guard = super::ContainerGuard::new(self.engine, &id);
        let mut results = Vec::new();
        for file in &checks.files {
            let started = Instant::now();
            let stat = self.engine.stat_path(&id, &file.path).await?;
            let mut problems = Vec::new();
            match stat {
                None => problems.push(format!("{} does not exist", file.path)),
                Some(stat) => {
                    if let Some(mode) = file.mode
                        && stat.mode != mode
                    {
                        problems.push(format!(
                            "{} has mode {:04o}, expected {mode:04o}",
                            file.path, stat.mode
                        ));
                    }
                    if let Some((uid, gid)) = file.owner
                        && (stat.uid != uid || gid.is_some_and(|g| g != stat.gid))
                    {
                        problems.push(format!(
                            "{} is owned by {}:{}, expected {uid}{}",
                            file.path,
                            stat.uid,
                            stat.gid,
                            gid.map(|g| format!(":{g}")).unwrap_or_default()
                        ));
                    }
                }
            }
            results.push(CheckResult::new(
                &format!("structure: file {}", file.path),
                "structure",
                started,
                problems.is_empty(),
                problems.join("\n"),
            ));
        }
        for path in &checks.absent {
            let started = Instant::now();
            let stat = self.engine.stat_path(&id, path).await?;
            results.push(CheckResult::new(
                &format!("structure: absent {path}"),
                "structure",
                started,
                stat.is_none(),
                if stat.is_some() {
                    format!("{path} exists but must not")
                } else {
                    String::new()
                },
            ));
        }
        guard.remove().await?;
        Ok(results)
    }
}

fn join(problems: Vec<String>) -> Option<String> {
    (!problems.is_empty()).then(|| problems.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_commands_from_the_engine_form() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            health_command(&v(&["CMD", "/app", "health"])),
            Some(v(&["/app", "health"]))
        );
        assert_eq!(
            health_command(&v(&["CMD-SHELL", "curl -f x"])),
            Some(v(&["/bin/sh", "-c", "curl -f x"]))
        );
        assert_eq!(health_command(&v(&["NONE"])), None);
    }
}
