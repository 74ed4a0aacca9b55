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
/// beside an `F16` `<key>.scale`) to f32. `block` is the manifest's block size (`None`: the shard
/// may hold no quantized weight). Returns the names of every stored tensor, scales included.
pub fn read_bundle_shard(
    bytes: &[u8],
    file: &str,
    block: Option<usize>,
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
        if block.is_none() {
            return Err(Error::checkpoint(
                file,
                format!("tensor `{name}` is quantized but manifest.json declares no block size"),
            ));
        }
        let stored = StoredQuantized {
            scheme_of_values: kind,
            values: view.data(),
            values_shape: view.shape(),
            scales: scale.data(),
            scales_shape: scale.shape(),
        };
        let (shape, data) = dequantize(file, name, &stored, block)?;
        sink(name.clone(), RawTensor { shape, data })?;
    }
    Ok(names)
}

fn parse<'a>(bytes: &'a [u8], file: &str) -> Result<SafeTensors<'a>> {
    SafeTensors::deserialize(bytes).map_err(|e| {
        let why = match tensor_with_wrong_size(bytes) {
            Some(name) => format!("tensor `{name}`: its bytes do not match its shape and dtype"),
            None => format!("not a valid safetensors file: {e}"),
        };
        Error::checkpoint(file, why)
    })
}

/// The first tensor whose byte range in the header does not match its shape and dtype.
/// safetensors' own error for that case does not name the tensor; this reads the header (an
/// 8-byte little-endian length, then JSON) again only to name it in the message.
fn tensor_with_wrong_size(bytes: &[u8]) -> Option<String> {
    let len = usize::try_from(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?)).ok()?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(bytes.get(8..8usize.checked_add(len)?)?).ok()?;
    let mut entries: Vec<_> = header
        .iter()
        .filter(|(name, _)| *name != "__metadata__")
        .collect();
    entries.sort_by_key(|(_, info)| info["data_offsets"][0].as_u64());
    entries.into_iter().find_map(|(name, info)| {
        let bits: u64 = match info["dtype"].as_str()? {
            "BOOL" | "U8" | "I8" | "F8_E4M3" | "F8_E5M2" => 8,
            "U16" | "I16" | "F16" | "BF16" => 16,
            "U32" | "I32" | "F32" => 32,
            "U64" | "I64" | "F64" => 64,
            _ => return None,
        };
        let elements = info["shape"]
            .as_array()?
            .iter()
            .try_fold(1u64, |n, d| n.checked_mul(d.as_u64()?))?;
        let offsets = info["data_offsets"].as_array()?;
        let (start, end) = (offsets.first()?.as_u64()?, offsets.get(1)?.as_u64()?);
        let declared = elements.checked_mul(bits).map(|b| b / 8);
        (end.checked_sub(start) != declared).then(|| name.clone())
    })
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
