//! What a release did to each tag, as the report tells it: the pipeline's tag and push steps
//! produce these, the report prints them.

use serde::Serialize;

use crate::plan::{TagDecision, TagKind};

/// What happened to one tag of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagOutcome {
    /// The tag (without repository).
    pub name: String,
    /// The rule that produced it.
    pub kind: TagKind,
    /// Whether the plan applies it.
    pub planned: bool,
    /// Whether it now points at the released image.
    pub applied: bool,
    /// Whether applying it changed where it pointed (new, or moved from another image).
    pub moved: bool,
    /// The image it pointed at before, when it existed and was another one.
    pub previous: Option<String>,
    /// The plan's reason, or why it was not applied after all.
    pub reason: String,
}

impl TagOutcome {
    /// A planned tag left as it was: `why` says why a tag the plan applies was not (or, with
    /// `applied`, why it already was in place); a tag the plan skips keeps the plan's reason.
    pub fn unapplied(tag: &TagDecision, applied: bool, why: &str) -> Self {
        TagOutcome {
            name: tag.name.clone(),
            kind: tag.kind,
            planned: tag.applied,
            applied: applied && tag.applied,
            moved: false,
            previous: None,
            reason: if tag.applied && !why.is_empty() {
                why.to_owned()
            } else {
                tag.reason.clone()
            },
        }
    }
}

/// What the push did for one tag (in the report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagPush {
    /// The tag.
    pub tag: String,
    /// The manifest digest the registry serves for it after the push.
    pub digest: String,
    /// Whether the read-back matched the engine's digest and the tested image.
    pub verified: bool,
    /// The digest it held before, when `--force` replaced another image.
    pub replaced: Option<String>,
}
