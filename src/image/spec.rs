//! What the final stage of a host-strategy Dockerfile says the image is, read with the one
//! Dockerfile tokenizer and BuildKit's variable scopes: the rendered file stays the
//! human-readable description of the image the tool assembles, and a file that says something
//! the tool cannot assemble (a `RUN` other than the smoke test, `WORKDIR`, `ADD`, a stage
//! built from another) is built by the builder instead, with the reason.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::dockerfile_syntax::{BuildArgs, Dockerfile, Instruction, Scope};

/// `PATH` of an image built `FROM scratch` (BuildKit's and the classic builder's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The image a Dockerfile describes, as far as the tool assembles images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageSpec {
    /// The `FROM` image (`scratch` or a reference).
    pub base: String,
    /// `COPY` sources (in the build context) and their destination in the image.
    pub copies: Vec<(String, String)>,
    /// `USER`.
    pub user: Option<String>,
    /// `EXPOSE` ports, as Docker keys them (`8080/tcp`).
    pub exposed: Vec<String>,
    /// `STOPSIGNAL`.
    pub stop_signal: Option<String>,
    /// `HEALTHCHECK`.
    pub healthcheck: Option<Healthcheck>,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `ENV`, in order of first assignment (a later one replaces the value in place).
    pub env: Vec<(String, String)>,
    /// `ENTRYPOINT` (exec form).
    pub entrypoint: Option<Vec<String>>,
    /// `CMD` (exec form).
    pub cmd: Option<Vec<String>>,
    /// The exec-form `RUN` of the smoke test, which the test stage runs as its first check.
    pub smoke_test: Option<Vec<String>>,
    /// Each instruction as `docker history` shows it, and whether it made a layer.
    pub history: Vec<(String, bool)>,
}

/// `HEALTHCHECK --interval=… CMD […]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", …]`.
    pub test: Vec<String>,
    /// `--interval` (zero: the engine's default).
    pub interval: Duration,
    /// `--timeout`.
    pub timeout: Duration,
    /// `--start-period`.
    pub start_period: Duration,
    /// `--retries`.
    pub retries: u32,
}

impl ImageSpec {
    /// Reads `dockerfile` with the build arguments `args`; `Err` says why the tool cannot
    /// assemble this image (the builder then builds it).
    pub fn read(dockerfile: &str, args: &BTreeMap<String, String>) -> Result<ImageSpec, String> {
        let parsed = Dockerfile::parse(dockerfile);
        let stages = parsed.stages_with(BuildArgs::Given(args));
        if stages.len() != 1 {
            return Err(format!(
                "it has {} stages; the tool assembles one-stage images",
                stages.len()
            ));
        }
        let mut spec = ImageSpec::default();
        let mut problem: Option<String> = None;
        parsed.walk(BuildArgs::Given(args), |stage, ins, scope| {
            if problem.is_some() {
                return;
            }
            if stage.is_none() {
                if ins.keyword != "ARG" {
                    problem = Some(format!("line {}: {} before FROM", ins.line, ins.keyword));
                }
                return;
            }
            if let Err(why) = spec.apply(ins, scope) {
                problem = Some(format!("line {}: {why}", ins.line));
            }
        });
        match problem {
            Some(p) => Err(p),
            None => Ok(spec),
        }
    }

