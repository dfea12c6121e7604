//! What scratch images are made of, without pulling: shared images built once per machine
//! (busybox, a debootstrapped Debian, a Rust builder with the host's toolchain) and static
//! binaries of fixture crates for the host's target.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use super::engine::{TEST_LABEL, docker_ok, image_exists, require_docker};
use super::{FileLock, Output, require_tool, run_ok};

/// Shared image: `FROM scratch` + static busybox in `/bin`.
pub const BUSYBOX_IMAGE: &str = "cdr-test/busybox:1";
/// Shared image: Debian bookworm minbase root filesystem, imported (no pull).
pub const BOOKWORM_IMAGE: &str = "cdr-test/bookworm-minbase:1";
/// Shared image: bookworm minbase + gcc + the host's Rust toolchain in `/usr/local/rust`.
pub const RUST_BUILDER_IMAGE: &str = "cdr-test/rust-builder:1";

/// Returns `tag`, building it with `build` first unless the engine already has it. Safe across
/// threads and parallel test processes; `build` runs at most once per machine (until the image is
/// removed).
pub fn shared_image(tag: &'static str, build: impl FnOnce(&str)) -> String {
    require_docker();
    if image_exists(tag) {
        return tag.to_owned();
    }
    let _lock = FileLock::acquire(&tag.replace(['/', ':'], "-"));
    if !image_exists(tag) {
        let start = Instant::now();
        build(tag);
        assert!(image_exists(tag), "building {tag} did not produce it");
        eprintln!("built shared test image {tag} in {:.1?}", start.elapsed());
    }
    tag.to_owned()
}

/// `cdr-test/busybox:1`: `FROM scratch`, the host's static busybox installed into `/bin` (a
/// shell, `wget`, `nc`, …), `PATH=/usr/local/bin:/bin`. Built once and shared.
pub fn busybox_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            shared_image(BUSYBOX_IMAGE, |tag| {
                // Debian's busybox-static; the dynamic `busybox` package would not run in scratch.
                let busybox = require_tool(
                    "/bin/busybox",
                    "install the static busybox with `apt-get install busybox-static`",
                );
                let ctx = tempfile::tempdir().expect("temp dir");
                fs::copy(&busybox, ctx.path().join("busybox")).expect("copy busybox");
                fs::write(
                    ctx.path().join("Dockerfile"),
                    format!(
                        "FROM scratch\n\
                         COPY busybox /bin/busybox\n\
                         RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
                         ENV PATH=/usr/local/bin:/bin\n\
                         LABEL {TEST_LABEL}\n"
                    ),
                )
                .expect("write Dockerfile");
                docker_ok(["build", "-q", "-t", tag, &ctx.path().to_string_lossy()]);
            })
        })
        .clone()
}

/// The Debian mirror of the host's apt sources (for debootstrap), e.g.
/// `http://deb.debian.org/debian`: the first `deb` source that is not a security mirror, from
/// `/etc/apt/sources.list` or `/etc/apt/sources.list.d/*.list|*.sources`.
pub fn debian_mirror() -> String {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    if let Ok(dir) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut more: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        more.sort();
        files.extend(more);
    }
    for file in files {
        let Ok(text) = fs::read_to_string(&file) else {
            continue;
        };
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        let uris: Vec<String> = if ext == "sources" {
            // deb822: stanzas with `Types:` and `URIs:`.
            text.split("\n\n")
                .filter(|stanza| {
                    stanza.lines().any(|l| {
                        l.strip_prefix("Types:")
                            .is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
                    })
                })
                .flat_map(|stanza| {
                    stanza
                        .lines()
                        .filter_map(|l| l.strip_prefix("URIs:"))
                        .flat_map(|u| u.split_whitespace().map(str::to_owned))
                        .collect::<Vec<_>>()
                })
                .collect()
        } else if file.file_name() == Some(OsStr::new("sources.list")) || ext == "list" {
            text.lines()
                .map(str::trim)
                .filter(|l| l.starts_with("deb "))
                .filter_map(|l| {
                    l.split_whitespace()
                        .skip(1)
                        .find(|w| !w.starts_with('['))
                        .map(str::to_owned)
                })
                .collect()
        } else {
            Vec::new()
        };
        if let Some(uri) = uris
            .into_iter()
            .find(|u| u.starts_with("http") && !u.contains("security"))
        {
            return uri;
        }
    }
    panic!("no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d")
}

/// `cdr-test/bookworm-minbase:1`: `debootstrap --variant=minbase --include=gcc,libc6-dev,
/// ca-certificates bookworm` from the host's mirror, imported with `docker import` (no pull).
pub fn bookworm_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            shared_image(BOOKWORM_IMAGE, |tag| {
                let debootstrap = require_tool(
                    "debootstrap",
                    "install it with `apt-get install debootstrap` (and run the tests as root)",
                );
                let dir = tempfile::tempdir().expect("temp dir");
                let rootfs = dir.path().join("rootfs");
                let mirror = debian_mirror();
                let out = Command::new(&debootstrap)
                    .args([
                        "--variant=minbase",
                        "--include=gcc,libc6-dev,ca-certificates",
                        "bookworm",
                    ])
                    .arg(&rootfs)
                    .arg(&mirror)
                    .stdin(Stdio::null())
                    .output()
                    .expect("run debootstrap");
                let out = Output::from_std(out);
                assert!(
                    out.status.success(),
                    "debootstrap bookworm from {mirror} failed (it needs root and the mirror): {out}"
                );
                // Leave no apt caches in the image.
                let _ = fs::remove_dir_all(rootfs.join("var/cache/apt/archives"));
                let mut tar = Command::new("tar")
                    .arg("-C")
                    .arg(&rootfs)
                    .args(["-cf", "-", "."])
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("run tar");
                let import = Command::new("docker")
                    .args([
                        "import",
                        "--change",
                        &format!("LABEL {TEST_LABEL}"),
                        "--change",
                        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                        "-",
                        tag,
                    ])
                    .stdin(tar.stdout.take().expect("tar stdout"))
                    .output()
                    .expect("run docker import");
                let import = Output::from_std(import);
                let tar_status = tar.wait().expect("wait for tar");
                assert!(tar_status.success(), "tar of the root filesystem failed");
                assert!(import.status.success(), "docker import failed: {import}");
            })
        })
        .clone()
}

