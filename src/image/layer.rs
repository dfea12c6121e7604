//! The one layer of an assembled image: a tar whose bytes depend only on the files and the
//! commit time (entries sorted, parents first, owner root, fixed modes, every mtime the commit
//! time, no user or group names), and its gzip, deterministic too (no name or time in the
//! header, one fixed level: the bytes change only with the `flate2` version in Cargo.lock).

use std::collections::BTreeMap;
use std::io::Write;

use flate2::{Compression, GzBuilder};

use super::Blob;

/// One file of a layer.
#[derive(Debug, Clone)]
pub struct LayerFile {
    /// Absolute path in the image (`/usr/local/bin/orders`).
    pub path: String,
    /// Its bytes.
    pub data: Vec<u8>,
    /// Mode bits (`0o755`).
    pub mode: u32,
}

/// A layer: the tar (whose digest is the config's diff ID) and its gzip (the pushed blob).
#[derive(Debug, Clone)]
pub struct Layer {
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// The gzip-compressed tar.
    pub blob: Blob,
}

/// Writes `files` as a layer with every mtime `mtime` (seconds since the epoch).
pub fn layer(files: &[LayerFile], mtime: u64) -> std::io::Result<Layer> {
    // Path (without the leading `/`) -> the file, or None for a directory.
    let mut entries: BTreeMap<String, Option<&LayerFile>> = BTreeMap::new();
    for file in files {
        let path = file.path.trim_start_matches('/');
        let mut parent = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            parent.push_str(part);
            if parent.len() < path.len() {
                entries.entry(format!("{parent}/")).or_insert(None);
                parent.push('/');
            }
        }
        entries.insert(path.to_owned(), Some(file));
    }
    let mut tar = tar::Builder::new(Vec::new());
    for (path, file) in &entries {
        let mut header = tar::Header::new_ustar();
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(mtime);
        match file {
            Some(file) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(file.mode);
                header.set_size(file.data.len() as u64);
                tar.append_data(&mut header, path, file.data.as_slice())?;
            }
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(0o755);
                header.set_size(0);
                tar.append_data(&mut header, path, std::io::empty())?;
            }
        }
    }
    let tar = tar.into_inner()?;
    let diff_id = super::digest(&tar);
    let mut gz = GzBuilder::new()
        .mtime(0)
        .write(Vec::with_capacity(tar.len() / 2), Compression::new(6));
    gz.write_all(&tar)?;
    let compressed = gz.finish()?;
    Ok(Layer {
        diff_id,
        blob: Blob::new(super::LAYER_MEDIA_TYPE, compressed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(data: &[u8]) -> Vec<LayerFile> {
        vec![
            LayerFile {
                path: "/usr/local/bin/app".into(),
                data: data.to_vec(),
                mode: 0o755,
            },
            LayerFile {
                path: "/etc/app.toml".into(),
                data: b"x = 1\n".to_vec(),
                mode: 0o644,
            },
        ]
    }

    #[test]
    fn a_layer_depends_only_on_its_files_and_the_commit_time() {
        let a = layer(&files(b"binary"), 1_700_000_000).unwrap();
        let b = layer(&files(b"binary"), 1_700_000_000).unwrap();
        assert_eq!((&a.diff_id, &a.blob.digest), (&b.diff_id, &b.blob.digest));
        assert_ne!(
            layer(&files(b"binary"), 1_700_000_001).unwrap().diff_id,
            a.diff_id
        );
        assert_ne!(
            layer(&files(b"other"), 1_700_000_000).unwrap().diff_id,
            a.diff_id
        );
    }

    #[test]
    fn entries_are_sorted_parents_first_owned_by_root_at_the_commit_time() {
        let layer = layer(&files(b"binary"), 1_700_000_000).unwrap();
        let tar = flate2::read::GzDecoder::new(layer.blob.data.as_slice());
        let mut archive = tar::Archive::new(tar);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.mtime().unwrap(), 1_700_000_000);
            assert_eq!(h.username().unwrap(), Some(""));
            seen.push((
                entry.path().unwrap().display().to_string(),
                h.mode().unwrap(),
            ));
        }
        assert_eq!(
            seen,
            [
                ("etc/".to_owned(), 0o755),
                ("etc/app.toml".to_owned(), 0o644),
                ("usr/".to_owned(), 0o755),
                ("usr/local/".to_owned(), 0o755),
                ("usr/local/bin/".to_owned(), 0o755),
                ("usr/local/bin/app".to_owned(), 0o755),
            ]
        );
    }
}
