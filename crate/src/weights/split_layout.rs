//! The original release's directory ("split layout"): `config.json`, tokenizer files, the BERT
//! weights (`model.safetensors` or `pytorch_model.bin`) and two PyTorch pickles for the list part.

use std::path::{Path, PathBuf};

use listconranker_formats::pickle::read_pickle;
use listconranker_formats::safetensors_file::read_safetensors;
use listconranker_formats::tokenize::TokenizerFiles;
use safetensors::{Dtype, SafeTensors};

use super::{RawTensor, StoredDType, WeightMap, decode_to_f32};
use crate::error::{Error, Result};

/// The files of a plain BERT checkpoint directory (the encoder on its own).
#[derive(Debug, Clone)]
pub struct EncoderFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: TokenizerFiles,
}

/// The files of a checkpoint directory: the encoder's, plus the list part's. In the merged
/// layout (one safetensors holding every tensor under prefixes) the list part has no files of
/// its own: `list_part` is `None` and `encoder.weights` holds everything.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub encoder: EncoderFiles,
    pub list_part: Option<ListPartFiles>,
}

/// The split layout's two PyTorch pickles.
#[derive(Debug, Clone)]
pub struct ListPartFiles {
    pub projection: PathBuf,
    pub list_transformer: PathBuf,
}

fn first_existing(dir: &Path, names: &[&str], what: &'static str) -> Result<PathBuf> {
    names
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| Error::MissingFile {
            dir: dir.display().to_string(),
            what,
            candidates: names.join(" or "),
        })
}

/// Locates the files of a BERT checkpoint in `dir`.
pub fn find_encoder_files(dir: &Path) -> Result<EncoderFiles> {
    if !dir.is_dir() {
        return Err(Error::read_model(dir.display(), "not a directory"));
    }
    let tokenizer = match first_existing(dir, &["tokenizer.json"], "tokenizer") {
        Ok(json) => TokenizerFiles::Json(json),
        Err(_) => TokenizerFiles::Vocab {
            vocab: first_existing(
                dir,
                &["vocab.txt"],
                "tokenizer (tokenizer.json or vocab.txt)",
            )?,
            config: first_existing(dir, &["tokenizer_config.json"], "tokenizer config").ok(),
        },
    };
    Ok(EncoderFiles {
        config: first_existing(dir, &["config.json"], "encoder config")?,
        weights: first_existing(
            dir,
            &["model.safetensors", "pytorch_model.bin"],
            "encoder weights",
        )?,
        tokenizer,
    })
}

/// Locates the files of a split-layout (or merged-layout) checkpoint in `dir`.
pub fn find_model_files(dir: &Path) -> Result<ModelFiles> {
    let encoder = find_encoder_files(dir)?;
    let has_pickles =
        dir.join("linear_in_embedding.pt").is_file() || dir.join("list_transformer.pt").is_file();
    if !has_pickles && is_merged_safetensors(&encoder.weights) {
        return Ok(ModelFiles {
            encoder,
            list_part: None,
        });
    }
    Ok(ModelFiles {
        encoder,
        list_part: Some(ListPartFiles {
            projection: first_existing(dir, &["linear_in_embedding.pt"], "projection weights")?,
            list_transformer: first_existing(
                dir,
                &["list_transformer.pt"],
                "list transformer weights",
            )?,
        }),
    })
}

/// Whether a safetensors file holds the list part too (the merged layout).
fn is_merged_safetensors(path: &Path) -> bool {
    path.extension().is_some_and(|ext| ext == "safetensors")
        && SafetensorsIndex::open(path).is_ok_and(|index| {
            index
                .names()
                .any(|n| merged_key(n).is_some_and(|k| !k.starts_with("bert.")))
        })
}

/// Segment-boundary search: the suffix of `name` starting at `part` (at its start or after a `.`).
fn suffix_from<'a>(name: &'a str, part: &str) -> Option<&'a str> {
    if name.starts_with(part) {
        return Some(name);
    }
    name.match_indices(&format!(".{part}"))
        .next()
        .map(|(at, _)| &name[at + 1..])
}

/// Keys of the merged layout: every tensor under some prefix (`model.`, `hf_model.`, ...).
/// The list part's keys are found by their own names (`linear_in_embedding.`, `query_embedding.`,
/// `list_transformer.`, `linear_scoreN.`), the encoder's by `embeddings.` / `encoder.layer.`;
/// the unused template `list_transformer_layer.*` and the pooler are skipped.
pub fn merged_key(name: &str) -> Option<String> {
    if suffix_from(name, "list_transformer_layer.").is_some() {
        return None;
    }
    for part in [
        "linear_in_embedding.",
        "query_embedding.",
        "list_transformer.",
        "linear_score",
    ] {
        if let Some(rest) = suffix_from(name, part) {
            return Some(rest.to_string());
        }
    }
    for part in ["embeddings.", "encoder.layer."] {
        if let Some(rest) = suffix_from(name, part) {
            return encoder_key(rest);
        }
    }
    None
}

