//! The HuggingFace `BertModel` encoder (post-LayerNorm, absolute positions, erf GELU) followed by
//! mean pooling over real tokens, as ListConRanker uses it: every text is encoded on its own.

use burn::module::Module;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::activation::gelu;
use burn::tensor::module::embedding;
use burn::tensor::{Bool, FloatDType, Int, Tensor};

use super::attention::multi_head_attention;
use super::params::Placement;
use crate::config::BertConfig;
use crate::error::Result;
use crate::weights::WeightMap;

#[derive(Module, Debug)]
pub struct BertEmbeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
}

#[derive(Module, Debug)]
pub struct BertLayer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
    heads: usize,
}

#[derive(Module, Debug)]
pub struct BertEncoder {
    embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
}

impl BertEmbeddings {
    fn load(w: &mut WeightMap, at: &Placement, c: &BertConfig) -> Result<Self> {
        let p = "bert.embeddings";
        let h = c.hidden_size;
        Ok(Self {
            word: at.embedding(w, &format!("{p}.word_embeddings.weight"), c.vocab_size, h)?,
            position: at.embedding(
                w,
                &format!("{p}.position_embeddings.weight"),
                c.max_position_embeddings,
                h,
            )?,
            token_type: at.embedding(
                w,
                &format!("{p}.token_type_embeddings.weight"),
                c.type_vocab_size,
                h,
            )?,
            norm: at.layer_norm(w, &format!("{p}.LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    /// `ids`: [batch, seq] → [batch, seq, hidden]. token_type_ids are all 0, positions 0..seq.
    fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        let [_, seq] = ids.dims();
        let words = embedding(self.word.weight.val(), ids);
        let token_type = self.token_type.weight.val().slice(0..1).unsqueeze::<3>();
        let positions = self.position.weight.val().slice(0..seq).unsqueeze::<3>();
        // Same summation order as HF: (words + token types) + positions.
        self.norm.forward(words + token_type + positions)
    }
}

impl BertLayer {
    fn load(w: &mut WeightMap, at: &Placement, c: &BertConfig, index: usize) -> Result<Self> {
        let p = format!("bert.encoder.layer.{index}");
        let (h, i, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
        Ok(Self {
            query: at.linear(w, &format!("{p}.attention.self.query"), h, h)?,
            key: at.linear(w, &format!("{p}.attention.self.key"), h, h)?,
            value: at.linear(w, &format!("{p}.attention.self.value"), h, h)?,
            attention_output: at.linear(w, &format!("{p}.attention.output.dense"), h, h)?,
            attention_norm: at.layer_norm(w, &format!("{p}.attention.output.LayerNorm"), h, eps)?,
            intermediate: at.linear(w, &format!("{p}.intermediate.dense"), h, i)?,
            output: at.linear(w, &format!("{p}.output.dense"), i, h)?,
            output_norm: at.layer_norm(w, &format!("{p}.output.LayerNorm"), h, eps)?,
            heads: c.num_attention_heads,
        })
    }

    fn forward(&self, x: Tensor<3>, blocked: Tensor<3, Bool>) -> Tensor<3> {
        let context = multi_head_attention(
            self.query.forward(x.clone()),
            self.key.forward(x.clone()),
            self.value.forward(x.clone()),
            blocked,
            self.heads,
        );
        let x = self
            .attention_norm
            .forward(self.attention_output.forward(context) + x);
        let inner = gelu(self.intermediate.forward(x.clone()));
        self.output_norm.forward(self.output.forward(inner) + x)
    }
}

impl BertEncoder {
    pub fn load(w: &mut WeightMap, at: &Placement, c: &BertConfig) -> Result<Self> {
        let embeddings = BertEmbeddings::load(w, at, c)?;
        let layers = (0..c.num_hidden_layers)
            .map(|i| BertLayer::load(w, at, c, i))
            .collect::<Result<_>>()?;
        Ok(Self { embeddings, layers })
    }

    /// Mean-pooled last hidden state of each text.
    /// `ids`: [batch, seq]; `real`: [batch, seq] with 1.0 on real tokens and 0.0 on padding.
    /// Returns [batch, hidden] in f32.
    pub fn forward_pooled(&self, ids: Tensor<2, Int>, real: Tensor<2>) -> Tensor<2> {
        let [batch, seq] = ids.dims();
        // Keys that are padding are blocked for every query row.
        let blocked = real
            .clone()
            .equal_elem(0.0)
            .unsqueeze_dim::<3>(1)
            .expand([batch, seq, seq]);
        let mut x = self.embeddings.forward(ids);
        for layer in &self.layers {
            x = layer.forward(x, blocked.clone());
        }
        // Pool in f32 whatever the model's dtype: a sum over hundreds of tokens in f16 loses digits.
        let (x, real) = (x.cast(FloatDType::F32), real.cast(FloatDType::F32));
        let weights = real.clone().unsqueeze_dim::<3>(2);
        let summed = (x * weights).sum_dim(1).squeeze_dim::<2>(1);
        let counts = real.sum_dim(1);
        summed / counts
    }
}
