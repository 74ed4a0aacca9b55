//! Writing a bundle (native only), in named steps:
//! 1. [`BundleSource`]: where each tensor of the source is (decoded, or still on disk);
//! 2. [`plan_shards`]: tensors grouped into [`Unit`]s (the embeddings, one encoder layer, one
//!    list layer, the rest of the head) and units packed into [`ShardPlan`]s under a byte limit;
//! 3. [`ShardPlan::file_name`]: `embeddings[-K]`, `encoder-FF-LL[-K]`, `head[-K]`;
//! 4. [`write_shard`]: one shard at a time, so the model is never held twice;
//! 5. [`StagingDir`]: everything goes into a fresh directory beside `out_dir`, which replaces
//!    `out_dir` only once it is complete (an interrupted convert leaves the old bundle).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use listconranker_formats::bundle::{BundleDtype, Calibration, FLOAT_BUNDLE_VERSION, Quantization};
use listconranker_formats::quantize::{DEFAULT_BLOCK, Quantized, SCALE_SUFFIX, Scheme, quantize};

use super::quantization::Storage;
use super::reader::{PlanCheck, is_bundle, read_bundle_dir, sha256_hex};
use super::{BUNDLE_FORMAT, BUNDLE_VERSION, BundleFile, MANIFEST_FILE, Manifest};
use crate::error::{Error, Result};
use crate::weights::staging::StagingDir;
use crate::weights::{
    Destination, IndexedTensor, ModelFiles, RawTensor, SafetensorsIndex, WeightMap, encoder_key,
    load_list_part_weights, load_split_weights, merged_key,
};

#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Type of the stored weights.
    pub dtype: BundleDtype,
    /// Values per scale along a row of quantized weights (where it does not divide a weight's
    /// input size: a q4 weight is stored as q8, a q8 weight gets one scale per row).
    pub block: usize,
    /// Most encoder layers in one shard (`usize::MAX`: sizes alone decide).
    pub layers_per_shard: usize,
    /// Most bytes of tensor data in one shard (a single tensor larger than this gets a shard
    /// of its own). Shards hold whole layers where they fit.
    pub shard_bytes: u64,
    /// Weights already quantized by a calibrated method (GPTQ), written as they are instead
    /// of rounding the source's values to nearest.
    pub calibrated: Option<CalibratedWeights>,
}

/// Quantized weights chosen by calibration (`crate::convert`'s GPTQ), by canonical key, in the
/// scheme the bundle's dtype gives each key, and the manifest's record of how.
#[derive(Debug, Clone)]
pub struct CalibratedWeights {
    pub weights: BTreeMap<String, Quantized>,
    /// `tensors` is filled from `weights`' keys when the manifest is written.
    pub calibration: Calibration,
}

impl ConvertOptions {
    /// Checks the options alone: shard limits, and an even block of at least 2 for quantized
    /// dtypes.
    pub fn check(&self) -> Result<()> {
        if self.layers_per_shard == 0 {
            return Err(Error::input("layers per shard must be at least 1"));
        }
        if self.shard_bytes == 0 {
            return Err(Error::input("the shard size must be at least 1 byte"));
        }
        if self.dtype.is_quantized() && (self.block < 2 || self.block % 2 != 0) {
            return Err(Error::input(
                "the block size must be an even number of at least 2",
            ));
        }
        Ok(())
    }
}

impl Default for ConvertOptions {
    fn default() -> Self {
        Self {
            dtype: BundleDtype::F32,
            block: DEFAULT_BLOCK,
            layers_per_shard: usize::MAX,
            shard_bytes: 64 << 20,
            calibrated: None,
        }
    }
}

/// What a bundle is written from: the model's `config.json` (as JSON), its tokenizer as
/// `tokenizer.json` bytes, and its tensors under canonical keys.
pub struct BundleSource {
    pub config: serde_json::Value,
    pub tokenizer_json: Vec<u8>,
    tensors: SourceTensors,
    /// The stored type of a source bundle (`None` for a checkpoint, whose tensors of every float
    /// type decode exactly to f32, f64 aside).
    from_bundle: Option<BundleDtype>,
}

