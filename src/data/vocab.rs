//! The vocabulary (built from the training split only) and encoding of tokens to ids.

use super::clean::Preprocessor;
use super::FastMap;
use serde::{Deserialize, Serialize};

/// The id of `<pad>`, filling rows shorter than their batch.
pub const PAD_ID: u32 = 0;
/// The id of `<unk>`, for a word outside the vocabulary.
pub const UNK_ID: u32 = 1;
const PAD: &str = "<pad>";
const UNK: &str = "<unk>";

/// Token <-> id map built from the training split. Id 0 is `<pad>`, 1 is `<unk>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    /// Id -> token; the position is the id.
    pub itos: Vec<String>,
}

impl Vocab {
    /// Count tokens over `docs`, keep those seen at least `min_freq` times, most frequent
    /// first (ties by token), at most `max_vocab` entries including `<pad>` and `<unk>`.
    pub fn build<'a, D>(docs: D, min_freq: usize, max_vocab: usize) -> Vocab
    where
        D: IntoIterator<Item = &'a [String]>,
    {
        let mut counts: FastMap<&str, u64> = FastMap::default();
        for doc in docs {
            for t in doc {
                *counts.entry(t.as_str()).or_insert(0) += 1;
            }
        }
        Vocab::select(counts, min_freq, max_vocab)
    }

    /// [`Vocab::build`] from token counts already made (e.g. merged across chunks).
    pub fn from_counts<S: AsRef<str>>(
        counts: impl IntoIterator<Item = (S, u64)>,
        min_freq: usize,
        max_vocab: usize,
    ) -> Vocab {
        Vocab::select(counts, min_freq, max_vocab)
    }

    fn select<S: AsRef<str>>(
        counts: impl IntoIterator<Item = (S, u64)>,
        min_freq: usize,
        max_vocab: usize,
    ) -> Vocab {
        let mut kept: Vec<(S, u64)> = counts
            .into_iter()
            .filter(|(t, c)| *c >= min_freq.max(1) as u64 && t.as_ref() != PAD && t.as_ref() != UNK)
            .collect();
        kept.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_ref().cmp(b.0.as_ref())));
        kept.truncate(max_vocab.saturating_sub(2));
        let mut itos = vec![PAD.to_string(), UNK.to_string()];
        itos.extend(kept.into_iter().map(|(t, _)| t.as_ref().to_string()));
        Vocab { itos }
    }

    /// Entries, `<pad>` and `<unk>` included.
    pub fn len(&self) -> usize {
        self.itos.len()
    }
    /// Whether there are no entries (never, for a built vocabulary).
    pub fn is_empty(&self) -> bool {
        self.itos.is_empty()
    }

    /// Ids for tokens, truncated to `max_len`; never empty (an empty input gives `[UNK_ID]`).
    /// Builds a lookup table per call: for many texts use [`Vocab::encoder`].
    pub fn encode(&self, tokens: &[String], max_len: usize) -> Vec<u32> {
        self.encoder().encode(tokens, max_len)
    }

    /// Clean, tokenise and encode one text (e.g. for prediction).
    /// Builds a lookup table per call: for many texts use [`Vocab::encoder`].
    pub fn encode_text(&self, pre: &Preprocessor, text: &str, max_len: usize) -> Vec<u32> {
        self.encoder().encode_text(pre, text, max_len)
    }

    /// A token -> id lookup table, for encoding many texts (build it once: it
    /// hashes every word of the vocabulary).
    pub fn encoder(&self) -> Encoder {
        Encoder {
            stoi: self
                .itos
                .iter()
                .enumerate()
                // A text token must never encode to padding.
                .filter(|&(i, _)| i as u32 != PAD_ID)
                .map(|(i, t)| (t.clone(), i as u32))
                .collect(),
        }
    }
}

/// Token -> id lookup made from a [`Vocab`].
pub struct Encoder {
    stoi: FastMap<String, u32>,
}

impl Encoder {
    /// The id of one token (`UNK_ID` when it is not in the vocabulary).
    pub fn id(&self, token: &str) -> u32 {
        self.stoi.get(token).copied().unwrap_or(UNK_ID)
    }

    /// Same contract as [`Vocab::encode`]: keeps the first `max_len` tokens, unknown -> `UNK_ID`,
    /// never empty.
    pub fn encode(&self, tokens: &[String], max_len: usize) -> Vec<u32> {
        let mut ids: Vec<u32> = tokens
            .iter()
            .take(max_len.max(1))
            .map(|t| self.stoi.get(t.as_str()).copied().unwrap_or(UNK_ID))
            .collect();
        if ids.is_empty() {
            ids.push(UNK_ID);
        }
        ids
    }

    /// Clean, tokenise and encode `text`: the same ids as `encode(&pre.tokens(text),
    /// max_len)`, but tokenising stops after the first `max_len` tokens.
    pub fn encode_text(&self, pre: &Preprocessor, text: &str, max_len: usize) -> Vec<u32> {
        let max_len = max_len.max(1);
        let mut ids = Vec::new();
        pre.each_token(text, |t| {
            ids.push(self.stoi.get(t).copied().unwrap_or(UNK_ID));
            ids.len() < max_len
        });
        if ids.is_empty() {
            ids.push(UNK_ID);
        }
        ids
    }
}
