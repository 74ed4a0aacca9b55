//! Calibrated 4-bit weights for `convert --dtype q4 --calibration FILE`: each encoder layer's FFN
//! output weight (the weights a `q4` bundle stores in 4 bits) is quantized by GPTQ (the formats
//! crate's `gptq`) against `X^T X` of its inputs on calibration text, layer by layer, with every
//! other weight as the bundle stores it (q8 or f16), so that each layer's choice cancels the
//! rounding errors the model will really make before it. The stored format is the same as
//! rounding to nearest; only the chosen levels and scales differ.
//!
//! Memory: the source's weights in f32 while read (the list head is dropped once read; the
//! released model's encoder: ~1.3 GB), one Hessian (`inner^2` f64: 128 MiB at 4096), and the
//! calibration texts' hidden states twice (2 x tokens x hidden x 4 bytes, padding included:
//! ~200 MB for 24k tokens at width 1024; capped by [`MAX_CALIBRATION_TOKENS`]). The streaming
//! convert's bound (one shard) does not hold while calibrating: 2.56 GB peak for the released
//! model's sizes on 256 texts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use listconranker_formats::bundle::{BundleDtype, Calibration};
use listconranker_formats::gptq::{GptqOptions, gptq_quantize};
use listconranker_formats::quantize::{Scheme, quantize};

use crate::config::BertConfig;
use crate::device::Placement;
use crate::encode::batching::{MAX_TEXTS_PER_BATCH, length_batches};
use crate::encode::token_batch;
use crate::error::{Error, Result};
use crate::model::{BertEncoder, ListConRankerModel, ParamBuilder};
use crate::tokenize::TextTokenizer;
use crate::weights::bundle::{
    CalibratedWeights, ConvertOptions, MANIFEST_FILE, Manifest, Storage, is_bundle,
    read_bundle_dir, refuse_requantizing,
};
use crate::weights::{Destination, RawTensor, WeightMap, find_model_files, load_split_weights};

/// The largest calibration file read (checked before reading).
pub const MAX_CALIBRATION_BYTES: u64 = 16 << 20;
/// The most calibration texts (more add little: 512 did no better than 256 in the reference's
/// measurements, docs/quantization.md).
pub const MAX_CALIBRATION_TEXTS: usize = 4096;
/// Texts are truncated to this many tokens (or the model's positions, if fewer).
const MAX_TOKENS: usize = 512;
/// The most real tokens of all calibration texts together: the hidden states of every text are
/// held through the layers (twice, as f32: ~1 GiB at the released width of 1024).
pub const MAX_CALIBRATION_TOKENS: usize = 131_072;
/// The widest FFN calibrated: its `X^T X` is `inner^2` f64 (2 GiB at 16384).
const MAX_FFN_WIDTH: usize = 16_384;
/// Padded tokens per encoder batch while calibrating.
const BATCH_TOKENS: usize = 8192;
/// GPTQ as measured in docs/quantization.md: dampening 1 % of the mean diagonal, each block's
/// scale the best of 11 shrinkings of its absmax.
pub const GPTQ_OPTIONS: GptqOptions = GptqOptions {
    damp: 0.01,
    scale_search: 11,
};

/// Reads calibration texts: UTF-8, one text per line, blank lines skipped. Errors: a file past
/// [`MAX_CALIBRATION_BYTES`], not UTF-8, without a text, or with more than
/// [`MAX_CALIBRATION_TEXTS`].
pub fn read_calibration_texts(path: &Path) -> Result<Vec<String>> {
    use std::io::Read;

    let shown = path.display();
    let fail = |e: std::io::Error| Error::input(format!("calibration file {shown}: {e}"));
    let file = std::fs::File::open(path).map_err(fail)?;
    let meta = file.metadata().map_err(fail)?;
    // A pipe or a device has no size to check first: only regular files are read.
    if !meta.is_file() {
        return Err(Error::input(format!(
            "calibration file {shown}: not a regular file"
        )));
    }
    let too_big = || {
        Error::input(format!(
            "calibration file {shown}: more than the {MAX_CALIBRATION_BYTES} bytes read"
        ))
    };
    if meta.len() > MAX_CALIBRATION_BYTES {
        return Err(too_big());
    }
    // Bounded even if the file grows after the check.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_CALIBRATION_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(fail)?;
    if bytes.len() as u64 > MAX_CALIBRATION_BYTES {
        return Err(too_big());
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| Error::input(format!("calibration file {shown}: not UTF-8 ({e})")))?;
    let texts: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect();
    if texts.is_empty() {
        return Err(Error::input(format!(
            "calibration file {shown}: no text (one text per line)"
        )));
    }
    if texts.len() > MAX_CALIBRATION_TEXTS {
        return Err(Error::input(format!(
            "calibration file {shown}: {} texts, more than the {MAX_CALIBRATION_TEXTS} used",
            texts.len()
        )));
    }
    Ok(texts)
}

