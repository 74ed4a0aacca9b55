//! The ListConRanker network: BERT encoder with mean pooling, `linear_in_embedding`, the
//! ListTransformer and the score heads. One forward path for every backend and dtype.
//!
//! The compute boundary: [`ListConRankerModel::encode`] turns one padded [`TokenBatch`] into
//! features, [`ListConRankerModel::score_lists`] turns lists of features into scores. Tokenizing,
//! batching and readback happen above (`encode`, `reranker`).

mod attention;
mod bert;
mod builder;
mod cpu;
mod heads;
mod list_head;
mod list_transformer;

use std::cell::RefCell;

use burn::module::Module;
use burn::tensor::{FloatDType, Int, Tensor};

pub use bert::BertEncoder;
pub use builder::{CheckpointName, ParamBuilder, ParamNames};
pub use list_head::ListHead;

use crate::config::{BertConfig, ListConfig, ModelConfig};
use crate::device::Placement;
use crate::error::{Error, Result};
use crate::weights::WeightMap;

/// One padded encoder batch.
pub struct TokenBatch {
    /// Token ids, [batch, seq]; padding holds 0.
    pub ids: Tensor<2, Int>,
    /// 1.0 on real tokens, 0.0 on padding, [batch, seq], f32.
    pub real: Tensor<2>,
}

#[derive(Module, Debug)]
pub struct ListConRankerModel {
    encoder: BertEncoder,
    head: ListHead,
    /// The float type of the parameters: pooled features are cast to it.
    #[module(skip)]
    dtype: FloatDType,
}

/// Reads the list part's sizes off the checkpoint: D from `linear_in_embedding.weight`
/// [D, hidden], F from the first layer's `linear1.weight` [F, D], the layer count from the
/// `list_transformer.layers.N` keys present (contiguous from 0; a stray index is left unused
/// and reported by the load).
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
    let layers = list_layer_count(w);
    // Only F is read here; the layer's loader checks the whole shape and names its file.
    let ffn = match w.shape("list_transformer.layers.0.linear1.weight")? {
        [f, _] if *f > 0 => *f,
        _ => 1,
    };
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

/// The list part's sizes for a plan (see [`ListConRankerModel::check_plan`]): only the layer
/// count shapes the key names; the widths are any that build.
fn planned_list_config(plan: &WeightMap, bert: &BertConfig) -> ListConfig {
    let heads = bert.num_attention_heads.max(1);
    ListConfig {
        dim: heads,
        ffn: 1,
        layers: list_layer_count(plan),
        heads,
    }
}

/// The `list_transformer.layers.N` present, contiguous from 0 (a stray index is left unused).
fn list_layer_count(w: &WeightMap) -> usize {
    (0..)
        .take_while(|i| w.contains(&format!("list_transformer.layers.{i}.linear1.weight")))
        .count()
}

impl ListConRankerModel {
    /// Checks a checkpoint's keys ([`WeightMap::plan`]: read off its headers, no tensor
    /// decoded) against the model `bert` and the list layers present describe, by running the
    /// loaders over it: a key no module takes (a layer past `num_hidden_layers`, a misnumbered
    /// list layer, a foreign tensor) or one a module misses is an error before any value is
    /// decoded, so an unused tensor costs no memory however large it claims to be.
    pub fn check_plan(plan: WeightMap, bert: &BertConfig) -> Result<()> {
        debug_assert!(plan.is_plan());
        let config = ModelConfig {
            bert: bert.clone(),
            list: planned_list_config(&plan, bert),
        };
        // A plan's parameters are one-element placeholders: the CPU device serves any backend.
        Self::load(plan, &config, &Placement::host_f32()).map(drop)
    }

    /// Builds the model from decoded weights, checking every key's shape and values; a tensor
    /// of the checkpoint that no module takes is an error (a config that disagrees with the
    /// weights, a renamed layer), never silently dropped.
    pub fn load(weights: WeightMap, config: &ModelConfig, at: &Placement) -> Result<Self> {
        Self::load_named(weights, config, at).map(|(model, _)| model)
    }

    /// [`Self::load`], also giving every parameter's checkpoint name (to write a trained model
    /// back in the checkpoint's layout, or to compare its gradients with PyTorch's).
    pub fn load_named(
        weights: WeightMap,
        config: &ModelConfig,
        at: &Placement,
    ) -> Result<(Self, ParamNames)> {
        let weights = RefCell::new(weights);
        let names = RefCell::new(ParamNames::new());
        let p = ParamBuilder::new(&weights, at).recording_names(&names);
        let model = Self {
            encoder: BertEncoder::load(p.clone(), &config.bert)?,
            head: ListHead::load(p, config)?,
            dtype: at.dtype(),
        };
        weights.into_inner().check_all_used()?;
        Ok((model, names.into_inner()))
    }

    /// The encoder and the list head, apart (training moves and trains them separately).
    pub fn into_parts(self) -> (BertEncoder, ListHead) {
        (self.encoder, self.head)
    }

    /// Features of single texts: one padded batch → [batch, D] in the model's float type.
    pub fn encode(&self, batch: TokenBatch) -> Tensor<2> {
        let pooled = self
            .encoder
            .forward_pooled(batch.ids, batch.real)
            .cast(self.dtype);
        self.head.project(pooled)
    }

    /// Scores of padded lists: `features` [batch, len, D] (`[query, passages...]` per row),
    /// `lengths` real items per list (query included) → [batch, len - 1].
    pub fn score_lists(&self, features: Tensor<3>, lengths: &[usize]) -> Tensor<2> {
        self.head.score_lists(features, lengths)
    }
}
