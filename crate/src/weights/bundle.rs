//! The web bundle: what browsers load instead of the checkpoint's PyTorch pickles.
//!
//! A bundle is a flat directory (or URL prefix) holding
//! - `manifest.json`: format name and version, the model's `config.json`, the stored float type,
//!   and every file with its byte size, sha256 and (for weight shards) the tensors it holds;
//! - safetensors shards under canonical key names: `embeddings.safetensors`, groups of encoder
//!   layers `encoder-LL-MM.safetensors`, and `head.safetensors` (projection, list transformer,
//!   score heads);
//! - `tokenizer.json` (built from `vocab.txt` when the source has no `tokenizer.json`).
//!
//! The reader ([`BundleReader`]) takes files one at a time as bytes, so the same code serves a
//! directory on disk and `fetch` in a browser. Writing (`listconranker convert`) is native only.

use serde::{Deserialize, Serialize};

use super::{WeightMap, read_safetensors};
use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::model::Placement;
use crate::tokenize::TextTokenizer;

/// The `format` field of every manifest.
pub const BUNDLE_FORMAT: &str = "listconranker-bundle";
/// The manifest version this build writes and reads. Readers refuse newer versions.
pub const BUNDLE_VERSION: u32 = 1;
pub const MANIFEST_FILE: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Float type of the stored weights: `f32` or `f16` (decoded to f32 on load).
    pub dtype: String,
    /// The model's `config.json`, as it was.
    pub config: serde_json::Value,
    /// Path (inside the bundle) of the tokenizer, also listed in `files`.
    pub tokenizer: String,
    /// Every file of the bundle but the manifest, in load order.
    pub files: Vec<BundleFile>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BundleFile {
    /// A plain file name, relative to the manifest.
    pub path: String,
    pub bytes: u64,
    /// Lower-case hex sha256 of the file.
    pub sha256: String,
    /// Canonical keys of the tensors in this shard (empty for non-weight files).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tensors: Vec<String>,
}

impl Manifest {
    /// Parses and checks `manifest.json`: format, version, file names.
    pub fn parse(text: &str) -> Result<Self> {
        let manifest: Manifest = serde_json::from_str(text)
            .map_err(|e| Error::checkpoint(MANIFEST_FILE, format!("not a bundle manifest: {e}")))?;
        if manifest.format != BUNDLE_FORMAT {
            return Err(Error::checkpoint(
                MANIFEST_FILE,
                format!(
                    "format is `{}`, expected `{BUNDLE_FORMAT}`",
                    manifest.format
                ),
            ));
        }
        if manifest.version == 0 || manifest.version > BUNDLE_VERSION {
            return Err(Error::checkpoint(
                MANIFEST_FILE,
                format!(
                    "bundle version {} is not supported (this build reads up to {BUNDLE_VERSION})",
                    manifest.version
                ),
            ));
        }
        if !matches!(manifest.dtype.as_str(), "f32" | "f16") {
            return Err(Error::checkpoint(
                MANIFEST_FILE,
                format!("unknown dtype `{}` (expected f32 or f16)", manifest.dtype),
            ));
        }
        for file in &manifest.files {
            let plain = !file.path.is_empty()
                && !file.path.starts_with('.')
                && !file.path.contains(['/', '\\']);
            if !plain {
                return Err(Error::checkpoint(
                    MANIFEST_FILE,
                    format!("file path `{}` is not a plain file name", file.path),
                ));
            }
        }
        if !manifest.files.iter().any(|f| f.path == manifest.tokenizer) {
            return Err(Error::checkpoint(
                MANIFEST_FILE,
                format!(
                    "the tokenizer `{}` is not listed in files",
                    manifest.tokenizer
                ),
            ));
        }
        Ok(manifest)
    }

