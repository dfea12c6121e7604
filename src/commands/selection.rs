//! What every command shares: the cargo-style flags that select packages and shape the output,
//! and the workspace loading and planning they lead to.

use camino::Utf8PathBuf;
use clap::Args;

use crate::error::Result;
use crate::plan::{ImagePlan, PlanOptions};
use crate::ui::{ColorChoice, MessageFormat};
use crate::workspace::{self, Selection, Service, Workspace};

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

impl GlobalArgs {
    /// The package selection these options describe.
    pub fn selection(&self) -> Selection {
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
        Selection {
            manifest_path: self.manifest_path.clone(),
            packages: self.package.clone(),
            workspace: self.workspace,
            exclude: self.exclude.clone(),
            cargo_flags,
            features: workspace::CargoFeatures {
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

    /// Reads the workspace and resolves every selected service's configuration.
    pub fn load_services(&self, require_section: bool) -> Result<(Workspace, Vec<Service>)> {
        workspace::load_services(&self.selection(), require_section)
    }

    /// Plan options from these flags and the CI environment.
    pub fn plan_options(&self) -> PlanOptions {
        crate::pipeline::planning::options(self.allow_dirty, self.selection().features)
    }

    /// Plans the selected services for rendering: the commit does not matter (see the module docs),
    /// so uncommitted changes, such as a freshly written Dockerfile, are allowed.
    pub fn render_plans(&self) -> Result<(Workspace, Vec<ImagePlan>)> {
        let (ws, mut services) = self.load_services(true)?;
        // Nor does its history: a shallow CI clone can still render and check.
        for service in &mut services {
            service.config.revision = crate::config::RevisionMode::Head;
        }
        let options = PlanOptions {
            allow_dirty: true,
            ci_run_url: None,
            features: self.selection().features,
        };
        let plan = crate::pipeline::planning::make_plan(&services, &Default::default(), &options)?;
        Ok((ws, plan.images))
    }
}
