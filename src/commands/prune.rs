//! `prune`: removes the managed repositories' stale tags (and with them images nothing else
//! names), keeping `latest`, the newest release and `--keep N` more releases; removes the
//! services' untagged builds (a failed test, a tag moved by `--force`) once they are older than a
//! release could take; and removes test containers left behind by runs that no longer exist.

use std::collections::BTreeSet;

use clap::Args;
use semver::Version;

use super::GlobalArgs;
use crate::engine::Engine;
use crate::engine::images::{ImageInfo, ImageStore, RepoTag};
use crate::error::Result;
use crate::plan::LABEL_PACKAGE;
use crate::ui::{MessageFormat, Shell};

/// `prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also keep the N newest releases besides `latest` and the current release
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub keep: usize,
}

/// `prune --keep N`: stale tags of the selected services' repositories and leftover containers.
pub fn run(global: &GlobalArgs, args: &PruneArgs, shell: &Shell) -> Result<()> {
    let (_, services) = global.load_services(true)?;
    super::block_on(async {
        let engine = Engine::connect().await?;
        let managed: Vec<(&str, &str)> = services
            .iter()
            .map(|s| (s.config.image.as_str(), s.package.name.as_str()))
            .collect();
        let pruned = prune(&engine, &managed, args.keep, shell).await?;
        match shell.format() {
            MessageFormat::Json => {
                let json = serde_json::to_string_pretty(&pruned).expect("prune results serialize");
                shell.stdout(&format!("{json}\n"))
            }
            MessageFormat::Human => {
                shell.status(
                    "Pruned",
                    format!(
                        "{} tag(s), {} untagged build(s) and {} container(s)",
                        pruned.tags.len(),
                        pruned.images.len(),
                        pruned.containers
                    ),
                );
                Ok(())
            }
        }
    })
}

/// PURE: which tags of one repository are stale.
///
/// Kept: every tag of the image `latest` names, every tag of the newest release's image and of
/// the `keep` next newest releases' images. Stale: every other tag (releases, SHA tags, dirty and
/// extra tags of images no kept release names).
pub fn stale_tags(tags: &[RepoTag], keep: usize) -> Vec<String> {
    let mut releases: Vec<(Version, &str)> = tags
        .iter()
        .filter_map(|t| {
            Version::parse(&t.tag.replace('_', "+"))
                .ok()
                .map(|v| (v, t.image_id.as_str()))
        })
        .collect();
    releases.sort_by(|a, b| b.0.cmp_precedence(&a.0).then_with(|| b.0.cmp(&a.0)));
    let mut kept_images: BTreeSet<&str> = tags
        .iter()
        .filter(|t| t.tag == "latest")
        .map(|t| t.image_id.as_str())
        .collect();
    kept_images.extend(releases.iter().take(keep + 1).map(|(_, image)| *image));
    let mut stale: Vec<String> = tags
        .iter()
        .filter(|t| !kept_images.contains(t.image_id.as_str()))
        .map(|t| t.tag.clone())
        .collect();
    stale.sort();
    stale
}

/// Untagged builds younger than this may belong to a release still running (built, not yet
/// tagged), so `prune` leaves them.
pub const UNTAGGED_MIN_AGE_SECS: i64 = 3600;

/// PURE: the IDs of `images` that no reference names and that are older than `min_age` at `now`.
pub fn stale_untagged(images: &[ImageInfo], now: i64, min_age: i64) -> Vec<String> {
    images
        .iter()
        .filter(|i| i.repo_tags.iter().all(|r| r == "<none>:<none>"))
        .filter(|i| i.created_unix.is_some_and(|c| now - c >= min_age))
        .map(|i| i.id.clone())
        .collect()
}

/// What `prune` removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Pruned {
    /// `repository:tag` references removed.
    pub tags: Vec<String>,
    /// Untagged image IDs removed.
    pub images: Vec<String>,
    /// How many leftover test containers were removed.
    pub containers: usize,
}

/// Removes the stale tags of the services' repositories, their old untagged builds and leftover
/// test containers. `services` are `(repository, package)` pairs.
pub async fn prune(
    engine: &Engine,
    services: &[(&str, &str)],
    keep: usize,
    shell: &Shell,
) -> Result<Pruned> {
    let mut pruned = Pruned::default();
    for (repo, _) in services {
        let tags = engine.repository_tags(repo).await?;
        for tag in stale_tags(&tags, keep) {
            let reference = format!("{repo}:{tag}");
            match engine.untag(&reference).await {
                Ok(()) => {
                    shell.status("Removed", &reference);
                    pruned.tags.push(reference);
                }
                Err(e) => shell.warn(format!("kept {reference}: {e}")),
            }
        }
    }
    let now = chrono::Utc::now().timestamp();
    for (_, package) in services {
        let built = engine.images_labelled(&[(LABEL_PACKAGE, package)]).await?;
        for id in stale_untagged(&built, now, UNTAGGED_MIN_AGE_SECS) {
            match engine.untag(&id).await {
                Ok(()) => {
                    shell.status(
                        "Removed",
                        format!("untagged build {} of {package}", crate::ui::short_id(&id)),
                    );
                    pruned.images.push(id);
                }
                Err(e) => shell.warn(format!("kept untagged build of {package}: {e}")),
            }
        }
    }
    pruned.containers = crate::checks::remove_leftovers(engine).await?;
    if pruned.containers > 0 {
        shell.status(
            "Removed",
            format!("{} leftover test container(s)", pruned.containers),
        );
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(list: &[(&str, &str)]) -> Vec<RepoTag> {
        list.iter()
            .map(|(t, i)| RepoTag {
                tag: (*t).into(),
                image_id: (*i).into(),
            })
            .collect()
    }

    #[test]
    fn prune_keeps_latest_the_newest_release_and_n_more() {
        let all = tags(&[
            ("1.0.0", "a"),
            ("aaaaaaa", "a"),
            ("1.1.0", "b"),
            ("1.2.0", "c"),
            ("1.3.0", "d"),
            ("1.3", "d"),
            ("1", "d"),
            ("latest", "d"),
            ("ddddddd", "d"),
            ("eeeeeee-dirty", "e"),
        ]);
        assert_eq!(
            stale_tags(&all, 1),
            ["1.0.0", "1.1.0", "aaaaaaa", "eeeeeee-dirty"]
        );
        assert_eq!(
            stale_tags(&all, 0),
            ["1.0.0", "1.1.0", "1.2.0", "aaaaaaa", "eeeeeee-dirty"]
        );
        assert_eq!(stale_tags(&all, 5), ["eeeeeee-dirty"]);
    }

    #[test]
    fn only_old_untagged_builds_are_stale() {
        let image = |id: &str, tags: &[&str], created: i64| ImageInfo {
            id: id.into(),
            repo_tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            created_unix: Some(created),
            ..Default::default()
        };
        let images = [
            image("old-untagged", &[], 0),
            image("old-none", &["<none>:<none>"], 0),
            image("old-tagged", &["acme/app:1.0.0"], 0),
            image("young-untagged", &[], 9_000),
        ];
        assert_eq!(
            stale_untagged(&images, 10_000, 3600),
            ["old-untagged", "old-none"]
        );
    }

    #[test]
    fn latest_on_an_older_release_keeps_it_too() {
        let all = tags(&[
            ("2.0.0-rc.1", "rc"),
            ("1.0.0", "a"),
            ("latest", "a"),
            ("0.9.0", "z"),
        ]);
        assert_eq!(stale_tags(&all, 0), ["0.9.0"]);
    }
}
