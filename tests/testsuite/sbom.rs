//! The SBOM of a shipped binary (`supply_chain::sbom`): both documents for the bundled examples
//! and for fixtures with registry, git, path, dev-, build- and other-platform dependencies,
//! checked by the independent validators (`pyspdxtools`, `cyclonedx-python-lib`) and against
//! what `cargo tree` and `Cargo.lock` say on their own.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use camino::Utf8PathBuf;
use cargo_docker_release::features::CargoFeatures;
use cargo_docker_release::supply_chain::sbom::{self, BaseImage, CrateGraph, SbomInput, Subject};
use cargo_docker_release::toolchain::host_triple;
use serde_json::Value;

use crate::support::{Project, cargo_in, example_dir, project};

/// A made-up image digest (the documents only record it).
const DIGEST: &str = "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945";
const BASE_DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The subject for a fixture project's HEAD.
fn subject_of(p: &Project, repository: &str, base: Option<BaseImage>) -> Subject {
    let (revision, time) = p.head();
    Subject {
        repository: repository.to_owned(),
        digest: DIGEST.to_owned(),
        revision,
        created: chrono::DateTime::from_timestamp(time, 0)
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
        base,
        tool: "cargo-docker-release 0.1.0".to_owned(),
    }
}

/// A copy of the hello example and its crate graph.
fn hello_graph() -> (Project, CrateGraph) {
    let p = project().copy_of(example_dir("hello")).build();
    let graph = resolve(
        &p.path("Cargo.toml"),
        "hello",
        &["--locked", "--offline"],
        false,
    );
    (p, graph)
}

fn resolve(manifest: &Path, package: &str, flags: &[&str], build_deps: bool) -> CrateGraph {
    resolve_with(
        manifest,
        package,
        &CargoFeatures::default(),
        flags,
        build_deps,
    )
}

fn resolve_with(
    manifest: &Path,
    package: &str,
    features: &CargoFeatures,
    flags: &[&str],
    build_deps: bool,
) -> CrateGraph {
    let manifest = Utf8PathBuf::from_path_buf(manifest.to_path_buf()).unwrap();
    let flags: Vec<String> = flags.iter().map(|s| s.to_string()).collect();
    sbom::resolve(&SbomInput {
        manifest_path: &manifest,
        package,
        features,
        target: host_triple(),
        cargo_flags: &flags,
        include_build_deps: build_deps,
    })
    .unwrap_or_else(|e| panic!("resolve {package}: {e:?}"))
}

/// `(name, version)` → the `(name, version)`s it depends on, by `cargo tree --prefix depth`.
fn cargo_tree(
    dir: &Path,
    package: &str,
    edges: &str,
    flags: &[&str],
) -> BTreeMap<(String, String), BTreeSet<(String, String)>> {
    let mut args = vec![
        "tree",
        "-e",
        edges,
        "--target",
        host_triple(),
        "-p",
        package,
        "--prefix",
        "depth",
        "--format",
        "{p}",
    ];
    args.extend(flags);
    let out = cargo_in(dir, &args, &[]);
    out.success();
    let mut graph: BTreeMap<_, BTreeSet<_>> = BTreeMap::new();
    let mut stack: Vec<(String, String)> = Vec::new();
    for line in out.stdout.lines().filter(|l| !l.trim().is_empty()) {
        let digits = line.chars().take_while(|c| c.is_ascii_digit()).count();
        let depth: usize = line[..digits].parse().unwrap();
        let mut words = line[digits..].split_whitespace();
        let name = words.next().unwrap().to_owned();
        let version = words.next().unwrap().strip_prefix('v').unwrap().to_owned();
        // `[build-dependencies]` headings are not packages.
        if name.starts_with('[') {
            continue;
        }
        let node = (name, version);
        stack.truncate(depth);
        if let Some(parent) = stack.last() {
            graph
                .entry(parent.clone())
                .or_default()
                .insert(node.clone());
        }
        graph.entry(node.clone()).or_default();
        stack.push(node);
    }
    graph
}

/// The graph of crate names and versions `resolve` gave, in the shape of [`cargo_tree`].
fn graph_of(graph: &CrateGraph) -> BTreeMap<(String, String), BTreeSet<(String, String)>> {
    let key = |i: usize| {
        (
            graph.crates[i].name.clone(),
            graph.crates[i].version.clone(),
        )
    };
    let mut out: BTreeMap<_, BTreeSet<_>> = (0..graph.crates.len())
        .map(|i| (key(i), BTreeSet::new()))
        .collect();
    for (from, to) in &graph.edges {
        out.get_mut(&key(*from)).unwrap().insert(key(*to));
    }
    out
}

