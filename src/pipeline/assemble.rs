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
use crate::image::base::{BaseImage, BaseSource};
use crate::image::{self, Assembled, ImageSpec, LayerFile};
use crate::plan::ImagePlan;
use crate::registry::Registries;

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

/// How `plan`'s image is made, given the build arguments and the builder choice, without the
/// network (`plan`): a non-scratch base is only known when [`resolve`] reads its registry.
pub fn maker(
    plan: &ImagePlan,
    rendered: &Rendered,
    args: &BTreeMap<String, String>,
    choice: BuilderChoice,
) -> Maker {
    if let Some(builder) = needs_builder(plan, rendered, choice) {
        return builder;
    }
    match ImageSpec::base_reference(&rendered.dockerfile, args) {
        None => Maker::Builder(BASE_UNKNOWN.to_owned()),
        Some(b) if b.eq_ignore_ascii_case("scratch") => on_base(plan, rendered, args, None),
        Some(b) => Maker::Builder(format!(
            "its base `{b}` is read from its registry when building (assembled if it serves it)"
        )),
    }
}

/// [`maker`] for the build: a non-scratch base is resolved in its registry first, since its
/// config is where the stage starts. A base the registry does not serve is built by the
/// builder, with the reason.
pub async fn resolve(
    engine: &Engine,
    plan: &ImagePlan,
    rendered: &Rendered,
    args: &BTreeMap<String, String>,
    choice: BuilderChoice,
) -> Maker {
    if let Some(builder) = needs_builder(plan, rendered, choice) {
        return builder;
    }
    let base = match ImageSpec::base_reference(&rendered.dockerfile, args) {
        None => return Maker::Builder(BASE_UNKNOWN.to_owned()),
        Some(b) if b.eq_ignore_ascii_case("scratch") => None,
        Some(b) => match resolve_base(engine, &b).await {
            Ok(Ok(base)) => Some(base),
            Ok(Err(why)) => return Maker::Builder(format!("its base `{b}`: {why}")),
            Err(e) => return Maker::Builder(format!("its base `{b}` is not readable: {e}")),
        },
    };
    on_base(plan, rendered, args, base)
}

const BASE_UNKNOWN: &str = "the Dockerfile's base depends on what only the builder knows";

/// Why the builder makes the image whatever its Dockerfile says, if it does.
fn needs_builder(plan: &ImagePlan, rendered: &Rendered, choice: BuilderChoice) -> Option<Maker> {
    if plan.config.strategy != Strategy::Host {
        return Some(Maker::Builder(
            "the docker strategy compiles in the builder image".to_owned(),
        ));
    }
    if let DockerfileSource::HandWritten(path) = &rendered.source {
        return Some(Maker::Builder(format!(
            "the hand-written {path} is built by the builder"
        )));
    }
    if matches!(
        choice,
        BuilderChoice::EnvDisabled | BuilderChoice::ManifestDisabled | BuilderChoice::EnvEnabled
    ) {
        return Some(Maker::Builder(format!(
            "the builder was chosen ({})",
            choice.reason()
        )));
    }
    if image::oci::platform(crate::toolchain::host_triple()).is_none() {
        return Some(Maker::Builder(format!(
            "no OCI platform is known for `{}`",
            crate::toolchain::host_triple()
        )));
    }
    None
}

/// What the Dockerfile says on `base` (`None`: scratch), if the tool can assemble it.
fn on_base(
    plan: &ImagePlan,
    rendered: &Rendered,
    args: &BTreeMap<String, String>,
    base: Option<BaseImage>,
) -> Maker {
    let spec = match ImageSpec::read_on(&rendered.dockerfile, args, base) {
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

/// The client of the registry of image `name`, connected as the push connects (the engine's
/// insecure registries, the Docker config's credentials), for reading.
async fn registry_of(engine: &Engine, name: &str) -> Result<Registries> {
    let facts = engine.push_facts().await?;
    Registries::connect(&[name], &facts.insecure, false).await
}

/// `reference` resolved in its registry for the host's platform.
async fn resolve_base(
    engine: &Engine,
    reference: &str,
) -> Result<std::result::Result<BaseImage, String>> {
    let name = image::base::split_reference(reference).0;
    let registries = registry_of(engine, name).await?;
    let (_, client) = registries.get(name, "build")?;
    let platform = image::oci::platform(crate::toolchain::host_triple()).expect("checked");
    image::base::resolve(client, reference, platform).await
}

/// Whether the engine holds every layer of `base`: an image with its config digest (or under
/// its reference) whose RootFS is the base's diff IDs. The load then needs none of its blobs.
async fn engine_has_base(engine: &Engine, base: &BaseSource, reference: &str) -> bool {
    let wanted: Vec<&str> = base.layers.iter().map(|l| l.diff_id.as_str()).collect();
    for name in [base.config_digest.as_str(), reference] {
        if let Ok(image) = engine.docker().inspect_image(name).await {
            let layers = image.root_fs.and_then(|r| r.layers).unwrap_or_default();
            if layers.iter().map(String::as_str).eq(wanted.iter().copied()) {
                return true;
            }
        }
    }
    false
}

/// Downloads the blobs of `image`'s base that are not at hand yet.
async fn download_base(engine: &Engine, image: &mut Assembled, reference: &str) -> Result<()> {
    let Some(base) = image.base.clone() else {
        return Ok(());
    };
    let name = image::base::split_reference(reference).0;
    let registries = registry_of(engine, name).await?;
    let (_, client) = registries.get(name, "build")?;
    for layer in &base.layers {
        let digest = &layer.descriptor.digest;
        if image.base_blobs.contains_key(digest) {
            continue;
        }
        let blob = client
            .blob(&base.repository, digest)
            .await?
            .ok_or_else(|| {
                Error::step(
                    "build",
                    format!("the base layer {digest} is not in `{reference}`'s registry"),
                )
            })?;
        image.base_blobs.insert(digest.clone(), blob.to_vec());
    }
    Ok(())
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
    let mut image = image::assemble(
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
    let layout = image::store::layout_dir(&plan.target_dir, &plan.package);
    // The same commit is the same image: an engine that has it already needs no load.
    if ImageStore::image(engine, image.image_id()).await?.is_some() {
        image::store::write(&layout, &image, &reference)?;
        return Ok(image);
    }
    // containerd's image store imports every blob a load names; the classic one reads no layer
    // file whose chain ID it has (moby's tarexport `Load`).
    if let (Some(base), Some(from)) = (&image.base, &spec.base_image)
        && (engine.push_facts().await?.store == crate::engine::info::ImageStore::Containerd
            || !engine_has_base(engine, base, &from.reference).await)
    {
        let reference = from.reference.clone();
        download_base(engine, &mut image, &reference).await?;
    }
    image::store::write(&layout, &image, &reference)?;
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
