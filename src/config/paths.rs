//! Paths from the manifest (`dockerfile`, `template`, `context`), resolved inside the repository,
//! and the one bounded way such a file is read.
//!
//! A path is joined to the package directory, canonicalized (so `..` and symlinks are resolved)
//! and must stay inside the repository that holds the workspace (its git top level, or the
//! workspace root when there is none). Files must be regular files of at most [`MAX_FILE_SIZE`]
//! bytes: no FIFO that blocks, no `/dev/zero`, no `/proc`. [`read_bounded`] checks the same again
//! on the opened file, without blocking on a FIFO swapped in since.

use std::io::Read;

use camino::{Utf8Path, Utf8PathBuf};

/// Largest Dockerfile or template read (a real one is a few KiB).
pub const MAX_FILE_SIZE: u64 = 1 << 20;

/// What a path must name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    /// A regular file of at most [`MAX_FILE_SIZE`] bytes.
    File,
    /// A directory.
    Dir,
}

/// The directory no path may leave: the git top level above `workspace_root`, or the root itself.
pub fn boundary(workspace_root: &Utf8Path) -> std::io::Result<Utf8PathBuf> {
    let root = canonical(workspace_root)?;
    Ok(root
        .ancestors()
        .find(|dir| dir.join(".git").exists())
        .unwrap_or(&root)
        .to_owned())
}

fn canonical(path: &Utf8Path) -> std::io::Result<Utf8PathBuf> {
    let c = std::fs::canonicalize(path)?;
    Utf8PathBuf::from_path_buf(c)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "the path is not UTF-8"))
}

/// Resolves `value` (relative to `base_dir`) to an existing path of `kind` inside `boundary`.
/// The answer is expressed under `workspace_root` as cargo spells it when it is below it.
pub fn resolve_inside(
    value: &str,
    base_dir: &Utf8Path,
    workspace_root: &Utf8Path,
    kind: PathKind,
) -> std::result::Result<Utf8PathBuf, String> {
    if value.contains('\0') {
        return Err("it contains a NUL character".into());
    }
    let joined = base_dir.join(value);
    let boundary = boundary(workspace_root)
        .map_err(|e| format!("the workspace root `{workspace_root}` cannot be read: {e}"))?;
    let resolved = match canonical(&joined) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("`{}` does not exist", shown(&joined)));
        }
        Err(e) => return Err(format!("`{}` cannot be read: {e}", shown(&joined))),
    };
    if !resolved.starts_with(&boundary) {
        let via_link = if lexical(&joined).starts_with(&boundary) {
            " (through a symbolic link)"
        } else {
            ""
        };
        return Err(format!(
            "`{}` is outside the repository `{boundary}`{via_link}",
            shown(&resolved)
        ));
    }
    let meta = std::fs::metadata(&resolved)
        .map_err(|e| format!("`{}` cannot be read: {e}", shown(&resolved)))?;
    match kind {
        PathKind::File if meta.is_dir() => {
            return Err(format!("`{}` is a directory, not a file", shown(&resolved)));
        }
        PathKind::File if !meta.is_file() => {
            return Err(format!(
                "`{}` is not a regular file (a FIFO, socket or device)",
                shown(&resolved)
            ));
        }
        PathKind::File if meta.len() > MAX_FILE_SIZE => {
            return Err(format!(
                "`{}` is {} bytes; the limit is {MAX_FILE_SIZE}",
                shown(&resolved),
                meta.len()
            ));
        }
        PathKind::Dir if !meta.is_dir() => {
            return Err(format!("`{}` is not a directory", shown(&resolved)));
        }
        _ => {}
    }
    if let Ok(canonical_root) = canonical(workspace_root)
        && let Ok(rel) = resolved.strip_prefix(&canonical_root)
    {
        return Ok(if rel.as_str().is_empty() {
            workspace_root.to_owned()
        } else {
            workspace_root.join(rel)
        });
    }
    Ok(resolved)
}

/// `path` with `.` and `..` applied to its text, no symlink followed.
fn lexical(path: &Utf8Path) -> Utf8PathBuf {
    let mut out = Utf8PathBuf::new();
    for c in path.components() {
        match c {
            camino::Utf8Component::ParentDir => {
                out.pop();
            }
            camino::Utf8Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn shown(path: &Utf8Path) -> String {
    crate::error::printable(path.as_str(), 120)
}

/// Reads a UTF-8 text file of at most `cap` bytes. The file is opened without blocking (a FIFO
/// does not hang the tool) and must be a regular file.
pub fn read_bounded(path: &Utf8Path, cap: u64) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    let invalid = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, m);
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    let mut bytes = Vec::new();
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(invalid(format!("larger than {cap} bytes")));
    }
    String::from_utf8(bytes).map_err(|_| invalid("not UTF-8 text".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (tempfile::TempDir, Utf8PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8PathBuf::from_path_buf(dir.path().join("repo")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::create_dir_all(root.join("svc")).unwrap();
        std::fs::write(root.join("svc/Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(dir.path().join("secret"), "x").unwrap();
        (dir, root)
    }

    #[test]
    fn paths_stay_in_the_repository() {
        let (_dir, root) = tree();
        let svc = root.join("svc");
        let file = PathKind::File;
        assert_eq!(
            resolve_inside("Dockerfile", &svc, &root, file).unwrap(),
            root.join("svc/Dockerfile")
        );
        assert_eq!(
            resolve_inside("..", &svc, &root, PathKind::Dir).unwrap(),
            root
        );
        std::os::unix::fs::symlink("../../secret", svc.join("link")).unwrap();
        for (bad, why) in [
            ("../../secret", "outside"),
            ("/etc/passwd", "outside"),
            ("/proc/self/environ", "outside"),
            ("link", "symbolic link"),
            ("missing", "does not exist"),
            (".", "directory"),
        ] {
            let err = resolve_inside(bad, &svc, &root, file).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn fifos_and_huge_files_are_refused_without_blocking() {
        let (_dir, root) = tree();
        let fifo = root.join("svc/fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let err = resolve_inside("fifo", &root.join("svc"), &root, PathKind::File).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(read_bounded(&fifo, MAX_FILE_SIZE).is_err());
        assert!(read_bounded(Utf8Path::new("/dev/zero"), MAX_FILE_SIZE).is_err());
        let big = root.join("svc/big");
        std::fs::write(&big, vec![b'a'; MAX_FILE_SIZE as usize + 1]).unwrap();
        let err = resolve_inside("big", &root.join("svc"), &root, PathKind::File).unwrap_err();
        assert!(err.contains("limit"), "{err}");
        assert!(read_bounded(&big, MAX_FILE_SIZE).is_err());
    }
}
