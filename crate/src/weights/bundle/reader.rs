//! Reading a bundle: its files one at a time as bytes (from disk natively, from `fetch` or the
//! IndexedDB cache in the browser), each checked against the manifest and decoded at once.

use super::{MANIFEST_FILE, Manifest};
use crate::config::BertConfig;
use crate::device::Placement;
use crate::error::{Error, Result};
use crate::weights::{Destination, WeightMap};
use listconranker_formats::quantize::SCALE_SUFFIX;
use listconranker_formats::safetensors_file::read_bundle_shard;

/// Checks a checkpoint's keys ([`WeightMap::plan`]) against the model before any tensor is
/// decoded: `ListConRankerModel::check_plan`, given by the caller since this layer sits below
/// the model.
pub type PlanCheck = fn(WeightMap, &BertConfig) -> Result<()>;

/// What every loader needs to build a [`crate::Reranker`]: the tokenizer stays as the bytes of
/// its `tokenizer.json` (building it is the tokenizer layer's job, above this one).
pub struct BundleParts {
    pub config: BertConfig,
    pub weights: WeightMap,
    pub tokenizer_json: Vec<u8>,
    /// The tokenizer's file name, for messages.
    pub tokenizer_file: String,
}

/// Builds a model from a bundle's files, given one at a time (in any order).
pub struct BundleReader {
    manifest: Manifest,
    config: BertConfig,
    weights: WeightMap,
    tokenizer_json: Option<Vec<u8>>,
    received: Vec<bool>,
    /// Where each shard's tensors go as soon as it is decoded.
    destination: Owned,
}

/// [`Destination`], owning its placement (a browser loader keeps it across calls).
enum Owned {
    Host,
    Device(Placement),
    ShapesOnly,
}

impl BundleReader {
    /// Reads the manifest's config and checks the tensors it lists with `check` (a tensor the
    /// model would not use, or one it misses, is an error before a shard is fetched).
    pub fn new(manifest: Manifest, check: PlanCheck) -> Result<Self> {
        let config_text = manifest.config.to_string();
        let config = BertConfig::from_json(&config_text, "manifest.json (config)")?;
        check(plan_of(&manifest)?, &config)?;
        let received = vec![false; manifest.files.len()];
        Ok(Self {
            manifest,
            config,
            weights: WeightMap::default(),
            tokenizer_json: None,
            received,
            destination: Owned::Host,
        })
    }

    /// Uploads every later shard's tensors to `placement` as soon as the shard is decoded, so
    /// that loading holds one shard on the host at a time, never the whole model.
    pub fn upload_to(&mut self, placement: Placement) {
        self.destination = Owned::Device(placement);
    }