/// `cdr-test/rust-builder:1`: the builder image for the `docker` strategy. [`bookworm_image`] plus
/// the host's Rust toolchain (`bin/` and `lib/` of `rustc --print sysroot`) in `/usr/local/rust`,
/// on `PATH`, with `CARGO_HOME=/usr/local/cargo`. Has cargo, rustc, gcc and libc6-dev (static
/// glibc too). Built once and shared.
pub fn rust_builder_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let base = bookworm_image();
            shared_image(RUST_BUILDER_IMAGE, |tag| {
                let sysroot = PathBuf::from(run_ok("rustc", &["--print", "sysroot"]));
                let ctx = tempfile::tempdir().expect("temp dir");
                let rust = ctx.path().join("rust");
                for sub in ["bin", "lib"] {
                    link_or_copy_tree(&sysroot.join(sub), &rust.join(sub))
                        .unwrap_or_else(|e| panic!("copy toolchain {sub}/: {e}"));
                }
                fs::write(
                    ctx.path().join("Dockerfile"),
                    format!(
                        "FROM {base}\n\
                         COPY rust /usr/local/rust\n\
                         ENV PATH=/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\\n    \
                         CARGO_HOME=/usr/local/cargo\n\
                         RUN [\"cargo\", \"--version\"]\n\
                         LABEL {TEST_LABEL}\n"
                    ),
                )
                .expect("write Dockerfile");
                docker_ok(["build", "-q", "-t", tag, &ctx.path().to_string_lossy()]);
            })
        })
        .clone()
}

/// Hard-links a tree (falling back to copying across file systems), keeping symlinks.
fn link_or_copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let to = dst.join(entry.file_name());
        if kind.is_dir() {
            link_or_copy_tree(&entry.path(), &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
        } else if fs::hard_link(entry.path(), &to).is_err() {
            fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// The host's target triple (`rustc -vV`, as the tool itself reads it): static builds for
/// scratch images are built for it, and so is what the builder image compiles.
pub fn host_target() -> &'static str {
    cargo_docker_release::toolchain::host_triple()
}

/// Builds binary `bin` of the crate at `crate_dir` statically (`+crt-static`, for the
/// [`host_target`], dev profile) so that it runs in `FROM scratch`, and returns its path. A crate
/// in the temp dir (a fixture) builds into its own `target/`, removed with it; any other crate
/// (e.g. a bundled example) into a directory under the system temp dir, so repeated calls and
/// parallel processes reuse the build and the source tree stays clean.
pub fn static_binary(crate_dir: impl AsRef<Path>, bin: &str) -> PathBuf {
    let crate_dir = crate_dir.as_ref();
    static_binary_in(
        crate_dir,
        bin,
        Profile::Dev,
        &target_dir_for(crate_dir, "static"),
    )
}

/// The cargo profile of a [`static_binary_in`] build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    /// `dev`: `target/<triple>/debug`.
    Dev,
    /// `release`: `target/<triple>/release` (small enough for size checks).
    Release,
}

/// [`static_binary`] with the profile and the target directory given.
pub fn static_binary_in(
    crate_dir: impl AsRef<Path>,
    bin: &str,
    profile: Profile,
    target_dir: &Path,
) -> PathBuf {
    let crate_dir = crate_dir.as_ref();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--target", host_target(), "--bin", bin]);
    if profile == Profile::Release {
        cmd.arg("--release");
    }
    let out = cmd
        .arg("--manifest-path")
        .arg(crate_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(crate_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo build");
    let out = Output::from_std(out);
    assert!(
        out.status.success(),
        "static build of {bin} in {} failed (is the target installed? `rustup target add {}`): {out}",
        crate_dir.display(),
        host_target()
    );
    let dir = match profile {
        Profile::Dev => "debug",
        Profile::Release => "release",
    };
    let path = target_dir.join(host_target()).join(dir).join(bin);
    assert!(path.is_file(), "{} was not built", path.display());
    path
}

/// Where test builds of `crate_dir` go: its own `target/` for a crate in the temp dir (a
/// fixture), otherwise `<temp>/cdr-test-target/<path>/<flavor>` so the source tree stays clean.
pub fn target_dir_for(crate_dir: &Path, flavor: &str) -> PathBuf {
    if crate_dir.starts_with(std::env::temp_dir()) {
        return crate_dir.join("target");
    }
    let key: String = crate_dir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    std::env::temp_dir()
        .join("cdr-test-target")
        .join(key)
        .join(flavor)
}

/// Runs `cargo <args>` for the crate or workspace at `crate_dir` (its own lock file, a target
/// directory from [`target_dir_for`]) with extra `env`; returns the output, whatever the status.
pub fn cargo_in(crate_dir: impl AsRef<Path>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let crate_dir = crate_dir.as_ref();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(args)
        .current_dir(crate_dir)
        .env("CARGO_TARGET_DIR", target_dir_for(crate_dir, "host"))
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Output::from_std(cmd.output().expect("run cargo"))
}
