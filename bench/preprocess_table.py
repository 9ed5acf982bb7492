#!/usr/bin/env python3
"""Print bench/preprocess.sh's results (JSON lines) as tables. Standard library only."""

import json
import sys


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    small = [r for r in rows if r["side"] != "lab-big"]
    big = [r for r in rows if r["side"] == "lab-big"]
    lab = {r["stem"]: r["data"] for r in small if r["side"] == "lab"}
    pair = {"porter": "snowball", "wordnet": "lemma"}
    print("| pipeline | base forms | rows | seconds | rows/s | lab ÷ this |")
    print("|---|---|---|---|---|---|")
    for r in small:
        d = r["data"]
        ratio = ""
        if r["side"] != "lab" and pair.get(r["stem"]) in lab:
            ratio = f"{lab[pair[r['stem']]]['rows_per_second'] / d['rows_per_second']:.1f}×"
        name = {
            "lab": "lab prepare",
            "python": "Python (pandas + NLTK + Keras-style)",
            "python-memo": "Python, stemmer memoised",
        }[r["side"]]
        form = {
            "snowball": "Snowball (lab)",
            "lemma": "WordNet lemma (lab)",
            "porter": "NLTK PorterStemmer",
            "wordnet": "NLTK WordNetLemmatizer",
        }[r["stem"]]
        print(
            f"| {name} | {form} | {d['rows']:,} | {d['seconds']:.2f} | "
            f"{d['rows_per_second']:,.0f} | {ratio} |"
        )
    for r in big:
        d = r["data"]
        rss = d["max_rss_kb"] / 1024
        print()
        print(
            f"lab prepare, {d['rows']:,} rows: {d['seconds']:.1f} s ({d['rows_per_second']:,.0f} rows/s; "
            f"hash {d['hash_seconds']:.1f} s, scan {d['scan_seconds']:.1f} s, "
            f"count {d['count_seconds']:.1f} s, encode {d['encode_seconds']:.1f} s), "
            f"wall {d['wall']}, peak RSS {rss:,.0f} MiB (/usr/bin/time -v), "
            f"cache file {d['bytes'] / 2**20:,.0f} MiB, {sum(d['split_tokens']):,} ids as u{d['id_width'] * 8}"
        )


if __name__ == "__main__":
    main(sys.argv[1])
