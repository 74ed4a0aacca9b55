//! `listconranker score`: JSON Lines lists in, one JSON array of scores per line out.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use listconranker::{Error, Result};

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
    /// Longest input line, in MiB; a longer line (or input without newlines) is an error
    /// naming the line, found before it is buffered whole.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    max_line_mb: u64,
}

fn open_input(path: Option<&PathBuf>) -> Result<Box<dyn BufRead>> {
    match path {
        None => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(BufReader::new(std::io::stdin()))),
        Some(p) => {
            let file = std::fs::File::open(p).map_err(|e| Error::read_input(p.display(), e))?;
            Ok(Box::new(BufReader::new(file)))
        }
    }
}

fn input_name(args: &ScoreArgs) -> String {
    match &args.input {
        Some(p) if p.as_os_str() != "-" => p.display().to_string(),
        _ => "standard input".into(),
    }
}

/// Scores lists as they are read, `lists_per_batch` at a time (1 with --iterative), and prints
/// one JSON array per list. On a bad line, prints what came before it, then fails.
pub fn run(args: &ScoreArgs) -> Result<()> {
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
    // The input line of each pending list, to name it in errors about a list.
    let mut pending_lines: Vec<usize> = Vec::new();
    let mut line = Vec::new();
    let mut number = 0;
    let mut failure = None;
    loop {
        line.clear();
        let max_line = args.max_line_mb << 20;
        let read = input
            .by_ref()
            .take(max_line + 1)
            .read_until(b'\n', &mut line)
            .map_err(|e| Error::read_input(input_name(args), e))?;
        if line.len() as u64 > max_line {
            failure = Some(Error::input(format!(
                "line {}: longer than {} MiB (--max-line-mb)",
                number + 1,
                args.max_line_mb
            )));
        }
        let at_end = read == 0;
        if !at_end && failure.is_none() {
            number += 1;
            // A byte-order mark is invisible in editors: accepted at the start of the input, as
            // `eval` accepts it.
            let text = match number {
                1 => line.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&line),
                _ => &line,
            };
            let trimmed = text.trim_ascii();
            if !trimmed.is_empty() {
                let parsed = input::parse_list_line(trimmed, number).and_then(|list| {
                    ranker
                        .check_list_length(&list)
                        .map_err(|e| e.at_line(&[number]))?;
                    Ok(list)
                });
                match parsed {
                    Ok(list) => {
                        pending.push(list);
                        pending_lines.push(number);
                    }
                    Err(e) => failure = Some(e),
                }
            }
        }
        if pending.len() >= batch_size || ((at_end || failure.is_some()) && !pending.is_empty()) {
            let scores = if args.iterative {
                ranker.iterative_inference(&pending[0]).map(|s| vec![s])
            } else {
                ranker.compute_score(&pending)
            }
            .map_err(|e| e.at_line(&pending_lines))?;
            let written = scores.iter().try_for_each(|row| {
                let json = serde_json::to_string(row).expect("scores serialize");
                writeln!(out, "{json}")
            });
            written
                .and_then(|()| out.flush())
                .map_err(|e| Error::write_output("standard output", e))?;
            lists += pending.len();
            texts += pending.iter().map(Vec::len).sum::<usize>();
            pending.clear();
            pending_lines.clear();
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
