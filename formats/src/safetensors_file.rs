//! safetensors files, decoded tensor by tensor to f32.

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::tensor::{RawTensor, StoredDType, decode_to_f32};

/// Decodes every floating-point tensor of a safetensors file. `rename` maps a stored key to its
/// canonical key, or to `None` for tensors the model does not use (they are not decoded).
pub fn read_safetensors(
    bytes: &[u8],
    file: &str,
    mut rename: impl FnMut(&str) -> Option<String>,
    mut sink: impl FnMut(String, RawTensor) -> Result<()>,
) -> Result<()> {
    let tensors = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::checkpoint(file, format!("not a valid safetensors file: {e}")))?;
    for (name, view) in tensors.iter() {
        let Some(key) = rename(name) else { continue };
        let dtype = match view.dtype() {
            Dtype::F32 => StoredDType::F32,
            Dtype::F16 => StoredDType::F16,
            Dtype::BF16 => StoredDType::BF16,
            Dtype::F64 => StoredDType::F64,
            other => {
                return Err(Error::checkpoint(
                    file,
                    format!("tensor `{name}` has unsupported dtype {other:?}"),
                ));
            }
        };
        let shape = view.shape().to_vec();
        let data = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .and_then(|elements| decode_to_f32(dtype, view.data(), elements))
            .ok_or_else(|| {
                Error::checkpoint(file, format!("tensor `{name}` has the wrong byte size"))
            })?;
        sink(key, RawTensor { shape, data })?;
    }
    Ok(())
}
