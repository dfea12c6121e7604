//! Pushing what the tool assembled itself (every byte known locally): blobs and manifests.
//!
//! A blob is pushed as the Distribution spec has it: `HEAD` first (a re-push uploads nothing),
//! then a cross-repository mount from each repository of the same registry that may hold it,
//! else an upload: `POST …/blobs/uploads/`, then one `PUT <Location>?digest=…` with the whole
//! blob, or `PATCH`es of [`DEFAULT_CHUNK_SIZE`] chunks (`Content-Range`) and an empty closing
//! `PUT` for a larger blob (registries such as ECR and GCR want large layers chunked). Every
//! digest the registry answers must be the one computed locally.

use bytes::Bytes;
use http::{Method, StatusCode};

use super::{RegistryClient, fail, sha256_digest};
use crate::error::Result;
use crate::http::Response;

/// Blobs larger than this are uploaded in chunks of this size.
pub const DEFAULT_CHUNK_SIZE: usize = 8 * 1024 * 1024;

/// How a blob came to be in the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobPush {
    /// The repository had it already: nothing was sent.
    Present,
    /// The registry linked it from another of its repositories: nothing was sent.
    Mounted {
        /// The repository it was mounted from.
        from: String,
    },
    /// It was uploaded.
    Uploaded {
        /// How many bytes were sent.
        bytes: u64,
    },
}

impl RegistryClient {
    /// Uploads blobs larger than `n` bytes in chunks of `n` (at least 1), instead of
    /// [`DEFAULT_CHUNK_SIZE`].
    pub fn with_chunk_size(mut self, n: usize) -> Self {
        self.chunk_size = n.max(1);
        self
    }

