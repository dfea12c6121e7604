//! The rustflags of every cargo run on the host (the service's binary, the container's test
//! binaries): the user's own, plus path remapping so that two checkouts of one commit at
//! different paths, with different cargo homes, build byte-identical binaries, plus
//! `+crt-static` for a static binary.
//!
//! cargo takes rustflags from exactly one source. When the user set `CARGO_ENCODED_RUSTFLAGS` or
//! `RUSTFLAGS`, ours are appended to those and given as `CARGO_ENCODED_RUSTFLAGS` (which keeps
//! flags with spaces intact); otherwise as `--config build.rustflags=[…]`, which cargo joins with
//! the `build.rustflags` of the user's config files instead of replacing them.

use camino::{Utf8Path, Utf8PathBuf};

/// Where each remapped prefix appears in the binary; later entries win (rustc applies the last
/// matching `--remap-path-prefix`), so the target directory inside the workspace is `/target`.
const CARGO_HOME_AS: &str = "/cargo";
const SYSROOT_AS: &str = "/rustc/sysroot";
const WORKSPACE_AS: &str = "/workspace";
const TARGET_AS: &str = "/target";
/// A statically linked binary (for `FROM scratch`).
const STATIC: &str = "-Ctarget-feature=+crt-static";

/// What one host build is.
#[derive(Debug, Clone, Copy)]
pub struct HostBuild<'a> {
    /// The workspace root (cargo metadata's).
    pub workspace_root: &'a Utf8Path,
    /// cargo's target directory, which build scripts' `OUT_DIR`s are in.
    pub target_dir: &'a Utf8Path,
    /// `+crt-static` for a `FROM scratch` image.
    pub static_link: bool,
}

/// How the flags reach cargo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// `CARGO_ENCODED_RUSTFLAGS` with this value (`RUSTFLAGS` removed).
    Env(String),
    /// `--config` with this value.
    Config(String),
}

impl HostBuild<'_> {
    /// The tool's own flags, with this machine's cargo home and sysroot.
    pub fn flags(&self) -> Vec<String> {
        let var = |k| std::env::var(k).ok().filter(|v: &String| !v.is_empty());
        let cargo_home = var("CARGO_HOME")
            .map(Utf8PathBuf::from)
            .or_else(|| var("HOME").map(|h| Utf8PathBuf::from(h).join(".cargo")));
        let sysroot = crate::toolchain::Rustc::get().sysroot.clone();
        self.flags_with(cargo_home.as_deref(), sysroot.as_deref())
    }

    fn flags_with(&self, cargo_home: Option<&Utf8Path>, sysroot: Option<&Utf8Path>) -> Vec<String> {
        let mut flags: Vec<String> = [
            (cargo_home, CARGO_HOME_AS),
            (sysroot, SYSROOT_AS),
            (Some(self.workspace_root), WORKSPACE_AS),
            (Some(self.target_dir), TARGET_AS),
        ]
        .into_iter()
        .filter_map(|(from, to)| from.map(|f| format!("--remap-path-prefix={f}={to}")))
        .collect();
        if self.static_link {
            flags.push(STATIC.to_owned());
        }
        flags
    }

    /// Sets the flags on a cargo `command`, as the environment of this process asks.
    pub fn apply(&self, command: &mut tokio::process::Command) {
        let env = |k| std::env::var(k).ok();
        match delivery(
            self.flags(),
            env("CARGO_ENCODED_RUSTFLAGS").as_deref(),
            env("RUSTFLAGS").as_deref(),
        ) {
            Delivery::Env(encoded) => {
                command
                    .env("CARGO_ENCODED_RUSTFLAGS", encoded)
                    .env_remove("RUSTFLAGS");
            }
            Delivery::Config(value) => {
                command.arg("--config").arg(value);
            }
        }
    }
}

