//! TEMPORARY stub of the SBOM API (replaced by the `sbom` branch).
#![allow(missing_docs, unused)]
use crate::error::Result;
use camino::Utf8Path;
pub struct SbomInput<'a> {
    pub manifest_path: &'a Utf8Path,
    pub package: &'a str,
    pub features: &'a crate::features::CargoFeatures,
    pub target: &'a str,
    pub cargo_flags: &'a [String],
    pub include_build_deps: bool,
}
pub struct CrateGraph;
pub struct Subject {
    pub repository: String,
    pub digest: String,
    pub revision: String,
    pub created: String,
    pub base: Option<BaseImage>,
    pub tool: String,
}
pub struct BaseImage {
    pub reference: String,
    pub digest: String,
}
pub fn resolve(input: &SbomInput) -> Result<CrateGraph> {
    unimplemented!()
}
pub fn spdx(graph: &CrateGraph, subject: &Subject) -> Vec<u8> {
    unimplemented!()
}
pub fn cyclonedx(graph: &CrateGraph, subject: &Subject) -> Vec<u8> {
    unimplemented!()
}
pub fn subject_digest_spdx(doc: &[u8]) -> Option<String> {
    unimplemented!()
}
pub fn subject_digest_cyclonedx(doc: &[u8]) -> Option<String> {
    unimplemented!()
}
