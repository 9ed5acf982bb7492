//! Text cleaning and tokenisation.
//!
//! The steps run in a fixed order, each only when switched on:
//! 1. `strip_html`: markup (`<br />`, `</i>`, `<!-- -->`) becomes spaces, then entities
//!    (`&amp;`, `&#39;`, `&#x27;`) are decoded; a `<` that starts no markup (`<3`,
//!    `a < b`) is text (see [`strip_tags`]);
//! 2. `remove_urls`: `http(s)://…` and `www.…` up to the next whitespace become spaces;
//! 3. `lowercase`;
//! 4. `remove_digits`: digits are deleted (`"1990s"` → `"s"`);
//! 5. `remove_punctuation`: every other non-alphanumeric character becomes a space,
//!    except apostrophes, which are dropped so `"don't"` → `"dont"`;
//! 6. split on whitespace; when punctuation is kept, each punctuation character is
//!    split off as a token of its own (`"great!"` → `"great"`, `"!"`);
//! 7. stop words are removed (matched against the tokens as cleaned above);
//! 8. stemming (`snowball`, English) or lemmatisation (`lemma`, WordNet; see `lemma.rs`).
//!
//! Steps 3–6 run as one pass over the characters, so tokenising 25k reviews is cheap.

use super::{FastMap, FastSet};
use crate::spec::{PreprocessSection, Stem, Stopwords};
use anyhow::Context;
use regex::Regex;
use rust_stemmers::{Algorithm, Stemmer};
use std::borrow::Cow;
use std::cell::RefCell;
use std::path::Path;
use std::sync::OnceLock;

fn url_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?i)(?:\bhttps?://|\bwww\.)\S*").unwrap())
}

fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '`')
}

/// Turns raw text into tokens as the preprocess section says (see the module docs for the order).
pub struct Preprocessor {
    lowercase: bool,
    strip_html: bool,
    remove_urls: bool,
    remove_digits: bool,
    remove_punctuation: bool,
    stopwords: FastSet<String>,
    stemming: Stemming,
}

/// How tokens are reduced to a base form.
enum Stemming {
    None,
    Snowball(Stemmer),
    Lemma(&'static super::lemma::Lemmatizer),
}

impl Preprocessor {
    /// `base_dir` resolves a stopword-list path.
    pub fn new(cfg: &PreprocessSection, base_dir: &Path) -> anyhow::Result<Self> {
        let mut pre = Preprocessor {
            lowercase: cfg.lowercase,
            strip_html: cfg.strip_html,
            remove_urls: cfg.remove_urls,
            remove_digits: cfg.remove_digits,
            remove_punctuation: cfg.remove_punctuation,
            stopwords: FastSet::default(),
            stemming: match cfg.stem {
                Stem::None => Stemming::None,
                Stem::Snowball => Stemming::Snowball(Stemmer::create(Algorithm::English)),
                Stem::Lemma => Stemming::Lemma(super::lemma::wordnet()),
            },
        };
        let words: Vec<String> = match &cfg.stopwords {
            Stopwords::None => Vec::new(),
            Stopwords::English => super::stopwords::ENGLISH
                .iter()
                .map(|w| w.to_string())
                .collect(),
            Stopwords::File(path) => read_word_list(&base_dir.join(path))?,
        };
        for w in words {
            pre.add_stopword(&w);
        }
        Ok(pre)
    }

    /// Stop words are matched after cleaning, so each is stored as cleaning would leave it
    /// ("don't" also as "dont" when apostrophes are dropped).
    fn add_stopword(&mut self, word: &str) {
        let word = word.trim();
        if word.is_empty() {
            return;
        }
        let mut w = word.to_string();
        if self.lowercase {
            w = w.to_lowercase();
        }
        if self.remove_punctuation {
            let dropped: String = w.chars().filter(|c| !is_apostrophe(*c)).collect();
            self.stopwords.insert(dropped);
        }
        self.stopwords.insert(w);
    }

