//! `listconranker eval`: the model card's C-MTEB reranking table (MAP, MRR@1/5/10) for any
//! model and data files in the C-MTEB reranking format (JSON Lines or Parquet).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressStyle};
use listconranker::Error;
use listconranker::eval::{
    DataSet, EvalReport, EvalResult, Mode, Semantics, card_table, mean_metrics, published_for,
    read_data_set, result_table, score_samples,
};

use crate::ModelArgs;

#[derive(Args)]
#[command(group(ArgGroup::new("mode").args(["iterative", "no_iterative", "both"])))]
pub struct EvalArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Data file, one sample per row {query, positive: [...], negative: [...]}: Parquet (*.parquet,
    /// as on the Hugging Face hub) or JSON Lines. Repeat for several data sets.
    #[arg(long, value_name = "FILE", required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Score with iterative inference (the default; the card's headline figures).
    #[arg(long)]
    iterative: bool,
    /// Score each list at once, without iterative inference.
    #[arg(long)]
    no_iterative: bool,
    /// Both: with iterative inference, then without.
    #[arg(long)]
    both: bool,
    /// Tie handling of the metrics: mteb1 (scikit-learn AP, stable ranking; the card's) or
    /// mteb2 (trec_eval map_cut.1000, ties ranked non-relevant first).
    #[arg(long, value_enum, default_value_t = Semantics::Mteb1, ignore_case = true)]
    semantics: Semantics,
    /// Evaluate only the first N samples of each file (samples skipped for lacking a positive or
    /// a negative do not count).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// Without iterative inference: candidates scored together in one batch of whole lists (a
    /// longer list goes alone).
    #[arg(long, value_name = "N", default_value_t = 256)]
    batch_passages: usize,
    /// Also write the figures as JSON here ({"results": [...]}, rewritten after each data set
    /// and mode, so that a long run keeps what it finished).
    #[arg(long, value_name = "OUT")]
    json: Option<PathBuf>,
}

impl EvalArgs {
    fn modes(&self) -> Vec<Mode> {
        if self.both {
            vec![Mode::Iterative, Mode::Plain]
        } else if self.no_iterative {
            vec![Mode::Plain]
        } else {
            vec![Mode::Iterative]
        }
    }
}

pub fn run(args: &EvalArgs) -> Result<(), Error> {
    // Every file is read before the model runs: a bad row in the last file should not surface
    // hours into the run.
    let limit = args.limit.map(|n| n as usize);
    let sets: Vec<DataSet> = args
        .data
        .iter()
        .map(|path| read_data_set(path, limit))
        .collect::<Result<_, _>>()?;
    for set in &sets {
        eprintln!(
            "{}: {} queries ({} skipped), {} passages",
            set.path.display(),
            set.samples.len(),
            set.skipped,
            set.candidates()
        );
    }
    if let Some(path) = &args.json {
        // Fail now, not after hours of scoring, when the output cannot be written.
        write_json(path, &[])?;
    }
    let ranker = args.model.load()?;
    let mut results: Vec<EvalResult> = Vec::new();
    for set in &sets {
        for mode in args.modes() {
            let result = evaluate(&ranker, set, mode, args).inspect_err(|_| {
                eprintln!("{} ({mode}): evaluation stopped", set.path.display())
            })?;
            println!("{}", result_table(&result));
            results.push(result);
            if let Some(path) = &args.json {
                write_json(path, &results)?;
            }
        }
    }
    if results.len() > 1 {
        println!("## MAP in the model card's layout ({})\n", args.semantics);
        println!("{}", card_table(&results));
    }
    Ok(())
}

fn evaluate(
    ranker: &listconranker::Reranker,
    set: &DataSet,
    mode: Mode,
    args: &EvalArgs,
) -> Result<EvalResult, Error> {
    let bar = progress_bar(set, mode);
    let started = Instant::now();
    let scores = score_samples(ranker, &set.samples, mode, args.batch_passages, |done| {
        bar.inc(done.len() as u64)
    });
    let seconds = started.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let scores = scores?;
    let metrics = mean_metrics(&set.samples, &scores, args.semantics)?;
    let result = EvalResult::new(set, mode, args.semantics, metrics, seconds);
    eprintln!(
        "{} ({mode}): {} queries in {seconds:.1} s, {:.2} queries/s, {:.1} passages/s",
        set.path.display(),
        result.queries,
        result.queries as f64 / seconds.max(1e-9),
        result.candidates as f64 / seconds.max(1e-9)
    );
    Ok(result)
}

/// Queries done, rate and ETA on stderr (drawn only when stderr is a terminal).
fn progress_bar(set: &DataSet, mode: Mode) -> ProgressBar {
    // Hub files are called test-00000-of-00001-<hash>.parquet: the card's name says more.
    let name = match published_for(&set.path) {
        Some(published) => published.title.to_string(),
        None => set.path.file_name().map_or_else(
            || set.path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    };
    let bar = ProgressBar::new(set.samples.len() as u64);
    let style = ProgressStyle::with_template(
        "{prefix} {wide_bar} {pos}/{len} queries [{elapsed_precise}, {per_sec}, ETA {eta}]",
    )
    .expect("a valid progress template");
    bar.set_style(style);
    bar.set_prefix(format!("{name} ({mode})"));
    bar.enable_steady_tick(Duration::from_millis(500));
    bar
}

fn write_json(path: &Path, results: &[EvalResult]) -> Result<(), Error> {
    let failed = |e: &dyn std::fmt::Display| Error::write_output(path.display(), e);
    let json = serde_json::to_string_pretty(&EvalReport { results }).map_err(|e| failed(&e))?;
    std::fs::write(path, json + "\n").map_err(|e| failed(&e))
}
