//! Every resource a request can take is bounded (docs/serving.md has the table):
//! body bytes, texts and rows per request, text length, time, requests in flight
//! and open connections; memory is bounded through them. The middleware here
//! answers each refusal, and every other error, in the one JSON shape
//! `{"error": "..."}`.

use super::ApiError;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Request limits, each with its `lab serve` flag.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body in bytes, and largest decompressed `.gz` upload
    /// (`--max-body-bytes`; 413 above).
    pub max_body_bytes: usize,
    /// Most texts in one `POST /v1/predict` (`--max-batch`; 413 above).
    pub max_batch: usize,
    /// Most data rows in one `POST /v1/predict/csv` (`--max-rows`; 413 above).
    pub max_rows: usize,
    /// Longest text in bytes, a `texts` item or a row's text field
    /// (`--max-text-bytes`; 413 above).
    pub max_text_bytes: usize,
    /// Longest a request may take, body upload and streamed answer included
    /// (`--request-timeout-secs`; 503 when it has not answered by then).
    pub request_timeout: Duration,
    /// Most `/v1/*` requests being answered at once (`--max-in-flight`; 503 above).
    pub max_in_flight: usize,
    /// Most open connections (`--max-connections`; 503 and closed above).
    pub max_connections: usize,
    /// How long a connection may take to send a request's headers, or sit idle
    /// between requests, or leave an answer unread, before it is closed
    /// (`--idle-timeout-secs`).
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 << 20,
            max_batch: 256,
            max_rows: 100_000,
            max_text_bytes: 100_000,
            request_timeout: Duration::from_secs(60),
            max_in_flight: 32,
            max_connections: 256,
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// Every limit is at least 1.
    ///
    /// # Errors
    /// The first that is 0, named by its flag.
    pub fn check(&self) -> Result<(), String> {
        for (flag, value) in [
            ("--max-body-bytes", self.max_body_bytes as u128),
            ("--max-batch", self.max_batch as u128),
            ("--max-rows", self.max_rows as u128),
            ("--max-text-bytes", self.max_text_bytes as u128),
            (
                "--request-timeout-secs",
                self.request_timeout.as_secs() as u128,
            ),
            ("--max-in-flight", self.max_in_flight as u128),
            ("--max-connections", self.max_connections as u128),
            ("--idle-timeout-secs", self.idle_timeout.as_secs() as u128),
        ] {
            if value == 0 {
                return Err(format!("{flag} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// 503 with `Retry-After` once `gate`'s permits (`--max-in-flight`) are taken; the
/// permit is held until the response is made (a streamed body's rows are bounded
/// by the annotation permits instead).
pub(super) async fn in_flight(
    State(gate): State<Arc<(Semaphore, usize)>>,
    request: Request,
    next: Next,
) -> Response {
    let Ok(_permit) = gate.0.try_acquire() else {
        let max = gate.1;
        let mut response = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "busy: {max} requests are being answered, the limit (--max-in-flight {max}); \
                 retry shortly"
            ),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    };
    next.run(request).await
}

/// 503 when the response (its headers) is not ready within `limit`
/// (`--request-timeout-secs`): a slow upload or a long wait for the model.
pub(super) async fn deadline(
    State(limit): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => timed_out(limit).into_response(),
    }
}

/// The error of a request past `--request-timeout-secs`.
pub(super) fn timed_out(limit: Duration) -> ApiError {
    let secs = limit.as_secs();
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the request took longer than {secs} s, the limit (--request-timeout-secs \
             {secs}); send fewer rows or texts"
        ),
    )
}

/// Every error answered in the JSON shape `{"error": "..."}`, whatever made it
/// (axum's own 405 with an empty body, its plain-text rejections): the status and
/// headers (`Allow`, `WWW-Authenticate`) are kept, the message is the text body or,
/// for an empty one, the status with the allowed methods.
pub(super) async fn json_errors(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Small texts made by axum or hyper; a bound all the same.
    let text = http_body_util::Limited::new(body, 64 << 10)
        .collect()
        .await
        .map(|c| String::from_utf8_lossy(&c.to_bytes()).trim().to_string())
        .unwrap_or_default();
    let message = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = parts
            .headers
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        format!("{path} does not take {method}; it takes {allowed}")
    } else if text.is_empty() {
        let reason = status.canonical_reason().unwrap_or("error");
        format!("{method} {path}: {reason}")
    } else {
        text
    };
    let json = serde_json::json!({ "error": message }).to_string();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(json))
}
