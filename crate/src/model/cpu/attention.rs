//! Multi-head attention on the CPU, in f32, straight from the projections' [batch, seq, heads x
//! head_dim] layout.
//!
//! burn's CPU attention wants [batch, heads, seq, head_dim] tensors, so every q, k, v and the
//! context went through a transposing copy; it then reads the (broadcast) mask element by
//! element and exponentiates with scalar libm, one element at a time: about a quarter of the
//! CPU time on a MiniLM-width encoder (docs/perf.md). Here each (text, head) pair is two `gemm`
//! calls reading and writing the interleaved layout through strides, and a softmax whose loops
//! vectorise; keys past a text's last real token are not computed at all. The pairs run on the
//! thread pool.

use burn::tensor::{Bool, Tensor, TensorData};

use multiversion::multiversion;

use super::exp::exp_non_positive;
use super::f32_values;

/// `q`, `k`, `v`: [batch, seq, heads * head_dim], f32 on the CPU backend ([`super::on_host_f32`]).
/// `padding`: [batch, seq], true on keys no query may look at.
/// `query_row_sees_only_itself`: row 0 attends to key 0 alone. Returns [batch, seq, heads *
/// head_dim]; a row whose keys are all padding gets zeros.
pub fn multi_head_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    padding: Tensor<2, Bool>,
    heads: usize,
    query_row_sees_only_itself: bool,
) -> Tensor<3> {
    let device = q.device();
    let [batch, seq, dim] = q.dims();
    // The values are read in place (no copy when a tensor is not shared).
    let (q, k, v) = (q.into_data(), k.into_data(), v.into_data());
    let (q, k, v) = (f32_values(&q), f32_values(&k), f32_values(&v));
    let padding: Vec<bool> = padding.into_data().iter::<bool>().collect();
    let shape = Shape {
        batch,
        seq,
        heads,
        head_dim: dim / heads,
    };
    let context = attend(&q, &k, &v, &padding, shape, query_row_sees_only_itself);
    Tensor::from_data(TensorData::new(context, [batch, seq, dim]), &device)
}

#[derive(Clone, Copy)]
struct Shape {
    batch: usize,
    seq: usize,
    heads: usize,
    head_dim: usize,
}

impl Shape {
    fn dim(&self) -> usize {
        self.heads * self.head_dim
    }
}

/// A raw pointer that tasks share to write disjoint parts of one buffer.
#[derive(Clone, Copy)]
struct Output(*mut f32);
// SAFETY: every task writes only its own (text, head) block of columns; nothing reads the
// buffer until all tasks are done.
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

fn attend(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    padding: &[bool],
    shape: Shape,
    query_row_sees_only_itself: bool,
) -> Vec<f32> {
    let Shape { batch, seq, .. } = shape;
    let dim = shape.dim();
    assert!(q.len() == batch * seq * dim && k.len() == q.len() && v.len() == q.len());
    assert_eq!(padding.len(), batch * seq);
    let mut context = vec![0f32; batch * seq * dim];
    // Per text: the keys up to its last real one, and for those an additive mask (0 or -inf,
    // for the maximum) and a multiplicative one (1 or 0: masked keys get exactly 0).
    let keys: Vec<KeyMask> = padding.chunks(seq.max(1)).map(KeyMask::new).collect();
    let out = Output(context.as_mut_ptr());
    let task = |scores: &mut Vec<f32>, pair: usize| {
        let (text, head) = (pair / shape.heads, pair % shape.heads);
        // SAFETY: the pair's slices are in bounds (asserted above) and its output block is its
        // own (see `Output`).
        unsafe {
            attend_one(
                q,
                k,
                v,
                &keys[text],
                out,
                scores,
                shape,
                text,
                head,
                query_row_sees_only_itself,
            )
        };
    };
    let pairs = batch * shape.heads;
    #[cfg(any(feature = "native", feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        (0..pairs).into_par_iter().for_each_init(Vec::new, task);
    }
    #[cfg(not(any(feature = "native", feature = "wasm-threads")))]
    {
        let mut scores = Vec::new();
        for pair in 0..pairs {
            task(&mut scores, pair);
        }
    }
    context
}

struct KeyMask {
    /// Keys 0..len are computed; the rest are padding.
    len: usize,
    bias: Vec<f32>,
    keep: Vec<f32>,
}

