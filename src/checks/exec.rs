//! The tests proper, against the ready container: exec commands inside it, the crate's cargo
//! integration tests (compiled on the host, copied in, run inside), host commands, HTTP probes, and
//! the shutdown check.

use std::process::Stdio;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;

use super::{CheckResult, Session};
use crate::config::{
    CargoCheck, ExecCheck, HostCheck, HttpProbe, OutputExpectations, ShutdownCheck,
};
use crate::engine::Engine;
use crate::engine::container::ExecOutput;
use crate::error::{Error, Result};
use crate::http;

/// Directory of the container where cargo test binaries are copied.
pub const TEST_BIN_DIR: &str = "/cargo-docker-release-tests";

/// What went wrong with an output, one line per problem; empty when everything holds.
pub fn output_problems(
    expect: &OutputExpectations,
    exit_code: Option<i64>,
    stdout: &str,
    stderr: &str,
    expand: impl Fn(&str) -> String,
) -> Vec<String> {
    let mut problems = Vec::new();
    match exit_code {
        Some(c) if c == expect.status => {}
        Some(c) => problems.push(format!("exit code {c}, expected {}", expect.status)),
        None => problems.push(format!("no exit code, expected {}", expect.status)),
    }
    for (stream, text, must, must_not) in [
        ("stdout", stdout, &expect.stdout, &expect.stdout_not),
        ("stderr", stderr, &expect.stderr, &expect.stderr_not),
    ] {
        for pattern in must.iter().map(|p| expand(p)) {
            if !text.contains(&pattern) {
                problems.push(format!("{stream} does not contain `{pattern}`"));
            }
        }
        for pattern in must_not.iter().map(|p| expand(p)) {
            if text.contains(&pattern) {
                problems.push(format!("{stream} contains `{pattern}`"));
            }
        }
    }
    problems
}

/// Problems and the output worth showing, as a check's text.
fn describe(problems: &[String], stdout: &str, stderr: &str) -> String {
    let mut text = problems.join("\n");
    for (name, out) in [("stdout", stdout), ("stderr", stderr)] {
        if !out.trim().is_empty() {
            text.push_str(&format!("\n--- {name} ---\n{}", out.trim_end()));
        }
    }
    text.trim_start().to_owned()
}

/// The configuration error for a check whose program is not in the image.
fn missing_program(kind: &str, name: &str, program: &str, said: &str) -> Error {
    Error::TestConfig {
        message: format!("{kind} check `{name}`: `{program}` is not in the image"),
        help: Some(format!(
            "fix `cmd` of this `[[package.metadata.docker.test.{kind}]]` entry (the engine said: {said})"
        )),
    }
}

/// Whether an exec failed because the program is not in the image (the runtime's own message).
pub fn is_missing_program(out: &ExecOutput) -> bool {
    let text = format!("{}{}", out.stdout, out.stderr);
    matches!(out.exit_code, Some(126) | Some(127))
        && (text.contains("OCI runtime exec failed")
            || (text.contains("executable file") && text.contains("not found"))
            || (text.contains("exec failed") && text.contains("no such file or directory")))
}

