//! One file per subcommand: its clap arguments and one `run` that wires them to the pipeline and
//! the report (as cargo keeps `commands/<name>.rs` over its `ops/`). [`crate::cli`] dispatches;
//! [`selection`] holds the flags and loading every command shares.

pub mod dockerfile;
pub mod init;
pub mod inspect;
pub mod lint;
pub mod plan;
pub mod promote;
pub mod prune;
pub mod release;
pub mod selection;
pub mod verify;

pub use selection::GlobalArgs;

use crate::error::{Error, Result};

/// Runs the async part of a command on a runtime of its own.
fn block_on<F: std::future::Future<Output = Result<()>>>(future: F) -> Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?
        .block_on(future)
}
