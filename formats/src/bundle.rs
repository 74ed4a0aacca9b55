//! The web bundle's `manifest.json` (the format is documented in the project's
//! `docs/formats.md`): format name and version, the model's `config.json`, the stored float
//! type, and every file with its byte size, sha256 and (for weight shards) the tensors it holds.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `format` field of every manifest.
pub const BUNDLE_FORMAT: &str = "listconranker-bundle";
/// The newest manifest version this build reads; readers refuse newer versions. Float bundles
/// are written as version 1 (unchanged since), quantized ones as version 2.
pub const BUNDLE_VERSION: u32 = 2;
/// The version of bundles without quantized weights.
pub const FLOAT_BUNDLE_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Type of the stored weights: `f32` or `f16`, or `q8` / `q4` (quantized weights, the rest
    /// in f16; see `quantization`). Decoded to f32 on load.
    pub dtype: String,
    /// How a `q8` / `q4` bundle's weights were quantized (absent in float bundles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<Quantization>,
    /// The model's `config.json`, as it was.
    pub config: serde_json::Value,
    /// Path (inside the bundle) of the tokenizer, also listed in `files`.
    pub tokenizer: String,
    /// Every file of the bundle but the manifest, in load order.
    pub files: Vec<BundleFile>,
}

/// The stored type of a bundle's weights (the manifest's `dtype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleDtype {
    F32,
    F16,
    /// int8 in blocks along each row for the Linear weights and the word embeddings; the rest
    /// f16.
    Q8,
    /// 4-bit blocks for the encoder's FFN output weights; the rest as in `Q8`.
    Q4,
}

impl BundleDtype {
    pub fn name(self) -> &'static str {
        match self {
            BundleDtype::F32 => "f32",
            BundleDtype::F16 => "f16",
            BundleDtype::Q8 => "q8",
            BundleDtype::Q4 => "q4",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::F32, Self::F16, Self::Q8, Self::Q4]
            .into_iter()
            .find(|d| d.name() == name)
    }

    pub fn is_quantized(self) -> bool {
        matches!(self, BundleDtype::Q8 | BundleDtype::Q4)
    }
}

/// The manifest's `quantization` object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Quantization {
    /// `q8` or `q4`, the same as the manifest's `dtype`.
    pub scheme: String,
    /// Values per scale along a row of a quantized weight (a weight whose input size it does
    /// not divide has one scale per row).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_size: Option<usize>,
    /// The float type of the values the quantizer read (`f32`, or the dtype of the bundle that
    /// was re-converted).
    pub quantized_from: String,
    /// How the 4-bit weights were chosen when not by rounding to nearest (absent: every
    /// weight rounded to nearest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calibration: Option<Calibration>,
}

/// The manifest's `quantization.calibration` object: the 4-bit weights were quantized by GPTQ
/// against the Hessians of their inputs on calibration text (the stored format is the same).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// `gptq`.
    pub method: String,
    /// Canonical keys of the weights quantized this way.
    pub tensors: Vec<String>,
    /// Calibration texts and their tokens (real tokens, after truncation).
    pub texts: usize,
    pub tokens: usize,
    /// GPTQ's dampening, as a fraction of the Hessian's mean diagonal.
    pub damp: f64,
    /// Block scales tried per block (0: absmax / qmax only).
    pub scale_search: usize,
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
        manifest.bundle_dtype()?;
        manifest.check_quantization()?;
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

    /// The type the weights are stored in, as `convert` writes it (the browser passes the name
    /// on as `storedDtype`).
    pub fn bundle_dtype(&self) -> Result<BundleDtype> {
        BundleDtype::from_name(&self.dtype).ok_or_else(|| {
            Error::checkpoint(
                MANIFEST_FILE,
                format!(
                    "unknown dtype `{}` (expected f32, f16, q8 or q4)",
                    self.dtype
                ),
            )
        })
    }

    /// The block size of a quantized bundle.
    pub fn block_size(&self) -> Option<usize> {
        self.quantization.as_ref().and_then(|q| q.block_size)
    }

    /// A quantized `dtype` comes with a `quantization` of the same scheme and an even block size
    /// (q4 blocks split into whole bytes); a float one with none.
    fn check_quantization(&self) -> Result<()> {
        let bad = |why: String| Err(Error::checkpoint(MANIFEST_FILE, why));
        let dtype = self.bundle_dtype()?;
        match (&self.quantization, dtype.is_quantized()) {
            (None, false) => Ok(()),
            (Some(_), false) => bad(format!(
                "a `quantization` object in a {} bundle",
                self.dtype
            )),
            (None, true) => bad(format!(
                "dtype `{}` without a `quantization` object",
                self.dtype
            )),
            (Some(q), true) if q.scheme != self.dtype => bad(format!(
                "unknown quantization scheme `{}` for dtype `{}` (expected `{}`)",
                q.scheme, self.dtype, self.dtype
            )),
            (Some(q), true) => match q.block_size {
                Some(block) if block >= 2 && block % 2 == 0 => Ok(()),
                other => bad(format!(
                    "{} block size {other:?} (expected an even number of at least 2)",
                    self.dtype
                )),
            },
        }
    }

    /// Total bytes of every listed file (for progress reports).
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}
