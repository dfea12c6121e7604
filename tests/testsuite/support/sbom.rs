//! The independent SBOM validators: spdx-tools' `pyspdxtools` for SPDX, cyclonedx-python-lib's
//! strict JSON schema validator for CycloneDX 1.5 (both from PyPI, installed by `.ci/install`).

use std::path::Path;
use std::process::Command;

use super::require_tool;
use super::service::text;

/// Fails unless spdx-tools finds `path` a valid SPDX document.
pub fn assert_valid_spdx(path: &Path) {
    let tool = require_tool("pyspdxtools", "pip install spdx-tools (.ci/install does)");
    let out = Command::new(tool)
        .arg("-i")
        .arg(path)
        .output()
        .expect("pyspdxtools runs");
    assert!(
        out.status.success(),
        "spdx-tools rejects {}:\n{}{}",
        path.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// Fails unless cyclonedx-python-lib finds `path` valid CycloneDX 1.5 JSON.
pub fn assert_valid_cyclonedx(path: &Path) {
    let script = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(open(sys.argv[1]).read())
if error is not None:
    print(error)
    sys.exit(1)
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "cyclonedx-python-lib rejects {} (pip install 'cyclonedx-python-lib[json-validation]'):\n{}{}",
        path.display(),
        text(&out.stdout),
        text(&out.stderr)
    );
}
