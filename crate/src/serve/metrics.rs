//! `GET /metrics` in the Prometheus text format (version 0.0.4): requests by endpoint, errors by
//! code, the queue depth, batch sizes, a latency histogram and the texts scored. Hand-written:
//! a handful of counters does not need a metrics framework, and the format is a few lines.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds of the batch-size histogram's buckets, in texts.
const BATCH_BUCKETS: [f64; 9] = [1.0, 4.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];

#[derive(Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot is +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds.len() + 1];
        }
        let slot = bounds
            .iter()
            .position(|&bound| value <= bound)
            .unwrap_or(bounds.len());
        self.counts[slot] += 1;
        self.sum += value;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, bounds: &[f64]) {
        let mut cumulative = 0;
        for (i, bound) in bounds.iter().enumerate() {
            cumulative += self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[derive(Default)]
struct Counts {
    requests: BTreeMap<&'static str, u64>,
    errors: BTreeMap<&'static str, u64>,
    latency: Histogram,
    batches: Histogram,
    texts: u64,
}

#[derive(Default)]
pub struct Metrics {
    counts: Mutex<Counts>,
}

impl Metrics {
    /// One finished request: its endpoint, its error code if it failed, its latency and the
    /// texts it had scored.
    pub fn observe_request(
        &self,
        endpoint: &'static str,
        error: Option<&'static str>,
        seconds: f64,
        texts: usize,
    ) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        *counts.requests.entry(endpoint).or_default() += 1;
        if let Some(code) = error {
            *counts.errors.entry(code).or_default() += 1;
        }
        counts.latency.observe(&LATENCY_BUCKETS, seconds);
        counts.texts += texts as u64;
    }

    /// One call of the model: the texts it scored together.
    pub fn observe_batch(&self, texts: usize) {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        counts.batches.observe(&BATCH_BUCKETS, texts as f64);
    }

    pub fn render(&self, queue_depth: usize, ready: bool) -> String {
        let counts = self
            .counts
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let mut out = String::new();
        let family = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        family(
            &mut out,
            "listconranker_requests_total",
            "counter",
            "Requests answered, by endpoint.",
        );
        for (endpoint, n) in &counts.requests {
            let _ = writeln!(
                out,
                "listconranker_requests_total{{endpoint=\"{endpoint}\"}} {n}"
            );
        }
        family(
            &mut out,
            "listconranker_errors_total",
            "counter",
            "Error answers, by code.",
        );
        for (code, n) in &counts.errors {
            let _ = writeln!(out, "listconranker_errors_total{{code=\"{code}\"}} {n}");
        }
        family(
            &mut out,
            "listconranker_queue_depth",
            "gauge",
            "Scoring jobs waiting for the model.",
        );
        let _ = writeln!(out, "listconranker_queue_depth {queue_depth}");
        family(
            &mut out,
            "listconranker_ready",
            "gauge",
            "1 once the model is loaded.",
        );
        let _ = writeln!(out, "listconranker_ready {}", u8::from(ready));
        family(
            &mut out,
            "listconranker_texts_scored_total",
            "counter",
            "Texts (queries and passages) of answered requests; texts/s is its rate.",
        );
        let _ = writeln!(out, "listconranker_texts_scored_total {}", counts.texts);
        family(
            &mut out,
            "listconranker_batch_texts",
            "histogram",
            "Texts per model call (requests batched together).",
        );
        counts
            .batches
            .render(&mut out, "listconranker_batch_texts", &BATCH_BUCKETS);
        family(
            &mut out,
            "listconranker_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its answer.",
        );
        counts.latency.render(
            &mut out,
            "listconranker_request_duration_seconds",
            &LATENCY_BUCKETS,
        );
        out
    }
}
