//! `listconranker serve`: the rerank HTTP API (docs/serve.md).
//!
//! - `POST /rerank`: text-embeddings-inference's shapes; `POST /v1/rerank`: Cohere / Jina's;
//!   `POST /v1/score`: this model's own modes (compute_score or iterative inference);
//! - `GET /health` (200 once the model is loaded), `GET /info`, `GET /metrics` (Prometheus).
//!
//! One scoring thread owns the model ([`worker`]) and batches concurrent requests; the HTTP
//! side (axum on tokio) parses, checks limits and the API key, queues and waits with a
//! timeout. A full queue is refused at once (503 with `Retry-After`), never waited on.

mod api;
mod error;
mod metrics;
mod worker;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use tower_http::cors::CorsLayer;

use api::{
    DocumentText, ScoreRequest, ScoreResponse, TeiRank, TeiRerankRequest, V1RerankRequest,
    V1RerankResponse, V1Result, check_limits, logit,
};
pub use error::ApiError;
use error::ErrorCode;
use metrics::Metrics;
pub use worker::{BatchOptions, ModelInfo};
use worker::{LoadState, Scorer, SubmitError, Work};

use crate::Reranker;
use crate::Result;

/// Request limits (defaults in [`Limits::default`], stated in the README).
#[derive(Clone, Debug)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most texts (queries and passages) in one request.
    pub max_texts: usize,
    /// Longest text, in characters (the model reads at most 512 tokens of it anyway).
    pub max_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 8 << 20,
            max_texts: 1000,
            max_chars: 20_000,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub limits: Limits,
    pub batching: BatchOptions,
    /// Longest a request waits for its scores.
    pub timeout: Duration,
    /// Bearer token every endpoint but `/health` asks for.
    pub api_key: Option<String>,
    /// An origin whose pages may call the API (CORS); none by default.
    pub cors_origin: Option<String>,
    /// The name `/info` and `/v1/rerank` give the model.
    pub model_name: String,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            batching: BatchOptions {
                max_queue: 64,
                max_wait: Duration::from_millis(5),
                max_batch_texts: 256,
            },
            timeout: Duration::from_secs(60),
            api_key: None,
            cors_origin: None,
            model_name: "listconranker".into(),
        }
    }
}

struct App {
    scorer: Scorer,
    metrics: Arc<Metrics>,
    options: ServeOptions,
    shutting_down: AtomicBool,
}

/// Serves the API on `listener` until `shutdown` completes, then lets the requests in flight
/// finish. The model is loaded by `load` on the scoring thread; until it is, `/health` and the
/// scoring endpoints answer 503.
pub async fn serve(
    listener: tokio::net::TcpListener,
    load: impl FnOnce() -> Result<Reranker> + Send + 'static,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let app = Arc::new(App {
        scorer: Scorer::start(load, options.batching.clone(), metrics.clone()),
        metrics,
        options,
        shutting_down: AtomicBool::new(false),
    });
    let router = router(app.clone())?;
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            app.shutting_down.store(true, Ordering::SeqCst);
        })
        .await
}

fn router(app: Arc<App>) -> std::io::Result<Router> {
    let mut router = Router::new()
        .route("/rerank", post(tei_rerank))
        .route("/v1/rerank", post(v1_rerank))
        .route("/v1/score", post(score))
        .route("/health", get(health))
        .route("/info", get(info))
        .route("/metrics", get(metrics))
        .fallback(|| async { ApiError::not_found() })
        .layer(from_fn_with_state(app.clone(), authorize))
        .layer(from_fn_with_state(app.clone(), observe))
        .layer(DefaultBodyLimit::max(app.options.limits.max_body_bytes));
    if let Some(origin) = &app.options.cors_origin {
        let origin = HeaderValue::from_str(origin).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid CORS origin `{origin}`"),
            )
        })?;
        router = router.layer(
            CorsLayer::new()
                .allow_origin(origin)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
                // A page's client reads when to retry a 503.
                .expose_headers([header::RETRY_AFTER]),
        );
    }
    Ok(router.with_state(app))
}

