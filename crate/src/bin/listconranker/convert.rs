//! `listconranker convert`: a checkpoint directory (original split layout, merged single
//! safetensors, or a bundle) to a
//! web bundle (manifest.json + safetensors shards + tokenizer.json) that browsers can load.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use listconranker::convert::convert;
use listconranker::weights::bundle::ConvertOptions;
use listconranker::{Precision, Result};

#[derive(Args)]
pub struct ConvertArgs {
    /// Checkpoint directory (original split layout, merged single safetensors, or a bundle).
    #[arg(long)]
    model: PathBuf,
    /// Output directory of the bundle. Written beside it first and moved into place when
    /// complete; an older bundle there is replaced, any other non-empty directory is refused.
    #[arg(long)]
    out: PathBuf,
    /// Float type of the stored weights (f16 halves the download; scores change slightly).
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    dtype: Precision,
    /// Most bytes per weight shard, in MiB (whole layers per shard where they fit; a single
    /// tensor larger than this gets a shard of its own).
    #[arg(long, default_value_t = 64)]
    shard_mb: u64,
    /// Most encoder layers per weight shard (default: the size alone decides).
    #[arg(long)]
    layers_per_shard: Option<usize>,
}

pub fn run(args: &ConvertArgs) -> Result<()> {
    let started = Instant::now();
    let options = ConvertOptions {
        dtype: args.dtype,
        layers_per_shard: args.layers_per_shard.unwrap_or(usize::MAX),
        shard_bytes: args.shard_mb.saturating_mul(1 << 20),
    };
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
