//! Checkpoint reading: every format is decoded into one [`WeightMap`] of f32 host tensors under
//! canonical key names, which the model builders then take from, checking shapes and values.

pub mod bundle;
mod map;
#[cfg(feature = "native")]
mod pickle;
mod safetensors_file;
#[cfg(feature = "native")]
mod split_layout;

pub use map::{Destination, RawTensor, Weight, WeightMap};
pub use safetensors_file::read_safetensors;
#[cfg(feature = "native")]
pub use split_layout::{
    EncoderFiles, IndexedTensor, ListPartFiles, ModelFiles, SafetensorsIndex, TokenizerFiles,
    encoder_key, find_encoder_files, find_model_files, load_encoder_weights,
    load_list_part_weights, load_split_weights, merged_key,
};

/// Element types found in checkpoints, decoded to f32 on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDType {
    F64,
    F32,
    F16,
    BF16,
}

impl StoredDType {
    pub(crate) fn size(self) -> usize {
        match self {
            StoredDType::F64 => 8,
            StoredDType::F32 => 4,
            StoredDType::F16 | StoredDType::BF16 => 2,
        }
    }
}

/// Decodes little-endian `bytes` of `dtype` into f32 values. Returns `None` when the byte count
/// does not match `elements` (a truncated or corrupt tensor).
pub(crate) fn decode_to_f32(dtype: StoredDType, bytes: &[u8], elements: usize) -> Option<Vec<f32>> {
    if bytes.len() != elements.checked_mul(dtype.size())? {
        return None;
    }
    let values = match dtype {
        StoredDType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        StoredDType::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")) as f32)
            .collect(),
        StoredDType::F16 => bytes
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        StoredDType::BF16 => bytes
            .chunks_exact(2)
            .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
    };
    Some(values)
}