/// How `ours` reach cargo given the user's `CARGO_ENCODED_RUSTFLAGS` and `RUSTFLAGS` (cargo's
/// precedence: the encoded one first; an empty one counts as unset).
pub fn delivery(ours: Vec<String>, encoded: Option<&str>, plain: Option<&str>) -> Delivery {
    let theirs: Option<Vec<String>> = match (encoded, plain) {
        (Some(e), _) if !e.is_empty() => Some(e.split('\x1f').map(str::to_owned).collect()),
        (_, Some(p)) if !p.trim().is_empty() => {
            Some(p.split_whitespace().map(str::to_owned).collect())
        }
        _ => None,
    };
    match theirs {
        Some(mut flags) => {
            // The user's own `+crt-static` is not repeated.
            let linked_static = flags.iter().any(|f| f.contains("+crt-static"));
            flags.extend(ours.into_iter().filter(|f| !(f == STATIC && linked_static)));
            Delivery::Env(flags.join("\x1f"))
        }
        None => {
            let array: toml_edit::Array = ours.iter().map(String::as_str).collect();
            Delivery::Config(format!("build.rustflags={}", array.to_string().trim()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(static_link: bool) -> HostBuild<'static> {
        HostBuild {
            workspace_root: Utf8Path::new("/home/u/orders"),
            target_dir: Utf8Path::new("/home/u/orders/target"),
            static_link,
        }
    }

    #[test]
    fn every_path_of_this_machine_is_remapped_the_target_dir_last() {
        let flags = build(true).flags_with(
            Some(Utf8Path::new("/home/u/.cargo")),
            Some(Utf8Path::new("/home/u/.rustup/toolchains/stable")),
        );
        assert_eq!(
            flags,
            [
                "--remap-path-prefix=/home/u/.cargo=/cargo",
                "--remap-path-prefix=/home/u/.rustup/toolchains/stable=/rustc/sysroot",
                "--remap-path-prefix=/home/u/orders=/workspace",
                "--remap-path-prefix=/home/u/orders/target=/target",
                "-Ctarget-feature=+crt-static",
            ]
        );
    }

    #[test]
    fn the_users_flags_are_kept_and_ours_appended() {
        let ours = build(true).flags_with(None, None);
        // No flags in the environment: a `--config` that cargo joins with the config files'.
        let Delivery::Config(value) = delivery(ours.clone(), None, Some("  ")) else {
            panic!("config expected");
        };
        assert!(
            value.starts_with("build.rustflags=[\"--remap-path-prefix=/home/u/orders=/workspace\""),
            "{value}"
        );
        let parsed: toml::Table =
            toml::from_str(&value.replacen("build.rustflags", "f", 1)).unwrap();
        assert_eq!(parsed["f"].as_array().unwrap().len(), ours.len());

        // RUSTFLAGS: split at white space, ours appended, `+crt-static` not repeated.
        let env = delivery(
            ours.clone(),
            None,
            Some("-C target-cpu=native -C target-feature=+crt-static"),
        );
        assert_eq!(
            env,
            Delivery::Env(
                [
                    "-C",
                    "target-cpu=native",
                    "-C",
                    "target-feature=+crt-static",
                    "--remap-path-prefix=/home/u/orders=/workspace",
                    "--remap-path-prefix=/home/u/orders/target=/target",
                ]
                .join("\x1f")
            )
        );

        // CARGO_ENCODED_RUSTFLAGS wins over RUSTFLAGS and keeps a flag's spaces.
        let env = delivery(
            build(false).flags_with(None, None),
            Some("-Clink-arg=-Wl,--rpath=/a b"),
            Some("-C ignored"),
        );
        assert_eq!(
            env,
            Delivery::Env(
                [
                    "-Clink-arg=-Wl,--rpath=/a b",
                    "--remap-path-prefix=/home/u/orders=/workspace",
                    "--remap-path-prefix=/home/u/orders/target=/target",
                ]
                .join("\x1f")
            )
        );
    }
}
