//! One small file per command that only wires its arguments to the pipeline (as cargo keeps
//! `commands/<name>.rs` over its `ops/`).

pub mod init;
pub mod inspect;
pub mod plan;
pub mod promote;
pub mod prune;
