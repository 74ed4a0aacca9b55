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

pub mod config;
pub mod device;
mod encode;
pub mod error;
#[cfg(feature = "native")]
pub mod eval;
pub mod model;
pub mod rank;
mod reranker;
#[cfg(feature = "native")]
mod sentence_encoder;
pub mod tokenize;
#[cfg(all(feature = "wasm-bindings", target_arch = "wasm32"))]
mod wasm;
pub mod weights;
pub mod workload;

pub use device::{Backend, Precision};
pub use error::{Error, Result};
pub use reranker::{LoadOptions, RankedDocument, Reranker};
#[cfg(feature = "native")]
pub use sentence_encoder::SentenceEncoder;
