//! One small file per command that only wires its arguments to the pipeline (as cargo keeps
//! `commands/<name>.rs` over its `ops/`).

pub mod plan;
pub mod promote;
