//! The SPDX 2.3 JSON document: the image, the service it contains, the crates the service
//! depends on, and the base image it descends from.

use serde_json::{Value, json};

use super::{CrateGraph, Subject, digest_hex};

/// The image's SPDX identifier.
const IMAGE_ID: &str = "SPDXRef-image";
/// The base image's SPDX identifier.
const BASE_ID: &str = "SPDXRef-base-image";

/// The SPDX 2.3 JSON document of `graph` inside the image `subject`, pretty-printed with sorted
/// keys and packages: the same input gives the same bytes.
pub fn spdx(graph: &CrateGraph, subject: &Subject) -> Vec<u8> {
    let ids: Vec<String> = graph
        .ids()
        .iter()
        .map(|id| format!("SPDXRef-crate-{id}"))
        .collect();
    let mut packages = vec![json!({
        "SPDXID": IMAGE_ID,
        "name": subject.repository,
        "versionInfo": subject.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": subject.digest_hex()}],
        "externalRefs": [purl_ref(&subject.purl())],
        "sourceInfo": format!("built from git commit {}", subject.revision),
    })];
    if let Some(base) = &subject.base {
        packages.push(json!({
            "SPDXID": BASE_ID,
            "name": base.reference,
            "versionInfo": base.digest,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "CONTAINER",
            "checksums": [{"algorithm": "SHA256", "checksumValue": digest_hex(&base.digest)}],
            "externalRefs": [purl_ref(&base.purl())],
        }));
    }
    for (i, c) in graph.crates.iter().enumerate() {
        let is_root = i == graph.root;
        let mut p = json!({
            "SPDXID": ids[i],
            "name": c.name,
            "versionInfo": c.version,
            "filesAnalyzed": false,
            "primaryPackagePurpose": if is_root { "APPLICATION" } else { "LIBRARY" },
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": c.spdx_license().unwrap_or_else(|| "NOASSERTION".into()),
            "copyrightText": "NOASSERTION",
        });
        let download = if is_root {
            c.repository
                .as_ref()
                .map(|r| format!("git+{r}@{}", subject.revision))
        } else {
            c.download_location()
        };
        p["downloadLocation"] = download
            .filter(|d| is_download_location(d))
            .unwrap_or_else(|| "NOASSERTION".into())
            .into();
        let purl = if is_root {
            c.purl_at(Some(&subject.revision))
        } else {
            c.purl()
        };
        p["externalRefs"] = json!([purl_ref(&purl)]);
        if let Some(sum) = &c.checksum {
            p["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sum}]);
        }
        if let Some(d) = &c.description {
            p["summary"] = d.as_str().into();
        }
        if is_root {
            p["sourceInfo"] = format!("git commit {}", subject.revision).into();
        } else if let super::CrateSource::Git { url, commit } = &c.source {
            p["sourceInfo"] = format!("git repository {url} at commit {commit}").into();
        }
        packages.push(p);
    }
    packages.sort_by(|a, b| a["SPDXID"].as_str().cmp(&b["SPDXID"].as_str()));

    let mut relationships = vec![
        relationship("SPDXRef-DOCUMENT", "DESCRIBES", IMAGE_ID),
        relationship(IMAGE_ID, "CONTAINS", &ids[graph.root]),
    ];
    if subject.base.is_some() {
        relationships.push(relationship(IMAGE_ID, "DESCENDANT_OF", BASE_ID));
    }
    for (from, to) in &graph.edges {
        relationships.push(relationship(&ids[*from], "DEPENDS_ON", &ids[*to]));
    }

    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}@{}", subject.repository, subject.digest),
        "documentNamespace": format!(
            "https://cargo-docker-release.invalid/spdx/{}/{}",
            super::percent_encode(&subject.repository, "/:"),
            super::percent_encode(&subject.digest, ":"),
        ),
        "creationInfo": {
            "created": subject.created,
            "creators": [format!("Tool: {}", subject.tool)],
        },
        "documentDescribes": [IMAGE_ID],
        "packages": packages,
        "relationships": relationships,
    });
    let mut out = serde_json::to_vec_pretty(&doc).expect("JSON values serialize");
    out.push(b'\n');
    out
}

/// The `sha256:<hex>` of the image an SPDX document from [`spdx`] describes: the SHA256
/// checksum of the package `documentDescribes` names.
pub fn subject_digest_spdx(doc: &[u8]) -> Option<String> {
    let doc: Value = serde_json::from_slice(doc).ok()?;
    let described = doc["documentDescribes"].as_array()?;
    let [id] = described.as_slice() else {
        return None;
    };
    let package = doc["packages"]
        .as_array()?
        .iter()
        .find(|p| p["SPDXID"] == *id)?;
    let hex = package["checksums"]
        .as_array()?
        .iter()
        .find(|c| c["algorithm"] == "SHA256")?["checksumValue"]
        .as_str()?;
    is_sha256_hex(hex).then(|| format!("sha256:{hex}"))
}

/// Whether `hex` is 64 lowercase hex digits.
pub(super) fn is_sha256_hex(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether SPDX 2.3 accepts `location` as a `downloadLocation`: an optional `git+`/`hg+`/…
/// prefix, then an http, https, ssh, git, svn, sftp or ftp URL whose host is a domain name (a
/// `file://` or `localhost` URL is not one; such crates get `NOASSERTION` and a `sourceInfo`).
fn is_download_location(location: &str) -> bool {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN
        .get_or_init(|| {
            regex::Regex::new(
                r"(?i)^((git|hg|svn|bzr)\+)?(https?|ssh|git|svn|sftp|ftp)://([\w\-.!~*'()%;:&=+$,]+@)?[a-z0-9]+([\-.][a-z0-9]+)*\.[a-z]{2,5}(:[0-9]{1,5})?(/\S*)?$",
            )
            .expect("valid pattern")
        })
        .is_match(location)
}

fn purl_ref(purl: &str) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

fn relationship(from: &str, kind: &str, to: &str) -> Value {
    json!({
        "spdxElementId": from,
        "relationshipType": kind,
        "relatedSpdxElement": to,
    })
}

#[cfg(test)]
mod tests {
    use super::is_download_location as ok;

    #[test]
    fn download_locations_are_urls_spdx_accepts() {
        assert!(ok("https://crates.io/api/v1/crates/itoa/1.0.19/download"));
        assert!(ok("git+https://github.com/o/g@0123456789abcdef"));
        assert!(ok("git+ssh://git@github.com/o/g@0123"));
        assert!(!ok("git+file:///tmp/repo@0123"));
        assert!(!ok("git+http://localhost:8000/repo@0123"));
        assert!(!ok("NOASSERTION"));
    }
}
