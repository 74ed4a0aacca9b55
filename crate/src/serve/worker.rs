//! The scoring thread: owns the model, takes jobs from a bounded queue and batches the
//! compute_score jobs of concurrent requests into one call, so their texts are encoded together
//! (the encoder groups them by length under its token budget) while each list keeps its own
//! list-transformer pass. Iterative jobs run one at a time (each round depends on the last).
//!
//! A plain OS thread rather than a tokio task: scoring is long, blocking, CPU-bound work (it
//! runs on rayon's pool), which must not hold a runtime thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::metrics::Metrics;
use crate::Reranker;
use crate::Result;

/// What to score.
pub enum Work {
    /// `[query, passage, ...]` lists through compute_score (batched across requests).
    Lists(Vec<Vec<String>>),
    /// One list through iterative inference.
    Iterative(Vec<String>),
}

impl Work {
    fn texts(&self) -> usize {
        match self {
            Work::Lists(lists) => lists.iter().map(Vec::len).sum(),
            Work::Iterative(list) => list.len(),
        }
    }
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Vec<Vec<f32>>>>,
}

/// How the thread batches.
#[derive(Clone, Debug)]
pub struct BatchOptions {
    /// Jobs waiting past this are refused at once (503).
    pub max_queue: usize,
    /// How long the first job of a batch waits for others.
    pub max_wait: Duration,
    /// Most texts in one batched call.
    pub max_batch_texts: usize,
}

/// What the model reports once loaded (for `/info` and `/health`).
pub enum LoadState {
    Ready(Box<ModelInfo>),
    Failed(String),
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct ModelInfo {
    pub hidden_size: usize,
    pub layers: usize,
    pub list_dim: usize,
    pub list_layers: usize,
    pub max_length: usize,
    pub max_passages: usize,
    pub device: String,
    pub dtype: String,
    pub batch_tokens: usize,
}

/// The handle the HTTP side holds.
pub struct Scorer {
    queue: SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    pub state: Arc<OnceLock<LoadState>>,
}

pub enum SubmitError {
    /// The queue is full.
    Overloaded,
    /// The thread is gone (the model failed to load, or the server is stopping).
    Stopped,
}

impl Scorer {
    /// Starts the thread, which first loads the model with `load`.
    pub fn start(
        load: impl FnOnce() -> Result<Reranker> + Send + 'static,
        options: BatchOptions,
        metrics: Arc<Metrics>,
    ) -> Self {
        let (queue, jobs) = sync_channel(options.max_queue.max(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(OnceLock::new());
        let thread_state = state.clone();
        let thread_queued = queued.clone();
        std::thread::Builder::new()
            .name("listconranker-scorer".into())
            .spawn(move || match load() {
                Ok(ranker) => {
                    let _ = thread_state.set(LoadState::Ready(Box::new(info(&ranker))));
                    run(ranker, jobs, options, thread_queued, metrics);
                }
                Err(error) => {
                    let _ =
                        thread_state.set(LoadState::Failed(format!("{error} [{}]", error.code())));
                }
            })
            .expect("spawning the scoring thread");
        Self {
            queue,
            queued,
            state,
        }
    }

    /// Queues `work`; the answer arrives on the returned channel.
    pub fn submit(
        &self,
        work: Work,
    ) -> std::result::Result<oneshot::Receiver<Result<Vec<Vec<f32>>>>, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.queued.fetch_add(1, Ordering::SeqCst);
        match self.queue.try_send(Job { work, reply }) {
            Ok(()) => Ok(answer),
            Err(refused) => {
                self.queued.fetch_sub(1, Ordering::SeqCst);
                Err(match refused {
                    TrySendError::Full(_) => SubmitError::Overloaded,
                    TrySendError::Disconnected(_) => SubmitError::Stopped,
                })
            }
        }
    }

    /// Jobs waiting for the thread.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

fn info(ranker: &Reranker) -> ModelInfo {
    let config = ranker.config();
    let options = ranker.options();
    ModelInfo {
        hidden_size: config.bert.hidden_size,
        layers: config.bert.num_hidden_layers,
        list_dim: config.list.dim,
        list_layers: config.list.layers,
        max_length: options.max_length,
        max_passages: ranker.max_passages(),
        device: options.backend.to_string(),
        dtype: options.precision.to_string(),
        batch_tokens: options.effective_batch_tokens(),
    }
}

/// The thread's loop: ends when every [`Scorer`] handle is dropped.
fn run(
    ranker: Reranker,
    jobs: Receiver<Job>,
    options: BatchOptions,
    queued: Arc<AtomicUsize>,
    metrics: Arc<Metrics>,
) {
    let take = |job: Job| {
        queued.fetch_sub(1, Ordering::SeqCst);
        job
    };
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![take(first)];
        let mut texts = batch[0].work.texts();
        let deadline = Instant::now() + options.max_wait;
        while texts < options.max_batch_texts {
            let left = deadline.saturating_duration_since(Instant::now());
            match jobs.recv_timeout(left) {
                Ok(job) => {
                    texts += job.work.texts();
                    batch.push(take(job));
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        score_batch(&ranker, batch, &metrics);
    }
}

/// Scores the jobs of one batch: iterative ones alone, the list jobs in one call (or one by
/// one when that call fails, so that one bad request does not fail the others).
fn score_batch(ranker: &Reranker, batch: Vec<Job>, metrics: &Metrics) {
    type Reply = oneshot::Sender<Result<Vec<Vec<f32>>>>;
    let mut lists: Vec<(Vec<Vec<String>>, Reply)> = Vec::new();
    // A request that timed out (its receiver dropped) is not scored.
    for job in batch.into_iter().filter(|job| !job.reply.is_closed()) {
        match job.work {
            Work::Iterative(list) => {
                metrics.observe_batch(list.len());
                let answer = ranker.iterative_inference(&list).map(|scores| vec![scores]);
                let _ = job.reply.send(answer);
            }
            Work::Lists(own) => lists.push((own, job.reply)),
        }
    }
    if lists.is_empty() {
        return;
    }
    let merged: Vec<Vec<&str>> = lists
        .iter()
        .flat_map(|(own, _)| own)
        .map(|list| list.iter().map(String::as_str).collect())
        .collect();
    metrics.observe_batch(merged.iter().map(Vec::len).sum());
    match ranker.compute_score(&merged) {
        Ok(scores) => {
            let mut scores = scores.into_iter();
            for (own, reply) in lists {
                let _ = reply.send(Ok(scores.by_ref().take(own.len()).collect()));
            }
        }
        Err(_) if lists.len() > 1 => {
            for (own, reply) in lists {
                let _ = reply.send(ranker.compute_score(&own));
            }
        }
        Err(error) => {
            let mut lists = lists;
            // A single job: the error is its own.
            if let Some((_, reply)) = lists.pop() {
                let _ = reply.send(Err(error));
            }
        }
    }
}