    fn apply(&mut self, ins: &Instruction, scope: &Scope) -> Result<(), String> {
        let expand = |word: &str| {
            scope
                .expand(word)
                .map_err(|_| format!("`{word}` depends on something only the builder knows"))
        };
        let exec_form = |what: &str| {
            ins.json()
                .ok_or_else(|| format!("{what} is not in exec (JSON) form"))
        };
        let shown = format!("{} {}", ins.keyword, ins.args.trim());
        let mut layer = false;
        match ins.keyword.as_str() {
            "FROM" => {
                self.base = expand(&ins.from_parts().0)?;
                if !ins.flags.is_empty() {
                    return Err("FROM with flags".into());
                }
                if !self.base.eq_ignore_ascii_case("scratch") {
                    return Err(format!(
                        "its base `{}` is not `scratch`; the tool assembles scratch images",
                        self.base
                    ));
                }
                self.env.push(("PATH".into(), DEFAULT_PATH.into()));
                return Ok(());
            }
            "ARG" => {}
            "COPY" if ins.flags.is_empty() => {
                let paths = exec_form("COPY")?;
                let [src, dst] = paths.as_slice() else {
                    return Err("COPY of more than one source".into());
                };
                if src.contains(['*', '?', '[']) || dst.ends_with('/') {
                    return Err("COPY with a pattern or into a directory".into());
                }
                self.copies.push((src.clone(), dst.clone()));
                layer = true;
            }
            "USER" => self.user = Some(expand(ins.rest.trim())?),
            "RUN" => {
                if self.smoke_test.is_some() || !ins.flags.is_empty() {
                    return Err("a RUN other than the smoke test".into());
                }
                self.smoke_test = Some(exec_form("RUN")?);
                let shown = format!("{shown} # smoke test, run by the test stage");
                self.history.push((shown, false));
                return Ok(());
            }
            "EXPOSE" => {
                for word in ins.words() {
                    let port = expand(&word)?;
                    let key = if port.contains('/') {
                        port.to_ascii_lowercase()
                    } else {
                        format!("{port}/tcp")
                    };
                    if !self.exposed.contains(&key) {
                        self.exposed.push(key);
                    }
                }
            }
            "STOPSIGNAL" => self.stop_signal = Some(expand(ins.rest.trim())?),
            "HEALTHCHECK" => self.healthcheck = healthcheck(ins)?,
            "LABEL" => {
                for (key, value) in ins.pairs() {
                    self.labels.insert(expand(&key)?, expand(&value)?);
                }
            }
            "ENV" => {
                for (key, value) in ins.pairs() {
                    let (key, value) = (expand(&key)?, expand(&value)?);
                    match self.env.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => self.env.push((key, value)),
                    }
                }
            }
            "ENTRYPOINT" => {
                self.entrypoint = Some(exec_form("ENTRYPOINT")?);
                // The builder resets CMD when ENTRYPOINT is set after it.
                self.cmd = None;
            }
            "CMD" => self.cmd = Some(exec_form("CMD")?),
            other => return Err(format!("{other} is an instruction only the builder runs")),
        }
        self.history.push((shown, layer));
        Ok(())
    }
}

/// `HEALTHCHECK [--interval=…] CMD [...]`, `HEALTHCHECK NONE`.
fn healthcheck(ins: &Instruction) -> Result<Option<Healthcheck>, String> {
    let rest = ins.rest.trim();
    if rest.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let Some(json) = rest
        .strip_prefix("CMD")
        .or_else(|| rest.strip_prefix("cmd"))
    else {
        return Err("HEALTHCHECK without CMD".into());
    };
    let cmd: Vec<String> = serde_json::from_str(json.trim())
        .map_err(|_| "HEALTHCHECK CMD is not in exec (JSON) form".to_owned())?;
    let duration = |name: &str, default: Duration| -> Result<Duration, String> {
        match ins.flag(name) {
            None => Ok(default),
            Some(value) => value
                .and_then(go_duration)
                .ok_or_else(|| format!("HEALTHCHECK --{name} is not a duration like `10s`")),
        }
    };
    let retries = match ins.flag("retries") {
        None => 3,
        Some(v) => v
            .and_then(|v| v.parse().ok())
            .ok_or("HEALTHCHECK --retries is not a number")?,
    };
    // Zero is "inherit the default" to the engine, as an absent flag is.
    Ok(Some(Healthcheck {
        test: std::iter::once("CMD".to_owned()).chain(cmd).collect(),
        interval: duration("interval", Duration::ZERO)?,
        timeout: duration("timeout", Duration::ZERO)?,
        start_period: duration("start-period", Duration::ZERO)?,
        retries,
    }))
}

