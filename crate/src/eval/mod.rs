//! Evaluation on C-MTEB reranking data sets (the model card's table): reading the samples
//! (JSON Lines or Parquet), scoring them with or without iterative inference, and MAP and
//! MRR@1/5/10 in MTEB 1.x or 2.x tie semantics.

mod data;
mod json_lines;
pub mod metrics;
#[cfg(feature = "parquet")]
mod parquet_file;
pub mod published;
pub mod report;
mod sample;
mod scoring;

pub use data::{DataSet, read_data_set};
pub use json_lines::sample_from_json;
pub use metrics::{MRR_CUTOFFS, MetricsMean, RankingMetrics, Semantics};
pub use published::{PUBLISHED, PublishedSet, published_for};
pub use report::{EvalReport, EvalResult, card_table, result_table};
pub use sample::Sample;
pub use scoring::{Mode, mean_metrics, score_samples};