/// The endpoints, as the metrics name them (any other path counts as `other`).
const ENDPOINTS: [&str; 6] = [
    "/rerank",
    "/v1/rerank",
    "/v1/score",
    "/health",
    "/info",
    "/metrics",
];

/// Texts a request scored, for the metrics.
#[derive(Clone, Copy)]
struct TextCount(usize);

/// Counts every answer, times it, and answers 503 once shutdown has begun.
async fn observe(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let endpoint = ENDPOINTS
        .into_iter()
        .find(|&known| known == request.uri().path())
        .unwrap_or("other");
    let response = if app.shutting_down.load(Ordering::SeqCst) {
        ApiError::shutting_down().into_response()
    } else {
        next.run(request).await
    };
    let error = response.extensions().get::<ErrorCode>().map(|code| code.0);
    let texts = response.extensions().get::<TextCount>().map_or(0, |n| n.0);
    app.metrics
        .observe_request(endpoint, error, started.elapsed().as_secs_f64(), texts);
    response
}

/// With an API key set, every endpoint but `/health` wants `Authorization: Bearer <key>`,
/// compared in constant time.
async fn authorize(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    if let Some(key) = &app.options.api_key
        && request.uri().path() != "/health"
        && request.method() != Method::OPTIONS
    {
        let given = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(given.as_bytes().ct_eq(key.as_bytes())) {
            return ApiError::unauthorized().into_response();
        }
    }
    next.run(request).await
}

/// A JSON body, with the body limit's and the parser's errors as API errors.
fn parse<T: DeserializeOwned>(
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<T, ApiError> {
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("the request body is larger than the server's limit")
        } else {
            ApiError::invalid(rejection.body_text())
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|error| ApiError::invalid(format!("invalid request body: {error}")))
}

impl App {
    /// 503 until the model is loaded (or for good when it failed to load).
    fn ready(&self) -> std::result::Result<(), ApiError> {
        match self.scorer.state.get() {
            Some(LoadState::Ready(_)) => Ok(()),
            Some(LoadState::Failed(message)) => Err(ApiError::model_failed(message)),
            None => Err(ApiError::loading()),
        }
    }

    /// Queues `work` and waits for its scores, within the timeout.
    async fn score(&self, work: Work) -> std::result::Result<Vec<Vec<f32>>, ApiError> {
        self.ready()?;
        let answer = match self.scorer.submit(work) {
            Ok(answer) => answer,
            Err(SubmitError::Overloaded) => return Err(ApiError::overloaded()),
            Err(SubmitError::Stopped) => return Err(ApiError::shutting_down()),
        };
        match tokio::time::timeout(self.options.timeout, answer).await {
            Ok(Ok(scores)) => Ok(scores?),
            Ok(Err(_)) => Err(ApiError::shutting_down()),
            Err(_) => Err(ApiError::timeout(self.options.timeout.as_secs_f64())),
        }
    }

    /// One query's documents, scored the way `Reranker::rerank` scores them: compute_score
    /// (batched with other requests) up to 20 documents, where it equals iterative inference,
    /// iterative inference past that.
    async fn rank(
        &self,
        query: &str,
        documents: &[String],
    ) -> std::result::Result<Vec<f32>, ApiError> {
        check_limits(
            std::iter::once(query).chain(documents.iter().map(String::as_str)),
            &self.options.limits,
        )?;
        if documents.is_empty() {
            return Err(ApiError::invalid("no documents to rank"));
        }
        let list: Vec<String> = std::iter::once(query.to_owned())
            .chain(documents.iter().cloned())
            .collect();
        let work = if documents.len() <= 20 {
            Work::Lists(vec![list])
        } else {
            Work::Iterative(list)
        };
        let mut scores = self.score(work).await?;
        Ok(scores.pop().unwrap_or_default())
    }
}

