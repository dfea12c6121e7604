//! Dockerfiles: embedded templates rendered strictly, escaping, drift check and lint.
