//! A fresh list head for a plain BERT checkpoint (`train --init-head`): `linear_in_embedding`,
//! the query tag, the list transformer's layers and the score heads, as named tensors in
//! PyTorch's layout, ready to be written as the split layout's two pickles.
//!
//! Two ways to start:
//! - [`HeadInit::Random`]: PyTorch's default initialisation of the modules the original builds
//!   (`nn.Linear`'s Kaiming-uniform, `nn.MultiheadAttention`'s Xavier-uniform in-projection and
//!   zero biases, `nn.Embedding`'s standard normal, `nn.LayerNorm`'s ones and zeros; every list
//!   layer a copy of the first, as `nn.TransformerEncoder` deep-copies its layer). Its scores
//!   carry no relevance until trained.
//! - [`HeadInit::Similarity`]: a head that starts out ranking as the encoder does. The
//!   projection writes `[x; -x]` (D = 2 x hidden), the query tag is zero and every list layer
//!   starts as the identity (zero attention output and second feed-forward projection), so the
//!   list transformer's output is the layer-normalised feature `[x; -x] / rms(x)`.
//!   `linear_score3` then takes the differences of the query's and the passage's normalised
//!   features in both signs, its ReLU keeps their magnitudes, and `linear_score1` turns minus
//!   their sum (the L1 distance of the two normalised embeddings) into the score. Training
//!   starts from the encoder's own notion of similarity instead of from noise, and every
//!   parameter still receives a gradient (the attention's in-projection once its zero output
//!   projection has moved).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::named::NamedTensor;
use crate::config::ModelConfig;
use crate::error::{Error, Result};

/// How a fresh head's parameters start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadInit {
    /// Ranks as the encoder's normalised embeddings do (L1 distance), before any training.
    Similarity,
    /// PyTorch's default initialisation: no relevance until trained.
    Random,
}

/// The sizes of a fresh head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeadShape {
    /// The encoder's hidden size (the projection's input).
    pub hidden: usize,
    /// D: the list features' width.
    pub dim: usize,
    /// F: the list layers' feed-forward width.
    pub ffn: usize,
    pub layers: usize,
    /// Attention heads of the list layers (the original takes the encoder's count).
    pub heads: usize,
}

impl From<&ModelConfig> for HeadShape {
    /// The shape of a loaded model's head.
    fn from(config: &ModelConfig) -> Self {
        Self {
            hidden: config.bert.hidden_size,
            dim: config.list.dim,
            ffn: config.list.ffn,
            layers: config.list.layers,
            heads: config.list.heads,
        }
    }
}

impl HeadShape {
    /// The released model's proportions (hidden 1024 -> D 1792, F 2048, 2 layers) for an
    /// encoder of `hidden` width and `heads` attention heads, D and F rounded up to a multiple
    /// of `heads`; for [`HeadInit::Similarity`], D = 2 x hidden, which its construction needs.
    pub fn for_encoder(hidden: usize, heads: usize, init: HeadInit) -> Self {
        let round_up = |x: usize| x.div_ceil(heads.max(1)) * heads.max(1);
        let dim = match init {
            HeadInit::Similarity => 2 * hidden,
            HeadInit::Random => round_up(hidden * 7 / 4),
        };
        Self {
            hidden,
            dim,
            ffn: round_up(hidden * 2),
            layers: 2,
            heads,
        }
    }

    /// Refuses sizes the model cannot run or `init` cannot build.
    pub fn check(&self, init: HeadInit) -> Result<()> {
        let Self {
            hidden,
            dim,
            ffn,
            layers,
            heads,
        } = *self;
        if hidden == 0 || dim == 0 || ffn == 0 || layers == 0 || heads == 0 {
            return Err(Error::input("a head's sizes must all be at least 1"));
        }
        if dim % heads != 0 {
            return Err(Error::input(format!(
                "the head's width {dim} is not a multiple of its {heads} attention heads"
            )));
        }
        if init == HeadInit::Similarity && dim != 2 * hidden {
            return Err(Error::input(format!(
                "the similarity initialisation needs a head width of twice the encoder's hidden \
                 size ({}), not {dim}",
                2 * hidden
            )));
        }
        // A cap on any one tensor (2^32 elements, 16 GiB in f32), before anything is
        // allocated: the largest are the in-projection (3D x D), the score heads (D x 2D), the
        // feed-forward (F x D) and the projection (D x hidden).
        let elements = |a: usize, b: usize| a.checked_mul(b).filter(|n| *n <= 1 << 32);
        let fits = dim
            .checked_mul(3)
            .and_then(|d3| elements(d3, dim))
            .is_some()
            && elements(dim, ffn).is_some()
            && elements(dim, hidden).is_some();
        if !fits {
            return Err(Error::input(format!(
                "a head of width {dim}, feed-forward {ffn} on a hidden size of {hidden} has a \
                 tensor of more than 2^32 elements"
            )));
        }
        Ok(())
    }
}