/// `(name, version)` → checksum of a `Cargo.lock`, read here on its own.
fn lock_checksums(lock: &Path) -> BTreeMap<(String, String), String> {
    let lock: toml::Table = toml::from_str(&std::fs::read_to_string(lock).unwrap()).unwrap();
    lock["package"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            Some((
                (
                    p["name"].as_str()?.to_owned(),
                    p["version"].as_str()?.to_owned(),
                ),
                p.get("checksum")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// Panics with the validator's words unless `pyspdxtools` accepts the document.
fn validate_spdx(path: &Path) {
    crate::support::sbom::assert_valid_spdx(path);
}

/// Panics with the validator's words unless cyclonedx-python-lib's strict 1.5 validator does.
fn validate_cyclonedx(path: &Path) {
    crate::support::sbom::assert_valid_cyclonedx(path);
}

/// Whether `validate` refuses the document at `path` (it panics).
fn refused(validate: fn(&Path), path: &Path) -> bool {
    std::panic::catch_unwind(|| validate(path)).is_err()
}

/// Every purl of a CycloneDX document parsed by packageurl-python (cyclonedx-python-lib's own
/// dependency): `(purl, type, name, version)`.
fn parsed_purls(cdx_path: &Path) -> Vec<(String, String, String, String)> {
    let script = r#"
import json, sys
from packageurl import PackageURL
doc = json.load(open(sys.argv[1]))
for c in [doc["metadata"]["component"]] + doc["components"]:
    p = PackageURL.from_string(c["purl"])
    print("\t".join([c["purl"], p.type, p.name, p.version or ""]))
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(cdx_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "packageurl-python (comes with cyclonedx-python-lib) cannot parse the purls:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].into(), f[1].into(), f[2].into(), f[3].into())
        })
        .collect()
}

/// Both documents, written to a temp dir, validated, checked against `expected` (from
/// `cargo tree`) and `lock`, and made twice to the same bytes. Returns them parsed.
fn check_documents(
    graph: &CrateGraph,
    subject: &Subject,
    expected: &BTreeMap<(String, String), BTreeSet<(String, String)>>,
    lock: &BTreeMap<(String, String), String>,
) -> (Value, Value) {
    assert_eq!(
        &graph_of(graph),
        expected,
        "resolve and cargo tree disagree"
    );
    let dir = tempfile::tempdir().unwrap();
    let spdx_bytes = sbom::spdx(graph, subject);
    let cdx_bytes = sbom::cyclonedx(graph, subject);
    assert_eq!(spdx_bytes, sbom::spdx(&graph.clone(), &subject.clone()));
    assert_eq!(cdx_bytes, sbom::cyclonedx(&graph.clone(), &subject.clone()));
    let spdx_path = dir.path().join("sbom.spdx.json");
    let cdx_path = dir.path().join("sbom.cdx.json");
    std::fs::write(&spdx_path, &spdx_bytes).unwrap();
    std::fs::write(&cdx_path, &cdx_bytes).unwrap();
    validate_spdx(&spdx_path);
    validate_cyclonedx(&cdx_path);
    // Each purl means what the component says: cargo crates by name and version, the image by
    // its last path part and digest.
    let purls = parsed_purls(&cdx_path);
    assert_eq!(
        purls.len(),
        graph.crates.len() + 1 + subject.base.is_some() as usize
    );
    for c in &graph.crates {
        assert!(
            purls
                .iter()
                .any(|(_, t, n, v)| t == "cargo" && *n == c.name && *v == c.version),
            "no purl for {} {}: {purls:?}",
            c.name,
            c.version
        );
    }
    assert!(purls.iter().any(|(_, t, n, v)| t == "oci"
        && *n == subject.repository.rsplit('/').next().unwrap()
        && *v == subject.digest));

    assert_eq!(
        sbom::subject_digest_spdx(&spdx_bytes).as_deref(),
        Some(DIGEST)
    );
    assert_eq!(
        sbom::subject_digest_cyclonedx(&cdx_bytes).as_deref(),
        Some(DIGEST)
    );

    let spdx: Value = serde_json::from_slice(&spdx_bytes).unwrap();
    let cdx: Value = serde_json::from_slice(&cdx_bytes).unwrap();
    assert_eq!(spdx["creationInfo"]["created"], subject.created.as_str());
    assert_eq!(cdx["metadata"]["timestamp"], subject.created.as_str());

    // Every crate cargo tree names is a package / component with its version, and nothing else.
    let packages = spdx["packages"].as_array().unwrap();
    let components = cdx["components"].as_array().unwrap();
    let spdx_crates: BTreeSet<(String, String)> = packages
        .iter()
        .filter(|p| p["primaryPackagePurpose"] != "CONTAINER")
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["versionInfo"].as_str().unwrap().into(),
            )
        })
        .collect();
    let cdx_crates: BTreeSet<(String, String)> = components
        .iter()
        .filter(|c| c["type"] != "container")
        .map(|c| {
            (
                c["name"].as_str().unwrap().into(),
                c["version"].as_str().unwrap().into(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String)> = expected.keys().cloned().collect();
    assert_eq!(spdx_crates, want);
    assert_eq!(cdx_crates, want);

    // The SPDX DEPENDS_ON relationships are cargo tree's edges.
    let by_id: BTreeMap<&str, (String, String)> = packages
        .iter()
        .map(|p| {
            (
                p["SPDXID"].as_str().unwrap(),
                (
                    p["name"].as_str().unwrap().into(),
                    p["versionInfo"].as_str().unwrap().into(),
                ),
            )
        })
        .collect();
    let mut depends: BTreeMap<(String, String), BTreeSet<(String, String)>> =
        want.iter().map(|k| (k.clone(), BTreeSet::new())).collect();
    for r in spdx["relationships"].as_array().unwrap() {
        if r["relationshipType"] == "DEPENDS_ON" {
            let from = &by_id[r["spdxElementId"].as_str().unwrap()];
            let to = &by_id[r["relatedSpdxElement"].as_str().unwrap()];
            depends.get_mut(from).unwrap().insert(to.clone());
        }
    }
    assert_eq!(&depends, expected, "SPDX relationships");
    // The CycloneDX dependencies too.
    let by_ref: BTreeMap<&str, (String, String)> = components
        .iter()
        .map(|c| {
            (
                c["bom-ref"].as_str().unwrap(),
                (
                    c["name"].as_str().unwrap().into(),
                    c["version"].as_str().unwrap().into(),
                ),
            )
        })
        .collect();
    let mut cdx_depends: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
    for d in cdx["dependencies"].as_array().unwrap() {
        let Some(from) = by_ref.get(d["ref"].as_str().unwrap()) else {
            continue;
        };
        if from.1.starts_with("sha256:") {
            continue;
        }
        let on = d["dependsOn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| by_ref[r.as_str().unwrap()].clone())
            .collect();
        cdx_depends.insert(from.clone(), on);
    }
    assert_eq!(&cdx_depends, expected, "CycloneDX dependencies");

    // Checksums are Cargo.lock's, in both documents.
    for p in packages
        .iter()
        .filter(|p| p["primaryPackagePurpose"] != "CONTAINER")
    {
        let key = (
            p["name"].as_str().unwrap().to_owned(),
            p["versionInfo"].as_str().unwrap().to_owned(),
        );
        let sum = p["checksums"][0]["checksumValue"].as_str();
        assert_eq!(
            sum,
            lock.get(&key).map(String::as_str),
            "SPDX checksum of {key:?}"
        );
    }
    for c in components.iter().filter(|c| c["type"] != "container") {
        let key = (
            c["name"].as_str().unwrap().to_owned(),
            c["version"].as_str().unwrap().to_owned(),
        );
        let sum = c["hashes"][0]["content"].as_str();
        assert_eq!(
            sum,
            lock.get(&key).map(String::as_str),
            "CycloneDX hash of {key:?}"
        );
    }

    // The image: described, contains the service, with its purl.
    let image_purl = format!(
        "pkg:oci/{}@sha256%3A{}?repository_url={}",
        subject.repository.rsplit('/').next().unwrap(),
        DIGEST.strip_prefix("sha256:").unwrap(),
        subject.repository
    );
    let image = &packages
        .iter()
        .find(|p| p["SPDXID"] == spdx["documentDescribes"][0])
        .unwrap();
    assert_eq!(
        image["externalRefs"][0]["referenceLocator"],
        image_purl.as_str()
    );
    assert_eq!(cdx["metadata"]["component"]["purl"], image_purl.as_str());
    assert_eq!(cdx["metadata"]["component"]["type"], "container");
    let root = graph.root();
    let root_id = packages
        .iter()
        .find(|p| p["primaryPackagePurpose"] == "APPLICATION")
        .unwrap()["SPDXID"]
        .clone();
    assert!(
        spdx["relationships"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["spdxElementId"] == image["SPDXID"]
                && r["relationshipType"] == "CONTAINS"
                && r["relatedSpdxElement"] == root_id),
        "the image contains the service"
    );
    let service = components
        .iter()
        .find(|c| c["type"] == "application")
        .unwrap();
    assert_eq!(service["name"], root.name.as_str());
    assert_eq!(service["version"], root.version.as_str());
    assert!(
        cdx_bytes
            .windows(subject.revision.len())
            .any(|w| w == subject.revision.as_bytes())
            && spdx_bytes
                .windows(subject.revision.len())
                .any(|w| w == subject.revision.as_bytes()),
        "both documents record the revision"
    );
    (spdx, cdx)
}

#[test]
fn hello_example_sbom_is_the_service_alone() {
    let (p, graph) = hello_graph();
    let expected = cargo_tree(p.root(), "hello", "normal", &["--locked", "--offline"]);
    let lock = lock_checksums(&p.path("Cargo.lock"));
    let subject = subject_of(
        &p,
        "localhost:5000/cargo-docker-release-example/hello",
        None,
    );
    let (spdx, cdx) = check_documents(&graph, &subject, &expected, &lock);
    assert_eq!(graph.crates.len(), 1);
    assert_eq!(graph.root().version, "0.1.0");
    let service = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hello")
        .unwrap();
    assert_eq!(service["licenseDeclared"], "MIT OR Apache-2.0");
    assert_eq!(
        service["downloadLocation"],
        format!(
            "git+https://github.com/cargo-docker-release/cargo-docker-release@{}",
            subject.revision
        )
        .as_str()
    );
    // FROM scratch: no base image anywhere.
    assert!(!spdx.to_string().contains("DESCENDANT_OF"));
    assert_eq!(cdx["components"].as_array().unwrap().len(), 1);
}

#[test]
fn workspace_member_sbom_has_its_path_dependency_and_base_image() {
    let p = project().copy_of(example_dir("workspace")).build();
    let graph = resolve(
        &p.path("Cargo.toml"),
        "orders",
        &["--locked", "--offline"],
        false,
    );
    let expected = cargo_tree(p.root(), "orders", "normal", &["--locked", "--offline"]);
    let lock = lock_checksums(&p.path("Cargo.lock"));
    let base = BaseImage {
        reference: "localhost:5000/base:1".to_owned(),
        digest: BASE_DIGEST.to_owned(),
    };
    let subject = subject_of(&p, "localhost:5000/orders", Some(base));
    let (spdx, cdx) = check_documents(&graph, &subject, &expected, &lock);
    let names: Vec<&str> = graph.crates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["common", "orders"]);
    assert!(!names.contains(&"billing"));
    let common = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "common")
        .unwrap();
    assert_eq!(common["downloadLocation"], "NOASSERTION");
    assert_eq!(common["versionInfo"], "1.4.2");
    let rel = spdx["relationships"].as_array().unwrap();
    assert!(
        rel.iter()
            .any(|r| r["spdxElementId"] == "SPDXRef-image"
                && r["relationshipType"] == "DESCENDANT_OF")
    );
    let base = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "container")
        .unwrap();
    assert_eq!(base["version"], BASE_DIGEST);
    assert_eq!(
        base["purl"],
        format!(
            "pkg:oci/base@sha256%3A{}?repository_url=localhost:5000/base",
            &BASE_DIGEST[7..]
        )
        .as_str()
    );
}

/// A service with registry crates (from the local cache: `--offline`) of every dependency kind.
const REGISTRY_SERVICE: &str = r#"[package]
name = "svc"
version = "2.0.0"
edition = "2021"
license = "MIT"

[dependencies]
itoa = "=1.0.19"
fnv = "=1.0.7"
unicode-ident = "=1.0.27"
inner = { path = "inner" }

percent-encoding = { version = "=2.3.2", optional = true }

[features]
urls = ["dep:percent-encoding"]

[target.'cfg(windows)'.dependencies]
memchr = "=2.8.3"

[dev-dependencies]
once_cell = "=1.21.4"

[build-dependencies]
autocfg = "=1.5.1"

[workspace]
"#;

const INNER: &str = r#"[package]
name = "inner"
version = "0.3.0"
edition = "2021"
license-file = "LICENSE.txt"

[dependencies]
hex = "=0.4.3"

[dev-dependencies]
percent-encoding = "=2.3.2"
"#;

fn registry_service() -> Project {
    let p = project()
        .file("Cargo.toml", REGISTRY_SERVICE)
        .file("src/main.rs", "fn main() {}\n")
        .file("build.rs", "fn main() {}\n")
        .file("inner/Cargo.toml", INNER)
        .file("inner/LICENSE.txt", "all mine\n")
        .file("inner/src/lib.rs", "")
        .build_uncommitted();
    cargo_in(p.root(), &["generate-lockfile", "--offline"], &[]).success();
    p.commit_all("Initial commit");
    p
}

#[test]
fn registry_crates_are_listed_with_lock_checksums_and_never_dev_or_other_platform_deps() {
    let p = registry_service();
    let flags = ["--locked", "--offline"];
    let graph = resolve(&p.path("Cargo.toml"), "svc", &flags, false);
    let expected = cargo_tree(p.root(), "svc", "normal", &flags);
    let lock = lock_checksums(&p.path("Cargo.lock"));
    let subject = subject_of(&p, "localhost:5000/svc", None);
    let (spdx, cdx) = check_documents(&graph, &subject, &expected, &lock);

    let names: BTreeSet<&str> = graph.crates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["fnv", "hex", "inner", "itoa", "svc", "unicode-ident"])
    );
    let spdx_text = spdx.to_string();
    let cdx_text = cdx.to_string();
    for absent in ["once_cell", "percent-encoding", "autocfg", "memchr"] {
        assert!(!spdx_text.contains(absent), "{absent} in SPDX");
        assert!(!cdx_text.contains(absent), "{absent} in CycloneDX");
    }
    let package = |name: &str| {
        spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    // fnv says `Apache-2.0 / MIT`, cargo's old style.
    assert_eq!(package("fnv")["licenseDeclared"], "Apache-2.0 OR MIT");
    assert_eq!(
        package("unicode-ident")["licenseDeclared"],
        "(MIT OR Apache-2.0) AND Unicode-3.0"
    );
    assert_eq!(package("inner")["licenseDeclared"], "NOASSERTION");
    let itoa = package("itoa");
    assert_eq!(
        itoa["downloadLocation"],
        "https://crates.io/api/v1/crates/itoa/1.0.19/download"
    );
    assert_eq!(
        itoa["externalRefs"][0]["referenceLocator"],
        "pkg:cargo/itoa@1.0.19"
    );
    assert_eq!(
        itoa["checksums"][0]["checksumValue"],
        lock[&("itoa".to_owned(), "1.0.19".to_owned())].as_str()
    );
    let component = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "fnv")
        .unwrap()
        .clone();
    assert_eq!(component["purl"], "pkg:cargo/fnv@1.0.7");
    assert_eq!(component["licenses"][0]["expression"], "Apache-2.0 OR MIT");
}

