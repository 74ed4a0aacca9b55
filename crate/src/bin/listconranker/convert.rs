//! `listconranker convert`: a checkpoint directory (original split layout, or a bundle) to a
//! web bundle (manifest.json + safetensors shards + tokenizer.json) that browsers can load.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use listconranker::Precision;
use listconranker::weights::bundle::{ConvertOptions, write_bundle};

#[derive(Args)]
pub struct ConvertArgs {
    /// Checkpoint directory (original split layout, or a bundle).
    #[arg(long)]
    model: PathBuf,
    /// Output directory of the bundle (created if needed; existing files are overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Float type of the stored weights (f16 halves the download; scores change slightly).
    #[arg(long, default_value = "f32", value_parser = crate::parse_precision)]
    dtype: Precision,
    /// Encoder layers per weight shard.
    #[arg(long, default_value_t = 4)]
    layers_per_shard: usize,
}

pub fn run(args: &ConvertArgs) -> Result<(), String> {
    let started = Instant::now();
    let options = ConvertOptions {
        dtype: args.dtype,
        layers_per_shard: args.layers_per_shard,
    };
    let manifest = write_bundle(&args.model, &args.out, &options).map_err(|e| e.to_string())?;
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