/// The fresh head's tensors under the original's keys (`linear_in_embedding.*`,
/// `query_embedding.*`, `list_transformer.layers.N.*`, `linear_score{1,2,3}.*`), drawn from
/// `seed`: the same seed gives the same tensors.
pub fn fresh_head(shape: HeadShape, init: HeadInit, seed: u64) -> Result<Vec<NamedTensor>> {
    shape.check(init)?;
    let HeadShape {
        hidden,
        dim,
        ffn,
        layers,
        ..
    } = shape;
    let mut draw = Draw::new(seed);
    let similarity = init == HeadInit::Similarity;
    let mut out = Vec::new();

    let projection = if similarity {
        // [I; -I]: the feature and its negation, so that a ReLU of differences sees both signs.
        let mut w = vec![0.0; dim * hidden];
        for j in 0..hidden {
            w[j * hidden + j] = 1.0;
            w[(hidden + j) * hidden + j] = -1.0;
        }
        w
    } else {
        draw.linear_weight(dim, hidden)
    };
    out.push(tensor(
        "linear_in_embedding.weight",
        &[dim, hidden],
        projection,
    ));
    let bias = if similarity {
        vec![0.0; dim]
    } else {
        draw.linear_bias(dim, hidden)
    };
    out.push(tensor("linear_in_embedding.bias", &[dim], bias));

    let tag = if similarity {
        vec![0.0; 2 * dim]
    } else {
        draw.normal(2 * dim)
    };
    out.push(tensor(
        "query_embedding.query_embedding.weight",
        &[2, dim],
        tag,
    ));
    out.extend(layer_norm("query_embedding.layerNorm", dim));

    // nn.TransformerEncoder deep-copies one layer into every place, so all layers start
    // equal: layer 0 is drawn and copied.
    let first = out.len();
    {
        let p = "list_transformer.layers.0";
        let xavier = (6.0 / (dim + 3 * dim) as f64).sqrt() as f32;
        out.push(tensor(
            &format!("{p}.self_attn.in_proj_weight"),
            &[3 * dim, dim],
            draw.uniform(3 * dim * dim, xavier),
        ));
        out.push(tensor(
            &format!("{p}.self_attn.in_proj_bias"),
            &[3 * dim],
            vec![0.0; 3 * dim],
        ));
        let out_proj = if similarity {
            vec![0.0; dim * dim]
        } else {
            draw.linear_weight(dim, dim)
        };
        out.push(tensor(
            &format!("{p}.self_attn.out_proj.weight"),
            &[dim, dim],
            out_proj,
        ));
        // nn.MultiheadAttention zeroes its output projection's bias.
        out.push(tensor(
            &format!("{p}.self_attn.out_proj.bias"),
            &[dim],
            vec![0.0; dim],
        ));
        out.push(tensor(
            &format!("{p}.linear1.weight"),
            &[ffn, dim],
            draw.linear_weight(ffn, dim),
        ));
        out.push(tensor(
            &format!("{p}.linear1.bias"),
            &[ffn],
            draw.linear_bias(ffn, dim),
        ));
        let (w2, b2) = if similarity {
            (vec![0.0; dim * ffn], vec![0.0; dim])
        } else {
            (draw.linear_weight(dim, ffn), draw.linear_bias(dim, ffn))
        };
        out.push(tensor(&format!("{p}.linear2.weight"), &[dim, ffn], w2));
        out.push(tensor(&format!("{p}.linear2.bias"), &[dim], b2));
        out.extend(layer_norm(&format!("{p}.norm1"), dim));
        out.extend(layer_norm(&format!("{p}.norm2"), dim));
    }
    let layer_zero: Vec<NamedTensor> = out[first..].to_vec();
    for layer in 1..layers {
        out.extend(layer_zero.iter().map(|t| NamedTensor {
            key: t.key.replacen(
                "list_transformer.layers.0.",
                &format!("list_transformer.layers.{layer}."),
                1,
            ),
            ..t.clone()
        }));
    }

    // linear_score2 (before the list transformer) starts as PyTorch would; with
    // linear_score1's weights on it at zero it adds nothing until trained.
    out.push(tensor(
        "linear_score2.weight",
        &[dim, 2 * dim],
        draw.linear_weight(dim, 2 * dim),
    ));
    out.push(tensor(
        "linear_score2.bias",
        &[dim],
        draw.linear_bias(dim, 2 * dim),
    ));
    let (w3, b3) = if similarity {
        // Row j: query_j - passage_j (input [query'; passage']).
        let mut w = vec![0.0; dim * 2 * dim];
        for j in 0..dim {
            w[j * 2 * dim + j] = 1.0;
            w[j * 2 * dim + dim + j] = -1.0;
        }
        (w, vec![0.0; dim])
    } else {
        (
            draw.linear_weight(dim, 2 * dim),
            draw.linear_bias(dim, 2 * dim),
        )
    };
    out.push(tensor("linear_score3.weight", &[dim, 2 * dim], w3));
    out.push(tensor("linear_score3.bias", &[dim], b3));
    let (w1, b1) = if similarity {
        // score = sigmoid(SHIFT - SLOPE / hidden x L1): the ReLU rows sum to the L1 distance
        // of the normalised features over the hidden entries (each difference once, in one
        // sign or the other). Those features have an RMS of 1, so that distance is about
        // 0.8 x hidden x the Euclidean distance of the unit-length embeddings (in [0, 2]): the
        // score crosses 0.5 near a distance of 1 (cosine 0.5) and spreads over most of (0, 1)
        // across the usual range. Training moves both.
        let mut w = vec![0.0; 2 * dim];
        for v in &mut w[dim..] {
            *v = -SIMILARITY_SLOPE / hidden as f32;
        }
        (w, vec![SIMILARITY_SHIFT])
    } else {
        (draw.linear_weight(1, 2 * dim), draw.linear_bias(1, 2 * dim))
    };
    out.push(tensor("linear_score1.weight", &[1, 2 * dim], w1));
    out.push(tensor("linear_score1.bias", &[1], b1));
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

const SIMILARITY_SLOPE: f32 = 4.0;
const SIMILARITY_SHIFT: f32 = 3.2;

fn tensor(key: &str, shape: &[usize], values: Vec<f32>) -> NamedTensor {
    debug_assert_eq!(shape.iter().product::<usize>(), values.len());
    NamedTensor {
        key: key.to_string(),
        shape: shape.to_vec(),
        values,
    }
}

fn layer_norm(prefix: &str, dim: usize) -> [NamedTensor; 2] {
    [
        tensor(&format!("{prefix}.weight"), &[dim], vec![1.0; dim]),
        tensor(&format!("{prefix}.bias"), &[dim], vec![0.0; dim]),
    ]
}

/// Seeded draws with PyTorch's default distributions (not its random stream: the same seed
/// gives the same head here, not the same numbers as `torch.manual_seed`).
struct Draw(StdRng);

impl Draw {
    fn new(seed: u64) -> Self {
        Self(StdRng::seed_from_u64(seed))
    }

    /// `n` values uniform in [-bound, bound).
    fn uniform(&mut self, n: usize, bound: f32) -> Vec<f32> {
        (0..n).map(|_| self.0.random_range(-bound..bound)).collect()
    }

    /// nn.Linear's weight: Kaiming-uniform with a = sqrt(5), i.e. bound 1 / sqrt(fan_in).
    fn linear_weight(&mut self, out: usize, fan_in: usize) -> Vec<f32> {
        self.uniform(out * fan_in, 1.0 / (fan_in as f32).sqrt())
    }

    /// nn.Linear's bias: uniform within 1 / sqrt(fan_in).
    fn linear_bias(&mut self, out: usize, fan_in: usize) -> Vec<f32> {
        self.uniform(out, 1.0 / (fan_in as f32).sqrt())
    }

    /// `n` standard normal values (nn.Embedding). Box-Muller by hand: rand's normal
    /// distribution lives in rand_distr, a crate this would pull in for one call.
    fn normal(&mut self, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                let u: f64 = 1.0 - self.0.random::<f64>(); // (0, 1]: ln stays finite
                let v: f64 = self.0.random();
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_release_and_the_seed_fixes_the_values() {
        let shape = HeadShape::for_encoder(384, 12, HeadInit::Random);
        assert_eq!((shape.dim, shape.ffn, shape.layers), (672, 768, 2));
        let a = fresh_head(shape, HeadInit::Random, 1).unwrap();
        assert_eq!(a, fresh_head(shape, HeadInit::Random, 1).unwrap());
        assert_ne!(a, fresh_head(shape, HeadInit::Random, 2).unwrap());
        let w = a
            .iter()
            .find(|t| t.key == "list_transformer.layers.1.linear1.weight")
            .unwrap();
        assert_eq!(w.shape, vec![768, 672]);
        let bound = 1.0 / (672f32).sqrt();
        assert!(w.values.iter().all(|v| v.abs() <= bound));
        // Every layer starts as a copy of the first, as nn.TransformerEncoder builds them.
        let layer_zero = a
            .iter()
            .find(|t| t.key == "list_transformer.layers.0.linear1.weight")
            .unwrap();
        assert_eq!(layer_zero.values, w.values);
    }

    #[test]
    fn similarity_needs_twice_the_hidden_width() {
        let mut shape = HeadShape::for_encoder(8, 2, HeadInit::Similarity);
        assert_eq!(shape.dim, 16);
        assert!(fresh_head(shape, HeadInit::Similarity, 0).is_ok());
        shape.dim = 12;
        assert!(fresh_head(shape, HeadInit::Similarity, 0).is_err());
        shape.dim = 15;
        assert!(fresh_head(shape, HeadInit::Random, 0).is_err());
    }
}
