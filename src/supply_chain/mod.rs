//! The supply chain of a released image: what is inside it ([`sbom`]), how and from what it was
//! made ([`provenance`]), and who vouches for both ([`sign`]); [`attach`] puts them beside the image
//! in its registry the way cosign reads them, and `verify` checks them with nothing but the
//! registry and a public key.

pub mod attach;
pub mod provenance;
pub mod sbom;
pub mod sign;
