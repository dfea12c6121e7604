//! The build context, assembled in-process as a tar archive.
//!
//! Only what the Dockerfile needs goes in: for the `host` strategy the Dockerfile and the one
//! host-built binary at `bin/<bin>`; for the `docker` strategy the context directory filtered by
//! the `.dockerignore` rules, never `.git` and never cargo's `target/`. Entries are sorted, owned by
//! root, with normalized permissions and every time set to the commit time, so the same commit gives
//! the same archive byte for byte (and the engine's layer cache sees the same files).

use std::path::Path;

use camino::{Utf8Path, Utf8PathBuf};

use crate::error::{Error, Result};

/// Name of the Dockerfile inside the archive.
pub const DOCKERFILE: &str = "Dockerfile";

/// A finished build context.
#[derive(Debug, Clone)]
pub struct BuildContext {
    /// The tar archive sent to the engine.
    pub tar: Vec<u8>,
    /// Path of the Dockerfile inside the archive.
    pub dockerfile: String,
    /// Paths of the files in the archive (not directories), in archive order.
    pub files: Vec<String>,
}

impl BuildContext {
    /// Bytes sent to the engine.
    pub fn size(&self) -> usize {
        self.tar.len()
    }
}

/// Writes sorted, root-owned entries with one fixed time.
struct Archive {
    tar: tar::Builder<Vec<u8>>,
    mtime: u64,
    files: Vec<String>,
}

impl Archive {
    fn new(mtime: i64) -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.mode(tar::HeaderMode::Deterministic);
        Archive {
            tar,
            mtime: mtime.max(0) as u64,
            files: Vec::new(),
        }
    }

    fn header(&self, kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(self.mtime);
        h.set_uid(0);
        h.set_gid(0);
        h
    }

    fn dir(&mut self, path: &str) -> Result<()> {
        let mut h = self.header(tar::EntryType::Directory, 0o755, 0);
        self.tar
            .append_data(&mut h, format!("{path}/"), std::io::empty())
            .map_err(|e| Error::io(format!("adding `{path}/` to the build context"), e))
    }

    fn file(&mut self, path: &str, data: &[u8], executable: bool) -> Result<()> {
        let mode = if executable { 0o755 } else { 0o644 };
        let mut h = self.header(tar::EntryType::Regular, mode, data.len() as u64);
        self.tar
            .append_data(&mut h, path, data)
            .map_err(|e| Error::io(format!("adding `{path}` to the build context"), e))?;
        self.files.push(path.to_owned());
        Ok(())
    }

    fn disk_file(&mut self, path: &str, source: &Path) -> Result<()> {
        let data = std::fs::read(source)
            .map_err(|e| Error::io(format!("reading `{}`", source.display()), e))?;
        self.file(path, &data, is_executable(source))
    }

    fn symlink(&mut self, path: &str, target: &Path) -> Result<()> {
        let mut h = self.header(tar::EntryType::Symlink, 0o777, 0);
        self.tar
            .append_link(&mut h, path, target)
            .map_err(|e| Error::io(format!("adding the link `{path}` to the build context"), e))
    }

    fn finish(self, dockerfile: &str) -> Result<BuildContext> {
        let files = self.files;
        let tar = self
            .tar
            .into_inner()
            .map_err(|e| Error::io("finishing the build context", e))?;
        Ok(BuildContext {
            tar,
            dockerfile: dockerfile.to_owned(),
            files,
        })
    }
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_: &Path) -> bool {
    false
}

/// The `host` strategy's context: the Dockerfile and the host-built binary at `bin/<bin>`.
pub fn host_context(
    dockerfile: &str,
    bin: &str,
    binary: &Utf8Path,
    mtime: i64,
) -> Result<BuildContext> {
    let mut archive = Archive::new(mtime);
    archive.file(DOCKERFILE, dockerfile.as_bytes(), false)?;
    archive.dir("bin")?;
    let data = std::fs::read(binary)
        .map_err(|e| Error::io(format!("reading the binary `{binary}`"), e))?;
    archive.file(&format!("bin/{bin}"), &data, true)?;
    archive.finish(DOCKERFILE)
}

/// The `docker` strategy's context: `dir` filtered by `dockerignore`, plus the Dockerfile.
///
/// `.git` and cargo's target directories (`target/` beside a `Cargo.toml`, or any directory
/// holding cargo's `CACHEDIR.TAG`) are never sent, whatever the ignore file says. A file named
/// `Dockerfile` at the top of `dir` is replaced by `dockerfile`.
pub fn directory_context(
    dir: &Utf8Path,
    dockerignore: &str,
    dockerfile: &str,
    mtime: i64,
) -> Result<BuildContext> {
    let ignore = DockerIgnore::parse(dockerignore);
    let mut archive = Archive::new(mtime);
    archive.file(DOCKERFILE, dockerfile.as_bytes(), false)?;
    walk(dir, Utf8Path::new(""), &ignore, &mut archive)?;
    archive.finish(DOCKERFILE)
}