/// A safetensors file mapped into memory, for reading its tensors one at a time: only the pages
/// of the tensors read are touched, so a converter never holds the whole model.
pub struct SafetensorsIndex {
    pub path: PathBuf,
    map: memmap2::Mmap,
    tensors: Vec<(String, IndexedTensor)>,
}

/// Where one tensor's bytes are in the file.
#[derive(Debug, Clone)]
pub struct IndexedTensor {
    pub dtype: StoredDType,
    pub shape: Vec<usize>,
    pub offset: usize,
    pub len: usize,
}

impl SafetensorsIndex {
    pub fn open(path: &Path) -> Result<Self> {
        let file = path.display().to_string();
        let handle = std::fs::File::open(path).map_err(|e| Error::read_model(&file, e))?;
        // SAFETY: the map is read-only; like every safetensors loader, this assumes the file is
        // not truncated or rewritten while the model loads.
        let map =
            unsafe { memmap2::Mmap::map(&handle) }.map_err(|e| Error::read_model(&file, e))?;
        let (header_len, metadata) = SafeTensors::read_metadata(&map)
            .map_err(|e| Error::checkpoint(&file, format!("not a valid safetensors file: {e}")))?;
        let data_start = 8 + header_len;
        let mut tensors = Vec::new();
        for (name, info) in metadata.tensors() {
            let dtype = match info.dtype {
                Dtype::F32 => StoredDType::F32,
                Dtype::F16 => StoredDType::F16,
                Dtype::BF16 => StoredDType::BF16,
                Dtype::F64 => StoredDType::F64,
                // Integer buffers (position_ids) are skipped by every key map.
                _ if encoder_key(&name).is_none() || merged_key(&name).is_none() => continue,
                other => {
                    return Err(Error::checkpoint(
                        &file,
                        format!("tensor `{name}` has unsupported dtype {other:?}"),
                    ));
                }
            };
            let (begin, end) = info.data_offsets;
            tensors.push((
                name,
                IndexedTensor {
                    dtype,
                    shape: info.shape.clone(),
                    offset: data_start + begin,
                    len: end - begin,
                },
            ));
        }
        // File order: deterministic, and reads then move forward through the file.
        tensors.sort_by_key(|(_, t)| t.offset);
        Ok(Self {
            path: path.to_path_buf(),
            map,
            tensors,
        })
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|(n, _)| n.as_str())
    }

    pub fn tensors(&self) -> &[(String, IndexedTensor)] {
        &self.tensors
    }

    /// Decodes one tensor (its size was checked against the header when the file was opened).
    pub fn read(&self, tensor: &IndexedTensor) -> Result<RawTensor> {
        let bytes = &self.map[tensor.offset..tensor.offset + tensor.len];
        let elements = tensor.shape.iter().product();
        let data = decode_to_f32(tensor.dtype, bytes, elements).ok_or_else(|| {
            Error::checkpoint(self.path.display(), "a tensor has the wrong byte size")
        })?;
        // The decoded copy is all that is needed now: let the kernel drop the mapped pages, so
        // that resident memory stays near one tensor instead of growing to the whole file.
        #[cfg(unix)]
        // SAFETY: a read-only file mapping; dropped pages are read again from the file if
        // touched, and no reference into them outlives this function.
        unsafe {
            let _ = self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                tensor.offset,
                tensor.len,
            );
        }
        Ok(RawTensor {
            shape: tensor.shape.clone(),
            data,
        })
    }
}

/// Encoder keys: with or without the `bert.` prefix; the pooler (unused: the model mean-pools),
/// pretraining heads and the `position_ids` buffer are skipped.
pub fn encoder_key(name: &str) -> Option<String> {
    let bare = name.strip_prefix("bert.").unwrap_or(name);
    let unused =
        bare.starts_with("pooler.") || bare.starts_with("cls.") || bare.ends_with("position_ids");
    (!unused).then(|| format!("bert.{bare}"))
}

fn projection_key(name: &str) -> Option<String> {
    let bare = name.strip_prefix("linear_in_embedding.").unwrap_or(name);
    Some(format!("linear_in_embedding.{bare}"))
}

/// List part keys are kept as they are, minus the unused `list_transformer_layer.*` template
/// that `nn.TransformerEncoder` was built from.
fn list_key(name: &str) -> Option<String> {
    (!name.starts_with("list_transformer_layer.")).then(|| name.to_string())
}

