//! The SLSA provenance of a released image.
