//! The quantized weight schemes of `q8` and `q4` bundles (the format is documented in the
//! project's `docs/formats.md`), written by `convert` and decoded to f32 when a bundle loads.
//!
//! Hand-written: no maintained crate quantizes to this exact layout (safetensors tensors, f16
//! scales) while reading one shard at a time, and both the writer and the reader must agree with
//! the NumPy implementation in `tests/reference/` to the bit.
//!
//! Both split each row of a 2-D weight `[rows, cols]` into blocks of `block` consecutive values
//! (cols a multiple of `block`; a whole row is one block where it is not) with one `F16` scale
//! per block, `[rows, cols / block]`: `w = q * scale`.
//! - `q8`: `I8` values `[rows, cols]` in -127..=127.
//! - `q4`: `U8` bytes `[rows, cols / 2]` holding two values each (value `2j` in the low nibble,
//!   `2j + 1` in the high one, each stored as `q + 8` with q in -7..=7); blocks are even.
//!
//! Scales: `f16(max |w| / qmax)` of the row or block (qmax 127 or 7, the division in f32, the
//! f16 rounded to nearest-even); values `clamp(round_half_even(w / f32(scale)), -qmax, qmax)`,
//! or 0 where the scale is 0.

use half::f16;

use crate::error::{Error, Result};

/// The suffix of a quantized weight's scale tensor: `<weight key>.scale`.
pub const SCALE_SUFFIX: &str = ".scale";

/// The default block size of `q8` and `q4` (values per f16 scale along a row). One scale per row
/// was tried for q8 first: a few input columns with outlying values (the FFN output weights of a
/// real BERT) then cost the whole row its precision; blocks of 32 cost 6 % more bytes and keep
/// the orderings (docs/quantization.md).
pub const DEFAULT_BLOCK: usize = 32;

/// How one weight is quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Symmetric int8, one scale per `block` values of a row.
    Q8Blocks { block: usize },
    /// Symmetric 4-bit, one scale per `block` values of a row.
    Q4Blocks { block: usize },
}

/// A quantized weight: the stored values, its scales and the shapes they are stored with.
#[derive(Debug, Clone, PartialEq)]
pub struct Quantized {
    pub values: Vec<u8>,
    pub values_shape: Vec<usize>,
    pub scales: Vec<f16>,
    pub scales_shape: Vec<usize>,
}

impl Quantized {
    /// The stored form of a `[rows, cols]` weight's integer `levels` (row-major) and its block
    /// `scales`, as `scheme` stores them: q8 as i8 bytes, q4 two values per byte (`q + 8`, the
    /// even input in the low nibble). Every quantizer ends here.
    pub(crate) fn pack(
        scheme: Scheme,
        rows: usize,
        cols: usize,
        levels: &[i8],
        scales: Vec<f16>,
    ) -> Quantized {
        let (values_shape, scales_shape) = scheme.stored_shapes(rows, cols);
        let values = match scheme {
            Scheme::Q8Blocks { .. } => levels.iter().map(|&q| q as u8).collect(),
            Scheme::Q4Blocks { .. } => levels
                .chunks_exact(2)
                .map(|pair| nibble(pair[0]) | (nibble(pair[1]) << 4))
                .collect(),
        };
        Quantized {
            values,
            values_shape: values_shape.to_vec(),
            scales,
            scales_shape: scales_shape.to_vec(),
        }
    }

    /// Whether this is `scheme`'s stored form of a weight of `shape`: the shapes and sizes
    /// [`quantize`] gives it.
    pub fn is_stored_form_of(&self, scheme: Scheme, shape: &[usize]) -> bool {
        let [rows, cols] = *shape else {
            return false;
        };
        let (values_shape, scales_shape) = scheme.stored_shapes(rows, cols);
        scheme.fits(shape)
            && self.values_shape == values_shape
            && self.scales_shape == scales_shape
            && self.values.len() == values_shape[0] * values_shape[1]
            && self.scales.len() == scales_shape[0] * scales_shape[1]
    }

