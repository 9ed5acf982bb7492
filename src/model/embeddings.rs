//! Pretrained word vectors for the embedding layer: GloVe's text format, a `.npy`
//! matrix with a word list, or word2vec's binary format. Only the vocabulary's
//! words are kept; the others get random vectors of the same scale.
//!
//! Case follows the preprocessing: with `lowercase`, a file word matches the
//! vocabulary word it lowercases to (an exactly matching entry wins over e.g.
//! `The` for `the`); without it, a vocabulary word takes its exact entry, else the
//! entry of its lowercase form.

use super::init::standard_normal_pair;
use super::npy;
use crate::data::{PAD_ID, UNK_ID};
use crate::spec::{EmbeddingFormat, EmbeddingsSection};
use anyhow::{bail, Context, Result};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// The embedding matrix built from a vectors file for one vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub struct Pretrained {
    /// (vocabulary size, dim), row-major: the file's vector for every word found,
    /// N(0, std²) for the others and for `<unk>`, zeros for `<pad>`.
    pub matrix: Vec<f32>,
    /// Width of one vector, as the file gives it.
    pub dim: usize,
    /// Vocabulary words (`<pad>` and `<unk>` excluded) found in the file.
    pub hits: usize,
    /// Vocabulary words looked up (`<pad>` and `<unk>` excluded).
    pub words: usize,
    /// Standard deviation of the loaded vectors' values (the random rows' scale).
    pub std: f64,
}

impl Pretrained {
    /// Share of the vocabulary's words that have a pretrained vector.
    pub fn hit_rate(&self) -> f64 {
        if self.words == 0 {
            0.0
        } else {
            self.hits as f64 / self.words as f64
        }
    }
}

/// The vectors file of `e`, resolved against the spec's directory.
pub fn vectors_path(e: &EmbeddingsSection, base_dir: &Path) -> PathBuf {
    base_dir.join(&e.path)
}

/// The vectors' dimension, from the file's header or first line only (cheap: for
/// checking `model.embedding_dim` before anything runs).
pub fn peek_dim(e: &EmbeddingsSection, base_dir: &Path) -> Result<usize> {
    let path = vectors_path(e, base_dir);
    match e.format {
        EmbeddingFormat::GloveText => {
            let mut reader = open(&path)?;
            let mut line = Vec::new();
            let mut n = 0;
            loop {
                line.clear();
                n += 1;
                if reader
                    .read_until(b'\n', &mut line)
                    .with_context(|| at(&path, n))?
                    == 0
                {
                    bail!("{}: the file has no vectors", path.display());
                }
                let text = String::from_utf8_lossy(&line);
                if text.trim().is_empty() {
                    continue;
                }
                let fields = fields(&text);
                if n == 1 {
                    if let Some((_, dim)) = word2vec_header(&fields) {
                        return Ok(dim);
                    }
                }
                if fields.len() < 2 {
                    bail!(
                        "{}: expected a word followed by its vector's values, found {:?}",
                        at(&path, n),
                        text.trim()
                    );
                }
                return Ok(fields.len() - 1);
            }
        }
        EmbeddingFormat::NpyVocab => Ok(npy::read_header(&path, &mut open(&path)?)?.cols),
        EmbeddingFormat::Word2vecBin => {
            let mut reader = open(&path)?;
            Ok(read_bin_header(&mut reader, &path)?.1)
        }
    }
}

/// Vectors for the words of `itos` (index = token id; 0 is `<pad>`, 1 `<unk>`)
/// from the file `e` names. Words the file lacks, and `<unk>`, get N(0, std²)
/// vectors drawn from `seed`, where std is that of the loaded values; `<pad>` is
/// zero. Errors name the file and line (the vector's index in binary files).
pub fn load(
    e: &EmbeddingsSection,
    base_dir: &Path,
    itos: &[String],
    lowercase: bool,
    seed: u64,
) -> Result<Pretrained> {
    Ok(read(e, base_dir, itos, lowercase)?.build(seed))
}