    /// Number of distinct stop words in effect (0 when off).
    pub fn stopword_count(&self) -> usize {
        self.stopwords.len()
    }

    /// The cleaned tokens of `text`; may be empty.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        self.each_token(text, |t| {
            tokens.push(t.to_string());
            true
        });
        tokens
    }

    /// Calls `f` with each cleaned token of `text`, in order, until `f` returns false
    /// (so a caller that needs only the first `max_len` tokens stops there).
    pub fn each_token(&self, text: &str, mut f: impl FnMut(&str) -> bool) {
        let mut base = String::new();
        self.each_raw_token(text, |raw| {
            if self.stopwords.contains(raw) {
                return true;
            }
            let method = match &self.stemming {
                Stemming::None => return f(raw),
                Stemming::Snowball(_) => 0,
                Stemming::Lemma(_) => 1,
            };
            base.clear();
            base.push_str(raw);
            base_form_cached(method, &mut base, |w| self.stem(w));
            f(&base)
        })
    }

    /// Calls `f` with each token of `text` as steps 1-6 leave it (before stop words and
    /// stemming), until `f` returns false. With [`Preprocessor::base_form`] this gives
    /// the same tokens as [`Preprocessor::each_token`], for callers that remember what
    /// each distinct raw token becomes.
    pub fn each_raw_token(&self, text: &str, mut f: impl FnMut(&str) -> bool) {
        let mut text: Cow<str> = Cow::Borrowed(text);
        if self.strip_html {
            if let Cow::Owned(stripped) = strip_tags(&text) {
                text = Cow::Owned(stripped);
            }
            if text.contains('&') {
                text = Cow::Owned(html_escape::decode_html_entities(&text).into_owned());
            }
        }
        if self.remove_urls && url_regex().is_match(&text) {
            text = Cow::Owned(url_regex().replace_all(&text, " ").into_owned());
        }
        self.split(&text, &mut f)
    }

    /// Whether a raw token is dropped as a stop word.
    pub fn is_stopword(&self, raw: &str) -> bool {
        self.stopwords.contains(raw)
    }

    /// What a raw token (from [`Preprocessor::each_raw_token`]) becomes: `None` for a
    /// stop word, else its stem or lemma (itself without stemming). Not cached.
    pub fn base_form(&self, raw: &str) -> Option<String> {
        if self.is_stopword(raw) {
            return None;
        }
        Some(self.stem(raw))
    }

    fn stem(&self, word: &str) -> String {
        match &self.stemming {
            Stemming::None => word.to_string(),
            Stemming::Snowball(stemmer) => stemmer.stem(word).into_owned(),
            Stemming::Lemma(lemmatizer) => lemmatizer.lemma(word),
        }
    }

    /// Lowercase, digits, punctuation and whitespace splitting in one pass; each token
    /// goes to `f` as soon as it is complete.
    fn split(&self, text: &str, f: &mut impl FnMut(&str) -> bool) {
        let mut cur = String::new();
        for c in text.chars() {
            let go_on = match kind(c) {
                Kind::Space => emit(&mut cur, f),
                Kind::Digit if self.remove_digits => true, // deleted, not a separator
                Kind::Apostrophe if self.remove_punctuation => true, // "don't" -> "dont"
                Kind::Punct | Kind::Apostrophe if self.remove_punctuation => emit(&mut cur, f),
                Kind::Punct | Kind::Apostrophe => {
                    emit(&mut cur, f) && {
                        cur.push(c);
                        emit(&mut cur, f)
                    }
                }
                _ if !self.lowercase => {
                    cur.push(c);
                    true
                }
                _ if c.is_ascii() => {
                    cur.push(c.to_ascii_lowercase());
                    true
                }
                _ => {
                    cur.extend(c.to_lowercase());
                    true
                }
            };
            if !go_on {
                return;
            }
        }
        emit(&mut cur, f);
    }
}

/// Hand a finished token to `f` and start the next; returns what `f` returned (true
/// when there was no token).
fn emit(cur: &mut String, f: &mut impl FnMut(&str) -> bool) -> bool {
    if cur.is_empty() {
        return true;
    }
    let go_on = f(cur.as_str());
    cur.clear();
    go_on
}

