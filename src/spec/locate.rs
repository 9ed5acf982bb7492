//! Map a key path back to its line in the spec file, using toml_edit's spans
//! (the serde-facing `toml::Value` forgets where things were written).

use toml_edit::ImDocument;

/// Finds the line of a key path in a spec's source text.
pub(crate) struct Locator {
    doc: Option<ImDocument<String>>,
}

impl Locator {
    /// A locator for `source`; one that cannot be parsed places nothing.
    pub(crate) fn new(source: &str) -> Self {
        Self {
            doc: ImDocument::parse(source.to_string()).ok(),
        }
    }

    /// 1-based line of the deepest part of `path` present in the file: the key
    /// itself when it exists, else its nearest written ancestor. Numeric segments
    /// index arrays.
    pub(crate) fn line(&self, path: &[String]) -> Option<usize> {
        let doc = self.doc.as_ref()?;
        let mut item = doc.as_item();
        let mut best = None;
        for seg in path {
            if let Some(table) = item.as_table_like() {
                let Some((key, value)) = table.get_key_value(seg) else {
                    break;
                };
                best = key.span().or_else(|| value.span()).or(best);
                item = value;
                continue;
            }
            if let Some(array) = item.as_array() {
                let element = seg.parse::<usize>().ok().and_then(|i| array.get(i));
                if let Some(span) = element.and_then(|v| v.span()) {
                    best = Some(span);
                }
            }
            // Nothing below an array element or a scalar is ever addressed.
            break;
        }
        best.map(|span| line_of(doc.raw(), span.start))
    }
}

/// 1-based line of a byte offset.
pub(crate) fn line_of(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    source.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(String::from).collect()
    }

    #[test]
    fn finds_keys_headers_inline_tables_and_quoted_keys() {
        let src = "[model]\nhidden = 3\n\n[data]\nsplit = { train = 0.8 }\nsplit2.x = 1\n[sweep]\n\"model.cell\" = [\n  \"lstm\",\n  \"gru\",\n]\n";
        let l = Locator::new(src);
        assert_eq!(l.line(&p("model")), Some(1));
        assert_eq!(l.line(&p("model.hidden")), Some(2));
        assert_eq!(l.line(&p("model.missing")), Some(1));
        assert_eq!(l.line(&p("data.split.train")), Some(5));
        assert_eq!(l.line(&p("data.split2.x")), Some(6));
        let axis = vec!["sweep".to_string(), "model.cell".to_string()];
        assert_eq!(l.line(&axis), Some(8));
        let elem = vec!["sweep".into(), "model.cell".into(), "1".into()];
        assert_eq!(l.line(&elem), Some(10));
        assert_eq!(l.line(&p("train.lr")), None);
    }
}
