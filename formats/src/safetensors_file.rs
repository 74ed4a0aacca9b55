//! safetensors files, decoded tensor by tensor to f32: checkpoints (float tensors only) and
//! bundle shards (float tensors, and quantized weights with their scales).

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::quantize::{SCALE_SUFFIX, StoredQuantized, ValuesKind, dequantize};
use crate::tensor::{RawTensor, StoredDType, decode_to_f32};

/// Decodes every floating-point tensor of a safetensors file. `rename` maps a stored key to its
/// canonical key, or to `None` for tensors the model does not use (they are not decoded).
pub fn read_safetensors(
    bytes: &[u8],
    file: &str,
    mut rename: impl FnMut(&str) -> Option<String>,
    mut sink: impl FnMut(String, RawTensor) -> Result<()>,
) -> Result<()> {
    let tensors = parse(bytes, file)?;
    for (name, view) in tensors.iter() {
        let Some(key) = rename(name) else { continue };
        sink(key, decode_float(file, name, &view)?)?;
    }
    Ok(())
}

/// Decodes a bundle shard: float tensors as they are, quantized weights (`I8` or `U8` values
/// beside an `F16` `<key>.scale`) to f32. `q4_block` is the manifest's q4 block size (`None`:
/// the shard may hold no q4 weight). Returns the names of every stored tensor, scales included.
pub fn read_bundle_shard(
    bytes: &[u8],
    file: &str,
    q4_block: Option<usize>,
    mut sink: impl FnMut(String, RawTensor) -> Result<()>,
) -> Result<Vec<String>> {
    let tensors = parse(bytes, file)?;
    let mut names: Vec<String> = tensors.names().into_iter().map(str::to_string).collect();
    names.sort();
    for name in &names {
        let view = tensors
            .tensor(name)
            .map_err(|e| Error::checkpoint(file, format!("tensor `{name}`: {e}")))?;
        let kind = match view.dtype() {
            Dtype::I8 => ValuesKind::I8,
            Dtype::U8 => ValuesKind::U8,
            _ if name.ends_with(SCALE_SUFFIX) => {
                let weight = &name[..name.len() - SCALE_SUFFIX.len()];
                let quantized = tensors
                    .tensor(weight)
                    .is_ok_and(|w| matches!(w.dtype(), Dtype::I8 | Dtype::U8));
                if !quantized {
                    return Err(Error::checkpoint(
                        file,
                        format!("scale tensor `{name}` has no quantized weight `{weight}`"),
                    ));
                }
                continue;
            }
            _ => {
                sink(name.clone(), decode_float(file, name, &view)?)?;
                continue;
            }
        };
        let scale_name = format!("{name}{SCALE_SUFFIX}");
        let scale = tensors.tensor(&scale_name).map_err(|_| {
            Error::checkpoint(
                file,
                format!("quantized tensor `{name}` has no scale tensor `{scale_name}`"),
            )
        })?;
        if scale.dtype() != Dtype::F16 {
            return Err(Error::checkpoint(
                file,
                format!(
                    "scale tensor `{scale_name}` is {:?}, expected F16",
                    scale.dtype()
                ),
            ));
        }
        if kind == ValuesKind::U8 && q4_block.is_none() {
            return Err(Error::checkpoint(
                file,
                format!("tensor `{name}` is q4 but manifest.json declares no q4 block size"),
            ));
        }
        let stored = StoredQuantized {
            scheme_of_values: kind,
            values: view.data(),
            values_shape: view.shape(),
            scales: scale.data(),
            scales_shape: scale.shape(),
        };
        let (shape, data) = dequantize(file, name, &stored, q4_block)?;
        sink(name.clone(), RawTensor { shape, data })?;
    }
    Ok(names)
}

fn parse<'a>(bytes: &'a [u8], file: &str) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes)
        .map_err(|e| Error::checkpoint(file, format!("not a valid safetensors file: {e}")))
}

fn decode_float(file: &str, name: &str, view: &TensorView) -> Result<RawTensor> {
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
    Ok(RawTensor { shape, data })
}
