//! Dockerfiles: embedded templates rendered strictly, escaping, drift check and lint.
//!
//! PLACEHOLDER until the templates land: [`for_image`] is the interface the build step uses.

use crate::config::Strategy;
use crate::error::{Error, Result};
use crate::plan::ImagePlan;

/// Where the Dockerfile of an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DockerfileSource {
    /// Rendered from a template.
    Generated,
    /// The user's own file (`dockerfile = "path"`).
    HandWritten(camino::Utf8PathBuf),
}

/// The Dockerfile and `.dockerignore` an image is built from.
///
/// Build-context contract: for `strategy = "host"` the build step puts the host-built binary at
/// `bin/<bin>` in the context and nothing else but the Dockerfile; for `strategy = "docker"` the
/// context is `config.context` (the workspace root by default) filtered by `dockerignore`.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// Dockerfile text.
    pub dockerfile: String,
    /// `.dockerignore` text applied when assembling the build context.
    pub dockerignore: String,
    /// Where it came from.
    pub source: DockerfileSource,
}

/// The Dockerfile an image is built from: rendered, or the validated hand-written one.
pub fn for_image(plan: &ImagePlan) -> Result<Rendered> {
    let config = &plan.config;
    if let Some(path) = &config.dockerfile {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read Dockerfile `{path}`"), e))?;
        return Ok(Rendered {
            dockerfile: text,
            dockerignore: default_dockerignore(),
            source: DockerfileSource::HandWritten(path.clone()),
        });
    }
    if config.strategy != Strategy::Host {
        return Err(Error::Dockerfile {
            message: "the docker strategy's template is not written yet".into(),
            help: None,
            code: 2,
        });
    }
    let json = |v: &[String]| serde_json::to_string(v).expect("strings serialize");
    let mut out = format!("FROM {}\n", config.base);
    for (k, v) in &plan.labels {
        out.push_str(&format!(
            "LABEL {}={}\n",
            serde_json::to_string(k).unwrap(),
            serde_json::to_string(v).unwrap()
        ));
    }
    out.push_str(&format!("ENV SHA={}\n", plan.revision));
    out.push_str(&format!(
        "COPY [\"bin/{0}\", \"/usr/local/bin/{0}\"]\n",
        config.bin
    ));
    out.push_str(&format!("USER {}\n", config.user));
    for p in &config.expose {
        out.push_str(&format!("EXPOSE {p}\n"));
    }
    if let Some(hc) = &config.healthcheck {
        out.push_str(&format!(
            "HEALTHCHECK --interval={}s --timeout={}s --start-period={}s --retries={} CMD {}\n",
            hc.interval.as_secs(),
            hc.timeout.as_secs(),
            hc.start_period.as_secs(),
            hc.retries,
            json(&hc.cmd)
        ));
    }
    out.push_str(&format!("ENTRYPOINT {}\n", json(&config.entrypoint)));
    if !config.cmd.is_empty() {
        out.push_str(&format!("CMD {}\n", json(&config.cmd)));
    }
    Ok(Rendered {
        dockerfile: out,
        dockerignore: default_dockerignore(),
        source: DockerfileSource::Generated,
    })
}

fn default_dockerignore() -> String {
    "target/\n.git/\n.env\n*.pem\n*.key\n".into()
}
