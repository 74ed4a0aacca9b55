//! Converting a checkpoint (split layout, merged layout, or another bundle) into a web bundle:
//! gathers the config, the tokenizer as `tokenizer.json` (built from `vocab.txt` where the
//! checkpoint has no `tokenizer.json`: the tokenizer layer's job) and the tensors, and hands
//! them to the bundle writer. Native only. `calibration`: GPTQ-chosen 4-bit weights for `q4`
//! bundles, from calibration text.

mod calibration;

pub use calibration::{
    GPTQ_OPTIONS, MAX_CALIBRATION_BYTES, MAX_CALIBRATION_TEXTS, MAX_CALIBRATION_TOKENS,
    calibrate_q4, read_calibration_texts,
};

use std::path::Path;

use crate::config::BertConfig;
use crate::error::{Error, Result};
use crate::model::ListConRankerModel;
use crate::reranker::Reranker;
use crate::tokenize::TextTokenizer;
use crate::weights::bundle::{BundleSource, ConvertOptions, Manifest, is_bundle, write_bundle};
use crate::weights::{TokenizerFiles, find_model_files, plan_split_weights};

/// Converts the checkpoint or bundle in `model_dir` into a bundle at `out_dir`: written beside
/// it, checked to load as a model (every tensor used once, shapes matching the config, values
/// finite, token ids inside the embedding table), then moved into place (an older bundle there
/// is replaced). Tensors in safetensors sources are read one shard at a time. Returns the
/// manifest written.
pub fn convert(model_dir: &Path, out_dir: &Path, options: &ConvertOptions) -> Result<Manifest> {
    let source = if is_bundle(model_dir) {
        BundleSource::from_bundle(model_dir, ListConRankerModel::check_plan)?
    } else {
        checkpoint_source(model_dir)?
    };
    write_bundle(
        source,
        model_dir,
        out_dir,
        options,
        Reranker::validate_bundle,
    )
}

fn checkpoint_source(dir: &Path) -> Result<BundleSource> {
    let files = find_model_files(dir)?;
    let config_file = files.encoder.config.display().to_string();
    let config_text = std::fs::read_to_string(&files.encoder.config)
        .map_err(|e| Error::read_model(&config_file, e))?;
    // Checked here, kept as written: the manifest carries the config as it was.
    let bert = BertConfig::from_json(&config_text, &config_file)?;
    // Every tensor's key is checked against the model before any value is decoded.
    ListConRankerModel::check_plan(plan_split_weights(&files)?, &bert)?;
    let config = serde_json::from_str(&config_text).map_err(|e| Error::config(&config_file, e))?;
    let tokenizer_json = match &files.encoder.tokenizer {
        TokenizerFiles::Json(path) => {
            std::fs::read(path).map_err(|e| Error::read_model(path.display(), e))?
        }
        vocab => TextTokenizer::from_files(vocab)?.to_json()?.into_bytes(),
    };
    BundleSource::from_checkpoint(&files, config, tokenizer_json)
}