    /// Total bytes of every listed file (for progress reports).
    pub fn total_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// What every loader needs to build a [`crate::Reranker`].
pub struct BundleParts {
    pub config: BertConfig,
    pub weights: WeightMap,
    pub tokenizer: TextTokenizer,
}

/// Builds a model from a bundle's files, given one at a time (in any order).
pub struct BundleReader {
    manifest: Manifest,
    config: BertConfig,
    weights: WeightMap,
    tokenizer: Option<TextTokenizer>,
    received: Vec<bool>,
    /// Where each shard's tensors are uploaded as soon as it is decoded (`None`: kept on the
    /// host, as conversion needs).
    placement: Option<Placement>,
}

impl BundleReader {
    pub fn new(manifest: Manifest) -> Result<Self> {
        let config_text = manifest.config.to_string();
        let config = BertConfig::from_json(&config_text, "manifest.json (config)")?;
        let received = vec![false; manifest.files.len()];
        Ok(Self {
            manifest,
            config,
            weights: WeightMap::default(),
            tokenizer: None,
            received,
            placement: None,
        })
    }

    /// Uploads every later shard's tensors to `placement` as soon as the shard is decoded, so
    /// that loading holds one shard on the host at a time, never the whole model.
    pub fn upload_to(&mut self, placement: Placement) {
        self.placement = Some(placement);
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
            self.tokenizer = Some(TextTokenizer::from_json(bytes, path)?);
        } else {
            let listed = &entry.tensors;
            let mut found = Vec::new();
            for key in listed {
                self.weights.add_source(key, path);
            }
            let weights = &mut self.weights;
            let placement = &self.placement;
            read_safetensors(
                bytes,
                path,
                |k| Some(k.to_string()),
                |k, t| {
                    found.push(k.clone());
                    match placement {
                        Some(at) => weights.insert_uploaded(k, path, t, &at.device, at.dtype),
                        None => weights.insert(k, path, t),
                    }
                },
            )?;
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
        let tokenizer = self
            .tokenizer
            .ok_or_else(|| Error::checkpoint(MANIFEST_FILE, "no tokenizer"))?;
        Ok(BundleParts {
            config: self.config,
            weights: self.weights,
            tokenizer,
        })
    }
}

#[cfg(feature = "native")]
pub use native::{ConvertOptions, is_bundle, read_bundle_dir, write_bundle};

#[cfg(feature = "native")]
mod native {
    use std::collections::BTreeMap;
    use std::path::Path;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::device::Precision;
    use crate::weights::{
        IndexedTensor, RawTensor, SafetensorsIndex, TokenizerFiles, encoder_key, find_model_files,
        load_split_weights, merged_key,
    };

    /// Whether `dir` holds a bundle (a `manifest.json`).
    pub fn is_bundle(dir: &Path) -> bool {
        dir.join(MANIFEST_FILE).is_file()
    }

