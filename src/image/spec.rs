//! What the final stage of a host-strategy Dockerfile says the image is, read with the one
//! Dockerfile tokenizer and BuildKit's variable scopes: the rendered file stays the
//! human-readable description of the image the tool assembles, and a file that says something
//! the tool cannot assemble (a `RUN` other than the smoke test, `WORKDIR`, `ADD`, a stage
//! built from another) is built by the builder instead, with the reason.

use std::collections::BTreeMap;
use std::time::Duration;

use super::base::BaseImage;
use super::oci::ContainerConfig;
use crate::dockerfile_syntax::lex::{self, Var};
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
    /// `WORKDIR` inherited from the base (the instruction itself is the builder's).
    pub working_dir: Option<String>,
    /// `VOLUME`s inherited from the base.
    pub volumes: Vec<String>,
    /// The non-scratch base, resolved in its registry.
    pub base_image: Option<Box<BaseImage>>,
    /// Whether this Dockerfile set `CMD` (an `ENTRYPOINT` then keeps it).
    cmd_set: bool,
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
        Self::read_on(dockerfile, args, None)
    }

    /// The base the final stage is built `FROM`, as `args` expand it (`None`: unknown).
    pub fn base_reference(dockerfile: &str, args: &BTreeMap<String, String>) -> Option<String> {
        Dockerfile::parse(dockerfile)
            .stages_with(BuildArgs::Given(args))
            .last()?
            .base
            .clone()
    }

    /// [`Self::read`] of a stage built on `base` (resolved from [`Self::base_reference`]):
    /// the stage starts with what the base's config says, as Docker's builders start it.
    pub fn read_on(
        dockerfile: &str,
        args: &BTreeMap<String, String>,
        base: Option<BaseImage>,
    ) -> Result<ImageSpec, String> {
        let parsed = Dockerfile::parse(dockerfile);
        let escape = parsed.escape();
        let stages = parsed.stages_with(BuildArgs::Given(args));
        if stages.len() != 1 {
            return Err(format!(
                "it has {} stages; the tool assembles one-stage images",
                stages.len()
            ));
        }
        let mut spec = ImageSpec {
            base_image: base.map(Box::new),
            ..ImageSpec::default()
        };
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
            if let Err(why) = spec.apply(ins, scope, escape) {
                problem = Some(format!("line {}: {why}", ins.line));
            }
        });
        match problem {
            Some(p) => Err(p),
            None => Ok(spec),
        }
    }

    fn apply(&mut self, ins: &Instruction, scope: &Scope, escape: char) -> Result<(), String> {
        // What the reader cannot see in a non-scratch stage is the base's environment, which
        // the spec holds (with the `ENV`s so far) once the base is resolved.
        let env = self.env.clone();
        let on_base = self.base_image.is_some();
        let lookup = move |name: &str| match scope.get(name) {
            Var::Unknown if on_base => env
                .iter()
                .find(|(k, _)| k == name)
                .map_or(Var::Unset, |(_, v)| Var::Set(v.clone())),
            var => var,
        };
        let expand = |word: &str| {
            lex::expand(word, escape, &lookup)
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
                if self.base.eq_ignore_ascii_case("scratch") {
                    self.base_image = None;
                    self.env.push(("PATH".into(), DEFAULT_PATH.into()));
                    return Ok(());
                }
                let Some(base) = self.base_image.clone() else {
                    return Err(format!(
                        "its base `{}` is not `scratch` and was not resolved in a registry",
                        self.base
                    ));
                };
                if base.reference != self.base {
                    return Err(format!(
                        "its base `{}` is not the resolved `{}`",
                        self.base, base.reference
                    ));
                }
                self.inherit(&base.config);
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
                // Docker's rule: an ENTRYPOINT resets a CMD this Dockerfile did not set (the
                // base's).
                if !self.cmd_set {
                    self.cmd = None;
                }
            }
            "CMD" => {
                self.cmd = Some(exec_form("CMD")?);
                self.cmd_set = true;
            }
            other => return Err(format!("{other} is an instruction only the builder runs")),
        }
        self.history.push((shown, layer));
        Ok(())
    }
}

