//! Fixture projects: files in a fresh git repository (branch `main`) in a temp dir, built with
//! [`project`] as cargo's testsuite builds its projects, and the one "stage everything and commit"
//! helper ([`commit_all`]).
//!
//! ```ignore
//! let p = project().file("Cargo.toml", MANIFEST).file("src/main.rs", "fn main() {}\n").build();
//! p.write("src/main.rs", "fn main() { println!(); }\n");
//! let sha = p.commit_all("change");
//! let copy = project().copy_of(example_dir("hello")).build(); // examples/hello, committed
//! ```

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use tempfile::TempDir;

use super::{Output, run_tool, run_tool_with_env};

/// The commit time of the first fixture commit (2024-01-02T03:04:05Z); each further commit is one
/// minute later, so SHAs and `created` labels are the same on every run.
pub const FIXTURE_EPOCH: i64 = 1_704_164_645;
/// Author and committer of fixture commits.
pub const FIXTURE_AUTHOR: (&str, &str) = ("Fixture Author", "fixture@example.com");

/// The commit times of a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The first commit at this Unix time, each further one a minute later: the same SHAs on
    /// every run.
    Fixed(i64),
    /// The current time: fresh SHAs on every run (and `created` labels of today).
    Now,
}

/// A project to build: [`project`]`()`, then files, then [`ProjectBuilder::build`].
#[must_use]
pub struct ProjectBuilder {
    copy_of: Option<PathBuf>,
    files: Vec<(PathBuf, String)>,
    clock: Clock,
}

/// An empty project at [`Clock::Fixed`]`(`[`FIXTURE_EPOCH`]`)`.
pub fn project() -> ProjectBuilder {
    ProjectBuilder {
        copy_of: None,
        files: Vec::new(),
        clock: Clock::Fixed(FIXTURE_EPOCH),
    }
}

impl ProjectBuilder {
    /// Starts from a copy of `dir` (without `target/` and `.git/`): the project's root is
    /// `<temp>/<dir's name>`, and build output under any `target/` is excluded in
    /// `.git/info/exclude` (so it never makes the tree dirty, without a committed `.gitignore`).
    pub fn copy_of(mut self, dir: impl AsRef<Path>) -> Self {
        self.copy_of = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Adds (or, after [`Self::copy_of`], replaces) a file.
    pub fn file(mut self, rel: impl AsRef<Path>, text: impl Into<String>) -> Self {
        self.files.push((rel.as_ref().to_path_buf(), text.into()));
        self
    }

    /// Adds every `(path, text)` of `files`.
    pub fn files<P: AsRef<Path>, T: AsRef<str>>(mut self, files: &[(P, T)]) -> Self {
        for (rel, text) in files {
            self = self.file(rel, text.as_ref());
        }
        self
    }

    /// The commit times.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Writes the files into a fresh repository and commits them all ("Initial commit").
    pub fn build(self) -> Project {
        let project = self.build_uncommitted();
        project.commit_all("Initial commit");
        project
    }

    /// Writes the files into a fresh repository without committing anything.
    pub fn build_uncommitted(self) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("cdr-")
            .tempdir()
            .expect("cannot create a temp dir");
        let root = match &self.copy_of {
            Some(src) => {
                let name = src
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "fixture".to_owned());
                let root = dir.path().join(name);
                copy_tree(src, &root)
                    .unwrap_or_else(|e| panic!("cannot copy fixture {}: {e}", src.display()));
                root
            }
            None => dir.path().to_path_buf(),
        };
        let mut opts = git2::RepositoryInitOptions::new();
        opts.initial_head("main");
        git2::Repository::init_opts(&root, &opts).expect("git init");
        if self.copy_of.is_some() {
            fs::write(root.join(".git/info/exclude"), "/target/\n**/target/\n")
                .expect("git exclude");
        }
        let project = Project {
            root,
            clock: self.clock,
            commits: AtomicUsize::new(0),
            _dir: dir,
        };
        for (rel, text) in &self.files {
            project.write(rel, text);
        }
        project
    }
}

/// A project built by [`project`]: a work tree and its git repository, removed on drop.
pub struct Project {
    /// The repository's work tree (where the project's files are).
    pub root: PathBuf,
    clock: Clock,
    commits: AtomicUsize,
    _dir: TempDir,
}

impl Project {
    /// The work tree.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The repository, opened.
    pub fn repo(&self) -> git2::Repository {
        git2::Repository::open(&self.root).expect("open the fixture repository")
    }