fn walk(
    root: &Utf8Path,
    rel: &Utf8Path,
    ignore: &DockerIgnore,
    archive: &mut Archive,
) -> Result<()> {
    let dir = root.join(rel);
    let mut entries: Vec<(String, std::fs::FileType)> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(format!("reading the build context `{dir}`"), e))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((name, e.file_type().ok()?))
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let has_manifest = entries.iter().any(|(n, _)| n == "Cargo.toml");
    for (name, kind) in entries {
        let path: Utf8PathBuf = rel.join(&name);
        if rel.as_str().is_empty() && name == DOCKERFILE {
            continue;
        }
        if name == ".git" {
            continue;
        }
        if kind.is_dir()
            && ((name == "target" && has_manifest) || dir.join(&name).join("CACHEDIR.TAG").exists())
        {
            continue;
        }
        let excluded = ignore.excludes(path.as_str());
        if kind.is_dir() {
            if excluded && !ignore.may_include_under(path.as_str()) {
                continue;
            }
            if !excluded {
                archive.dir(path.as_str())?;
            }
            walk(root, &path, ignore, archive)?;
        } else if excluded {
            continue;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(root.join(&path))
                .map_err(|e| Error::io(format!("reading the link `{path}`"), e))?;
            archive.symlink(path.as_str(), &target)?;
        } else if kind.is_file() {
            archive.disk_file(path.as_str(), root.join(&path).as_std_path())?;
        }
    }
    Ok(())
}

/// `.dockerignore` rules with Docker's semantics: patterns relative to the context root, a
/// pattern that matches a directory excludes everything under it, `!` re-includes, the last
/// matching rule wins.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<(bool, glob::Pattern, String)>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` (comments and blank lines skipped).
    pub fn parse(text: &str) -> Self {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negate, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let cleaned = clean(pattern);
            if cleaned.is_empty() {
                continue;
            }
            if let Ok(p) = glob::Pattern::new(&cleaned) {
                rules.push((negate, p, cleaned));
            }
        }
        DockerIgnore { rules }
    }

    /// Whether `path` (relative, `/`-separated) is left out of the context.
    pub fn excludes(&self, path: &str) -> bool {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let mut excluded = false;
        for (negate, pattern, _) in &self.rules {
            // A pattern matching a parent directory matches everything under it.
            let matched = std::iter::once(path)
                .chain(parents(path))
                .any(|p| pattern.matches_with(p, options));
            if matched {
                excluded = !negate;
            }
        }
        excluded
    }

    /// Whether some `!` rule could re-include a path under the excluded directory `dir`.
    fn may_include_under(&self, dir: &str) -> bool {
        self.rules.iter().any(|(negate, _, text)| {
            *negate && (text.starts_with(&format!("{dir}/")) || text.starts_with("**"))
        })
    }
}

/// Docker's `filepath.Clean` of a pattern, with the leading `/` dropped.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// `a/b/c` -> `a/b`, `a`.
fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.char_indices()
        .rev()
        .filter(|(_, c)| *c == '/')
        .map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ctx: &BuildContext) -> Vec<String> {
        let mut archive = tar::Archive::new(ctx.tar.as_slice());
        archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect()
    }

    #[test]
    fn dockerignore_follows_dockers_rules() {
        let ignore = DockerIgnore::parse(
            "# comment\n/target\n*.pem\n**/*.key\nsecrets/\n!secrets/public.txt\ndocs\n",
        );
        assert!(ignore.excludes("target"));
        assert!(ignore.excludes("target/release/app"));
        assert!(ignore.excludes("server.pem"));
        assert!(
            !ignore.excludes("certs/server.pem"),
            "`*` does not cross `/`"
        );
        assert!(ignore.excludes("deep/er/id.key"));
        assert!(ignore.excludes("secrets/token"));
        assert!(!ignore.excludes("secrets/public.txt"));
        assert!(ignore.excludes("docs/index.md"));
        assert!(!ignore.excludes("src/main.rs"));
        assert!(ignore.may_include_under("secrets"));
        assert!(!ignore.may_include_under("docs"));
    }

    #[test]
    fn directory_context_never_sends_git_or_target_and_respects_dockerignore() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        for (path, text) in [
            ("Cargo.toml", "[package]"),
            ("src/main.rs", "fn main() {}"),
            (".git/HEAD", "ref"),
            ("target/debug/app", "bin"),
            ("sub/target/CACHEDIR.TAG", "tag"),
            ("sub/target/x", "x"),
            (".env", "SECRET=1"),
            ("Dockerfile", "FROM old"),
            ("notes/keep.md", "k"),
            ("notes/drop.md", "d"),
        ] {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let ctx = directory_context(
            root,
            ".env\nnotes/drop.md\n",
            "FROM scratch\n",
            1_700_000_000,
        )
        .unwrap();
        assert_eq!(
            names(&ctx),
            [
                "Dockerfile",
                "Cargo.toml",
                "notes/",
                "notes/keep.md",
                "src/",
                "src/main.rs",
                "sub/"
            ]
        );
        let mut archive = tar::Archive::new(ctx.tar.as_slice());
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 1_700_000_000);
            assert_eq!(entry.header().uid().unwrap(), 0);
        }
        let mut first = tar::Archive::new(ctx.tar.as_slice());
        let mut dockerfile = String::new();
        std::io::Read::read_to_string(
            &mut first.entries().unwrap().next().unwrap().unwrap(),
            &mut dockerfile,
        )
        .unwrap();
        assert_eq!(dockerfile, "FROM scratch\n");
    }

    #[test]
    fn the_same_inputs_give_the_same_archive() {
        let dir = tempfile::tempdir().unwrap();
        let bin = Utf8Path::from_path(dir.path()).unwrap().join("app");
        std::fs::write(&bin, b"\x7fELF...").unwrap();
        let a = host_context("FROM scratch\n", "app", &bin, 1_600_000_000).unwrap();
        // A later mtime on disk changes nothing.
        std::fs::write(&bin, b"\x7fELF...").unwrap();
        let b = host_context("FROM scratch\n", "app", &bin, 1_600_000_000).unwrap();
        assert_eq!(a.tar, b.tar);
        assert_eq!(names(&a), ["Dockerfile", "bin/", "bin/app"]);
        assert_eq!(a.files, ["Dockerfile", "bin/app"]);
    }
}
