//! Load test of a running `listconranker serve` (docs/serve.md, "Load test"): closed-loop
//! clients at given concurrencies, then optionally an open-loop overload at a multiple of the
//! measured capacity, with `/health` probed throughout.
//!
//! ```sh
//! listconranker serve --model DIR --port 8080 &
//! cargo run --release --example serve_load -- --url http://127.0.0.1:8080 \
//!     --clients 1,4,16 --seconds 15 --overload 2 --json load.json
//! ```
//!
//! Every request is a `POST /v1/rerank` of one query and `--passages` documents from the
//! seeded benchmark workload (the texts `listconranker bench` scores). An answer counts as
//! served when it is 200 and ranks every document exactly once; as shed when it is 503
//! `OVERLOADED` with a `Retry-After`; anything else (another status, a malformed answer, a
//! transport error or a client timeout) is a lost request, and the program exits with status 1
//! when there is one, or when `/health` failed to answer 200 within a second.
//!
//! A client of our own rather than `oha`: the overload check needs each answer's body checked
//! and sorted into served / shed / lost, which a generic HTTP load tool does not do.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use listconranker::workload::workload;
use serde_json::{Value, json};

#[derive(Parser)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent closed-loop clients, one run per value.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    clients: Vec<usize>,
    /// Length of each run, in seconds.
    #[arg(long, default_value_t = 15.0)]
    seconds: f64,
    /// Documents per request.
    #[arg(long, default_value_t = 20)]
    passages: usize,
    /// After the closed-loop runs: an open-loop run at this multiple of the largest
    /// throughput measured (requests sent on a fixed schedule, whatever the answers).
    #[arg(long)]
    overload: Option<f64>,
    /// Length of the overload run, in seconds (default: `--seconds`). A backlog of the
    /// server's `--max-queue` jobs takes about max_queue / capacity seconds to build up.
    #[arg(long)]
    overload_seconds: Option<f64>,
    /// Bearer token.
    #[arg(long, env = "LISTCONRANKER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Client-side timeout per request, in seconds.
    #[arg(long, default_value_t = 180.0)]
    timeout_s: f64,
    /// Writes every run's figures here as JSON.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

/// Most requests the open-loop run has in flight at once.
const MAX_IN_FLIGHT: usize = 512;

/// How one request ended.
enum Outcome {
    Served(Duration),
    Shed,
    Lost(String),
}

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    shed: usize,
    lost: Vec<String>,
}

impl Tally {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Served(latency) => self.latencies.push(latency),
            Outcome::Shed => self.shed += 1,
            Outcome::Lost(why) => self.lost.push(why),
        }
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1e3
    }
}

struct Client {
    agent: ureq::Agent,
    url: String,
    api_key: Option<String>,
    bodies: Arc<Vec<String>>,
    documents: usize,
}

impl Client {
    fn new(args: &Args) -> Self {
        // One kept-alive connection per sender (ureq keeps 3 per host by default): latencies
        // then exclude connecting.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_idle_connections(MAX_IN_FLIGHT)
            .max_idle_connections_per_host(MAX_IN_FLIGHT)
            .timeout_global(Some(Duration::from_secs_f64(args.timeout_s)))
            .build()
            .into();
        // 64 different requests, cycled: enough that batches mix lengths as real traffic does.
        let bodies = workload(64, args.passages, 7)
            .into_iter()
            .map(|list| json!({ "query": list[0], "documents": list[1..] }).to_string())
            .collect();
        Self {
            agent,
            url: format!("{}/v1/rerank", args.url.trim_end_matches('/')),
            api_key: args.api_key.clone(),
            bodies: Arc::new(bodies),
            documents: args.passages,
        }
    }

    fn send(&self, index: usize) -> Outcome {
        let started = Instant::now();
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        let mut response = match request.send(self.bodies[index % self.bodies.len()].as_str()) {
            Ok(response) => response,
            Err(error) => return Outcome::Lost(format!("transport: {error}")),
        };
        let status = response.status().as_u16();
        let retry_after = response.headers().contains_key("retry-after");
        let body: Value = match response
            .body_mut()
            .read_to_string()
            .map_err(|e| e.to_string())
            .and_then(|text| serde_json::from_str(&text).map_err(|e| e.to_string()))
        {
            Ok(body) => body,
            Err(error) => {
                return Outcome::Lost(format!("{status} with an unreadable body: {error}"));
            }
        };
        let latency = started.elapsed();
        match status {
            200 if self.ranks_every_document(&body) => Outcome::Served(latency),
            200 => Outcome::Lost(format!("200 with a wrong ranking: {body}")),
            503 if body["code"] == "OVERLOADED" && retry_after => Outcome::Shed,
            _ => Outcome::Lost(format!("{status}: {body}")),
        }
    }