    /// Path of a file in the work tree.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes (creates or replaces) a file in the work tree, creating directories. Not committed.
    pub fn write(&self, rel: impl AsRef<Path>, text: &str) -> &Self {
        let path = self.root.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create fixture dir");
        }
        fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self
    }

    /// Reads a file of the work tree.
    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        let path = self.root.join(rel);
        fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
    }

    /// Edits a TOML file of the work tree format-preservingly (toml_edit), e.g. to point a
    /// fixture at the test builder:
    /// `p.edit_toml("Cargo.toml", |d| d["package"]["metadata"]["docker"]["builder"] = toml_edit::value(RUST_BUILDER_IMAGE))`.
    /// Not committed.
    pub fn edit_toml(
        &self,
        rel: impl AsRef<Path>,
        edit: impl FnOnce(&mut toml_edit::DocumentMut),
    ) -> &Self {
        let rel = rel.as_ref();
        let mut doc: toml_edit::DocumentMut = self
            .read(rel)
            .parse()
            .unwrap_or_else(|e| panic!("{} is not TOML: {e}", rel.display()));
        edit(&mut doc);
        self.write(rel, &doc.to_string())
    }

    /// The time of the next commit (`None`: now).
    fn next_time(&self) -> Option<i64> {
        match self.clock {
            Clock::Fixed(first) => Some(first + 60 * self.commits.load(Ordering::SeqCst) as i64),
            Clock::Now => None,
        }
    }

    /// `git add -A && git commit -m message` (see [`commit_all`]), one minute after the previous
    /// commit on a fixed clock. Returns the new commit's SHA.
    pub fn commit_all(&self, message: &str) -> String {
        let sha = commit_all(&self.repo(), message, self.next_time());
        self.commits.fetch_add(1, Ordering::SeqCst);
        sha
    }

    /// Creates a lightweight tag at HEAD (cargo-release style names: `v1.2.3`, `crate-v1.2.3`).
    pub fn tag(&self, name: &str) -> &Self {
        let repo = self.repo();
        let head = head_commit(&repo);
        repo.tag_lightweight(name, head.as_object(), false)
            .expect("git tag");
        self
    }

    /// Creates an annotated tag at HEAD with the fixture signature.
    pub fn tag_annotated(&self, name: &str, message: &str) -> &Self {
        let repo = self.repo();
        let head = head_commit(&repo);
        let sig = signature(self.next_time());
        repo.tag(name, head.as_object(), &sig, message, false)
            .expect("git tag -a");
        self
    }

    /// The full SHA of HEAD.
    pub fn head_sha(&self) -> String {
        self.head().0
    }

    /// The full SHA of HEAD and its commit time (Unix seconds).
    pub fn head(&self) -> (String, i64) {
        let repo = self.repo();
        let commit = head_commit(&repo);
        (commit.id().to_string(), commit.committer().when().seconds())
    }

    /// Runs the tool in the project's root (see [`run_tool`]).
    pub fn run<I, S>(&self, args: I) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_tool(args, &self.root)
    }

    /// Runs the tool in the project's root with extra environment (see [`run_tool_with_env`]).
    pub fn run_with_env<I, S>(&self, args: I, env: &[(&str, &str)]) -> Output
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        run_tool_with_env(args, &self.root, env)
    }
}

fn head_commit(repo: &git2::Repository) -> git2::Commit<'_> {
    repo.head().expect("HEAD").peel_to_commit().expect("commit")
}

/// The fixture signature at `time` (Unix seconds; `None`: now).
fn signature(time: Option<i64>) -> git2::Signature<'static> {
    let (name, email) = FIXTURE_AUTHOR;
    match time {
        Some(t) => git2::Signature::new(name, email, &git2::Time::new(t, 0)),
        None => git2::Signature::now(name, email),
    }
    .expect("git signature")
}

/// Stages every change of `repo`'s work tree (additions, modifications, deletions: `git add -A`)
/// and commits it on HEAD (its parent, if any) as [`FIXTURE_AUTHOR`] at `time` (Unix seconds;
/// `None`: now). Returns the new commit's SHA.
pub fn commit_all(repo: &git2::Repository, message: &str, time: Option<i64>) -> String {
    let mut index = repo.index().expect("git index");
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .expect("git add");
    index.update_all(["*"], None).expect("git add -u");
    index.write().expect("write index");
    let tree_id = index.write_tree().expect("write tree");
    let tree = repo.find_tree(tree_id).expect("find tree");
    let sig = signature(time);
    let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
        .expect("git commit")
        .to_string()
}

/// Copies a directory tree, skipping `target/` and `.git/`, keeping symlinks.
pub fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    fs::create_dir_all(dst)?;
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == "target" || name == ".git" {
            continue;
        }
        let kind = entry.file_type()?;
        let to = dst.join(&name);
        if kind.is_dir() {
            copy_tree(&entry.path(), &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path())?, &to)?;
        } else {
            fs::copy(entry.path(), &to)?;
        }
    }
    Ok(())
}

/// A workspace of services that are each the hello example's server: the root `Cargo.toml` is
/// `root_manifest`, each `(name, manifest)` a member with hello's `main.rs`, and the lock file
/// is generated (offline: hello has no dependencies). Uncommitted.
pub fn hello_workspace(root_manifest: &str, members: &[(&str, String)]) -> Project {
    let repo = project().copy_of(super::example_dir("hello")).build();
    let hello = repo.read("src/main.rs");
    fs::remove_dir_all(repo.path("src")).unwrap();
    fs::remove_dir_all(repo.path("tests")).unwrap();
    fs::remove_file(repo.path("Cargo.lock")).unwrap();
    repo.write("Cargo.toml", root_manifest);
    for (name, manifest) in members {
        repo.write(format!("{name}/src/main.rs"), &hello);
        repo.write(format!("{name}/Cargo.toml"), manifest);
    }
    let locked = std::process::Command::new(env!("CARGO"))
        .args(["generate-lockfile", "--offline", "--quiet"])
        .current_dir(&repo.root)
        .status()
        .expect("cargo generate-lockfile");
    assert!(locked.success(), "cargo generate-lockfile failed");
    repo
}