/// Where a source tensor is: decoded in memory (pickles, bundles) or still on disk in a
/// safetensors file (read when its shard is written: the model is never held twice).
struct SourceTensors {
    decoded: WeightMap,
    on_disk: BTreeMap<String, OnDisk>,
    files: Vec<SafetensorsIndex>,
}

struct OnDisk {
    /// Index into `SourceTensors::files`.
    file: usize,
    tensor: IndexedTensor,
}

/// A tensor to write: its canonical key and shape.
#[derive(Debug, Clone, PartialEq)]
struct TensorEntry {
    key: String,
    shape: Vec<usize>,
}

impl BundleSource {
    /// The tensors of an existing bundle (decoded; a bundle is re-written in another dtype or
    /// shard size).
    /// `check` sees its tensor list before a shard is read.
    pub fn from_bundle(dir: &Path, check: PlanCheck) -> Result<Self> {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| Error::read_model(manifest_path.display(), e))?;
        let manifest = Manifest::parse(&text)?;
        let from_bundle = Some(manifest.bundle_dtype()?);
        let parts = read_bundle_dir(dir, Destination::Host, check)?;
        Ok(Self {
            config: manifest.config,
            tokenizer_json: parts.tokenizer_json,
            tensors: SourceTensors {
                decoded: parts.weights,
                on_disk: BTreeMap::new(),
                files: Vec::new(),
            },
            from_bundle,
        })
    }

    /// The tensors of a checkpoint directory (split or merged layout), with its config and the
    /// tokenizer already turned into `tokenizer.json` bytes. A safetensors encoder stays on disk
    /// until its shard is written.
    pub fn from_checkpoint(
        files: &ModelFiles,
        config: serde_json::Value,
        tokenizer_json: Vec<u8>,
    ) -> Result<Self> {
        let mut tensors = SourceTensors {
            decoded: WeightMap::default(),
            on_disk: BTreeMap::new(),
            files: Vec::new(),
        };
        let weights = &files.encoder.weights;
        let safetensors = weights.extension().is_some_and(|ext| ext == "safetensors");
        match (&files.list_part, safetensors) {
            (None, _) => tensors.index_safetensors(weights, merged_key)?,
            (Some(_), true) => {
                tensors.index_safetensors(weights, encoder_key)?;
                // The pickles only (the encoder's safetensors stays on disk).
                tensors.decoded = load_list_part_weights(files)?;
            }
            (Some(_), false) => tensors.decoded = load_split_weights(files)?,
        }
        Ok(Self {
            config,
            tokenizer_json,
            tensors,
            from_bundle: None,
        })
    }

    /// The manifest's `quantization` for a bundle of `options.dtype` written from this source.
    /// Quantizing an already quantized bundle is refused: its errors would add up.
    fn quantization(&self, options: &ConvertOptions) -> Result<Option<Quantization>> {
        if !options.dtype.is_quantized() {
            return Ok(None);
        }
        let quantized_from = match self.from_bundle {
            None => BundleDtype::F32,
            Some(dtype) => {
                refuse_requantizing(dtype, options.dtype)?;
                dtype
            }
        };
        let calibration = options
            .calibrated
            .as_ref()
            .filter(|c| !c.weights.is_empty())
            .map(|c| Calibration {
                tensors: c.weights.keys().cloned().collect(),
                ..c.calibration.clone()
            });
        Ok(Some(Quantization {
            scheme: options.dtype.name().into(),
            block_size: Some(options.block),
            quantized_from: quantized_from.name().into(),
            calibration,
        }))
    }
}

/// Quantizing an already quantized bundle (`source`) into a `target` bundle is refused: its
/// errors would add up.
pub fn refuse_requantizing(source: BundleDtype, target: BundleDtype) -> Result<()> {
    if source.is_quantized() && target.is_quantized() {
        return Err(Error::input(format!(
            "the source is a {} bundle: convert to {} from the float checkpoint or an f32 / f16 \
             bundle",
            source.name(),
            target.name()
        )));
    }
    Ok(())
}