    /// The answer holds every document index once, with finite scores, best first.
    fn ranks_every_document(&self, body: &Value) -> bool {
        let Some(results) = body["results"].as_array() else {
            return false;
        };
        let mut seen = vec![false; self.documents];
        let mut last = f64::INFINITY;
        for result in results {
            let (Some(index), Some(score)) =
                (result["index"].as_u64(), result["relevance_score"].as_f64())
            else {
                return false;
            };
            let index = index as usize;
            if index >= seen.len() || seen[index] || !score.is_finite() || score > last {
                return false;
            }
            seen[index] = true;
            last = score;
        }
        seen.iter().all(|&s| s)
    }
}

/// `clients` threads, each sending its next request as soon as the last one is answered.
fn closed_loop(client: &Arc<Client>, clients: usize, seconds: f64) -> (Tally, Duration) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let client = client.clone();
            let tally = tally.clone();
            std::thread::spawn(move || {
                let mut i = c * 17;
                while Instant::now() < deadline {
                    let outcome = client.send(i);
                    // A shed client waits as `Retry-After` asks (1 s) instead of spinning.
                    let shed = matches!(outcome, Outcome::Shed);
                    tally.lock().unwrap().add(outcome);
                    if shed {
                        std::thread::sleep(Duration::from_secs(1));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let elapsed = started.elapsed();
    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
    (tally, elapsed)
}

/// Requests sent at `rate` per second for `seconds`, each on its own schedule whatever the
/// answers to the others (up to `max_in_flight` at once), while a prober asks `/health`
/// every 100 ms. Returns the tally, the elapsed time, the probes' worst latency and failures,
/// and how many requests could not be sent on time for want of a free sender.
fn open_loop(
    client: &Arc<Client>,
    health_url: &str,
    rate: f64,
    seconds: f64,
) -> (Tally, Duration, Duration, usize, usize) {
    let total = (rate * seconds).ceil() as usize;
    let next = Arc::new(AtomicUsize::new(0));
    let late = Arc::new(AtomicUsize::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    let senders: Vec<_> = (0..MAX_IN_FLIGHT.min(total))
        .map(|_| {
            let (client, next, late, tally) =
                (client.clone(), next.clone(), late.clone(), tally.clone());
            std::thread::spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        break;
                    }
                    let due = started + Duration::from_secs_f64(i as f64 / rate);
                    let now = Instant::now();
                    if now < due {
                        std::thread::sleep(due - now);
                    } else if now - due > Duration::from_millis(100) {
                        late.fetch_add(1, Ordering::SeqCst);
                    }
                    let outcome = client.send(i);
                    tally.lock().unwrap().add(outcome);
                }
            })
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let done = done.clone();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        let url = health_url.to_string();
        std::thread::spawn(move || {
            let (mut worst, mut failed) = (Duration::ZERO, 0);
            while !done.load(Ordering::SeqCst) {
                let asked = Instant::now();
                let ok = agent
                    .get(&url)
                    .call()
                    .is_ok_and(|response| response.status() == 200);
                let took = asked.elapsed();
                worst = worst.max(took);
                if !ok || took > Duration::from_secs(1) {
                    failed += 1;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (worst, failed)
        })
    };
    for sender in senders {
        sender.join().unwrap();
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::SeqCst);
    let (worst_health, health_failures) = prober.join().unwrap();
    let tally = Arc::try_unwrap(tally).ok().unwrap().into_inner().unwrap();
    (
        tally,
        elapsed,
        worst_health,
        health_failures,
        late.load(Ordering::SeqCst),
    )
}

fn summary(mode: &str, clients: Value, tally: &Tally, elapsed: Duration, texts: usize) -> Value {
    let served = tally.latencies.len();
    let seconds = elapsed.as_secs_f64();
    json!({
        "mode": mode,
        "clients": clients,
        "seconds": seconds,
        "served": served,
        "shed": tally.shed,
        "lost": tally.lost.len(),
        "requests_per_s": served as f64 / seconds,
        "texts_per_s": (served * texts) as f64 / seconds,
        "p50_ms": tally.percentile_ms(50.0),
        "p99_ms": tally.percentile_ms(99.0),
    })
}

fn main() {
    let args = Args::parse();
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(args.seconds)
        || !positive(args.timeout_s)
        || !args.overload.is_none_or(positive)
        || !args.overload_seconds.is_none_or(positive)
        || args.clients.contains(&0)
        || args.passages == 0
    {
        eprintln!(
            "--seconds, --timeout-s, --overload, --overload-seconds, --clients and --passages must be positive"
        );
        std::process::exit(2);
    }
    let client = Arc::new(Client::new(&args));
    let texts = args.passages + 1;
    let base = args.url.trim_end_matches('/').to_string();
    let mut runs = Vec::new();
    let mut lost = 0;
    let mut best_rate: f64 = 0.0;

    // One request first: the server is up and the model answers (not counted).
    if let Outcome::Lost(why) = client.send(0) {
        eprintln!("the server does not answer a first request: {why}");
        std::process::exit(2);
    }
    println!("| clients | requests/s | texts/s | p50 ms | p99 ms | served | shed | lost |");
    println!("|---|---|---|---|---|---|---|---|");
    for &clients in &args.clients {
        let (tally, elapsed) = closed_loop(&client, clients, args.seconds);
        let run = summary("closed", json!(clients), &tally, elapsed, texts);
        best_rate = best_rate.max(run["requests_per_s"].as_f64().unwrap_or(0.0));
        println!(
            "| {clients} | {:.2} | {:.1} | {:.0} | {:.0} | {} | {} | {} |",
            run["requests_per_s"].as_f64().unwrap_or(f64::NAN),
            run["texts_per_s"].as_f64().unwrap_or(f64::NAN),
            run["p50_ms"].as_f64().unwrap_or(f64::NAN),
            run["p99_ms"].as_f64().unwrap_or(f64::NAN),
            tally.latencies.len(),
            tally.shed,
            tally.lost.len(),
        );
        for why in tally.lost.iter().take(3) {
            eprintln!("lost: {why}");
        }
        lost += tally.lost.len();
        runs.push(run);
    }
    let mut health_failed = 0;
    if let Some(factor) = args.overload {
        if best_rate <= 0.0 {
            eprintln!("--overload needs a closed-loop run that served requests first");
            std::process::exit(2);
        }
        let rate = factor * best_rate;
        let seconds = args.overload_seconds.unwrap_or(args.seconds);
        let (tally, elapsed, worst_health, failures, late) =
            open_loop(&client, &format!("{base}/health"), rate, seconds);
        let mut run = summary("open", json!(null), &tally, elapsed, texts);
        run["offered_requests_per_s"] = json!(rate);
        run["overload_factor"] = json!(factor);
        run["health_worst_ms"] = json!(worst_health.as_secs_f64() * 1e3);
        run["health_failures"] = json!(failures);
        run["sent_late"] = json!(late);
        println!(
            "\noverload {factor}x ({rate:.2} requests/s offered for {seconds:.0} s): served {} ({:.2}/s, p50 {:.0} ms, p99 {:.0} ms), shed {} with 503, lost {}; /health worst {:.0} ms, {failures} failed probes; {late} requests sent late",
            tally.latencies.len(),
            run["requests_per_s"].as_f64().unwrap_or(f64::NAN),
            run["p50_ms"].as_f64().unwrap_or(f64::NAN),
            run["p99_ms"].as_f64().unwrap_or(f64::NAN),
            tally.shed,
            tally.lost.len(),
            worst_health.as_secs_f64() * 1e3,
        );
        for why in tally.lost.iter().take(3) {
            eprintln!("lost: {why}");
        }
        lost += tally.lost.len();
        health_failed = failures;
        runs.push(run);
    }
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(
            &json!({ "url": base, "passages": args.passages, "runs": runs }),
        )
        .unwrap();
        if let Err(error) = std::fs::write(path, text) {
            eprintln!("cannot write {}: {error}", path.display());
            std::process::exit(2);
        }
    }
    if lost > 0 || health_failed > 0 {
        eprintln!("{lost} lost requests, {health_failed} failed health probes");
        std::process::exit(1);
    }
}
