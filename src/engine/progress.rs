//! The engine's build output as steps: the classic builder's text stream ([`BuildLog`]) and
//! BuildKit's status stream of vertices, logs and cache hits ([`BuildkitProgress`]), and which
//! Dockerfile line a step came from ([`step_line`]).

use std::collections::{HashMap, VecDeque};

use bollard::moby::buildkit::v1::StatusResponse;

use super::build::FAILURE_LOG_LINES;
use crate::dockerfile_syntax::{Dockerfile, Instruction};

/// The classic builder's output, split into Dockerfile steps.
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
            let line = without_escapes(line.trim_end_matches(['\n', '\r']));
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

    /// Output of the current (on failure: the failing) step, header included, at most its last
    /// [`FAILURE_LOG_LINES`] lines.
    pub fn current_step_output(&self) -> String {
        let mut lines: Vec<&str> = self.lines[self.step_start..]
            .iter()
            .map(String::as_str)
            .collect();
        if !self.partial.is_empty() {
            lines.push(&self.partial);
        }
        let skip = lines.len().saturating_sub(FAILURE_LOG_LINES + 1);
        if skip > 0 {
            lines.drain(1..=skip);
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

/// One BuildKit vertex (a step, or an internal operation such as loading the Dockerfile).
#[derive(Debug, Clone, Default)]
struct Vertex {
    /// Number in order of appearance (`#3`), as the docker CLI numbers them.
    number: usize,
    name: String,
    started: bool,
    completed: bool,
    cached: bool,
    error: String,
    /// Milliseconds from start to completion, when both are known.
    millis: Option<i64>,
    /// The last lines of its log.
    log: VecDeque<String>,
    /// An unterminated last line.
    partial: String,
}

/// What changed in a BuildKit build, for the progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A vertex started (or was found in the cache).
    Started {
        /// `#3`-style number.
        number: usize,
        /// `[builder 4/6] RUN cargo build`.
        name: String,
        /// Whether it came from the cache.
        cached: bool,
    },
    /// A line of a vertex's output.
    Log {
        /// `#3`-style number.
        number: usize,
        /// The line.
        line: String,
    },
    /// A vertex completed.
    Done {
        /// `#3`-style number.
        number: usize,
        /// Its duration.
        millis: Option<i64>,
        /// Its error, if it failed.
        error: Option<String>,
    },
}

/// The state of a BuildKit build from its status stream: vertices, their logs, cache hits.
#[derive(Debug, Default, Clone)]
pub struct BuildkitProgress {
    vertices: HashMap<String, Vertex>,
    /// Vertex digests in order of appearance.
    order: Vec<String>,
}

impl BuildkitProgress {
    /// Applies one status message; returns what changed. Within one message, vertices start,
    /// then their logs arrive, then they complete.
    pub fn apply(&mut self, status: &StatusResponse) -> Vec<BuildEvent> {
        let mut events = Vec::new();
        for v in &status.vertexes {
            if !self.vertices.contains_key(&v.digest) {
                self.order.push(v.digest.clone());
                let number = self.order.len();
                self.vertices.insert(
                    v.digest.clone(),
                    Vertex {
                        number,
                        ..Vertex::default()
                    },
                );
            }
            let state = self.vertices.get_mut(&v.digest).expect("inserted");
            if !v.name.is_empty() {
                state.name = v.name.clone();
            }
            state.cached |= v.cached;
            if (v.started.is_some() || v.cached) && !state.started {
                state.started = true;
                events.push(BuildEvent::Started {
                    number: state.number,
                    name: state.name.clone(),
                    cached: state.cached,
                });
            }
        }
        for log in &status.logs {
            let Some(state) = self.vertices.get_mut(&log.vertex) else {
                continue;
            };
            state.partial.push_str(&String::from_utf8_lossy(&log.msg));
            while let Some(i) = state.partial.find('\n') {
                let line: String = state.partial.drain(..=i).collect();
                let line = without_escapes(line.trim_end_matches(['\n', '\r']));
                push_line(&mut state.log, line.clone());
                events.push(BuildEvent::Log {
                    number: state.number,
                    line,
                });
            }
        }
        for v in &status.vertexes {
            let state = self.vertices.get_mut(&v.digest).expect("inserted");
            if !v.error.is_empty() {
                state.error = v.error.clone();
            }
            if v.completed.is_none() || state.completed {
                continue;
            }
            state.completed = true;
            state.millis = match (&v.started, &v.completed) {
                (Some(s), Some(c)) => {
                    Some((c.seconds - s.seconds) * 1000 + i64::from(c.nanos - s.nanos) / 1_000_000)
                }
                _ => None,
            };
            // The unterminated last line is complete now.
            if !state.partial.is_empty() {
                let line = without_escapes(&std::mem::take(&mut state.partial));
                push_line(&mut state.log, line.clone());
                events.push(BuildEvent::Log {
                    number: state.number,
                    line,
                });
            }
            events.push(BuildEvent::Done {
                number: state.number,
                millis: state.millis,
                error: (!state.error.is_empty()).then(|| state.error.clone()),
            });
        }
        events
    }

    /// The name of the step running now (the latest started, not completed one).
    pub fn current_step(&self) -> Option<&str> {
        self.order
            .iter()
            .rev()
            .filter_map(|d| self.vertices.get(d))
            .find(|v| v.started && !v.completed && is_step(&v.name))
            .map(|v| v.name.as_str())
    }

    /// `(steps done, of them cached, steps seen)`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let steps = self.vertices.values().filter(|v| is_step(&v.name));
        let (mut done, mut cached, mut seen) = (0, 0, 0);
        for v in steps {
            seen += 1;
            if v.completed {
                done += 1;
                cached += usize::from(v.cached);
            }
        }
        (done, cached, seen)
    }

    /// The vertex that failed: its name and the last lines of its log.
    pub fn failed_step(&self) -> Option<(&str, Vec<&str>)> {
        self.order
            .iter()
            .filter_map(|d| self.vertices.get(d))
            .find(|v| !v.error.is_empty())
            .map(|v| {
                let mut log: Vec<&str> = v.log.iter().map(String::as_str).collect();
                if !v.partial.is_empty() {
                    log.push(&v.partial);
                }
                (v.name.as_str(), log)
            })
    }
}