impl Session<'_> {
    /// Runs one exec check inside the container.
    pub(super) async fn exec_check(&self, check: &ExecCheck) -> Result<CheckResult> {
        let name = format!("exec: {}", check.name);
        self.begin(&name);
        let started = Instant::now();
        let env: Vec<String> = check.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let id = self.container_id().to_owned();
        // An absolute program is looked up first: the answer does not depend on the runtime's
        // wording of "not found".
        let program = &check.cmd[0];
        if program.starts_with('/') && self.engine.stat_path(&id, program).await?.is_none() {
            return Err(missing_program(
                "exec",
                &check.name,
                program,
                "no such file",
            ));
        }
        let run = self
            .engine
            .exec(&id, &check.cmd, &env, check.user.as_deref());
        let result = match tokio::time::timeout(check.timeout, run).await {
            Err(_) => CheckResult::failed(
                &name,
                "exec",
                started,
                format!(
                    "did not finish within {}",
                    humantime::format_duration(check.timeout)
                ),
            ),
            Ok(Err(e)) => match self.container_gone().await {
                Some(why) => CheckResult::failed(&name, "exec", started, why),
                None => return Err(e),
            },
            Ok(Ok(out)) => {
                if is_missing_program(&out) {
                    let said = format!("{}{}", out.stdout, out.stderr);
                    return Err(missing_program("exec", &check.name, program, said.trim()));
                }
                let problems = output_problems(
                    &check.expect,
                    out.exit_code,
                    &out.stdout,
                    &out.stderr,
                    |p| self.expand(p),
                );
                CheckResult::new(
                    &name,
                    "exec",
                    started,
                    problems.is_empty(),
                    describe(&problems, &out.stdout, &out.stderr),
                )
            }
        };
        Ok(result)
    }

    /// Compiles the cargo integration test targets on the host; returns each target's executable.
    pub(super) async fn compile_cargo_tests(
        &mut self,
        checks: &[CargoCheck],
    ) -> Result<Vec<Utf8PathBuf>> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let config = &self.plan.config;
        let mut cmd =
            tokio::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        cmd.args([
            "test",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&self.plan.manifest_path)
        .args(["-p", &self.plan.package]);
        for check in checks {
            cmd.args(["--test", &check.test]);
        }
        cmd.args(self.plan.features.flags());
        if config.static_link {
            cmd.args(["--target", crate::toolchain::host_triple()]);
        }
        // The service's own flags: its dependencies compiled for it are reused.
        self.plan.host_build().apply(&mut cmd);
        cmd.current_dir(&self.plan.package_dir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        self.shell.status(
            "Compiling",
            format!(
                "integration tests of {} for the container",
                self.plan.package
            ),
        );
        let output = cmd
            .output_in_group()
            .await
            .map_err(|e| Error::io("cannot run `cargo test --no-run`", e))?;
        if !output.status.success() {
            return Err(Error::step_with_help(
                "test",
                format!(
                    "cannot compile the integration tests ({}):\n{}",
                    checks
                        .iter()
                        .map(|c| c.test.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    String::from_utf8_lossy(&output.stderr).trim_end()
                ),
                "fix the test targets named in `[[package.metadata.docker.test.cargo]]`",
            ));
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut binaries = Vec::new();
        for check in checks {
            let exe = stdout
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == true)
                .filter(|m| m["target"]["name"] == check.test.as_str())
                .find_map(|m| m["executable"].as_str().map(Utf8PathBuf::from));
            match exe {
                Some(exe) => binaries.push(exe),
                None => {
                    return Err(Error::TestConfig {
                        message: format!("cargo built no test executable for `{}`", check.test),
                        help: Some("name an integration test target (`tests/NAME.rs`)".into()),
                    });
                }
            }
        }
        Ok(binaries)
    }

    /// Runs a compiled test inside the container (copied into it by [`copy_test_binaries`];
    /// `copy_failed` says why that copy failed).
    pub(super) async fn cargo_check(
        &self,
        check: &CargoCheck,
        copy_failed: Option<&str>,
    ) -> Result<CheckResult> {
        let name = format!("cargo: {}", check.test);
        self.begin(&name);
        let started = Instant::now();
        let id = self.container_id().to_owned();
        if let Some(why) = copy_failed {
            return Ok(CheckResult::failed(&name, "cargo", started, why.to_owned()));
        }
        let mut env = self.service_env();
        // Inside the container the service is on localhost at its own port.
        env.retain(|e| !e.starts_with("SERVICE_"));
        env.push("SERVICE_HOST=127.0.0.1".into());
        if let Some(port) = self.first_port() {
            env.push(format!("SERVICE_PORT={port}"));
            env.push(format!("SERVICE_ADDR=127.0.0.1:{port}"));
        }
        let mut cmd = vec![format!("{TEST_BIN_DIR}/{}", check.test)];
        cmd.extend(check.args.iter().cloned());
        let run = self.engine.exec(&id, &cmd, &env, None);
        let result = match tokio::time::timeout(check.timeout, run).await {
            Err(_) => CheckResult::failed(
                &name,
                "cargo",
                started,
                format!(
                    "did not finish within {}",
                    humantime::format_duration(check.timeout)
                ),
            ),
            Ok(Err(e)) => match self.container_gone().await {
                Some(why) => CheckResult::failed(&name, "cargo", started, why),
                None => return Err(e),
            },
            Ok(Ok(out)) => {
                let passed = out.exit_code == Some(0);
                let problems = if passed {
                    vec![]
                } else {
                    vec![format!(
                        "the tests failed (exit code {})",
                        out.exit_code.unwrap_or(-1)
                    )]
                };
                CheckResult::new(
                    &name,
                    "cargo",
                    started,
                    passed,
                    describe(&problems, &out.stdout, &out.stderr),
                )
            }
        };
        Ok(result)
    }

    /// Runs a command on the host with the container's address in its environment.
    pub(super) async fn host_check(&self, check: &HostCheck) -> Result<CheckResult> {
        let name = format!("host: {}", check.name);
        self.begin(&name);
        let started = Instant::now();
        let mut cmd = tokio::process::Command::new(&check.cmd[0]);
        cmd.args(&check.cmd[1..])
            .current_dir(&self.plan.package_dir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for var in self.service_env() {
            if let Some((k, v)) = var.split_once('=') {
                cmd.env(k, v);
            }
        }
        let child = match cmd.output_with_timeout(check.timeout).await {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::TestConfig {
                    message: format!("host check `{}`: `{}` was not found", check.name, check.cmd[0]),
                    help: Some("install it or fix `cmd` of this `[[package.metadata.docker.test.host]]` entry".into()),
                });
            }
            Err(e) => return Err(Error::io(format!("cannot run `{}`", check.cmd[0]), e)),
        };
        let result = match child {
            None => CheckResult::failed(
                &name,
                "host",
                started,
                format!(
                    "did not finish within {}",
                    humantime::format_duration(check.timeout)
                ),
            ),
            Some(out) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                let problems = output_problems(
                    &check.expect,
                    out.status.code().map(i64::from),
                    &stdout,
                    &stderr,
                    |p| self.expand(p),
                );
                CheckResult::new(
                    &name,
                    "host",
                    started,
                    problems.is_empty(),
                    describe(&problems, &stdout, &stderr),
                )
            }
        };
        Ok(result)
    }

    /// Sends one HTTP request to the published port.
    pub(super) async fn http_check(&self, probe: &HttpProbe) -> Result<CheckResult> {
        let name = format!("http: {}", self.expand(&probe.name));
        self.begin(&name);
        let started = Instant::now();
        let path = self.expand(&probe.path);
        let result = match self.ports.get(&probe.port) {
            None => CheckResult::failed(
                &name,
                "http",
                started,
                format!("port {} is not published", probe.port),
            ),
            Some(host) => match http::request(
                &self.engine.published().host,
                *host,
                &probe.method,
                &path,
                probe.data.as_deref(),
                probe.timeout,
            )
            .await
            {
                Err(e) => {
                    let why = self.container_gone().await.map(|g| format!("\n{g}"));
                    CheckResult::failed(
                        &name,
                        "http",
                        started,
                        format!("{e}{}", why.unwrap_or_default()),
                    )
                }
                Ok(r) => {
                    let mut problems = Vec::new();
                    if r.status != probe.status {
                        problems.push(format!("status {}, expected {}", r.status, probe.status));
                    }
                    for p in probe.body.iter().map(|p| self.expand(p)) {
                        if !r.body.contains(&p) {
                            problems.push(format!("body does not contain `{p}`"));
                        }
                    }
                    for p in probe.body_not.iter().map(|p| self.expand(p)) {
                        if r.body.contains(&p) {
                            problems.push(format!("body contains `{p}`"));
                        }
                    }
                    let passed = problems.is_empty();
                    let mut output = problems.join("\n");
                    if !passed {
                        output.push_str(&format!("\n--- body ---\n{}", truncate(&r.body, 4000)));
                    }
                    CheckResult::new(&name, "http", started, passed, output)
                }
            },
        };
        Ok(result)
    }

    /// Stops the container with its stop signal and checks the exit code and time.
    pub(super) async fn shutdown_check(
        &mut self,
        check: &ShutdownCheck,
        signal: &str,
    ) -> Result<()> {
        let name = format!("shutdown: {signal}");
        self.begin(&name);
        let started = Instant::now();
        let id = self.container_id().to_owned();
        self.engine.kill_container(&id, signal).await?;
        let result =
            match tokio::time::timeout(check.timeout, self.engine.wait_container(&id)).await {
                Err(_) => {
                    let logs = self.engine.logs_tail(&id, 10).await.unwrap_or_default();
                    CheckResult::failed(
                        &name,
                        "shutdown",
                        started,
                        format!(
                            "still running {} after {signal}\n--- last log lines ---\n{}",
                            humantime::format_duration(check.timeout),
                            logs.trim_end()
                        ),
                    )
                }
                Ok(code) => {
                    let code = code?;
                    let passed = code == check.exit_code;
                    CheckResult::new(
                        &name,
                        "shutdown",
                        started,
                        passed,
                        if passed {
                            String::new()
                        } else {
                            format!("exit code {code}, expected {}", check.exit_code)
                        },
                    )
                }
            };
        self.record(result);
        Ok(())
    }
}

