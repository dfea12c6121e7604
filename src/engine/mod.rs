//! The only code that talks to the Docker engine (bollard): build, run, exec, tag, push, inspect.

pub mod container;

use bollard::Docker;

use crate::error::{Error, Result};

/// A connection to the Docker engine, checked to answer.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects as the docker CLI does (`DOCKER_HOST`, else the local socket), negotiates the API
    /// version and pings, so an unreachable engine is reported before anything else happens.
    pub async fn connect() -> Result<Engine> {
        let host =
            std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable = |e: bollard::errors::Error| {
            Error::step_with_help(
                "engine",
                format!("cannot reach the Docker engine at {host}: {e}"),
                "start the Docker daemon, or point DOCKER_HOST at a running engine",
            )
        };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Engine { docker })
    }

    /// The bollard client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }
}
