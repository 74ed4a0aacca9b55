//! PyTorch state-dict pickles (`torch.save`, zip or legacy format), through burn's reader.

use std::path::Path;

use pytorch_reader::{DType, PytorchReader};

use super::{RawTensor, StoredDType, decode_to_f32};
use crate::error::{Error, Result};

/// Decodes every floating-point tensor of a `.pt` / `.bin` state dict (see `read_safetensors`
/// for `rename` and `sink`).
pub fn read_pickle(
    path: &Path,
    mut rename: impl FnMut(&str) -> Option<String>,
    mut sink: impl FnMut(String, RawTensor) -> Result<()>,
) -> Result<()> {
    let file = path.display().to_string();
    let reader = PytorchReader::new(path)
        .map_err(|e| Error::checkpoint(&file, format!("not a readable PyTorch file: {e}")))?;
    for (name, tensor) in reader.into_tensors() {
        let Some(key) = rename(&name) else { continue };
        let dtype = match tensor.dtype() {
            DType::F32 => StoredDType::F32,
            DType::F16 => StoredDType::F16,
            DType::BF16 => StoredDType::BF16,
            DType::F64 => StoredDType::F64,
            other => {
                return Err(Error::checkpoint(
                    &file,
                    format!("tensor `{name}` has unsupported dtype {other:?}"),
                ));
            }
        };
        let bytes = tensor
            .read()
            .map_err(|e| Error::checkpoint(&file, format!("tensor `{name}`: {e}")))?;
        let shape = tensor.shape().to_vec();
        let data = decode_to_f32(dtype, &bytes, tensor.num_elements()).ok_or_else(|| {
            Error::checkpoint(&file, format!("tensor `{name}` has the wrong byte size"))
        })?;
        sink(key, RawTensor { shape, data })?;
    }
    Ok(())
}
