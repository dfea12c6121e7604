//! Containers of the test stage: create, start, inspect, exec, logs, file stat and upload, signal,
//! wait, remove; and finding the tool's leftover containers. Only bollard calls live here; the
//! policy (what to check, when to give up) is in [`crate::checks`].

use std::collections::{BTreeMap, HashMap};

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, ImageInspect, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, DownloadFromContainerOptionsBuilder,
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::{Stream, StreamExt};

use super::Engine;
use crate::error::{Error, Result};

/// Label every test container carries (value `test`), so leftovers can always be found.
pub const CONTAINER_LABEL: &str = "io.cargo-docker-release.container";
/// Label with `host:pid` of the process that owns a test container.
pub const OWNER_LABEL: &str = "io.cargo-docker-release.owner";

/// What to create.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    /// Unique container name.
    pub name: String,
    /// Image ID (never a tag: the tested image is exactly the built one).
    pub image: String,
    /// `KEY=value` environment added to the image's.
    pub env: Vec<String>,
    /// Container ports published on `127.0.0.1:<random>` (every address of a remote engine's
    /// host: [`super::Engine::published`]).
    pub ports: Vec<u16>,
    /// Labels of the container.
    pub labels: HashMap<String, String>,
    /// Replaces the image's command (used for containers that are never started).
    pub cmd: Option<Vec<String>>,
    /// Replaces the image's entrypoint (and so its command): `[program, args…]`, as a builder's
    /// exec-form `RUN` runs it.
    pub entrypoint: Option<Vec<String>>,
}

/// The output of a command run in a container.
#[derive(Debug, Clone, Default)]
pub struct ExecOutput {
    /// Exit code (`None` when the engine did not report one).
    pub exit_code: Option<i64>,
    /// Standard output, lossily decoded.
    pub stdout: String,
    /// Standard error, lossily decoded.
    pub stderr: String,
}

/// A container found by label.
#[derive(Debug, Clone)]
pub struct LabelledContainer {
    /// Container ID.
    pub id: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// Creation time, seconds since the Unix epoch.
    pub created: i64,
}

/// Type, permissions and owner of a path in a container's file system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathStat {
    /// Permission bits (`0o7777` mask).
    pub mode: u32,
    /// Owner uid.
    pub uid: u64,
    /// Owner gid.
    pub gid: u64,
    /// Whether it is a directory.
    pub is_dir: bool,
}

