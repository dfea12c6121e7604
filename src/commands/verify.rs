//! `verify IMAGE [--key cosign.pub]`: the image's signature, provenance and SBOMs, read from its
//! registry and checked with the public key alone (see [`crate::supply_chain::verify`]).

use camino::Utf8PathBuf;
use clap::Args;

use crate::error::{Error, Result};
use crate::image::base::split_reference;
use crate::pipeline::promote::connect_registries;
use crate::supply_chain::sign::PublicKey;
use crate::supply_chain::verify;
use crate::ui::{MessageFormat, Shell};

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Image in its registry, e.g. `ghcr.io/acme/orders:1.4.2` or `…@sha256:…`
    pub image: String,
    /// The public key (`cosign.pub`) the signatures must verify with; without it only what the
    /// attestations say is checked
    #[arg(long, value_name = "PATH")]
    pub key: Option<Utf8PathBuf>,
}

/// Checks every attachment; exit 1 naming each check that failed.
pub fn run(args: &VerifyArgs, shell: &Shell) -> Result<()> {
    super::block_on(async {
        let key = args.key.as_deref().map(PublicKey::load).transpose()?;
        let (name, reference) = split_reference(&args.image);
        let registries = connect_registries(&[name]).await?;
        let (target, client) = registries.get(name, "verify")?;
        let (manifest, config) = client
            .labels(&target.repository, reference)
            .await?
            .ok_or_else(|| {
                Error::step_with_help(
                    "verify",
                    format!("`{}` is not in registry {}", args.image, target.host),
                    "name a pushed tag or digest",
                )
            })?;
        let verification = verify::verify(
            client,
            &target.repository,
            &args.image,
            &manifest.digest,
            &config.labels,
            key.as_ref(),
        )
        .await?;
        match shell.format() {
            MessageFormat::Json => shell.stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&verification).expect("verifications serialize")
            ))?,
            MessageFormat::Human => shell.stdout(&verification.human())?,
        }
        if key.is_none() {
            shell.warn("no --key: signatures were not checked; pass the signer's cosign.pub");
        }
        let failed: Vec<&str> = verification
            .checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect();
        if failed.is_empty() {
            shell.status("Verified", format!("{} ({})", args.image, manifest.digest));
            Ok(())
        } else {
            Err(Error::step_with_help(
                "verify",
                format!("{}: {} failed", args.image, failed.join(", ")),
                "do not deploy this image: it is not what the release signed, or was changed since",
            ))
        }
    })
}