    fn sha256_hex(bytes: &[u8]) -> String {
        Sha256::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads a bundle directory, checking every file's size and sha256. With a `placement`,
    /// each shard's tensors go to the device as soon as it is read, and its bytes are dropped
    /// before the next one is read.
    pub fn read_bundle_dir(dir: &Path, placement: Option<Placement>) -> Result<BundleParts> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| Error::io(manifest_path.display(), e))?;
        let manifest = Manifest::parse(&text)?;
        let files = manifest.files.clone();
        let mut reader = BundleReader::new(manifest)?;
        if let Some(placement) = placement {
            reader.upload_to(placement);
        }
        for file in &files {
            let path = dir.join(&file.path);
            let bytes = std::fs::read(&path).map_err(|e| Error::io(path.display(), e))?;
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

    #[derive(Debug, Clone)]
    pub struct ConvertOptions {
        /// Float type of the stored weights.
        pub dtype: Precision,
        /// Most encoder layers in one shard (`usize::MAX`: sizes alone decide).
        pub layers_per_shard: usize,
        /// Most bytes of tensor data in one shard (a single tensor larger than this gets a shard
        /// of its own). Shards hold whole layers where they fit.
        pub shard_bytes: u64,
    }

    impl Default for ConvertOptions {
        fn default() -> Self {
            Self {
                dtype: Precision::F32,
                layers_per_shard: usize::MAX,
                shard_bytes: 64 << 20,
            }
        }
    }

    /// The group (file name stem) and the unit (a layer, or the rest) a canonical key goes to.
    /// Units are kept whole in a shard where they fit.
    fn unit_of(key: &str) -> (u8, usize) {
        if key.starts_with("bert.embeddings.") {
            return (0, 0);
        }
        let layer = |rest: &str| rest.split('.').next().and_then(|n| n.parse::<usize>().ok());
        if let Some(n) = key.strip_prefix("bert.encoder.layer.").and_then(layer) {
            return (1, n);
        }
        if let Some(n) = key.strip_prefix("list_transformer.layers.").and_then(layer) {
            return (2, n + 1);
        }
        (2, 0)
    }

    fn tensor_bytes(tensor: &RawTensor, dtype: Precision) -> Vec<u8> {
        match dtype {
            Precision::F32 => tensor.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            Precision::F16 => tensor
                .data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        }
    }

    /// Where a source tensor is: decoded in memory (pickles, bundles) or still on disk in a
    /// safetensors file (read when its shard is written: the model is never held twice).
    struct Sources {
        map: WeightMap,
        indexed: Vec<(String, usize, IndexedTensor)>, // key, index into `files`, tensor
        files: Vec<SafetensorsIndex>,
    }

    impl Sources {
        fn keys(&self) -> Vec<(String, Vec<usize>)> {
            let mut keys: Vec<(String, Vec<usize>)> = self
                .map
                .keys()
                .map(|k| (k.to_string(), self.map.shape(k).expect("listed").to_vec()))
                .collect();
            keys.extend(
                self.indexed
                    .iter()
                    .map(|(k, _, t)| (k.clone(), t.shape.clone())),
            );
            keys.sort();
            keys
        }

        fn take(&mut self, key: &str, shape: &[usize]) -> Result<RawTensor> {
            if self.map.contains(key) {
                return self.map.take(key, shape);
            }
            let (_, file, tensor) = self
                .indexed
                .iter()
                .find(|(k, _, _)| k == key)
                .ok_or_else(|| Error::checkpoint("checkpoint", format!("no tensor `{key}`")))?;
            let index = &self.files[*file];
            let raw = index.read(tensor)?;
            if raw.data.iter().any(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    file: index.path.display().to_string(),
                    key: key.to_string(),
                });
            }
            Ok(raw)
        }
    }

    /// Indexes a safetensors file's tensors under canonical keys (`rename`), without reading them.
    fn index_safetensors(
        path: &Path,
        rename: impl Fn(&str) -> Option<String>,
        sources: &mut Sources,
    ) -> Result<()> {
        let index = SafetensorsIndex::open(path)?;
        let file = sources.files.len();
        for (name, tensor) in index.tensors() {
            if let Some(key) = rename(name) {
                if sources.indexed.iter().any(|(k, _, _)| *k == key) {
                    return Err(Error::checkpoint(
                        path.display(),
                        format!("two tensors map to `{key}`"),
                    ));
                }
                sources.indexed.push((key, file, tensor.clone()));
            }
        }
        sources.files.push(index);
        Ok(())
    }

