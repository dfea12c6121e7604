//! The build context, assembled in-process as a tar archive and streamed to the engine.
//!
//! Only what the Dockerfile needs goes in: for the `host` strategy the Dockerfile and the one
//! host-built binary at `bin/<bin>`; for the `docker` strategy the context directory filtered by
//! the built-in exclusions (`target/` and `.git`, never sent; secrets, sent only when the user's
//! `.dockerignore` names them in an exception) and by the user's `.dockerignore` with Docker's
//! rules ([`dockerignore`], [`rules`]). A `COPY`/`ADD` source the context leaves out is refused
//! before the build ([`check_copy_sources`], [`sources`]). Entries are
//! sorted, owned by root, with normalized permissions and every time set to the commit time, so
//! the same commit gives the same archive byte for byte (and the engine's layer cache sees the
//! same files).
//!
//! A [`BuildContext`] is the list of entries, not their bytes: [`BuildContext::stream`] reads
//! each file only while the archive is sent, so a large context is never held in memory.

pub mod dockerignore;
pub mod rules;
pub mod sources;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use camino::{Utf8Path, Utf8PathBuf};

pub use dockerignore::DockerIgnore;
pub use rules::{Cause, ContextRules, SentByException, Verdict};
pub use sources::{ContextTree, DiskTree, Excluded, check_copy_sources, excluded_sources};

use crate::error::{Error, Result};

/// Name of the Dockerfile inside the archive.
pub const DOCKERFILE: &str = "Dockerfile";

/// Bytes of a tar block.
const BLOCK: u64 = 512;

/// A build context: what the archive holds, in archive order.
#[derive(Debug, Clone)]
pub struct BuildContext {
    entries: Arc<Vec<Entry>>,
    mtime: u64,
    /// Path of the Dockerfile inside the archive.
    pub dockerfile: String,
    /// Paths of the files in the archive (not directories), in archive order.
    pub files: Vec<String>,
    /// Files a built-in pattern would leave out that the user's exceptions send.
    pub sent_by_exception: Vec<SentByException>,
}

/// What a context holds, for `plan -v`: its file count and the files the user's exceptions send
/// although a built-in pattern would leave them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSummary {
    /// Files in the archive (the Dockerfile included).
    pub files: usize,
    /// Bytes the archive takes.
    pub bytes: u64,
    /// See [`BuildContext::sent_by_exception`].
    pub sent_by_exception: Vec<SentByException>,
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    kind: EntryKind,
}

#[derive(Debug, Clone)]
enum EntryKind {
    Dir,
    Data(Bytes),
    File {
        source: PathBuf,
        size: u64,
        executable: bool,
    },
    Symlink(PathBuf),
}

impl Entry {
    /// Bytes this entry takes in a GNU tar archive (long names take an extra entry).
    fn archived_size(&self) -> u64 {
        let padded = |n: u64| n.div_ceil(BLOCK) * BLOCK;
        let long = |name: &[u8]| {
            if name.len() > 100 {
                BLOCK + padded(name.len() as u64 + 1)
            } else {
                0
            }
        };
        let name = match &self.kind {
            EntryKind::Dir => format!("{}/", self.path),
            _ => self.path.clone(),
        };
        let mut size = BLOCK + long(name.as_bytes());
        match &self.kind {
            EntryKind::Dir => {}
            EntryKind::Data(data) => size += padded(data.len() as u64),
            EntryKind::File { size: n, .. } => size += padded(*n),
            EntryKind::Symlink(target) => {
                size += long(target.as_os_str().as_encoded_bytes());
            }
        }
        size
    }
}

impl BuildContext {
    fn new(mtime: i64, dockerfile: &str) -> Self {
        BuildContext {
            entries: Arc::new(Vec::new()),
            mtime: mtime.max(0) as u64,
            dockerfile: dockerfile.to_owned(),
            files: Vec::new(),
            sent_by_exception: Vec::new(),
        }
    }

    /// Its [`ContextSummary`].
    pub fn summary(&self) -> ContextSummary {
        ContextSummary {
            files: self.files.len(),
            bytes: self.size() as u64,
            sent_by_exception: self.sent_by_exception.clone(),
        }
    }

    fn push(&mut self, path: &str, kind: EntryKind) {
        if !matches!(kind, EntryKind::Dir | EntryKind::Symlink(_)) {
            self.files.push(path.to_owned());
        }
        Arc::make_mut(&mut self.entries).push(Entry {
            path: path.to_owned(),
            kind,
        });
    }

    fn data(&mut self, path: &str, data: impl Into<Bytes>) {
        self.push(path, EntryKind::Data(data.into()));
    }