    /// Keeps only the shapes of later shards' tensors, after checking their values: for
    /// validating a bundle with the memory of one shard.
    pub fn shapes_only(&mut self) {
        self.destination = Owned::ShapesOnly;
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Takes the bytes of the listed file `path`: checks its size, decodes its tensors (a shard)
    /// or builds the tokenizer.
    pub fn add_file(&mut self, path: &str, bytes: &[u8]) -> Result<()> {
        let index = self
            .manifest
            .files
            .iter()
            .position(|f| f.path == path)
            .ok_or_else(|| Error::checkpoint(path, "not listed in manifest.json"))?;
        let entry = &self.manifest.files[index];
        if bytes.len() as u64 != entry.bytes {
            return Err(Error::checkpoint(
                path,
                format!("{} bytes, manifest.json says {}", bytes.len(), entry.bytes),
            ));
        }
        if path == self.manifest.tokenizer {
            self.tokenizer_json = Some(bytes.to_vec());
        } else {
            let listed = &entry.tensors;
            for key in listed {
                self.weights.add_source(key, path);
            }
            let weights = &mut self.weights;
            let destination = match &self.destination {
                Owned::Host => Destination::Host,
                Owned::Device(at) => Destination::Device(at),
                Owned::ShapesOnly => Destination::ShapesOnly,
            };
            // Quantized weights are decoded to f32 here, one tensor at a time, and go on to the
            // destination like any float tensor.
            let mut found = read_bundle_shard(bytes, path, self.manifest.block_size(), |k, t| {
                weights.insert_to(destination, k, path, t)
            })?;
            found.sort();
            let mut expected = listed.clone();
            expected.sort();
            if found != expected {
                return Err(Error::checkpoint(
                    path,
                    "its tensors differ from the list in manifest.json",
                ));
            }
        }
        self.received[index] = true;
        Ok(())
    }

    /// Ends loading: every listed file must have been given.
    pub fn finish(self) -> Result<BundleParts> {
        if let Some(i) = self.received.iter().position(|r| !r) {
            return Err(Error::checkpoint(
                &self.manifest.files[i].path,
                "listed in manifest.json but not loaded",
            ));
        }
        let tokenizer_json = self
            .tokenizer_json
            .ok_or_else(|| Error::checkpoint(MANIFEST_FILE, "no tokenizer"))?;
        Ok(BundleParts {
            config: self.config,
            weights: self.weights,
            tokenizer_json,
            tokenizer_file: self.manifest.tokenizer,
        })
    }
}

/// The manifest's tensors as a plan: every listed key but the scales of quantized weights
/// (they are part of their weight).
fn plan_of(manifest: &Manifest) -> Result<WeightMap> {
    let mut plan = WeightMap::plan();
    for file in manifest
        .files
        .iter()
        .filter(|f| f.path != manifest.tokenizer)
    {
        for key in &file.tensors {
            let is_scale = key
                .strip_suffix(SCALE_SUFFIX)
                .is_some_and(|weight| file.tensors.iter().any(|k| k == weight));
            if !is_scale {
                plan.add_source(key, &file.path);
                plan.plan_key(key.clone(), &file.path)?;
            }
        }
    }
    Ok(plan)
}

#[cfg(feature = "native")]
mod native {
    use std::path::Path;

    use sha2::{Digest, Sha256};

    use super::*;

    /// Whether `dir` holds a bundle (a `manifest.json`).
    pub fn is_bundle(dir: &Path) -> bool {
        dir.join(super::MANIFEST_FILE).is_file()
    }

    pub fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads a bundle directory, checking its tensor list with `check` first, then every file's
    /// size and sha256. Each shard's tensors
    /// go to `destination` as soon as it is read, and its bytes are dropped before the next
    /// one is read.
    pub fn read_bundle_dir(
        dir: &Path,
        destination: Destination,
        check: PlanCheck,
    ) -> Result<BundleParts> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| Error::read_model(manifest_path.display(), e))?;
        let manifest = Manifest::parse(&text)?;
        let files = manifest.files.clone();
        let mut reader = BundleReader::new(manifest, check)?;
        match destination {
            Destination::Host => {}
            Destination::Device(at) => reader.upload_to(at.clone()),
            Destination::ShapesOnly => reader.shapes_only(),
        }
        for file in &files {
            let path = dir.join(&file.path);
            let bytes = read_listed_file(&path, file.bytes)?;
            if sha256_hex(&bytes) != file.sha256 {
                return Err(Error::checkpoint(
                    path.display(),
                    "sha256 differs from manifest.json",
                ));
            }
            reader.add_file(&file.path, &bytes)?;
        }
        reader.finish()
    }

    /// A bundle file's bytes, once it is known to be a plain file of the listed size: a
    /// symlink (which could point anywhere) or a file of another size is refused before a byte
    /// of it is read.
    fn read_listed_file(path: &Path, listed_bytes: u64) -> Result<Vec<u8>> {
        let meta =
            std::fs::symlink_metadata(path).map_err(|e| Error::read_model(path.display(), e))?;
        if !meta.file_type().is_file() {
            return Err(Error::checkpoint(
                path.display(),
                "not a plain file (a bundle's files may not be symlinks or directories)",
            ));
        }
        if meta.len() != listed_bytes {
            return Err(Error::checkpoint(
                path.display(),
                format!("{} bytes, manifest.json says {listed_bytes}", meta.len()),
            ));
        }
        std::fs::read(path).map_err(|e| Error::read_model(path.display(), e))
    }
}

#[cfg(feature = "native")]
pub use native::{is_bundle, read_bundle_dir, sha256_hex};
