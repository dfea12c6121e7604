//! Ports of a test container on an ssh engine, forwarded to this host's loopback: the engine
//! publishes them on its own `127.0.0.1`, and one `ssh -N -L …` (the OpenSSH client, with the
//! user's ssh config, as for the engine connection itself) makes each reachable here.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::interrupt::ProcessGroup;

/// How long the forwards may take to come up.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// Running forwards; stopped (the ssh process group killed) when dropped.
#[derive(Debug)]
pub struct PortForwards {
    _child: tokio::process::Child,
    _group: ProcessGroup,
}

/// `[user@]host[:port]` as `ssh` arguments: `-p PORT [user@]host`.
fn ssh_destination(target: &str) -> Vec<String> {
    match target.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            vec!["-p".into(), port.into(), host.into()]
        }
        _ => vec![target.into()],
    }
}

impl PortForwards {
    /// Forwards every `container port -> engine-host port` of `published` to a free port of this
    /// host's loopback; returns the forwards and `container port -> local port`.
    pub async fn open(
        target: &str,
        published: &BTreeMap<u16, u16>,
    ) -> Result<(PortForwards, BTreeMap<u16, u16>)> {
        let failed = |why: String| {
            Error::step_with_help(
                "test",
                format!("cannot forward the test container's ports from ssh://{target}: {why}"),
                "check that `ssh` reaches the engine host without a prompt and that it allows TCP forwarding",
            )
        };
        let mut local = BTreeMap::new();
        let mut args: Vec<String> = [
            "-N",
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
        ]
        .map(str::to_owned)
        .to_vec();
        for (container, remote) in published {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| failed(format!("no free local port: {e}")))?
                .port();
            args.push("-L".into());
            args.push(format!("127.0.0.1:{port}:127.0.0.1:{remote}"));
            local.insert(*container, port);
        }
        args.extend(ssh_destination(target));
        let mut child = tokio::process::Command::new("ssh")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|e| failed(format!("cannot run `ssh`: {e}")))?;
        let group = ProcessGroup::new(child.id());
        let started = Instant::now();
        for port in local.values() {
            loop {
                if tokio::net::TcpStream::connect(("127.0.0.1", *port))
                    .await
                    .is_ok()
                {
                    break;
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let mut stderr = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        use tokio::io::AsyncReadExt;
                        let _ = e.read_to_string(&mut stderr).await;
                    }
                    return Err(failed(format!(
                        "`ssh` exited ({status}): {}",
                        stderr.trim()
                    )));
                }
                if started.elapsed() > READY_TIMEOUT {
                    return Err(failed(format!(
                        "the forwards did not come up within {}s",
                        READY_TIMEOUT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok((
            PortForwards {
                _child: child,
                _group: group,
            },
            local,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_targets_become_ssh_arguments() {
        assert_eq!(ssh_destination("ci@build:2222"), ["-p", "2222", "ci@build"]);
        assert_eq!(ssh_destination("build"), ["build"]);
    }
}