impl SourceTensors {
    /// Indexes a safetensors file's tensors under canonical keys (`rename`), without reading
    /// them.
    fn index_safetensors(
        &mut self,
        path: &Path,
        rename: impl Fn(&str) -> Option<String>,
    ) -> Result<()> {
        let index = SafetensorsIndex::open(path)?;
        let file = self.files.len();
        for (name, tensor) in index.tensors() {
            let Some(key) = rename(name) else { continue };
            if self.on_disk.contains_key(&key) {
                return Err(Error::checkpoint(
                    path.display(),
                    format!("two tensors map to `{key}`"),
                ));
            }
            let tensor = tensor.clone();
            self.on_disk.insert(key, OnDisk { file, tensor });
        }
        self.files.push(index);
        Ok(())
    }

    /// Every tensor, sorted by key.
    fn entries(&self) -> Vec<TensorEntry> {
        let decoded = self.decoded.keys().map(|key| TensorEntry {
            key: key.to_string(),
            shape: self.decoded.shape(key).expect("a listed key").to_vec(),
        });
        let on_disk = self.on_disk.iter().map(|(key, d)| TensorEntry {
            key: key.clone(),
            shape: d.tensor.shape.clone(),
        });
        let mut entries: Vec<TensorEntry> = decoded.chain(on_disk).collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        entries
    }

    fn take(&mut self, entry: &TensorEntry) -> Result<RawTensor> {
        if self.decoded.contains(&entry.key) {
            return self.decoded.take(&entry.key, &entry.shape);
        }
        let on_disk = self
            .on_disk
            .remove(&entry.key)
            .ok_or_else(|| Error::checkpoint("checkpoint", format!("no tensor `{}`", entry.key)))?;
        let index = &self.files[on_disk.file];
        let raw = index.read(&on_disk.tensor)?;
        if !raw.all_finite() {
            return Err(Error::NonFinite {
                file: index.path.display().to_string(),
                key: entry.key.clone(),
            });
        }
        Ok(raw)
    }
}

/// Which file family a tensor goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ShardGroup {
    Embeddings,
    Encoder,
    Head,
}

/// Tensors kept whole in one shard where they fit: the embeddings, one encoder layer, the
/// head's own tensors (index 0) or one list layer (index N + 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Unit {
    group: ShardGroup,
    index: usize,
}

impl Unit {
    fn of(key: &str) -> Unit {
        let layer = |rest: &str| rest.split('.').next().and_then(|n| n.parse::<usize>().ok());
        let (group, index) = if key.starts_with("bert.embeddings.") {
            (ShardGroup::Embeddings, 0)
        } else if let Some(n) = key.strip_prefix("bert.encoder.layer.").and_then(layer) {
            (ShardGroup::Encoder, n)
        } else if let Some(n) = key.strip_prefix("list_transformer.layers.").and_then(layer) {
            (ShardGroup::Head, n + 1)
        } else {
            (ShardGroup::Head, 0)
        };
        Unit { group, index }
    }
}

/// One shard to write: units `first..=last` of one group (or part of one unit too large for a
/// shard).
#[derive(Debug)]
struct ShardPlan {
    group: ShardGroup,
    first: usize,
    last: usize,
    tensors: Vec<TensorEntry>,
    bytes: u64,
}

impl ShardPlan {
    fn starting(unit: Unit) -> Self {
        Self {
            group: unit.group,
            first: unit.index,
            last: unit.index,
            tensors: Vec::new(),
            bytes: 0,
        }
    }

    fn add(&mut self, unit: Unit, tensor: TensorEntry, bytes: u64) {
        self.last = unit.index;
        self.tensors.push(tensor);
        self.bytes += bytes;
    }

    /// Whether all of `unit` (`bytes` in all) can join this shard.
    fn takes(&self, unit: Unit, bytes: u64, options: &ConvertOptions) -> bool {
        self.group == unit.group
            && self.bytes + bytes <= options.shard_bytes
            && (self.group != ShardGroup::Encoder
                || unit.index - self.first < options.layers_per_shard)
    }

    /// Shards of the same family and range share a stem and are numbered.
    fn same_stem(&self, other: &ShardPlan) -> bool {
        self.group == other.group
            && (self.group != ShardGroup::Encoder
                || (self.first, self.last) == (other.first, other.last))
    }

