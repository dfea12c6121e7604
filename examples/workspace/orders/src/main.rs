//! The `orders` service: the shared server of [`common`] under its own name and port.

fn main() -> std::process::ExitCode {
    common::main(common::Service {
        name: env!("CARGO_PKG_NAME"),
        version: env!("CARGO_PKG_VERSION"),
        default_port: 8080,
    })
}
