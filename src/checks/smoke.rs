//! The smoke test of an image the tool assembled itself. No builder ran the Dockerfile's `RUN`, so
//! the test stage runs it as its first check, as a builder would have: a one-off container of the
//! exact image, the command as its entrypoint (so `cmd[0]` is the program), the image's user and
//! environment, no ports. It must exit 0; otherwise the stage stops before the service starts, as
//! a failed build would. Images made by BuildKit or the classic builder ran it during the build.

use std::time::Instant;

use bollard::models::ImageInspect;

use super::{CheckResult, ContainerGuard, Session};
use crate::engine::build::{Builder, LABEL_BUILDER};
use crate::engine::container::ContainerSpec;
use crate::error::Result;

/// The kind of the smoke-test check.
pub const KIND: &str = "smoke-test";

/// Lines of the smoke test's output shown when it fails.
const OUTPUT_TAIL: usize = 20;

/// Whether the tool assembled `image`, so that no builder ran its smoke test.
pub fn is_assembled(image: &ImageInspect) -> bool {
    image
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|labels| labels.get(LABEL_BUILDER))
        .is_some_and(|builder| Builder::from_label(builder) == Some(Builder::Assembled))
}

/// `smoke-test: /usr/local/bin/orders --version`.
pub fn check_name(cmd: &[String]) -> String {
    format!("smoke-test: {}", cmd.join(" "))
}

/// Whether the runtime refused to start the container because its program cannot be run (the
/// engine's own wording, as a builder's failed `RUN` shows it).
fn cannot_exec(message: &str) -> bool {
    message.contains("executable file not found")
        || message.contains("no such file or directory")
        || message.contains("permission denied")
        || message.contains("exec format error")
}

impl Session<'_> {
    /// Runs `cmd` in a one-off container of the image and waits for it; the container is removed
    /// in every case (on a deadline or Ctrl-C by [`Session::finish`]).
    pub(super) async fn smoke_test(&self, cmd: &[String]) -> Result<CheckResult> {
        let name = check_name(cmd);
        self.begin(&name);
        let started = Instant::now();
        let spec = ContainerSpec {
            name: format!("{}-smoke", self.container_name),
            image: self.image_id.to_owned(),
            labels: self.container_labels(),
            entrypoint: Some(cmd.to_vec()),
            ..Default::default()
        };
        let id = self.engine.create_container(&spec).await?;
        self.set_smoke_container(Some(ContainerGuard::new(self.engine, &id)));
        let program = &cmd[0];
        // An absolute program is looked up first: the answer does not depend on the runtime's
        // wording of "not found".
        let missing =
            program.starts_with('/') && self.engine.stat_path(&id, program).await?.is_none();
        let outcome = if missing {
            Err(format!("{program} is not in the image"))
        } else {
            match self.engine.start_container(&id).await {
                Ok(()) => Ok(self.engine.wait_container(&id).await?),
                Err(e) if cannot_exec(&e.to_string()) => Err(e.to_string()),
                Err(e) => return Err(e),
            }
        };
        let output = match outcome {
            Ok(_) => self
                .engine
                .logs_tail(&id, OUTPUT_TAIL)
                .await
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        if let Some(guard) = self.set_smoke_container(None) {
            guard.remove().await?;
        }
        Ok(match outcome {
            Ok(0) => CheckResult::new(&name, KIND, started, true, output),
            Ok(code) => CheckResult::failed(
                &name,
                KIND,
                started,
                format!(
                    "exit code {code}, expected 0\nlast {OUTPUT_TAIL} lines of its output:\n{}",
                    if output.trim().is_empty() {
                        "(no output)"
                    } else {
                        output.trim_end()
                    }
                ),
            ),
            Err(why) => CheckResult::failed(
                &name,
                KIND,
                started,
                format!("{why}\nfix `smoke-test` in `[package.metadata.docker]`"),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_assembled_images_need_the_smoke_test_run() {
        let image = |builder: Option<&str>| ImageInspect {
            config: Some(bollard::models::ImageConfig {
                labels: builder
                    .map(|b| std::collections::HashMap::from([(LABEL_BUILDER.into(), b.into())])),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(is_assembled(&image(Some(Builder::Assembled.label()))));
        assert!(!is_assembled(&image(Some("buildkit"))));
        assert!(!is_assembled(&image(Some("classic"))));
        assert!(!is_assembled(&image(None)));
    }

    #[test]
    fn the_check_is_named_after_its_command() {
        let cmd = ["/usr/local/bin/hello".to_string(), "--version".to_string()];
        assert_eq!(
            check_name(&cmd),
            "smoke-test: /usr/local/bin/hello --version"
        );
    }
}
