//! The command line: clap derive, wrapped so that `cargo docker-release …` works.

use camino::Utf8PathBuf;
use clap::{Args, Parser, Subcommand, ValueEnum};

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
    pub release: ReleaseArgs,
}

/// Options that apply to every command, cargo-style.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Package Selection")]
pub struct GlobalArgs {
    /// Path to Cargo.toml
    #[arg(long, value_name = "PATH", global = true)]
    pub manifest_path: Option<Utf8PathBuf>,
    /// Package(s) to release (repeatable)
    #[arg(short, long = "package", value_name = "SPEC", global = true)]
    pub package: Vec<String>,
    /// Release every workspace member with a [package.metadata.docker] section
    #[arg(long, global = true)]
    pub workspace: bool,
    /// Exclude packages from --workspace
    #[arg(long, value_name = "SPEC", global = true, requires = "workspace")]
    pub exclude: Vec<String>,
    /// Use verbose output (-vv very verbose: full build logs)
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Output")]
    pub verbose: u8,
    /// Do not print cargo log messages
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Output"
    )]
    pub quiet: bool,
    /// Coloring
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true, help_heading = "Output")]
    pub color: ColorChoice,
    /// Output format for machine-readable results on stdout
    #[arg(long, value_enum, default_value_t = MessageFormat::Human, global = true, help_heading = "Output")]
    pub message_format: MessageFormat,
    /// Assert that Cargo.lock will remain unchanged
    #[arg(long, global = true, help_heading = "Manifest Options")]
    pub locked: bool,
    /// Run without accessing the network
    #[arg(long, global = true, help_heading = "Manifest Options")]
    pub offline: bool,
    /// Equivalent to specifying both --locked and --offline
    #[arg(long, global = true, help_heading = "Manifest Options")]
    pub frozen: bool,
    /// Space or comma separated list of features to activate
    #[arg(
        short = 'F',
        long,
        value_name = "FEATURES",
        global = true,
        help_heading = "Feature Selection"
    )]
    pub features: Vec<String>,
    /// Activate all available features
    #[arg(long, global = true, help_heading = "Feature Selection")]
    pub all_features: bool,
    /// Do not activate the `default` feature
    #[arg(long, global = true, help_heading = "Feature Selection")]
    pub no_default_features: bool,
    /// Allow uncommitted changes: the image is tagged `<sha>-dirty` only
    #[arg(long, global = true, help_heading = "Release Options")]
    pub allow_dirty: bool,
}

/// Options of the release pipeline.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Release Options")]
pub struct ReleaseArgs {
    /// Push every tag to the registry after the tests pass
    #[arg(long)]
    pub push: bool,
    /// Print the plan and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Services built and tested at once [default: number of CPUs]
    #[arg(short, long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Keep the container of a failed test and print how to reach it
    #[arg(long)]
    pub keep_on_failure: bool,
    /// Overwrite an existing immutable tag (X.Y.Z or SHA) that points to another image
    #[arg(long)]
    pub force: bool,
    /// Write a JUnit XML report of the tests to PATH
    #[arg(long, value_name = "PATH")]
    pub junit: Option<Utf8PathBuf>,
    /// Run one stage of a release split across CI jobs: `immutable` pushes only the version, SHA
    /// and extra tags (then `promote` moves the floating ones for every service at once)
    #[arg(long, value_enum, value_name = "STAGE", requires = "push")]
    pub stage: Option<Stage>,
}

/// `--stage`: the part of a release one CI job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Stage {
    /// Build, test and push only the immutable tags; nothing floating moves.
    Immutable,
}

/// The stages that can run on their own.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print what a release would do: images, every tag with its reason, labels
    Plan(PlanArgs),
    /// Render the Dockerfile from the templates
    Dockerfile(DockerfileArgs),
    /// Check the Dockerfile a package uses (built-in rules, plus hadolint when installed)
    Lint(LintArgs),
    /// Add a commented [package.metadata.docker] section to Cargo.toml
    Init,
    /// Print the version, revision, source and tags an image carries
    Inspect(InspectArgs),
    /// Remove stale images of the managed repositories and leftover test containers
    Prune(PruneArgs),
    /// Move the floating tags (X.Y, X, latest) of every selected service inside the registry,
    /// once each service's immutable tags of this revision are there (after `--stage immutable`)
    Promote,
}

/// `plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Print the services a release still has to build, as a CI matrix (`{"include":[…]}`),
    /// skipping those whose immutable tags of this revision are already in the registry
    #[arg(long)]
    pub matrix: bool,
}

/// `dockerfile`.
#[derive(Debug, Args)]
pub struct DockerfileArgs {
    /// Write the Dockerfile and .dockerignore next to the crate
    #[arg(long, conflicts_with = "check")]
    pub write: bool,
    /// Exit 1 with a diff when the committed Dockerfile differs from a fresh render
    #[arg(long)]
    pub check: bool,
}

/// `lint`.
#[derive(Debug, Args, Default)]
pub struct LintArgs {
    /// Fail on findings of this level too (`warnings`), like clippy's `-D warnings`; by default
    /// only errors fail
    #[arg(short = 'D', long, value_name = "LEVEL")]
    pub deny: Option<DenyLevel>,
}

/// What `lint --deny` makes fail besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DenyLevel {
    /// Warnings fail too.
    Warnings,
}

impl LintArgs {
    /// The lowest severity that fails.
    pub fn threshold(&self) -> crate::dockerfile::Severity {
        match self.deny {
            Some(DenyLevel::Warnings) => crate::dockerfile::Severity::Warning,
            None => crate::dockerfile::Severity::Error,
        }
    }
}

/// `inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Image reference or ID, e.g. `acme/orders:1.4.2`
    pub image: String,
}

/// `prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Also keep the N newest releases besides `latest` and the current release
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub keep: usize,
}

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color when stderr is a terminal.
    #[default]
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// `--message-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum MessageFormat {
    /// Status lines for people.
    #[default]
    Human,
    /// One JSON document on stdout.
    Json,
}

impl GlobalArgs {
    /// The package selection these options describe.
    pub fn selection(&self) -> crate::workspace::Selection {
        let mut cargo_flags = Vec::new();
        for (on, flag) in [
            (self.locked, "--locked"),
            (self.offline, "--offline"),
            (self.frozen, "--frozen"),
        ] {
            if on {
                cargo_flags.push(flag.to_owned());
            }
        }
        crate::workspace::Selection {
            manifest_path: self.manifest_path.clone(),
            packages: self.package.clone(),
            workspace: self.workspace,
            exclude: self.exclude.clone(),
            cargo_flags,
            features: crate::workspace::CargoFeatures {
                features: self
                    .features
                    .iter()
                    .flat_map(|f| f.split([',', ' ']))
                    .filter(|f| !f.is_empty())
                    .map(str::to_owned)
                    .collect(),
                all_features: self.all_features,
                no_default_features: self.no_default_features,
            },
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