/// Replace `word` by its base form (`compute`d, or remembered per thread): stemming is
/// costly and a corpus repeats a few thousand words millions of times. `method` keeps
/// the snowball (0) and lemma (1) caches apart; each method is a pure function of the
/// word, so the cache does not depend on the `Preprocessor`.
fn base_form_cached(method: usize, word: &mut String, compute: impl FnOnce(&str) -> String) {
    const MAX_ENTRIES: usize = 100_000;
    thread_local! {
        static CACHE: RefCell<[FastMap<String, String>; 2]> = RefCell::default();
    }
    CACHE.with_borrow_mut(|caches| {
        let cache = &mut caches[method];
        if let Some(s) = cache.get(word.as_str()) {
            word.clear();
            word.push_str(s);
            return;
        }
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        let s = compute(word);
        cache.insert(std::mem::replace(word, s.clone()), s);
    })
}

enum Kind {
    Space,
    Digit,
    Apostrophe,
    Punct,
    Letter,
}

/// ASCII is checked first: it is nearly all of the text and far cheaper to classify.
fn kind(c: char) -> Kind {
    if c.is_ascii() {
        match c {
            'a'..='z' | 'A'..='Z' => Kind::Letter,
            '0'..='9' => Kind::Digit,
            '\'' | '`' => Kind::Apostrophe,
            _ if c.is_ascii_whitespace() => Kind::Space,
            _ if c.is_ascii_control() => Kind::Space,
            _ => Kind::Punct,
        }
    } else if c.is_whitespace() {
        Kind::Space
    } else if c.is_numeric() {
        Kind::Digit
    } else if is_apostrophe(c) {
        Kind::Apostrophe
    } else if c.is_alphanumeric() {
        Kind::Letter
    } else {
        Kind::Punct
    }
}

/// `text` with each piece of HTML markup replaced by a space; borrowed when it has none.
///
/// Markup is recognised by the HTML tokenizer's tag-open rule, so prose that merely
/// uses `<` and `>` is left alone: a `<` starts markup only when followed by an ASCII
/// letter (a start tag, `<br />`, `<p class=x>`), by `/` and a letter (an end tag,
/// `</i>`) or by `!` (a comment `<!-- -->`, which runs to `-->`, or a declaration such
/// as `<!DOCTYPE html>`). `<3`, `</3`, `a < b` and `< 5 stars ... > 3` are text. A tag
/// ends at the first `>` outside a quoted attribute value; a candidate with no `>`
/// before the next `<` (or the end) is text as well, which also keeps the scan linear.
///
/// A hand-written byte scan rather than an HTML tokenizer crate: cleaning runs on every
/// row, the rule needs no more than this, and a full tokenizer (html5ever) would also
/// decode entities and build tokens we throw away.
pub fn strip_tags(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    // Bytes of `text` before `copied` are already in `out` (or were markup).
    let (mut copied, mut at) = (0, 0);
    while let Some(k) = memchr::memchr(b'<', &bytes[at..]) {
        let start = at + k;
        match markup_end(bytes, start) {
            Some(end) => {
                let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
                o.push_str(&text[copied..start]);
                o.push(' ');
                (copied, at) = (end, end);
            }
            None => at = start + 1,
        }
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

/// Just past the end of the markup that the `<` at `start` opens, or `None` when that
/// `<` is text. Every boundary is an ASCII byte, so slicing there keeps UTF-8 whole.
fn markup_end(b: &[u8], start: usize) -> Option<usize> {
    let rest = &b[start + 1..];
    match *rest.first()? {
        c if c.is_ascii_alphabetic() => tag_end(b, start + 2),
        b'/' if rest.get(1).is_some_and(u8::is_ascii_alphabetic) => tag_end(b, start + 3),
        b'!' if rest.starts_with(b"!--") => memchr::memmem::find(&rest[3..], b"-->")
            .map(|k| start + 4 + k + 3)
            .or_else(|| declaration_end(b, start + 2)),
        b'!' => declaration_end(b, start + 2),
        _ => None,
    }
}

/// The end of a tag whose name starts before `from`: the first `>` outside a quoted
/// attribute value (`<a title="x>y">`); `None` at a `<` or the end of the text.
fn tag_end(b: &[u8], from: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    let mut after_eq = false;
    for (i, &c) in b.iter().enumerate().skip(from) {
        if c == b'<' {
            return None;
        }
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                b'>' => return Some(i + 1),
                b'"' | b'\'' if after_eq => quote = Some(c),
                b'=' => {
                    after_eq = true;
                    continue;
                }
                _ if after_eq && c.is_ascii_whitespace() => continue,
                _ => {}
            },
        }
        after_eq = false;
    }
    None
}

