//! The web bundle: what browsers load instead of the checkpoint's PyTorch pickles.
//!
//! A bundle is a flat directory (or URL prefix) holding
//! - `manifest.json`: format name and version, the model's `config.json`, the stored type
//!   (`f32`, `f16`, or quantized `q8` / `q4`, see `quantization.rs`), and every file with its byte size, sha256 and (for weight shards) the tensors it holds;
//! - safetensors shards under canonical key names: `embeddings.safetensors`, groups of encoder
//!   layers `encoder-LL-MM.safetensors`, and `head.safetensors` (projection, list transformer,
//!   score heads);
//! - `tokenizer.json` (built from `vocab.txt` when the source has no `tokenizer.json`).
//!
//! The reader ([`BundleReader`], `reader.rs`) takes files one at a time as bytes, so the same
//! code serves a directory on disk and `fetch` in a browser. The writer (`writer.rs`, behind
//! `listconranker convert`) is native only. The format is documented in `docs/formats.md`.

#[cfg(feature = "native")]
mod quantization;
mod reader;
#[cfg(feature = "native")]
mod writer;

pub use listconranker_formats::bundle::{
    BUNDLE_FORMAT, BUNDLE_VERSION, BundleDtype, BundleFile, Calibration, MANIFEST_FILE, Manifest,
    Quantization,
};
#[cfg(feature = "native")]
pub use quantization::Storage;
pub use reader::{BundleParts, BundleReader, PlanCheck};
#[cfg(feature = "native")]
pub use reader::{is_bundle, read_bundle_dir, sha256_hex};
#[cfg(feature = "native")]
pub use writer::{
    BundleSource, CalibratedWeights, ConvertOptions, check_convert_request, refuse_requantizing,
    write_bundle,
};
