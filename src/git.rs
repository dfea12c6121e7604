//! git2 reads: the revision an image is attributed to, its commit time, branch, tags and whether
//! the crate's inputs are dirty. Read-only: the tool never writes to the repository.

use camino::{Utf8Path, Utf8PathBuf};
use chrono::{DateTime, TimeZone, Utc};
use git2::{Repository, StatusOptions};
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

/// Reads the revision of a crate whose inputs are `inputs` (absolute paths: the crate directory,
/// its path dependencies, `Cargo.lock`, its Dockerfile or template).
pub fn revision(
    repo: &Repository,
    package: &str,
    inputs: &[Utf8PathBuf],
    mode: RevisionMode,
) -> Result<Revision> {
    let git_err = |e: git2::Error| Error::Git {
        message: format!("reading the git repository failed: {}", e.message()),
        help: None,
    };
    let head = match repo.head() {
        Ok(head) => head,
        Err(e) if e.code() == git2::ErrorCode::UnbornBranch => {
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
    let rel_inputs: Vec<String> = inputs
        .iter()
        .filter_map(|p| {
            let p = p.canonicalize_utf8().unwrap_or_else(|_| p.clone());
            p.strip_prefix(&workdir).ok().map(|r| r.as_str().to_owned())
        })
        .collect();
    let crate_dir = rel_inputs.first().cloned().unwrap_or_default();

    let head_tree = head_commit.tree().map_err(git_err)?;
    let committed = crate_dir.is_empty()
        || head_tree
            .get_path(
                std::path::Path::new(&crate_dir)
                    .join("Cargo.toml")
                    .as_path(),
            )
            .is_ok();
    if !committed {
        return Err(never_committed(package));
    }

    let commit = match mode {
        RevisionMode::Head => head_commit.clone(),
        RevisionMode::Crate => last_commit_touching(&head_commit, &rel_inputs).map_err(git_err)?,
    };
    let time = commit.committer().when();
    let commit_time = Utc
        .timestamp_opt(time.seconds(), 0)
        .single()
        .unwrap_or_default();

    let dirty_files = dirty_inputs(repo, &rel_inputs).map_err(git_err)?;
    let branch = if head.is_branch() {
        head.shorthand().ok().map(str::to_owned)
    } else {
        ci_branch()
    };
    let head_tags = tags_at(repo, head_commit.id()).map_err(git_err)?;
    Ok(Revision {
        sha: commit.id().to_string(),
        commit_time,
        branch,
        dirty: !dirty_files.is_empty(),
        dirty_files,
        head_tags,
    })
}

fn never_committed(package: &str) -> Error {
    Error::Git {
        message: format!("`{package}` has never been committed"),
        help: Some(format!(
            "images are traced to commits: `git add` the crate and `git commit`, then release `{package}`"
        )),
    }
}

/// Walks first parents from HEAD to the newest commit whose inputs differ from its parent's.
fn last_commit_touching<'r>(
    head: &git2::Commit<'r>,
    inputs: &[String],
) -> std::result::Result<git2::Commit<'r>, git2::Error> {
    if inputs.iter().any(|p| p.is_empty()) {
        // The crate is at the repository root: every commit touches it.
        return Ok(head.clone());
    }
    let ids =
        |commit: &git2::Commit<'_>| -> std::result::Result<Vec<Option<git2::Oid>>, git2::Error> {
            let tree = commit.tree()?;
            Ok(inputs
                .iter()
                .map(|p| tree.get_path(std::path::Path::new(p)).ok().map(|e| e.id()))
                .collect())
        };
    let mut commit = head.clone();
    let mut current = ids(&commit)?;
    while let Ok(parent) = commit.parent(0) {
        let previous = ids(&parent)?;
        if previous != current {
            break;
        }
        commit = parent;
        current = previous;
    }
    Ok(commit)
}

/// Modified, staged or untracked (not ignored) files under the inputs.
fn dirty_inputs(
    repo: &Repository,
    inputs: &[String],
) -> std::result::Result<Vec<String>, git2::Error> {
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true);
    // A crate at the repository root has the whole work tree as its input: no pathspec.
    if !inputs.iter().any(|p| p.is_empty()) {
        for input in inputs {
            options.pathspec(input);
        }
    }
    let statuses = repo.statuses(Some(&mut options))?;
    let mut files: Vec<String> = statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT && s.status() != git2::Status::IGNORED)
        .filter_map(|s| s.path().ok().map(str::to_owned))
        // Cargo's output is never an input, even where no .gitignore says so.
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