/// The end of `<!...>`: the next `>`, or `None` when a `<` or the end comes first.
fn declaration_end(b: &[u8], from: usize) -> Option<usize> {
    let k = memchr::memchr2(b'<', b'>', b.get(from..)?)?;
    (b[from + k] == b'>').then_some(from + k + 1)
}

/// One word per line; blank lines and `#` comments are ignored.
fn read_word_list(path: &Path) -> anyhow::Result<Vec<String>> {
    crate::data::read::check_regular(path)
        .map_err(|why| anyhow::anyhow!("preprocess.stopwords: {why}"))?;
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the stop-word list {} (preprocess.stopwords expects \"none\", \"english\" or a path to a file with one word per line)",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pre(f: impl FnOnce(&mut PreprocessSection)) -> Preprocessor {
        let mut cfg = PreprocessSection::default();
        f(&mut cfg);
        Preprocessor::new(&cfg, Path::new(".")).unwrap()
    }

    #[test]
    fn markup_is_stripped_and_prose_angle_brackets_are_kept() {
        let cases = [
            ("a<br /><br />b", "a  b"),
            ("<p class=x>hi</p>", " hi "),
            ("x</i>y", "x y"),
            ("a<!-- c > d -->b", "a b"),
            ("<!DOCTYPE html>t", " t"),
            ("<a title=\"x>y\">l</a>", " l "),
            ("I <3 it", "I <3 it"),
            ("I </3 it", "I </3 it"),
            ("a < b and c > d", "a < b and c > d"),
            ("< 5 stars ... > 3", "< 5 stars ... > 3"),
            ("x <= 5 >= y", "x <= 5 >= y"),
            ("unclosed <b tag", "unclosed <b tag"),
            ("<b <i>x", "<b  x"),
            ("<!-- never closed", "<!-- never closed"),
            ("é<b>ü</b>ß", "é ü ß"),
            ("<", "<"),
            ("</", "</"),
            ("<!", "<!"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_tags(input), want, "{input:?}");
        }
        assert!(matches!(strip_tags("a < b"), Cow::Borrowed(_)));
    }

    #[test]
    fn markup_and_entities_go_but_the_words_between_stay() {
        let p = pre(|_| {});
        assert_eq!(
            p.tokens("I <3 the zephyr. Score: < 5 stars for the marmot, > 3.<br />Fine &amp; &#x27;ok&#39;"),
            ["i", "3", "the", "zephyr", "score", "5", "stars", "for", "the", "marmot", "3", "fine", "ok"]
        );
    }

    #[test]
    fn kept_punctuation_is_split_off() {
        let p = pre(|c| c.remove_punctuation = false);
        assert_eq!(p.tokens("Great, film!"), ["great", ",", "film", "!"]);
    }

    #[test]
    fn curly_apostrophes_are_dropped_too() {
        let p = pre(|_| {});
        assert_eq!(p.tokens("Don\u{2019}t stop"), ["dont", "stop"]);
    }

    #[test]
    fn english_stopwords_catch_contractions_without_apostrophes() {
        let p = pre(|c| c.stopwords = Stopwords::English);
        assert_eq!(p.tokens("I don't like it"), ["like"]);
    }
}
