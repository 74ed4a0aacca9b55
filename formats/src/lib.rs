//! ListConRanker's file-format readers, without burn: what turns untrusted bytes into values.
//! The model crate (`listconranker`) re-exports each module where it used to live; this crate
//! builds quickly, so its readers are fuzzed (`fuzz/`) without an instrumented build of burn.
//!
//! - [`error`]: the one `Error` type with stable codes;
//! - [`config`]: `config.json`;
//! - [`tensor`], [`safetensors_file`], [`pickle`] (feature `pickle`): checkpoint tensors
//!   decoded to f32;
//! - [`bundle`]: the web bundle's `manifest.json`;
//! - [`quantize`]: the q8 / q4 weight schemes of quantized bundles;
//! - [`gptq`]: GPTQ into those schemes' stored format (calibrated quantization);
//! - [`tokenize`]: the `tokenizers` wrapper;
//! - [`input`]: the CLI's JSON Lines lists;
//! - [`harness`]: the fuzz targets' entries, shared with the corpus replay test.

pub mod bundle;
pub mod config;
pub mod error;
pub mod gptq;
pub mod harness;
pub mod input;
#[cfg(feature = "pickle")]
pub mod pickle;
pub mod quantize;
pub mod safetensors_file;
pub mod tensor;
pub mod tokenize;

pub use error::{Error, Result};
