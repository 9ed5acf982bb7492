#!/usr/bin/env bash
# Preprocessing throughput: lab against the seeds' Python pipeline (pandas + NLTK +
# a Keras-style tokenizer, bench/preprocess.py) on the same rows, same machine, one
# run each; then lab alone on a 3.6-million-row file under /usr/bin/time -v.
#
#   bench/preprocess.sh [--rows N] [--no-big] [--no-lemma] [--memo] [--dir DIR] [--json FILE]
#
# --rows N   rows of the big file (default 3600000: data/imdb.csv.gz's 25,000 reviews
#            repeated 144 times by bench/repeat_csv.py; written to DIR, not committed)
# --no-big   skip the big file;  --no-lemma  skip the lemmatiser comparison
# --memo     also time Python with a memoised stemmer (which the seeds did not have)
# --dir DIR  scratch directory, kept (default: a new one under /tmp, removed at the end);
#            the big file (4.8 GB for 3.6M rows) and its cache (about 1 GB) go there
# Needs python3, apt-get and dpkg-deb (WordNet data for NLTK's lemmatiser), /usr/bin/time.
set -euo pipefail
cd "$(dirname "$0")/.."

rows=3600000 big=1 lemma=1 memo=0 dir="" json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --rows) rows="$2"; shift ;;
    --no-big) big=0 ;;
    --no-lemma) lemma=0 ;;
    --memo) memo=1 ;;
    --dir) dir="$2"; shift ;;
    --json) json="$2"; shift ;;
    *) echo "unknown option $1 (--rows N, --no-big, --no-lemma, --memo, --dir DIR, --json FILE)" >&2; exit 2 ;;
  esac
  shift
done

cargo build --release --quiet --bin lab
lab="${CARGO_TARGET_DIR:-target}/release/lab"

venv=bench/.venv-prep
if ! "$venv/bin/python" -c "import nltk, pandas" 2>/dev/null; then
  echo "installing nltk and pandas into $venv (once)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet nltk pandas
fi

if [ -z "$dir" ]; then
  dir=$(mktemp -d /tmp/lab-bench-prep.XXXXXX)
  trap 'rm -rf "$dir"' EXIT
fi
mkdir -p "$dir"
results="$dir/results.jsonl"
: >"$results"
spec=bench/prepare_imdb.toml
imdb=data/imdb.csv.gz

record() { # side stem JSON-line
  echo "{\"side\": \"$1\", \"stem\": \"$2\", \"data\": $3}" >>"$results"
}

echo "== 25,000 IMDb reviews: clean + stop words + stem + vocabulary + encode" >&2
echo "lab, snowball" >&2
record lab snowball "$("$lab" --db "$dir/lab.db" prepare "$spec" --rebuild --json)"
echo "python, porter (the seeds' pipeline)" >&2
record python porter "$("$venv/bin/python" bench/preprocess.py "$imdb" --stem porter)"
if [ "$memo" = 1 ]; then
  echo "python, porter memoised" >&2
  record python-memo porter "$("$venv/bin/python" bench/preprocess.py "$imdb" --stem porter --memo)"
fi

if [ "$lemma" = 1 ]; then
  # NLTK's WordNet reader wants WordNet's dict files: Debian's wordnet-base has them
  # but lexnames, which is rebuilt from its manual page (lexnames(5WN)).
  wn="$dir/wordnet"
  if [ ! -f "$wn/index.noun" ]; then
    (cd "$dir" && apt-get download wordnet-base >/dev/null 2>&1)
    dpkg-deb -x "$dir"/wordnet-base_*_all.deb "$dir/deb"
    cp -r "$dir/deb/usr/share/wordnet" "$wn"
    zcat "$dir/deb/usr/share/man/man5/lexnames.5WN.gz" | awk -F'\t' '/^[0-9][0-9]\t/ {
      split($2, a, "."); c = (a[1] == "noun") ? 1 : (a[1] == "verb") ? 2 : (a[1] == "adj") ? 3 : 4;
      gsub(/ /, "", $2); print $1 "\t" $2 "\t" c }' >"$wn/lexnames"
  fi
  echo "lab, lemma" >&2
  record lab lemma "$("$lab" --db "$dir/lab.db" prepare "$spec" --set preprocess.stem=lemma --rebuild --json)"
  echo "python, WordNetLemmatizer" >&2
  record python wordnet "$("$venv/bin/python" -W ignore bench/preprocess.py "$imdb" --stem wordnet --wordnet "$wn")"
fi

if [ "$big" = 1 ]; then
  bigcsv="$dir/imdb_${rows}.csv"
  echo "== $rows rows (IMDb repeated): lab under /usr/bin/time -v" >&2
  [ -f "$bigcsv" ] || python3 bench/repeat_csv.py "$imdb" "$bigcsv" "$rows" >&2
  out=$(/usr/bin/time -v -o "$dir/time.txt" "$lab" --db "$dir/lab.db" prepare "$spec" \
    --set "data.path=$(realpath "$bigcsv")" --rebuild --json)
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$dir/time.txt")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$dir/time.txt")
  record lab-big snowball "$(echo "$out" | sed "s/}\$/, \"max_rss_kb\": $rss, \"wall\": \"$wall\"}/")"
fi

python3 bench/preprocess_table.py "$results"
[ -z "$json" ] || cp "$results" "$json"
