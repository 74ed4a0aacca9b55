//! The ListTransformer: a query tag embedding, then PyTorch `nn.TransformerEncoderLayer`s
//! (post-norm, GELU, packed q/k/v projection) under the two ListAttention masks.

use burn::module::Module;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::module::embedding;
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::attention::multi_head_attention;
use super::builder::ParamBuilder;
use super::cpu::{Then, linear, linear_plus};
use crate::config::{LIST_LAYER_NORM_EPS, ListConfig};
use crate::error::Result;

/// Adds a learned tag (1 for the query at position 0, 0 elsewhere, pads included), then
/// LayerNorm.
#[derive(Module, Debug)]
pub struct QueryEmbedding {
    tags: Embedding,
    norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct ListLayer {
    /// Packed q, k, v projection (`in_proj_weight` rows are q, then k, then v).
    in_proj: Linear,
    out_proj: Linear,
    linear1: Linear,
    linear2: Linear,
    norm1: LayerNorm,
    norm2: LayerNorm,
    heads: usize,
}

#[derive(Module, Debug)]
pub struct ListTransformer {
    query_embedding: QueryEmbedding,
    layers: Vec<ListLayer>,
}

/// The padding of a batch of lists: [batch, len], true on the items past each list's real
/// length. With [`multi_head_attention`]'s query-row rule this is ListAttention: the query (row 0)
/// sees only itself, every other item sees the real items of its list, padding is never seen.
pub fn list_padding(lengths: &[usize], len: usize) -> TensorData {
    let padding = lengths
        .iter()
        .flat_map(|&real| (0..len).map(move |item| item >= real))
        .collect::<Vec<_>>();
    TensorData::new(padding, [lengths.len(), len])
}

impl QueryEmbedding {
    /// From `query_embedding.*`.
    fn load(p: ParamBuilder, dim: usize) -> Result<Self> {
        Ok(Self {
            tags: p.pp("query_embedding").embedding(2, dim)?,
            norm: p.pp("layerNorm").layer_norm(dim, LIST_LAYER_NORM_EPS)?,
        })
    }

    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, len, _] = x.dims();
        let mut tags = vec![0i64; batch * len];
        tags.iter_mut().step_by(len).for_each(|t| *t = 1);
        let tags = Tensor::<2, Int>::from_data(TensorData::new(tags, [batch, len]), &x.device());
        self.norm
            .forward(x + embedding(self.tags.weight.val(), tags))
    }
}

impl ListLayer {
    /// From `list_transformer.layers.N.*` (a PyTorch `nn.TransformerEncoderLayer`).
    fn load(p: ParamBuilder, c: &ListConfig) -> Result<Self> {
        let (d, f) = (c.dim, c.ffn);
        let eps = LIST_LAYER_NORM_EPS;
        let attention = p.pp("self_attn");
        Ok(Self {
            in_proj: attention.linear_from("in_proj_weight", "in_proj_bias", d, 3 * d)?,
            out_proj: attention.pp("out_proj").linear(d, d)?,
            linear1: p.pp("linear1").linear(d, f)?,
            linear2: p.pp("linear2").linear(f, d)?,
            norm1: p.pp("norm1").layer_norm(d, eps)?,
            norm2: p.pp("norm2").layer_norm(d, eps)?,
            heads: c.heads,
        })
    }

    fn forward(&self, x: Tensor<3>, padding: Tensor<2, Bool>) -> Tensor<3> {
        let [_, _, d] = x.dims();
        let qkv = linear(&self.in_proj, x.clone(), Then::Nothing);
        let q = qkv.clone().narrow(2, 0, d);
        let k = qkv.clone().narrow(2, d, d);
        let v = qkv.narrow(2, 2 * d, d);
        let context = multi_head_attention(q, k, v, padding, self.heads, true);
        let x = self.norm1.forward(linear_plus(&self.out_proj, context, x));
        let inner = linear(&self.linear1, x.clone(), Then::Gelu);
        self.norm2.forward(linear_plus(&self.linear2, inner, x))
    }
}

impl ListTransformer {
    /// From `query_embedding.*` and `list_transformer.layers.N.*` (the original keeps the query
    /// tag outside the transformer).
    pub fn load(p: ParamBuilder, c: &ListConfig) -> Result<Self> {
        let layers = p.pp("list_transformer").pp("layers");
        Ok(Self {
            query_embedding: QueryEmbedding::load(p.pp("query_embedding"), c.dim)?,
            layers: (0..c.layers)
                .map(|i| ListLayer::load(layers.pp(i), c))
                .collect::<Result<_>>()?,
        })
    }

    /// `x`: [batch, len, D] padded lists `[query, passages...]`; `lengths`: real items per list
    /// (query included). Returns the list-encoded features, same shape.
    pub fn forward(&self, x: Tensor<3>, lengths: &[usize]) -> Tensor<3> {
        let [_, len, _] = x.dims();
        let padding = Tensor::<2, Bool>::from_data(list_padding(lengths, len), &x.device());
        let mut x = self.query_embedding.forward(x);
        for layer in &self.layers {
            x = layer.forward(x, padding.clone());
        }
        x
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_marks_items_past_each_lists_length() {
        let padding: Vec<bool> = list_padding(&[3, 2], 3).try_to_vec().unwrap();
        assert_eq!(padding, [false, false, false, false, false, true]);
    }
}
