//! The command line: clap derive, wrapped so that `cargo docker-release …` works, and the one
//! place that dispatches a parsed command line to its command in [`crate::commands`].

use clap::{Args, Parser, Subcommand};

use crate::commands::{self, GlobalArgs};
use crate::error::Result;
use crate::ui::Shell;

/// Cargo runs `cargo-docker-release docker-release …` for `cargo docker-release …`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap_cargo_styles())]
pub enum Cli {
    /// Build, test, tag and push container images of Rust services.
    #[command(name = "docker-release", version, author)]
    DockerRelease(DockerRelease),
}

/// `cargo docker-release`.
#[derive(Debug, Args)]
#[command(
    about = "Build, test, tag and push container images of Rust services",
    long_about = "Build a container image of each selected service from [package.metadata.docker], \
test it inside a container of that exact image, and only then tag it with the crate's semver, \
the commit SHA and `latest` where the rules allow (and push it with --push).\n\n\
Without a subcommand, runs the whole release.",
    after_help = "Examples:\n  cargo docker-release plan\n  cargo docker-release --workspace --push\n  cargo docker-release dockerfile --check"
)]
pub struct DockerRelease {
    /// Stage to run on its own; the whole release when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// Options of the release itself.
    #[command(flatten)]
    pub release: commands::release::ReleaseArgs,
}

/// The stages that can run on their own.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what a release would do: images, every tag with its reason, labels
    Plan(commands::plan::PlanArgs),
    /// Render the Dockerfile from the templates
    Dockerfile(commands::dockerfile::DockerfileArgs),
    /// Check the Dockerfile a package uses (built-in rules, plus hadolint when installed)
    Lint(commands::lint::LintArgs),
    /// Add a commented [package.metadata.docker] section to Cargo.toml
    Init,
    /// Print the version, revision, source and tags an image carries
    Inspect(commands::inspect::InspectArgs),
    /// Remove stale images of the managed repositories and leftover test containers
    Prune(commands::prune::PruneArgs),
    /// Move the floating tags (X.Y, X, latest) of every selected service inside the registry,
    /// once each service's immutable tags of this revision are there (after `--stage immutable`)
    Promote,
    /// Check an image's signature, provenance and SBOMs in its registry (with --key cosign.pub)
    Verify(commands::verify::VerifyArgs),
}

impl Cli {
    /// The output shell the command line asks for.
    pub fn shell(&self) -> Shell {
        let Cli::DockerRelease(args) = self;
        let g = &args.global;
        Shell::new(g.verbose, g.quiet, g.color, g.message_format)
    }

    /// Runs the command the line names: the whole release without a subcommand.
    pub fn run(self, shell: &Shell) -> Result<()> {
        let Cli::DockerRelease(args) = self;
        let global = &args.global;
        match args.command {
            None => commands::release::run(global, &args.release, shell),
            Some(Command::Plan(plan)) => commands::plan::run(global, &plan, shell),
            Some(Command::Dockerfile(dockerfile)) => {
                commands::dockerfile::run(global, &dockerfile, shell)
            }
            Some(Command::Lint(lint)) => commands::lint::run(global, &lint, shell),
            Some(Command::Init) => commands::init::run(global, shell),
            Some(Command::Inspect(inspect)) => commands::inspect::run(&inspect, shell),
            Some(Command::Prune(prune)) => commands::prune::run(global, &prune, shell),
            Some(Command::Promote) => commands::promote::run(global, shell),
            Some(Command::Verify(verify)) => commands::verify::run(&verify, shell),
        }
    }
}

/// Cargo's help colors.
fn clap_cargo_styles() -> clap::builder::Styles {
    use anstyle::{AnsiColor, Effects};
    clap::builder::Styles::styled()
        .header(AnsiColor::Green.on_default().effects(Effects::BOLD))
        .usage(AnsiColor::Green.on_default().effects(Effects::BOLD))
        .literal(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .placeholder(AnsiColor::Cyan.on_default())
        .error(AnsiColor::Red.on_default().effects(Effects::BOLD))
        .valid(AnsiColor::Cyan.on_default().effects(Effects::BOLD))
        .invalid(AnsiColor::Yellow.on_default().effects(Effects::BOLD))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::plan::PlanArgs;
    use crate::commands::release::Stage;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_as_cargo_subcommand() {
        let Cli::DockerRelease(args) =
            Cli::try_parse_from(["cargo", "docker-release", "plan", "-p", "a", "-p", "b"]).unwrap();
        assert!(matches!(args.command, Some(Command::Plan(_))));
        assert_eq!(args.global.package, ["a", "b"]);
    }

    #[test]
    fn stage_immutable_needs_push_and_promote_and_matrix_parse() {
        let parse = |args: &[&str]| Cli::try_parse_from(args.iter().copied());
        assert!(parse(&["cargo", "docker-release", "--stage", "immutable"]).is_err());
        let Cli::DockerRelease(args) =
            parse(&["cargo", "docker-release", "--push", "--stage", "immutable"]).unwrap();
        assert_eq!(args.release.stage, Some(Stage::Immutable));
        let Cli::DockerRelease(args) =
            parse(&["cargo", "docker-release", "plan", "--matrix", "--workspace"]).unwrap();
        assert!(matches!(
            args.command,
            Some(Command::Plan(PlanArgs { matrix: true }))
        ));
        let Cli::DockerRelease(args) =
            parse(&["cargo", "docker-release", "promote", "-p", "a"]).unwrap();
        assert!(matches!(args.command, Some(Command::Promote)));
    }

    #[test]
    fn feature_flags_are_read_as_cargo_reads_them() {
        let Cli::DockerRelease(args) = Cli::try_parse_from([
            "cargo",
            "docker-release",
            "-F",
            "a,b",
            "--features",
            "c d",
            "--no-default-features",
        ])
        .unwrap();
        let features = args.global.selection().features;
        assert_eq!(features.features, ["a", "b", "c", "d"]);
        assert_eq!(
            features.flags(),
            ["--no-default-features", "--features", "a,b,c,d"]
        );
    }
}
