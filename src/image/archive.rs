//! The archive `POST /images/load` takes (the `docker save` format, which every engine version
//! loads): the config as `<hex>.json`, each layer as `<diff-hex>/layer.tar` (gzip is accepted,
//! the engine decompresses it and checks its diff ID), and a `manifest.json` naming them. No
//! tags: the pipeline tags the image only after its tests. A base layer whose blob is not at
//! hand is named but not included: the engine has it (moby's load reads no layer file whose
//! chain ID its layer store already holds), which the caller checked.

use super::Assembled;

/// The load archive of `image`.
pub fn load_archive(image: &Assembled) -> std::io::Result<Vec<u8>> {
    let hex = |d: &str| d.trim_start_matches("sha256:").to_owned();
    let config_name = format!("{}.json", hex(image.image_id()));
    let base = image.base.iter().flat_map(|b| &b.layers);
    let base_names: Vec<String> = base
        .clone()
        .map(|l| format!("{}/layer.tar", hex(&l.diff_id)))
        .collect();
    let layer_names: Vec<String> = image
        .layers
        .iter()
        .map(|l| format!("{}/layer.tar", hex(&l.diff_id)))
        .collect();
    let all_names: Vec<&String> = base_names.iter().chain(&layer_names).collect();
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": null,
        "Layers": all_names,
    }]);
    let manifest = serde_json::to_vec(&manifest).expect("json");
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| {
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        tar.append_data(&mut header, name, data)
    };
    add(&config_name, &image.config.data)?;
    for (name, layer) in base_names.iter().zip(base) {
        if let Some(data) = image.base_blobs.get(&layer.descriptor.digest) {
            add(name, data)?;
        }
    }
    for (name, layer) in layer_names.iter().zip(&image.layers) {
        add(name, &layer.blob.data)?;
    }
    add("manifest.json", &manifest)?;
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::image::base::{BaseLayer, BaseSource};
    use crate::image::oci::Descriptor;
    use crate::image::{Blob, Layer};

    fn entries(archive: &[u8]) -> Vec<String> {
        let mut tar = tar::Archive::new(archive);
        tar.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn a_base_layer_is_named_always_and_included_only_when_at_hand() {
        let base_layer = |n: u8| BaseLayer {
            diff_id: format!("sha256:b{n}"),
            descriptor: Descriptor {
                media_type: crate::image::LAYER_MEDIA_TYPE.into(),
                digest: format!("sha256:blob{n}"),
                size: 1,
                annotations: Default::default(),
            },
        };
        let mut image = Assembled {
            config: Blob::new(crate::image::CONFIG_MEDIA_TYPE, b"{}".to_vec()),
            layers: vec![Layer {
                diff_id: "sha256:ours".into(),
                blob: Blob::new(crate::image::LAYER_MEDIA_TYPE, b"x".to_vec()),
            }],
            manifest: Blob::new(crate::image::MANIFEST_MEDIA_TYPE, b"{}".to_vec()),
            base: Some(BaseSource {
                host: "r".into(),
                repository: "b".into(),
                config_digest: "sha256:c".into(),
                manifest_digest: "sha256:m".into(),
                layers: vec![base_layer(1), base_layer(2)],
            }),
            base_blobs: BTreeMap::new(),
        };
        let archive = load_archive(&image).unwrap();
        let names = entries(&archive);
        assert_eq!(names.len(), 3, "config, our layer, manifest: {names:?}");
        let mut tar = tar::Archive::new(archive.as_slice());
        let manifest = tar
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().ends_with("manifest.json"))
            .map(|mut e| {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut e, &mut s).unwrap();
                s
            })
            .unwrap();
        assert!(
            manifest.contains(r#""Layers":["b1/layer.tar","b2/layer.tar","ours/layer.tar"]"#),
            "{manifest}"
        );
        image
            .base_blobs
            .insert("sha256:blob1".into(), b"gz".to_vec());
        let names = entries(&load_archive(&image).unwrap());
        assert!(names.contains(&"b1/layer.tar".to_owned()), "{names:?}");
        assert!(!names.contains(&"b2/layer.tar".to_owned()), "{names:?}");
    }
}
