//! Start-up check of the model folder against `models/manifest.sha256`
//! (compiled into the binary), so a server never runs on missing, truncated
//! or substituted weights.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The manifest that `models/fetch.sh` also checks: `<sha256>  <file>` lines.
pub const MANIFEST: &str = include_str!("../models/manifest.sha256");

#[derive(Debug, thiserror::Error)]
pub enum ModelFilesError {
    #[error("model file {path} is missing; run `models/fetch.sh` to download and verify the model")]
    Missing { path: PathBuf },
    #[error("model file {path} has sha256 {found}, expected {expected}; delete it and run `models/fetch.sh`")]
    Mismatch { path: PathBuf, expected: String, found: String },
    #[error("cannot read model file {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

/// `(file name, expected sha256)` pairs of the manifest.
pub fn expected() -> impl Iterator<Item = (&'static str, &'static str)> {
    MANIFEST
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(hash, name)| (name.trim(), hash))
}

/// Checks every file of the manifest under `dir`.
pub fn verify(dir: &Path) -> Result<(), ModelFilesError> {
    for (name, hash) in expected() {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(ModelFilesError::Missing { path });
        }
        let found = sha256_file(&path).map_err(|source| ModelFilesError::Io { path: path.clone(), source })?;
        if !found.eq_ignore_ascii_case(hash) {
            return Err(ModelFilesError::Mismatch { path, expected: hash.to_string(), found });
        }
    }
    Ok(())
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lists_weights_and_tokenizer() {
        let names: Vec<_> = expected().map(|(n, _)| n).collect();
        assert_eq!(names, ["model.safetensors", "tokenizer.json"]);
        assert!(expected().all(|(_, h)| h.len() == 64));
    }

    #[test]
    fn missing_and_mismatched_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(verify(dir.path()), Err(ModelFilesError::Missing { .. })));
        for (name, _) in expected() {
            std::fs::write(dir.path().join(name), b"not the model").unwrap();
        }
        let err = verify(dir.path()).unwrap_err();
        assert!(matches!(err, ModelFilesError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("fetch.sh"));
    }
}
