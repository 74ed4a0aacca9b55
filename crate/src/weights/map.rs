//! Decoded tensors by canonical key, which the model builders take from.

use std::collections::HashMap;

use burn::tensor::{Device, FloatDType, Tensor, TensorData};

use crate::error::{Error, Result};
use listconranker_formats::tensor::RawTensor;

/// A tensor taken from a [`WeightMap`]: still on the host, already on the device, or only
/// checked (its values were read, found finite and dropped: validating a bundle without the
/// memory of the model).
pub enum Weight {
    Host(RawTensor),
    /// Uploaded flat (in the target float type); `shape` is the checkpoint's own layout.
    Device {
        shape: Vec<usize>,
        tensor: Tensor<1>,
    },
    Checked {
        shape: Vec<usize>,
    },
}

impl Weight {
    fn shape(&self) -> &[usize] {
        match self {
            Weight::Host(raw) => &raw.shape,
            Weight::Device { shape, .. } | Weight::Checked { shape } => shape,
        }
    }
}

/// Where a loader puts the tensors it decodes.
#[derive(Clone, Copy)]
pub enum Destination<'a> {
    /// Kept on the host (conversion).
    Host,
    /// Uploaded to the device as soon as decoded (loading holds one file at a time).
    Device(&'a crate::device::Placement),
    /// Checked for finiteness and dropped: only shapes are kept (validation).
    ShapesOnly,
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
    /// A plan: the map holds the checkpoint's key names only (read off its headers, nothing
    /// decoded), and taking a key checks that it is there, not its shape.
    planning: bool,
}

impl WeightMap {
    /// An empty plan: [`WeightMap::plan_key`] fills it with the names of a checkpoint's
    /// tensors before any is decoded, and building a model from it says which of them the
    /// model would leave unused (or miss) at the cost of reading headers only.
    pub fn plan() -> Self {
        Self {
            planning: true,
            ..Self::default()
        }
    }

    pub fn is_plan(&self) -> bool {
        self.planning
    }

    /// Adds a key to a plan (a key given twice is an error naming both files, as for tensors).
    pub fn plan_key(&mut self, key: String, file: &str) -> Result<()> {
        debug_assert!(self.planning, "plan_key on a map of tensors");
        let weight = Weight::Checked { shape: Vec::new() };
        self.add(key, file, true, weight)
    }

    /// Records that keys starting with `prefix` are read from `file` (for error messages).
    pub fn add_source(&mut self, prefix: &str, file: &str) {
        self.sources.push((prefix.to_string(), file.to_string()));
    }

    /// Adds a host tensor. A key that is already there is an error naming both files: two
    /// sources for one parameter would otherwise be resolved silently by read order.
    pub fn insert(&mut self, key: String, file: &str, tensor: RawTensor) -> Result<()> {
        let finite = tensor.all_finite();
        self.add(key, file, finite, Weight::Host(tensor))
    }

    fn add(&mut self, key: String, file: &str, finite: bool, weight: Weight) -> Result<()> {
        if let Some(first) = self.entries.get(&key) {
            return Err(Error::checkpoint(
                file,
                format!(
                    "tensor `{}` is also in {}: a checkpoint holds each tensor once",
                    display_key(&key),
                    first.file
                ),
            ));
        }
        self.entries.insert(
            key,
            Entry {
                file: file.to_string(),
                finite,
                weight,
            },
        );
        Ok(())
    }

    /// Adds `tensor` where `destination` says.
    pub fn insert_to(
        &mut self,
        destination: Destination,
        key: String,
        file: &str,
        tensor: RawTensor,
    ) -> Result<()> {
        match destination {
            Destination::Host => self.insert(key, file, tensor),
            Destination::Device(at) => {
                self.insert_uploaded(key, file, tensor, at.device(), at.dtype())
            }
            Destination::ShapesOnly => {
                let finite = tensor.all_finite();
                let weight = Weight::Checked {
                    shape: tensor.shape,
                };
                self.add(key, file, finite, weight)
            }
        }
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
    ) -> Result<()> {
        let finite = tensor.all_finite();
        let elements = tensor.data.len();
        let data = TensorData::new(tensor.data, [elements]);
        let uploaded = Tensor::<1>::from_data(data, (device, dtype.into()));
        let weight = Weight::Device {
            shape: tensor.shape,
            tensor: uploaded,
        };
        self.add(key, file, finite, weight)
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    /// Ends a load: every tensor must have been taken by the model. The error lists the ones
    /// left over (by file), which mean a config that disagrees with the weights (more layers
    /// than `num_hidden_layers`), a renamed or misnumbered layer, or a foreign checkpoint.
    pub fn check_all_used(self) -> Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let mut unused: Vec<(&str, String)> = self
            .entries
            .iter()
            .map(|(key, entry)| (entry.file.as_str(), display_key(key)))
            .collect();
        unused.sort();
        const SHOWN: usize = 8;
        let mut names: Vec<String> = unused
            .iter()
            .take(SHOWN)
            .map(|(file, key)| format!("`{key}` ({file})"))
            .collect();
        if unused.len() > SHOWN {
            names.push(format!("and {} more", unused.len() - SHOWN));
        }
        Err(Error::checkpoint(
            unused[0].0,
            format!(
                "{} tensor(s) that the model (as config.json describes it) does not use: {}",
                unused.len(),
                names.join(", ")
            ),
        ))
    }

    /// Keeps only the tensors whose keys `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.entries.retain(|key, _| keep(key));
    }

    /// Changes every host tensor's values in place with `change(key, tensor)` (the shape must
    /// stay; uploaded and checked tensors are left alone), re-checking that they are finite.
    pub fn change_host_values(
        &mut self,
        mut change: impl FnMut(&str, &mut RawTensor) -> Result<()>,
    ) -> Result<()> {
        for (key, entry) in &mut self.entries {
            if let Weight::Host(raw) = &mut entry.weight {
                let shape = raw.shape.clone();
                change(key, raw)?;
                if raw.shape != shape || raw.data.len() != shape.iter().product::<usize>() {
                    return Err(Error::checkpoint(
                        &entry.file,
                        format!("tensor `{}` changed its shape", display_key(key)),
                    ));
                }
                entry.finite = raw.all_finite();
            }
        }
        Ok(())
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
        if self.planning {
            return Ok(Weight::Checked {
                shape: expected.to_vec(),
            });
        }
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
            Weight::Device { .. } | Weight::Checked { .. } => Err(Error::checkpoint(
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
