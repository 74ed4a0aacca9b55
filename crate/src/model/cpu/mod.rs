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

pub use attention::{handles as handles_attention, multi_head_attention};
pub use linear::{Then, linear, linear_plus};

use burn::tensor::{DType, Device, Tensor};

/// Whether `x` lives on the CPU backend in f32 or f16: the tensors these kernels take.
fn on_host<const D: usize>(x: &Tensor<D>) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F16) && x.device() == Device::flex()
}

/// Elements per task: large enough that a task outweighs its scheduling, small enough that a
/// [batch, seq, 1536] activation of a short batch still spreads over the cores.
const CHUNK: usize = 16 * 1024;

/// Runs `kernel` over `values` in chunks, on the thread pool where there is one.
fn for_chunks<T: Send>(values: &mut [T], kernel: fn(&mut [T])) {
    #[cfg(any(feature = "native", feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        if values.len() > CHUNK {
            values.par_chunks_mut(CHUNK).for_each(kernel);
            return;
        }
    }
    for chunk in values.chunks_mut(CHUNK) {
        kernel(chunk);
    }
}

/// Runs `kernel` on each row (`width` values) of `values`, with the row's index; natively the
/// rows are split over the thread pool in tasks of about [`CHUNK`] values.
fn parallel_rows(
    values: &mut [f32],
    width: usize,
    kernel: impl Fn(usize, &mut [f32]) + Send + Sync,
) {
    if width == 0 {
        return;
    }
    let rows_per_task = (CHUNK / width).max(1);
    let task = |(index, rows): (usize, &mut [f32])| {
        for (offset, row) in rows.chunks_mut(width).enumerate() {
            kernel(index * rows_per_task + offset, row);
        }
    };
    #[cfg(any(feature = "native", feature = "wasm-threads"))]
    {
        use rayon::prelude::*;
        if values.len() > rows_per_task * width {
            values
                .par_chunks_mut(rows_per_task * width)
                .enumerate()
                .for_each(task);
            return;
        }
    }
    values
        .chunks_mut(rows_per_task * width)
        .enumerate()
        .for_each(task);
}
