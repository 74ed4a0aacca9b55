//! `listconranker convert`: a checkpoint directory (original split layout, merged single
//! safetensors, or a bundle) to a
//! web bundle (manifest.json + safetensors shards + tokenizer.json) that browsers can load.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};
use listconranker::Result;
use listconranker::convert::{calibrate_q4, convert, read_calibration_texts};
use listconranker::weights::bundle::{BundleDtype, ConvertOptions, check_convert_request};

/// The stored type of a bundle's weights (the CLI's names for [`BundleDtype`]).
#[derive(Clone, Copy, ValueEnum)]
enum StoredDtype {
    /// Full precision.
    F32,
    /// Half the download; scores change slightly.
    F16,
    /// int8 Linear weights and word embeddings (one f16 scale per block of a row), the rest
    /// f16: about a quarter of f32.
    Q8,
    /// 4-bit encoder FFN output weights (one f16 scale per block), the rest as in q8; with
    /// --calibration the 4-bit weights are chosen by GPTQ on that text.
    Q4,
}

impl From<StoredDtype> for BundleDtype {
    fn from(dtype: StoredDtype) -> Self {
        match dtype {
            StoredDtype::F32 => BundleDtype::F32,
            StoredDtype::F16 => BundleDtype::F16,
            StoredDtype::Q8 => BundleDtype::Q8,
            StoredDtype::Q4 => BundleDtype::Q4,
        }
    }
}

#[derive(Args)]
pub struct ConvertArgs {
    /// Checkpoint directory (original split layout, merged single safetensors, or a bundle).
    #[arg(long)]
    model: PathBuf,
    /// Output directory of the bundle. Written beside it first and moved into place when
    /// complete; an older bundle there is replaced, any other non-empty directory is refused.
    #[arg(long)]
    out: PathBuf,
    /// Type of the stored weights (quantized ones are decoded to the compute precision on load).
    #[arg(long, value_enum, default_value_t = StoredDtype::F32)]
    dtype: StoredDtype,
    /// Values per f16 scale along a row of q8 / q4 weights (an even number; where it does not
    /// divide a weight's input size, a q4 weight is stored as q8 and a q8 weight gets one scale
    /// per row).
    #[arg(long, default_value_t = default_block())]
    block: usize,
    /// Most bytes per weight shard, in MiB (whole layers per shard where they fit; a single
    /// tensor larger than this gets a shard of its own).
    #[arg(long, default_value_t = 64)]
    shard_mb: u64,
    /// Most encoder layers per weight shard (default: the size alone decides).
    #[arg(long)]
    layers_per_shard: Option<usize>,
    /// q4 only: calibration text (UTF-8, one text per line, at most 4096 texts and 16 MiB; a
    /// few hundred passages in the model's language, like what it will rank). The 4-bit
    /// weights are then chosen by GPTQ against the encoder's activations on it, which keeps
    /// the rankings far closer to f32 than rounding to nearest (docs/quantization.md). Loads
    /// the f32 encoder in memory and takes minutes on a CPU for the released model.
    #[arg(long)]
    calibration: Option<PathBuf>,
}

fn default_block() -> usize {
    ConvertOptions::default().block
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    let started = Instant::now();
    let mut options = ConvertOptions {
        dtype: args.dtype.into(),
        block: args.block,
        layers_per_shard: args.layers_per_shard.unwrap_or(usize::MAX),
        shard_bytes: args.shard_mb.saturating_mul(1 << 20),
        calibrated: None,
    };
    if let Some(path) = &args.calibration {
        // Refused now rather than after minutes of calibration.
        check_convert_request(&args.model, &args.out, &options)?;
        let texts = read_calibration_texts(path)?;
        let calibrating = Instant::now();
        eprintln!(
            "calibrating the 4-bit weights by GPTQ on {} texts",
            texts.len()
        );
        let calibrated = calibrate_q4(&args.model, &texts, &options, |done, layers| {
            eprintln!(
                "  layer {done}/{layers} ({:.1} s)",
                calibrating.elapsed().as_secs_f64()
            );
        })?;
        if calibrated.weights.is_empty() {
            eprintln!(
                "no weight of this model takes 4-bit blocks of {}: nothing to calibrate",
                args.block
            );
        } else {
            eprintln!(
                "calibrated {} weights on {} tokens in {:.1} s",
                calibrated.weights.len(),
                calibrated.calibration.tokens,
                calibrating.elapsed().as_secs_f64()
            );
            options.calibrated = Some(calibrated);
        }
    } else if matches!(args.dtype, StoredDtype::Q4) {
        eprintln!(
            "note: q4 without --calibration rounds its 4-bit weights to nearest, which moves the \
             rankings more (docs/quantization.md)"
        );
    }
    let manifest = convert(&args.model, &args.out, &options)?;
    for file in &manifest.files {
        eprintln!(
            "  {:<32} {:>12} bytes  {} tensors",
            file.path,
            file.bytes,
            file.tensors.len()
        );
    }
    eprintln!(
        "wrote {} ({}, {} files, {} bytes) in {:.2} s",
        args.out.display(),
        manifest.dtype,
        manifest.files.len() + 1,
        manifest.total_bytes(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
