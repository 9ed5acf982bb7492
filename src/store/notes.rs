//! Tags and notes: what people say about an experiment or a trial (`lab ui`
//! writes them; `lab show` prints them; `lab compare --tag` filters on them;
//! `lab merge` carries them). A target has any number of tags and at most one
//! note. Schema version 8; a shard opened read-only from an older lab reads as
//! having none.

use super::{now, Result, Store};
use anyhow::bail;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::BTreeMap;
use std::fmt;

/// The longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 64;
/// The longest note `Store::set_note` accepts, in bytes of UTF-8 (64 KiB).
pub const MAX_NOTE_BYTES: usize = 64 * 1024;
/// The schema version that added the `tags` and `notes` tables.
const VERSION: i64 = 8;

/// What a tag or note is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An experiment, by id.
    Experiment(i64),
    /// A trial, by id.
    Trial(i64),
}

impl Target {
    /// The column of `tags` and `notes` that holds the target's id (a constant,
    /// safe to format into SQL), and the id.
    pub(super) fn column(self) -> (&'static str, i64) {
        match self {
            Target::Experiment(id) => ("experiment_id", id),
            Target::Trial(id) => ("trial_id", id),
        }
    }

    /// The table the target lives in.
    fn table(self) -> &'static str {
        match self {
            Target::Experiment(_) => "experiments",
            Target::Trial(_) => "trials",
        }
    }
}

impl fmt::Display for Target {
    /// "experiment 3", "trial 12".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Experiment(id) => write!(f, "experiment {id}"),
            Target::Trial(id) => write!(f, "trial {id}"),
        }
    }
}

/// Checks a tag and returns it trimmed: 1 to 64 characters once trimmed, no
/// control characters, no commas (a list of tags is written with commas).
///
/// # Errors
/// The tag breaks a rule: the message shows what was given and what is expected.
pub fn valid_tag(tag: &str) -> Result<String> {
    let trimmed = tag.trim();
    let expected = "expected 1 to 64 characters without commas or control characters";
    let shown = shown_tag(tag);
    let chars = trimmed.chars().count();
    if chars == 0 {
        bail!("tag {shown} is empty; {expected}");
    }
    if chars > MAX_TAG_CHARS {
        bail!("tag {shown} has {chars} characters; {expected}");
    }
    if let Some(c) = trimmed.chars().find(|c| c.is_control()) {
        bail!("tag {shown} holds the control character {c:?}; {expected}");
    }
    if trimmed.contains(',') {
        bail!("tag {shown} holds a comma; {expected}");
    }
    Ok(trimmed.to_string())
}

/// A tag as quoted in a message: escaped, and cut after 80 characters.
fn shown_tag(tag: &str) -> String {
    const SHOWN: usize = 80;
    match tag.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{:?}…", &tag[..at]),
        None => format!("{tag:?}"),
    }
}

/// Error unless the target's row exists.
fn require(tx: &Transaction, store: &Store, target: Target) -> Result<()> {
    let (_, id) = target.column();
    let sql = format!("SELECT 1 FROM {} WHERE id = ?1", target.table());
    let found: Option<i64> = tx.query_row(&sql, [id], |r| r.get(0)).optional()?;
    if found.is_none() {
        bail!("no {target} in {}", store.path.display());
    }
    Ok(())
}

/// Add a tag (already valid) to a target in `tx`; true when it was new.
pub(super) fn insert_tag(tx: &Transaction, target: Target, tag: &str) -> Result<bool> {
    let (column, id) = target.column();
    let added = tx.execute(
        &format!(
            "INSERT INTO tags ({column}, tag, created_at) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING"
        ),
        params![id, tag, now()],
    )?;
    Ok(added == 1)
}

/// Put `text` as the target's note in `tx`, replacing any.
pub(super) fn upsert_note(tx: &Transaction, target: Target, text: &str) -> Result<()> {
    let (column, id) = target.column();
    tx.execute(
        &format!(
            "INSERT INTO notes ({column}, text, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT ({column}) WHERE {column} IS NOT NULL
             DO UPDATE SET text = excluded.text, updated_at = excluded.updated_at"
        ),
        params![id, text, now()],
    )?;
    Ok(())
}

impl Store {
    /// Add `tag` (trimmed, see [`valid_tag`]) to the target; `Ok(false)` if it
    /// was already there.
    ///
    /// # Errors
    /// No such experiment or trial; an invalid tag; the database cannot be written.
    pub fn add_tag(&self, target: Target, tag: &str) -> Result<bool> {
        let tag = valid_tag(tag)?;
        let tx = self.write()?;
        require(&tx, self, target)?;
        let added = insert_tag(&tx, target, &tag)?;
        tx.commit()?;
        Ok(added)
    }

