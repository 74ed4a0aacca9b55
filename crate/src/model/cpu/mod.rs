//! The model's own kernels for the CPU backend, where burn's are slow for this model's shapes
//! (docs/perf.md has the profiles): GELU, attention, and the Linear layers' bias (with GELU)
//! in one parallel pass. Each takes a tensor's values out of the
//! tensor (no copy when the tensor is not shared), computes on the host and puts the result
//! back; on other devices, and in float types these kernels do not handle, burn's kernels run.
//!
//! The element-wise code is plain Rust written so that the compiler vectorises it (SSE/AVX
//! natively, simd128 in wasm: no calls, no branches the compiler cannot turn into selects);
//! matrix products go to the `gemm` crate, as burn's CPU backend does. Natively the work is
//! spread over rayon's pool, the one burn's CPU backend uses.

mod attention;
mod exp;
mod gelu;
mod linear;

pub use attention::multi_head_attention;
pub use linear::{Then, linear, linear_plus};

use std::borrow::Cow;

use burn::tensor::{DType, Device, Tensor, TensorData};

/// Whether `x` lives on the CPU backend in f32 or f16: the tensors the GELU kernel takes.
fn on_host<const D: usize>(x: &Tensor<D>) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F16) && is_plain_host(x)
}

/// On the CPU backend, outside autodiff: the kernels work on host buffers, which burn cannot
/// differentiate through, so training runs burn's own ops (the same function). Device equality
/// ignores autodiff, hence the second check.
fn is_plain_host<const D: usize>(x: &Tensor<D>) -> bool {
    let device = x.device();
    device == Device::flex() && !device.is_autodiff()
}

/// Whether `x` lives on the CPU backend in f32: the tensors the attention and Linear kernels
/// take.
pub fn on_host_f32<const D: usize>(x: &Tensor<D>) -> bool {
    x.dtype() == DType::F32 && is_plain_host(x)
}

/// A tensor's f32 values, borrowed where the buffer allows.
fn f32_values(data: &TensorData) -> Cow<'_, [f32]> {
    match data.as_slice::<f32>() {
        Ok(values) => Cow::Borrowed(values),
        // A buffer not aligned for f32 (not seen from the CPU backend) is copied.
        Err(_) => Cow::Owned(data.iter::<f32>().collect()),
    }
}

/// Elements per task: large enough that a task outweighs its scheduling, small enough that a
/// [batch, seq, 1536] activation of a short batch still spreads over the cores.
const CHUNK: usize = 16 * 1024;

/// Runs `kernel` on each chunk of `chunk_len` values (the last may be shorter) with the chunk's
/// index; natively the chunks are spread over the thread pool when there is more than one.
fn parallel_chunks<T: Send>(
    values: &mut [T],
    chunk_len: usize,
    kernel: impl Fn(usize, &mut [T]) + Send + Sync,
) {
    #[cfg(any(feature = "native", feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        if values.len() > chunk_len {
            values
                .par_chunks_mut(chunk_len)
                .enumerate()
                .for_each(|(index, chunk)| kernel(index, chunk));
            return;
        }
    }
    for (index, chunk) in values.chunks_mut(chunk_len).enumerate() {
        kernel(index, chunk);
    }
}

/// Runs `kernel` on each row (`width` values) of `values`, with the row's index, in tasks of
/// about [`CHUNK`] values.
fn parallel_rows(
    values: &mut [f32],
    width: usize,
    kernel: impl Fn(usize, &mut [f32]) + Send + Sync,
) {
    if width == 0 {
        return;
    }
    let rows_per_task = (CHUNK / width).max(1);
    parallel_chunks(values, rows_per_task * width, |task, rows| {
        for (offset, row) in rows.chunks_mut(width).enumerate() {
            kernel(task * rows_per_task + offset, row);
        }
    });
}