/// Reads a safetensors file into `map`: its tensors decoded, or only their keys when `map` is
/// a plan ([`WeightMap::plan`]: the header alone is read).
fn read_safetensors_file(
    path: &Path,
    rename: impl Fn(&str) -> Option<String>,
    map: &mut WeightMap,
) -> Result<()> {
    let file = path.display().to_string();
    if map.is_plan() {
        let index = SafetensorsIndex::open(path)?;
        for key in index.names().filter_map(&rename) {
            map.plan_key(key, &file)?;
        }
        return Ok(());
    }
    let bytes = std::fs::read(path).map_err(|e| Error::read_model(&file, e))?;
    read_safetensors(&bytes, &file, rename, |k, t| map.insert(k, &file, t))
}

/// Reads a PyTorch pickle into `map`: its tensors decoded, or only their keys when `map` is a
/// plan (the pickle's metadata alone is read).
fn read_pickle_file(
    path: &Path,
    rename: impl Fn(&str) -> Option<String>,
    map: &mut WeightMap,
) -> Result<()> {
    let file = path.display().to_string();
    if !map.is_plan() {
        return read_pickle(path, rename, |k, t| map.insert(k, &file, t));
    }
    // The reader decodes only the tensors `rename` maps: mapping none lists the keys.
    let mut keys = Vec::new();
    read_pickle(
        path,
        |name| {
            keys.extend(rename(name));
            None
        },
        |_, _| Ok(()),
    )?;
    keys.into_iter()
        .try_for_each(|key| map.plan_key(key, &file))
}

fn read_encoder_file(path: &Path, map: &mut WeightMap) -> Result<()> {
    map.add_source("bert.", &path.display().to_string());
    if path.extension().is_some_and(|ext| ext == "safetensors") {
        read_safetensors_file(path, encoder_key, map)
    } else {
        read_pickle_file(path, encoder_key, map)
    }
}

/// Reads the BERT weights (safetensors or PyTorch pickle) into `map` under `bert.` keys.
pub fn load_encoder_weights(path: &Path, map: &mut WeightMap) -> Result<()> {
    read_encoder_file(path, map)
}

/// The keys of a BERT checkpoint's weights as a plan ([`WeightMap::plan`]), nothing decoded.
pub fn plan_encoder_weights(path: &Path) -> Result<WeightMap> {
    let mut plan = WeightMap::plan();
    read_encoder_file(path, &mut plan)?;
    Ok(plan)
}

/// Reads every weight of a split-layout (or merged-layout) checkpoint into one map under
/// canonical keys.
pub fn load_split_weights(files: &ModelFiles) -> Result<WeightMap> {
    let mut map = WeightMap::default();
    read_split(files, &mut map)?;
    Ok(map)
}

/// The keys of a split-layout (or merged-layout) checkpoint as a plan ([`WeightMap::plan`]):
/// what a model would take or leave is known before a tensor is decoded.
pub fn plan_split_weights(files: &ModelFiles) -> Result<WeightMap> {
    let mut plan = WeightMap::plan();
    read_split(files, &mut plan)?;
    Ok(plan)
}

/// Reads a split- or merged-layout checkpoint into `map` (decoded, or keys only for a plan).
fn read_split(files: &ModelFiles, map: &mut WeightMap) -> Result<()> {
    if files.list_part.is_none() {
        let file = files.encoder.weights.display().to_string();
        for prefix in [
            "bert.",
            "linear_in_embedding.",
            "query_embedding.",
            "list_transformer.",
            "linear_score",
        ] {
            map.add_source(prefix, &file);
        }
        return read_safetensors_file(&files.encoder.weights, merged_key, map);
    }
    read_encoder_file(&files.encoder.weights, map)?;
    read_list_part(files, map)
}

/// Reads only the list part's pickles of a split-layout checkpoint.
pub fn load_list_part_weights(files: &ModelFiles) -> Result<WeightMap> {
    let mut map = WeightMap::default();
    read_list_part(files, &mut map)?;
    Ok(map)
}

fn read_list_part(files: &ModelFiles, map: &mut WeightMap) -> Result<()> {
    let Some(list_part) = &files.list_part else {
        return Ok(());
    };
    map.add_source(
        "linear_in_embedding.",
        &list_part.projection.display().to_string(),
    );
    read_pickle_file(&list_part.projection, projection_key, map)?;
    let list_file = list_part.list_transformer.display().to_string();
    for prefix in ["query_embedding.", "list_transformer.", "linear_score"] {
        map.add_source(prefix, &list_file);
    }
    read_pickle_file(&list_part.list_transformer, list_key, map)
}
