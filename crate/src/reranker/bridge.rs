//! The sync/async bridge of the reranker: every device readback is asynchronous underneath
//! (WebGPU maps buffers asynchronously, and wasm32 may never block), and the blocking API of
//! native callers runs that same path to completion.

use burn::tensor::{FloatDType, Tensor};

use crate::error::{Error, Result};

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
/// readback allowed on wasm32.
pub async fn read_floats_async<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t
        .cast(FloatDType::F32)
        .into_data_async()
        .await
        .map_err(|e| Error::Execution(format!("{e:?}")))?;
    data.try_to_vec::<f32>()
        .map_err(|e| Error::Execution(format!("{e:?}")))
}

/// [`read_floats_async`], blocking (native only).
#[cfg_attr(not(feature = "native"), allow(dead_code))]
pub fn read_floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    block_on(read_floats_async(t))
}
