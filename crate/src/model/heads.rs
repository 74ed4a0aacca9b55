//! The three score heads: `a = relu(score2([q0, p]))` on the features before the list
//! transformer, `b = relu(score3([q0', p']))` on those after it, `sigmoid(score1([a, b]))`.
//!
//! The last head and the sigmoid run in f32 whatever the model's float type: an f16 score near
//! 0.5 lies on a grid of 2.4e-4, coarse against the spread of scores within a list (real
//! weights: ~4e-3), so f16 there alone swapped close passages (Kendall tau 0.989 against f32;
//! 0.997 with this; tests/reference/f16_precision.py). `score1` is one row of 2D weights.

use burn::module::Module;
use burn::nn::Linear;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::{FloatDType, Tensor};

use super::builder::ParamBuilder;
use crate::error::Result;

#[derive(Module, Debug)]
pub struct ScoreHeads {
    score1: Linear,
    score2: Linear,
    score3: Linear,
}

/// [batch, len, D] lists `[query, passages...]` → [batch, len - 1, 2D]: each passage row
/// preceded by its list's query row.
fn pair_with_query(x: Tensor<3>) -> Tensor<3> {
    let [batch, len, dim] = x.dims();
    let query = x.clone().narrow(1, 0, 1).expand([batch, len - 1, dim]);
    let passages = x.narrow(1, 1, len - 1);
    Tensor::cat(vec![query, passages], 2)
}

impl ScoreHeads {
    /// From `linear_score1.*`, `linear_score2.*`, `linear_score3.*` (top-level in the original).
    pub fn load(p: ParamBuilder, dim: usize) -> Result<Self> {
        Ok(Self {
            score1: p.pp("linear_score1").in_f32().linear(2 * dim, 1)?,
            score2: p.pp("linear_score2").linear(2 * dim, dim)?,
            score3: p.pp("linear_score3").linear(2 * dim, dim)?,
        })
    }

    /// `before`, `after`: [batch, len, D] features before / after the list transformer.
    /// Returns the scores in (0, 1), [batch, len - 1] (pad positions hold garbage).
    pub fn forward(&self, before: Tensor<3>, after: Tensor<3>) -> Tensor<2> {
        let a = relu(self.score2.forward(pair_with_query(before)));
        let b = relu(self.score3.forward(pair_with_query(after)));
        let features = Tensor::cat(vec![a, b], 2).cast(FloatDType::F32);
        let logits = self.score1.forward(features);
        sigmoid(logits).squeeze_dim::<2>(2)
    }
}
