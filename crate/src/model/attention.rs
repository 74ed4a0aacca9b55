//! Multi-head scaled dot-product attention over already-projected q, k, v, shared by the BERT
//! encoder and the list transformer (both use the plain 1/sqrt(head_dim) scaling).

use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

/// `q`, `k`, `v`: [batch, seq, heads * head_dim]. `blocked`: [batch, seq_q, seq_k], true where a
/// query may not look at a key. Returns [batch, seq, heads * head_dim].
pub fn multi_head_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    blocked: Tensor<3, Bool>,
    heads: usize,
) -> Tensor<3> {
    let [batch, seq, dim] = q.dims();
    let head_dim = dim / heads;
    let split = |t: Tensor<3>| t.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);
    let mask = blocked.unsqueeze_dim::<4>(1).repeat_dim(1, heads);
    let context = attention(
        split(q),
        split(k),
        split(v),
        Some(mask),
        None,
        AttentionModuleOptions::default(),
    );
    context.swap_dims(1, 2).reshape([batch, seq, dim])
}
