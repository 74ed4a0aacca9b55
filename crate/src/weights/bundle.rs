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
        })
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
            read_safetensors(
                bytes,
                path,
                |k| Some(k.to_string()),
                |k, t| {
                    found.push(k.clone());
                    weights.insert(k, path, t);
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
    use crate::weights::{RawTensor, TokenizerFiles, find_model_files, load_split_weights};

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

    /// Reads a bundle directory, checking every file's size and sha256.
    pub fn read_bundle_dir(dir: &Path) -> Result<BundleParts> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| Error::io(manifest_path.display(), e))?;
        let manifest = Manifest::parse(&text)?;
        let files = manifest.files.clone();
        let mut reader = BundleReader::new(manifest)?;
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
        /// Encoder layers per shard (the real model's 24 layers: 6 shards of ~200 MB in f32).
        pub layers_per_shard: usize,
    }

    impl Default for ConvertOptions {
        fn default() -> Self {
            Self {
                dtype: Precision::F32,
                layers_per_shard: 4,
            }
        }
    }

    /// Which shard a canonical key goes to.
    fn shard_of(key: &str, layers_per_shard: usize, layers: usize) -> String {
        if key.starts_with("bert.embeddings.") {
            return "embeddings.safetensors".into();
        }
        if let Some(rest) = key.strip_prefix("bert.encoder.layer.")
            && let Some(n) = rest.split('.').next().and_then(|n| n.parse::<usize>().ok())
        {
            let first = n / layers_per_shard * layers_per_shard;
            let last = (first + layers_per_shard).min(layers.max(n + 1)) - 1;
            return format!("encoder-{first:02}-{last:02}.safetensors");
        }
        "head.safetensors".into()
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

    /// Converts a split-layout checkpoint (or another bundle) in `model_dir` into a bundle in
    /// `out_dir` (created if needed). Returns the manifest written.
    pub fn write_bundle(
        model_dir: &Path,
        out_dir: &Path,
        options: &ConvertOptions,
    ) -> Result<Manifest> {
        if options.layers_per_shard == 0 {
            return Err(Error::input("layers per shard must be at least 1"));
        }
        let (config_value, mut weights, tokenizer_json) = if is_bundle(model_dir) {
            let text = std::fs::read_to_string(model_dir.join(MANIFEST_FILE))
                .map_err(|e| Error::io(model_dir.join(MANIFEST_FILE).display(), e))?;
            let manifest = Manifest::parse(&text)?;
            let tokenizer_path = model_dir.join(&manifest.tokenizer);
            let tokenizer = std::fs::read(&tokenizer_path)
                .map_err(|e| Error::io(tokenizer_path.display(), e))?;
            let parts = read_bundle_dir(model_dir)?;
            (manifest.config, parts.weights, tokenizer)
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
            (config_value, load_split_weights(&files)?, tokenizer_json)
        };
        let layers = weights
            .keys()
            .filter_map(|k| k.strip_prefix("bert.encoder.layer."))
            .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
            .max()
            .map_or(0, |n| n + 1);

        // Shard name -> sorted keys.
        let mut shards: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for key in weights.keys() {
            shards
                .entry(shard_of(key, options.layers_per_shard, layers))
                .or_default()
                .push(key.to_string());
        }
        std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir.display(), e))?;
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
        // Load order: embeddings, encoder layers in order, head.
        let mut order: Vec<String> = shards.keys().cloned().collect();
        order.sort_by_key(|name| {
            (
                match name.as_str() {
                    "embeddings.safetensors" => 0,
                    "head.safetensors" => 2,
                    _ => 1,
                },
                name.clone(),
            )
        });
        let safetensors_dtype = match options.dtype {
            Precision::F32 => safetensors::Dtype::F32,
            Precision::F16 => safetensors::Dtype::F16,
        };
        for name in order {
            let mut keys = shards.remove(&name).unwrap_or_default();
            keys.sort();
            let mut tensors = Vec::with_capacity(keys.len());
            for key in &keys {
                let shape = weights.shape(key)?.to_vec();
                let tensor = weights.take(key, &shape)?;
                tensors.push((key.clone(), shape, tensor_bytes(&tensor, options.dtype)));
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
            let mut file = write(&name, &bytes)?;
            file.tensors = keys;
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
        let path = out_dir.join(MANIFEST_FILE);
        std::fs::write(&path, text + "\n").map_err(|e| Error::io(path.display(), e))?;
        Ok(manifest)
    }
}
