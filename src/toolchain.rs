//! The host's Rust toolchain: its target triple, the one answer to "which target do static
//! builds and compiled tests use" (not a hard-coded architecture, so arm64 runners build arm64).

use std::sync::OnceLock;

/// The host triple of the `rustc` cargo uses (`$RUSTC`, else `rustc`), read once from
/// `rustc -vV`; when rustc cannot be asked, the triple this tool was built for on this
/// architecture (`<arch>-unknown-linux-gnu`).
pub fn host_triple() -> &'static str {
    static TRIPLE: OnceLock<String> = OnceLock::new();
    TRIPLE.get_or_init(|| {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        std::process::Command::new(rustc)
            .arg("-vV")
            .stdin(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| host_from_version(&String::from_utf8_lossy(&o.stdout)))
            .unwrap_or_else(|| format!("{}-unknown-linux-gnu", std::env::consts::ARCH))
    })
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
    fn the_host_triple_is_this_machines_architecture() {
        assert!(
            host_triple().starts_with(std::env::consts::ARCH),
            "{}",
            host_triple()
        );
    }
}
