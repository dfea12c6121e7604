//! The CycloneDX 1.5 JSON BOM: the image as the BOM's subject, the service, its crates and the
//! base image as components, and the dependency graph between them.

use serde_json::{Value, json};

use super::spdx::is_sha256_hex;
use super::{CrateGraph, Subject, digest_hex};

/// The base image's `bom-ref`.
const BASE_REF: &str = "base-image";

/// The CycloneDX 1.5 JSON BOM of `graph` inside the image `subject`, pretty-printed with sorted
/// keys and components: the same input gives the same bytes.
pub fn cyclonedx(graph: &CrateGraph, subject: &Subject) -> Vec<u8> {
    let refs: Vec<String> = graph.ids().iter().map(|id| format!("crate-{id}")).collect();
    let image_ref = subject.purl();
    let (tool_name, tool_version) = subject
        .tool
        .rsplit_once(' ')
        .unwrap_or((subject.tool.as_str(), ""));
    let mut tool = json!({"type": "application", "name": tool_name});
    if !tool_version.is_empty() {
        tool["version"] = tool_version.into();
    }

    let mut components = Vec::new();
    for (i, c) in graph.crates.iter().enumerate() {
        let is_root = i == graph.root;
        let mut component = json!({
            "bom-ref": refs[i],
            "type": if is_root { "application" } else { "library" },
            "name": c.name,
            "version": c.version,
            "purl": if is_root { c.purl_at(Some(&subject.revision)) } else { c.purl() },
        });
        if let Some(sum) = &c.checksum {
            component["hashes"] = json!([{"alg": "SHA-256", "content": sum}]);
        }
        match (c.spdx_license(), &c.license) {
            (Some(expression), _) => {
                component["licenses"] = json!([{"expression": expression}]);
            }
            (None, Some(raw)) => {
                component["licenses"] = json!([{"license": {"name": raw}}]);
            }
            (None, None) if c.license_file => {
                component["licenses"] = json!([{"license": {"name": "see license-file"}}]);
            }
            (None, None) => {}
        }
        if let Some(d) = &c.description {
            component["description"] = d.as_str().into();
        }
        let mut references = Vec::new();
        match &c.source {
            super::CrateSource::Git { url, commit } => {
                references.push(json!({"type": "vcs", "url": format!("git+{url}@{commit}")}));
            }
            super::CrateSource::Registry { index } => {
                if let Some(download) = c.download_location() {
                    references.push(json!({"type": "distribution", "url": download}));
                }
                if !c.source.is_crates_io() {
                    references.push(
                        json!({"type": "other", "url": index, "comment": "cargo registry index"}),
                    );
                }
            }
            super::CrateSource::Path => {}
        }
        if let (true, Some(repo)) = (
            is_root || c.source == super::CrateSource::Path,
            &c.repository,
        ) {
            references.push(json!({"type": "vcs", "url": repo}));
        }
        if is_root {
            component["properties"] = json!([
                {"name": "cargo-docker-release:revision", "value": subject.revision},
            ]);
        }
        if !references.is_empty() {
            component["externalReferences"] = references.into();
        }
        components.push(component);
    }
    if let Some(base) = &subject.base {
        components.push(json!({
            "bom-ref": BASE_REF,
            "type": "container",
            "name": base.reference,
            "version": base.digest,
            "purl": base.purl(),
            "hashes": [{"alg": "SHA-256", "content": digest_hex(&base.digest)}],
        }));
    }
    components.sort_by(|a, b| a["bom-ref"].as_str().cmp(&b["bom-ref"].as_str()));

    let mut image_deps = vec![refs[graph.root].clone()];
    if subject.base.is_some() {
        image_deps.push(BASE_REF.to_owned());
    }
    let mut dependencies = vec![json!({"ref": image_ref, "dependsOn": image_deps})];
    for (i, r) in refs.iter().enumerate() {
        let on: Vec<&str> = graph.dependencies_of(i).map(|d| refs[d].as_str()).collect();
        dependencies.push(json!({"ref": r, "dependsOn": on}));
    }
    if subject.base.is_some() {
        dependencies.push(json!({"ref": BASE_REF, "dependsOn": []}));
    }
    dependencies.sort_by(|a, b| a["ref"].as_str().cmp(&b["ref"].as_str()));

    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": serial_number(&subject.digest),
        "version": 1,
        "metadata": {
            "timestamp": subject.created,
            "tools": {"components": [tool]},
            "component": {
                "bom-ref": image_ref,
                "type": "container",
                "name": subject.repository,
                "version": subject.digest,
                "purl": image_ref,
                "hashes": [{"alg": "SHA-256", "content": subject.digest_hex()}],
                "properties": [
                    {"name": "cargo-docker-release:revision", "value": subject.revision},
                ],
            },
        },
        "components": components,
        "dependencies": dependencies,
    });
    let mut out = serde_json::to_vec_pretty(&doc).expect("JSON values serialize");
    out.push(b'\n');
    out
}

/// `urn:uuid:` made from the SHA-256 of `digest`, shaped as a version-5 UUID (the schema wants
/// version 1–5 and the RFC 4122 variant), so one image always has one serial number.
fn serial_number(digest: &str) -> String {
    let hash = ring::digest::digest(&ring::digest::SHA256, digest.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The `sha256:<hex>` of the image a BOM from [`cyclonedx`] describes: the SHA-256 hash of
/// `metadata.component`, which must agree with its version when that is a digest.
pub fn subject_digest_cyclonedx(doc: &[u8]) -> Option<String> {
    let doc: Value = serde_json::from_slice(doc).ok()?;
    let component = &doc["metadata"]["component"];
    let hex = component["hashes"]
        .as_array()?
        .iter()
        .find(|h| h["alg"] == "SHA-256")?["content"]
        .as_str()?;
    if !is_sha256_hex(hex) {
        return None;
    }
    let digest = format!("sha256:{hex}");
    match component["version"].as_str() {
        Some(v) if v.starts_with("sha256:") && v != digest => None,
        _ => Some(digest),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serial_number_is_a_uuid_of_the_digest() {
        let a = serial_number("sha256:00");
        assert_eq!(a, serial_number("sha256:00"));
        assert_ne!(a, serial_number("sha256:01"));
        let re = regex::Regex::new(
            "^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
        )
        .unwrap();
        assert!(re.is_match(&a), "{a}");
    }
}
