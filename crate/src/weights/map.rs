use std::collections::HashMap;

use burn::tensor::{Device, FloatDType, Tensor, TensorData};

use crate::error::{Error, Result};

/// One tensor decoded to f32 on the host, row-major, in the checkpoint's own layout.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A tensor taken from a [`WeightMap`]: still on the host, or already on the device.
pub enum Weight {
    Host(RawTensor),
    /// Uploaded flat (in the target float type); `shape` is the checkpoint's own layout.
    Device {
        shape: Vec<usize>,
        tensor: Tensor<1>,
    },
}

impl Weight {
    fn shape(&self) -> &[usize] {
        match self {
            Weight::Host(raw) => &raw.shape,
            Weight::Device { shape, .. } => shape,
        }
    }
}

struct Entry {
    file: String,
    /// Checked on the host values when inserted (an uploaded tensor has no host copy left).
    finite: bool,
    weight: Weight,
}

/// Tensors by canonical key (`bert.…`, `linear_in_embedding.…`, `query_embedding.…`,
/// `list_transformer.layers.N.…`, `linear_scoreN.…`), each remembering the file it came from so
/// that errors can name it.
#[derive(Default)]
pub struct WeightMap {
    entries: HashMap<String, Entry>,
    /// (key prefix, file) pairs: which file a missing key should have been in.
    sources: Vec<(String, String)>,
}

impl WeightMap {
    /// Records that keys starting with `prefix` are read from `file` (for error messages).
    pub fn add_source(&mut self, prefix: &str, file: &str) {
        self.sources.push((prefix.to_string(), file.to_string()));
    }

    pub fn insert(&mut self, key: String, file: &str, tensor: RawTensor) {
        let finite = tensor.data.iter().all(|v| v.is_finite());
        self.entries.insert(
            key,
            Entry {
                file: file.to_string(),
                finite,
                weight: Weight::Host(tensor),
            },
        );
    }

    /// Uploads `tensor` to `device` in `dtype` now (the host copy is dropped), remembering
    /// whether every value was finite so that [`WeightMap::take`] reports it as for host tensors.
    pub fn insert_uploaded(
        &mut self,
        key: String,
        file: &str,
        tensor: RawTensor,
        device: &Device,
        dtype: FloatDType,
    ) {
        let finite = tensor.data.iter().all(|v| v.is_finite());
        let elements = tensor.data.len();
        let data = TensorData::new(tensor.data, [elements]);
        let uploaded = Tensor::<1>::from_data(data, (device, dtype.into()));
        self.entries.insert(
            key,
            Entry {
                file: file.to_string(),
                finite,
                weight: Weight::Device {
                    shape: tensor.shape,
                    tensor: uploaded,
                },
            },
        );
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    fn file_for(&self, key: &str) -> String {
        self.sources
            .iter()
            .filter(|(prefix, _)| key.starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, file)| file.clone())
            .unwrap_or_else(|| "checkpoint".to_string())
    }

    fn missing(&self, key: &str) -> Error {
        Error::MissingKey {
            file: self.file_for(key),
            key: display_key(key),
        }
    }

    /// The shape of `key`, for reading sizes off the checkpoint.
    pub fn shape(&self, key: &str) -> Result<&[usize]> {
        self.entries
            .get(key)
            .map(|e| e.weight.shape())
            .ok_or_else(|| self.missing(key))
    }

    /// Removes and returns `key`, checking its shape and that every value is finite.
    pub fn take_weight(&mut self, key: &str, expected: &[usize]) -> Result<Weight> {
        let entry = self.entries.remove(key).ok_or_else(|| self.missing(key))?;
        if entry.weight.shape() != expected {
            return Err(Error::WrongShape {
                file: entry.file,
                key: display_key(key),
                found: entry.weight.shape().to_vec(),
                expected: expected.to_vec(),
            });
        }
        if !entry.finite {
            return Err(Error::NonFinite {
                file: entry.file,
                key: display_key(key),
            });
        }
        Ok(entry.weight)
    }

    /// [`WeightMap::take_weight`] for host tensors (conversion); an uploaded tensor is an error.
    pub fn take(&mut self, key: &str, expected: &[usize]) -> Result<RawTensor> {
        match self.take_weight(key, expected)? {
            Weight::Host(raw) => Ok(raw),
            Weight::Device { .. } => Err(Error::checkpoint(
                "checkpoint",
                format!("tensor `{key}` is already on the device"),
            )),
        }
    }
}

/// Canonical keys put the encoder under `bert.`; in messages, show the key as the original
/// release spells it in its own file (`encoder.layer.0...`, `weight`, ...).
fn display_key(key: &str) -> String {
    key.strip_prefix("bert.")
        .or_else(|| key.strip_prefix("linear_in_embedding."))
        .unwrap_or(key)
        .to_string()
}
