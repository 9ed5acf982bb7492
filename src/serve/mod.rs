//! `lab serve`: a trained model behind an HTTP API (axum) and a self-contained
//! web page. Predictions run on the blocking pool so slow batches never stall
//! the accept loop; every error is a JSON body `{"error": "..."}`. Each request
//! is logged once (method, path, status, latency) at info level through
//! `tracing`; SIGTERM or Ctrl-C stops the server once requests in flight finish.

mod batcher;
mod limits;
mod listen;
mod page;
mod stream;
mod texts;
mod upload;

pub use limits::Limits;

use crate::inference::export::ModelInfo;
use crate::inference::{Prediction, TrainedModel};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower_http::trace::TraceLayer;

/// What the server holds: the model, its description, the optional bearer token.
pub struct Served {
    /// The model answering predictions.
    pub model: TrainedModel,
    /// What `GET /v1/model` answers.
    pub info: ModelInfo,
    /// The bearer token `/v1/*` requires; `None`: open.
    pub token: Option<String>,
    /// Body and batch limits.
    pub limits: Limits,
    /// Threads running the model (0: one per core).
    pub threads: usize,
}

/// Texts one model call takes from requests queued together.
const COALESCE_TEXTS: usize = 64;

struct AppState {
    model: Arc<TrainedModel>,
    batcher: batcher::Batcher,
    info: ModelInfo,
    token: Option<String>,
    limits: Limits,
    /// One permit per compute thread: annotations running at once.
    annotators: Arc<Semaphore>,
}

type Shared = Arc<AppState>;

/// The routes; `/v1/*` need the bearer token when one is set.
pub fn router(served: Served) -> Router {
    let model = Arc::new(served.model);
    let threads = match served.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let state = Arc::new(AppState {
        batcher: batcher::Batcher::start(model.clone(), threads, COALESCE_TEXTS),
        model,
        info: served.info,
        token: served.token,
        limits: served.limits,
        annotators: Arc::new(Semaphore::new(threads)),
    });
    let limits = served.limits;
    let gate = Arc::new((Semaphore::new(limits.max_in_flight), limits.max_in_flight));
    // Layers run outside in: the token first, then the in-flight gate, then the clock.
    let api = Router::new()
        .route("/v1/predict", post(predict))
        .route("/v1/predict/csv", post(upload::predict_csv))
        .route("/v1/model", get(model_info))
        .route_layer(middleware::from_fn_with_state(
            limits.request_timeout,
            limits::deadline,
        ))
        .route_layer(middleware::from_fn_with_state(gate, limits::in_flight))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    let router = Router::new()
        .route("/", get(|| async { Html(page::PAGE) }))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state);
    // Around the whole router, not each route: axum adds a 405's `Allow` header
    // outside route layers, and the JSON message names the allowed methods.
    let router = Router::new()
        .fallback_service(router)
        .layer(middleware::from_fn(limits::json_errors));
    with_access_log(router)
}

/// The request line of the request a response answers, for the access log.
#[derive(Clone)]
struct RequestLine {
    method: axum::http::Method,
    path: String,
}

/// Tag each response with its request's method and path, so the access log
/// line can say them whatever the log format does with spans.
async fn tag_request_line(request: Request, next: Next) -> Response {
    let line = RequestLine {
        method: request.method().clone(),
        path: request.uri().path().to_string(),
    };
    let mut response = next.run(request).await;
    response.extensions_mut().insert(line);
    response
}

/// One info line per request as its response goes out: method, path, status
/// and latency in milliseconds (tower-http's `TraceLayer`).
fn with_access_log(router: Router) -> Router {
    let layer = TraceLayer::new_for_http()
        .on_request(())
        .on_response(
            |response: &Response, latency: Duration, _: &tracing::Span| {
                let (method, path) = match response.extensions().get::<RequestLine>() {
                    Some(line) => (line.method.as_str(), line.path.as_str()),
                    None => ("-", "-"),
                };
                // Milliseconds to one decimal.
                let latency_ms = (latency.as_secs_f64() * 1e4).round() / 10.0;
                let status = response.status().as_u16();
                tracing::info!(%method, %path, status, latency_ms, "request");
            },
        )
        .on_body_chunk(())
        .on_eos(())
        // The response line already says a 5xx; no second line for it.
        .on_failure(());
    router
        .layer(middleware::from_fn(tag_request_line))
        .layer(layer)
}

/// Serve until `shutdown` completes, then stop accepting connections and return
/// once the requests in flight have been answered. Connections are bounded and
/// time out as [`Limits`] says.
///
/// # Errors
/// The listener's I/O errors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    served: Served,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = served.limits;
    listen::run(listener, router(served), limits, shutdown).await
}

/// Completes at the first SIGTERM or Ctrl-C (SIGINT), after logging which;
/// what `lab serve` passes to [`serve`].
pub async fn stop_signal() {
    let ctrl_c = async {
        // Without a handler the signal cannot be awaited; then only SIGTERM stops.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let name = tokio::select! {
        _ = ctrl_c => "interrupt",
        _ = terminate => "SIGTERM",
    };
    tracing::info!("{name}: finishing the requests in flight, then stopping");
}

/// An error answered as `{"error": message}` with its status.
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    fn internal(err: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, format!("{err:#}"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": self.message}))).into_response()
    }
}

async fn authorize(
    State(state): State<Shared>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    if let Some(token) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        // Constant time, so response timing does not reveal how much of a guess matched.
        let matches = given
            .is_some_and(|g| constant_time_eq::constant_time_eq(g.as_bytes(), token.as_bytes()));
        if !matches {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong token: send `Authorization: Bearer TOKEN`",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
            return response;
        }
    }
    next.run(request).await
}

/// The token of an `Authorization: Bearer TOKEN` value: the scheme in any case
/// (RFC 7235), one or more spaces, then the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches(' '))
}

/// The whole body, or 413 when it is larger than the limit.
async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes"),
        )),
        Err(err) => Err(ApiError::bad_request(format!(
            "cannot read the request body: {err}"
        ))),
    }
}

fn prediction_json(p: &Prediction) -> Value {
    let probabilities: Map<String, Value> = p
        .probabilities
        .iter()
        .map(|(c, v)| (c.clone(), json!(v)))
        .collect();
    json!({"label": p.label, "probabilities": probabilities})
}

async fn predict(State(state): State<Shared>, request: Request) -> Result<Response, ApiError> {
    let bytes = read_body(request.into_body(), state.limits.max_body_bytes).await?;
    let texts = texts::parse(&bytes, &state.limits)?;
    let predictions = if texts.is_empty() {
        Vec::new()
    } else {
        state
            .batcher
            .predict(texts)
            .await
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?
    };
    let items: Vec<Value> = predictions.iter().map(prediction_json).collect();
    Ok(Json(json!({"predictions": items})).into_response())
}

async fn model_info(State(state): State<Shared>) -> Json<ModelInfo> {
    Json(state.info.clone())
}
