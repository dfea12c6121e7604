//! The host strategy's image step without a builder: the tool assembles the image from the
//! binary cargo built and the rendered Dockerfile ([`crate::image`]), keeps it as an OCI layout
//! for the push, and loads it into the engine for the tests. The builder still makes the image
//! when the user chose one (`DOCKER_BUILDKIT` set, `buildkit = false`), for a hand-written
//! Dockerfile, and for a template that says what only a builder does.

use std::collections::BTreeMap;

use camino::Utf8Path;

use super::build::BuilderChoice;
use crate::config::Strategy;
use crate::dockerfile::{DockerfileSource, Rendered};
use crate::engine::Engine;
use crate::engine::images::ImageStore;
use crate::error::{Error, Result};
use crate::image::{self, Assembled, ImageSpec, LayerFile};
use crate::plan::ImagePlan;

/// Label holding the toolchain that compiled a host-built image's binary (`rustc -vV`).
pub const LABEL_RUSTC: &str = "io.cargo-docker-release.rustc";

/// How a service's image is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Maker {
    /// Assembled by the tool from what the Dockerfile says: reproducible.
    Assembled(Box<ImageSpec>),
    /// Built by the engine's builder, for this reason.
    Builder(String),
}

/// How `plan`'s image is made, given the build arguments and the builder choice.
pub fn maker(
    plan: &ImagePlan,
    rendered: &Rendered,
    args: &BTreeMap<String, String>,
    choice: BuilderChoice,
) -> Maker {
    let builder = |why: &str| Maker::Builder(why.to_owned());
    if plan.config.strategy != Strategy::Host {
        return builder("the docker strategy compiles in the builder image");
    }
    if let DockerfileSource::HandWritten(path) = &rendered.source {
        return Maker::Builder(format!("the hand-written {path} is built by the builder"));
    }
    if matches!(
        choice,
        BuilderChoice::EnvDisabled | BuilderChoice::ManifestDisabled | BuilderChoice::EnvEnabled
    ) {
        return Maker::Builder(format!("the builder was chosen ({})", choice.reason()));
    }
    if image::oci::platform(crate::toolchain::host_triple()).is_none() {
        return Maker::Builder(format!(
            "no OCI platform is known for `{}`",
            crate::toolchain::host_triple()
        ));
    }
    let spec = match ImageSpec::read(&rendered.dockerfile, args) {
        Ok(spec) => spec,
        Err(why) => return Maker::Builder(format!("the Dockerfile needs a builder: {why}")),
    };
    let binary = format!("bin/{}", plan.config.bin);
    if let Some((src, _)) = spec.copies.iter().find(|(src, _)| *src != binary) {
        return Maker::Builder(format!(
            "the Dockerfile copies `{src}`, which only a build context holds"
        ));
    }
    Maker::Assembled(Box::new(spec))
}

/// Assembles `plan`'s image from `spec` and `binary` with `labels` added, writes it as the
/// service's OCI layout and loads it into the engine; the engine's ID must be the one computed.
pub async fn assemble(
    engine: &Engine,
    plan: &ImagePlan,
    spec: &ImageSpec,
    binary: &Utf8Path,
    labels: BTreeMap<String, String>,
) -> Result<Assembled> {
    let data = std::fs::read(binary)
        .map_err(|e| Error::io(format!("reading the binary `{binary}`"), e))?;
    let mut spec = spec.clone();
    spec.labels.extend(labels);
    let files: Vec<LayerFile> = spec
        .copies
        .iter()
        .map(|(_, dst)| LayerFile {
            path: dst.clone(),
            data: data.clone(),
            mode: 0o755,
        })
        .collect();
    let image = image::assemble(
        &spec,
        &files,
        plan.git.commit_time,
        crate::toolchain::host_triple(),
    )
    .map_err(|e| Error::step("build", format!("cannot assemble the image: {e}")))?;
    let reference = format!(
        "{}:{}",
        plan.image,
        &plan.revision[..plan.revision.len().min(12)]
    );
    image::store::write(
        &image::store::layout_dir(&plan.target_dir, &plan.package),
        &image,
        &reference,
    )?;
    // The same commit is the same image: an engine that has it already needs no load.
    if ImageStore::image(engine, image.image_id()).await?.is_some() {
        return Ok(image);
    }
    let archive = image::archive::load_archive(&image)
        .map_err(|e| Error::io("writing the image archive", e))?;
    let loaded = engine.load_image(archive).await?;
    // The classic image store's ID is the config digest, containerd's the manifest digest.
    if loaded != image.image_id() && loaded != image.manifest_digest() {
        return Err(Error::step(
            "build",
            format!(
                "the engine loaded the assembled image as {loaded}, not {}",
                image.image_id()
            ),
        ));
    }
    Ok(image)
}

/// The toolchain as [`LABEL_RUSTC`] records it.
pub fn rustc_label() -> String {
    let rustc = crate::toolchain::Rustc::get();
    format!("{} {}", rustc.release, rustc.host)
}
