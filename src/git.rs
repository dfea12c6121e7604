//! git2 reads: the revision an image is attributed to, its commit time, branch, tags and whether
//! the crate's inputs are dirty. Read-only: the tool never writes to the repository.
//!
//! Every selected service is resolved by one first-parent walk from HEAD ([`revisions`]): each
//! step compares a commit's tree with its parent's top-down, along a trie of every service's
//! input paths, so that a directory whose object id did not change is skipped without being read.
//! A shallow clone whose boundary is reached before a service's last change is refused (exit 2),
//! never guessed.

use std::collections::{BTreeMap, HashSet};

use camino::{Utf8Path, Utf8PathBuf};
use chrono::{DateTime, TimeZone, Utc};
use git2::{Oid, Repository, StatusOptions, Tree};
use serde::Serialize;

use crate::config::RevisionMode;
use crate::error::{Error, Result};

/// The commit an image is attributed to and the state of the crate's inputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revision {
    /// Full 40-hex SHA.
    pub sha: String,
    /// Commit time (committer), UTC.
    pub commit_time: DateTime<Utc>,
    /// Current branch, when HEAD is on one (or the CI names one).
    pub branch: Option<String>,
    /// Whether the crate's inputs have uncommitted changes.
    pub dirty: bool,
    /// The dirty input files, relative to the repository root.
    pub dirty_files: Vec<String>,
    /// Tags pointing at HEAD.
    pub head_tags: Vec<String>,
    /// The inputs the revision was read from that exist (in HEAD or the work tree), relative to
    /// the repository root (`""`: the whole repository).
    pub inputs: Vec<String>,
}

/// What decides the revision of one service.
#[derive(Debug, Clone, Copy)]
pub struct RevisionQuery<'a> {
    /// Package name (for messages).
    pub package: &'a str,
    /// Absolute paths of its inputs, the crate directory first; a path that does not exist
    /// still counts (its deletion or creation is a change).
    pub inputs: &'a [Utf8PathBuf],
    /// `revision = "crate"` or `"head"`.
    pub mode: RevisionMode,
}

/// Opens the repository containing `dir`.
pub fn open(dir: &Utf8Path) -> Result<Repository> {
    Repository::discover(dir).map_err(|e| Error::Git {
        message: format!("`{dir}` is not inside a git repository ({})", e.message()),
        help: Some(
            "images are traced to commits: run `git init` and commit the crate first".into(),
        ),
    })
}

fn git_err(e: git2::Error) -> Error {
    Error::Git {
        message: format!("reading the git repository failed: {}", e.message()),
        help: None,
    }
}

/// Reads the revision of one crate whose inputs are `inputs` (see [`RevisionQuery`]).
pub fn revision(
    repo: &Repository,
    package: &str,
    inputs: &[Utf8PathBuf],
    mode: RevisionMode,
) -> Result<Revision> {
    let query = RevisionQuery {
        package,
        inputs,
        mode,
    };
    Ok(revisions(repo, &[query])?.remove(0))
}

