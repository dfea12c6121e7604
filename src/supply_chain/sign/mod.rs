//! Keys and signatures cosign verifies.