    fn disk_file(&mut self, path: &str, source: &Path) -> Result<()> {
        let meta = std::fs::metadata(source)
            .map_err(|e| Error::io(format!("reading `{}`", source.display()), e))?;
        self.push(
            path,
            EntryKind::File {
                source: source.to_owned(),
                size: meta.len(),
                executable: is_executable(&meta),
            },
        );
        Ok(())
    }

    /// Bytes sent to the engine.
    pub fn size(&self) -> usize {
        let entries: u64 = self.entries.iter().map(Entry::archived_size).sum();
        // The archive ends with two zero blocks.
        (entries + 2 * BLOCK) as usize
    }

    /// Writes the archive to `out`, reading each file as it goes.
    pub fn write_to(&self, out: impl Write) -> Result<()> {
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        let header = |kind: tar::EntryType, mode: u32, size: u64| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(size);
            h.set_mtime(self.mtime);
            h.set_uid(0);
            h.set_gid(0);
            h
        };
        for entry in self.entries.iter() {
            let path = entry.path.as_str();
            let failed =
                |e: std::io::Error| Error::io(format!("adding `{path}` to the build context"), e);
            match &entry.kind {
                EntryKind::Dir => {
                    let mut h = header(tar::EntryType::Directory, 0o755, 0);
                    tar.append_data(&mut h, format!("{path}/"), std::io::empty())
                        .map_err(failed)?;
                }
                EntryKind::Data(data) => {
                    let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
                    tar.append_data(&mut h, path, data.as_ref())
                        .map_err(failed)?;
                }
                EntryKind::File {
                    source,
                    size,
                    executable,
                } => {
                    let file = std::fs::File::open(source)
                        .map_err(|e| Error::io(format!("reading `{}`", source.display()), e))?;
                    let mode = if *executable { 0o755 } else { 0o644 };
                    let mut h = header(tar::EntryType::Regular, mode, *size);
                    // Exactly the size announced: a file that grows while it is sent is cut, one
                    // that shrinks fails the build rather than shifting the archive.
                    let mut reader = std::io::Read::take(file, *size);
                    tar.append_data(&mut h, path, &mut reader).map_err(failed)?;
                    if reader.limit() != 0 {
                        return Err(Error::step(
                            "build",
                            format!(
                                "`{}` changed while the build context was sent",
                                source.display()
                            ),
                        ));
                    }
                }
                EntryKind::Symlink(target) => {
                    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                    tar.append_link(&mut h, path, target).map_err(failed)?;
                }
            }
        }
        tar.into_inner()
            .map_err(|e| Error::io("finishing the build context", e))?
            .flush()
            .map_err(|e| Error::io("finishing the build context", e))
    }

    /// The whole archive in memory (tests and small contexts).
    pub fn to_vec(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.size());
        self.write_to(&mut out)?;
        Ok(out)
    }

    /// The archive as a stream of chunks, produced on a blocking thread while the engine reads
    /// it: at most a few chunks are in memory at once. Must be polled inside a tokio runtime.
    pub fn stream(
        &self,
    ) -> impl futures_util::Stream<Item = std::result::Result<Bytes, std::io::Error>> + Send + 'static
    {
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        let context = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut writer = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = context.write_to(&mut writer) {
                // The engine sees a broken body; the reason goes with it.
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        });
        futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
    }
}

/// Bytes per chunk of a streamed context.
const CHUNK: usize = 256 * 1024;

/// Sends full chunks down a channel; fails when the receiver (the request) is gone.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the build request ended")
        })
    }
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_: &std::fs::Metadata) -> bool {
    false
}

/// The `host` strategy's context: the Dockerfile and the host-built binary at `bin/<bin>`.
pub fn host_context(
    dockerfile: &str,
    bin: &str,
    binary: &Utf8Path,
    mtime: i64,
) -> Result<BuildContext> {
    let mut context = BuildContext::new(mtime, DOCKERFILE);
    context.data(DOCKERFILE, dockerfile.to_owned());
    context.push("bin", EntryKind::Dir);
    let meta = std::fs::metadata(binary)
        .map_err(|e| Error::io(format!("reading the binary `{binary}`"), e))?;
    context.push(
        &format!("bin/{bin}"),
        EntryKind::File {
            source: binary.as_std_path().to_owned(),
            size: meta.len(),
            executable: true,
        },
    );
    Ok(context)
}

/// Where the user's `.dockerignore` of a context may be, in the order the builder looks: beside
/// a hand-written Dockerfile as `<Dockerfile>.dockerignore` (BuildKit's rule), then at the
/// context root.
pub fn dockerignore_candidates(
    context: &Utf8Path,
    dockerfile: Option<&Utf8Path>,
) -> Vec<Utf8PathBuf> {
    let mut candidates = Vec::new();
    if let Some(file) = dockerfile {
        candidates.push(Utf8PathBuf::from(format!("{file}.dockerignore")));
    }
    candidates.push(context.join(".dockerignore"));
    candidates
}

