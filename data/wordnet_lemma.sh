#!/usr/bin/env bash
# Rebuild data/wordnet-lemma.txt.gz (the table behind preprocess.stem = "lemma")
# from Debian's wordnet-base package (WordNet 3.0 data, WordNet 3.0 licence).
# Needs apt-get, dpkg-deb and python3 (standard library only); see data/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="1:3.0-37"
SHA256="61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download "wordnet-base=$VERSION")
deb=$(ls "$work"/wordnet-base_*_all.deb)
echo "$SHA256  $deb" | sha256sum --check --quiet
dpkg-deb -x "$deb" "$work/x"
python3 data/wordnet_lemma.py "$work/x/usr/share/wordnet" data/wordnet-lemma.txt.gz
sha256sum data/wordnet-lemma.txt.gz
