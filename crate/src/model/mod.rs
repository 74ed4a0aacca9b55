//! The ListConRanker network: BERT encoder with mean pooling, `linear_in_embedding`, the
//! ListTransformer and the score heads. One forward path for every backend and dtype.

mod attention;
mod bert;
mod heads;
mod list_transformer;
mod params;

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::{Device, FloatDType, Int, Tensor};

pub use bert::BertEncoder;
pub use heads::ScoreHeads;
pub use list_transformer::{ListTransformer, list_attention_mask};
pub use params::Placement;

use crate::config::{BertConfig, ListConfig, ModelConfig};
use crate::error::{Error, Result};
use crate::weights::WeightMap;

#[derive(Module, Debug)]
pub struct ListConRankerModel {
    encoder: BertEncoder,
    projection: Linear,
    list: ListTransformer,
    heads: ScoreHeads,
}

/// Reads the list part's sizes off the checkpoint: D from `linear_in_embedding.weight`
/// [D, hidden], F from the first layer's `linear1.weight` [F, D], the layer count from the
/// `list_transformer.layers.N` keys present.
pub fn list_config(w: &WeightMap, bert: &BertConfig) -> Result<ListConfig> {
    let projection = w.shape("linear_in_embedding.weight")?;
    let dim = match projection {
        [d, h] if *h == bert.hidden_size && *d > 0 => *d,
        other => {
            return Err(Error::WrongShape {
                file: "linear_in_embedding.pt".into(),
                key: "weight".into(),
                found: other.to_vec(),
                expected: vec![0, bert.hidden_size],
            });
        }
    };
    let layers = (0..)
        .take_while(|i| w.contains(&format!("list_transformer.layers.{i}.linear1.weight")))
        .count();
    if layers == 0 {
        // Names the first key that the list part must have.
        w.shape("list_transformer.layers.0.linear1.weight")?;
    }
    let ffn = w.shape("list_transformer.layers.0.linear1.weight")?[0];
    let heads = bert.num_attention_heads;
    if dim % heads != 0 {
        return Err(Error::checkpoint(
            "linear_in_embedding.pt",
            format!("feature size {dim} is not a multiple of num_attention_heads {heads}"),
        ));
    }
    Ok(ListConfig {
        dim,
        ffn,
        layers,
        heads,
    })
}

impl ListConRankerModel {
    /// Builds the model from decoded weights, checking every key's shape and values.
    pub fn load(mut w: WeightMap, config: &ModelConfig, at: &Placement) -> Result<Self> {
        let (bert, list) = (&config.bert, &config.list);
        Ok(Self {
            encoder: BertEncoder::load(&mut w, at, bert)?,
            projection: at.linear(&mut w, "linear_in_embedding", bert.hidden_size, list.dim)?,
            list: ListTransformer::load(&mut w, at, list)?,
            heads: ScoreHeads::load(&mut w, at, list.dim)?,
        })
    }

    /// Features of single texts: [batch, seq] token ids and real-token mask → [batch, D].
    pub fn encode(&self, ids: Tensor<2, Int>, real: Tensor<2>, dtype: FloatDType) -> Tensor<2> {
        let pooled = self.encoder.forward_pooled(ids, real).cast(dtype);
        self.projection.forward(pooled)
    }

    /// Scores of padded lists: `features` [batch, len, D] (`[query, passages...]` per row),
    /// `lengths` real items per list (query included) → [batch, len - 1].
    pub fn score_lists(&self, features: Tensor<3>, lengths: &[usize]) -> Tensor<2> {
        let after = self.list.forward(features.clone(), lengths);
        self.heads.forward(features, after)
    }

    pub fn device(&self) -> Device {
        self.devices().into_iter().next().unwrap_or_default()
    }
}
