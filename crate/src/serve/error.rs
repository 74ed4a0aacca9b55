//! Errors as HTTP answers: `{"error": message, "code": CODE}` with the status the code calls
//! for. The crate's own codes keep their meaning (`INPUT_INVALID` is 400, ...); the server adds
//! the codes of its limits and states.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::Error;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds for a `Retry-After` header (503 answers).
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    code: &'a str,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INPUT_INVALID", message)
    }

    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "INPUT_TOO_LARGE", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "a valid `Authorization: Bearer <key>` header is required",
        )
    }

    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "no such endpoint")
    }

    fn unavailable(code: &'static str, message: impl Into<String>, retry_after: u32) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    pub fn loading() -> Self {
        Self::unavailable("LOADING", "the model is still loading", 5)
    }

    pub fn overloaded() -> Self {
        Self::unavailable("OVERLOADED", "the request queue is full", 1)
    }

    pub fn shutting_down() -> Self {
        Self::unavailable("SHUTTING_DOWN", "the server is shutting down", 5)
    }

    pub fn timeout(seconds: f64) -> Self {
        Self::unavailable(
            "TIMEOUT",
            format!("the request was not scored within {seconds} s"),
            1,
        )
    }

    pub fn model_failed(message: &str) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "MODEL_UNAVAILABLE",
            format!("the model failed to load: {message}"),
        )
    }
}

impl From<Error> for ApiError {
    /// The engine's errors: bad input is the caller's (400), the rest is the server's (500).
    fn from(error: Error) -> Self {
        let code = error.code();
        let status = match code {
            "INPUT_INVALID" => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, code, error.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: &self.message,
            code: self.code,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // The metrics layer counts errors by code.
        response.extensions_mut().insert(ErrorCode(self.code));
        response
    }
}

/// The code of an error answer, for the metrics.
#[derive(Clone, Copy, Debug)]
pub struct ErrorCode(pub &'static str);
