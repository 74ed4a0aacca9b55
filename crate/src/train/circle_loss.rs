//! Circle loss (Sun et al., "Circle Loss: A Unified Perspective of Pair Similarity
//! Optimization", CVPR 2020) over each list's scores, as the model card trains ListConRanker.
//!
//! Per list, with its positives' scores s_p and negatives' s_n (scores in (0, 1)):
//! `alpha_p = relu(1 + m - s_p)`, `alpha_n = relu(s_n + m)` (constants: no gradient through
//! them), `loss = softplus(logsumexp(gamma * alpha_n * (s_n - m)) + logsumexp(-gamma * alpha_p *
//! (s_p - 1 + m)))`; the batch's loss is the mean over its lists.

use burn::tensor::activation::relu;
use burn::tensor::{Bool, Tensor, TensorData};

/// The loss's two hyper-parameters.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CircleLoss {
    /// m: the relaxation margin: the loss pushes positives above 1 - m and negatives below m,
    /// weighting each by its distance from the optimum (1 + m, -m). The paper finds 0.25 best.
    pub margin: f32,
    /// gamma: the scale; larger makes the log-sum-exps closer to a max over the hardest pairs.
    pub gamma: f32,
}

/// What a masked-out entry of a log-sum-exp becomes: exp of it (less the row's max) is 0 in f32,
/// and unlike -inf it cannot make `x - max` a NaN.
const MASKED: f32 = -1.0e30;

impl Default for CircleLoss {
    fn default() -> Self {
        Self {
            margin: 0.25,
            gamma: 32.0,
        }
    }
}

impl CircleLoss {
    /// `scores`: [lists, width], list i's passages in its first `positive[i].len()` columns (the
    /// rest is padding, ignored); `positive[i][j]`: whether passage j of list i is relevant.
    /// Every list needs a positive and a negative (the caller checks). Returns the mean loss,
    /// a one-element tensor.
    pub fn forward(&self, scores: Tensor<2>, positive: &[Vec<bool>]) -> Tensor<1> {
        let [lists, width] = scores.dims();
        debug_assert_eq!(lists, positive.len());
        let device = scores.device();
        let mask = |keep: &dyn Fn(Option<bool>) -> bool| {
            let values: Vec<bool> = positive
                .iter()
                .flat_map(|labels| (0..width).map(move |j| labels.get(j).copied()))
                .map(|label| !keep(label))
                .collect();
            Tensor::<2, Bool>::from_data(TensorData::new(values, [lists, width]), &device)
        };
        let not_positive = mask(&|label| label == Some(true));
        let not_negative = mask(&|label| label == Some(false));
        let (m, gamma) = (self.margin, self.gamma);
        let alpha_p = relu(scores.clone().neg().add_scalar(1.0 + m)).detach();
        let alpha_n = relu(scores.clone().add_scalar(m)).detach();
        let logit_p = (alpha_p * scores.clone().sub_scalar(1.0 - m)).mul_scalar(-gamma);
        let logit_n = (alpha_n * scores.sub_scalar(m)).mul_scalar(gamma);
        let total =
            masked_logsumexp(logit_p, not_positive) + masked_logsumexp(logit_n, not_negative);
        softplus(total).mean()
    }
}

/// log(sum(exp(x))) along dim 1 over the entries not masked, [rows]. The row's max is taken out
/// first (and held constant: the result does not depend on it) so that exp cannot overflow.
fn masked_logsumexp(x: Tensor<2>, masked: Tensor<2, Bool>) -> Tensor<1> {
    let x = x.mask_fill(masked, MASKED);
    let max = x.clone().max_dim(1).detach();
    let sum = (x - max.clone()).exp().sum_dim(1);
    (sum.log() + max).squeeze_dim::<1>(1)
}

/// log(1 + exp(x)) without overflow for large x: max(x, 0) + log1p(exp(-|x|)).
fn softplus(x: Tensor<1>) -> Tensor<1> {
    relu(x.clone()) + x.abs().neg().exp().log1p()
}
