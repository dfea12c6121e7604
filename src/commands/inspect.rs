//! `inspect IMAGE`: which release and commit an image is, from its labels and `ENV SHA`, without
//! running it.

use std::collections::BTreeMap;

use clap::Args;
use serde::Serialize;

use crate::engine::Engine;
use crate::engine::images::ImageStore;
use crate::error::{Error, Result};
use crate::plan::{LABEL_BUILD, LABEL_PACKAGE, OCI};
use crate::ui::{MessageFormat, Shell};

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image reference or ID, e.g. `acme/orders:1.4.2`
    pub image: String,
}

/// `inspect IMAGE`: what an image carries, from its labels and `ENV SHA`.
pub fn run(args: &InspectArgs, shell: &Shell) -> Result<()> {
    super::block_on(async {
        let reference = args.image.as_str();
        let engine = Engine::connect().await?;
        let inspection = inspect(&engine, reference).await?;
        if inspection.revision.is_some() && !inspection.consistent() {
            shell.warn(format!(
                "`{reference}`: ENV SHA ({}) differs from its revision label ({})",
                inspection.sha.as_deref().unwrap_or("unset"),
                inspection.revision.as_deref().unwrap_or_default()
            ));
        }
        match shell.format() {
            MessageFormat::Json => {
                let json =
                    serde_json::to_string_pretty(&inspection).expect("inspections serialize");
                shell.stdout(&format!("{json}\n"))
            }
            MessageFormat::Human => shell.stdout(&inspection.human()),
        }
    })
}

/// What an image says about itself.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The reference asked about.
    pub reference: String,
    /// Image ID.
    pub id: String,
    /// Cargo package (the tool's label).
    pub package: Option<String>,
    /// `org.opencontainers.image.version`.
    pub version: Option<String>,
    /// `org.opencontainers.image.revision`.
    pub revision: Option<String>,
    /// `ENV SHA` of the image config.
    pub sha: Option<String>,
    /// `org.opencontainers.image.source`.
    pub source: Option<String>,
    /// `org.opencontainers.image.created` (the commit time).
    pub created: Option<String>,
    /// `release` or `development`.
    pub build: Option<String>,
    /// Every `repository:tag` naming this image ID in the local engine.
    pub tags: Vec<String>,
    /// Size in bytes.
    pub size: u64,
    /// Every label.
    pub labels: BTreeMap<String, String>,
}

impl Inspection {
    /// Whether the label and the environment agree on the commit.
    pub fn consistent(&self) -> bool {
        self.revision.is_some() && self.revision == self.sha
    }

    /// The inspection for people.
    pub fn human(&self) -> String {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".to_owned());
        let mut out = String::new();
        let mut line = |k: &str, v: String| out.push_str(&format!("{k:>10}: {v}\n"));
        line("image", self.reference.clone());
        line("id", self.id.clone());
        line("package", show(&self.package));
        line("version", show(&self.version));
        line("revision", show(&self.revision));
        line("ENV SHA", show(&self.sha));
        line("source", show(&self.source));
        line("created", show(&self.created));
        line("build", show(&self.build));
        line("size", crate::ui::human_bytes(self.size));
        line(
            "tags",
            if self.tags.is_empty() {
                "(none)".to_owned()
            } else {
                self.tags.join(", ")
            },
        );
        out
    }
}

/// Reads what `reference` (name:tag or ID) carries.
pub async fn inspect(store: &impl ImageStore, reference: &str) -> Result<Inspection> {
    let info = store.image(reference).await?.ok_or_else(|| {
        Error::step_with_help(
            "inspect",
            format!("no image `{reference}` in the local engine"),
            "name it as `repository:tag` or by image ID (see `docker images`)",
        )
    })?;
    let label = |k: &str| info.labels.get(k).cloned();
    let mut tags = info.repo_tags.clone();
    tags.sort();
    Ok(Inspection {
        reference: reference.to_owned(),
        id: info.id.clone(),
        package: label(LABEL_PACKAGE),
        version: label(&format!("{OCI}.version")),
        revision: label(&format!("{OCI}.revision")),
        sha: info.env_var("SHA").map(str::to_owned),
        source: label(&format!("{OCI}.source")),
        created: label(&format!("{OCI}.created")),
        build: label(LABEL_BUILD),
        tags,
        size: info.size,
        labels: info.labels.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::tag::fake::FakeStore;

    #[test]
    fn inspect_reads_labels_env_and_every_tag_of_the_id() {
        let store = FakeStore::default().with_image(
            "sha256:1",
            &[
                ("org.opencontainers.image.version", "1.2.3"),
                ("org.opencontainers.image.revision", "abc"),
            ],
            &["acme/app:1.2.3", "acme/app:latest"],
        );
        store
            .images
            .lock()
            .unwrap()
            .get_mut("sha256:1")
            .unwrap()
            .env = vec!["SHA=abc".into()];
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let i = rt.block_on(inspect(&store, "acme/app:latest")).unwrap();
        assert_eq!(i.version.as_deref(), Some("1.2.3"));
        assert!(i.consistent());
        assert_eq!(i.tags, ["acme/app:1.2.3", "acme/app:latest"]);
        let e = rt.block_on(inspect(&store, "nope:1")).unwrap_err();
        assert_eq!(e.exit_code(), 1);
    }
}
