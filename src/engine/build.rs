//! Building an image on the engine from an in-process build context, with its output streamed.
//!
//! A person at a terminal sees one spinner line with the current Dockerfile step; plain output
//! (not a terminal, or `CI`) gets one line per step; `-v` shows the whole log. When the build
//! fails, the failing step's output is shown whatever the verbosity.

use bollard::query_parameters::BuildImageOptions;
use futures_util::StreamExt;

use super::context::BuildContext;
use super::{Engine, engine_error};
use crate::error::{Error, Result};
use crate::ui::{Shell, Verbosity};

/// The engine's build output, split into Dockerfile steps.
#[derive(Debug, Default, Clone)]
pub struct BuildLog {
    partial: String,
    /// Every complete line, in order.
    pub lines: Vec<String>,
    /// Index in `lines` where the current step's header is.
    step_start: usize,
    /// The current step's header (`Step 3/7 : COPY …`).
    pub current_step: Option<String>,
}

/// What a new line of build output is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// A new Dockerfile step begins.
    Step(String),
    /// Output within a step.
    Output(String),
}

impl BuildLog {
    /// Feeds a chunk of the engine's `stream` text; returns the complete lines it finished.
    pub fn feed(&mut self, chunk: &str) -> Vec<LogLine> {
        self.partial.push_str(chunk);
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            let line = line.trim_end_matches(['\n', '\r']).to_owned();
            if line.starts_with("Step ") && line.contains(" : ") {
                self.step_start = self.lines.len();
                self.current_step = Some(line.clone());
                out.push(LogLine::Step(line.clone()));
            } else {
                out.push(LogLine::Output(line.clone()));
            }
            self.lines.push(line);
        }
        out
    }

    /// Output of the current (on failure: the failing) step, header included.
    pub fn current_step_output(&self) -> String {
        let mut lines: Vec<&str> = self.lines[self.step_start..]
            .iter()
            .map(String::as_str)
            .collect();
        if !self.partial.is_empty() {
            lines.push(&self.partial);
        }
        lines.join("\n")
    }

    /// The short ID from the classic builder's `Successfully built 0123abcd` line.
    pub fn built_id(&self) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("Successfully built "))
            .map(str::trim)
    }
}

/// Whether a build error is the engine failing to pull a base image.
fn is_pull_failure(message: &str) -> bool {
    [
        "pull access denied",
        "manifest unknown",
        "registry-1.docker.io",
        "no such host",
        "failed to resolve reference",
        "not found: manifest",
    ]
    .iter()
    .any(|m| message.contains(m))
}

impl Engine {
    /// Builds `context` with `options`; returns the image ID (`sha256:…`).
    ///
    /// `name` says what is built (`orders 1.4.2`) in the progress line.
    pub async fn build_image(
        &self,
        options: BuildImageOptions,
        context: &BuildContext,
        name: &str,
        shell: &Shell,
    ) -> Result<String> {
        let bar = shell.spinner("Building", name);
        let plain = bar.is_hidden();
        let full = shell.verbosity() >= Verbosity::Verbose;
        let body = bollard::body_try_stream(context.stream());
        let mut stream = self.docker().build_image(options, None, Some(body));
        let mut log = BuildLog::default();
        let mut image_id = None;
        let failure = loop {
            let Some(item) = stream.next().await else {
                break None;
            };
            let info = match item {
                Ok(info) => info,
                Err(e) => break Some(engine_error("build", "", e)),
            };
            if let Some(detail) = info.error_detail {
                break Some(Error::step("build", detail.message.unwrap_or_default()));
            }
            if let Some(id) = info.aux.and_then(|a| a.id) {
                image_id = Some(id);
            }
            if let Some(text) = info.stream {
                for line in log.feed(&text) {
                    match line {
                        LogLine::Step(step) => {
                            bar.set_message(format!("{name}: {step}"));
                            if full {
                                shell.raw(&format!("{step}\n"));
                            } else if plain {
                                shell.raw(&format!("{:>12} {name}: {step}\n", ""));
                            }
                        }
                        LogLine::Output(out) if full => shell.raw(&format!("{out}\n")),
                        LogLine::Output(_) => {}
                    }
                }
            }
        };
        bar.finish_and_clear();
        if let Some(error) = failure {
            let output = log.current_step_output();
            if !output.is_empty() && !full {
                shell.raw_always(&format!("{output}\n"));
            }
            let message = match &error {
                Error::Step { message, .. } => message.trim_start_matches(": ").to_owned(),
                other => other.to_string(),
            };
            let help = if is_pull_failure(&message) {
                "the engine could not pull an image the Dockerfile starts FROM; build or load it \
                 into the local engine, or point `base`/`builder` at a local image"
                    .to_owned()
            } else {
                match &log.current_step {
                    Some(step) => format!("the engine stopped at `{step}`; its output is above"),
                    None => "the engine refused the build context or the Dockerfile".to_owned(),
                }
            };
            return Err(Error::step_with_help(
                "build",
                format!("{name}: {}", message.trim()),
                help,
            ));
        }
        match image_id {
            Some(id) => Ok(id),
            None => {
                let short = log.built_id().ok_or_else(|| {
                    Error::step("build", format!("{name}: the engine reported no image ID"))
                })?;
                let info = self
                    .docker()
                    .inspect_image(short)
                    .await
                    .map_err(|e| engine_error("build", "inspecting the built image", e))?;
                Ok(info.id.unwrap_or_else(|| short.to_owned()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_tracks_steps_across_chunks() {
        let mut log = BuildLog::default();
        assert_eq!(
            log.feed("Step 1/3 : FROM scratch\n ---> \n"),
            [
                LogLine::Step("Step 1/3 : FROM scratch".into()),
                LogLine::Output(" ---> ".into())
            ]
        );
        assert_eq!(
            log.feed("Step 2/3 : RUN [\"/bin/false\"]\n ---> Running in ab"),
            [LogLine::Step("Step 2/3 : RUN [\"/bin/false\"]".into())]
        );
        log.feed("c\nboom\n");
        assert_eq!(
            log.current_step_output(),
            "Step 2/3 : RUN [\"/bin/false\"]\n ---> Running in abc\nboom"
        );
        log.feed("Successfully built 0123456789ab\n");
        assert_eq!(log.built_id(), Some("0123456789ab"));
    }
}
