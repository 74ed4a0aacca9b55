//! Running the encoder over many texts: length-bucketed, padded batches whose pooled rows are
//! put back in input order; and the small tensor helpers the scoring paths share.

use burn::tensor::{Device, FloatDType, Int, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::rank::length_batches;

/// At most this many texts per encoder batch, as the reference chunks its encoding.
const MAX_TEXTS_PER_BATCH: usize = 400;

/// Runs `encode(ids [b, T], real [b, T]) -> [b, F]` over `ids` (one token sequence per text) in
/// batches of similar length holding at most `batch_tokens` padded tokens. Returns
/// [ids.len(), F], rows in input order.
pub fn encode_in_length_batches(
    ids: &[Vec<u32>],
    batch_tokens: usize,
    device: &Device,
    encode: impl Fn(Tensor<2, Int>, Tensor<2>) -> Tensor<2>,
) -> Tensor<2> {
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    let batches = length_batches(&lengths, batch_tokens, MAX_TEXTS_PER_BATCH);
    let parts = batches
        .iter()
        .map(|batch| {
            let width = batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
            let mut padded = vec![0i64; batch.len() * width];
            let mut real = vec![0f32; batch.len() * width];
            for (row, &i) in batch.iter().enumerate() {
                for (col, &id) in ids[i].iter().enumerate() {
                    padded[row * width + col] = i64::from(id);
                    real[row * width + col] = 1.0;
                }
            }
            let shape = [batch.len(), width];
            let padded = Tensor::<2, Int>::from_data(TensorData::new(padded, shape), device);
            let real = Tensor::<2>::from_data(
                TensorData::new(real, shape),
                (device, FloatDType::F32.into()),
            );
            encode(padded, real)
        })
        .collect();
    // Rows come out in batch order; put them back in input order.
    let mut row_of_text = vec![0i64; ids.len()];
    for (row, &text) in batches.iter().flatten().enumerate() {
        row_of_text[text] = row as i64;
    }
    Tensor::cat(parts, 0).select(0, index_tensor(row_of_text, device))
}

pub fn index_tensor(indices: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = indices.len();
    Tensor::from_data(TensorData::new(indices, [n]), device)
}

/// Reads a float tensor back to the host as f32 values, row-major (blocking: native only).
#[cfg_attr(not(feature = "native"), allow(dead_code))]
pub fn read_floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    block_on(read_floats_async(t))
}

/// Runs an async device call to completion on the calling thread (native). On wasm32 nothing
/// may block: there the async forms must be used, and this reports it instead of hanging.
pub fn block_on<T>(call: impl Future<Output = Result<T>>) -> Result<T> {
    burn::tensor::try_read_sync(call).unwrap_or_else(|| {
        Err(Error::Execution(
            "a blocking call cannot wait for the device here (wasm32): use the async methods"
                .into(),
        ))
    })
}

/// Reads a float tensor back to the host as f32 values, row-major, without blocking: the only
/// readback allowed on wasm32 (WebGPU maps buffers asynchronously).
pub async fn read_floats_async<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t
        .cast(FloatDType::F32)
        .into_data_async()
        .await
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
    data.try_to_vec::<f32>()
        .map_err(|e| Error::Execution(format!("{e:?}")))
}
