//! Cargo's feature selection (`-F`, `--all-features`, `--no-default-features`): what it
//! enables in a package, the flags every cargo invocation gets, and the checks cargo would make.

use std::collections::BTreeSet;

use cargo_metadata::{Package, TargetKind};

use crate::error::{Error, Result};

/// Cargo's feature selection, as given on the command line and as cargo reads it: passed to every
/// cargo invocation, recorded in the report and part of the image's build inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CargoFeatures {
    /// `-F/--features`, each value split at commas and spaces, as cargo does.
    pub features: Vec<String>,
    /// `--all-features`.
    pub all_features: bool,
    /// `--no-default-features`.
    pub no_default_features: bool,
}

impl CargoFeatures {
    /// Whether nothing beyond cargo's defaults is selected.
    pub fn is_default(&self) -> bool {
        self.features.is_empty() && !self.all_features && !self.no_default_features
    }

    /// The cargo command-line flags (none for the defaults).
    pub fn flags(&self) -> Vec<String> {
        let mut flags = Vec::new();
        if self.all_features {
            flags.push("--all-features".to_owned());
        }
        if self.no_default_features {
            flags.push("--no-default-features".to_owned());
        }
        if !self.features.is_empty() {
            flags.push("--features".to_owned());
            flags.push(self.features.join(","));
        }
        flags
    }

    /// The features of `package` this selection enables, with what they enable in turn
    /// (`[features]` of its manifest; `dep:` and `dependency/feature` entries are not features
    /// of the package itself).
    pub fn enabled(&self, package: &Package) -> BTreeSet<String> {
        let mut stack: Vec<String> = Vec::new();
        if self.all_features {
            stack.extend(package.features.keys().cloned());
        }
        if !self.no_default_features && package.features.contains_key("default") {
            stack.push("default".to_owned());
        }
        for f in &self.features {
            match f.split_once('/') {
                Some((pkg, feature)) if pkg == package.name.as_str() => {
                    stack.push(feature.to_owned())
                }
                Some(_) => {}
                None => stack.push(f.clone()),
            }
        }
        let mut enabled = BTreeSet::new();
        while let Some(f) = stack.pop() {
            if !enabled.insert(f.clone()) {
                continue;
            }
            for next in package.features.get(&f).into_iter().flatten() {
                if !next.starts_with("dep:") && !next.contains('/') {
                    stack.push(next.clone());
                }
            }
        }
        enabled
    }

    /// A usage error (exit 2) for a feature name cargo would not accept either.
    pub fn check_names(&self) -> Result<()> {
        let valid = |f: &str| {
            let mut chars = f.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || "_-+./".contains(c))
        };
        match self.features.iter().find(|f| !valid(f)) {
            None => Ok(()),
            Some(f) => Err(Error::usage(
                format!("`{}` is not a feature name", f.escape_debug()),
                Some(
                    "`--features` takes names of letters, digits, `_`, `-`, `+` and `.`, or `package/feature`"
                        .to_owned(),
                ),
            )),
        }
    }

    /// A configuration error (exit 2) when the binary `bin` of `package` has
    /// `required-features` this selection does not enable, naming the feature and the flag.
    pub fn check_required(&self, package: &Package, bin: &str) -> Result<()> {
        let Some(target) = package
            .targets
            .iter()
            .find(|t| t.kind.contains(&TargetKind::Bin) && t.name == bin)
        else {
            return Ok(());
        };
        let enabled = self.enabled(package);
        let missing: Vec<&String> = target
            .required_features
            .iter()
            .filter(|f| !f.contains('/') && !enabled.contains(f.as_str()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let names: Vec<String> = missing.iter().map(|f| format!("`{f}`")).collect();
        let list: Vec<&str> = missing.iter().map(|f| f.as_str()).collect();
        Err(Error::Usage {
            message: format!(
                "the binary `{bin}` of `{}` requires the feature{} {}, which {} not enabled",
                package.name,
                if missing.len() > 1 { "s" } else { "" },
                names.join(", "),
                if missing.len() > 1 { "are" } else { "is" },
            ),
            help: Some(format!(
                "pass `--features {}` (or `--all-features`); `required-features` of [[bin]] `{bin}` in {}",
                list.join(","),
                package.manifest_path
            )),
        })
    }
}