    fn stem(&self) -> String {
        match self.group {
            ShardGroup::Embeddings => "embeddings".into(),
            ShardGroup::Encoder => format!("encoder-{:02}-{:02}", self.first, self.last),
            ShardGroup::Head => "head".into(),
        }
    }

    /// `stem.safetensors`, or `stem-K.safetensors` when the stem has several shards.
    fn file_name(&self, plans: &[ShardPlan], position: usize) -> String {
        let count = plans.iter().filter(|p| p.same_stem(self)).count();
        if count == 1 {
            return format!("{}.safetensors", self.stem());
        }
        let k = plans[..position]
            .iter()
            .filter(|p| p.same_stem(self))
            .count();
        format!("{}-{k}.safetensors", self.stem())
    }
}

/// Packs the tensors into shards in load order: units kept whole where they fit, units larger
/// than a shard split by tensors.
fn plan_shards(entries: Vec<TensorEntry>, options: &ConvertOptions) -> Vec<ShardPlan> {
    let bytes_of = |t: &TensorEntry| {
        Storage::of(&t.key, &t.shape, options.dtype, options.block).bytes(&t.shape)
    };
    let mut units: BTreeMap<Unit, Vec<TensorEntry>> = BTreeMap::new();
    for entry in entries {
        units.entry(Unit::of(&entry.key)).or_default().push(entry);
    }
    let mut plans: Vec<ShardPlan> = Vec::new();
    let mut open: Option<ShardPlan> = None;
    for (unit, tensors) in units {
        let unit_bytes: u64 = tensors.iter().map(bytes_of).sum();
        let shard = match open.take() {
            Some(shard) if shard.takes(unit, unit_bytes, options) => shard,
            other => {
                plans.extend(other);
                ShardPlan::starting(unit)
            }
        };
        if unit_bytes <= options.shard_bytes {
            let mut shard = shard;
            for tensor in tensors {
                let bytes = bytes_of(&tensor);
                shard.add(unit, tensor, bytes);
            }
            open = Some(shard);
            continue;
        }
        // A unit larger than a shard (the shard is new and empty here): split by tensors.
        let mut part = shard;
        for tensor in tensors {
            let bytes = bytes_of(&tensor);
            if !part.tensors.is_empty() && part.bytes + bytes > options.shard_bytes {
                plans.push(std::mem::replace(&mut part, ShardPlan::starting(unit)));
            }
            part.add(unit, tensor, bytes);
        }
        plans.push(part);
    }
    plans.extend(open);
    plans
}