/// Reads the revisions of every service of `queries` with one history walk, one status scan
/// of the work tree and one pass over the tags.
pub fn revisions(repo: &Repository, queries: &[RevisionQuery<'_>]) -> Result<Vec<Revision>> {
    let head = match repo.head() {
        Ok(head) => head,
        Err(e) if e.code() == git2::ErrorCode::UnbornBranch => {
            let package = queries.first().map_or("the crate", |q| q.package);
            return Err(never_committed(package));
        }
        Err(e) => return Err(git_err(e)),
    };
    let head_commit = head.peel_to_commit().map_err(git_err)?;
    let workdir = repo
        .workdir()
        .and_then(|p| Utf8Path::from_path(p).map(Utf8Path::to_owned))
        .ok_or_else(|| Error::Git {
            message: "the git repository has no UTF-8 work tree".into(),
            help: None,
        })?;
    let workdir = workdir.canonicalize_utf8().unwrap_or(workdir);
    let head_tree = head_commit.tree().map_err(git_err)?;

    let mut relative: Vec<Vec<String>> = Vec::with_capacity(queries.len());
    for query in queries {
        let rel = relative_inputs(&workdir, query.inputs);
        let crate_dir = rel.first().cloned().unwrap_or_default();
        let committed = crate_dir.is_empty()
            || head_tree
                .get_path(
                    std::path::Path::new(&crate_dir)
                        .join("Cargo.toml")
                        .as_path(),
                )
                .is_ok();
        if !committed {
            return Err(never_committed(query.package));
        }
        relative.push(rel);
    }

    let walked: Vec<Option<&[String]>> = queries
        .iter()
        .zip(&relative)
        .map(|(q, rel)| (q.mode == RevisionMode::Crate).then_some(rel.as_slice()))
        .collect();
    let commits = last_commits_touching(repo, &head_commit, &walked, queries)?;

    let changed = changed_files(repo).map_err(git_err)?;
    let branch = if head.is_branch() {
        head.shorthand().ok().map(str::to_owned)
    } else {
        ci_branch()
    };
    let head_tags = tags_at(repo, head_commit.id()).map_err(git_err)?;

    let mut out = Vec::with_capacity(queries.len());
    for (rel, id) in relative.iter().zip(commits) {
        let commit = repo.find_commit(id).map_err(git_err)?;
        let time = commit.committer().when();
        let commit_time = Utc
            .timestamp_opt(time.seconds(), 0)
            .single()
            .unwrap_or_default();
        let dirty_files: Vec<String> = changed
            .iter()
            .filter(|f| rel.iter().any(|input| is_under(f, input)))
            .cloned()
            .collect();
        let inputs = rel
            .iter()
            .filter(|p| {
                p.is_empty()
                    || head_tree.get_path(std::path::Path::new(p)).is_ok()
                    || workdir.join(p).exists()
            })
            .cloned()
            .collect();
        out.push(Revision {
            sha: id.to_string(),
            commit_time,
            branch: branch.clone(),
            dirty: !dirty_files.is_empty(),
            dirty_files,
            head_tags: head_tags.clone(),
            inputs,
        });
    }
    Ok(out)
}

/// The inputs inside the work tree, relative to it, without duplicates (first wins).
fn relative_inputs(workdir: &Utf8Path, inputs: &[Utf8PathBuf]) -> Vec<String> {
    let mut seen = HashSet::new();
    inputs
        .iter()
        .filter_map(|p| {
            let p = canonical_lenient(p);
            p.strip_prefix(workdir)
                .ok()
                .map(|r| r.as_str().trim_end_matches('/').to_owned())
        })
        .filter(|r| seen.insert(r.clone()))
        .collect()
}

/// Canonicalizes the longest existing ancestor of `path` (a missing input still has a place).
fn canonical_lenient(path: &Utf8Path) -> Utf8PathBuf {
    if let Ok(p) = path.canonicalize_utf8() {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => canonical_lenient(parent).join(name),
        _ => path.to_owned(),
    }
}

/// Whether repository path `file` is `input` or inside it (`""` is the whole repository).
fn is_under(file: &str, input: &str) -> bool {
    input.is_empty()
        || file == input
        || (file.starts_with(input) && file.as_bytes().get(input.len()) == Some(&b'/'))
}

fn never_committed(package: &str) -> Error {
    Error::Git {
        message: format!("`{package}` has never been committed"),
        help: Some(format!(
            "images are traced to commits: `git add` the crate and `git commit`, then release `{package}`"
        )),
    }
}

fn shallow_history(packages: &[&str], boundary: Oid) -> Error {
    let names = packages
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let package = packages.first().copied().unwrap_or("the crate");
    Error::Git {
        message: format!(
            "the clone is shallow: its history ends at commit {} before the commit that last \
             changed the inputs of {names}, so the revision cannot be known",
            &boundary.to_string()[..12]
        ),
        help: Some(format!(
            "fetch the whole history: `fetch-depth: 0` in actions/checkout, or `git fetch --unshallow`; \
             or set `revision = \"head\"` in [package.metadata.docker] of `{package}` to attribute \
             its images to HEAD"
        )),
    }
}

/// A trie of input paths: which services end at each node.
#[derive(Debug, Default)]
struct PathTrie {
    children: BTreeMap<String, PathTrie>,
    owners: Vec<usize>,
}

impl PathTrie {
    fn build(inputs: &[Option<&[String]>], resolved: &[Option<Oid>]) -> Self {
        let mut root = PathTrie::default();
        for (i, paths) in inputs.iter().enumerate() {
            let Some(paths) = paths else { continue };
            if resolved[i].is_some() {
                continue;
            }
            for path in *paths {
                let mut node = &mut root;
                for part in path.split('/') {
                    node = node.children.entry(part.to_owned()).or_default();
                }
                node.owners.push(i);
            }
        }
        root
    }

    /// Marks `at` as the revision of every unresolved owner of an input that differs between
    /// `new` and `old`, descending only into subtrees whose ids differ.
    fn diff(
        &self,
        repo: &Repository,
        new: Option<&Tree<'_>>,
        old: Option<&Tree<'_>>,
        at: Oid,
        resolved: &mut [Option<Oid>],
    ) -> std::result::Result<bool, git2::Error> {
        let mut any = false;
        for (name, child) in &self.children {
            let a = new
                .and_then(|t| t.get_name(name))
                .map(|e| (e.id(), e.kind()));
            let b = old
                .and_then(|t| t.get_name(name))
                .map(|e| (e.id(), e.kind()));
            if a.map(|e| e.0) == b.map(|e| e.0) {
                continue;
            }
            for &owner in &child.owners {
                if resolved[owner].is_none() {
                    resolved[owner] = Some(at);
                    any = true;
                }
            }
            if !child.children.is_empty() {
                let tree = |e: Option<(Oid, Option<git2::ObjectType>)>| match e {
                    Some((id, Some(git2::ObjectType::Tree))) => repo.find_tree(id).map(Some),
                    _ => Ok(None),
                };
                let (ta, tb) = (tree(a)?, tree(b)?);
                any |= child.diff(repo, ta.as_ref(), tb.as_ref(), at, resolved)?;
            }
        }
        Ok(any)
    }
}

/// The commits of the boundary of a shallow clone (`.git/shallow`).
fn shallow_boundary(repo: &Repository) -> HashSet<Oid> {
    if !repo.is_shallow() {
        return HashSet::new();
    }
    std::fs::read_to_string(repo.path().join("shallow"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| Oid::from_str(l.trim()).ok())
        .collect()
}

/// One first-parent walk from HEAD: for each service with inputs (`Some`), the newest commit whose
/// inputs differ from its parent's; HEAD for the others and for a crate at the repository root.
fn last_commits_touching(
    repo: &Repository,
    head: &git2::Commit<'_>,
    inputs: &[Option<&[String]>],
    queries: &[RevisionQuery<'_>],
) -> Result<Vec<Oid>> {
    let mut resolved: Vec<Option<Oid>> = inputs
        .iter()
        .map(|paths| match paths {
            // A crate at the repository root: every commit touches it.
            Some(p) if !p.iter().any(|p| p.is_empty()) => None,
            _ => Some(head.id()),
        })
        .collect();
    let boundary = shallow_boundary(repo);
    let mut trie = PathTrie::build(inputs, &resolved);
    let mut commit = head.clone();
    let mut tree = commit.tree().map_err(git_err)?;
    while resolved.iter().any(Option::is_none) {
        let shallow = || {
            let unresolved: Vec<&str> = resolved
                .iter()
                .zip(queries)
                .filter(|(r, _)| r.is_none())
                .map(|(_, q)| q.package)
                .collect();
            shallow_history(&unresolved, commit.id())
        };
        // At a shallow boundary what the parent had is unknown: refuse, never guess.
        if boundary.contains(&commit.id()) {
            return Err(shallow());
        }
        if commit.parent_count() == 0 {
            // The root commit introduced whatever is left.
            break;
        }
        let parent = match commit.parent(0) {
            Ok(p) => p,
            Err(e) if e.code() == git2::ErrorCode::NotFound && repo.is_shallow() => {
                return Err(shallow());
            }
            Err(e) => return Err(git_err(e)),
        };
        let parent_tree = parent.tree().map_err(git_err)?;
        if tree.id() != parent_tree.id()
            && trie
                .diff(
                    repo,
                    Some(&tree),
                    Some(&parent_tree),
                    commit.id(),
                    &mut resolved,
                )
                .map_err(git_err)?
        {
            trie = PathTrie::build(inputs, &resolved);
        }
        commit = parent;
        tree = parent_tree;
    }
    Ok(resolved
        .into_iter()
        .map(|r| r.unwrap_or(commit.id()))
        .collect())
}

/// Modified, staged or untracked (not ignored) files of the whole work tree, one scan for every
/// service; cargo's output is never an input, even where no .gitignore says so.
fn changed_files(repo: &Repository) -> std::result::Result<Vec<String>, git2::Error> {
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = repo.statuses(Some(&mut options))?;
    let mut files: Vec<String> = statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT && s.status() != git2::Status::IGNORED)
        .filter_map(|s| s.path().ok().map(str::to_owned))
        .filter(|p| !p.starts_with("target/") && !p.contains("/target/"))
        .collect();
    files.sort();
    Ok(files)
}
/// Tag names pointing (directly or annotated) at `id`.
fn tags_at(repo: &Repository, id: git2::Oid) -> std::result::Result<Vec<String>, git2::Error> {
    let mut tags = Vec::new();
    repo.tag_foreach(|oid, name| {
        let name = String::from_utf8_lossy(name);
        let target = repo
            .find_object(oid, None)
            .and_then(|o| o.peel(git2::ObjectType::Commit))
            .map(|o| o.id());
        if target.ok() == Some(id)
            && let Some(short) = name.strip_prefix("refs/tags/")
        {
            tags.push(short.to_owned());
        }
        true
    })?;
    tags.sort();
    Ok(tags)
}

/// The branch CI systems check out detached.
fn ci_branch() -> Option<String> {
    [
        "GITHUB_HEAD_REF",
        "GITHUB_REF_NAME",
        "CI_COMMIT_REF_NAME",
        "BUILDKITE_BRANCH",
    ]
    .iter()
    .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}
