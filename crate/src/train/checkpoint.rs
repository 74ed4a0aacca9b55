//! Writing a trained model in the original split layout, which the PyTorch reference, the
//! original code and `convert` load: `model.safetensors` (the encoder, BertModel's names),
//! `linear_in_embedding.pt` and `list_transformer.pt` (PyTorch state dicts), and the source's
//! config and tokenizer files, unchanged.

use std::path::Path;

use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::named::NamedTensor;
use crate::error::{Error, Result};
use crate::weights::staging::StagingDir;
use crate::weights::torch_save::{StateTensor, torch_save_bytes};
use crate::weights::{find_encoder_files, find_model_files};

/// The source's files that describe the model rather than hold its weights: copied as they are.
const COPIED_FILES: [&str; 5] = [
    "config.json",
    "tokenizer.json",
    "vocab.txt",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// The list transformer's template layer, which the original saves (nn.TransformerEncoder
/// deep-copies it into every layer at construction) but never runs; PyTorch's strict loading
/// wants it. Written as a copy of layer 0.
const TEMPLATE_PREFIX: &str = "list_transformer_layer.";
const LAYER_ZERO_PREFIX: &str = "list_transformer.layers.0.";

/// The encoder's weights in a checkpoint being written.
#[derive(Clone, Copy, Debug)]
pub enum EncoderWeights<'a> {
    /// Unchanged from the source (stage one): its weights file is copied byte for byte, under
    /// its own name and in its own dtype, with no second copy in memory. Needs a
    /// split-layout or plain BERT source (a merged-layout file holds the list part too).
    FromSource,
    /// These values (named as [`super::named_parameters`] gives them), written as
    /// `model.safetensors` in f32.
    Tensors(&'a [NamedTensor]),
}

/// Whether `dir`'s weights file holds the list part too (the merged layout), so that its
/// encoder cannot be taken over as a file.
pub fn has_merged_weights(dir: &Path) -> bool {
    matches!(find_model_files(dir), Ok(files) if files.list_part.is_none())
}

/// Writes `encoder` and `head` (named tensors in PyTorch's layout, as
/// [`super::named_parameters`] gives them) with `source_dir`'s config and tokenizer files as a
/// checkpoint at `out_dir`: into a fresh directory beside it, which replaces `out_dir` only
/// once complete (an earlier checkpoint there is replaced; any other non-empty directory, a
/// symlink or a file is refused before anything is written).
pub fn write_split_checkpoint(
    source_dir: &Path,
    out_dir: &Path,
    encoder: EncoderWeights,
    head: &[NamedTensor],
) -> Result<()> {
    check_checkpoint_output(out_dir)?;
    let staging = StagingDir::beside(out_dir)?;
    copy_description_files(source_dir, &staging)?;
    match encoder {
        EncoderWeights::Tensors(tensors) => {
            staging.write("model.safetensors", &safetensors_bytes(tensors)?)?
        }
        EncoderWeights::FromSource => {
            if has_merged_weights(source_dir) {
                return Err(Error::input(format!(
                    "{}'s weights file holds the list part too (the merged layout): its \
                     encoder is written from its tensors, not copied",
                    source_dir.display()
                )));
            }
            // Copied, not linked: a tool that later rewrites the output's file in place
            // would otherwise rewrite the source's too.
            let (path, name) = encoder_file(source_dir)?;
            staging.copy(&path, &name)?;
        }
    }
    write_head_pickles(&staging, head)?;
    staging.replace(out_dir)
}

/// A checkpoint of `encoder_dir`'s encoder under the fresh `head`, staged in a temporary
/// directory beside `beside` (removed when dropped) for the loader to read: the encoder's
/// weights are linked (or copied where links are not possible), its config and tokenizer
/// copied, the head written as the split layout's two pickles.
pub fn stage_fresh_head(
    encoder_dir: &Path,
    beside: &Path,
    head: &[NamedTensor],
) -> Result<StagingDir> {
    if encoder_dir.join("linear_in_embedding.pt").exists()
        || encoder_dir.join("list_transformer.pt").exists()
    {
        return Err(Error::input(format!(
            "{} already has a list head; --init-head starts from a plain BERT checkpoint",
            encoder_dir.display()
        )));
    }
    let staging = StagingDir::beside(beside)?;
    copy_description_files(encoder_dir, &staging)?;
    // Linked where possible: the staged checkpoint is only read, and removed after.
    let (path, name) = encoder_file(encoder_dir)?;
    staging.link_or_copy(&path, &name)?;
    write_head_pickles(&staging, head)?;
    Ok(staging)
}

/// `source_dir`'s encoder weights file and its name.
fn encoder_file(source_dir: &Path) -> Result<(std::path::PathBuf, String)> {
    let encoder = find_encoder_files(source_dir)?;
    let name = encoder
        .weights
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::read_model(encoder.weights.display(), "no file name"))?
        .to_string();
    Ok((encoder.weights, name))
}