impl KeyMask {
    fn new(padding: &[bool]) -> Self {
        let len = padding
            .iter()
            .rposition(|&pad| !pad)
            .map_or(0, |last| last + 1);
        let padding = &padding[..len];
        Self {
            len,
            bias: padding
                .iter()
                .map(|&pad| if pad { f32::NEG_INFINITY } else { 0.0 })
                .collect(),
            keep: padding
                .iter()
                .map(|&pad| if pad { 0.0 } else { 1.0 })
                .collect(),
        }
    }
}

/// One (text, head) pair: scores = q k^T / sqrt(head_dim) over the text's keys, a masked
/// softmax per row, context = probabilities v, written into the pair's columns of `out`.
///
/// # Safety
/// The slices hold `batch * seq * dim` values, `text < batch`, `head < heads`, and no other
/// thread writes this pair's columns of `out` meanwhile.
#[allow(clippy::too_many_arguments)]
unsafe fn attend_one(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    keys: &KeyMask,
    out: Output,
    scores: &mut Vec<f32>,
    shape: Shape,
    text: usize,
    head: usize,
    query_row_sees_only_itself: bool,
) {
    let Shape { seq, head_dim, .. } = shape;
    let dim = shape.dim() as isize;
    let n = keys.len;
    let at = text * seq * shape.dim() + head * head_dim;
    if n == 0 {
        // Every key is padding: the context stays zero.
        return;
    }
    scores.clear();
    scores.resize(seq * n, 0.0);
    let scale = 1.0 / (head_dim as f32).sqrt();
    // SAFETY (both calls): the operands are the pair's rows of q, k, v (rows `dim` apart, the
    // pair's `head_dim` columns), in bounds by the caller's contract; `scores` holds seq x n.
    unsafe {
        // scores[i, j] = scale * sum_d q[i, d] k[j, d]: k read transposed through its strides.
        gemm::gemm(
            seq,
            n,
            head_dim,
            scores.as_mut_ptr(),
            1,
            n as isize,
            false,
            q.as_ptr().add(at),
            1,
            dim,
            k.as_ptr().add(at),
            dim,
            1,
            0.0,
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
    for (row, scores) in scores.chunks_exact_mut(n).enumerate() {
        if row == 0 && query_row_sees_only_itself {
            scores.fill(0.0);
            scores[0] = 1.0;
        } else {
            softmax_masked(scores, &keys.bias, &keys.keep);
        }
    }
    unsafe {
        gemm::gemm(
            seq,
            head_dim,
            n,
            out.0.add(at),
            1,
            dim,
            false,
            scores.as_ptr(),
            1,
            n as isize,
            v.as_ptr().add(at),
            1,
            dim,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Softmax of one row of scores in place; keys with `keep` 0 (and `bias` -inf) get exactly 0.
/// A row whose keys are all masked becomes zeros. Compiled for AVX-512 and AVX2 as well as the
/// baseline, with the same results (no fused multiply-adds are formed).
#[multiversion(targets("x86_64+avx512f+avx512vl", "x86_64+avx2+fma"))]
fn softmax_masked(scores: &mut [f32], bias: &[f32], keep: &[f32]) {
    let max = masked_max(scores, bias);
    if max == f32::NEG_INFINITY {
        scores.fill(0.0);
        return;
    }
    for (s, &keep) in scores.iter_mut().zip(keep) {
        *s = exp_non_positive(*s - max) * keep;
    }
    let inverse = 1.0 / sum(scores);
    for s in scores.iter_mut() {
        *s *= inverse;
    }
}

// The two reductions below run in LANES interleaved lanes, then the lanes together: a single
// running value is a chain the compiler must keep in order (float addition is not
// associative), so that loop would not vectorise; independent lanes do.
const LANES: usize = 16;

/// max over j of scores[j] + bias[j].
#[inline(always)]
fn masked_max(scores: &[f32], bias: &[f32]) -> f32 {
    let greater = |a: f32, b: f32| if b > a { b } else { a };
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let (s_chunks, b_chunks) = (scores.chunks_exact(LANES), bias.chunks_exact(LANES));
    let (s_rest, b_rest) = (s_chunks.remainder(), b_chunks.remainder());
    for (s, b) in s_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            lanes[lane] = greater(lanes[lane], s[lane] + b[lane]);
        }
    }
    let tail = s_rest
        .iter()
        .zip(b_rest)
        .fold(f32::NEG_INFINITY, |m, (s, b)| greater(m, s + b));
    lanes.into_iter().fold(tail, greater)
}

#[inline(always)]
fn sum(values: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for chunk in chunks {
        for lane in 0..LANES {
            lanes[lane] += chunk[lane];
        }
    }
    lanes.into_iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Device;
    use burn::tensor::module::attention;
    use burn::tensor::ops::AttentionModuleOptions;

    /// burn's attention on the same tensors, with the full mask built cell by cell.
    fn burns(
        q: &Tensor<3>,
        k: &Tensor<3>,
        v: &Tensor<3>,
        padding: &[Vec<bool>],
        heads: usize,
        query_rule: bool,
    ) -> Vec<f32> {
        let [batch, seq, dim] = q.dims();
        let head_dim = dim / heads;
        let mut full = Vec::new();
        for pads in padding {
            for _ in 0..heads {
                for row in 0..seq {
                    for col in 0..seq {
                        full.push(pads[col] || (query_rule && row == 0 && col != 0));
                    }
                }
            }
        }
        let device = q.device();
        let full =
            Tensor::<4, Bool>::from_data(TensorData::new(full, [batch, heads, seq, seq]), &device);
        let split = |t: &Tensor<3>| {
            t.clone()
                .reshape([batch, seq, heads, head_dim])
                .swap_dims(1, 2)
        };
        attention(
            split(q),
            split(k),
            split(v),
            Some(full),
            None,
            AttentionModuleOptions::default(),
        )
        .swap_dims(1, 2)
        .reshape([batch, seq, dim])
        .into_data()
        .try_to_vec()
        .unwrap()
    }

    #[test]
    fn agrees_with_burns_attention_on_padded_batches() {
        let device = Device::flex();
        // Shapes of the encoder (suffix padding, one text without any) and of the list layers
        // (query row rule; a padding key inside the row too).
        let cases: [(usize, usize, &[&[usize]], bool); 3] = [
            (4, 8, &[&[5, 6, 7], &[], &[2, 3, 4, 5, 6, 7]], false),
            (2, 5, &[&[3, 4], &[1, 4]], true),
            (3, 4, &[&[4, 5, 6, 7, 8, 9, 10]], false),
        ];
        for (heads, head_dim, padded, query_rule) in cases {
            let batch = padded.len();
            let seq = 11;
            let dim = heads * head_dim;
            let values = |seed: f32| {
                let data: Vec<f32> = (0..batch * seq * dim)
                    .map(|i| 2.0 * (i as f32 * 0.377 + seed).sin())
                    .collect();
                Tensor::<3>::from_data(TensorData::new(data, [batch, seq, dim]), &device)
            };
            let (q, k, v) = (values(0.1), values(1.3), values(2.9));
            let padding: Vec<Vec<bool>> = padded
                .iter()
                .map(|keys| (0..seq).map(|j| keys.contains(&j)).collect())
                .collect();
            let expected = burns(&q, &k, &v, &padding, heads, query_rule);
            let flat: Vec<bool> = padding.concat();
            let mask = Tensor::<2, Bool>::from_data(TensorData::new(flat, [batch, seq]), &device);
            assert!(super::super::on_host_f32(&q));
            let ours = multi_head_attention(q, k, v, mask, heads, query_rule)
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            for (i, (a, b)) in ours.iter().zip(&expected).enumerate() {
                assert!(
                    (a - b).abs() <= 2e-6,
                    "heads {heads}, value {i}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn a_text_of_padding_only_gets_zeros() {
        let shape = Shape {
            batch: 1,
            seq: 3,
            heads: 1,
            head_dim: 2,
        };
        let ones = vec![1.0f32; 6];
        let context = attend(&ones, &ones, &ones, &[true; 3], shape, false);
        assert_eq!(context, vec![0.0; 6]);
    }

    #[test]
    fn softmax_gives_masked_keys_exactly_zero() {
        let mut scores = [1.0, 50.0, 2.0, -3.0];
        let bias = [0.0, f32::NEG_INFINITY, 0.0, 0.0];
        let keep = [1.0, 0.0, 1.0, 1.0];
        softmax_masked(&mut scores, &bias, &keep);
        assert_eq!(scores[1], 0.0);
        let exact = |x: f64| x.exp() / (1f64.exp() + 2f64.exp() + (-3f64).exp());
        for (s, x) in [(scores[0], 1.0), (scores[2], 2.0), (scores[3], -3.0)] {
            assert!((s as f64 - exact(x)).abs() < 1e-7);
        }
    }
}