    /// Converts a checkpoint (split layout, merged layout, or another bundle) in `model_dir`
    /// into a bundle in `out_dir` (created if needed). Returns the manifest written. Tensors in
    /// safetensors sources are read one shard at a time.
    pub fn write_bundle(
        model_dir: &Path,
        out_dir: &Path,
        options: &ConvertOptions,
    ) -> Result<Manifest> {
        if options.layers_per_shard == 0 {
            return Err(Error::input("layers per shard must be at least 1"));
        }
        if options.shard_bytes == 0 {
            return Err(Error::input("the shard size must be at least 1 byte"));
        }
        let mut sources = Sources {
            map: WeightMap::default(),
            indexed: Vec::new(),
            files: Vec::new(),
        };
        let (config_value, tokenizer_json) = if is_bundle(model_dir) {
            let text = std::fs::read_to_string(model_dir.join(MANIFEST_FILE))
                .map_err(|e| Error::io(model_dir.join(MANIFEST_FILE).display(), e))?;
            let manifest = Manifest::parse(&text)?;
            let tokenizer_path = model_dir.join(&manifest.tokenizer);
            let tokenizer = std::fs::read(&tokenizer_path)
                .map_err(|e| Error::io(tokenizer_path.display(), e))?;
            sources.map = read_bundle_dir(model_dir, None)?.weights;
            (manifest.config, tokenizer)
        } else {
            let files = find_model_files(model_dir)?;
            let config_file = files.encoder.config.display().to_string();
            let config_text = std::fs::read_to_string(&files.encoder.config)
                .map_err(|e| Error::io(&config_file, e))?;
            BertConfig::from_json(&config_text, &config_file)?;
            let config_value: serde_json::Value =
                serde_json::from_str(&config_text).map_err(|e| Error::config(&config_file, e))?;
            let tokenizer_json = match &files.encoder.tokenizer {
                TokenizerFiles::Json(path) => {
                    std::fs::read(path).map_err(|e| Error::io(path.display(), e))?
                }
                vocab => TextTokenizer::from_files(vocab)?.to_json()?.into_bytes(),
            };
            let weights = &files.encoder.weights;
            let safetensors = weights.extension().is_some_and(|ext| ext == "safetensors");
            match (&files.list_part, safetensors) {
                (None, _) => index_safetensors(weights, merged_key, &mut sources)?,
                (Some(_), true) => {
                    index_safetensors(weights, encoder_key, &mut sources)?;
                    // The pickles only (the encoder's safetensors stays on disk).
                    sources.map = crate::weights::load_list_part_weights(&files)?;
                }
                (Some(_), false) => sources.map = load_split_weights(&files)?,
            }
            (config_value, tokenizer_json)
        };

        // Units (embeddings; each encoder layer; the head's rest, each list-transformer layer)
        // in load order, packed into shards of at most `shard_bytes`.
        let element = match options.dtype {
            Precision::F32 => 4u64,
            Precision::F16 => 2u64,
        };
        let keys = sources.keys();
        let mut units: BTreeMap<(u8, usize), Vec<(String, Vec<usize>)>> = BTreeMap::new();
        for (key, shape) in keys {
            units.entry(unit_of(&key)).or_default().push((key, shape));
        }
        let size = |shape: &[usize]| shape.iter().product::<usize>() as u64 * element;
        // (group, first unit, last unit, keys) per shard.
        let mut plan: Vec<(u8, usize, usize, Vec<(String, Vec<usize>)>)> = Vec::new();
        let mut open: Option<(u8, usize, usize, Vec<(String, Vec<usize>)>, u64)> = None;
        for ((group, unit), tensors) in units {
            let unit_bytes: u64 = tensors.iter().map(|(_, s)| size(s)).sum();
            let fits = |o: &(u8, usize, usize, Vec<(String, Vec<usize>)>, u64)| {
                o.0 == group
                    && o.4 + unit_bytes <= options.shard_bytes
                    && (group != 1 || unit - o.1 < options.layers_per_shard)
            };
            match &mut open {
                Some(o) if fits(o) => {
                    o.2 = unit;
                    o.3.extend(tensors);
                    o.4 += unit_bytes;
                    continue;
                }
                _ => {}
            }
            if let Some(o) = open.take() {
                plan.push((o.0, o.1, o.2, o.3));
            }
            if unit_bytes <= options.shard_bytes {
                open = Some((group, unit, unit, tensors, unit_bytes));
                continue;
            }
            // A unit larger than a shard: split by tensors.
            let mut part: Vec<(String, Vec<usize>)> = Vec::new();
            let mut part_bytes = 0;
            for (key, shape) in tensors {
                let bytes = size(&shape);
                if !part.is_empty() && part_bytes + bytes > options.shard_bytes {
                    plan.push((group, unit, unit, std::mem::take(&mut part)));
                    part_bytes = 0;
                }
                part_bytes += bytes;
                part.push((key, shape));
            }
            plan.push((group, unit, unit, part));
        }
        if let Some(o) = open.take() {
            plan.push((o.0, o.1, o.2, o.3));
        }
        // File names: embeddings[-K], encoder-FF-LL[-K], head[-K].
        let mut names = Vec::with_capacity(plan.len());
        for (i, (group, first, last, _)) in plan.iter().enumerate() {
            let stem = match group {
                0 => "embeddings".to_string(),
                1 => format!("encoder-{first:02}-{last:02}"),
                _ => "head".to_string(),
            };
            let same = |(g, f, l, _): &(u8, usize, usize, Vec<(String, Vec<usize>)>)| {
                *g == *group && (*group != 1 || (*f, *l) == (*first, *last))
            };
            let count = plan.iter().filter(|p| same(p)).count();
            let k = plan[..i].iter().filter(|p| same(p)).count();
            names.push(if count == 1 {
                format!("{stem}.safetensors")
            } else {
                format!("{stem}-{k}.safetensors")
            });
        }

        std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir.display(), e))?;
        // An old manifest goes first: a half-written directory never looks like a bundle.
        let manifest_path = out_dir.join(MANIFEST_FILE);
        if manifest_path.exists() {
            std::fs::remove_file(&manifest_path)
                .map_err(|e| Error::io(manifest_path.display(), e))?;
        }
        let write = |name: &str, bytes: &[u8]| -> Result<BundleFile> {
            let path = out_dir.join(name);
            std::fs::write(&path, bytes).map_err(|e| Error::io(path.display(), e))?;
            Ok(BundleFile {
                path: name.to_string(),
                bytes: bytes.len() as u64,
                sha256: sha256_hex(bytes),
                tensors: Vec::new(),
            })
        };

        let mut files = vec![write("tokenizer.json", &tokenizer_json)?];
        let safetensors_dtype = match options.dtype {
            Precision::F32 => safetensors::Dtype::F32,
            Precision::F16 => safetensors::Dtype::F16,
        };
        for ((_, _, _, keys), name) in plan.into_iter().zip(names) {
            let mut tensors = Vec::with_capacity(keys.len());
            for (key, shape) in &keys {
                let tensor = sources.take(key, shape)?;
                tensors.push((
                    key.clone(),
                    shape.clone(),
                    tensor_bytes(&tensor, options.dtype),
                ));
            }
            let views = tensors
                .iter()
                .map(|(key, shape, bytes)| {
                    safetensors::tensor::TensorView::new(safetensors_dtype, shape.clone(), bytes)
                        .map(|view| (key.clone(), view))
                })
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| Error::checkpoint(&name, e))?;
            let bytes =
                safetensors::serialize(views, None).map_err(|e| Error::checkpoint(&name, e))?;
            drop(tensors);
            let mut file = write(&name, &bytes)?;
            file.tensors = keys.into_iter().map(|(k, _)| k).collect();
            file.tensors.sort();
            files.push(file);
        }

        let manifest = Manifest {
            format: BUNDLE_FORMAT.into(),
            version: BUNDLE_VERSION,
            dtype: options.dtype.to_string(),
            config: config_value,
            tokenizer: "tokenizer.json".into(),
            files,
        };
        let text = serde_json::to_string_pretty(&manifest).expect("manifest serializes");
        std::fs::write(&manifest_path, text + "\n")
            .map_err(|e| Error::io(manifest_path.display(), e))?;
        Ok(manifest)
    }
}
