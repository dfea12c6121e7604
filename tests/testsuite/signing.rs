//! signing tests (being written).