fn engine_error(what: impl std::fmt::Display, e: bollard::errors::Error) -> Error {
    if super::is_connection_fault(&e) {
        return super::engine_error("test", &what.to_string(), e);
    }
    Error::step("test", format!("{what}: {e}"))
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// `host@pidns:pid` of this process, recorded on the containers it creates.
///
/// The PID namespace is part of the host: a release in a CI container that shares the engine's
/// socket (or under `unshare --pid`) sees other namespaces' pids as dead, and must treat their
/// containers as another host's rather than remove them as leftovers.
pub fn owner_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default();
    let namespace = std::fs::read_link("/proc/self/ns/pid")
        .map(|link| link.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{host}@{namespace}:{}", std::process::id())
}

impl Engine {
    /// Inspects an image by ID or reference.
    pub async fn inspect_image_by_id(&self, image: &str) -> Result<ImageInspect> {
        self.docker()
            .inspect_image(image)
            .await
            .map_err(|e| engine_error(format_args!("cannot inspect image {image}"), e))
    }

    /// Creates a container (not started); returns its ID.
    pub async fn create_container(&self, spec: &ContainerSpec) -> Result<String> {
        let mut bindings = HashMap::new();
        for port in &spec.ports {
            bindings.insert(
                format!("{port}/tcp"),
                Some(vec![PortBinding {
                    host_ip: Some(self.published().bind_ip.clone()),
                    host_port: Some(String::new()),
                }]),
            );
        }
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.clone()),
            labels: Some(spec.labels.clone()),
            cmd: spec.cmd.clone(),
            entrypoint: spec.entrypoint.clone(),
            exposed_ports: Some(spec.ports.iter().map(|p| format!("{p}/tcp")).collect()),
            host_config: Some(HostConfig {
                port_bindings: Some(bindings),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self
            .docker()
            .create_container(Some(options), body)
            .await
            .map_err(|e| engine_error("cannot create the test container", e))?;
        Ok(created.id)
    }

    /// Starts a created container.
    pub async fn start_container(&self, id: &str) -> Result<()> {
        self.docker()
            .start_container(id, None)
            .await
            .map_err(|e| engine_error("cannot start the test container", e))
    }

    /// Inspects a container.
    pub async fn inspect_container(&self, id: &str) -> Result<ContainerInspectResponse> {
        self.docker()
            .inspect_container(id, None)
            .await
            .map_err(|e| engine_error("cannot inspect the test container", e))
    }

    /// Container port -> published host port, from a started container.
    pub async fn published_ports(&self, id: &str) -> Result<BTreeMap<u16, u16>> {
        let inspect = self.inspect_container(id).await?;
        let mut ports = BTreeMap::new();
        let map = inspect
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        for (key, bindings) in map {
            let Some(container) = key.split('/').next().and_then(|p| p.parse().ok()) else {
                continue;
            };
            let host = bindings
                .iter()
                .flatten()
                .find_map(|b| b.host_port.as_deref().and_then(|p| p.parse().ok()));
            if let Some(host) = host {
                ports.insert(container, host);
            }
        }
        Ok(ports)
    }

    /// Runs `cmd` in a running container and collects its output and exit code.
    pub async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        env: &[String],
        user: Option<&str>,
    ) -> Result<ExecOutput> {
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.to_vec()),
            env: Some(env.to_vec()),
            user: user.map(str::to_owned),
            ..Default::default()
        };
        let exec = self
            .docker()
            .create_exec(id, options)
            .await
            .map_err(|e| engine_error("cannot create an exec", e))?;
        let mut out = ExecOutput::default();
        match self
            .docker()
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| engine_error("cannot start an exec", e))?
        {
            StartExecResults::Attached { mut output, .. } => {
                while let Some(chunk) = output.next().await {
                    match chunk.map_err(|e| engine_error("reading exec output", e))? {
                        LogOutput::StdErr { message } => {
                            out.stderr.push_str(&String::from_utf8_lossy(&message))
                        }
                        other => out
                            .stdout
                            .push_str(&String::from_utf8_lossy(&other.into_bytes())),
                    }
                }
            }
            StartExecResults::Detached => {}
        }
        let inspect = self
            .docker()
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| engine_error("cannot inspect an exec", e))?;
        out.exit_code = inspect.exit_code;
        Ok(out)
    }

    /// The last `lines` lines of a container's output (stdout and stderr interleaved).
    pub async fn logs_tail(&self, id: &str, lines: usize) -> Result<String> {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(&lines.to_string())
            .build();
        let mut stream = self.docker().logs(id, Some(options));
        let mut text = String::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => text.push_str(&String::from_utf8_lossy(&c.into_bytes())),
                Err(e) => return Err(engine_error("cannot read the container's logs", e)),
            }
        }
        Ok(text)
    }

    /// Follows a container's output from its start, chunk by chunk.
    pub fn follow_logs(&self, id: &str) -> impl Stream<Item = String> + Send + 'static {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(true)
            .build();
        self.docker()
            .logs(id, Some(options))
            .take_while(|c| std::future::ready(c.is_ok()))
            .map(|c| {
                c.map(|c| String::from_utf8_lossy(&c.into_bytes()).into_owned())
                    .unwrap_or_default()
            })
    }

    /// Type, mode and owner of `path` in a container (running or not); `None` when it is absent.
    pub async fn stat_path(&self, id: &str, path: &str) -> Result<Option<PathStat>> {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(path)
            .build();
        let mut stream = self.docker().download_from_container(id, Some(options));
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(c) => {
                    data.extend_from_slice(&c);
                    // The first header is all we need.
                    if data.len() >= 512 {
                        break;
                    }
                }
                Err(e) if is_not_found(&e) => return Ok(None),
                Err(e) => return Err(engine_error(format_args!("cannot read {path}"), e)),
            }
        }
        if data.len() < 512 {
            return Err(Error::step(
                "test",
                format!("the engine returned no archive for {path}"),
            ));
        }
        let header = tar::Header::from_byte_slice(&data[..512]);
        let field = |r: std::io::Result<u64>| r.unwrap_or(0);
        Ok(Some(PathStat {
            mode: header.mode().unwrap_or(0) & 0o7777,
            uid: field(header.uid()),
            gid: field(header.gid()),
            is_dir: header.entry_type().is_dir(),
        }))
    }

    /// Extracts a tar archive into `dir` of a container.
    pub async fn upload_tar(&self, id: &str, dir: &str, tar: Vec<u8>) -> Result<()> {
        let options = UploadToContainerOptionsBuilder::default().path(dir).build();
        self.docker()
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| engine_error("cannot copy files into the test container", e))
    }

    /// Sends a signal to a container's main process.
    pub async fn kill_container(&self, id: &str, signal: &str) -> Result<()> {
        let options = KillContainerOptionsBuilder::default()
            .signal(signal)
            .build();
        self.docker()
            .kill_container(id, Some(options))
            .await
            .map_err(|e| engine_error(format_args!("cannot send {signal}"), e))
    }

    /// Waits until a container is not running; returns its exit code.
    pub async fn wait_container(&self, id: &str) -> Result<i64> {
        let options = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut stream = self.docker().wait_container(id, Some(options));
        match stream.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(engine_error("waiting for the container", e)),
            None => Err(Error::step("test", "the engine stopped answering the wait")),
        }
    }

    /// Removes a container, running or not, with its anonymous volumes. Absent is fine.
    pub async fn remove_container(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker().remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            // "removal already in progress"
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(engine_error(
                format_args!("cannot remove container {id}"),
                e,
            )),
        }
    }

    /// Every container (running or not) carrying `label`.
    pub async fn containers_with_label(&self, label: &str) -> Result<Vec<LabelledContainer>> {
        let filters = HashMap::from([("label".to_string(), vec![label.to_string()])]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let list = self
            .docker()
            .list_containers(Some(options))
            .await
            .map_err(|e| engine_error("cannot list containers", e))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                Some(LabelledContainer {
                    id: c.id?,
                    labels: c.labels.unwrap_or_default(),
                    created: c.created.unwrap_or(0),
                })
            })
            .collect())
    }
}