/// Copies the source's config and tokenizer files into `staging`.
fn copy_description_files(source_dir: &Path, staging: &StagingDir) -> Result<()> {
    let mut copied = 0;
    for name in COPIED_FILES {
        let source = source_dir.join(name);
        if source.is_file() {
            staging.copy(&source, name)?;
            copied += 1;
        }
    }
    if copied == 0 {
        return Err(Error::input(format!(
            "{} has no config or tokenizer files to copy (train from a checkpoint directory, \
             not a web bundle)",
            source_dir.display()
        )));
    }
    Ok(())
}

/// Writes `head` as `linear_in_embedding.pt` and `list_transformer.pt` (with the template
/// layer the original's strict loading wants).
fn write_head_pickles(staging: &StagingDir, head: &[NamedTensor]) -> Result<()> {
    let (projection, list): (Vec<&NamedTensor>, Vec<&NamedTensor>) = head
        .iter()
        .partition(|t| t.key.starts_with("linear_in_embedding."));
    if projection.is_empty() || list.is_empty() {
        return Err(Error::input(
            "a trained head needs linear_in_embedding and list transformer tensors",
        ));
    }
    let projection: Vec<StateTensor> = projection
        .iter()
        .map(|t| StateTensor {
            key: t.key.trim_start_matches("linear_in_embedding."),
            shape: &t.shape,
            values: &t.values,
        })
        .collect();
    staging.write(
        "linear_in_embedding.pt",
        &torch_save_bytes("linear_in_embedding", &projection)?,
    )?;
    let template_keys: Vec<(String, &NamedTensor)> = list
        .iter()
        .filter_map(|t| {
            let rest = t.key.strip_prefix(LAYER_ZERO_PREFIX)?;
            Some((format!("{TEMPLATE_PREFIX}{rest}"), *t))
        })
        .collect();
    let mut state: Vec<StateTensor> = list
        .iter()
        .map(|t| StateTensor {
            key: &t.key,
            shape: &t.shape,
            values: &t.values,
        })
        .collect();
    state.extend(template_keys.iter().map(|(key, t)| StateTensor {
        key,
        shape: &t.shape,
        values: &t.values,
    }));
    staging.write(
        "list_transformer.pt",
        &torch_save_bytes("list_transformer", &state)?,
    )
}

/// Refuses an output that is a symlink or a file, or a non-empty directory that is not a
/// checkpoint this writes (it would be replaced): what [`write_split_checkpoint`] checks first,
/// for a caller to check before hours of training.
pub fn check_checkpoint_output(out_dir: &Path) -> Result<()> {
    let refuse = |reason: &str| {
        Err(Error::input(format!(
            "--out {}: {reason}",
            out_dir.display()
        )))
    };
    let Ok(meta) = std::fs::symlink_metadata(out_dir) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symlink; give the directory itself");
    }
    if !meta.is_dir() {
        return refuse("exists and is not a directory");
    }
    let mut entries =
        std::fs::read_dir(out_dir).map_err(|e| Error::write_output(out_dir.display(), e))?;
    let empty = entries.next().is_none();
    let checkpoint = out_dir.join("list_transformer.pt").is_file()
        && out_dir.join("linear_in_embedding.pt").is_file();
    if !empty && !checkpoint {
        return refuse("exists and is neither empty nor a checkpoint (it would be replaced)");
    }
    Ok(())
}

/// The encoder's tensors as one safetensors file (f32).
fn safetensors_bytes(tensors: &[NamedTensor]) -> Result<Vec<u8>> {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, data)| {
            TensorView::new(Dtype::F32, t.shape.clone(), data).map(|view| (t.key.clone(), view))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::input(format!("writing model.safetensors: {e}")))?;
    safetensors::serialize(views, None)
        .map_err(|e| Error::input(format!("writing model.safetensors: {e}")))
}
