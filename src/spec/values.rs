//! Spec values from a closed set of names (or a path): stop words, device and
//! the early-stopping monitor. Each is written and read back in exactly the text
//! form the spec uses, so the resolved config JSON and the trial hash are the same
//! as when these values were plain strings.

use super::config::Mode;
use super::Problem;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// Below this similarity a "did you mean" suggestion would only confuse.
const MIN_SIMILARITY: f64 = 0.5;

/// The candidate most similar to `word` (normalised Damerau–Levenshtein), if any
/// is at least half similar. The one "did you mean" matcher of the crate.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::normalized_damerau_levenshtein(word, c), c))
        .filter(|(score, _)| *score >= MIN_SIMILARITY)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A value that is not one of its type's names: what was expected and the
/// nearest valid name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueError {
    /// What is wrong, e.g. "unknown device `gpu`; expected cpu, auto, cuda or cuda:N".
    pub message: String,
    /// The nearest valid value, when one is close.
    pub suggestion: Option<String>,
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean `{s}`?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValueError {}

/// The problem with `raw` at the dotted key `path`, when the key holds one of the
/// typed values of this module and `raw` does not parse. Deserialization only
/// carries the message; this adds the suggestion and the key.
pub(crate) fn problem_at(path: &[String], raw: &str) -> Option<Problem> {
    let err = match path.join(".").as_str() {
        "train.device" => raw.parse::<Device>().err(),
        "train.early_stopping.monitor" => raw.parse::<Monitor>().err(),
        _ => None,
    }?;
    Some(Problem::new(path.to_vec(), err.message).suggest(err.suggestion))
}

/// Serialises as the text form and deserialises through `FromStr`, so the
/// error message is the type's own (a non-string is serde's "expected a string").
macro_rules! text_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse()
                    .map_err(|e: ValueError| serde::de::Error::custom(e.message))
            }
        }
    };
}

/// `preprocess.stopwords`: `"none"`, `"english"` (NLTK's list) or a word-list
/// file (one word per line), relative to the spec file.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub enum Stopwords {
    /// No stop words are removed.
    #[default]
    None,
    /// NLTK's 179 English stop words (`data::stopwords::ENGLISH`).
    English,
    /// A word list, as written in the spec (relative to the spec file).
    File(PathBuf),
}

impl Stopwords {
    /// The word-list file, when the value is one.
    pub fn file(&self) -> Option<&std::path::Path> {
        match self {
            Self::File(p) => Some(p),
            _ => None,
        }
    }
}

impl From<&str> for Stopwords {
    /// A name, or else a path: every string is a value (whether the file exists
    /// is checked against the spec's directory by validation).
    fn from(s: &str) -> Self {
        match s {
            "none" => Self::None,
            "english" => Self::English,
            path => Self::File(PathBuf::from(path)),
        }
    }
}

impl FromStr for Stopwords {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        Ok(Self::from(s))
    }
}

impl fmt::Display for Stopwords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::English => f.write_str("english"),
            Self::File(p) => write!(f, "{}", p.display()),
        }
    }
}

impl Serialize for Stopwords {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            // As `PathBuf` does: a path that is not UTF-8 is an error, never altered.
            Self::File(p) => p.serialize(s),
            named => s.collect_str(named),
        }
    }
}

impl<'de> Deserialize<'de> for Stopwords {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::from(String::deserialize(d)?.as_str()))
    }
}

/// `train.device` (and `--device`): `cpu`, `auto` (the first GPU when there is
/// one, else the CPU), `cuda` (GPU 0) or `cuda:N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The CPU.
    #[default]
    Cpu,
    /// The first CUDA GPU when the build and machine have one, else the CPU.
    Auto,
    /// A CUDA GPU: `None` is written `cuda` (GPU 0), `Some(n)` is `cuda:n`.
    Cuda(Option<usize>),
}

impl Device {
    /// How the valid forms are listed in messages.
    pub const EXPECTED: &'static str = "cpu, auto, cuda or cuda:N";
    const EXAMPLES: [&'static str; 4] = ["cpu", "auto", "cuda", "cuda:0"];
}

impl FromStr for Device {
    type Err = ValueError;

    /// Exact names only (no trimming); `cuda:N` needs N a GPU number.
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let ordinal = |n: &str| {
            n.bytes()
                .all(|b| b.is_ascii_digit())
                .then(|| n.parse::<usize>().ok())
                .flatten()
        };
        match s {
            "cpu" => Ok(Self::Cpu),
            "auto" => Ok(Self::Auto),
            "cuda" => Ok(Self::Cuda(None)),
            _ => match s.strip_prefix("cuda:").and_then(ordinal) {
                Some(n) => Ok(Self::Cuda(Some(n))),
                None => Err(ValueError {
                    message: format!("unknown device `{s}`; expected {}", Self::EXPECTED),
                    suggestion: nearest(s, Self::EXAMPLES).map(String::from),
                }),
            },
        }
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Auto => f.write_str("auto"),
            Self::Cuda(None) => f.write_str("cuda"),
            Self::Cuda(Some(n)) => write!(f, "cuda:{n}"),
        }
    }
}

