//! `listconranker bench`: a seeded workload of realistic text lengths, timed per list, and,
//! with `--reference`, the same workload through the PyTorch reference on the same machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use clap::Args;
use serde::{Deserialize, Serialize};

use listconranker::workload::workload;
use listconranker::{Error, Result};

use crate::ModelArgs;

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Lists in the workload.
    #[arg(long, default_value_t = 8)]
    lists: usize,
    /// Passages per list.
    #[arg(long, default_value_t = 20)]
    passages: usize,
    /// Time iterative inference instead of compute_score.
    #[arg(long)]
    iterative: bool,
    /// Untimed passes over the workload before timing.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Timed passes over the workload.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Python interpreter with the reference's packages (`<venv>/bin/python`, where
    /// tests/reference/setup.sh prints the venv): runs tests/reference/bench_reference.py on the
    /// same workload, in f32 on the CPU.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the workload's lists as JSON (`{"lists": [[query, passage, ...], ...]}`) here, so
    /// that another implementation (the browser bench) can time the very same texts.
    #[arg(long)]
    workload_out: Option<PathBuf>,
}

/// What one side of the benchmark measured (the reference script writes the same fields).
#[derive(Serialize, Deserialize, Debug)]
pub struct BenchResult {
    pub texts_per_s: f64,
    pub lists_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    #[serde(default)]
    pub peak_rss_mb: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    workload: WorkloadInfo,
    listconranker: BenchResult,
    reference: Option<serde_json::Value>,
    /// listconranker texts/s divided by the reference's.
    speedup: Option<f64>,
}

#[derive(Serialize)]
struct WorkloadInfo {
    model: String,
    device: String,
    dtype: String,
    mode: &'static str,
    lists: usize,
    passages: usize,
    seed: u64,
    repeat: usize,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Peak resident memory of this process (Linux: VmHWM), in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn run_reference(
    python: &Path,
    args: &BenchArgs,
    workload_file: &Path,
    out: &Path,
) -> Result<serde_json::Value> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/reference/bench_reference.py");
    let mut command = Command::new(python);
    command
        .arg(&script)
        .arg("--model")
        .arg(&args.model.model)
        .arg("--workload")
        .arg(workload_file)
        .args(["--dtype", "f32", "--device", "cpu"])
        .args([
            "--warmup",
            &args.warmup.to_string(),
            "--repeat",
            &args.repeat.to_string(),
        ])
        .args(["--max-length", &args.model.max_length.to_string()])
        .arg("--json")
        .arg(out);
    if args.iterative {
        command.arg("--iterative");
    }
    eprintln!("running the PyTorch reference ({})", script.display());
    let status = command
        .status()
        .map_err(|e| Error::read_input(python.display(), e))?;
    if !status.success() {
        return Err(Error::read_input(
            script.display(),
            format!("the reference benchmark failed ({status})"),
        ));
    }
    let text = std::fs::read_to_string(out).map_err(|e| Error::read_input(out.display(), e))?;
    serde_json::from_str(&text).map_err(|e| Error::read_input(out.display(), e))
}

fn write_file(path: &Path, body: &str) -> Result<()> {
    std::fs::write(path, body).map_err(|e| Error::write_output(path.display(), e))
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.lists == 0 || args.passages == 0 || args.repeat == 0 {
        return Err(Error::input(
            "--lists, --passages and --repeat must be positive",
        ));
    }
    let ranker = args.model.load()?;
    let lists = workload(args.lists, args.passages, args.seed);
    if let Some(path) = &args.workload_out {
        write_file(path, &serde_json::json!({ "lists": lists }).to_string())?;
    }
    let score = |list: &Vec<String>| -> Result<()> {
        if args.iterative {
            ranker.iterative_inference(list).map(drop)
        } else {
            ranker.compute_score(std::slice::from_ref(list)).map(drop)
        }
    };
    for _ in 0..args.warmup {
        lists.iter().try_for_each(score)?;
    }
    let mut latencies = Vec::new();
    let started = Instant::now();
    for _ in 0..args.repeat {
        for list in &lists {
            let t = Instant::now();
            score(list)?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let texts = (args.repeat * lists.iter().map(Vec::len).sum::<usize>()) as f64;
    let ours = BenchResult {
        texts_per_s: texts / seconds,
        lists_per_s: (args.repeat * lists.len()) as f64 / seconds,
        p50_ms: percentile(&latencies, 0.5),
        p95_ms: percentile(&latencies, 0.95),
        peak_rss_mb: peak_rss_mb(),
    };
    drop(ranker);

    let reference = match &args.reference {
        None => None,
        Some(python) => {
            // A fresh private directory: fixed names in the shared temp directory could be
            // planted (a symlink written through, a stale result read as the reference's).
            let dir = tempfile::Builder::new()
                .prefix("listconranker-bench-")
                .tempdir()
                .map_err(|e| Error::write_output(std::env::temp_dir().display(), e))?;
            let workload_file = dir.path().join("workload.json");
            write_file(
                &workload_file,
                &serde_json::json!({ "lists": lists }).to_string(),
            )?;
            let result_file = dir.path().join("reference-result.json");
            Some(run_reference(python, args, &workload_file, &result_file)?)
        }
    };
    let reference_tps = reference.as_ref().and_then(|r| r["texts_per_s"].as_f64());
    let report = Report {
        workload: WorkloadInfo {
            model: args.model.model.display().to_string(),
            device: args.model.device.to_string(),
            dtype: args.model.dtype.to_string(),
            mode: if args.iterative {
                "iterative_inference"
            } else {
                "compute_score"
            },
            lists: args.lists,
            passages: args.passages,
            seed: args.seed,
            repeat: args.repeat,
        },
        speedup: reference_tps.map(|r| ours.texts_per_s / r),
        listconranker: ours,
        reference,
    };
    print_table(&report);
    if let Some(path) = &args.json {
        write_file(
            path,
            &serde_json::to_string_pretty(&report).expect("a report serializes"),
        )?;
    }
    Ok(())
}

fn print_table(report: &Report) {
    let w = &report.workload;
    println!(
        "{} on {} {} ({}, {} lists x {} passages, {} timed passes)",
        w.model, w.device, w.dtype, w.mode, w.lists, w.passages, w.repeat
    );
    println!(
        "{:<16} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "", "texts/s", "lists/s", "p50 ms", "p95 ms", "peak RSS MB"
    );
    let ours = &report.listconranker;
    let rss = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    println!(
        "{:<16} {:>10.1} {:>10.2} {:>10.1} {:>10.1} {:>12}",
        "listconranker",
        ours.texts_per_s,
        ours.lists_per_s,
        ours.p50_ms,
        ours.p95_ms,
        rss(ours.peak_rss_mb)
    );
    if let Some(r) = &report.reference {
        // The reference script's JSON: texts_per_s, lists_per_s, latency_ms {p50, p95}.
        let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<16} {:>10.1} {:>10.2} {:>10.1} {:>10.1} {:>12}",
            "pytorch (f32)",
            f(&r["texts_per_s"]),
            f(&r["lists_per_s"]),
            f(&r["latency_ms"]["p50"]),
            f(&r["latency_ms"]["p95"]),
            rss(r["peak_rss_mb"].as_f64())
        );
    }
    if let Some(s) = report.speedup {
        println!("speedup (texts/s, listconranker / pytorch): {s:.2}x");
    }
}