impl ImageSpec {
    /// Starts the stage with the base's config: what Docker inherits and a Dockerfile may
    /// change (Env, User, WorkingDir, Entrypoint, Cmd, Labels, ExposedPorts, Volumes,
    /// Healthcheck, StopSignal).
    fn inherit(&mut self, base: &ContainerConfig) {
        self.env = base
            .env
            .iter()
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (kv.clone(), String::new()),
            })
            .collect();
        let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
        self.user = nonempty(&base.user);
        self.working_dir = nonempty(&base.working_dir);
        self.entrypoint = base.entrypoint.clone();
        self.cmd = base.cmd.clone();
        self.labels = base.labels.clone();
        self.exposed = base.exposed_ports.keys().cloned().collect();
        self.volumes = base.volumes.keys().cloned().collect();
        self.stop_signal = nonempty(&base.stop_signal);
        self.healthcheck = base.healthcheck.as_ref().and_then(|h| {
            // `["NONE"]` disables it; an empty test inherits nothing.
            (h.test.first().is_some_and(|t| t != "NONE")).then(|| Healthcheck {
                test: h.test.clone(),
                interval: Duration::from_nanos(h.interval),
                timeout: Duration::from_nanos(h.timeout),
                start_period: Duration::from_nanos(h.start_period),
                retries: h.retries as u32,
            })
        });
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

    fn base(config: ContainerConfig) -> BaseImage {
        BaseImage {
            reference: "registry:5000/lib/base:1".into(),
            manifest_digest: "sha256:m".into(),
            platform: ("amd64".into(), None),
            config,
            history: Vec::new(),
            source: crate::image::base::BaseSource {
                host: "registry:5000".into(),
                repository: "lib/base".into(),
                config_digest: "sha256:c".into(),
                manifest_digest: "sha256:m".into(),
                layers: Vec::new(),
            },
        }
    }

    fn base_config() -> ContainerConfig {
        ContainerConfig {
            env: vec!["PATH=/base/bin:/bin".into(), "LANG=C.UTF-8".into()],
            user: Some("1000".into()),
            working_dir: Some("/srv".into()),
            cmd: Some(vec!["sh".into()]),
            labels: BTreeMap::from([
                ("vendor".into(), "base".into()),
                ("keep".into(), "yes".into()),
            ]),
            exposed_ports: BTreeMap::from([("80/tcp".into(), crate::image::oci::Empty {})]),
            volumes: BTreeMap::from([("/data".into(), crate::image::oci::Empty {})]),
            stop_signal: Some("SIGQUIT".into()),
            ..ContainerConfig::default()
        }
    }

    #[test]
    fn a_stage_on_a_base_starts_with_its_config_and_expands_its_env() {
        let text = "FROM registry:5000/lib/base:1\nCOPY [\"bin/a\", \"/a\"]\nLABEL vendor=us path=$PATH\nENV PATH=/app:$PATH LANG2=${LANG}\nEXPOSE 8080\n";
        let spec = ImageSpec::read_on(text, &args(), Some(base(base_config()))).unwrap();
        assert_eq!(
            spec.env,
            [
                ("PATH".to_owned(), "/app:/base/bin:/bin".to_owned()),
                ("LANG".to_owned(), "C.UTF-8".to_owned()),
                ("LANG2".to_owned(), "C.UTF-8".to_owned()),
            ]
        );
        assert_eq!(spec.labels["vendor"], "us");
        assert_eq!(spec.labels["keep"], "yes");
        assert_eq!(spec.labels["path"], "/base/bin:/bin");
        assert_eq!(spec.user.as_deref(), Some("1000"));
        assert_eq!(spec.working_dir.as_deref(), Some("/srv"));
        assert_eq!(spec.cmd.as_deref(), Some(&["sh".to_owned()][..]));
        assert_eq!(spec.exposed, ["80/tcp", "8080/tcp"]);
        assert_eq!(spec.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(spec.volumes, ["/data"]);
        // A name neither the file nor the base sets is empty, as the builder has it.
        let spec = ImageSpec::read_on(
            "FROM registry:5000/lib/base:1\nENV X=a${NOPE}b\n",
            &args(),
            Some(base(base_config())),
        )
        .unwrap();
        assert!(spec.env.contains(&("X".to_owned(), "ab".to_owned())));
    }

    #[test]
    fn an_entrypoint_resets_the_inherited_cmd_but_not_one_the_file_set() {
        let on = |text: &str| ImageSpec::read_on(text, &args(), Some(base(base_config()))).unwrap();
        let spec = on("FROM registry:5000/lib/base:1\nENTRYPOINT [\"/a\"]\n");
        assert_eq!(spec.cmd, None);
        let spec = on("FROM registry:5000/lib/base:1\nCMD [\"x\"]\nENTRYPOINT [\"/a\"]\n");
        assert_eq!(spec.cmd, Some(vec!["x".to_owned()]));
        let spec = on("FROM registry:5000/lib/base:1\nUSER 2\n");
        assert_eq!(spec.user.as_deref(), Some("2"));
        assert_eq!(spec.entrypoint, None);
    }

    #[test]
    fn a_base_other_than_the_resolved_one_is_refused() {
        let err =
            ImageSpec::read_on("FROM other:1\n", &args(), Some(base(base_config()))).unwrap_err();
        assert!(err.contains("not the resolved"), "{err}");
        let err = ImageSpec::read("FROM registry:5000/lib/base:1\n", &args()).unwrap_err();
        assert!(err.contains("not resolved"), "{err}");
    }

    #[test]
    fn go_durations_read_as_docker_writes_them() {
        assert_eq!(go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(go_duration("1h2m3s"), Some(Duration::from_secs(3723)));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration(""), None);
    }
}
