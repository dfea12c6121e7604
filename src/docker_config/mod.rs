//! What the docker CLI configures and the tool reads the same way: registry credentials
//! (`config.json` `auths`, `credsStore`, `credHelpers`), the current context, and a registry's
//! certificates in `/etc/docker/certs.d`.

pub mod certs;
pub mod context;
pub mod credentials;
pub mod host;
