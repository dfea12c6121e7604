//! The host's Rust toolchain as `rustc -vV` describes it: the target triple (the one answer to
//! "which target do static builds and compiled tests use", never a hard-coded architecture, so
//! arm64 runners build arm64), the release recorded in every host-built image, and the sysroot
//! that reproducible builds remap.

use std::sync::OnceLock;

use camino::Utf8PathBuf;

/// What the `rustc` cargo uses (`$RUSTC`, else `rustc`) says of itself, read once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rustc {
    /// The first line of `rustc -vV`, e.g. `rustc 1.95.0 (59807616e 2026-04-14)`.
    pub release: String,
    /// All of `rustc -vV` (release, commit, host, LLVM), as provenance records it.
    pub verbose: String,
    /// The host triple.
    pub host: String,
    /// The toolchain's sysroot (`rustc --print sysroot`), when it answers.
    pub sysroot: Option<Utf8PathBuf>,
}

impl Rustc {
    /// The toolchain cargo will use here; when rustc cannot be asked, the triple this tool was
    /// built for on this architecture (`<arch>-unknown-linux-gnu`) and an unknown release.
    pub fn get() -> &'static Rustc {
        static RUSTC: OnceLock<Rustc> = OnceLock::new();
        RUSTC.get_or_init(|| {
            let ask = |args: &[&str]| {
                let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
                std::process::Command::new(rustc)
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .output()
                    .ok()
                    .filter(|o| o.status.success())
                    .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            };
            let version = ask(&["-vV"]).unwrap_or_default();
            Rustc {
                release: version
                    .lines()
                    .next()
                    .filter(|l| l.starts_with("rustc "))
                    .unwrap_or("rustc (unknown)")
                    .to_owned(),
                verbose: version.clone(),
                host: host_from_version(&version)
                    .unwrap_or_else(|| format!("{}-unknown-linux-gnu", std::env::consts::ARCH)),
                sysroot: ask(&["--print", "sysroot"])
                    .map(|s| Utf8PathBuf::from(s.trim()))
                    .filter(|s| !s.as_str().is_empty()),
            }
        })
    }
}

/// The host triple of the toolchain ([`Rustc::host`]).
pub fn host_triple() -> &'static str {
    &Rustc::get().host
}

/// The `host:` line of `rustc -vV`.
fn host_from_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("host:"))
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_line_of_rustc_names_the_triple() {
        let text = "rustc 1.91.0 (abc 2025-01-01)\nbinary: rustc\nhost: aarch64-unknown-linux-gnu\nrelease: 1.91.0\n";
        assert_eq!(
            host_from_version(text).as_deref(),
            Some("aarch64-unknown-linux-gnu")
        );
        assert_eq!(host_from_version("rustc 1.0\n"), None);
    }

    #[test]
    fn the_toolchain_is_this_machines() {
        let rustc = Rustc::get();
        assert!(
            rustc.host.starts_with(std::env::consts::ARCH),
            "{}",
            rustc.host
        );
        assert!(rustc.release.starts_with("rustc 1."), "{}", rustc.release);
        let sysroot = rustc.sysroot.as_ref().expect("rustc prints its sysroot");
        assert!(sysroot.join("lib").is_dir(), "{sysroot}");
    }
}
