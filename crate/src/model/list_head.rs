//! Everything above the encoder: `linear_in_embedding` (hidden → D), the ListTransformer and the
//! score heads. Scoring runs it after the encoder; training's first stage trains it alone on the
//! frozen encoder's pooled features.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::Tensor;

use super::builder::ParamBuilder;
use super::heads::ScoreHeads;
use super::list_transformer::ListTransformer;
use crate::config::ModelConfig;
use crate::error::Result;

#[derive(Module, Debug)]
pub struct ListHead {
    projection: Linear,
    list: ListTransformer,
    heads: ScoreHeads,
}

impl ListHead {
    /// From `linear_in_embedding.*`, `query_embedding.*`, `list_transformer.layers.N.*` and
    /// `linear_score{1,2,3}.*`.
    pub fn load(p: ParamBuilder, config: &ModelConfig) -> Result<Self> {
        let (bert, list) = (&config.bert, &config.list);
        Ok(Self {
            projection: p
                .pp("linear_in_embedding")
                .linear(bert.hidden_size, list.dim)?,
            list: ListTransformer::load(p.clone(), list)?,
            heads: ScoreHeads::load(p, list.dim)?,
        })
    }

    /// Pooled encoder features [n, hidden] → list features [n, D].
    pub fn project(&self, pooled: Tensor<2>) -> Tensor<2> {
        self.projection.forward(pooled)
    }

    /// Scores of padded lists: `features` [batch, len, D] (`[query, passages...]` per row),
    /// `lengths` real items per list (query included) → [batch, len - 1].
    pub fn score_lists(&self, features: Tensor<3>, lengths: &[usize]) -> Tensor<2> {
        let after = self.list.forward(features.clone(), lengths);
        self.heads.forward(features, after)
    }
}