/// A Go duration as Dockerfiles write them: `10s`, `1.5s`, `1m30s`, `250ms`.
fn go_duration(text: &str) -> Option<Duration> {
    let mut total = 0f64;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..split].parse().ok()?;
        rest = &rest[split..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_end] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        total += number * seconds;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> BTreeMap<String, String> {
        BTreeMap::from([("SHA".to_owned(), "c0ffee".to_owned())])
    }

    #[test]
    fn the_generated_host_dockerfile_reads_as_the_image() {
        let text = r#"# header
FROM scratch
COPY ["bin/hello", "/usr/local/bin/hello"]
USER 65532:65532
RUN ["/usr/local/bin/hello", "--version"]
EXPOSE 8080
EXPOSE 9000/udp 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=1.5s --start-period=1m30s --retries=4 CMD ["/usr/local/bin/hello", "health"]
ARG SHA
LABEL org.opencontainers.image.revision="${SHA}" \
      title="a \"q\" \$x"
ENV A=1 \
    SHA=${SHA}
ENV A=2
ENTRYPOINT ["/usr/local/bin/hello"]
CMD ["serve"]
"#;
        let spec = ImageSpec::read(text, &args()).unwrap();
        assert_eq!(spec.base, "scratch");
        assert_eq!(
            spec.copies,
            [("bin/hello".into(), "/usr/local/bin/hello".into())]
        );
        assert_eq!(spec.user.as_deref(), Some("65532:65532"));
        assert_eq!(spec.exposed, ["8080/tcp", "9000/udp"]);
        assert_eq!(spec.stop_signal.as_deref(), Some("SIGTERM"));
        let hc = spec.healthcheck.clone().unwrap();
        assert_eq!(hc.test, ["CMD", "/usr/local/bin/hello", "health"]);
        assert_eq!(
            (hc.interval, hc.timeout, hc.start_period, hc.retries),
            (
                Duration::from_secs(10),
                Duration::from_millis(1500),
                Duration::from_secs(90),
                4
            )
        );
        assert_eq!(spec.labels["org.opencontainers.image.revision"], "c0ffee");
        assert_eq!(spec.labels["title"], "a \"q\" $x");
        assert_eq!(
            spec.env,
            [
                ("PATH".to_owned(), DEFAULT_PATH.to_owned()),
                ("A".to_owned(), "2".to_owned()),
                ("SHA".to_owned(), "c0ffee".to_owned())
            ]
        );
        assert_eq!(spec.entrypoint.unwrap(), ["/usr/local/bin/hello"]);
        assert_eq!(spec.cmd.unwrap(), ["serve"]);
        assert_eq!(
            spec.smoke_test.unwrap(),
            ["/usr/local/bin/hello", "--version"]
        );
        assert_eq!(spec.history.iter().filter(|(_, layer)| *layer).count(), 1);
    }

    #[test]
    fn what_only_a_builder_does_says_so() {
        let cases = [
            ("FROM debian:12\n", "is not `scratch`"),
            ("FROM scratch AS a\nFROM a\n", "2 stages"),
            (
                "FROM scratch\nWORKDIR /app\n",
                "WORKDIR is an instruction only the builder",
            ),
            (
                "FROM scratch\nRUN [\"a\"]\nRUN [\"b\"]\n",
                "other than the smoke test",
            ),
            ("FROM scratch\nCOPY --chmod=0755 a /a\n", "only the builder"),
            ("FROM scratch\nCOPY a b /d/\n", "exec (JSON) form"),
            ("FROM scratch\nENTRYPOINT /bin/app\n", "exec (JSON) form"),
            (
                "FROM scratch\nHEALTHCHECK --interval=soon CMD [\"a\"]\n",
                "duration",
            ),
        ];
        for (text, why) in cases {
            let err = ImageSpec::read(text, &args()).unwrap_err();
            assert!(err.contains(why), "{text:?}: {err}");
        }
    }

    #[test]
    fn go_durations_read_as_docker_writes_them() {
        assert_eq!(go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration(""), None);
    }
}
