//! The pipeline's call into the test stage ([`crate::checks`]): the options a release passes it and
//! where each service's JUnit file goes.

use crate::engine::Engine;
use crate::error::Result;
use crate::plan::ImagePlan;
use crate::ui::Shell;

pub use crate::checks::TestReport;

/// How the pipeline wants the test stage to behave.
#[derive(Debug, Clone, Default)]
pub struct TestStageOptions {
    /// `--keep-on-failure`: keep a failed test container and say how to reach it.
    pub keep_on_failure: bool,
    /// `--junit PATH`: where the stage writes its JUnit report.
    pub junit: Option<camino::Utf8PathBuf>,
    /// Whether several services are released, so each needs a JUnit file of its own.
    pub several_services: bool,
    /// The run's signal listener (the stage listens itself when there is none).
    pub interrupt: Option<crate::interrupt::Interrupt>,
}

/// Where one service's JUnit report goes: `PATH` itself, or `stem-<package>.ext` beside it when
/// several services are released in one run (each writes its own file).
pub fn junit_path_for(
    path: &camino::Utf8Path,
    package: &str,
    several_services: bool,
) -> camino::Utf8PathBuf {
    if !several_services {
        return path.to_owned();
    }
    let stem = path.file_stem().unwrap_or("junit");
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{package}.{ext}"),
        None => format!("{stem}-{package}"),
    };
    path.with_file_name(name)
}

/// Runs the test stage on `image_id`: the one call from the pipeline into [`crate::checks`].
///
/// Returns the stage's report whether or not it passed, and the failure (exit 1: the image gets
/// no tag) when it did not.
/// `compiled_tests`: the `cargo` checks' executables when the build compiled them.
pub async fn run_tests(
    engine: &Engine,
    plan: &ImagePlan,
    image_id: &str,
    compiled_tests: Option<Vec<camino::Utf8PathBuf>>,
    options: &TestStageOptions,
    shell: &Shell,
) -> (TestReport, Result<()>) {
    let options = crate::checks::TestOptions {
        keep_on_failure: options.keep_on_failure,
        junit: options
            .junit
            .as_deref()
            .map(|p| junit_path_for(p, &plan.package, options.several_services)),
        interrupt: options.interrupt.clone(),
        compiled_tests,
    };
    crate::checks::run_with_report(engine, plan, image_id, &options, shell).await
}

#[cfg(test)]
mod tests {
    use super::junit_path_for;
    use camino::Utf8Path;

    #[test]
    fn each_service_gets_its_own_junit_file_when_several_are_released() {
        let path = Utf8Path::new("target/junit.xml");
        assert_eq!(junit_path_for(path, "orders", false), path);
        assert_eq!(
            junit_path_for(path, "orders", true),
            "target/junit-orders.xml"
        );
        assert_eq!(
            junit_path_for(Utf8Path::new("report"), "billing", true),
            "report-billing"
        );
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    //! Plans for unit tests of the steps, from a real manifest through the real resolution.

    use crate::config::{self, ManifestSource, PackageFacts};
    use crate::git::Revision;
    use crate::plan::{ImagePlan, TagDecision};

    /// A plan of `image` at `version`/`revision` with exactly `tags`.
    pub fn image_plan(
        image: &str,
        version: &str,
        revision: &str,
        tags: Vec<TagDecision>,
    ) -> ImagePlan {
        let text = format!(
            "[package]\nname = \"app\"\nversion = \"{version}\"\n\n[package.metadata.docker]\nimage = \"{image}\"\nbase = \"scratch\"\n"
        );
        let manifest = ManifestSource::parse("/ws/app/Cargo.toml", text).unwrap();
        let facts = PackageFacts {
            name: "app",
            dir: "/ws/app".into(),
            workspace_root: "/ws".into(),
            bins: vec!["app".into()],
        };
        let config = config::resolve(&facts, None, &manifest).unwrap();
        ImagePlan {
            package: "app".into(),
            version: version.into(),
            image: image.into(),
            revision: revision.into(),
            git: Revision {
                sha: revision.into(),
                commit_time: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
                branch: Some("main".into()),
                dirty: false,
                dirty_files: vec![],
                head_tags: vec![],
                inputs: vec![],
            },
            tags,
            labels: Default::default(),
            package_dir: "/ws/app".into(),
            workspace_root: "/ws".into(),
            target_dir: "/ws/target".into(),
            manifest_path: "/ws/app/Cargo.toml".into(),
            config,
            features: Default::default(),
        }
    }
}
