//! ListConRanker (ByteDance's listwise-encoded contrastive reranker) on burn: a BERT encoder
//! with mean pooling, a projection, the ListTransformer with ListAttention and three score
//! heads, giving the PyTorch model's scores on CPU (flex), native wgpu and WebGPU.
//!
//! ```no_run
//! use listconranker::{LoadOptions, Reranker};
//! let ranker = Reranker::load("model-dir", LoadOptions::default())?;
//! let scores = ranker.compute_score(&[vec!["query", "passage one", "passage two"]])?;
//! # Ok::<(), listconranker::Error>(())
//! ```
//!
//! Layers, each importing only those below it (`docs/architecture.md`):
//! shells (`bin/`, `wasm`, `eval`) → api (`reranker`, `convert`) → ranking (`rank`) →
//! encoding (`encode`) → model (`model`) → weights (`weights`) → base (`error`, `config`,
//! `tokenize`, `device`). `error`, `config` and `tokenize` (with the byte-level checkpoint
//! readers) live in the burn-free `listconranker-formats` crate and are re-exported here under
//! their old paths.

pub use listconranker_formats::config;
#[cfg(feature = "native")]
pub mod convert;
pub mod device;
pub mod encode;
pub use listconranker_formats::error;
#[cfg(feature = "native")]
pub mod eval;
#[cfg(feature = "hub")]
pub mod hub;
pub mod model;
pub mod rank;
mod reranker;
#[cfg(feature = "serve")]
pub mod serve;
pub use listconranker_formats::tokenize;
#[cfg(feature = "train")]
pub mod train;
#[cfg(all(feature = "wasm-bindings", target_arch = "wasm32"))]
mod wasm;
pub mod weights;
pub mod workload;

pub use device::{Backend, LoadOptions, Placement, Precision};
pub use error::{Error, Result};
#[cfg(feature = "native")]
pub use reranker::SentenceEncoder;
pub use reranker::{RankedDocument, Reranker};
