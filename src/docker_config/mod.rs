//! What the docker CLI configures and the tool reads the same way: registry credentials
//! (`config.json` `auths`, `credsStore`, `credHelpers`) and the current context.

pub mod context;
pub mod credentials;
pub mod host;
