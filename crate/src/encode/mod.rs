//! Running the encoder over many texts: token sequences in, one feature row per text out.
//! Texts are grouped into padded [`TokenBatch`]es of similar length (`batching`), each batch goes
//! through the model's `encode`, and the rows are put back in input order.

pub mod batching;

use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};

use crate::model::TokenBatch;
use batching::{MAX_TEXTS_PER_BATCH, length_batches};

/// Pads `sequences` (rows of `ids`) to their longest: ids with 0, and the real-token mask.
pub fn token_batch(ids: &[Vec<u32>], rows: &[usize], device: &Device) -> TokenBatch {
    let width = rows.iter().map(|&i| ids[i].len()).max().unwrap_or(0);
    let mut padded = vec![0i64; rows.len() * width];
    let mut real = vec![0f32; rows.len() * width];
    for (row, &i) in rows.iter().enumerate() {
        for (col, &id) in ids[i].iter().enumerate() {
            padded[row * width + col] = i64::from(id);
            real[row * width + col] = 1.0;
        }
    }
    let shape = [rows.len(), width];
    TokenBatch {
        ids: Tensor::from_data(TensorData::new(padded, shape), device),
        real: Tensor::from_data(
            TensorData::new(real, shape),
            (device, FloatDType::F32.into()),
        ),
    }
}

/// Runs `encode(batch) -> [b, F]` over `ids` (one token sequence per text) in batches of
/// similar length holding at most `batch_tokens` padded tokens. Returns [ids.len(), F], rows
/// in input order.
pub fn encode_in_length_batches(
    ids: &[Vec<u32>],
    batch_tokens: usize,
    device: &Device,
    encode: impl Fn(TokenBatch) -> Tensor<2> + Sync,
) -> Tensor<2> {
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    let batches = length_batches(&lengths, batch_tokens, MAX_TEXTS_PER_BATCH);
    let parts = encode_batches(&batches, device, |rows| {
        encode(token_batch(ids, rows, device))
    });
    // Rows come out in batch order; put them back in input order.
    let mut row_of_text = vec![0i64; ids.len()];
    for (row, &text) in batches.iter().flatten().enumerate() {
        row_of_text[text] = row as i64;
    }
    Tensor::cat(parts, 0).select(0, index_tensor(row_of_text, device))
}

/// Encodes every batch. On the CPU with threads the batches themselves run on the thread pool
/// (up to one per core in flight), not only their matrix products: gemm packs an operand on the
/// calling thread before the cores share a product, so with one batch at a time the other
/// cores waited during every packing (a quarter of the time at BERT-base width on 2 cores);
/// other batches in flight fill them. In the browser's threaded build this also keeps the pool
/// busy through a call: with one batch at a time its threads fell asleep and were woken for
/// every kernel, and their speed-up faded after seconds of continuous scoring. Each batch's
/// numbers are the same either way.
fn encode_batches(
    batches: &[Vec<usize>],
    device: &Device,
    encode: impl Fn(&[usize]) -> Tensor<2> + Sync,
) -> Vec<Tensor<2>> {
    #[cfg(any(feature = "native", feature = "wasm-threads"))]
    if *device == Device::flex() && batches.len() > 1 {
        use rayon::prelude::*;
        return batches.par_iter().map(|rows| encode(rows)).collect();
    }
    let _ = device;
    batches.iter().map(|rows| encode(rows)).collect()
}

/// A 1-d tensor of row indices, for `select`.
pub fn index_tensor(indices: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = indices.len();
    Tensor::from_data(TensorData::new(indices, [n]), device)
}
