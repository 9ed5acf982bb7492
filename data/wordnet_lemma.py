#!/usr/bin/env python3
"""Write data/wordnet-lemma.txt.gz, the lemma table behind `preprocess.stem = "lemma"`.

Usage: python3 data/wordnet_lemma.py WORDNET_DICT_DIR OUT_FILE

WORDNET_DICT_DIR holds WordNet 3.0's index.{noun,verb,adj,adv} and
{noun,verb,adj,adv}.exc (Debian's wordnet-base puts them in /usr/share/wordnet;
data/wordnet_lemma.sh extracts them from the package). Standard library only.

Kept: single words of lower-case letters and digits (a cleaned token never holds
anything else). Lines of the output, sorted within each kind:

    e POS FORM LEMMA   an irregular form (POS: n, v, a, r), its first listed lemma
                       that is a single word
    w WORD FLAGS       a word of WordNet's lemma index and its parts of speech
                       (a subset of "nvar", in that order)

The gzip stream has no file name and mtime 0, so equal input gives equal bytes.
"""

import gzip
import io
import os
import re
import sys

POS = [("n", "noun"), ("v", "verb"), ("a", "adj"), ("r", "adv")]
WORD = re.compile(r"^[a-z0-9]+$")


def main(src, out):
    exceptions = []
    index = {}
    for tag, name in POS:
        with open(os.path.join(src, f"{name}.exc"), encoding="utf-8") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 2 or not WORD.match(parts[0]):
                    continue
                lemma = next((p for p in parts[1:] if WORD.match(p)), None)
                if lemma is not None:
                    exceptions.append((tag, parts[0], lemma))
        with open(os.path.join(src, f"index.{name}"), encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):  # the licence at the top of the file
                    continue
                word = line.split(" ", 1)[0]
                if WORD.match(word):
                    index.setdefault(word, set()).add(tag)
    order = {t: i for i, (t, _) in enumerate(POS)}
    lines = [
        "# WordNet 3.0 lemma table for lab's preprocess.stem = \"lemma\" (see data/README.md).",
        "# WordNet 3.0 Copyright 2006 by Princeton University. All rights reserved.",
        "# Licence: the WordNet 3.0 licence, data/WORDNET-LICENSE.",
    ]
    lines += [f"e {t} {form} {lemma}" for t, form, lemma in sorted(exceptions, key=lambda e: (order[e[0]], e[1]))]
    lines += [
        f"w {word} {''.join(sorted(tags, key=order.get))}" for word, tags in sorted(index.items())
    ]
    raw = ("\n".join(lines) + "\n").encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    with open(out, "wb") as f:
        f.write(buf.getvalue())
    print(f"{out}: {len(exceptions)} exceptions, {len(index)} index words, "
          f"{len(raw)} bytes raw, {len(buf.getvalue())} gzipped")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