    /// Remove `tag` (trimmed) from the target; `Ok(false)` if it was not there.
    ///
    /// # Errors
    /// The database cannot be written.
    pub fn remove_tag(&self, target: Target, tag: &str) -> Result<bool> {
        let (column, id) = target.column();
        let tx = self.write()?;
        let removed = tx.execute(
            &format!("DELETE FROM tags WHERE {column} = ?1 AND tag = ?2"),
            params![id, tag.trim()],
        )?;
        tx.commit()?;
        Ok(removed > 0)
    }

    /// The target's tags, sorted (byte order); none for a target that does not
    /// exist, or a database older than schema version 8.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn tags(&self, target: Target) -> Result<Vec<String>> {
        if !self.has_version(VERSION)? {
            return Ok(Vec::new());
        }
        let (column, id) = target.column();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT tag FROM tags WHERE {column} = ?1 ORDER BY tag"
        ))?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Replace the target's note with `text` (kept as given); an empty or
    /// whitespace-only text deletes it.
    ///
    /// # Errors
    /// No such experiment or trial; a text longer than 64 KiB (65,536 bytes of
    /// UTF-8); the database cannot be written.
    pub fn set_note(&self, target: Target, text: &str) -> Result<()> {
        if text.len() > MAX_NOTE_BYTES {
            bail!(
                "the note for {target} is {} bytes long; a note holds at most {MAX_NOTE_BYTES} \
                 bytes (64 KiB)",
                text.len()
            );
        }
        let tx = self.write()?;
        require(&tx, self, target)?;
        if text.trim().is_empty() {
            let (column, id) = target.column();
            tx.execute(&format!("DELETE FROM notes WHERE {column} = ?1"), [id])?;
        } else {
            upsert_note(&tx, target, text)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The target's note, if it has one (none in a database older than schema
    /// version 8).
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn note(&self, target: Target) -> Result<Option<String>> {
        if !self.has_version(VERSION)? {
            return Ok(None);
        }
        let (column, id) = target.column();
        Ok(self
            .conn
            .query_row(
                &format!("SELECT text FROM notes WHERE {column} = ?1"),
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The tags of every trial of one experiment, in one query: trial id ->
    /// its sorted tags. Trials without tags are absent.
    ///
    /// # Errors
    /// The database cannot be read.
    pub fn trial_tags(&self, experiment_id: i64) -> Result<BTreeMap<i64, Vec<String>>> {
        if !self.has_version(VERSION)? {
            return Ok(BTreeMap::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT g.trial_id, g.tag FROM trials t JOIN tags g ON g.trial_id = t.id
             WHERE t.experiment_id = ?1 ORDER BY g.trial_id, g.tag",
        )?;
        let rows = stmt.query_map([experiment_id], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut out: BTreeMap<i64, Vec<String>> = BTreeMap::new();
        for row in rows {
            let (trial, tag) = row?;
            out.entry(trial).or_default().push(tag);
        }
        Ok(out)
    }

    /// The notes of every trial of one experiment: trial id -> note (for
    /// `lab merge`).
    pub(super) fn trial_notes(&self, experiment_id: i64) -> Result<BTreeMap<i64, String>> {
        if !self.has_version(VERSION)? {
            return Ok(BTreeMap::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT n.trial_id, n.text FROM trials t JOIN notes n ON n.trial_id = t.id
             WHERE t.experiment_id = ?1",
        )?;
        let rows = stmt.query_map([experiment_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_trimmed_and_checked() {
        assert_eq!(valid_tag("  baseline ").unwrap(), "baseline");
        assert_eq!(valid_tag("für paper").unwrap(), "für paper");
        assert_eq!(valid_tag(&"é".repeat(64)).unwrap(), "é".repeat(64));
        let err = |t: &str| valid_tag(t).unwrap_err().to_string();
        assert!(err("   ").contains("is empty"), "{}", err("   "));
        assert!(err(&"x".repeat(65)).contains("has 65 characters"));
        assert!(
            err("a,b").contains("\"a,b\" holds a comma"),
            "{}",
            err("a,b")
        );
        let control = err("a\tb");
        assert!(control.contains(r#""a\tb""#), "{control}");
        assert!(control.contains("expected 1 to 64 characters"), "{control}");
        let long = err(&"y".repeat(500));
        assert!(long.contains(&format!("\"{}\"…", "y".repeat(80))), "{long}");
        assert!(!long.contains(&"y".repeat(81)), "{long}");
    }

    #[test]
    fn targets_name_themselves() {
        assert_eq!(Target::Trial(4).to_string(), "trial 4");
        assert_eq!(Target::Experiment(2).to_string(), "experiment 2");
    }
}
