//! `lab serve`: a trained model behind an HTTP API (axum) and a self-contained
//! web page. Predictions run on the blocking pool so slow batches never stall
//! the accept loop; every error is a JSON body `{"error": "..."}`. Each request
//! is logged once (method, path, status, latency) at info level through
//! `tracing`; SIGTERM or Ctrl-C stops the server once requests in flight finish.

mod batcher;
mod page;

use crate::data::read::Input;
use crate::data::write::Kind;
use crate::inference::annotate::{self, annotate, output_layout, Dialect};
use crate::inference::export::ModelInfo;
use crate::inference::{Prediction, TrainedModel};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tower_http::trace::TraceLayer;

/// Request limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body in bytes (413 above).
    pub max_body_bytes: usize,
    /// Most texts in one `POST /v1/predict` (413 above).
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 << 20,
            max_batch: 256,
        }
    }
}

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
    });
    let api = Router::new()
        .route("/v1/predict", post(predict))
        .route("/v1/predict/csv", post(predict_csv))
        .route("/v1/model", get(model_info))
        .route_layer(middleware::from_fn_with_state(state.clone(), authorize));
    let router = Router::new()
        .route("/", get(|| async { Html(page::PAGE) }))
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .merge(api)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "no such route") })
        .with_state(state);
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
/// once the requests in flight have been answered.
///
/// # Errors
/// The listener's I/O errors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    served: Served,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(served))
        .with_graceful_shutdown(shutdown)
        .await
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
            .and_then(|v| v.strip_prefix("Bearer "));
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

/// Run the model off the async threads.
async fn run_model<T: Send + 'static>(
    state: &Shared,
    job: impl FnOnce(&TrainedModel) -> anyhow::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || job(&state.model))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)
}

#[derive(Deserialize)]
struct PredictRequest {
    texts: Vec<String>,
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
    let body: PredictRequest = serde_json::from_slice(&bytes).map_err(|err| {
        ApiError::bad_request(format!(
            "expected a JSON object {{\"texts\": [\"...\", ...]}}: {err}"
        ))
    })?;
    let max = state.limits.max_batch;
    if body.texts.len() > max {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} texts in one request; at most {max}", body.texts.len()),
        ));
    }
    let texts = body.texts;
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

/// `POST /v1/predict/csv`'s query parameters (multipart parts of the same names win).
#[derive(Deserialize, Default)]
struct CsvQuery {
    /// The text column (default: the served trial's `data.text`).
    column: Option<String>,
    /// One ASCII character or `tab` (default: the upload's kind, else the trial's).
    delimiter: Option<String>,
    /// `rfc4180` or `none`.
    quoting: Option<String>,
    /// A WHATWG encoding label for an upload without a byte-order mark.
    encoding: Option<String>,
}

/// The name an upload is read under (its extension gives the format): the multipart
/// file name, else one from the body's content type, else `upload` with the training
/// file's extension (so the trial's own format and dialect apply).
fn upload_name(content_type: Option<&str>, train_path: &std::path::Path) -> String {
    let mime = content_type
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    let ext = match mime.as_deref() {
        Some("text/csv") => Some("csv"),
        Some("text/tab-separated-values") => Some("tsv"),
        Some("application/x-ndjson" | "application/ndjson" | "application/jsonl") => Some("jsonl"),
        Some("application/json") => Some("json"),
        Some("application/vnd.apache.parquet" | "application/x-parquet") => Some("parquet"),
        _ => Kind::of_name(&train_path.to_string_lossy()).map(Kind::extension),
    };
    match ext {
        Some(ext) => format!("upload.{ext}"),
        None => "upload".into(),
    }
}

/// The upload's bytes and name, and the column and dialect parts of a multipart form.
async fn multipart_upload(
    parts: axum::http::request::Parts,
    bytes: Bytes,
    query: &mut CsvQuery,
) -> Result<(Bytes, Option<String>, Option<String>), ApiError> {
    let request = Request::from_parts(parts, Body::from(bytes));
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;
    let mut file = None;
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?
    {
        let name = field.name().unwrap_or("").to_string();
        let file_name = field.file_name().map(str::to_string);
        let part_type = field.content_type().map(str::to_string);
        let data = field
            .bytes()
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let text = || Some(String::from_utf8_lossy(&data).trim().to_string());
        match name.as_str() {
            "file" => file = Some((data.clone(), file_name, part_type)),
            _ if data.is_empty() => {}
            "column" => query.column = text(),
            "delimiter" => query.delimiter = text(),
            "quoting" => query.quoting = text(),
            "encoding" => query.encoding = text(),
            _ => {}
        }
    }
    file.ok_or_else(|| ApiError::bad_request("multipart body without a `file` part"))
}

/// A data file in (a raw body, or multipart with a `file` part and optional `column`,
/// `delimiter`, `quoting`, `encoding` parts), the same records with prediction
/// columns out, in the upload's format. Read as `lab predict --input` reads a file.
async fn predict_csv(
    State(state): State<Shared>,
    Query(mut query): Query<CsvQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let bytes = read_body(body, state.limits.max_body_bytes).await?;
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let train_path = state.model.config.data.path.clone();
    let (bytes, name) = if content_type
        .as_deref()
        .is_some_and(|v| v.starts_with("multipart/form-data"))
    {
        let (data, file_name, part_type) = multipart_upload(parts, bytes, &mut query).await?;
        // Only the file name's last component: it names the upload in errors.
        let base = file_name
            .as_deref()
            .and_then(|n| n.rsplit(['/', '\\']).next())
            .filter(|n| !n.is_empty())
            .map(str::to_string);
        let name = base.unwrap_or_else(|| upload_name(part_type.as_deref(), &train_path));
        (data, name)
    } else {
        (bytes, upload_name(content_type.as_deref(), &train_path))
    };
    let request = annotate::Request {
        column: query.column,
        label_column: None,
        dialect: Dialect {
            delimiter: query
                .delimiter
                .map(|d| annotate::parse_delimiter(&d))
                .transpose()
                .map_err(ApiError::bad_request)?,
            quoting: query
                .quoting
                .map(|q| annotate::parse_quoting(&q))
                .transpose()
                .map_err(ApiError::bad_request)?,
            encoding: query.encoding,
        },
        column_hint: "the `column` query parameter (or form part)".into(),
        setting_hint: "?{}=",
    };
    let input = Input::Bytes {
        name,
        bytes: bytes.to_vec().into(),
    };
    let (annotated, layout, notes) = run_model(&state, move |m| {
        let mut out = Vec::new();
        let mut chosen = None;
        let annotated = annotate(
            m,
            &input,
            &request,
            |detected| *chosen.insert(output_layout(None, &input, detected)),
            &mut out,
        )?;
        Ok((out, chosen, annotated.notes))
    })
    .await
    .map_err(|e| {
        // Bad input or a missing column is the client's mistake.
        ApiError::bad_request(e.message)
    })?;
    let layout = layout.unwrap_or(crate::data::write::Layout::JsonLines);
    let disposition = format!(
        "attachment; filename=\"predictions.{}\"",
        layout.kind().extension()
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, layout.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        annotated,
    )
        .into_response();
    // What reading changed (bytes replaced, an encoding read): logged and told to the client.
    for note in &notes {
        tracing::warn!("{note}");
        if let Ok(value) = header::HeaderValue::from_str(note) {
            response.headers_mut().append("x-lab-warning", value);
        }
    }
    Ok(response)
}

async fn model_info(State(state): State<Shared>) -> Json<ModelInfo> {
    Json(state.info.clone())
}
