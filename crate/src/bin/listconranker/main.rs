//! The `listconranker` command line.

mod input;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};
use listconranker::{Backend, LoadOptions, Precision, Reranker};

#[derive(Parser)]
#[command(name = "listconranker", version, about = "ListConRanker text reranker (burn: CPU and wgpu)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score JSON Lines lists: `[query, passage, ...]` or `{"query": ..., "passages": [...]}`.
    Score(ScoreArgs),
}

#[derive(Args)]
struct ModelArgs {
    /// Checkpoint directory (original split layout).
    #[arg(long)]
    model: PathBuf,
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    device: Backend,
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    dtype: Precision,
    /// Tokens per text, [CLS] and [SEP] included; longer texts are truncated.
    #[arg(long, default_value_t = 512)]
    max_length: usize,
    /// Padded tokens per encoder batch.
    #[arg(long, default_value_t = 16 * 1024)]
    batch_tokens: usize,
}

#[derive(Args)]
struct ScoreArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Input file; `-` or absent reads standard input.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Iterative inference (for lists longer than ~20 passages); scores are for ranking only.
    #[arg(long)]
    iterative: bool,
    /// Lists scored together in one batch (without --iterative).
    #[arg(long, default_value_t = 16)]
    lists_per_batch: usize,
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse().map_err(|e: listconranker::Error| e.to_string())
}

fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse().map_err(|e: listconranker::Error| e.to_string())
}

impl ModelArgs {
    fn load(&self) -> Result<Reranker, String> {
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

fn open_input(path: Option<&PathBuf>) -> Result<Box<dyn BufRead>, String> {
    match path {
        None => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) => {
            let file = std::fs::File::open(p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(Box::new(BufReader::new(file)))
        }
    }
}

/// Scores lists as they are read, `lists_per_batch` at a time (1 with --iterative), and prints
/// one JSON array per list. On a bad line, prints what came before it, then fails.
fn score(args: &ScoreArgs) -> Result<(), String> {
    let ranker = args.model.load()?;
    let mut input = open_input(args.input.as_ref())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let started = Instant::now();
    let (mut lists, mut texts) = (0usize, 0usize);
    let batch_size = if args.iterative { 1 } else { args.lists_per_batch.max(1) };
    let mut pending: Vec<Vec<String>> = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    let mut failure = None;
    loop {
        line.clear();
        let read = input
            .by_ref()
            .read_until(b'\n', &mut line)
            .map_err(|e| format!("reading input: {e}"))?;
        let at_end = read == 0;
        if !at_end {
            number += 1;
            let trimmed = line.trim_ascii();
            if !trimmed.is_empty() {
                match input::parse_list_line(trimmed, number) {
                    Ok(list) => pending.push(list),
                    Err(e) => failure = Some(e),
                }
            }
        }
        if pending.len() >= batch_size || ((at_end || failure.is_some()) && !pending.is_empty()) {
            let scores = if args.iterative {
                vec![ranker.iterative_inference(&pending[0]).map_err(|e| e.to_string())?]
            } else {
                ranker.compute_score(&pending).map_err(|e| e.to_string())?
            };
            for row in &scores {
                let json = serde_json::to_string(row).map_err(|e| e.to_string())?;
                writeln!(out, "{json}").map_err(|e| format!("writing output: {e}"))?;
            }
            out.flush().map_err(|e| format!("writing output: {e}"))?;
            lists += pending.len();
            texts += pending.iter().map(Vec::len).sum::<usize>();
            pending.clear();
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if at_end {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "scored {lists} lists ({texts} texts) in {seconds:.2} s: {:.1} texts/s",
        texts as f64 / seconds.max(1e-9)
    );
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Score(args) => score(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
