//! `data.path = "hf://OWNER/NAME[@REVISION][/SELECTION]"`: a Hugging Face dataset's
//! Parquet files, read from the local Hugging Face cache (the layout `hf-hub` and the
//! Python `huggingface_hub` share: `datasets--OWNER--NAME/refs/REVISION` holds a commit,
//! `snapshots/COMMIT/...` the files). Builds with the `hf-download` feature download a
//! dataset missing from the cache; others say where they looked.
//!
//! The cache is `HF_HUB_CACHE`, else `HF_HOME/hub`, else `XDG_CACHE_HOME/huggingface/hub`,
//! else `~/.cache/huggingface/hub`. `REVISION` (default `main`) is a branch, tag or
//! commit; a `/` in it is written `%2F` (`@refs%2Fconvert%2Fparquet`). `SELECTION` is a
//! split name (`train`, the default), a file or folder of the snapshot, or a glob
//! (`data/train-*.parquet`; `*` and `?` stay within a folder, `**` crosses folders).
//! A file belongs to split `S` when a folder on its path is named `S` or its name has
//! `S` as a word (`train-00000-of-00002.parquet`, `imdb-train.parquet`); a dataset
//! whose files name no split is all `train`. The files are read in path order.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// The prefix of a Hugging Face data path.
const PREFIX: &str = "hf://";

/// Words that name a split in a file's path.
const SPLITS: &[&str] = &["train", "test", "validation", "valid", "dev", "eval"];

/// A parsed `hf://` path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HfPath {
    /// `OWNER/NAME`.
    pub repo: String,
    /// The branch, tag or commit (`main` when not given).
    pub revision: String,
    /// The split, file, folder or glob after the revision, if any.
    pub select: Option<String>,
}

/// `path` is a Hugging Face data path (`hf://...`).
pub fn is_hf(path: &Path) -> bool {
    path.to_str().is_some_and(|s| s.starts_with(PREFIX))
}

/// Parse `hf://[datasets/]OWNER/NAME[@REVISION][/SELECTION]`.
///
/// # Errors
/// Not of that form (no owner or name, an empty revision or one with `..`).
pub fn parse(spec: &str) -> anyhow::Result<HfPath> {
    let usage = || {
        format!(
            "{spec}: expected hf://OWNER/NAME, optionally with @REVISION and a split, \
             file or glob (hf://OWNER/NAME@main/train)"
        )
    };
    let rest = spec.strip_prefix(PREFIX).with_context(usage)?;
    let rest = rest.strip_prefix("datasets/").unwrap_or(rest);
    let mut parts = rest.splitn(3, '/');
    let owner = parts.next().unwrap_or_default();
    let name_rev = parts.next().unwrap_or_default();
    let select = parts.next().filter(|s| !s.is_empty()).map(String::from);
    let (name, revision) = match name_rev.split_once('@') {
        Some((name, rev)) => (name, rev.replace("%2F", "/").replace("%2f", "/")),
        None => (name_rev, "main".to_string()),
    };
    let bad = |s: &str| s.is_empty() || s.contains('@') || s == "." || s == "..";
    if bad(owner) || bad(name) || revision.is_empty() || revision.split('/').any(|p| p == "..") {
        bail!(usage());
    }
    Ok(HfPath {
        repo: format!("{owner}/{name}"),
        revision,
        select,
    })
}

/// The local Hugging Face hub cache directory.
///
/// # Errors
/// None of `HF_HUB_CACHE`, `HF_HOME`, `XDG_CACHE_HOME`, `HOME` is set.
pub fn cache_dir() -> anyhow::Result<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("HF_HUB_CACHE") {
        return Ok(dir);
    }
    if let Some(home) = var("HF_HOME") {
        return Ok(home.join("hub"));
    }
    if let Some(xdg) = var("XDG_CACHE_HOME") {
        return Ok(xdg.join("huggingface").join("hub"));
    }
    let home = var("HOME").context(
        "cannot find the Hugging Face cache: set HF_HUB_CACHE (or HF_HOME) to its directory",
    )?;
    Ok(home.join(".cache").join("huggingface").join("hub"))
}

