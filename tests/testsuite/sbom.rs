//! sbom tests (being written).