#[test]
fn build_dependencies_are_listed_only_when_asked_for() {
    let p = registry_service();
    let flags = ["--locked", "--offline"];
    let graph = resolve(&p.path("Cargo.toml"), "svc", &flags, true);
    let expected = cargo_tree(p.root(), "svc", "normal,build", &flags);
    let lock = lock_checksums(&p.path("Cargo.lock"));
    let subject = subject_of(&p, "localhost:5000/svc", None);
    check_documents(&graph, &subject, &expected, &lock);
    assert!(graph.crates.iter().any(|c| c.name == "autocfg"));
    assert!(!graph.crates.iter().any(|c| c.name == "once_cell"));
}

#[test]
fn git_dependencies_are_pinned_to_their_commit() {
    let dep = project()
        .file(
            "Cargo.toml",
            "[package]\nname = \"gitdep\"\nversion = \"0.5.0\"\nedition = \"2021\"\nlicense = \"MIT/Apache-2.0\"\n\n[workspace]\n",
        )
        .file("src/lib.rs", "")
        .build();
    let dep_commit = dep.head_sha();
    let url = format!("file://{}", dep.root().display());
    let p = project()
        .file(
            "Cargo.toml",
            format!(
                "[package]\nname = \"gsvc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngitdep = {{ git = \"{url}\", branch = \"main\" }}\n\n[workspace]\n"
            ),
        )
        .file("src/main.rs", "fn main() {}\n")
        .build_uncommitted();
    // Only a local git repository to fetch: no registry, no network.
    cargo_in(p.root(), &["generate-lockfile"], &[]).success();
    p.commit_all("Initial commit");
    let graph = resolve(&p.path("Cargo.toml"), "gsvc", &["--locked"], false);
    let expected = cargo_tree(p.root(), "gsvc", "normal", &["--locked"]);
    let lock = lock_checksums(&p.path("Cargo.lock"));
    let subject = subject_of(&p, "localhost:5000/gsvc", None);
    let (spdx, cdx) = check_documents(&graph, &subject, &expected, &lock);
    let gitdep = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "gitdep")
        .unwrap()
        .clone();
    // SPDX's download locations have no `file://`: the commit is in `sourceInfo` instead.
    assert_eq!(gitdep["downloadLocation"], "NOASSERTION");
    assert_eq!(
        gitdep["sourceInfo"],
        format!("git repository {url} at commit {dep_commit}").as_str()
    );
    assert_eq!(gitdep["licenseDeclared"], "MIT OR Apache-2.0");
    let purl = format!(
        "pkg:cargo/gitdep@0.5.0?vcs_url=git%2B{}%40{dep_commit}",
        url.replace('+', "%2B")
    );
    assert_eq!(gitdep["externalRefs"][0]["referenceLocator"], purl.as_str());
    let component = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "gitdep")
        .unwrap()
        .clone();
    assert_eq!(component["purl"], purl.as_str());
    assert!(
        component.get("hashes").is_none(),
        "a git crate has no checksum"
    );
}