text_serde!(Device);

/// `train.early_stopping.monitor`: the validation number an epoch is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Monitor {
    /// `valid.loss` (improves downwards).
    ValidLoss,
    /// `valid.accuracy` (improves upwards).
    ValidAccuracy,
    /// `valid.macro_f1` (improves upwards).
    ValidMacroF1,
}

impl Monitor {
    /// Every monitor, in the order messages list them.
    pub const ALL: [Monitor; 3] = [Self::ValidLoss, Self::ValidAccuracy, Self::ValidMacroF1];

    /// The name the spec uses, e.g. `"valid.macro_f1"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::ValidLoss => "valid.loss",
            Self::ValidAccuracy => "valid.accuracy",
            Self::ValidMacroF1 => "valid.macro_f1",
        }
    }

    /// The direction in which the number improves: a loss downwards, the others upwards.
    pub fn mode(self) -> Mode {
        match self {
            Self::ValidLoss => Mode::Min,
            Self::ValidAccuracy | Self::ValidMacroF1 => Mode::Max,
        }
    }
}

impl FromStr for Monitor {
    type Err = ValueError;

    fn from_str(s: &str) -> Result<Self, ValueError> {
        if let Some(m) = Self::ALL.into_iter().find(|m| m.name() == s) {
            return Ok(m);
        }
        let names = Self::ALL.map(Self::name);
        Err(ValueError {
            message: format!("unknown metric `{s}`; expected one of {}", names.join(", ")),
            suggestion: nearest(s, names).map(String::from),
        })
    }
}

impl fmt::Display for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

text_serde!(Monitor);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Parse then serialise: the same text, for every form.
    fn round_trip<T: Serialize + for<'de> Deserialize<'de>>(text: &str) {
        let v: T = serde_json::from_value(json!(text)).unwrap();
        assert_eq!(serde_json::to_value(&v).unwrap(), json!(text), "{text}");
    }

    #[test]
    fn text_forms_round_trip() {
        for s in ["none", "english", "words.txt", "lists/stop words.txt", ""] {
            round_trip::<Stopwords>(s);
        }
        for d in ["cpu", "auto", "cuda", "cuda:0", "cuda:12"] {
            round_trip::<Device>(d);
        }
        for m in ["valid.loss", "valid.accuracy", "valid.macro_f1"] {
            round_trip::<Monitor>(m);
        }
    }

    #[test]
    fn names_map_to_variants() {
        assert_eq!(Stopwords::from("english"), Stopwords::English);
        assert_eq!(
            Stopwords::from("none.txt").file(),
            Some(std::path::Path::new("none.txt"))
        );
        assert_eq!("cuda:3".parse::<Device>(), Ok(Device::Cuda(Some(3))));
        assert_eq!("cuda".parse::<Device>(), Ok(Device::Cuda(None)));
        assert_eq!(Monitor::ValidLoss.mode(), Mode::Min);
        assert_eq!(Monitor::ValidMacroF1.mode(), Mode::Max);
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        for bad in [
            "gpu",
            "cuda:",
            "cuda:x",
            "cuda:+1",
            " cpu",
            "cuda:99999999999999999999999",
        ] {
            let e = bad.parse::<Device>().unwrap_err();
            assert!(e.message.contains("cpu, auto, cuda or cuda:N"), "{e}");
        }
        assert_eq!(
            "gpu".parse::<Device>().unwrap_err().suggestion.as_deref(),
            Some("cpu")
        );
        let e = "valid.acuracy".parse::<Monitor>().unwrap_err();
        assert_eq!(e.suggestion.as_deref(), Some("valid.accuracy"));
        assert!(e
            .message
            .contains("valid.loss, valid.accuracy, valid.macro_f1"));
        // Serde carries the message; a non-string is a type error.
        let e = serde_json::from_value::<Device>(json!("gpu")).unwrap_err();
        assert!(e.to_string().contains("unknown device `gpu`"), "{e}");
        let e = serde_json::from_value::<Monitor>(json!(3)).unwrap_err();
        assert!(e.to_string().contains("expected a string"), "{e}");
    }

    #[test]
    fn problems_name_the_key_and_suggest() {
        let key = |k: &str| k.split('.').map(String::from).collect::<Vec<_>>();
        let p = problem_at(&key("train.device"), "cpux").unwrap();
        assert_eq!(p.path, key("train.device"));
        assert_eq!(p.suggestion.as_deref(), Some("cpu"));
        assert!(problem_at(&key("train.device"), "cuda:1").is_none());
        assert!(problem_at(&key("model.cell"), "gpu").is_none());
        let p = problem_at(&key("train.early_stopping.monitor"), "loss").unwrap();
        assert!(
            p.message.starts_with("unknown metric `loss`"),
            "{}",
            p.message
        );
    }

    #[test]
    fn nearest_needs_half_similarity() {
        assert_eq!(nearest("hiden", ["hidden", "layers"]), Some("hidden"));
        assert_eq!(nearest("zzzz", ["hidden", "layers"]), None);
    }
}
