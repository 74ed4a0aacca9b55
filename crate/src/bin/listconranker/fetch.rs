//! `listconranker fetch`: a checkpoint from the Hugging Face hub into the hub's local cache
//! (`listconranker::hub`), with a progress bar per file; prints the snapshot directory, ready
//! for `score`, `bench`, `eval` and `convert`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use listconranker::Error;
use listconranker::hub::{FetchEvent, FetchOptions, Hub, Progress};

#[derive(Args)]
pub struct FetchArgs {
    /// Hub repository, `org/name` (e.g. ByteDance/ListConRanker).
    repo: String,
    /// Branch, tag or commit.
    #[arg(long, default_value = "main")]
    revision: String,
    /// Also place the files in this directory (hard links where possible, copies otherwise)
    /// and print it instead of the cache directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Further attempts after a transient failure (5xx, dropped connection, stall).
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// First wait between attempts, in seconds (doubled each time).
    #[arg(long, default_value_t = 1.0, value_parser = seconds)]
    retry_delay: f64,
    /// A transfer receiving fewer bytes than this in `--low-speed-time` seconds is a stall.
    #[arg(long, default_value_t = 16384)]
    low_speed_limit: u64,
    /// The low-speed window in seconds, also the longest wait for an answer or the next bytes.
    #[arg(long, default_value_t = 30.0, value_parser = seconds)]
    low_speed_time: f64,
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?}: expected seconds (0 to 86400)")),
    }
}

pub fn run(args: &FetchArgs) -> Result<(), Error> {
    let options = FetchOptions {
        revision: args.revision.clone(),
        retries: args.retries,
        retry_delay: Duration::from_secs_f64(args.retry_delay),
        low_speed_limit: args.low_speed_limit,
        low_speed_time: Duration::from_secs_f64(args.low_speed_time),
        progress: Some(Arc::new(Bars::default())),
    };
    let snapshot = Hub::from_env()?.fetch_checkpoint(&args.repo, &options)?;
    let dir = match &args.out {
        Some(out) => {
            snapshot.place_into(out)?;
            out.clone()
        }
        None => snapshot.dir.clone(),
    };
    eprintln!("{} files in {}", snapshot.files.len(), dir.display());
    println!("{}", dir.display());
    Ok(())
}

/// One indicatif bar per transfer; a line per finished file, retry and note.
#[derive(Default)]
struct Bars {
    current: Mutex<Option<ProgressBar>>,
}

impl Progress for Bars {
    fn event(&self, event: &FetchEvent<'_>) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        match *event {
            FetchEvent::Started {
                file,
                total,
                resumed_from,
            } => {
                if let Some(bar) = current.take() {
                    bar.finish_and_clear();
                }
                let bar = ProgressBar::new(total.unwrap_or(0));
                let template = if total.is_some() {
                    "  {prefix:<28} {wide_bar} {bytes}/{total_bytes} [{bytes_per_sec}, ETA {eta}]"
                } else {
                    "  {prefix:<28} {bytes} [{bytes_per_sec}]"
                };
                bar.set_style(
                    ProgressStyle::with_template(template).expect("a valid progress template"),
                );
                bar.set_prefix(file.to_string());
                bar.set_position(resumed_from);
                if resumed_from > 0 {
                    bar.println(format!("  {file}: resuming from byte {resumed_from}"));
                }
                *current = Some(bar);
            }
            FetchEvent::Advanced { bytes, .. } => {
                if let Some(bar) = current.as_ref() {
                    bar.set_position(bytes);
                }
            }
            FetchEvent::Finished {
                file,
                bytes,
                cached,
            } => {
                if let Some(bar) = current.take() {
                    bar.finish_and_clear();
                }
                let how = if cached { "  (cached)" } else { "" };
                eprintln!("  {file:<28} {bytes:>12} bytes{how}");
            }
            FetchEvent::Retrying {
                file,
                attempt,
                attempts,
                delay,
                reason,
            } => {
                if let Some(bar) = current.take() {
                    bar.abandon();
                }
                eprintln!(
                    "  {file}: {reason}; attempt {attempt} of {attempts} in {:.1} s",
                    delay.as_secs_f64()
                );
            }
            FetchEvent::Note { message } => match current.as_ref() {
                Some(bar) => bar.println(format!("  {message}")),
                None => eprintln!("  {message}"),
            },
            _ => {}
        }
    }
}
