//! Which tensors of a `q8` / `q4` bundle are quantized, and how (the schemes themselves are in
//! the formats crate's `quantize`):
//! - `q8`: every Linear weight (the encoder's q/k/v/o and FFN, `linear_in_embedding`, the list
//!   transformer's in/out projections and FFN, the three score heads) and the word-embedding
//!   table, int8 in blocks along each row (one block per row where the block does not divide it);
//! - `q4`: the encoder's FFN output weights (`output.dense`, the Linear weights that tolerate 4
//!   bits best: docs/quantization.md) in 4-bit blocks (where their input size is a multiple of
//!   the block), everything else as in `q8`. 4 bits on every encoder Linear weight would save
//!   ~100 MB more on the released model but move the rankings too much (Kendall's tau ~0.81 by
//!   round to nearest, ~0.87 by GPTQ, against the 0.93 asked for).
//!
//! Everything else (LayerNorms, biases, position and token-type embeddings, the query tag) is
//! stored in f16.

use listconranker_formats::bundle::BundleDtype;
use listconranker_formats::quantize::Scheme;

/// How one tensor is stored in a bundle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    F32,
    F16,
    Quantized(Scheme),
}

impl Storage {
    /// How `key` (a canonical key) of `shape` is stored in a bundle of `dtype`, quantized
    /// weights in blocks of `block` values.
    pub fn of(key: &str, shape: &[usize], dtype: BundleDtype, block: usize) -> Storage {
        match dtype {
            BundleDtype::F32 => Storage::F32,
            BundleDtype::F16 => Storage::F16,
            BundleDtype::Q8 | BundleDtype::Q4 => {
                let q4 = Scheme::Q4Blocks { block };
                let q8 = match shape {
                    // One block per row where the block does not divide it.
                    [_, cols] if *cols > 0 && (block == 0 || cols % block != 0) => {
                        Scheme::Q8Blocks { block: *cols }
                    }
                    _ => Scheme::Q8Blocks { block },
                };
                if dtype == BundleDtype::Q4 && is_ffn_output(key) && q4.fits(shape) {
                    Storage::Quantized(q4)
                } else if (is_encoder_linear(key) || is_head_linear(key) || is_word_table(key))
                    && q8.fits(shape)
                {
                    Storage::Quantized(q8)
                } else {
                    Storage::F16
                }
            }
        }
    }

    /// Bytes the tensor takes stored this way (values and scales).
    pub fn bytes(self, shape: &[usize]) -> u64 {
        let elements: u64 = shape.iter().map(|&d| d as u64).product();
        match self {
            Storage::F32 => elements * 4,
            Storage::F16 => elements * 2,
            Storage::Quantized(Scheme::Q8Blocks { block }) => {
                elements + 2 * (elements / block as u64)
            }
            Storage::Quantized(Scheme::Q4Blocks { block }) => {
                elements / 2 + 2 * (elements / block as u64)
            }
        }
    }
}

/// `bert.encoder.layer.N.` + one of the six Linear weights of a BERT layer.
fn is_encoder_linear(key: &str) -> bool {
    const LINEARS: [&str; 6] = [
        "attention.self.query.weight",
        "attention.self.key.weight",
        "attention.self.value.weight",
        "attention.output.dense.weight",
        "intermediate.dense.weight",
        "output.dense.weight",
    ];
    key.strip_prefix("bert.encoder.layer.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(layer, name)| layer.parse::<usize>().is_ok() && LINEARS.contains(&name))
}

/// `bert.encoder.layer.N.output.dense.weight`: a BERT layer's FFN output weight, the one Linear
/// weight of a `q4` bundle stored in 4 bits.
fn is_ffn_output(key: &str) -> bool {
    key.strip_prefix("bert.encoder.layer.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(layer, name)| {
            layer.parse::<usize>().is_ok() && name == "output.dense.weight"
        })
}

/// The head's Linear weights: the projection, each list layer's four, the score heads.
fn is_head_linear(key: &str) -> bool {
    const LIST_LINEARS: [&str; 4] = [
        "self_attn.in_proj_weight",
        "self_attn.out_proj.weight",
        "linear1.weight",
        "linear2.weight",
    ];
    let list_linear = key
        .strip_prefix("list_transformer.layers.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(layer, name)| {
            layer.parse::<usize>().is_ok() && LIST_LINEARS.contains(&name)
        });
    list_linear
        || matches!(
            key,
            "linear_in_embedding.weight"
                | "linear_score1.weight"
                | "linear_score2.weight"
                | "linear_score3.weight"
        )
}

fn is_word_table(key: &str) -> bool {
    key == "bert.embeddings.word_embeddings.weight"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_weights_and_the_word_table_are_quantized_the_rest_is_f16() {
        let of = |key, shape: &[usize], dtype| Storage::of(key, shape, dtype, 32);
        let q8 = Storage::Quantized(Scheme::Q8Blocks { block: 32 });
        let q4 = Storage::Quantized(Scheme::Q4Blocks { block: 32 });
        let query = "bert.encoder.layer.3.attention.self.query.weight";
        let ffn_output = "bert.encoder.layer.3.output.dense.weight";
        assert_eq!(of(query, &[64, 64], BundleDtype::Q8), q8);
        assert_eq!(of(query, &[64, 64], BundleDtype::Q4), q8);
        assert_eq!(of(ffn_output, &[64, 256], BundleDtype::Q8), q8);
        assert_eq!(of(ffn_output, &[64, 256], BundleDtype::Q4), q4);
        for other in [
            "bert.encoder.layer.3.attention.output.dense.weight",
            "bert.encoder.layer.3.intermediate.dense.weight",
            "bert.encoder.layer.3.attention.self.value.weight",
        ] {
            assert_eq!(of(other, &[64, 64], BundleDtype::Q4), q8, "{other}");
        }
        // An input size that is not a multiple of the block: q8, one block per row.
        let q8_rows = Storage::Quantized(Scheme::Q8Blocks { block: 48 });
        assert_eq!(of(ffn_output, &[64, 48], BundleDtype::Q4), q8_rows);
        assert!(!is_ffn_output(
            "bert.encoder.layer.3.attention.output.dense.weight"
        ));
        assert!(!is_ffn_output("bert.encoder.layer.x.output.dense.weight"));
        assert_eq!(
            of(
                "bert.encoder.layer.3.attention.self.query.bias",
                &[64],
                BundleDtype::Q4
            ),
            Storage::F16
        );
        let table = "bert.embeddings.word_embeddings.weight";
        assert_eq!(of(table, &[100, 64], BundleDtype::Q4), q8);
        assert_eq!(
            of(
                "bert.embeddings.position_embeddings.weight",
                &[512, 64],
                BundleDtype::Q8
            ),
            Storage::F16
        );
        for head in [
            "linear_in_embedding.weight",
            "list_transformer.layers.1.self_attn.in_proj_weight",
            "list_transformer.layers.0.linear2.weight",
            "linear_score1.weight",
        ] {
            assert_eq!(of(head, &[64, 64], BundleDtype::Q4), q8, "{head}");
        }
        assert_eq!(
            of(
                "query_embedding.query_embedding.weight",
                &[2, 64],
                BundleDtype::Q8
            ),
            Storage::F16
        );
        assert_eq!(of(query, &[64, 64], BundleDtype::F16), Storage::F16);
        assert_eq!(q4.bytes(&[2, 64]), 64 + 2 * 4);
        assert_eq!(q8.bytes(&[2, 64]), 128 + 2 * 4);
    }
}
