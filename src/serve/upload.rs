//! `POST /v1/predict/csv`: a data file in, the same records with prediction columns
//! out, streamed as they are predicted (`inference::annotate` reads the upload twice:
//! once to check it, once to predict it a batch at a time). Bounded by
//! `--max-body-bytes` (compressed and decompressed), `--max-rows`,
//! `--max-text-bytes` and `--request-timeout-secs`; at most one annotation per
//! compute thread runs at once, the others wait.

use super::{read_body, stream, ApiError, Shared};
use crate::data::read::Input;
use crate::data::write::Kind;
use crate::inference::annotate::{self, annotate, output_layout, Dialect, TooLarge};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::io::Read;
use std::time::Instant;

/// `POST /v1/predict/csv`'s query parameters (multipart parts of the same names win).
#[derive(Deserialize, Default)]
pub(super) struct CsvQuery {
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

/// A `.gz` upload decompressed (at most `limit` bytes) and named without `.gz`;
/// any other upload as it is.
fn gunzip(bytes: Bytes, name: String, limit: usize) -> Result<(Bytes, String), ApiError> {
    let Some(stem) = name
        .to_ascii_lowercase()
        .strip_suffix(".gz")
        .map(|s| name[..s.len()].to_string())
    else {
        return Ok((bytes, name));
    };
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&bytes[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("{name}: not a readable gzip file: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{name}: more than {limit} bytes once decompressed, the limit \
                 (--max-body-bytes {limit})"
            ),
        ));
    }
    Ok((out.into(), stem))
}

/// The upload's bytes and the name it is read under (see [`upload_name`]).
async fn upload(
    state: &Shared,
    request: Request,
    query: &mut CsvQuery,
) -> Result<(Bytes, String), ApiError> {
    let (parts, body) = request.into_parts();
    let limit = state.limits.max_body_bytes;
    let bytes = read_body(body, limit).await?;
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
        let (data, file_name, part_type) = multipart_upload(parts, bytes, query).await?;
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
    gunzip(bytes, name, limit)
}

/// The annotation request for `query`, the server's limits applied.
fn annotate_request(state: &Shared, query: CsvQuery) -> Result<annotate::Request, ApiError> {
    Ok(annotate::Request {
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
        limits: annotate::Limits {
            max_rows: Some(state.limits.max_rows),
            max_text_bytes: Some(state.limits.max_text_bytes),
        },
    })
}

/// A data file in (a raw body, or multipart with a `file` part and optional `column`,
/// `delimiter`, `quoting`, `encoding` parts), the same records with prediction
/// columns out, in the upload's format, streamed as rows are predicted. Read as
/// `lab predict --input` reads a file; a bad row or a limit is answered (400, 413)
/// before the first byte of the answer.
pub(super) async fn predict_csv(
    State(state): State<Shared>,
    Query(mut query): Query<CsvQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let (bytes, name) = upload(&state, request, &mut query).await?;
    let request = annotate_request(&state, query)?;
    let input = Input::Bytes {
        name,
        bytes: Vec::from(bytes).into(),
    };
    // One annotation per compute thread; the rest wait (within the request's time).
    let permit = state
        .annotators
        .clone()
        .acquire_owned()
        .await
        .map_err(ApiError::internal)?;
    let limit = state.limits.request_timeout;
    let (mut writer, body) = stream::channel(started + limit, limit);
    let (checked, checked_rx) = tokio::sync::oneshot::channel();
    let model = state.model.clone();
    let job = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let result = annotate(
            &model,
            &input,
            &request,
            |scanned| {
                let layout = output_layout(None, &input, &scanned.detected);
                let _ = checked.send((layout, scanned.notes.clone()));
                layout
            },
            &mut writer,
        );
        let outcome = result.as_ref().map(|_| ()).map_err(|e| format!("{e:#}"));
        if let Err(reason) = &outcome {
            tracing::warn!("{}: {reason}", input.name());
        }
        writer.finish(outcome);
        result.map(|_| ())
    });
    let Ok((layout, notes)) = checked_rx.await else {
        // The job ended before writing anything: the upload was refused.
        let err = match job.await.map_err(ApiError::internal)? {
            Ok(()) => return Err(ApiError::internal("the annotation wrote no answer")),
            Err(err) => err,
        };
        return Err(match err.downcast_ref::<TooLarge>() {
            Some(too_large) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, too_large.0.clone()),
            // Bad input or a missing column is the client's mistake.
            None => ApiError::bad_request(format!("{err:#}")),
        });
    };
    let disposition = format!(
        "attachment; filename=\"predictions.{}\"",
        layout.kind().extension()
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, layout.content_type().to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        Body::new(body),
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