    /// The f32 values a reader decodes from this weight stored as `scheme` (row-major, the
    /// weight's shape); `name` (the weight's key) is for errors.
    pub fn dequantize(&self, scheme: Scheme, name: &str) -> Result<Vec<f32>> {
        let scales: Vec<u8> = self.scales.iter().flat_map(|s| s.to_le_bytes()).collect();
        let kind = match scheme {
            Scheme::Q8Blocks { .. } => ValuesKind::I8,
            Scheme::Q4Blocks { .. } => ValuesKind::U8,
        };
        let stored = StoredQuantized {
            scheme_of_values: kind,
            values: &self.values,
            values_shape: &self.values_shape,
            scales: &scales,
            scales_shape: &self.scales_shape,
        };
        Ok(dequantize(name, name, &stored, Some(scheme.block()))?.1)
    }
}

impl Scheme {
    fn qmax(self) -> f32 {
        match self {
            Scheme::Q8Blocks { .. } => 127.0,
            Scheme::Q4Blocks { .. } => 7.0,
        }
    }

    /// Values per scale along a row.
    fn block(self) -> usize {
        match self {
            Scheme::Q8Blocks { block } | Scheme::Q4Blocks { block } => block,
        }
    }

    /// The shapes of the stored values and scales of a `[rows, cols]` weight that [`fits`].
    ///
    /// [`fits`]: Scheme::fits
    fn stored_shapes(self, rows: usize, cols: usize) -> ([usize; 2], [usize; 2]) {
        let blocks = cols.checked_div(self.block()).unwrap_or(0);
        match self {
            Scheme::Q8Blocks { .. } => ([rows, cols], [rows, blocks]),
            Scheme::Q4Blocks { .. } => ([rows, cols / 2], [rows, blocks]),
        }
    }

    /// Whether a `[rows, cols]` weight can take this scheme: whole blocks (even ones for q4).
    pub fn fits(self, shape: &[usize]) -> bool {
        let block = self.block();
        let even = matches!(self, Scheme::Q8Blocks { .. }) || block % 2 == 0;
        matches!(shape, [rows, cols] if *rows > 0 && *cols > 0 && block > 0 && even
            && cols % block == 0)
    }
}

/// Quantizes a row-major `[rows, cols]` weight. `name` (the weight's key) is for errors: a scale past f16's range
/// (values above 65504 x qmax) cannot be stored.
pub fn quantize(scheme: Scheme, name: &str, shape: &[usize], data: &[f32]) -> Result<Quantized> {
    if !scheme.fits(shape) || shape.iter().product::<usize>() != data.len() {
        return Err(Error::checkpoint(
            name,
            format!("a weight of shape {shape:?} cannot be quantized as {scheme:?}"),
        ));
    }
    let (rows, cols) = (shape[0], shape[1]);
    let group = scheme.block();
    let qmax = scheme.qmax();
    let mut scales = Vec::with_capacity(data.len() / group);
    let mut levels = Vec::with_capacity(data.len());
    for values in data.chunks_exact(group) {
        let absmax = values.iter().fold(0f32, |m, v| m.max(v.abs()));
        let scale = f16::from_f32(absmax / qmax);
        if !scale.is_finite() || !absmax.is_finite() {
            return Err(Error::checkpoint(
                name,
                format!("values up to {absmax} do not fit {scheme:?}'s f16 scales"),
            ));
        }
        let step = scale.to_f32();
        levels.extend(values.iter().map(|&v| {
            if step == 0.0 {
                0i8
            } else {
                (v / step).round_ties_even().clamp(-qmax, qmax) as i8
            }
        }));
        scales.push(scale);
    }
    Ok(Quantized::pack(scheme, rows, cols, &levels, scales))
}

fn nibble(q: i8) -> u8 {
    (q + 8) as u8
}

/// A stored quantized weight as found in a shard, before decoding.
pub struct StoredQuantized<'a> {
    /// `I8` (q8) or `U8` (q4).
    pub scheme_of_values: ValuesKind,
    pub values: &'a [u8],
    pub values_shape: &'a [usize],
    /// Little-endian f16 bytes.
    pub scales: &'a [u8],
    pub scales_shape: &'a [usize],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValuesKind {
    I8,
    U8,
}