/// One stored tensor of a shard: its name, safetensors dtype, shape and bytes.
struct StoredTensor {
    name: String,
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

/// Encodes one tensor as `storage` says: one float tensor, or quantized values and their
/// scales (`<key>.scale`), rounded to nearest unless `calibrated` holds them already (checked
/// against the tensor's shape by `check_calibrated_keys` before anything was written).
fn stored_tensors(
    key: &str,
    tensor: &RawTensor,
    storage: Storage,
    calibrated: Option<&Quantized>,
) -> Result<Vec<StoredTensor>> {
    let float = |dtype, bytes| StoredTensor {
        name: key.to_string(),
        dtype,
        shape: tensor.shape.clone(),
        bytes,
    };
    Ok(match storage {
        Storage::F32 => vec![float(
            safetensors::Dtype::F32,
            tensor.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )],
        Storage::F16 => vec![float(
            safetensors::Dtype::F16,
            tensor
                .data
                .iter()
                .flat_map(|&v| half::f16::from_f32(v).to_le_bytes())
                .collect(),
        )],
        Storage::Quantized(scheme) => {
            let q = match calibrated {
                Some(q) => q.clone(),
                None => quantize(scheme, key, &tensor.shape, &tensor.data)?,
            };
            let values_dtype = match scheme {
                Scheme::Q8Blocks { .. } => safetensors::Dtype::I8,
                Scheme::Q4Blocks { .. } => safetensors::Dtype::U8,
            };
            vec![
                StoredTensor {
                    name: key.to_string(),
                    dtype: values_dtype,
                    shape: q.values_shape,
                    bytes: q.values,
                },
                StoredTensor {
                    name: format!("{key}{SCALE_SUFFIX}"),
                    dtype: safetensors::Dtype::F16,
                    shape: q.scales_shape,
                    bytes: q.scales.iter().flat_map(|s| s.to_le_bytes()).collect(),
                },
            ]
        }
    })
}

/// Checks that a calibrated weight is `scheme`'s stored form of a weight of `shape`.
fn check_calibrated(key: &str, shape: &[usize], scheme: Scheme, q: &Quantized) -> Result<()> {
    if !q.is_stored_form_of(scheme, shape) {
        return Err(Error::checkpoint(
            key,
            format!(
                "a calibrated weight stored as values {:?} and scales {:?}, not as {scheme:?} \
                 stores a weight of shape {shape:?}",
                q.values_shape, q.scales_shape
            ),
        ));
    }
    Ok(())
}

/// Reads the plan's tensors from the source and writes them as one safetensors file.
fn write_shard(
    source: &mut SourceTensors,
    plan: &ShardPlan,
    name: &str,
    options: &ConvertOptions,
    dir: &StagingDir,
) -> Result<BundleFile> {
    let mut stored = Vec::with_capacity(plan.tensors.len());
    for entry in &plan.tensors {
        let storage = Storage::of(&entry.key, &entry.shape, options.dtype, options.block);
        let calibrated = options
            .calibrated
            .as_ref()
            .and_then(|c| c.weights.get(&entry.key));
        stored.extend(stored_tensors(
            &entry.key,
            &source.take(entry)?,
            storage,
            calibrated,
        )?);
    }
    let views = stored
        .iter()
        .map(|t| {
            safetensors::tensor::TensorView::new(t.dtype, t.shape.clone(), &t.bytes)
                .map(|view| (t.name.clone(), view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::checkpoint(name, e))?;
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::checkpoint(name, e))?;
    let mut file = write_file(dir, name, &bytes)?;
    file.tensors = stored.into_iter().map(|t| t.name).collect();
    file.tensors.sort();
    Ok(file)
}

/// Checks a convert's options ([`ConvertOptions::check`]) and output ([`check_output`]) before
/// any work (a calibrated convert runs this before its minutes of calibration).
pub fn check_convert_request(
    model_dir: &Path,
    out_dir: &Path,
    options: &ConvertOptions,
) -> Result<()> {
    options.check()?;
    check_output(model_dir, out_dir)
}

/// Refuses an output that would destroy the source or the user's files: `out_dir` equal to or
/// inside the source, a symlink, or an existing directory that is neither empty nor a bundle.
fn check_output(model_dir: &Path, out_dir: &Path) -> Result<()> {
    let refuse = |reason: &str| {
        Err(Error::input(format!(
            "--out {}: {reason}",
            out_dir.display()
        )))
    };
    if let (Some(model), Some(out)) = (resolved(model_dir), resolved(out_dir))
        && out.starts_with(&model)
    {
        return refuse("is the source model directory or inside it");
    }
    if let Ok(meta) = std::fs::symlink_metadata(out_dir) {
        if meta.file_type().is_symlink() {
            return refuse("is a symlink; give the directory itself");
        }
        if !meta.is_dir() {
            return refuse("exists and is not a directory");
        }
        let empty = std::fs::read_dir(out_dir)
            .map_err(|e| Error::write_output(out_dir.display(), e))?
            .next()
            .is_none();
        if !empty && !is_bundle(out_dir) {
            return refuse("exists and is neither empty nor a bundle (it would be replaced)");
        }
    }
    Ok(())
}

/// Where `path` really is: its nearest existing ancestor with symlinks resolved, joined with the
/// part that does not exist yet.
fn resolved(path: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(path).ok()?;
    absolute.ancestors().find_map(|ancestor| {
        let real = std::fs::canonicalize(ancestor).ok()?;
        Some(real.join(absolute.strip_prefix(ancestor).ok()?))
    })
}

/// Every calibrated weight must be a tensor of the source that the bundle quantizes: one that
/// is not would be dropped silently.
fn check_calibrated_keys(entries: &[TensorEntry], options: &ConvertOptions) -> Result<()> {
    let Some(calibrated) = &options.calibrated else {
        return Ok(());
    };
    for (key, weight) in &calibrated.weights {
        let stored = entries.iter().find_map(|e| {
            match Storage::of(&e.key, &e.shape, options.dtype, options.block) {
                Storage::Quantized(scheme) if &e.key == key => Some((e, scheme)),
                _ => None,
            }
        });
        if let Some((entry, scheme)) = stored {
            check_calibrated(key, &entry.shape, scheme, weight)?;
        } else {
            return Err(Error::input(format!(
                "calibrated weight `{key}` is not a tensor that a {} bundle of this model \
                 quantizes",
                options.dtype.name()
            )));
        }
    }
    Ok(())
}

/// Writes `source` as a bundle at `out_dir`: into a fresh directory beside it, which
/// `validate` checks (the caller loads it, as a model), and which then replaces `out_dir` (an
/// older bundle there, or nothing). `model_dir` is where the source came from (an output inside
/// it is refused). Returns the manifest written.
pub fn write_bundle(
    source: BundleSource,
    model_dir: &Path,
    out_dir: &Path,
    options: &ConvertOptions,
    validate: impl FnOnce(&Path) -> Result<()>,
) -> Result<Manifest> {
    check_convert_request(model_dir, out_dir, options)?;
    let quantization = source.quantization(options)?;
    let entries = source.tensors.entries();
    check_calibrated_keys(&entries, options)?;
    let BundleSource {
        config,
        tokenizer_json,
        mut tensors,
        ..
    } = source;
    let plans = plan_shards(entries, options);
    let staging = StagingDir::beside(out_dir)?;
    let mut files = vec![write_file(&staging, "tokenizer.json", &tokenizer_json)?];
    for (position, plan) in plans.iter().enumerate() {
        let name = plan.file_name(&plans, position);
        files.push(write_shard(&mut tensors, plan, &name, options, &staging)?);
    }
    let manifest = Manifest {
        format: BUNDLE_FORMAT.into(),
        version: match quantization {
            Some(_) => BUNDLE_VERSION,
            None => FLOAT_BUNDLE_VERSION,
        },
        dtype: options.dtype.name().into(),
        quantization,
        config,
        tokenizer: "tokenizer.json".into(),
        files,
    };
    let text = serde_json::to_string_pretty(&manifest).expect("a manifest serializes");
    write_file(&staging, MANIFEST_FILE, (text + "\n").as_bytes())?;
    validate(staging.path())?;
    staging.replace(out_dir)?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, shape: &[usize]) -> TensorEntry {
        TensorEntry {
            key: key.into(),
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn units_stay_whole_and_big_units_are_split() {
        let entries = vec![
            entry("bert.embeddings.word_embeddings.weight", &[10, 4]),
            entry("bert.encoder.layer.0.a", &[4, 4]),
            entry("bert.encoder.layer.0.b", &[4]),
            entry("bert.encoder.layer.1.a", &[4, 4]),
            entry("bert.encoder.layer.1.b", &[4]),
            entry("linear_score1.weight", &[1, 8]),
            entry("list_transformer.layers.0.linear1.weight", &[64, 4]),
        ];
        let options = ConvertOptions {
            dtype: BundleDtype::F32,
            block: DEFAULT_BLOCK,
            layers_per_shard: usize::MAX,
            shard_bytes: 100 * 4,
            calibrated: None,
        };
        let plans = plan_shards(entries, &options);
        let names: Vec<String> = (0..plans.len())
            .map(|i| plans[i].file_name(&plans, i))
            .collect();
        assert_eq!(
            names,
            [
                "embeddings.safetensors",
                "encoder-00-01.safetensors",
                "head-0.safetensors",
                "head-1.safetensors",
            ]
        );
        // 256 values of list layer 0 exceed the 100-value shard: alone in its own shard.
        assert_eq!(plans[3].tensors.len(), 1);
        assert!(plans[..3].iter().all(|p| p.bytes <= options.shard_bytes));
    }
}

/// Writes a new file of the bundle into the staging directory, with its size and digest.
fn write_file(dir: &StagingDir, name: &str, bytes: &[u8]) -> Result<BundleFile> {
    dir.write(name, bytes)?;
    Ok(BundleFile {
        path: name.to_string(),
        bytes: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        tensors: Vec::new(),
    })
}
