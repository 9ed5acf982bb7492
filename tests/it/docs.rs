//! The documentation checked against the code: README.md and docs/*.md.
//!
//! - Every ```` ```toml ```` block is loaded with the real spec loader. A whole
//!   spec (it has `[experiment]`, or `[data]` with a `path`) must load, validate
//!   and expand to its grid; a fragment (sections alone) is appended to a minimal
//!   spec and must validate. A block preceded by an `<!-- invalid ... -->` comment
//!   is a deliberate mistake: it must fail, with the `error: ...` line shown in
//!   the next fenced block (the file path as shown, the rest exactly).
//!   Paths `"../data/..."` are read as the shipped `data/` (the examples live in
//!   `experiments/`), so word lists and vector files they name must exist.
//! - Every relative link names an existing file, and a heading of it after `#`.
//! - Every `lab <command>` of README's commands table is a real subcommand.

use lab::spec::{expand, load_with_env, LoadedSpec, SpecError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A fenced code block of a markdown file.
struct Block {
    /// Where it is, as `file:line` of its opening fence.
    at: String,
    /// The info string after the fence (`toml`, or empty).
    info: String,
    /// The lines between the fences.
    text: String,
    /// Whether an `<!-- invalid ... -->` comment is the line before it.
    invalid: bool,
}

/// README.md and every markdown file of docs/, in a fixed order.
fn doc_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("docs"))
        .expect("docs/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    files.insert(0, Path::new(ROOT).join("README.md"));
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced blocks of a markdown text, in order.
fn blocks(file: &Path, text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    let mut previous = "";
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (Some(_), Some(_)) => out.push(open.take().unwrap()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, Some(info)) => {
                open = Some(Block {
                    at: format!("{}:{}", file.display(), i + 1),
                    info: info.trim().to_string(),
                    text: String::new(),
                    invalid: previous.trim_start().starts_with("<!-- invalid"),
                })
            }
            (None, None) => {}
        }
        previous = line;
    }
    assert!(
        open.is_none(),
        "{}: a fence is never closed",
        file.display()
    );
    out
}

/// Every block of every documentation file.
fn all_blocks() -> Vec<Block> {
    doc_files()
        .iter()
        .flat_map(|f| blocks(f, &read(f)))
        .collect()
}

/// The spec text with `"../data/` pointing at the shipped data.
fn with_shipped_data(text: &str) -> String {
    text.replace("\"../data/", &format!("\"{ROOT}/data/"))
}

/// Writes `text` as `spec.toml` in a fresh directory and loads it (no environment).
fn load(text: &str) -> (tempfile::TempDir, PathBuf, Result<LoadedSpec, SpecError>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spec.toml");
    std::fs::write(&path, with_shipped_data(text)).unwrap();
    let loaded = load_with_env(&path, &[], Vec::<(String, String)>::new());
    (dir, path, loaded)
}

fn has_line(text: &str, wanted: &str) -> bool {
    text.lines().any(|l| l.trim() == wanted)
}

/// A whole spec names its experiment, or its data file.
fn is_whole_spec(text: &str) -> bool {
    let data_path = text.lines().any(|l| l.trim_start().starts_with("path"));
    has_line(text, "[experiment]") || (has_line(text, "[data]") && data_path)
}

/// A fragment placed after the smallest valid spec (its `[data]` unless it has one).
fn complete_fragment(text: &str) -> String {
    let mut spec = String::from("[experiment]\nname = \"docs\"\n");
    if !has_line(text, "[data]") {
        spec.push_str("[data]\npath = \"../data/rotten_tomatoes.csv\"\n");
    }
    spec + text
}

/// Checks a valid block: loads, and a whole spec expands to seeds × every axis.
fn check_valid(block: &Block) {
    let whole = is_whole_spec(&block.text);
    let text = if whole {
        block.text.clone()
    } else {
        complete_fragment(&block.text)
    };
    let (_dir, _path, loaded) = load(&text);
    let spec = loaded.unwrap_or_else(|e| panic!("{}: the example does not load: {e}", block.at));
    let trials = expand(&spec).unwrap_or_else(|e| panic!("{}: does not expand: {e}", block.at));
    let axes: usize = spec.spec.sweep.values().map(Vec::len).product();
    let expected = axes * spec.spec.experiment.seeds.len();
    assert_eq!(trials.len(), expected, "{}: grid size", block.at);
}

/// The `error: ...` line of the first fenced block after `index`.
fn shown_error(all: &[Block], index: usize) -> &str {
    all[index + 1..]
        .iter()
        .take(1)
        .flat_map(|b| b.text.lines())
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| {
            panic!(
                "{}: an invalid example needs the error it gives in the next block",
                all[index].at
            )
        })
}