    /// Whether `repository` has the blob `digest` (`HEAD /v2/<repository>/blobs/<digest>`).
    pub async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        self.head_blob(repository, digest, &self.read_scope(repository))
            .await
    }

    /// The blob `digest` of `repository`, its content checked against the digest; `None` when
    /// the registry does not have it.
    pub async fn blob(&self, repository: &str, digest: &str) -> Result<Option<Bytes>> {
        let what = format!("reading the blob {digest} of `{repository}`");
        self.fetch_blob(repository, digest, "blob", &what).await
    }

    /// Makes `blob` (whose digest is `digest`) part of `repository`: nothing is sent when it is
    /// there already or the registry mounts it from one of `mount_from` (repositories of the
    /// same registry, tried in order); else it is uploaded, in chunks when it is larger than the
    /// chunk size.
    pub async fn push_blob(
        &self,
        repository: &str,
        digest: &str,
        blob: Bytes,
        mount_from: &[&str],
    ) -> Result<BlobPush> {
        let scope = push_scope(repository);
        if self.head_blob(repository, digest, &scope).await? {
            return Ok(BlobPush::Present);
        }
        let candidates: Vec<&str> = mount_from
            .iter()
            .copied()
            .filter(|from| *from != repository)
            .collect();
        // A refused mount may already have opened an upload session; the last one is used.
        let mut session = None;
        for (i, from) in candidates.iter().enumerate() {
            match self.mount(repository, digest, from).await? {
                Mount::Mounted => {
                    return Ok(BlobPush::Mounted {
                        from: (*from).to_owned(),
                    });
                }
                Mount::Refused(Some(location)) if i + 1 == candidates.len() => {
                    session = Some(location);
                }
                Mount::Refused(Some(location)) => self.cancel(&location, &scope).await,
                Mount::Refused(None) => {}
            }
        }
        // Checked only now that it is to be sent (a re-push hashes nothing): a wrong digest
        // is a bug here, better said before the bytes go than as the registry's refusal.
        let computed = sha256_digest(&blob);
        if computed != digest {
            if let Some(location) = &session {
                self.cancel(location, &scope).await;
            }
            return Err(fail(
                &self.host,
                "upload",
                format!("the blob to push as {digest} to `{repository}` is {computed}"),
                "this is a bug in the image assembly: the digest must be the blob's sha256",
            ));
        }
        let mut location = match session {
            Some(l) => l,
            None => self.start_upload(repository, &scope).await?,
        };
        let uploaded = self
            .upload(repository, digest, &blob, &mut location, &scope)
            .await;
        if uploaded.is_err() {
            // Leave no half-written upload behind (best effort; registries expire them too).
            self.cancel(&location, &scope).await;
        }
        uploaded?;
        Ok(BlobPush::Uploaded {
            bytes: blob.len() as u64,
        })
    }

    /// Puts the manifest `bytes` (of `media_type`) as `repository:reference` (a tag or its
    /// digest); every blob it names must be in the repository. Returns the digest the registry
    /// answers, which must be the bytes' sha256.
    pub async fn put_manifest_bytes(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String> {
        let digest = sha256_digest(&bytes);
        let what = format!("putting {digest} as `{repository}:{reference}`");
        if reference.starts_with("sha256:") && reference != digest {
            return Err(fail(
                &self.host,
                "put",
                format!("{what}: the manifest's content is not {reference}"),
                "this is a bug in the image assembly: a digest reference must be the manifest's sha256",
            ));
        }
        let path = format!("/v2/{repository}/manifests/{reference}");
        let response = self
            .send(
                Method::PUT,
                &path,
                &[("Content-Type", media_type)],
                bytes,
                &push_scope(repository),
            )
            .await?;
        if response.status != StatusCode::CREATED && response.status != StatusCode::OK {
            return Err(self.unexpected("put", &what, &response));
        }
        let answered = response
            .header("docker-content-digest")
            .map(str::to_owned)
            .unwrap_or_else(|| digest.clone());
        if answered != digest {
            return Err(fail(
                &self.host,
                "put",
                format!("{what}: the registry stored it as {answered}"),
                "the registry rewrote the manifest; do not trust this tag",
            ));
        }
        Ok(answered)
    }

    async fn head_blob(&self, repository: &str, digest: &str, scope: &str) -> Result<bool> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .send(Method::HEAD, &path, &[], Bytes::new(), scope)
            .await?;
        match response.status.as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(self.unexpected(
                "blob",
                &format!("looking for the blob {digest} in `{repository}`"),
                &response,
            )),
        }
    }

    /// `GET` of a blob (redirects to blob storage followed), checked against `digest`.
    pub(super) async fn fetch_blob(
        &self,
        repository: &str,
        digest: &str,
        step: &str,
        what: &str,
    ) -> Result<Option<Bytes>> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let response = self
            .send(
                Method::GET,
                &path,
                &[],
                Bytes::new(),
                &self.read_scope(repository),
            )
            .await?;
        match response.status.as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.unexpected(step, what, &response)),
        }
        if sha256_digest(&response.body) != digest {
            return Err(fail(
                &self.host,
                step,
                format!("{what}: its content does not hash to its digest"),
                "the registry (or something between) altered the blob",
            ));
        }
        Ok(Some(response.body))
    }

    /// Asks the registry to link `digest` from `from` into `repository`.
    async fn mount(&self, repository: &str, digest: &str, from: &str) -> Result<Mount> {
        // One token for pushing here and pulling the source.
        let scope = format!("{} repository:{from}:pull", push_scope(repository));
        let path = format!("/v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
        let response = self
            .send(
                Method::POST,
                &path,
                &[("Content-Length", "0")],
                Bytes::new(),
                &scope,
            )
            .await?;
        match response.status.as_u16() {
            201 => {
                self.check_digest(
                    "mount",
                    digest,
                    &format!("mounting {digest} from `{from}` into `{repository}`"),
                    &response,
                )?;
                Ok(Mount::Mounted)
            }
            // The registry does not have it there (or will not say): it opened an upload.
            202 => Ok(Mount::Refused(
                response
                    .header("location")
                    .map(|l| upload_url(repository, l)),
            )),
            // No pull access to the source, or no mounting here: upload instead.
            400..=499 => Ok(Mount::Refused(None)),
            _ => Err(self.unexpected(
                "mount",
                &format!("mounting {digest} from `{from}` into `{repository}`"),
                &response,
            )),
        }
    }

    /// Opens an upload session; returns its URL.
    async fn start_upload(&self, repository: &str, scope: &str) -> Result<String> {
        let what = format!("starting an upload to `{repository}`");
        let response = self
            .send(
                Method::POST,
                &format!("/v2/{repository}/blobs/uploads/"),
                &[("Content-Length", "0")],
                Bytes::new(),
                scope,
            )
            .await?;
        if response.status != StatusCode::ACCEPTED {
            return Err(self.unexpected("upload", &what, &response));
        }
        self.next_location(repository, &what, &response)
    }

    /// Sends `blob` to the session at `location` (kept up to date: each answer names the next)
    /// and closes it with its digest.
    async fn upload(
        &self,
        repository: &str,
        digest: &str,
        blob: &Bytes,
        location: &mut String,
        scope: &str,
    ) -> Result<()> {
        let what = format!(
            "uploading {digest} ({} bytes) to `{repository}`",
            blob.len()
        );
        let last = if blob.len() > self.chunk_size {
            let mut offset = 0;
            while offset < blob.len() {
                let end = (offset + self.chunk_size).min(blob.len());
                let range = format!("{offset}-{}", end - 1);
                let length = (end - offset).to_string();
                let response = self
                    .send(
                        Method::PATCH,
                        location,
                        &[
                            ("Content-Type", "application/octet-stream"),
                            ("Content-Range", &range),
                            ("Content-Length", &length),
                        ],
                        blob.slice(offset..end),
                        scope,
                    )
                    .await?;
                if response.status != StatusCode::ACCEPTED {
                    return Err(self.unexpected(
                        "upload",
                        &format!("{what}: sending bytes {range}"),
                        &response,
                    ));
                }
                // The registry says how much it holds; anything else than all sent so far
                // would make a corrupt blob (which the closing digest check would refuse).
                if let Some(held) = response.header("range")
                    && held != format!("0-{}", end - 1)
                    && held != format!("bytes=0-{}", end - 1)
                {
                    return Err(fail(
                        &self.host,
                        "upload",
                        format!("{what}: after bytes {range} the registry holds {held}"),
                        "check the registry's storage and logs, then push again",
                    ));
                }
                *location = self.next_location(repository, &what, &response)?;
                offset = end;
            }
            Bytes::new()
        } else {
            blob.clone()
        };
        let length = last.len().to_string();
        let response = self
            .send(
                Method::PUT,
                &with_query(location, &format!("digest={digest}")),
                &[
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Length", &length),
                ],
                last,
                scope,
            )
            .await?;
        if response.status != StatusCode::CREATED {
            return Err(self.unexpected("upload", &what, &response));
        }
        self.check_digest("upload", digest, &what, &response)
    }

    /// Ends an upload session without a blob (best effort).
    async fn cancel(&self, location: &str, scope: &str) {
        let _ = self
            .send(Method::DELETE, location, &[], Bytes::new(), scope)
            .await;
    }

    /// The session URL an upload answer names (`Location`, required by the spec).
    fn next_location(&self, repository: &str, what: &str, response: &Response) -> Result<String> {
        match response.header("location") {
            Some(l) => Ok(upload_url(repository, l)),
            None => Err(fail(
                &self.host,
                "upload",
                format!(
                    "{what}: HTTP {} without a `Location` for the upload",
                    response.status.as_u16()
                ),
                "check that this is a Docker/OCI registry",
            )),
        }
    }

    /// A `Docker-Content-Digest` answered must be `digest`.
    fn check_digest(
        &self,
        step: &str,
        digest: &str,
        what: &str,
        response: &Response,
    ) -> Result<()> {
        match response.header("docker-content-digest") {
            Some(answered) if answered != digest => Err(fail(
                &self.host,
                step,
                format!("{what}: the registry stored it as {answered}"),
                "the registry (or something between) altered the blob; push again and check the registry",
            )),
            _ => Ok(()),
        }
    }
}