/// GPTQ-quantized FFN output weights of the model in `model_dir` (a checkpoint, or an f32 /
/// f16 bundle) for a bundle of `options` (`q4`), calibrated on `texts`. `progress(done, layers)`
/// is called after each layer. The result goes into `ConvertOptions::calibrated`; empty when no
/// weight of this model takes 4-bit blocks of `options.block`.
pub fn calibrate_q4(
    model_dir: &Path,
    texts: &[String],
    options: &ConvertOptions,
    mut progress: impl FnMut(usize, usize),
) -> Result<CalibratedWeights> {
    if options.dtype != BundleDtype::Q4 {
        return Err(Error::input(format!(
            "calibration chooses 4-bit weights: it applies to q4 bundles, not {}",
            options.dtype.name()
        )));
    }
    if texts.is_empty() {
        return Err(Error::input("calibration needs at least one text"));
    }
    options.check()?;
    let (bert, mut weights, mut tokenizer) = read_encoder(model_dir, options.dtype)?;
    if bert.intermediate_size > MAX_FFN_WIDTH {
        return Err(Error::input(format!(
            "intermediate_size {} is wider than the {MAX_FFN_WIDTH} calibration handles",
            bert.intermediate_size
        )));
    }
    let ffn_output = |n: usize| format!("bert.encoder.layer.{n}.output.dense.weight");
    let ffn_shape = [bert.hidden_size, bert.intermediate_size];
    let four_bit = |key: &str| match Storage::of(key, &ffn_shape, options.dtype, options.block) {
        Storage::Quantized(scheme @ Scheme::Q4Blocks { .. }) => Some(scheme),
        _ => None,
    };
    let mut calibrated = CalibratedWeights {
        weights: BTreeMap::new(),
        calibration: Calibration {
            method: "gptq".into(),
            tensors: Vec::new(),
            texts: texts.len(),
            tokens: 0,
            damp: GPTQ_OPTIONS.damp,
            scale_search: GPTQ_OPTIONS.scale_search,
        },
    };
    if (0..bert.num_hidden_layers).all(|n| four_bit(&ffn_output(n)).is_none()) {
        return Ok(calibrated);
    }

    store_as_the_bundle_will(&mut weights, options)?;
    let placement = Placement::host_f32();
    let map = RefCell::new(weights);
    let mut encoder = BertEncoder::load(ParamBuilder::new(&map, &placement), &bert)?;
    drop(map);

    tokenizer.set_max_length(MAX_TOKENS.min(bert.max_position_embeddings))?;
    tokenizer.limit_ids(bert.vocab_size)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let ids = tokenizer.encode_all(&refs)?;
    let lengths: Vec<usize> = ids.iter().map(Vec::len).collect();
    calibrated.calibration.tokens = lengths.iter().sum();
    if calibrated.calibration.tokens > MAX_CALIBRATION_TOKENS {
        return Err(Error::input(format!(
            "the calibration texts hold {} tokens, more than the {MAX_CALIBRATION_TOKENS} used \
             (fewer or shorter texts)",
            calibrated.calibration.tokens
        )));
    }
    let batches: Vec<_> = length_batches(&lengths, BATCH_TOKENS, MAX_TEXTS_PER_BATCH)
        .iter()
        .map(|rows| token_batch(&ids, rows, placement.device()))
        .collect();

    let layers = bert.num_hidden_layers;
    encoder.recalibrate_ffn_outputs(&batches, |n, hessian, weight| {
        let key = ffn_output(n);
        // A weight stored as q8 (its inputs do not split into blocks) is already as the bundle
        // holds it.
        let installed = match four_bit(&key) {
            Some(scheme) => {
                let q = gptq_quantize(scheme, &key, &ffn_shape, &weight, &hessian, &GPTQ_OPTIONS)?;
                let values = q.dequantize(scheme, &key)?;
                calibrated.weights.insert(key, q);
                values
            }
            None => weight,
        };
        progress(n + 1, layers);
        Ok(installed)
    })?;
    Ok(calibrated)
}

/// The encoder's config, its tensors (`bert.*`, f32 on the host) and the tokenizer, from a
/// checkpoint or an unquantized bundle (a quantized one is refused for a `target` bundle as the
/// writer would, before the calibration's work).
fn read_encoder(dir: &Path, target: BundleDtype) -> Result<(BertConfig, WeightMap, TextTokenizer)> {
    let (bert, mut weights, tokenizer) = if is_bundle(dir) {
        let manifest_path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&manifest_path)
            .map_err(|e| Error::read_model(manifest_path.display(), e))?;
        refuse_requantizing(Manifest::parse(&text)?.bundle_dtype()?, target)?;
        let parts = read_bundle_dir(dir, Destination::Host, ListConRankerModel::check_plan)?;
        let tokenizer = TextTokenizer::from_json(&parts.tokenizer_json, &parts.tokenizer_file)?;
        (parts.config, parts.weights, tokenizer)
    } else {
        let files = find_model_files(dir)?;
        let bert = BertConfig::from_file(&files.encoder.config)?;
        let tokenizer = TextTokenizer::from_files(&files.encoder.tokenizer)?;
        ListConRankerModel::check_plan(crate::weights::plan_split_weights(&files)?, &bert)?;
        (bert, load_split_weights(&files)?, tokenizer)
    };
    weights.retain(|key| key.starts_with("bert."));
    Ok((bert, weights, tokenizer))
}

/// Rounds every tensor as the bundle will store it (q8 round to nearest, f16), except the 4-bit
/// weights, which calibration chooses from their source values.
fn store_as_the_bundle_will(weights: &mut WeightMap, options: &ConvertOptions) -> Result<()> {
    weights.change_host_values(|key, tensor: &mut RawTensor| {
        match Storage::of(key, &tensor.shape, options.dtype, options.block) {
            Storage::F32 | Storage::Quantized(Scheme::Q4Blocks { .. }) => {}
            Storage::F16 => {
                for v in &mut tensor.data {
                    *v = half::f16::from_f32(*v).to_f32();
                }
            }
            Storage::Quantized(scheme @ Scheme::Q8Blocks { .. }) => {
                let q = quantize(scheme, key, &tensor.shape, &tensor.data)?;
                tensor.data = q.dequantize(scheme, key)?;
            }
        }
        Ok(())
    })
}