/// The user's `.dockerignore` for `context` (see [`dockerignore_candidates`]), parsed; a bad
/// pattern is a configuration error naming the file and line.
pub fn user_dockerignore(
    context: &Utf8Path,
    dockerfile: Option<&Utf8Path>,
) -> Result<Option<(Utf8PathBuf, DockerIgnore)>> {
    for path in dockerignore_candidates(context, dockerfile) {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(format!("reading `{path}`"), e)),
        };
        let ignore = DockerIgnore::parse(&text).map_err(|e| Error::Dockerfile {
            message: format!(
                "{path}:{}: bad pattern `{}`: {}",
                e.line, e.pattern, e.message
            ),
            help: Some("fix the line; patterns follow Docker's .dockerignore rules".into()),
        })?;
        return Ok(Some((path, ignore)));
    }
    Ok(None)
}

/// The `docker` strategy's context: `dir` filtered by the built-in `dockerignore` rules (only),
/// plus the Dockerfile. See [`service_context`] for a service's context with the user's file.
pub fn directory_context(
    dir: &Utf8Path,
    dockerignore: &str,
    dockerfile: &str,
    mtime: i64,
) -> Result<BuildContext> {
    let rules = ContextRules::new(builtin_rules(dockerignore)?, None, dir);
    context_of(dir, &rules, dockerfile, mtime)
}

/// A service's `docker`-strategy context: `dir` filtered by the built-in rules and by the user's
/// `.dockerignore` ([`user_dockerignore`]; `dockerfile_path` is a hand-written Dockerfile),
/// plus the Dockerfile text.
pub fn service_context(
    dir: &Utf8Path,
    builtin: &str,
    dockerfile_path: Option<&Utf8Path>,
    dockerfile: &str,
    mtime: i64,
) -> Result<BuildContext> {
    let rules = context_rules(dir, builtin, dockerfile_path)?;
    context_of(dir, &rules, dockerfile, mtime)
}

/// What [`service_context`] would send, without reading a file: for `plan -v`.
pub fn context_summary(
    dir: &Utf8Path,
    builtin: &str,
    dockerfile_path: Option<&Utf8Path>,
) -> Result<ContextSummary> {
    Ok(service_context(dir, builtin, dockerfile_path, "", 0)?.summary())
}

/// The rules of a service's context: the built-in patterns `builtin` and the user's
/// `.dockerignore` ([`user_dockerignore`]).
pub fn context_rules(
    dir: &Utf8Path,
    builtin: &str,
    dockerfile_path: Option<&Utf8Path>,
) -> Result<ContextRules> {
    Ok(ContextRules::new(
        builtin_rules(builtin)?,
        user_dockerignore(dir, dockerfile_path)?,
        dir,
    ))
}

fn builtin_rules(text: &str) -> Result<DockerIgnore> {
    DockerIgnore::parse(text).map_err(|e| Error::Dockerfile {
        message: format!(
            "the built-in .dockerignore has a bad pattern `{}`: {}",
            e.pattern, e.message
        ),
        help: None,
    })
}

/// Whether `dir` (inside `parent`, which holds `parent_has_manifest`) is one of cargo's target
/// directories: `target` beside a `Cargo.toml`, or a directory holding cargo's `CACHEDIR.TAG`.
pub(crate) fn is_cargo_target(name: &str, parent_has_manifest: bool, dir: &Utf8Path) -> bool {
    (name == "target" && parent_has_manifest) || dir.join("CACHEDIR.TAG").exists()
}

/// `dir` filtered by `rules` ([`rules`]: `.git` and cargo's target directories are never
/// sent). A file named `Dockerfile` at the top of `dir` is replaced by `dockerfile`.
fn context_of(
    dir: &Utf8Path,
    rules: &ContextRules,
    dockerfile: &str,
    mtime: i64,
) -> Result<BuildContext> {
    let mut context = BuildContext::new(mtime, DOCKERFILE);
    context.data(DOCKERFILE, dockerfile.to_owned());
    walk(dir, Utf8Path::new(""), rules, &mut context)?;
    Ok(context)
}