#[test]
fn documents_of_different_images_differ_in_namespace_and_serial() {
    let (p, graph) = hello_graph();
    let a = subject_of(&p, "localhost:5000/hello", None);
    let mut b = a.clone();
    b.digest = BASE_DIGEST.to_owned();
    let spdx = |s: &Subject| -> Value { serde_json::from_slice(&sbom::spdx(&graph, s)).unwrap() };
    let cdx =
        |s: &Subject| -> Value { serde_json::from_slice(&sbom::cyclonedx(&graph, s)).unwrap() };
    assert_ne!(spdx(&a)["documentNamespace"], spdx(&b)["documentNamespace"]);
    assert_ne!(cdx(&a)["serialNumber"], cdx(&b)["serialNumber"]);
    assert_eq!(
        sbom::subject_digest_spdx(&sbom::spdx(&graph, &b)).as_deref(),
        Some(BASE_DIGEST)
    );
    assert_eq!(sbom::subject_digest_cyclonedx(b"{}"), None);
    assert_eq!(sbom::subject_digest_spdx(b"not json"), None);
}

#[test]
fn a_git_crate_from_a_forge_is_downloaded_from_its_commit() {
    // The graph of a real git fetch, moved to a forge URL (no network here): SPDX takes the
    // `git+https://…@<commit>` location and the validators accept both documents.
    let dep = project()
        .file(
            "Cargo.toml",
            "[package]\nname = \"gitdep\"\nversion = \"0.5.0\"\nedition = \"2021\"\n\n[workspace]\n",
        )
        .file("src/lib.rs", "")
        .build();
    let url = format!("file://{}", dep.root().display());
    let p = project()
        .file(
            "Cargo.toml",
            format!(
                "[package]\nname = \"gsvc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\ngitdep = {{ git = \"{url}\" }}\n\n[workspace]\n"
            ),
        )
        .file("src/main.rs", "fn main() {}\n")
        .build_uncommitted();
    cargo_in(p.root(), &["generate-lockfile"], &[]).success();
    p.commit_all("Initial commit");
    let mut graph = resolve(&p.path("Cargo.toml"), "gsvc", &["--locked"], false);
    let commit = dep.head_sha();
    let gitdep = graph
        .crates
        .iter_mut()
        .find(|c| c.name == "gitdep")
        .unwrap();
    assert_eq!(
        gitdep.source,
        sbom::CrateSource::Git {
            url: url.clone(),
            commit: commit.clone()
        }
    );
    gitdep.source = sbom::CrateSource::Git {
        url: "https://github.com/example/gitdep".to_owned(),
        commit: commit.clone(),
    };
    let expected = cargo_tree(p.root(), "gsvc", "normal", &["--locked"]);
    let lock = lock_checksums(&p.path("Cargo.lock"));
    let subject = subject_of(&p, "localhost:5000/gsvc", None);
    let (spdx, cdx) = check_documents(&graph, &subject, &expected, &lock);
    let location = format!("git+https://github.com/example/gitdep@{commit}");
    assert!(
        spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "gitdep" && p["downloadLocation"] == location.as_str())
    );
    assert!(cdx.to_string().contains(&format!(
        "pkg:cargo/gitdep@0.5.0?vcs_url=git%2Bhttps://github.com/example/gitdep%40{commit}"
    )));
}

