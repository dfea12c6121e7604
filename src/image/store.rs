//! Where an assembled image is kept between the build and the push: an OCI image layout
//! (`oci-layout`, `index.json`, `blobs/sha256/…`) per service under
//! `<target>/docker-release/<package>/image/`, holding the last image assembled for it. Tools
//! that read OCI layouts read it (`skopeo copy oci:…/image docker://…`); a later `--push` of a
//! reused image pushes these exact bytes. An image on a non-scratch base also has `base.json`
//! (the base's registry, repository and layers: what the push mounts from) and those of the
//! base's blobs that were downloaded.

use std::collections::BTreeMap;

use camino::{Utf8Path, Utf8PathBuf};

use super::base::BaseSource;

use super::layer::Layer;
use super::{Assembled, Blob, CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, oci};
use crate::error::{Error, Result};

/// The layout of `package`'s image under `target_dir`.
pub fn layout_dir(target_dir: &Utf8Path, package: &str) -> Utf8PathBuf {
    target_dir
        .join("docker-release")
        .join(package)
        .join("image")
}

fn blob_path(dir: &Utf8Path, digest: &str) -> Utf8PathBuf {
    dir.join("blobs")
        .join("sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Writes `image` as the layout at `dir`, replacing what was there; the `index.json` names it
/// `reference` (`org.opencontainers.image.ref.name`).
pub fn write(dir: &Utf8Path, image: &Assembled, reference: &str) -> Result<()> {
    let io = |what: &str, e| Error::io(format!("{what} the image layout `{dir}`"), e);
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).map_err(|e| io("creating", e))?;
    let mut keep = vec![image.config.digest.clone(), image.manifest.digest.clone()];
    let all = [&image.config, &image.manifest]
        .into_iter()
        .chain(image.layers.iter().map(|l| &l.blob));
    let all = all
        .map(|b| (&b.digest, b.data.as_slice()))
        .chain(image.base_blobs.iter().map(|(d, b)| (d, b.as_slice())));
    for (digest, data) in all {
        keep.push(digest.clone());
        let path = blob_path(dir, digest);
        if !path.exists() {
            // Written beside, then renamed: a reader never sees half a blob.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, data)
                .and_then(|_| std::fs::rename(&partial, &path))
                .map_err(|e| io("writing", e))?;
        }
    }
    let base_json = dir.join("base.json");
    match &image.base {
        Some(base) => std::fs::write(&base_json, serde_json::to_vec(base).expect("json"))
            .map_err(|e| io("writing", e))?,
        None => {
            let _ = std::fs::remove_file(&base_json);
        }
    }
    let mut descriptor = image.manifest.descriptor();
    descriptor.annotations.insert(
        "org.opencontainers.image.ref.name".into(),
        reference.to_owned(),
    );
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": crate::registry::OCI_INDEX,
        "manifests": [descriptor],
    });
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .and_then(|_| std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?))
        .map_err(|e| io("writing", e))?;
    // The blobs of earlier images go: the layout holds one image.
    if let Ok(entries) = std::fs::read_dir(&blobs) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !keep.iter().any(|d| d.ends_with(&name)) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}

/// The image with ID `image_id` (its config digest, or its manifest digest for an engine with
/// containerd's image store) when the layout at `dir` holds it, every blob checked
/// against its digest; `None` otherwise (another image, no layout, a damaged blob).
pub fn read(dir: &Utf8Path, image_id: &str) -> Option<Assembled> {
    let blob = |digest: &str, media_type: &str| -> Option<Blob> {
        let data = std::fs::read(blob_path(dir, digest)).ok()?;
        let blob = Blob::new(media_type, data);
        (blob.digest == digest).then_some(blob)
    };
    #[derive(serde::Deserialize)]
    struct Index {
        manifests: Vec<oci::Descriptor>,
    }
    let index: Index = serde_json::from_slice(&std::fs::read(dir.join("index.json")).ok()?).ok()?;
    let descriptor = index.manifests.first()?;
    let manifest = blob(&descriptor.digest, MANIFEST_MEDIA_TYPE)?;
    let parsed: oci::Manifest = serde_json::from_slice(&manifest.data).ok()?;
    if parsed.config.digest != image_id && descriptor.digest != image_id {
        return None;
    }
    let config = blob(&parsed.config.digest, CONFIG_MEDIA_TYPE)?;
    let diff_ids = serde_json::from_slice::<oci::ImageConfig>(&config.data)
        .ok()?
        .rootfs
        .diff_ids;
    let base: Option<BaseSource> = match std::fs::read(dir.join("base.json")) {
        Ok(bytes) => Some(serde_json::from_slice(&bytes).ok()?),
        Err(_) => None,
    };
    let below = base.as_ref().map_or(0, |b| b.layers.len());
    let mut base_blobs = BTreeMap::new();
    for layer in base.iter().flat_map(|b| &b.layers) {
        let digest = &layer.descriptor.digest;
        if let Some(blob) = blob(digest, &layer.descriptor.media_type) {
            base_blobs.insert(digest.clone(), blob.data);
        }
    }
    let layers = parsed
        .layers
        .iter()
        .skip(below)
        .zip(diff_ids.into_iter().skip(below))
        .map(|(d, diff_id)| {
            Some(Layer {
                diff_id,
                blob: blob(&d.digest, &d.media_type)?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Assembled {
        config,
        layers,
        manifest,
        base,
        base_blobs,
    })
}
