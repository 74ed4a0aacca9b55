//! Multi-head scaled dot-product attention over already-projected q, k, v, shared by the BERT
//! encoder and the list transformer (both use the plain 1/sqrt(head_dim) scaling): the model's
//! own kernel on the CPU in f32 (`cpu::multi_head_attention`), burn's fused attention elsewhere.

use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

use super::cpu;

/// `q`, `k`, `v`: [batch, seq, heads * head_dim]. `padding`: [batch, seq], true on keys that are
/// padding; no query looks at them. The mask reaches burn's attention as a broadcast view
/// ([batch, 1, 1, seq] expanded), so no [seq, seq] mask is ever materialised.
/// `query_row_sees_only_itself`: row 0 attends to key 0 alone (ListAttention's query row).
/// Returns [batch, seq, heads * head_dim].
pub fn multi_head_attention(
    q: Tensor<3>,
    k: Tensor<3>,
    v: Tensor<3>,
    padding: Tensor<2, Bool>,
    heads: usize,
    query_row_sees_only_itself: bool,
) -> Tensor<3> {
    if cpu::on_host_f32(&q) {
        return cpu::multi_head_attention(q, k, v, padding, heads, query_row_sees_only_itself);
    }
    let [batch, seq, dim] = q.dims();
    let head_dim = dim / heads;
    let split = |t: Tensor<3>| t.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);
    let mask = padding
        .reshape([batch, 1, 1, seq])
        .expand([batch, heads, seq, seq]);
    let v = split(v);
    let context = attention(
        split(q),
        split(k),
        v.clone(),
        Some(mask),
        None,
        AttentionModuleOptions::default(),
    );
    // A softmax over the single key 0 is exactly 1, so that row's context is exactly v's row 0:
    // set it directly rather than building a [seq, seq] mask for one row.
    let context = if query_row_sees_only_itself {
        let own_value = v.slice([0..batch, 0..heads, 0..1, 0..head_dim]);
        context.slice_assign([0..batch, 0..heads, 0..1, 0..head_dim], own_value)
    } else {
        context
    };
    context.swap_dims(1, 2).reshape([batch, seq, dim])
}

#[cfg(all(test, feature = "native"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    /// The broadcast padding mask plus the query-row rule give what the full ListAttention mask
    /// ([batch, heads, seq, seq], built cell by cell) gives.
    #[test]
    fn query_row_rule_and_padding_match_the_full_list_attention_mask() {
        let device = Device::flex();
        let (batch, seq, heads, head_dim) = (2, 4, 2, 3);
        let dim = heads * head_dim;
        let lengths = [4usize, 2];
        let values = |seed: f32| {
            let data: Vec<f32> = (0..batch * seq * dim)
                .map(|i| (i as f32 * 0.37 + seed).sin())
                .collect();
            Tensor::<3>::from_data(TensorData::new(data, [batch, seq, dim]), &device)
        };
        let (q, k, v) = (values(0.1), values(1.3), values(2.9));
        let padding: Vec<bool> = lengths
            .iter()
            .flat_map(|&real| (0..seq).map(move |item| item >= real))
            .collect();
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(padding, [batch, seq]), &device);
        let ours = multi_head_attention(q.clone(), k.clone(), v.clone(), padding, heads, true);

        let mut full = Vec::new();
        for &real in &lengths {
            for _ in 0..heads {
                for row in 0..seq {
                    for col in 0..seq {
                        full.push(col >= real || (row == 0 && col != 0));
                    }
                }
            }
        }
        let full =
            Tensor::<4, Bool>::from_data(TensorData::new(full, [batch, heads, seq, seq]), &device);
        let split = |t: Tensor<3>| t.reshape([batch, seq, heads, head_dim]).swap_dims(1, 2);
        let expected = attention(
            split(q),
            split(k),
            split(v),
            Some(full),
            None,
            AttentionModuleOptions::default(),
        )
        .swap_dims(1, 2)
        .reshape([batch, seq, dim]);
        let (ours, expected): (Vec<f32>, Vec<f32>) = (
            ours.into_data().try_to_vec().unwrap(),
            expected.into_data().try_to_vec().unwrap(),
        );
        // Padded rows are not compared: they see the same keys either way, but are never read.
        for list in 0..batch {
            for row in 0..lengths[list] {
                for j in 0..dim {
                    let at = (list * seq + row) * dim + j;
                    assert!(
                        (ours[at] - expected[at]).abs() <= 1e-6,
                        "list {list} row {row}: {} vs {}",
                        ours[at],
                        expected[at]
                    );
                }
            }
        }
    }
}
