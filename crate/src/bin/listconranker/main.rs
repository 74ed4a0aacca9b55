//! The `listconranker` command line.

mod bench;
mod convert;
mod eval;
mod fetch;
mod input;
mod score;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use listconranker::{Backend, LoadOptions, Precision, Reranker};

#[derive(Parser)]
#[command(
    name = "listconranker",
    version,
    about = "ListConRanker text reranker (burn: CPU and wgpu)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score JSON Lines lists: `[query, passage, ...]` or `{"query": ..., "passages": [...]}`.
    Score(score::ScoreArgs),
    /// Measure throughput and latency on a seeded workload, optionally next to the PyTorch
    /// reference on the same machine.
    Bench(bench::BenchArgs),
    /// Convert a checkpoint into a web bundle (manifest.json, safetensors shards,
    /// tokenizer.json) for the browser; `--model` of every command accepts bundles too.
    Convert(convert::ConvertArgs),
    /// The model card's C-MTEB reranking figures (MAP, MRR@1/5/10) on data files in the
    /// C-MTEB reranking format (Parquet or JSON Lines), with or without iterative inference.
    Eval(eval::EvalArgs),
    /// Download a checkpoint (split layout and tokenizer) from the Hugging Face hub into the
    /// local hub cache, resuming interrupted transfers; prints the directory for `--model`.
    Fetch(fetch::FetchArgs),
}

#[derive(Args)]
pub struct ModelArgs {
    /// Checkpoint directory (original split layout, or a web bundle with manifest.json).
    #[arg(long)]
    pub model: PathBuf,
    /// `cpu` (burn's flex backend) or `wgpu` (Vulkan, Metal or DX12).
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    pub device: Backend,
    /// `f32`, or `f16` where the device supports it.
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub dtype: Precision,
    /// Tokens per text, [CLS] and [SEP] included; longer texts are truncated.
    #[arg(long, default_value_t = 512)]
    pub max_length: usize,
    /// Padded tokens per encoder batch (default: 512 on cpu, 8192 on wgpu).
    #[arg(long)]
    pub batch_tokens: Option<usize>,
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse().map_err(|e: listconranker::Error| e.to_string())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|e: listconranker::Error| e.to_string())
}

impl ModelArgs {
    pub fn load(&self) -> Result<Reranker, String> {
        let started = Instant::now();
        let options = LoadOptions {
            backend: self.device,
            precision: self.dtype,
            max_length: self.max_length,
            batch_tokens: self.batch_tokens,
        };
        let ranker = Reranker::load(&self.model, options).map_err(|e| e.to_string())?;
        eprintln!(
            "loaded {} on {} ({}) in {:.2} s",
            self.model.display(),
            self.device,
            self.dtype,
            started.elapsed().as_secs_f64()
        );
        Ok(ranker)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Score(args) => score::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Fetch(args) => fetch::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