#[test]
fn the_validators_reject_what_the_writers_must_avoid() {
    // The checks above can fail: an old-style cargo licence, a dangling relationship, a serial
    // number that is no UUID, a hash with its `sha256:` prefix are each refused.
    let (p, graph) = hello_graph();
    let subject = subject_of(&p, "localhost:5000/hello", None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("doc.json");
    let write = |doc: &Value| std::fs::write(&path, serde_json::to_vec(doc).unwrap()).unwrap();

    let spdx: Value = serde_json::from_slice(&sbom::spdx(&graph, &subject)).unwrap();
    write(&spdx);
    validate_spdx(&path);
    let mut bad = spdx.clone();
    for p in bad["packages"].as_array_mut().unwrap() {
        if p["name"] == "hello" {
            p["licenseDeclared"] = "MIT/Apache-2.0".into();
        }
    }
    write(&bad);
    assert!(refused(validate_spdx, &path), "old-style licence accepted");
    let mut bad = spdx.clone();
    bad["relationships"][1]["relatedSpdxElement"] = "SPDXRef-nothing".into();
    write(&bad);
    assert!(
        refused(validate_spdx, &path),
        "dangling relationship accepted"
    );

    let cdx: Value = serde_json::from_slice(&sbom::cyclonedx(&graph, &subject)).unwrap();
    write(&cdx);
    validate_cyclonedx(&path);
    let mut bad = cdx.clone();
    bad["serialNumber"] = format!("urn:uuid:{}", &DIGEST[7..]).into();
    write(&bad);
    assert!(
        refused(validate_cyclonedx, &path),
        "a digest as serial number accepted"
    );
    let mut bad = cdx.clone();
    bad["metadata"]["component"]["hashes"][0]["content"] = DIGEST.into();
    write(&bad);
    assert!(
        refused(validate_cyclonedx, &path),
        "a prefixed hash accepted"
    );
}

#[test]
fn licences_crates_declare_are_valid_spdx_or_noassertion() {
    // One crate per licence spelling seen on crates.io; pyspdxtools knows the SPDX list.
    let p = project().copy_of(example_dir("hello")).build();
    let mut graph = resolve(
        &p.path("Cargo.toml"),
        "hello",
        &["--locked", "--offline"],
        false,
    );
    let cases = [
        ("MIT/Apache-2.0", "MIT OR Apache-2.0"),
        (
            "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT",
            "Apache-2.0 WITH LLVM-exception OR Apache-2.0 OR MIT",
        ),
        ("Unlicense/MIT", "Unlicense OR MIT"),
        ("BSD-3-Clause", "BSD-3-Clause"),
        ("Zlib OR Apache-2.0 OR MIT", "Zlib OR Apache-2.0 OR MIT"),
        (
            "MIT AND (Apache-2.0 OR BSL-1.0) AND Unicode-DFS-2016",
            "MIT AND (Apache-2.0 OR BSL-1.0) AND Unicode-DFS-2016",
        ),
        ("ISC AND OpenSSL AND MIT", "ISC AND OpenSSL AND MIT"),
        ("MPL-2.0", "MPL-2.0"),
        ("LGPL-2.1-or-later", "LGPL-2.1-or-later"),
        ("GPL-2.0+", "GPL-2.0+"),
        ("CC0-1.0 OR MIT-0 OR 0BSD", "CC0-1.0 OR MIT-0 OR 0BSD"),
        ("Proprietary", "NOASSERTION"),
        ("MIT, Apache-2.0", "NOASSERTION"),
    ];
    let root = graph.root;
    for (i, (license, _)) in cases.iter().enumerate() {
        let mut c = graph.crates[root].clone();
        c.name = format!("lic{i:02}");
        c.version = "1.0.0".into();
        c.license = Some(license.to_string());
        graph.crates.push(c);
        let to = graph.crates.len() - 1;
        graph.edges.push((root, to));
    }
    let subject = subject_of(&p, "localhost:5000/hello", None);
    let spdx_bytes = sbom::spdx(&graph, &subject);
    let cdx_bytes = sbom::cyclonedx(&graph, &subject);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.spdx.json"), &spdx_bytes).unwrap();
    std::fs::write(dir.path().join("a.cdx.json"), &cdx_bytes).unwrap();
    validate_spdx(&dir.path().join("a.spdx.json"));
    validate_cyclonedx(&dir.path().join("a.cdx.json"));
    let spdx: Value = serde_json::from_slice(&spdx_bytes).unwrap();
    for (i, (license, want)) in cases.iter().enumerate() {
        let p = spdx["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == format!("lic{i:02}").as_str())
            .unwrap();
        assert_eq!(p["licenseDeclared"], *want, "{license}");
    }
}

#[test]
fn the_selected_features_decide_which_optional_crates_are_in() {
    let p = registry_service();
    let features = CargoFeatures {
        features: vec!["urls".to_owned()],
        ..CargoFeatures::default()
    };
    let flags = ["--locked", "--offline"];
    let graph = resolve_with(&p.path("Cargo.toml"), "svc", &features, &flags, false);
    let expected = cargo_tree(
        p.root(),
        "svc",
        "normal",
        &["--locked", "--offline", "--features", "urls"],
    );
    let lock = lock_checksums(&p.path("Cargo.lock"));
    let subject = subject_of(&p, "localhost:5000/svc", None);
    check_documents(&graph, &subject, &expected, &lock);
    assert!(graph.crates.iter().any(|c| c.name == "percent-encoding"));
    let without = resolve(&p.path("Cargo.toml"), "svc", &flags, false);
    assert!(!without.crates.iter().any(|c| c.name == "percent-encoding"));
}

#[test]
fn a_package_outside_the_workspace_is_a_workspace_error() {
    let p = project().copy_of(example_dir("workspace")).build();
    let manifest = Utf8PathBuf::from_path_buf(p.path("Cargo.toml")).unwrap();
    let flags = vec!["--locked".to_owned(), "--offline".to_owned()];
    let err = sbom::resolve(&SbomInput {
        manifest_path: &manifest,
        package: "payments",
        features: &CargoFeatures::default(),
        target: host_triple(),
        cargo_flags: &flags,
        include_build_deps: false,
    })
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("`payments`"), "{err}");
}

#[test]
fn two_clones_at_different_paths_give_the_same_bytes() {
    // Fixed commit times: both clones have one commit SHA. Nothing of the checkout path leaks.
    let a = project().copy_of(example_dir("workspace")).build();
    let b = project().copy_of(example_dir("workspace")).build();
    assert_ne!(a.root(), b.root());
    assert_eq!(a.head_sha(), b.head_sha());
    let docs = |p: &Project| {
        let graph = resolve(
            &p.path("Cargo.toml"),
            "billing",
            &["--locked", "--offline"],
            false,
        );
        let subject = subject_of(p, "localhost:5000/billing", None);
        (
            sbom::spdx(&graph, &subject),
            sbom::cyclonedx(&graph, &subject),
        )
    };
    let (spdx_a, cdx_a) = docs(&a);
    let (spdx_b, cdx_b) = docs(&b);
    assert_eq!(
        String::from_utf8(spdx_a.clone()).unwrap(),
        String::from_utf8(spdx_b).unwrap()
    );
    assert_eq!(
        String::from_utf8(cdx_a.clone()).unwrap(),
        String::from_utf8(cdx_b).unwrap()
    );
    let root = a.root().to_string_lossy().into_owned();
    assert!(!String::from_utf8(spdx_a).unwrap().contains(&root));
    assert!(!String::from_utf8(cdx_a).unwrap().contains(&root));
}

#[test]
fn the_tools_own_graph_matches_cargo_tree() {
    // A real graph: proc macros, build scripts, platform-specific crates (windows-sys, …).
    let root = crate::support::repo_root();
    let flags = ["--locked", "--offline"];
    let graph = resolve(
        &root.join("Cargo.toml"),
        "cargo-docker-release",
        &flags,
        false,
    );
    let expected = cargo_tree(&root, "cargo-docker-release", "normal", &flags);
    let lock = lock_checksums(&root.join("Cargo.lock"));
    let subject = subject_of_revision("localhost:5000/cargo-docker-release");
    let started = std::time::Instant::now();
    let (spdx, _) = check_documents(&graph, &subject, &expected, &lock);
    assert!(graph.crates.len() > 100, "{}", graph.crates.len());
    assert!(
        !graph.crates.iter().any(|c| c.name == "insta"),
        "a dev-dependency"
    );
    // Every registry crate has a licence SPDX accepts.
    let unknown: Vec<&Value> = spdx["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| {
            p["primaryPackagePurpose"] == "LIBRARY" && p["licenseDeclared"] == "NOASSERTION"
        })
        .collect();
    assert!(
        unknown.is_empty(),
        "licences left as NOASSERTION: {unknown:#?}"
    );
    eprintln!(
        "{} crates checked in {:?}",
        graph.crates.len(),
        started.elapsed()
    );
}

