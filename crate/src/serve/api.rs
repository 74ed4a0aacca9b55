//! The request and response bodies of the HTTP API (documented in docs/serve.md), and the
//! checks of a request against the server's limits.

use serde::{Deserialize, Serialize};

use super::Limits;
use super::error::ApiError;

/// `POST /rerank`: text-embeddings-inference's request. Its other fields (`truncate`,
/// `truncation_direction`) are accepted and ignored: texts are always cut at the model's max
/// length, at their end.
#[derive(Debug, Deserialize)]
pub struct TeiRerankRequest {
    pub query: String,
    pub texts: Vec<String>,
    /// Logits instead of scores in (0, 1).
    #[serde(default)]
    pub raw_scores: bool,
    #[serde(default)]
    pub return_text: bool,
}

/// One element of `POST /rerank`'s answer, best first.
#[derive(Debug, Serialize)]
pub struct TeiRank {
    pub index: usize,
    pub score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// `POST /v1/rerank`: the Cohere / Jina request (`model` and other fields are ignored: one model
/// is served).
#[derive(Debug, Deserialize)]
pub struct V1RerankRequest {
    pub query: String,
    pub documents: Vec<Document>,
    #[serde(default)]
    pub top_n: Option<usize>,
    #[serde(default)]
    pub return_documents: bool,
}

/// A document as a string or as `{"text": ...}`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Document {
    Text(String),
    Object { text: String },
}

impl Document {
    pub fn into_text(self) -> String {
        match self {
            Document::Text(text) | Document::Object { text } => text,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct V1RerankResponse {
    pub model: String,
    pub results: Vec<V1Result>,
}

#[derive(Debug, Serialize)]
pub struct V1Result {
    pub index: usize,
    pub relevance_score: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<DocumentText>,
}

#[derive(Debug, Serialize)]
pub struct DocumentText {
    pub text: String,
}

/// `POST /v1/score`: this model's own modes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreRequest {
    /// `[query, passage, ...]` lists.
    pub lists: Vec<Vec<String>>,
    /// Iterative inference (each list on its own) instead of compute_score.
    #[serde(default)]
    pub iterative: bool,
}

#[derive(Debug, Serialize)]
pub struct ScoreResponse {
    /// One score per passage of each list, in input order.
    pub scores: Vec<Vec<f32>>,
}

/// Refuses a request past the server's limits (413) before any work: the number of texts and
/// each text's length in characters.
pub fn check_limits<'a>(
    texts: impl Iterator<Item = &'a str>,
    limits: &Limits,
) -> Result<usize, ApiError> {
    let mut count = 0;
    for text in texts {
        count += 1;
        if count > limits.max_texts {
            return Err(ApiError::too_large(format!(
                "more than {} texts in one request",
                limits.max_texts
            )));
        }
        // Bytes bound characters from above: only a long text pays for the count.
        if text.len() > limits.max_chars && text.chars().count() > limits.max_chars {
            return Err(ApiError::too_large(format!(
                "text {} is longer than {} characters",
                count - 1,
                limits.max_chars
            )));
        }
    }
    Ok(count)
}

/// The logit of a score in (0, 1) (text-embeddings-inference's `raw_scores`).
pub fn logit(score: f32) -> f32 {
    let p = score as f64;
    (p / (1.0 - p)).ln() as f32
}
