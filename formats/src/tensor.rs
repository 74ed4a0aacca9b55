//! Element types found in checkpoints and their decoding to f32 host tensors.

/// One tensor decoded to f32 on the host, row-major, in the checkpoint's own layout.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl RawTensor {
    /// Whether every value is finite (no NaN, no infinity).
    pub fn all_finite(&self) -> bool {
        self.data.iter().all(|v| v.is_finite())
    }
}

/// Element types found in checkpoints, decoded to f32 on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDType {
    F64,
    F32,
    F16,
    BF16,
}

impl StoredDType {
    /// Bytes per stored element.
    pub fn size(self) -> usize {
        match self {
            StoredDType::F64 => 8,
            StoredDType::F32 => 4,
            StoredDType::F16 | StoredDType::BF16 => 2,
        }
    }
}

/// Bytes a tensor of `shape` and `dtype` takes, or `None` when that overflows `usize`.
pub fn byte_size(dtype: StoredDType, shape: &[usize]) -> Option<usize> {
    shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))?
        .checked_mul(dtype.size())
}

/// Decodes little-endian `bytes` of `dtype` into f32 values. Returns `None` when the byte count
/// does not match `elements` (a truncated or corrupt tensor).
pub fn decode_to_f32(dtype: StoredDType, bytes: &[u8], elements: usize) -> Option<Vec<f32>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_overflow_to_none() {
        assert_eq!(byte_size(StoredDType::F32, &[2, 3]), Some(24));
        assert_eq!(byte_size(StoredDType::F16, &[]), Some(2));
        assert_eq!(byte_size(StoredDType::F64, &[usize::MAX, 2]), None);
    }

    #[test]
    fn a_wrong_byte_count_is_refused() {
        assert_eq!(
            decode_to_f32(StoredDType::F32, &[0; 8], 2),
            Some(vec![0.0, 0.0])
        );
        assert_eq!(decode_to_f32(StoredDType::F32, &[0; 7], 2), None);
        assert_eq!(decode_to_f32(StoredDType::F32, &[], usize::MAX), None);
    }
}