/// Indices of `scores` best first (stable: equal scores keep input order).
fn best_first(scores: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    order
}

fn with_texts(response: impl IntoResponse, texts: usize) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(TextCount(texts));
    response
}

async fn tei_rerank(
    State(app): State<Arc<App>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Response, ApiError> {
    let request: TeiRerankRequest = parse(body)?;
    let scores = app.rank(&request.query, &request.texts).await?;
    let mut texts: Vec<Option<String>> = request.texts.into_iter().map(Some).collect();
    let ranks: Vec<TeiRank> = best_first(&scores)
        .into_iter()
        .map(|index| TeiRank {
            index,
            score: if request.raw_scores {
                logit(scores[index])
            } else {
                scores[index]
            },
            text: if request.return_text {
                texts[index].take()
            } else {
                None
            },
        })
        .collect();
    Ok(with_texts(axum::Json(ranks), scores.len() + 1))
}

async fn v1_rerank(
    State(app): State<Arc<App>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Response, ApiError> {
    let request: V1RerankRequest = parse(body)?;
    let documents: Vec<String> = request
        .documents
        .into_iter()
        .map(api::Document::into_text)
        .collect();
    let scores = app.rank(&request.query, &documents).await?;
    let mut documents: Vec<Option<String>> = documents.into_iter().map(Some).collect();
    let results: Vec<V1Result> = best_first(&scores)
        .into_iter()
        .take(request.top_n.unwrap_or(usize::MAX))
        .map(|index| V1Result {
            index,
            relevance_score: scores[index],
            document: if request.return_documents {
                documents[index].take().map(|text| DocumentText { text })
            } else {
                None
            },
        })
        .collect();
    let response = V1RerankResponse {
        model: app.options.model_name.clone(),
        results,
    };
    Ok(with_texts(axum::Json(response), scores.len() + 1))
}

async fn score(
    State(app): State<Arc<App>>,
    body: std::result::Result<Bytes, BytesRejection>,
) -> std::result::Result<Response, ApiError> {
    let request: ScoreRequest = parse(body)?;
    let texts = check_limits(
        request.lists.iter().flatten().map(String::as_str),
        &app.options.limits,
    )?;
    if request.lists.is_empty() {
        return Err(ApiError::invalid("no lists to score"));
    }
    let scores = if request.iterative {
        // Each list through iterative inference, one after another.
        let mut scores = Vec::with_capacity(request.lists.len());
        for list in request.lists {
            scores.extend(app.score(Work::Iterative(list)).await?);
        }
        scores
    } else {
        app.score(Work::Lists(request.lists)).await?
    };
    Ok(with_texts(axum::Json(ScoreResponse { scores }), texts))
}

async fn health(State(app): State<Arc<App>>) -> std::result::Result<Response, ApiError> {
    app.ready()?;
    Ok(axum::Json(serde_json::json!({ "status": "ok" })).into_response())
}

async fn info(State(app): State<Arc<App>>) -> Response {
    let model = match app.scorer.state.get() {
        Some(LoadState::Ready(info)) => serde_json::to_value(info.as_ref()).ok(),
        _ => None,
    };
    let limits = &app.options.limits;
    let batching = &app.options.batching;
    axum::Json(serde_json::json!({
        "name": app.options.model_name,
        "version": env!("CARGO_PKG_VERSION"),
        "ready": model.is_some(),
        "model": model,
        "limits": {
            "max_body_bytes": limits.max_body_bytes,
            "max_texts": limits.max_texts,
            "max_chars": limits.max_chars,
            "max_queue": batching.max_queue,
            "timeout_s": app.options.timeout.as_secs_f64(),
        },
        "batching": {
            "max_wait_ms": batching.max_wait.as_secs_f64() * 1000.0,
            "max_batch_texts": batching.max_batch_texts,
        },
    }))
    .into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    let ready = matches!(app.scorer.state.get(), Some(LoadState::Ready(_)));
    let body = app.metrics.render(app.scorer.queue_depth(), ready);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