/// The Parquet files of the `hf://` path `path`, in reading order.
///
/// # Errors
/// The path is malformed; the dataset or revision is not in the cache (and this build
/// cannot download it); no Parquet file matches the selection.
pub fn resolve(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let spec = path.to_str().context("hf:// path is not valid UTF-8")?;
    let hf = parse(spec)?;
    let cache = cache_dir()?;
    let repo = hf_hub::Repo::with_revision(
        hf.repo.clone(),
        hf_hub::RepoType::Dataset,
        hf.revision.clone(),
    );
    let folder = cache.join(repo.folder_name());
    let Some(snapshot) = snapshot(&folder, &hf.revision) else {
        return download(spec, &hf, &cache, &folder);
    };
    let all = parquet_files(&snapshot)
        .with_context(|| format!("{spec}: cannot list {}", snapshot.display()))?;
    let chosen = choose(
        spec,
        &all,
        hf.select.as_deref(),
        &snapshot.display().to_string(),
    )?;
    Ok(chosen.into_iter().map(|f| snapshot.join(f)).collect())
}

/// The snapshot folder of `revision` (a ref naming a commit, or a commit).
fn snapshot(folder: &Path, revision: &str) -> Option<PathBuf> {
    let commit = std::fs::read_to_string(folder.join("refs").join(revision))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| revision.to_string());
    let dir = folder.join("snapshots").join(commit);
    dir.is_dir().then_some(dir)
}