/// Decodes a stored quantized weight to its f32 values and logical shape `[rows, cols]`. Every
/// size is checked against the others before anything is allocated; `expected_block` is the
/// manifest's block size. Errors name `name` (the weight's key).
pub fn dequantize(
    file: &str,
    name: &str,
    stored: &StoredQuantized,
    expected_block: Option<usize>,
) -> Result<(Vec<usize>, Vec<f32>)> {
    let bad = |why: String| Error::checkpoint(file, format!("tensor `{name}`: {why}"));
    let [rows, stored_cols] = *stored.values_shape else {
        return Err(bad(format!(
            "quantized values of shape {:?} (expected 2 dimensions)",
            stored.values_shape
        )));
    };
    if rows.checked_mul(stored_cols) != Some(stored.values.len()) {
        return Err(bad(format!(
            "quantized values of shape {:?} but {} bytes",
            stored.values_shape,
            stored.values.len()
        )));
    }
    let scales_count = stored
        .scales_shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d));
    if scales_count.and_then(|n| n.checked_mul(2)) != Some(stored.scales.len()) {
        return Err(bad(format!(
            "scales of shape {:?} but {} bytes",
            stored.scales_shape,
            stored.scales.len()
        )));
    }
    let (scheme, cols) = match stored.scheme_of_values {
        ValuesKind::I8 => ("q8", stored_cols),
        ValuesKind::U8 => ("q4", stored_cols * 2),
    };
    let [scale_rows, blocks] = *stored.scales_shape else {
        return Err(bad(format!(
            "{scheme} scales of shape {:?} (expected [{rows}, blocks])",
            stored.scales_shape
        )));
    };
    let block = if blocks > 0 && cols % blocks == 0 {
        cols / blocks
    } else {
        0
    };
    let q4 = stored.scheme_of_values == ValuesKind::U8;
    if scale_rows != rows || block == 0 || (q4 && block % 2 != 0) {
        return Err(bad(format!(
            "{scheme} scales of shape {:?} do not divide values of {cols} columns into \
             whole blocks",
            stored.scales_shape
        )));
    }
    // A q8 weight whose input size the block does not divide has one block per row.
    if let Some(expected) = expected_block
        && expected != block
        && !(blocks == 1 && !q4 && cols % expected != 0)
    {
        return Err(bad(format!(
            "{scheme} blocks of {block} values, manifest.json says {expected}"
        )));
    }
    // Decoded only once every shape agrees.
    let scales: Vec<f32> = stored
        .scales
        .chunks_exact(2)
        .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
        .collect();
    if !scales.iter().all(|s| s.is_finite()) {
        return Err(bad("a scale is not finite".into()));
    }
    match stored.scheme_of_values {
        ValuesKind::I8 => {
            if stored.values.iter().any(|&b| b as i8 == i8::MIN) {
                return Err(bad("a q8 value is -128 (outside -127..=127)".into()));
            }
            let data = stored
                .values
                .iter()
                .enumerate()
                .map(|(i, &b)| (b as i8) as f32 * scales[i / block])
                .collect();
            Ok((vec![rows, cols], data))
        }
        ValuesKind::U8 => {
            if stored.values.iter().any(|&b| b & 0x0f == 0 || b >> 4 == 0) {
                return Err(bad("a q4 value is -8 (outside -7..=7)".into()));
            }
            let mut data = Vec::with_capacity(rows * cols);
            for (i, &byte) in stored.values.iter().enumerate() {
                let column = (i % stored_cols) * 2;
                let scale = scales[(i / stored_cols) * blocks + column / block];
                data.push(((byte & 0x0f) as i8 - 8) as f32 * scale);
                data.push(((byte >> 4) as i8 - 8) as f32 * scale);
            }
            Ok((vec![rows, cols], data))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(scheme: Scheme, shape: &[usize], data: &[f32]) -> Vec<f32> {
        let q = quantize(scheme, "w", shape, data).unwrap();
        let decoded = q.dequantize(scheme, "w").unwrap();
        assert_eq!(decoded.len(), shape.iter().product::<usize>());
        decoded
    }

    #[test]
    fn q8_keeps_each_block_within_half_a_step() {
        let data: Vec<f32> = (0..24)
            .map(|i| ((i as f32) * 0.7).sin() * (1 + i / 8) as f32)
            .collect();
        let decoded = round_trip(Scheme::Q8Blocks { block: 4 }, &[3, 8], &data);
        for (row, (a, b)) in data.chunks(4).zip(decoded.chunks(4)).enumerate() {
            let absmax = a.iter().fold(0f32, |m, v| m.max(v.abs()));
            let step = absmax / 127.0;
            for (x, y) in a.iter().zip(b) {
                assert!(
                    (x - y).abs() <= step * 0.5 + absmax * 1e-3,
                    "row {row}: {x} vs {y}"
                );
            }
        }
    }

    #[test]
    fn q4_packs_two_values_a_byte_low_nibble_first() {
        let data = [7.0, -7.0, 1.0, 0.0];
        let q = quantize(Scheme::Q4Blocks { block: 4 }, "w", &[1, 4], &data).unwrap();
        // scale 1: levels 7, -7, 1, 0 stored as 15, 1, 9, 8.
        assert_eq!(q.values, vec![15 | (1 << 4), 9 | (8 << 4)]);
        assert_eq!(q.scales_shape, vec![1, 1]);
        assert_eq!(
            round_trip(Scheme::Q4Blocks { block: 4 }, &[1, 4], &data),
            data
        );
    }

    #[test]
    fn zero_rows_and_huge_values() {
        let row = Scheme::Q8Blocks { block: 3 };
        assert_eq!(round_trip(row, &[1, 3], &[0.0; 3]), vec![0.0; 3]);
        let e = quantize(row, "w", &[1, 3], &[1e9, 0.0, 0.0]).unwrap_err();
        assert!(e.to_string().contains("do not fit"), "{e}");
        assert!(!Scheme::Q4Blocks { block: 32 }.fits(&[4, 48]));
        assert!(!row.fits(&[4]));
        assert!(!Scheme::Q8Blocks { block: 32 }.fits(&[4, 48]));
        assert!(Scheme::Q8Blocks { block: 3 }.fits(&[4, 48]));
    }

    #[test]
    fn mismatched_sizes_are_refused_before_decoding() {
        let scales = f16::ONE.to_le_bytes();
        let decode =
            |kind, values: &[u8], values_shape: &[usize], scales_shape: &[usize], block| {
                let stored = StoredQuantized {
                    scheme_of_values: kind,
                    values,
                    values_shape,
                    scales: &scales,
                    scales_shape,
                };
                dequantize("f", "w", &stored, block)
            };
        assert!(decode(ValuesKind::I8, &[1, 2, 3], &[1, 4], &[1, 1], None).is_err());
        assert!(decode(ValuesKind::I8, &[1; 4], &[1, 4], &[1], None).is_err());
        // A q8 row whose size the manifest's block does not divide is one block.
        assert!(decode(ValuesKind::I8, &[1; 3], &[1, 3], &[1, 1], Some(2)).is_ok());
        assert!(decode(ValuesKind::I8, &[1; 4], &[1, 4], &[1, 1], Some(2)).is_err());
        assert!(decode(ValuesKind::U8, &[0x88; 4], &[1, 4], &[1, usize::MAX], None).is_err());
        let e = decode(ValuesKind::U8, &[0x88; 4], &[1, 4], &[1, 1], Some(32)).unwrap_err();
        assert!(e.to_string().contains("manifest"), "{e}");
        assert_eq!(
            decode(ValuesKind::U8, &[0x88; 4], &[1, 4], &[1, 1], Some(8))
                .unwrap()
                .1,
            vec![0.0; 8]
        );
    }
}