/// A subject at a fixed made-up revision (for a manifest that is not a fixture project).
fn subject_of_revision(repository: &str) -> Subject {
    Subject {
        repository: repository.to_owned(),
        digest: DIGEST.to_owned(),
        revision: "0123456789abcdef0123456789abcdef01234567".to_owned(),
        created: "2024-01-02T03:04:05Z".to_owned(),
        base: None,
        tool: "cargo-docker-release 0.1.0".to_owned(),
    }
}

#[test]
fn a_feature_only_a_dev_dependency_enables_adds_nothing_to_the_binary() {
    // The tests enable semver's `serde` feature; the binary (resolver 2) does not.
    // `cargo metadata` unifies the two, so its graph alone would list serde_core.
    let p = project()
        .file(
            "Cargo.toml",
            "[package]\nname = \"dsvc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\nsemver = \"=1.0.28\"\n\n\
             [dev-dependencies]\nsemver = { version = \"=1.0.28\", features = [\"serde\"] }\n\n\
             [workspace]\n",
        )
        .file("src/main.rs", "fn main() {}\n")
        .build_uncommitted();
    cargo_in(p.root(), &["generate-lockfile", "--offline"], &[]).success();
    p.commit_all("Initial commit");
    let flags = ["--locked", "--offline"];
    let metadata = cargo_in(
        p.root(),
        &["metadata", "--format-version", "1", "--locked", "--offline"],
        &[],
    );
    let metadata: Value = serde_json::from_str(&metadata.success().stdout).unwrap();
    let semver_node = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"].as_str().unwrap().contains("semver@"))
        .unwrap();
    assert!(
        semver_node["deps"].to_string().contains("serde_core"),
        "the fixture no longer shows cargo metadata's unification: {semver_node}"
    );

    let graph = resolve(&p.path("Cargo.toml"), "dsvc", &flags, false);
    let expected = cargo_tree(p.root(), "dsvc", "normal", &flags);
    let lock = lock_checksums(&p.path("Cargo.lock"));
    let subject = subject_of(&p, "localhost:5000/dsvc", None);
    check_documents(&graph, &subject, &expected, &lock);
    let names: Vec<&str> = graph.crates.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["dsvc", "semver"]);
}