/// The compiled tests as one archive of [`TEST_BIN_DIR`], each named after its target.
fn test_binaries_archive(checks: &[CargoCheck], binaries: &[Utf8PathBuf]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let packing = |e| Error::io("cannot pack the test binaries", e);
    for (check, exe) in checks.iter().zip(binaries) {
        let data = std::fs::read(exe).map_err(|e| Error::io(format!("cannot read {exe}"), e))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o755);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let path = format!("{}/{}", TEST_BIN_DIR.trim_start_matches('/'), check.test);
        tar.append_data(&mut header, &path, data.as_slice())
            .map_err(packing)?;
    }
    tar.into_inner().map_err(packing)
}

/// Copies the compiled tests into container `id`; `None` when there are none. It borrows nothing
/// of the session, so it runs while the service gets ready (the copy does not depend on it).
pub(super) async fn copy_test_binaries(
    engine: Engine,
    id: String,
    checks: &[CargoCheck],
    binaries: &[Utf8PathBuf],
) -> Option<Result<()>> {
    if binaries.is_empty() {
        return None;
    }
    let archive = match test_binaries_archive(checks, binaries) {
        Ok(archive) => archive,
        Err(e) => return Some(Err(e)),
    };
    Some(engine.upload_tar(&id, "/", archive).await)
}