/// Every `.parquet` file under `dir` (symbolic links followed), relative with `/`, sorted.
fn parquet_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut todo = vec![(dir.to_path_buf(), String::new())];
    while let Some((path, rel)) = todo.pop() {
        for entry in std::fs::read_dir(&path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let rel = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let meta = std::fs::metadata(entry.path())?;
            if meta.is_dir() {
                todo.push((entry.path(), rel));
            } else if name.to_ascii_lowercase().ends_with(".parquet") {
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The files of `all` that `select` names (see the module docs); `place` names where
/// they were listed from in errors.
fn choose(
    spec: &str,
    all: &[String],
    select: Option<&str>,
    place: &str,
) -> anyhow::Result<Vec<String>> {
    let pick = |f: &dyn Fn(&str) -> bool| -> Vec<String> {
        all.iter().filter(|p| f(p)).cloned().collect()
    };
    let chosen = match select.map(|s| s.trim_end_matches('/')) {
        None => {
            let train = pick(&|p| in_split(p, "train"));
            if train.is_empty() && !all.iter().any(|p| SPLITS.iter().any(|s| in_split(p, s))) {
                all.to_vec()
            } else {
                train
            }
        }
        Some(s) if s.contains(['*', '?']) => {
            let re = glob(s)?;
            pick(&|p| re.is_match(p))
        }
        Some(s) if all.iter().any(|p| p == s) => vec![s.to_string()],
        Some(s) if all.iter().any(|p| p.starts_with(&format!("{s}/"))) => {
            pick(&|p| p.starts_with(&format!("{s}/")))
        }
        Some(s) if !s.contains('/') => pick(&|p| in_split(p, s)),
        Some(_) => Vec::new(),
    };
    if all.is_empty() {
        bail!(
            "{spec}: {place} holds no .parquet files (lab reads a dataset's Parquet \
             files; the hub's `refs/convert/parquet` revision has them for most datasets: \
             @refs%2Fconvert%2Fparquet)"
        );
    }
    if chosen.is_empty() {
        let shown: Vec<&str> = all.iter().take(20).map(String::as_str).collect();
        bail!(
            "{spec}: no Parquet file of {place} is {}; it has: {}{}",
            select.map_or("in split \"train\"".to_string(), |s| format!(
                "named by {s:?}"
            )),
            shown.join(", "),
            if all.len() > shown.len() { ", ..." } else { "" }
        );
    }
    Ok(chosen)
}

/// `path` belongs to `split`: a folder is named so, or the file name has it as a word.
fn in_split(path: &str, split: &str) -> bool {
    let mut parts: Vec<&str> = path.split('/').collect();
    let file = parts.pop().unwrap_or_default();
    let stem = file.strip_suffix(".parquet").unwrap_or(file);
    parts.iter().any(|d| d.eq_ignore_ascii_case(split))
        || stem
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|w| w.eq_ignore_ascii_case(split))
}

/// A glob (`*`, `?` within a folder, `**` across folders) as an anchored regex.
fn glob(pattern: &str) -> anyhow::Result<regex::Regex> {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                    re.push_str("(?:.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).with_context(|| format!("bad file pattern {pattern:?}"))
}

/// Not in the cache and no way to download: say where lab looked.
#[cfg(not(feature = "hf-download"))]
fn download(spec: &str, hf: &HfPath, cache: &Path, folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    bail!(
        "{spec}: dataset {repo} (revision {rev}) is not in the Hugging Face cache {cache} \
         (looked for {folder}/refs/{rev} and its snapshot); this build of lab does not \
         download (cargo feature `hf-download`): fetch it where a network allows, e.g. \
         `huggingface-cli download --repo-type dataset {repo} --revision {rev}`, or set \
         HF_HUB_CACHE (or HF_HOME) to a cache that has it",
        repo = hf.repo,
        rev = hf.revision,
        cache = cache.display(),
        folder = folder.display(),
    )
}

/// Not in the cache: download the selected Parquet files into it.
#[cfg(feature = "hf-download")]
fn download(spec: &str, hf: &HfPath, cache: &Path, folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    use hf_hub::api::sync::ApiBuilder;
    let unreachable = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "{spec}: dataset {} (revision {}) is not in the Hugging Face cache {} \
             (looked for {}) and cannot be downloaded: {e}",
            hf.repo,
            hf.revision,
            cache.display(),
            folder.display()
        )
    };
    let api = ApiBuilder::from_cache(hf_hub::Cache::new(cache.to_path_buf()))
        .with_progress(false)
        .build()
        .map_err(|e| unreachable(&e))?;
    let repo = api.repo(hf_hub::Repo::with_revision(
        hf.repo.clone(),
        hf_hub::RepoType::Dataset,
        hf.revision.clone(),
    ));
    let info = repo.info().map_err(|e| unreachable(&e))?;
    let mut all: Vec<String> = info
        .siblings
        .into_iter()
        .map(|s| s.rfilename)
        .filter(|f| f.to_ascii_lowercase().ends_with(".parquet"))
        .collect();
    all.sort();
    let place = format!("{} at {}", hf.repo, hf.revision);
    let chosen = choose(spec, &all, hf.select.as_deref(), &place)?;
    chosen
        .iter()
        .map(|f| repo.get(f).map_err(|e| unreachable(&e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_owner_name_revision_and_selection() {
        let p = parse("hf://stanfordnlp/imdb").unwrap();
        assert_eq!(
            (p.repo.as_str(), p.revision.as_str(), p.select),
            ("stanfordnlp/imdb", "main", None)
        );
        let p = parse("hf://datasets/o/n@refs%2Fconvert%2Fparquet/plain_text/train").unwrap();
        assert_eq!(p.repo, "o/n");
        assert_eq!(p.revision, "refs/convert/parquet");
        assert_eq!(p.select.as_deref(), Some("plain_text/train"));
        for bad in [
            "hf://",
            "hf://only",
            "hf://o/",
            "hf://o/n@",
            "hf://o/n@../x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chooses_splits_folders_files_and_globs() {
        let all: Vec<String> = [
            "data/test-00000-of-00001.parquet",
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
            "plain_text/unsupervised/0000.parquet",
        ]
        .map(String::from)
        .to_vec();
        let c = |s: Option<&str>| choose("hf://o/n", &all, s, "snapshot");
        assert_eq!(c(None).unwrap(), all[1..3]);
        assert_eq!(c(Some("test")).unwrap(), all[..1]);
        assert_eq!(c(Some("unsupervised")).unwrap(), all[3..]);
        assert_eq!(c(Some("plain_text")).unwrap(), all[3..]);
        assert_eq!(c(Some("data/*-0000?-of-*.parquet")).unwrap(), all[..3]);
        assert_eq!(c(Some("**/0000.parquet")).unwrap(), all[3..]);
        assert_eq!(c(Some(&all[2])).unwrap(), all[2..3]);
        let e = c(Some("validation")).unwrap_err().to_string();
        assert!(e.contains("data/test-00000-of-00001.parquet"), "{e}");
        let single = vec!["reviews.parquet".to_string()];
        assert_eq!(choose("x", &single, None, "s").unwrap(), single);
        assert!(!in_split("data/trainer.parquet", "train"));
    }
}
