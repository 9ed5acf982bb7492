//! A failed request: its status and the sentence that says why, as JSON for
//! the API (`{"error": "..."}`) and as a small page for a browser.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

/// Why a request failed.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

/// The store said "no such thing": a 404, not a 500.
#[derive(Debug)]
pub struct NotFound(pub String);

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFound {}

/// A request that cannot be answered as asked (a bad tag, a read-only source).
#[derive(Debug)]
pub struct BadRequest(pub StatusCode, pub String);

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.1)
    }
}

impl std::error::Error for BadRequest {}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::NOT_FOUND, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn internal(message: impl Into<String>) -> Failure {
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// The same failure as a page, for a browser's navigation.
    pub fn page(self) -> Response {
        let body = maud::html! {
            (maud::DOCTYPE)
            html lang="en" {
                head { meta charset="utf-8"; title { "lab ui: " (self.status.as_u16()) } }
                body {
                    h1 { (self.status.as_u16()) " " (self.status.canonical_reason().unwrap_or("")) }
                    p.error { (self.message) }
                    p { a href="/" { "All experiments" } }
                }
            }
        };
        (self.status, Html(body.into_string())).into_response()
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        if let Some(nf) = e.downcast_ref::<NotFound>() {
            return Failure::not_found(nf.0.clone());
        }
        if let Some(BadRequest(status, message)) = e.downcast_ref::<BadRequest>() {
            return Failure::new(*status, message.clone());
        }
        // The whole chain: the store's context names the file.
        Failure::internal(format!("{e:#}"))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CACHE_CONTROL,
            "no-store".parse().expect("a header value"),
        );
        (
            self.status,
            headers,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}
