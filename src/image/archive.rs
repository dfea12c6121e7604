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
