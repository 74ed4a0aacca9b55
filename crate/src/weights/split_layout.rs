//! The original release's directory ("split layout"): `config.json`, tokenizer files, the BERT
//! weights (`model.safetensors` or `pytorch_model.bin`) and two PyTorch pickles for the list part.

use std::path::{Path, PathBuf};

use super::WeightMap;
use super::pickle::read_pickle;
use super::safetensors_file::read_safetensors;
use crate::error::{Error, Result};

/// The files of a plain BERT checkpoint directory (the encoder on its own).
#[derive(Debug, Clone)]
pub struct EncoderFiles {
    pub config: PathBuf,
    pub weights: PathBuf,
    pub tokenizer: TokenizerFiles,
}

/// The files of a split-layout checkpoint directory: the encoder's, plus the list part's.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub encoder: EncoderFiles,
    pub projection: PathBuf,
    pub list_transformer: PathBuf,
}

#[derive(Debug, Clone)]
pub enum TokenizerFiles {
    Json(PathBuf),
    Vocab {
        vocab: PathBuf,
        config: Option<PathBuf>,
    },
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
        return Err(Error::io(dir.display(), "not a directory"));
    }
    let tokenizer = match first_existing(dir, &["tokenizer.json"], "tokenizer") {
        Ok(json) => TokenizerFiles::Json(json),
        Err(_) => TokenizerFiles::Vocab {
            vocab: first_existing(dir, &["vocab.txt"], "tokenizer (tokenizer.json or vocab.txt)")?,
            config: first_existing(dir, &["tokenizer_config.json"], "tokenizer config").ok(),
        },
    };
    Ok(EncoderFiles {
        config: first_existing(dir, &["config.json"], "encoder config")?,
        weights: first_existing(dir, &["model.safetensors", "pytorch_model.bin"], "encoder weights")?,
        tokenizer,
    })
}

/// Locates the files of a split-layout checkpoint in `dir`.
pub fn find_model_files(dir: &Path) -> Result<ModelFiles> {
    Ok(ModelFiles {
        encoder: find_encoder_files(dir)?,
        projection: first_existing(dir, &["linear_in_embedding.pt"], "projection weights")?,
        list_transformer: first_existing(dir, &["list_transformer.pt"], "list transformer weights")?,
    })
}

/// Encoder keys: with or without the `bert.` prefix; the pooler (unused: the model mean-pools),
/// pretraining heads and the `position_ids` buffer are skipped.
fn encoder_key(name: &str) -> Option<String> {
    let bare = name.strip_prefix("bert.").unwrap_or(name);
    let unused = bare.starts_with("pooler.")
        || bare.starts_with("cls.")
        || bare.ends_with("position_ids");
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

/// Reads the BERT weights (safetensors or PyTorch pickle) into `map` under `bert.` keys.
pub fn load_encoder_weights(path: &Path, map: &mut WeightMap) -> Result<()> {
    let file = path.display().to_string();
    map.add_source("bert.", &file);
    if path.extension().is_some_and(|ext| ext == "safetensors") {
        let bytes = std::fs::read(path).map_err(|e| Error::io(&file, e))?;
        read_safetensors(&bytes, &file, encoder_key, |k, t| map.insert(k, &file, t))
    } else {
        read_pickle(path, encoder_key, |k, t| map.insert(k, &file, t))
    }
}

/// Reads every weight of a split-layout checkpoint into one map under canonical keys.
pub fn load_split_weights(files: &ModelFiles) -> Result<WeightMap> {
    let mut map = WeightMap::default();
    load_encoder_weights(&files.encoder.weights, &mut map)?;

    let projection_file = files.projection.display().to_string();
    map.add_source("linear_in_embedding.", &projection_file);
    read_pickle(&files.projection, projection_key, |k, t| {
        map.insert(k, &projection_file, t)
    })?;

    let list_file = files.list_transformer.display().to_string();
    for prefix in ["query_embedding.", "list_transformer.", "linear_score"] {
        map.add_source(prefix, &list_file);
    }
    read_pickle(&files.list_transformer, list_key, |k, t| {
        map.insert(k, &list_file, t)
    })?;
    Ok(map)
}