fn truncate(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((i, _)) => &text[..i],
        None => text,
    }
}

/// `output()` with a deadline: `None` when it ran out (the child's process group is killed).
trait OutputWithTimeout {
    async fn output_with_timeout(
        &mut self,
        timeout: Duration,
    ) -> std::io::Result<Option<std::process::Output>>;

    /// `output()` with the child leading a process group that is killed when it is done.
    async fn output_in_group(&mut self) -> std::io::Result<std::process::Output>;
}

impl OutputWithTimeout for tokio::process::Command {
    async fn output_with_timeout(
        &mut self,
        timeout: Duration,
    ) -> std::io::Result<Option<std::process::Output>> {
        match tokio::time::timeout(timeout, self.output_in_group()).await {
            Ok(out) => out.map(Some),
            Err(_) => Ok(None),
        }
    }

    async fn output_in_group(&mut self) -> std::io::Result<std::process::Output> {
        let child = self
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        // The check's whole process group (its background jobs too) stops with it: at its
        // deadline, on interruption, and when it is done.
        let _group = crate::interrupt::ProcessGroup::new(child.id());
        child.wait_with_output().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_expectations_name_every_problem() {
        let expect = OutputExpectations {
            status: 0,
            stdout: vec!["hello {sha}".into()],
            stdout_not: vec!["error".into()],
            stderr: vec![],
            stderr_not: vec!["panic".into()],
        };
        let expand = |p: &str| p.replace("{sha}", "abc");
        assert!(output_problems(&expect, Some(0), "hello abc", "", expand).is_empty());
        let problems = output_problems(&expect, Some(2), "error", "panic!", expand);
        assert_eq!(
            problems,
            vec![
                "exit code 2, expected 0",
                "stdout does not contain `hello abc`",
                "stdout contains `error`",
                "stderr contains `panic`"
            ]
        );
    }

    #[test]
    fn missing_programs_are_recognised_from_the_runtime_message() {
        let out = |code, text: &str| ExecOutput {
            exit_code: Some(code),
            stdout: text.into(),
            stderr: String::new(),
        };
        assert!(is_missing_program(&out(
            126,
            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"/nope\": stat /nope: no such file or directory: unknown"
        )));
        assert!(is_missing_program(&out(
            127,
            "exec: \"nope\": executable file not found in $PATH"
        )));
        assert!(!is_missing_program(&out(1, "no such file or directory")));
    }
}
