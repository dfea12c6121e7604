//! Which builder builds an image (BuildKit, or the classic builder when the environment, the
//! manifest or the engine says so), and the Dockerfile syntax the chosen one cannot build.

use crate::dockerfile::lint::{self, SyntaxNeed};
use crate::engine::build::{Builder, EngineBuilders};
use crate::error::{Error, Result};

/// Why a builder was chosen, for the status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuilderChoice {
    /// BuildKit, which the engine offers.
    Default,
    /// BuildKit because `DOCKER_BUILDKIT` is true (which also keeps a host-strategy image
    /// on the builder instead of assembling it).
    EnvEnabled,
    /// The classic builder because `DOCKER_BUILDKIT` is false.
    EnvDisabled,
    /// The classic builder because the manifest says `buildkit = false`.
    ManifestDisabled,
    /// The classic builder because the engine has no BuildKit.
    EngineLacks,
}

impl BuilderChoice {
    /// The builder this choice selects.
    pub fn builder(self) -> Builder {
        match self {
            BuilderChoice::Default | BuilderChoice::EnvEnabled => Builder::BuildKit,
            _ => Builder::Classic,
        }
    }

    /// Why, in words (`DOCKER_BUILDKIT=0`).
    pub fn reason(self) -> &'static str {
        match self {
            BuilderChoice::Default => "the engine offers it",
            BuilderChoice::EnvEnabled => "DOCKER_BUILDKIT=1",
            BuilderChoice::EnvDisabled => "DOCKER_BUILDKIT=0",
            BuilderChoice::ManifestDisabled => "`buildkit = false` in the manifest",
            BuilderChoice::EngineLacks => "the engine has no BuildKit",
        }
    }
}

/// `DOCKER_BUILDKIT` as the docker CLI reads it (Go's `strconv.ParseBool`); `None` when unset.
pub fn docker_buildkit_env(value: Option<&str>) -> Result<Option<bool>> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(other) => Err(Error::usage(
            format!("DOCKER_BUILDKIT={other:?} is not a boolean"),
            Some(
                "set DOCKER_BUILDKIT=0 for the classic builder or 1 for BuildKit, or unset it"
                    .to_owned(),
            ),
        )),
    }
}

/// PURE: which builder builds the image. BuildKit whenever the engine offers it, unless
/// `DOCKER_BUILDKIT` is false (the docker CLI's convention) or the manifest says `buildkit = false`.
/// A `DOCKER_BUILDKIT` set either way is a builder the user chose: a host-strategy image is then
/// built by it rather than assembled.
pub fn choose_builder(
    manifest_buildkit: bool,
    env: Option<bool>,
    engine_offers: bool,
) -> BuilderChoice {
    if env == Some(false) {
        BuilderChoice::EnvDisabled
    } else if !manifest_buildkit {
        BuilderChoice::ManifestDisabled
    } else if !engine_offers {
        BuilderChoice::EngineLacks
    } else if env == Some(true) {
        BuilderChoice::EnvEnabled
    } else {
        BuilderChoice::Default
    }
}

/// The BuildKit-only syntax of `dockerfile` that `builder` cannot build: an error naming its line
/// (exit 2), before anything is sent to the engine.
pub fn check_syntax(
    dockerfile: &str,
    name: &str,
    choice: BuilderChoice,
    builders: EngineBuilders,
) -> Result<()> {
    let uses = lint::buildkit_syntax(dockerfile);
    let problem = match choice.builder() {
        Builder::Classic => uses.first().map(|u| {
            (
                u,
                format!("needs BuildKit, and the classic builder was selected ({})", choice.reason()),
                match choice {
                    BuilderChoice::EnvDisabled => "unset DOCKER_BUILDKIT=0",
                    BuilderChoice::ManifestDisabled => "remove `buildkit = false` from the manifest",
                    _ => "build on an engine with BuildKit (Docker 18.09 or later, Linux)",
                },
            )
        }),
        Builder::BuildKit if !builders.newer_frontend && !lint::has_syntax_directive(dockerfile) => uses
            .iter()
            .find(|u| u.needs == SyntaxNeed::NewerFrontend)
            .map(|u| {
                (
                    u,
                    "needs Dockerfile frontend 1.4 or later, and the engine's built-in frontend is older (Docker before 23)".to_owned(),
                    "write it without this syntax, or build on Docker 23 or later",
                )
            }),
        Builder::BuildKit | Builder::Assembled => None,
    };
    match problem {
        None => Ok(()),
        Some((u, why, fix)) => Err(Error::Dockerfile {
            message: format!("{name}:{}: `{}` {why}", u.line, u.what),
            help: Some(fix.to_owned()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildkit_unless_the_environment_the_manifest_or_the_engine_says_otherwise() {
        assert_eq!(choose_builder(true, None, true), BuilderChoice::Default);
        assert_eq!(
            choose_builder(true, Some(true), true),
            BuilderChoice::EnvEnabled
        );
        assert_eq!(
            choose_builder(true, Some(false), true),
            BuilderChoice::EnvDisabled
        );
        assert_eq!(
            choose_builder(false, None, true),
            BuilderChoice::ManifestDisabled
        );
        assert_eq!(
            choose_builder(true, None, false),
            BuilderChoice::EngineLacks
        );
        assert_eq!(
            choose_builder(true, Some(true), false).builder(),
            Builder::Classic
        );
        assert_eq!(docker_buildkit_env(None).unwrap(), None);
        assert_eq!(docker_buildkit_env(Some("")).unwrap(), None);
        assert_eq!(docker_buildkit_env(Some("0")).unwrap(), Some(false));
        assert_eq!(docker_buildkit_env(Some("true")).unwrap(), Some(true));
        assert_eq!(
            docker_buildkit_env(Some("nope")).unwrap_err().exit_code(),
            2
        );
    }

    #[test]
    fn buildkit_syntax_is_refused_before_the_build_where_the_builder_lacks_it() {
        let text = "FROM scratch\nCOPY --chmod=755 a /a\nCOPY --link b /b\n";
        let old = EngineBuilders {
            buildkit: true,
            newer_frontend: false,
        };
        let classic = check_syntax(text, "Dockerfile", BuilderChoice::EnvDisabled, old)
            .unwrap_err()
            .to_string();
        assert!(
            classic.contains("Dockerfile:2: `COPY --chmod` needs BuildKit"),
            "{classic}"
        );
        let frontend = check_syntax(text, "Dockerfile", BuilderChoice::Default, old)
            .unwrap_err()
            .to_string();
        assert!(
            frontend.contains("Dockerfile:3: `COPY --link`"),
            "{frontend}"
        );
        let newer = EngineBuilders {
            buildkit: true,
            newer_frontend: true,
        };
        assert!(check_syntax(text, "Dockerfile", BuilderChoice::Default, newer).is_ok());
        let with_syntax = format!("# syntax=docker/dockerfile:1.7\n{text}");
        assert!(check_syntax(&with_syntax, "Dockerfile", BuilderChoice::Default, old).is_ok());
    }
}