/// The vectors the file has for the words of `itos`, before the missing rows are
/// drawn: reading is the slow part and does not depend on the seed. Fails when no
/// word of the vocabulary is in the file.
pub fn read(
    e: &EmbeddingsSection,
    base_dir: &Path,
    itos: &[String],
    lowercase: bool,
) -> Result<Found> {
    let path = vectors_path(e, base_dir);
    let mut table = Table::new(itos, lowercase);
    match e.format {
        EmbeddingFormat::GloveText => read_text(&path, &mut table)?,
        EmbeddingFormat::NpyVocab => {
            let vocab = e
                .vocab
                .as_ref()
                .map(|v| base_dir.join(v))
                .context("format = \"npy+vocab\" needs model.embeddings.vocab")?;
            read_npy(&path, &vocab, &mut table)?
        }
        EmbeddingFormat::Word2vecBin => read_bin(&path, &mut table)?,
    }
    table.finish(&path)
}

/// What a vectors file holds for one vocabulary (see [`read`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    dim: usize,
    /// (vocabulary size, dim), row-major; rows not found are zero.
    rows: Vec<f32>,
    found: Vec<bool>,
    hits: usize,
    words: usize,
    std: f64,
}

impl Found {
    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The embedding matrix: the found rows, N(0, std²) rows drawn from `seed` for
    /// the others (`<unk>` included), zeros for `<pad>`.
    pub fn build(&self, seed: u64) -> Pretrained {
        let mut rows = self.rows.clone();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(2);
        for (i, row) in rows.chunks_exact_mut(self.dim.max(1)).enumerate() {
            if self.found[i] || i as u32 == PAD_ID {
                continue;
            }
            for v in row.iter_mut() {
                // One pair per value, its sine half unused: the draws of a seed stay
                // as they were when this drew one cosine per value.
                let (z, _) = standard_normal_pair(&mut rng);
                *v = (z * self.std) as f32;
            }
        }
        Pretrained {
            matrix: rows,
            dim: self.dim,
            hits: self.hits,
            words: self.words,
            std: self.std,
        }
    }
}

/// Where vectors go: the vocabulary's lookup tables and the rows found so far.
struct Table<'a> {
    itos: &'a [String],
    exact: HashMap<&'a str, usize>,
    lower: HashMap<String, Vec<usize>>,
    lowercase: bool,
    dim: usize,
    rows: Vec<f32>,
    /// 0: none yet, 1: through the lowercase form, 2: exact.
    found: Vec<u8>,
}

impl<'a> Table<'a> {
    fn new(itos: &'a [String], lowercase: bool) -> Self {
        let mut exact = HashMap::new();
        let mut lower: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, w) in itos.iter().enumerate() {
            if i as u32 == PAD_ID || i as u32 == UNK_ID {
                continue;
            }
            exact.entry(w.as_str()).or_insert(i);
            lower.entry(w.to_lowercase()).or_default().push(i);
        }
        Self {
            itos,
            exact,
            lower,
            lowercase,
            dim: 0,
            rows: Vec::new(),
            found: vec![0; itos.len()],
        }
    }

    fn set_dim(&mut self, dim: usize) {
        self.dim = dim;
        self.rows = vec![0.0; self.itos.len() * dim];
    }

    /// The vocabulary rows the file word `word` should fill, with the priority
    /// it gives them.
    fn targets(&self, word: &str) -> Vec<(usize, u8)> {
        let mut out = Vec::new();
        if let Some(&i) = self.exact.get(word) {
            if self.found[i] < 2 {
                out.push((i, 2));
            }
        }
        // Case-preserving vocabularies fall back to lowercase entries only.
        let has_upper = word.chars().any(char::is_uppercase);
        if self.lowercase || !has_upper {
            let key = if has_upper {
                word.to_lowercase()
            } else {
                word.to_string()
            };
            if let Some(rows) = self.lower.get(&key) {
                for &i in rows {
                    if self.found[i] == 0 && !out.iter().any(|&(j, _)| j == i) {
                        out.push((i, 1));
                    }
                }
            }
        }
        out
    }

    fn put(&mut self, row: usize, priority: u8, values: &[f32]) {
        self.rows[row * self.dim..(row + 1) * self.dim].copy_from_slice(values);
        self.found[row] = priority;
    }

    fn finish(mut self, path: &Path) -> Result<Found> {
        // Every id but <pad> and <unk>.
        let words = self.itos.len().saturating_sub(2);
        let found: Vec<bool> = self.found.iter().map(|&f| f > 0).collect();
        let hits = found.iter().filter(|&&f| f).count();
        if hits == 0 {
            bail!(
                "{}: none of the vocabulary's {words} words has a vector in this file \
                 (model.embeddings.path); is it the right file, and does the preprocessing \
                 (stemming, lowercase) keep words as the file spells them?",
                path.display()
            );
        }
        let (mut sum, mut sq, mut n) = (0.0f64, 0.0f64, 0usize);
        for (row, _) in self
            .rows
            .chunks_exact(self.dim)
            .zip(&found)
            .filter(|(_, &f)| f)
        {
            for &v in row {
                sum += v as f64;
                sq += (v as f64) * (v as f64);
                n += 1;
            }
        }
        let mean = sum / n as f64;
        let std = (sq / n as f64 - mean * mean).max(0.0).sqrt();
        Ok(Found {
            dim: self.dim,
            rows: std::mem::take(&mut self.rows),
            found,
            hits,
            words,
            std,
        })
    }
}

