#!/usr/bin/env python3
"""Write a big review file for bench/preprocess.sh by repeating a small one.

  repeat_csv.py IN.csv[.gz] OUT.csv ROWS

OUT.csv gets IN's header, then IN's data rows over and over (in order) until it
holds ROWS data rows: the 3.6-million-row benchmark file is the 25,000 IMDb reviews
of data/imdb.csv.gz repeated 144 times. Not a real corpus of that size: the
vocabulary is IMDb's, only the counts grow. Each row of IN must be one line (true
of the shipped files, see data/README.md). Standard library only.
"""

import gzip
import sys


def main(src, out, rows):
    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rb") as f:
        header, *lines = f.read().splitlines(keepends=True)
    block = b"".join(lines)
    full, rest = divmod(rows, len(lines))
    with open(out, "wb") as f:
        f.write(header)
        for _ in range(full):
            f.write(block)
        f.write(b"".join(lines[:rest]))
    print(f"{out}: {rows} rows ({full} copies of {len(lines)} from {src}, then {rest})")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
