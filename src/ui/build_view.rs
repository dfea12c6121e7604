//! A build on the terminal: one spinner line with the current Dockerfile step for a person, one
//! line per step when the output is plain (not a terminal, or `CI`), every step's output with
//! `-v`; the failing step's last lines whatever the verbosity.

use indicatif::ProgressBar;

use super::{Shell, Verbosity};
use crate::engine::build::{BuildEvent, BuildProgress};
use crate::engine::progress::is_step;

/// Renders the [`BuildProgress`] of one image's build.
pub struct BuildView<'a> {
    shell: &'a Shell,
    bar: ProgressBar,
    name: String,
    plain: bool,
    full: bool,
}

impl<'a> BuildView<'a> {
    /// A view of the build of `name` (`orders 1.4.2`).
    pub fn new(shell: &'a Shell, name: &str) -> Self {
        let bar = shell.spinner("Building", name);
        BuildView {
            shell,
            plain: bar.is_hidden(),
            full: shell.verbosity() >= Verbosity::Verbose,
            bar,
            name: name.to_owned(),
        }
    }

    /// Shows one event.
    pub fn show(&self, progress: BuildProgress<'_>) {
        let (name, shell) = (&self.name, self.shell);
        match progress {
            BuildProgress::Status(step) => self.bar.set_message(format!("{name}: {step}")),
            BuildProgress::Step(step) if self.full => shell.raw(&format!("{step}\n")),
            BuildProgress::Step(step) if self.plain => {
                shell.raw(&format!("{:>12} {name}: {step}\n", ""))
            }
            BuildProgress::Step(_) => {}
            BuildProgress::Output(out) if self.full => shell.raw(&format!("{out}\n")),
            BuildProgress::Output(_) => {}
            BuildProgress::Event(event) => self.event(event),
            // With -v the output is on the terminal already.
            BuildProgress::Failed(_) if self.full => {}
            BuildProgress::Failed(text) => {
                self.bar.finish_and_clear();
                shell.raw_always(&format!("{text}\n"));
            }
        }
    }

    /// One BuildKit event on the terminal: every event with `-v` (as the docker CLI's plain
    /// progress, `#3 [2/5] COPY …`), one line per started step when the output is plain.
    fn event(&self, event: &BuildEvent) {
        let (name, shell, plain, full) = (&self.name, self.shell, self.plain, self.full);
        match event {
            BuildEvent::Started {
                number,
                name: step,
                cached,
            } => {
                let cached = if *cached { " (cached)" } else { "" };
                if full {
                    shell.raw(&format!("#{number} {step}{cached}\n"));
                } else if plain && is_step(step) {
                    shell.raw(&format!("{:>12} {name}: {step}{cached}\n", ""));
                }
            }
            BuildEvent::Log { number, line } if full => shell.raw(&format!("#{number} {line}\n")),
            BuildEvent::Log { .. } => {}
            BuildEvent::Done {
                number,
                millis,
                error,
            } if full => {
                let what = match error {
                    Some(e) => format!("ERROR: {e}"),
                    None => match millis {
                        Some(ms) => format!("DONE {:.1}s", *ms as f64 / 1000.0),
                        None => "DONE".to_owned(),
                    },
                };
                shell.raw(&format!("#{number} {what}\n"));
            }
            BuildEvent::Done { .. } => {}
        }
    }
}

impl Drop for BuildView<'_> {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
