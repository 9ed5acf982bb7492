//! `POST /v1/predict`'s body, `{"texts": ["...", ...]}`, read with the limits
//! checked while the list is read: a body of a million empty strings is refused at
//! the first one over `--max-batch`, not after all of them were allocated.

use super::{ApiError, Limits};
use axum::http::StatusCode;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;

/// The texts of a request body.
///
/// # Errors
/// 413 past `--max-batch` texts or `--max-text-bytes` in one text (naming the
/// flag); 400 for anything but a JSON object with a `texts` list of strings.
pub(super) fn parse(bytes: &[u8], limits: &Limits) -> Result<Vec<String>, ApiError> {
    let too_large = RefCell::new(None);
    let seed = Body {
        limits,
        too_large: &too_large,
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = seed.deserialize(&mut de).and_then(|texts| {
        de.end()?;
        Ok(texts)
    });
    match (parsed, too_large.into_inner()) {
        (_, Some(message)) => Err(ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)),
        (Ok(texts), None) => Ok(texts),
        (Err(err), None) => Err(ApiError::bad_request(format!(
            "expected a JSON object {{\"texts\": [\"...\", ...]}}: {err}"
        ))),
    }
}

/// The object; keys other than `texts` are ignored.
struct Body<'a> {
    limits: &'a Limits,
    /// Set when a limit stopped the reading (the 413's message).
    too_large: &'a RefCell<Option<String>>,
}

/// The `texts` list.
struct Texts<'a>(&'a Body<'a>);

impl<'de> DeserializeSeed<'de> for Body<'_> {
    type Value = Vec<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Body<'_> {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a `texts` list")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut texts = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "texts" {
                if texts.is_some() {
                    return Err(A::Error::duplicate_field("texts"));
                }
                texts = Some(map.next_value_seed(Texts(&self))?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        texts.ok_or_else(|| A::Error::missing_field("texts"))
    }
}

impl<'de> DeserializeSeed<'de> for Texts<'_> {
    type Value = Vec<String>;
    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Texts<'_> {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("`texts`: a list of strings")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Limits {
            max_batch,
            max_text_bytes,
            ..
        } = *self.0.limits;
        let mut texts = Vec::new();
        let stop = |message: String| {
            *self.0.too_large.borrow_mut() = Some(message.clone());
            A::Error::custom(message)
        };
        while let Some(text) = seq.next_element::<String>()? {
            if texts.len() == max_batch {
                return Err(stop(format!(
                    "more than {max_batch} texts in one request; at most {max_batch} (the \
                     limit, --max-batch {max_batch})"
                )));
            }
            if text.len() > max_text_bytes {
                return Err(stop(format!(
                    "texts[{}] has {} bytes; at most {max_text_bytes} (the limit, \
                     --max-text-bytes {max_text_bytes})",
                    texts.len(),
                    text.len()
                )));
            }
            texts.push(text);
        }
        Ok(texts)
    }
}