/// `file:line` for messages.
fn at(path: &Path, line: usize) -> String {
    format!("{}:{line}", path.display())
}

/// The file, gunzipped when it starts with gzip's magic bytes.
fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let file = crate::data::read::open_regular(path, "the vectors file (model.embeddings.path)")?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let gz = reader.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gz {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::read::MultiGzDecoder::new(reader),
        ))
    } else {
        Box::new(reader)
    })
}

fn fields(line: &str) -> Vec<&str> {
    line.split_ascii_whitespace().collect()
}

/// `count dim` (word2vec's text header), when that is what the fields are.
fn word2vec_header(fields: &[&str]) -> Option<(usize, usize)> {
    match fields {
        [n, d] => Some((n.parse().ok()?, d.parse().ok()?)),
        _ => None,
    }
}

fn parse_values(
    values: &[&str],
    out: &mut Vec<f32>,
    path: &Path,
    line: usize,
    word: &str,
) -> Result<()> {
    out.clear();
    for (k, v) in values.iter().enumerate() {
        match v.parse::<f32>() {
            Ok(x) if x.is_finite() => out.push(x),
            _ => bail!(
                "{}: value {} of `{word}` is {v:?}, not a finite number",
                at(path, line),
                k + 1
            ),
        }
    }
    Ok(())
}