/// What a mount request came to.
enum Mount {
    Mounted,
    /// Not mounted; the upload session the registry opened instead, if it did.
    Refused(Option<String>),
}

/// The scope of everything a push does in `repository`.
fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

/// A `Location` of an upload as a URL or a path `send` takes: absolute URLs as they are,
/// absolute paths on the registry, relative references against the uploads path.
fn upload_url(repository: &str, location: &str) -> String {
    if location.starts_with("http://")
        || location.starts_with("https://")
        || location.starts_with('/')
    {
        location.to_owned()
    } else {
        format!("/v2/{repository}/blobs/uploads/{location}")
    }
}

/// `url` with `pair` added to its query (which it may have already, e.g. `?_state=…`).
fn with_query(url: &str, pair: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{pair}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_joins_a_query_the_location_may_have() {
        assert_eq!(
            with_query("/v2/a/blobs/uploads/u1?_state=xyz", "digest=sha256:00"),
            "/v2/a/blobs/uploads/u1?_state=xyz&digest=sha256:00"
        );
        assert_eq!(
            with_query(
                "https://r.example/v2/a/blobs/uploads/u1",
                "digest=sha256:00"
            ),
            "https://r.example/v2/a/blobs/uploads/u1?digest=sha256:00"
        );
    }

    #[test]
    fn upload_locations_may_be_absolute_or_relative() {
        let abs = "https://r.example/v2/a/blobs/uploads/u1?_state=s";
        assert_eq!(upload_url("a", abs), abs);
        assert_eq!(
            upload_url("a", "/v2/a/blobs/uploads/u1"),
            "/v2/a/blobs/uploads/u1"
        );
        assert_eq!(
            upload_url("a", "u1?_state=s"),
            "/v2/a/blobs/uploads/u1?_state=s"
        );
    }

    #[test]
    fn push_scopes_pull_and_push() {
        assert_eq!(
            push_scope("acme/orders"),
            "repository:acme/orders:pull,push"
        );
    }
}
