//! The HuggingFace `BertModel` encoder (post-LayerNorm, absolute positions, erf GELU) followed by
//! mean pooling over real tokens, as ListConRanker uses it: every text is encoded on its own.

use std::cell::RefCell;

use burn::module::Module;
use burn::nn::{Embedding, LayerNorm, Linear};
use burn::tensor::module::embedding;
use burn::tensor::{Bool, FloatDType, Int, Tensor};

use super::attention::multi_head_attention;
use super::builder::ParamBuilder;
use super::cpu::{Then, linear, linear_plus};
use crate::config::BertConfig;
use crate::device::Placement;
#[cfg(feature = "native")]
use crate::error::Error;
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
    /// From `embeddings.*`.
    fn load(p: ParamBuilder, c: &BertConfig) -> Result<Self> {
        let h = c.hidden_size;
        Ok(Self {
            word: p.pp("word_embeddings").embedding(c.vocab_size, h)?,
            position: p
                .pp("position_embeddings")
                .embedding(c.max_position_embeddings, h)?,
            token_type: p
                .pp("token_type_embeddings")
                .embedding(c.type_vocab_size, h)?,
            norm: p.pp("LayerNorm").layer_norm(h, c.layer_norm_eps)?,
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
    /// From `encoder.layer.N.*`.
    fn load(p: ParamBuilder, c: &BertConfig) -> Result<Self> {
        let (h, i, eps) = (c.hidden_size, c.intermediate_size, c.layer_norm_eps);
        let attention = p.pp("attention");
        let self_attention = attention.pp("self");
        let query = self_attention.pp("query").linear(h, h)?;
        let key = self_attention.pp("key").linear(h, h)?;
        let value = self_attention.pp("value").linear(h, h)?;
        let output = attention.pp("output");
        let attention_output = output.pp("dense").linear(h, h)?;
        let attention_norm = output.pp("LayerNorm").layer_norm(h, eps)?;
        Ok(Self {
            query,
            key,
            value,
            attention_output,
            attention_norm,
            intermediate: p.pp("intermediate").pp("dense").linear(h, i)?,
            output: p.pp("output").pp("dense").linear(i, h)?,
            output_norm: p.pp("output").pp("LayerNorm").layer_norm(h, eps)?,
            heads: c.num_attention_heads,
        })
    }

    fn forward(&self, x: Tensor<3>, padding: Tensor<2, Bool>) -> Tensor<3> {
        let x = self.attention_block(x, padding);
        let inner = self.ffn_inner(x.clone());
        self.ffn_output(inner, x)
    }

    /// Self-attention, its output projection, the residual and the LayerNorm.
    fn attention_block(&self, x: Tensor<3>, padding: Tensor<2, Bool>) -> Tensor<3> {
        let context = multi_head_attention(
            linear(&self.query, x.clone(), Then::Nothing),
            linear(&self.key, x.clone(), Then::Nothing),
            linear(&self.value, x.clone(), Then::Nothing),
            padding,
            self.heads,
            false,
        );
        self.attention_norm
            .forward(linear_plus(&self.attention_output, context, x))
    }

    /// The FFN's inner activations, GELU(intermediate(x)): the inputs of its output weight.
    fn ffn_inner(&self, x: Tensor<3>) -> Tensor<3> {
        linear(&self.intermediate, x, Then::Gelu)
    }

    /// The FFN's output projection of `inner`, the residual `x` and the LayerNorm.
    fn ffn_output(&self, inner: Tensor<3>, x: Tensor<3>) -> Tensor<3> {
        self.output_norm
            .forward(linear_plus(&self.output, inner, x))
    }
}

impl BertEncoder {
    /// From `bert.*` (the canonical keys put the encoder there whatever the file's prefix).
    pub fn load(p: ParamBuilder, c: &BertConfig) -> Result<Self> {
        let bert = p.pp("bert");
        let embeddings = BertEmbeddings::load(bert.pp("embeddings"), c)?;
        let layer = bert.pp("encoder").pp("layer");
        let layers = (0..c.num_hidden_layers)
            .map(|i| BertLayer::load(layer.pp(i), c))
            .collect::<Result<_>>()?;
        Ok(Self { embeddings, layers })
    }

    /// Builds the encoder from a checkpoint of the encoder alone, every tensor of which it
    /// must use.
    pub fn load_all(weights: WeightMap, c: &BertConfig, at: &Placement) -> Result<Self> {
        let weights = RefCell::new(weights);
        let encoder = Self::load(ParamBuilder::new(&weights, at), c)?;
        weights.into_inner().check_all_used()?;
        Ok(encoder)
    }

    /// [`crate::model::ListConRankerModel::check_plan`] for a checkpoint of the encoder alone.
    pub fn check_plan(plan: WeightMap, c: &BertConfig) -> Result<()> {
        Self::load_all(plan, c, &Placement::host_f32()).map(drop)
    }

    /// Calibrated quantization of the FFN output weights, layer by layer in order: each layer's
    /// `output.dense` weight is replaced by `replace(layer, hessian, weight)`, where `hessian` is
    /// `X^T X` (f64, `[inner, inner]` row-major) of the weight's inputs `X` over the real tokens
    /// of `batches`, as the encoder computes them with the weights replaced so far (so that each
    /// layer's quantization sees the errors of the ones before it, as GPTQ does), and `weight` is
    /// the current weight `[hidden, inner]` (row-major f32, the checkpoint's layout). The
    /// closure returns the weight to compute with from then on, same layout. Native, on the
    /// host: every Hessian is read back.
    #[cfg(feature = "native")]
    pub fn recalibrate_ffn_outputs(
        &mut self,
        batches: &[super::TokenBatch],
        mut replace: impl FnMut(usize, Vec<f64>, Vec<f32>) -> Result<Vec<f32>>,
    ) -> Result<()> {
        use burn::module::Param;
        use burn::tensor::TensorData;

        let read = |t: Tensor<2>| {
            t.cast(FloatDType::F32)
                .into_data()
                .try_to_vec::<f32>()
                .map_err(|e| Error::Execution(format!("{e:?}")))
        };
        // (hidden states entering the next layer, padding keys, real-token mask [b, s, 1]).
        let mut states: Vec<(Tensor<3>, Tensor<2, Bool>, Tensor<3>)> = batches
            .iter()
            .map(|b| {
                let padding = b.real.clone().equal_elem(0.0);
                let mask = b.real.clone().unsqueeze_dim::<3>(2);
                (self.embeddings.forward(b.ids.clone()), padding, mask)
            })
            .collect();
        for (n, layer) in self.layers.iter_mut().enumerate() {
            let [inner_size, hidden] = layer.output.weight.dims();
            let Some(cells) = inner_size.checked_mul(inner_size).filter(|&n| n <= 1 << 28) else {
                return Err(Error::input(format!(
                    "an FFN of {inner_size} inputs is too wide to calibrate"
                )));
            };
            let mut hessian = vec![0f64; cells];
            let mut attended = Vec::with_capacity(states.len());
            for (x, padding, mask) in &states {
                let a = layer.attention_block(x.clone(), padding.clone());
                // Padding rows zeroed: they add nothing to X^T X.
                let inner = layer.ffn_inner(a.clone()).cast(FloatDType::F32) * mask.clone();
                let [b, s, i] = inner.dims();
                let rows = inner.reshape([b * s, i]);
                let product = read(rows.clone().transpose().matmul(rows))?;
                for (h, v) in hessian.iter_mut().zip(product) {
                    *h += f64::from(v);
                }
                attended.push(a);
            }
            let device = layer.output.weight.val().device();
            let dtype = layer.output.weight.val().dtype();
            let current = read(layer.output.weight.val().transpose())?;
            let replaced = replace(n, hessian, current)?;
            if replaced.len() != hidden * inner_size {
                return Err(Error::checkpoint(
                    format!("bert.encoder.layer.{n}.output.dense.weight"),
                    format!(
                        "a replacement of {} values for [{hidden}, {inner_size}]",
                        replaced.len()
                    ),
                ));
            }
            let weight: Tensor<2> = Tensor::from_data(
                TensorData::new(replaced, [hidden, inner_size]),
                (&device, dtype),
            );
            layer.output.weight = Param::from_tensor(weight.transpose());
            // The inner activations are computed again rather than kept from the Hessian's
            // pass: they are `intermediate / hidden` (4x) the size of the hidden states.
            for ((x, _, _), a) in states.iter_mut().zip(attended) {
                *x = layer.ffn_output(layer.ffn_inner(a.clone()), a);
            }
        }
        Ok(())
    }

    /// Mean-pooled last hidden state of each text.
    /// `ids`: [batch, seq]; `real`: [batch, seq] with 1.0 on real tokens and 0.0 on padding.
    /// Returns [batch, hidden] in f32.
    pub fn forward_pooled(&self, ids: Tensor<2, Int>, real: Tensor<2>) -> Tensor<2> {
        // Keys that are padding are blocked for every query row.
        let padding = real.clone().equal_elem(0.0);
        let mut x = self.embeddings.forward(ids);
        for layer in &self.layers {
            x = layer.forward(x, padding.clone());
        }
        // Pool in f32 whatever the model's dtype: a sum over hundreds of tokens in f16 loses digits.
        let (x, real) = (x.cast(FloatDType::F32), real.cast(FloatDType::F32));
        let weights = real.clone().unsqueeze_dim::<3>(2);
        let summed = (x * weights).sum_dim(1).squeeze_dim::<2>(1);
        let counts = real.sum_dim(1);
        summed / counts
    }
}
