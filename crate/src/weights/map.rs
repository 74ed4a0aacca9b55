use std::collections::HashMap;

use crate::error::{Error, Result};

/// One tensor decoded to f32 on the host, row-major, in the checkpoint's own layout.
#[derive(Debug, Clone)]
pub struct RawTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

struct Entry {
    file: String,
    tensor: RawTensor,
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
        self.entries.insert(
            key,
            Entry {
                file: file.to_string(),
                tensor,
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
            .map(|e| e.tensor.shape.as_slice())
            .ok_or_else(|| self.missing(key))
    }

    /// Removes and returns `key`, checking its shape and that every value is finite.
    pub fn take(&mut self, key: &str, expected: &[usize]) -> Result<RawTensor> {
        let entry = self.entries.remove(key).ok_or_else(|| self.missing(key))?;
        if entry.tensor.shape != expected {
            return Err(Error::WrongShape {
                file: entry.file,
                key: display_key(key),
                found: entry.tensor.shape,
                expected: expected.to_vec(),
            });
        }
        if entry.tensor.data.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                file: entry.file,
                key: display_key(key),
            });
        }
        Ok(entry.tensor)
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