/// GloVe text: `word v1 ... vd` per line, separated by spaces; the dimension is
/// the first line's (or a word2vec text header's) and every line must have it.
fn read_text(path: &Path, table: &mut Table) -> Result<()> {
    let mut reader = open(path)?;
    let mut buf = Vec::new();
    let mut values = Vec::new();
    let mut header: Option<usize> = None;
    let (mut line, mut vectors) = (0usize, 0usize);
    loop {
        buf.clear();
        line += 1;
        if reader
            .read_until(b'\n', &mut buf)
            .with_context(|| format!("reading {}", at(path, line)))?
            == 0
        {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        let f = fields(&text);
        if f.is_empty() {
            continue;
        }
        if line == 1 {
            if let Some((count, dim)) = word2vec_header(&f) {
                header = Some(count);
                table.set_dim(dim);
                continue;
            }
        }
        if table.dim == 0 {
            if f.len() < 2 {
                bail!(
                    "{}: expected a word followed by its vector's values, found {:?}",
                    at(path, line),
                    text.trim()
                );
            }
            table.set_dim(f.len() - 1);
        }
        if f.len() != table.dim + 1 {
            bail!(
                "{}: expected a word and {} values (as on the first line), found {} value(s) \
                 after `{}`; every line must have the same dimension",
                at(path, line),
                table.dim,
                f.len() - 1,
                f[0]
            );
        }
        vectors += 1;
        let targets = table.targets(f[0]);
        if targets.is_empty() {
            continue;
        }
        parse_values(&f[1..], &mut values, path, line, f[0])?;
        for (row, priority) in targets {
            table.put(row, priority, &values);
        }
    }
    if table.dim == 0 {
        bail!("{}: the file has no vectors", path.display());
    }
    if let Some(count) = header.filter(|&c| c != vectors) {
        bail!(
            "{}: the header line says {count} vectors, the file has {vectors}",
            path.display()
        );
    }
    Ok(())
}

/// A `.npy` matrix (row i is the vector of the word list's line i) and its words.
fn read_npy(path: &Path, vocab: &Path, table: &mut Table) -> Result<()> {
    let mut reader = open(path)?;
    let header = npy::read_header(path, &mut reader)?;
    crate::data::read::check_regular(vocab)
        .map_err(|why| anyhow::anyhow!("model.embeddings.vocab: {why}"))?;
    let words = std::fs::read_to_string(vocab).with_context(|| {
        format!(
            "cannot read the word list {} (model.embeddings.vocab)",
            vocab.display()
        )
    })?;
    let words: Vec<&str> = words.lines().collect();
    if words.len() != header.rows {
        bail!(
            "{} has {} lines but {} has {} rows; line i of the word list names row i",
            vocab.display(),
            words.len(),
            path.display(),
            header.rows
        );
    }
    let cols = header.cols;
    let matrix = npy::read_matrix(path, header, &mut reader)?;
    table.set_dim(cols);
    let mut values = Vec::with_capacity(cols);
    for (i, word) in words.iter().enumerate() {
        let word = word.trim();
        if word.is_empty() {
            bail!(
                "{}: empty word (line {} names row {i})",
                at(vocab, i + 1),
                i + 1
            );
        }
        let targets = table.targets(word);
        if targets.is_empty() {
            continue;
        }
        values.clear();
        values.extend((0..cols).map(|j| matrix.get(i, j)));
        if let Some(j) = values.iter().position(|v| !v.is_finite()) {
            bail!(
                "{}: row {i} (`{word}`, {}) has a non-finite value in column {j}",
                path.display(),
                at(vocab, i + 1)
            );
        }
        for (row, priority) in targets {
            table.put(row, priority, &values);
        }
    }
    Ok(())
}

/// word2vec's `count dim` header line.
fn read_bin_header(reader: &mut dyn BufRead, path: &Path) -> Result<(usize, usize)> {
    let mut line = Vec::new();
    reader.read_until(b'\n', &mut line)?;
    let text = String::from_utf8_lossy(&line);
    match word2vec_header(&fields(&text)) {
        Some((n, d)) if d > 0 => Ok((n, d)),
        _ => bail!(
            "{}: expected word2vec's binary header `count dim` on the first line, found {:?}",
            at(path, 1),
            text.trim()
        ),
    }
}

/// word2vec binary: the header, then per vector the word, a space and `dim`
/// little-endian float32 values (a newline may follow).
fn read_bin(path: &Path, table: &mut Table) -> Result<()> {
    let mut reader = open(path)?;
    let (count, dim) = read_bin_header(&mut reader, path)?;
    table.set_dim(dim);
    let mut word = Vec::new();
    let mut raw = vec![0u8; dim * 4];
    let mut values = Vec::with_capacity(dim);
    for k in 1..=count {
        word.clear();
        // Skip the newline some writers put after each vector.
        loop {
            let buf = reader.fill_buf()?;
            match buf.first() {
                Some(b'\n' | b'\r' | b' ') => reader.consume(1),
                _ => break,
            }
        }
        reader.read_until(b' ', &mut word)?;
        if word.last() != Some(&b' ') {
            bail!(
                "{}: the file ends in vector {k} of {count} (the header promises {count})",
                path.display()
            );
        }
        word.pop();
        let w = String::from_utf8_lossy(&word).into_owned();
        reader.read_exact(&mut raw).with_context(|| {
            format!(
                "{}: the file ends inside vector {k} of {count} (`{w}`)",
                path.display()
            )
        })?;
        let targets = table.targets(&w);
        if targets.is_empty() {
            continue;
        }
        values.clear();
        values.extend(
            raw.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        );
        if values.iter().any(|v| !v.is_finite()) {
            bail!(
                "{}: vector {k} (`{w}`) has a non-finite value",
                path.display()
            );
        }
        for (row, priority) in targets {
            table.put(row, priority, &values);
        }
    }
    Ok(())
}