/// A line of build output without its terminal escape sequences (the classic builder colours a
/// step's stderr, `\x1b[91m…\x1b[0m`, around every write) or other control characters, so
/// that it reads as plain text and cannot drive the terminal.
fn without_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: `ESC [` parameters up to a final letter; otherwise one character after ESC.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

fn push_line(log: &mut VecDeque<String>, line: String) {
    if log.len() == FAILURE_LOG_LINES {
        log.pop_front();
    }
    log.push_back(line);
}

/// Whether a vertex is a Dockerfile step (`[2/5] COPY …`), not BuildKit's own work
/// (`[internal] load build context`, `exporting to image`).
pub fn is_step(name: &str) -> bool {
    name.starts_with('[') && !name.starts_with("[internal]")
}

/// The 1-based Dockerfile line of a step as the builders name it: BuildKit's
/// `[builder 4/6] RUN cargo build` or the classic `Step 9/14 : RUN cargo build`.
///
/// The instruction text is matched first, within its stage for BuildKit (which shows exec-form
/// `COPY`/`ADD` arguments without their quotes and variables expanded); when it does not match,
/// the step's number decides: the classic builder counts every instruction of the file, BuildKit
/// only the ones of its stage that make a vertex (`FROM` an image, `RUN`, `COPY`, `ADD`,
/// `WORKDIR`).
pub fn step_line(dockerfile: &str, step: &str) -> Option<usize> {
    let parsed = Dockerfile::parse(dockerfile);
    let instructions = &parsed.instructions;
    let normalize = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let text_of = |i: &Instruction| normalize(&format!("{} {}", i.keyword, i.args));
    let unquoted = |s: &str| s.replace('"', "");
    if let Some(rest) = step.strip_prefix("Step ") {
        let (number, text) = rest.split_once(" : ")?;
        let n: usize = number.split('/').next()?.trim().parse().ok()?;
        let wanted = normalize(text);
        return instructions
            .iter()
            .find(|i| text_of(i) == wanted)
            .or_else(|| instructions.get(n.checked_sub(1)?))
            .map(|i| i.line);
    }
    let inner = step.strip_prefix('[')?;
    let (label, text) = inner.split_once("] ")?;
    let (stage_name, counter) = match label.rsplit_once(' ') {
        Some((name, counter)) => (Some(name), counter),
        None => (None, label),
    };
    let index: usize = counter.split('/').next()?.parse().ok()?;
    // Stages: (their name, their instructions from `FROM` on).
    let all = parsed.stages();
    let stages: Vec<(Option<String>, &[Instruction])> = all
        .iter()
        .map(|s| (s.name.clone(), &instructions[s.from..s.end]))
        .collect();
    let stage_names: Vec<String> = stages.iter().filter_map(|(n, _)| n.clone()).collect();
    let stage = match stage_name {
        None => stages.last(),
        Some(name) => stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(&name.to_ascii_lowercase()))
            .or_else(|| {
                let k: usize = name.strip_prefix("stage-")?.parse().ok()?;
                stages.get(k)
            }),
    }?;
    let wanted = normalize(text);
    let makes_vertex = |i: &Instruction| match i.keyword.as_str() {
        "FROM" => {
            // The base as the global `ARG`s expand it (`FROM ${BASE}`).
            let base = all
                .iter()
                .find(|s| instructions[s.from].line == i.line)
                .and_then(|s| s.base.clone())
                .unwrap_or_else(|| i.from_parts().0)
                .to_ascii_lowercase();
            base != "scratch" && !stage_names.contains(&base)
        }
        "RUN" | "COPY" | "ADD" | "WORKDIR" => true,
        _ => false,
    };
    stage
        .1
        .iter()
        .find(|i| text_of(i) == wanted)
        .or_else(|| {
            stage
                .1
                .iter()
                .find(|i| unquoted(&text_of(i)) == unquoted(&wanted))
        })
        .or_else(|| {
            stage
                .1
                .iter()
                .filter(|i| makes_vertex(i))
                .nth(index.checked_sub(1)?)
        })
        .map(|i| i.line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::moby::buildkit::v1::{Vertex as PbVertex, VertexLog};

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

    fn vertex(digest: &str, name: &str, started: Option<i64>, completed: Option<i64>) -> PbVertex {
        let mut v = PbVertex {
            digest: digest.into(),
            name: name.into(),
            ..PbVertex::default()
        };
        if let Some(s) = started {
            v.started = Some(Default::default());
            v.started.as_mut().unwrap().seconds = s;
        }
        if let Some(c) = completed {
            v.completed = Some(Default::default());
            v.completed.as_mut().unwrap().seconds = c;
        }
        v
    }

    #[test]
    fn buildkit_progress_follows_vertices_logs_and_cache_hits() {
        let mut p = BuildkitProgress::default();
        let mut cached = vertex("a", "[1/3] FROM busybox", Some(1), Some(1));
        cached.cached = true;
        let events = p.apply(&StatusResponse {
            vertexes: vec![
                vertex(
                    "i",
                    "[internal] load build definition from Dockerfile",
                    Some(0),
                    Some(1),
                ),
                cached,
                vertex("b", "[2/3] RUN make", None, None),
            ],
            ..Default::default()
        });
        assert_eq!(
            events[0],
            BuildEvent::Started {
                number: 1,
                name: "[internal] load build definition from Dockerfile".into(),
                cached: false
            }
        );
        assert!(events.contains(&BuildEvent::Started {
            number: 2,
            name: "[1/3] FROM busybox".into(),
            cached: true
        }));
        assert_eq!(p.counts(), (1, 1, 2));
        assert_eq!(p.current_step(), None, "RUN make has not started");

        let events = p.apply(&StatusResponse {
            vertexes: vec![vertex("b", "[2/3] RUN make", Some(2), None)],
            logs: vec![VertexLog {
                vertex: "b".into(),
                msg: b"compiling\nerror: bro".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(p.current_step(), Some("[2/3] RUN make"));
        assert_eq!(
            events.last(),
            Some(&BuildEvent::Log {
                number: 3,
                line: "compiling".into()
            })
        );
        let mut failed = vertex("b", "[2/3] RUN make", Some(2), Some(5));
        failed.error = "exit code: 2".into();
        let events = p.apply(&StatusResponse {
            vertexes: vec![failed],
            logs: vec![VertexLog {
                vertex: "b".into(),
                msg: b"ken".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(events.contains(&BuildEvent::Done {
            number: 3,
            millis: Some(3000),
            error: Some("exit code: 2".into())
        }));
        let (name, log) = p.failed_step().unwrap();
        assert_eq!(name, "[2/3] RUN make");
        assert_eq!(log, ["compiling", "error: broken"]);
    }

    #[test]
    fn steps_point_at_their_dockerfile_lines() {
        let dockerfile = "ARG X=1\nFROM rust:1 AS builder\nWORKDIR /src\nENV A=$X\nRUN cargo \\\n  build --release\n\nFROM scratch\nCOPY --from=builder [\"/a\", \"/a\"]\nRUN [\"/a\", \"--version\"]\n";
        assert_eq!(
            step_line(dockerfile, "[builder 4/4] RUN cargo   build --release"),
            Some(5)
        );
        // Expanded variables: the step's number among the stage's vertices decides.
        assert_eq!(
            step_line(dockerfile, "[builder 2/4] WORKDIR /elsewhere"),
            Some(3)
        );
        assert_eq!(
            step_line(
                "FROM scratch\nLABEL a=b\nCOPY [\"missing\", \"/missing\"]\n",
                "[1/1] COPY [missing, /missing]"
            ),
            Some(3)
        );
        assert_eq!(
            step_line(
                "FROM scratch\nENV X=1\nCOPY a /a\nRUN [\"/a\", \"$X\"]\n",
                "[2/2] RUN [\"/a\", \"1\"]"
            ),
            Some(4)
        );
        assert_eq!(
            step_line(dockerfile, "[stage-1 3/3] RUN [\"/a\", \"--version\"]"),
            Some(10)
        );
        assert_eq!(
            step_line(
                dockerfile,
                "Step 6/7 : COPY --from=builder [\"/a\", \"/a\"]"
            ),
            Some(9)
        );
        assert_eq!(
            step_line(dockerfile, "Step 3/7 : WORKDIR /elsewhere"),
            Some(3)
        );
        assert_eq!(
            step_line("FROM scratch\nCOPY a /a\n", "[2/2] COPY a /a"),
            Some(2)
        );
        assert_eq!(step_line(dockerfile, "exporting to image"), None);
    }

    #[test]
    fn build_output_loses_its_terminal_escapes() {
        let mut log = BuildLog::default();
        log.feed("Step 2/3 : RUN [\"/a\"]\n\x1b[91msmoke line \x1b[0m\x1b[91m49\x1b[0m\x1b[91m\n");
        assert_eq!(log.lines[1], "smoke line 49");
        assert_eq!(without_escapes("a\x1b]0;title\x07b\tc"), "a0;titleb\tc");
    }
}