fn walk(
    root: &Utf8Path,
    rel: &Utf8Path,
    rules: &ContextRules,
    context: &mut BuildContext,
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
        if rules::fixed_exclusion(path.as_str(), kind.is_dir(), || {
            is_cargo_target(&name, has_manifest, &dir.join(&name))
        })
        .is_some()
        {
            continue;
        }
        let verdict = rules.verdict(path.as_str());
        let excluded = verdict.is_left_out();
        if kind.is_dir() {
            if excluded && !rules.may_include_under(path.as_str()) {
                continue;
            }
            if !excluded {
                context.push(path.as_str(), EntryKind::Dir);
            }
            walk(root, &path, rules, context)?;
            continue;
        }
        if excluded {
            continue;
        }
        if kind.is_symlink() {
            let target = std::fs::read_link(root.join(&path))
                .map_err(|e| Error::io(format!("reading the link `{path}`"), e))?;
            context.push(path.as_str(), EntryKind::Symlink(target));
        } else if kind.is_file() {
            context.disk_file(path.as_str(), root.join(&path).as_std_path())?;
        } else {
            continue;
        }
        if let Verdict::SentByException(sent) = verdict {
            context.sent_by_exception.push(sent);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(ctx: &BuildContext) -> Vec<String> {
        let tar = ctx.to_vec().unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
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
        )
        .unwrap();
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
        let tar = ctx.to_vec().unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 1_700_000_000);
            assert_eq!(entry.header().uid().unwrap(), 0);
        }
        let mut first = tar::Archive::new(tar.as_slice());
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
        assert_eq!(a.to_vec().unwrap(), b.to_vec().unwrap());
        assert_eq!(names(&a), ["Dockerfile", "bin/", "bin/app"]);
        assert_eq!(a.files, ["Dockerfile", "bin/app"]);
    }

    #[test]
    fn the_announced_size_is_the_streamed_size() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        let long = format!("{}/{}.txt", "d".repeat(60), "f".repeat(80));
        for (path, size) in [("a.txt", 0usize), ("b.bin", 513), (long.as_str(), 4096)] {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, vec![7u8; size]).unwrap();
        }
        std::os::unix::fs::symlink("x".repeat(150), root.join("link")).unwrap();
        let ctx = directory_context(root, "", "FROM scratch\n", 0).unwrap();
        let whole = ctx.to_vec().unwrap();
        assert_eq!(ctx.size(), whole.len());
        let streamed = tokio::runtime::Builder::new_multi_thread()
            .build()
            .unwrap()
            .block_on(async {
                use futures_util::TryStreamExt;
                ctx.stream()
                    .try_fold(Vec::new(), |mut all, chunk| async move {
                        all.extend_from_slice(&chunk);
                        Ok(all)
                    })
                    .await
            })
            .unwrap();
        assert_eq!(streamed, whole);
    }

    #[test]
    fn the_users_dockerignore_applies_on_top_of_the_built_in_rules() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        for path in [
            "Cargo.toml",
            ".env",
            "docs/a.md",
            "docs/keep.md",
            "logs/x.log",
            "logs/keep.txt",
            "deep/er/k.pem",
            "svc/Dockerfile.dockerignore",
        ] {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        std::fs::write(
            root.join(".dockerignore"),
            "docs\n!docs/keep.md\nlogs**\n!logs/keep.txt\n!.env\n",
        )
        .unwrap();
        let ctx = service_context(root, ".env\n", None, "FROM scratch\n", 0).unwrap();
        // `!.env` names the file the built-in `.env` leaves out: the user's exception wins.
        assert_eq!(
            ctx.files,
            [
                "Dockerfile",
                ".dockerignore",
                ".env",
                "Cargo.toml",
                "deep/er/k.pem",
                "docs/keep.md",
                "logs/keep.txt",
                "svc/Dockerfile.dockerignore"
            ]
        );
        assert_eq!(
            ctx.summary().sent_by_exception,
            [SentByException {
                path: ".env".into(),
                builtin: ".env".into(),
                exception: "!.env".into(),
                file: ".dockerignore".into(),
                line: 5
            }]
        );
        let summary = context_summary(root, ".env\n", None).unwrap();
        assert_eq!(summary.sent_by_exception.len(), 1);
        assert_eq!(summary.files, ctx.files.len());
        // Beside a hand-written Dockerfile, `<Dockerfile>.dockerignore` wins.
        std::fs::write(root.join("svc/Dockerfile.dockerignore"), "**.pem\n").unwrap();
        let dockerfile = root.join("svc/Dockerfile");
        let ctx = service_context(root, "", Some(&dockerfile), "FROM scratch\n", 0).unwrap();
        assert!(!ctx.files.iter().any(|f| f.ends_with(".pem")));
        assert!(ctx.files.iter().any(|f| f == "docs/a.md"));
        std::fs::write(root.join(".dockerignore"), "ok\n[oops\n").unwrap();
        let e = service_context(root, "", None, "FROM scratch\n", 0).unwrap_err();
        assert!(e.to_string().contains(".dockerignore:2"), "{e}");
    }
}
