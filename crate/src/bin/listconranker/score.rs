//! `listconranker score`: JSON Lines lists in, one JSON array of scores per line out.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::ModelArgs;
use crate::input;

#[derive(Args)]
pub struct ScoreArgs {
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
pub fn run(args: &ScoreArgs) -> Result<(), String> {
    let ranker = args.model.load()?;
    let mut input = open_input(args.input.as_ref())?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let started = Instant::now();
    let (mut lists, mut texts) = (0usize, 0usize);
    let batch_size = if args.iterative {
        1
    } else {
        args.lists_per_batch.max(1)
    };
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
                vec![
                    ranker
                        .iterative_inference(&pending[0])
                        .map_err(|e| e.to_string())?,
                ]
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
