//! The optional token: `Authorization: Bearer T` (curl), or a cookie a browser
//! gets by opening any page with `?token=T` once.

use super::{Failure, Shared};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use constant_time_eq::constant_time_eq;

const COOKIE: &str = "lab_ui_token";

/// Lets a request through when no token is set or it carries the token.
pub async fn check(State(ui): State<Shared>, request: Request, next: Next) -> Response {
    let Some(token) = ui.token.as_deref() else {
        return next.run(request).await;
    };
    let same = |given: &str| constant_time_eq(given.as_bytes(), token.as_bytes());
    let headers = request.headers();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(same);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .any(same);
    let query = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("token="))
        .any(same);
    if !(bearer || cookie || query) {
        return Failure::new(
            StatusCode::UNAUTHORIZED,
            "this lab ui needs its token: open /?token=TOKEN once, or send Authorization: Bearer TOKEN",
        )
        .into_response();
    }
    let mut response = next.run(request).await;
    if query && !cookie {
        let value = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}
