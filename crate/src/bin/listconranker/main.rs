//! The `listconranker` command line.

mod bench;
mod convert;
mod eval;
mod fetch;
mod input;
mod score;
#[cfg(feature = "serve")]
mod serve;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use listconranker::{Backend, Error, LoadOptions, Precision, Reranker};

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
    /// Serve the rerank HTTP API: text-embeddings-inference's /rerank, the Cohere/Jina-style
    /// /v1/rerank, /v1/score, /health, /info and /metrics.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
    /// Fine-tune a checkpoint on C-MTEB-format data with the model card's Circle loss (stage
    /// one: the encoder frozen, the list head trained); writes the best epoch's checkpoint in
    /// the original split layout.
    Train(train::TrainArgs),
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// Checkpoint directory (original split layout, or a web bundle with manifest.json).
    #[arg(long)]
    pub model: PathBuf,
    /// `cpu` (burn's flex backend) or `wgpu` (Vulkan, Metal or DX12).
    #[arg(long, value_enum, default_value_t = Backend::Cpu)]
    pub device: Backend,
    /// `f32`, or `f16` where the device supports it.
    #[arg(long, value_enum, default_value_t = Precision::F32)]
    pub dtype: Precision,
    /// Tokens per text, [CLS] and [SEP] included; longer texts are truncated.
    #[arg(long, default_value_t = 512)]
    pub max_length: usize,
    /// Padded tokens per encoder batch (default: 512 on cpu, 8192 on wgpu).
    #[arg(long)]
    pub batch_tokens: Option<usize>,
    /// Most passages in one list (default: the longest list whose list attention fits 1 GiB,
    /// 2363 for the released model); longer lists are an error.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_passages: Option<u64>,
}

impl ModelArgs {
    pub fn load(&self) -> Result<Reranker, Error> {
        let started = Instant::now();
        let options = LoadOptions {
            backend: self.device,
            precision: self.dtype,
            max_length: self.max_length,
            batch_tokens: self.batch_tokens,
            max_passages: self
                .max_passages
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        };
        let ranker = Reranker::load(&self.model, options)?;
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
    let result = check_standard_output().and_then(|()| match &cli.command {
        Command::Score(args) => score::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Fetch(args) => fetch::run(args),
        #[cfg(feature = "serve")]
        Command::Serve(args) => serve::run(args),
        Command::Train(args) => train::run(args),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // Every failed run exits with 1 (clap's bad arguments with 2); the code printed
            // after the message tells failures apart.
            eprintln!("error: {error} [{}]", error.code());
            ExitCode::FAILURE
        }
    }
}

/// Output that cannot be delivered ends the run instead of being lost.
/// - A reader that goes away (`listconranker score ... | head`): the default SIGPIPE action ends
///   the program quietly with the shell's status 141, as it ends any Unix tool (Rust ignores
///   SIGPIPE, so that every later `println!` would panic instead).
/// - A closed standard output (`>&-`): it is an error before anything runs, instead of scores
///   vanishing with status 0.
#[cfg(unix)]
fn check_standard_output() -> Result<(), Error> {
    // SAFETY: restoring a signal's default action touches no memory of this program.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if closed_stdout::was_closed() {
        Err(Error::write_output("standard output", "it is closed"))
    } else {
        Ok(())
    }
}

/// Whether the program started with its standard output closed. Rust's runtime reopens a
/// closed descriptor 0-2 on `/dev/null` before `main` (so that files opened later never take
/// its number), which makes a closed output indistinguishable from `> /dev/null` by the time
/// `main` runs; so the descriptor is looked at earlier, by a constructor that the loader runs
/// before Rust's runtime starts. Hand-written: no crate offers this check.
#[cfg(unix)]
mod closed_stdout {
    use std::sync::atomic::{AtomicBool, Ordering};

    static CLOSED: AtomicBool = AtomicBool::new(false);

    extern "C" fn look() {
        // SAFETY: asks whether fd 1 is open; touches no memory.
        let closed = unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) } == -1;
        CLOSED.store(closed, Ordering::Relaxed);
    }

    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    #[used]
    #[unsafe(link_section = ".init_array")]
    static LOOK: extern "C" fn() = look;

    #[cfg(target_vendor = "apple")]
    #[used]
    #[unsafe(link_section = "__DATA,__mod_init_func")]
    static LOOK: extern "C" fn() = look;

    pub fn was_closed() -> bool {
        CLOSED.load(Ordering::Relaxed)
    }
}

#[cfg(not(unix))]
fn check_standard_output() -> Result<(), Error> {
    Ok(())
}