/// Checks a deliberately wrong block: the loader refuses it with the shown error.
fn check_invalid(all: &[Block], index: usize) {
    let block = &all[index];
    let shown = shown_error(all, index);
    let (shown_file, shown_rest) = shown
        .split_once(':')
        .unwrap_or_else(|| panic!("{}: `{shown}` names no file", block.at));
    let (_dir, path, loaded) = load(&block.text);
    let err = match loaded {
        Ok(_) => panic!("{}: marked invalid, but it loads", block.at),
        Err(e) => e.to_string(),
    };
    let got = err
        .strip_prefix(&path.display().to_string())
        .unwrap_or_else(|| panic!("{}: `{err}` does not start with its file", block.at));
    assert_eq!(
        got,
        format!(":{shown_rest}"),
        "{}: the error differs from the one shown for {shown_file}",
        block.at
    );
}

#[test]
fn every_toml_example_loads_or_fails_as_shown() {
    let all = all_blocks();
    let mut checked = (0, 0);
    for (i, block) in all.iter().enumerate() {
        if block.info.split(',').next() != Some("toml") {
            continue;
        }
        if block.invalid {
            check_invalid(&all, i);
            checked.1 += 1;
        } else {
            check_valid(block);
            checked.0 += 1;
        }
    }
    // README's tour, the spec page's example and typo, data's embeddings fragment.
    assert!(checked.0 >= 3, "valid toml examples checked: {}", checked.0);
    assert!(
        checked.1 >= 1,
        "invalid toml examples checked: {}",
        checked.1
    );
}

#[test]
fn the_checker_catches_a_wrong_example() {
    let wrong = Block {
        at: "test".into(),
        info: "toml".into(),
        text: "[model]\ncell = \"lstn\"\n".into(),
        invalid: false,
    };
    let caught = std::panic::catch_unwind(|| check_valid(&wrong));
    assert!(caught.is_err(), "a bad cell must fail the check");
    let text = "[experiment]\nname = \"x\"\n[data]\npath = \"../data/x.csv\"\n";
    assert!(is_whole_spec(text));
    assert!(!is_whole_spec("[model]\nhidden = 3\n"));
}

/// GitHub's anchor of a heading: lower case, spaces to `-`, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The anchors of a markdown text's headings (outside code blocks), with
/// GitHub's `-1`, `-2` suffixes for repeated ones.
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for line in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let base = slug(heading.trim_start_matches('#'));
        let n = seen.entry(base.clone()).or_default();
        out.push(if *n == 0 { base } else { format!("{base}-{n}") });
        *n += 1;
    }
    out
}

/// The lines outside fenced code blocks.
fn prose_lines(text: &str) -> Vec<&str> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push(line);
        }
    }
    out
}

/// The targets of `[text](target)` links in a markdown text, outside code.
fn link_targets(text: &str) -> Vec<String> {
    let prose = prose_lines(text).join("\n");
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find(')').unwrap_or(rest.len());
        out.push(rest[..end].trim().to_string());
        rest = &rest[end..];
    }
    out
}

/// What is wrong with one relative link of `file`, if anything.
fn broken(file: &Path, target: &str) -> Option<String> {
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let dest = if path.is_empty() {
        file.to_path_buf()
    } else {
        file.parent().unwrap().join(path)
    };
    if !dest.exists() {
        return Some(format!("{} does not exist", dest.display()));
    }
    let is_md = dest.extension().is_some_and(|x| x == "md");
    if anchor.is_empty() || !is_md {
        return None;
    }
    let found = anchors(&read(&dest)).iter().any(|a| a == anchor);
    (!found).then(|| format!("{} has no heading `#{anchor}`", dest.display()))
}

#[test]
fn every_relative_link_points_at_a_file_and_heading() {
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in doc_files() {
        for target in link_targets(&read(&file)) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            if let Some(p) = broken(&file, &target) {
                problems.push(format!("{}: ({target}): {p}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
    assert!(checked > 30, "only {checked} links found");
}

#[test]
fn the_link_checker_catches_a_broken_link() {
    let readme = Path::new(ROOT).join("README.md");
    assert!(broken(&readme, "docs/spec.md").is_none());
    assert!(broken(&readme, "docs/nothing.md").is_some());
    assert!(broken(&readme, "docs/spec.md#no-such-heading").is_some());
    assert_eq!(
        slug(" Many trials at once: `--jobs`, a queue"),
        "many-trials-at-once---jobs-a-queue"
    );
    assert_eq!(anchors("# A\n```\n# not\n```\n## A\n"), ["a", "a-1"]);
}

/// The subcommands named in the first column of README's `## Commands` table.
fn readme_commands() -> Vec<String> {
    let readme = read(&Path::new(ROOT).join("README.md"));
    let table = readme
        .split("\n## Commands\n")
        .nth(1)
        .expect("README has a `## Commands` section");
    let mut out = Vec::new();
    for row in table.lines().take_while(|l| !l.starts_with("## ")) {
        let Some(cell) = row.strip_prefix("| `lab ") else {
            continue;
        };
        let name: String = cell.chars().take_while(char::is_ascii_lowercase).collect();
        out.push(name);
    }
    out
}

#[test]
fn every_command_of_the_readme_table_exists() {
    let commands = readme_commands();
    assert!(commands.len() >= 10, "commands found: {commands:?}");
    for name in commands {
        let out = Command::new(env!("CARGO_BIN_EXE_lab"))
            .args([name.as_str(), "--help"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`lab {name} --help`: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
