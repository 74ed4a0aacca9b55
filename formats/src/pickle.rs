//! PyTorch state-dict pickles (`torch.save`, zip or legacy format), through burn's reader.

use std::path::Path;

use pytorch_reader::{DType, PytorchReader};

use crate::error::{Error, Result};
use crate::tensor::{RawTensor, StoredDType, byte_size, decode_to_f32};

/// Decodes every floating-point tensor of a `.pt` / `.bin` state dict (see `read_safetensors`
/// for `rename` and `sink`).
///
/// Each tensor's declared size (elements x element size) is checked against the file's length
/// before its bytes are read: a small file can declare a view of billions of elements over one
/// stored value (a zero stride), which would otherwise be gathered into that many bytes.
pub fn read_pickle(
    path: &Path,
    mut rename: impl FnMut(&str) -> Option<String>,
    mut sink: impl FnMut(String, RawTensor) -> Result<()>,
) -> Result<()> {
    let file = path.display().to_string();
    let file_len = std::fs::metadata(path)
        .map_err(|e| Error::read_model(&file, e))?
        .len();
    let reader = PytorchReader::new(path)
        .map_err(|e| Error::checkpoint(&file, format!("not a readable PyTorch file: {e}")))?;
    let mut tensors: Vec<_> = reader.into_tensors().into_iter().collect();
    // The reader's map has no order; errors name the same tensor on every run.
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, tensor) in tensors {
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
        let shape = tensor.shape().to_vec();
        let declared = byte_size(dtype, &shape);
        if declared.is_none_or(|bytes| bytes as u64 > file_len) {
            return Err(Error::checkpoint(
                &file,
                format!(
                    "tensor `{name}` of shape {shape:?} ({dtype:?}) declares more bytes than \
                     the file's {file_len}"
                ),
            ));
        }
        let elements: usize = shape.iter().product();
        let bytes = tensor
            .read()
            .map_err(|e| Error::checkpoint(&file, format!("tensor `{name}`: {e}")))?;
        let data = decode_to_f32(dtype, &bytes, elements).ok_or_else(|| {
            Error::checkpoint(&file, format!("tensor `{name}` has the wrong byte size"))
        })?;
        sink(key, RawTensor { shape, data })?;
    }
    Ok(())
}
