//! The web bundle's `manifest.json` (the format is documented in the project's
//! `docs/formats.md`): format name and version, the model's `config.json`, the stored float
//! type, and every file with its byte size, sha256 and (for weight shards) the tensors it holds.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::tensor::StoredDType;

/// The `format` field of every manifest.
pub const BUNDLE_FORMAT: &str = "listconranker-bundle";
/// The manifest version this build writes and reads. Readers refuse newer versions.
pub const BUNDLE_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Float type of the stored weights: `f32` or `f16` (decoded to f32 on load).
    pub dtype: String,
    /// The model's `config.json`, as it was.
    pub config: serde_json::Value,
    /// Path (inside the bundle) of the tokenizer, also listed in `files`.
    pub tokenizer: String,
    /// Every file of the bundle but the manifest, in load order.
    pub files: Vec<BundleFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleFile {
    /// A plain file name, relative to the manifest.
    pub path: String,
    pub bytes: u64,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Canonical keys of the tensors in this shard (empty for non-weight files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tensors: Vec<String>,
}

impl Manifest {
    /// Parses and checks `manifest.json`: format, version, file names.
    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = serde_json::from_str(text)
            .map_err(|e| Error::checkpoint(MANIFEST_FILE, format!("not a bundle manifest: {e}")))?;
        if manifest.format != BUNDLE_FORMAT {
            return Err(Error::checkpoint(
                MANIFEST_FILE,
                format!(
                    "format is `{}`, expected `{BUNDLE_FORMAT}`",
                    manifest.format
                ),
            ));
        }
        if manifest.version == 0 || manifest.version > BUNDLE_VERSION {
            return Err(Error::checkpoint(
                MANIFEST_FILE,
                format!(
                    "bundle version {} is not supported (this build reads up to {BUNDLE_VERSION})",
                    manifest.version
                ),
            ));
        }
        manifest.stored_dtype()?;
        for file in &manifest.files {
            let plain = !file.path.is_empty()
                && !file.path.starts_with('.')
                && !file.path.contains(['/', '\\']);
            if !plain {
                return Err(Error::checkpoint(
                    MANIFEST_FILE,
                    format!("file path `{}` is not a plain file name", file.path),
                ));
            }
        }
        if !manifest.files.iter().any(|f| f.path == manifest.tokenizer) {
            return Err(Error::checkpoint(
                MANIFEST_FILE,
                format!(
                    "the tokenizer `{}` is not listed in files",
                    manifest.tokenizer
                ),
            ));
        }
        Ok(manifest)
    }

    /// The float type the weights are stored in: `f32` or `f16`, as `convert` writes it (the
    /// browser passes the name on as `storedDtype`).
    pub fn stored_dtype(&self) -> Result<StoredDType> {
        match self.dtype.as_str() {
            "f32" => Ok(StoredDType::F32),
            "f16" => Ok(StoredDType::F16),
            other => Err(Error::checkpoint(
                MANIFEST_FILE,
                format!("unknown dtype `{other}` (expected f32 or f16)"),
            )),
        }
    }

    /// Total bytes of every listed file (for progress reports).
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}
