#!/usr/bin/env python3
"""The seeds' preprocessing pipeline, timed, for bench/preprocess.sh.

pandas reads the CSV; each text is cleaned with `re` (HTML tags, entities, URLs,
lower case, apostrophes dropped, other punctuation to spaces), split on whitespace,
NLTK's English stop words removed (the list is vendored below: NLTK's data download
is not available here) and each word stemmed with NLTK's PorterStemmer (or
lemmatised with NLTK's WordNetLemmatizer); the rows are split 80/10/10 stratified;
a Keras-style Tokenizer (plain Python, keras.preprocessing.text.Tokenizer's
algorithm for lists of tokens) is fitted on the training rows and every row is
encoded and padded to max_len (keras pad_sequences, padding and truncating "post").
Prints one JSON object: rows, seconds, rows_per_second, vocabulary size.

  preprocess.py CSV [--stem porter|wordnet] [--wordnet DIR] [--max-len N] [--num-words N]
                    [--memo]

--memo memoises the stemmer per word (functools.lru_cache), which the seeds did not.
"""

import argparse
import html
import json
import re
import time
from collections import OrderedDict

import numpy as np
import pandas as pd

# NLTK stopwords.words("english"), 179 words (the same list lab vendors).
STOPWORDS = {
    'i', 'me', 'my', 'myself', 'we', 'our', 'ours', 'ourselves', 'you', "you're",
    "you've", "you'll", "you'd", 'your', 'yours', 'yourself', 'yourselves', 'he',
    'him', 'his', 'himself', 'she', "she's", 'her', 'hers', 'herself', 'it', "it's",
    'its', 'itself', 'they', 'them', 'their', 'theirs', 'themselves', 'what', 'which',
    'who', 'whom', 'this', 'that', "that'll", 'these', 'those', 'am', 'is', 'are',
    'was', 'were', 'be', 'been', 'being', 'have', 'has', 'had', 'having', 'do', 'does',
    'did', 'doing', 'a', 'an', 'the', 'and', 'but', 'if', 'or', 'because', 'as',
    'until', 'while', 'of', 'at', 'by', 'for', 'with', 'about', 'against', 'between',
    'into', 'through', 'during', 'before', 'after', 'above', 'below', 'to', 'from',
    'up', 'down', 'in', 'out', 'on', 'off', 'over', 'under', 'again', 'further',
    'then', 'once', 'here', 'there', 'when', 'where', 'why', 'how', 'all', 'any',
    'both', 'each', 'few', 'more', 'most', 'other', 'some', 'such', 'no', 'nor', 'not',
    'only', 'own', 'same', 'so', 'than', 'too', 'very', 's', 't', 'can', 'will',
    'just', 'don', "don't", 'should', "should've", 'now', 'd', 'll', 'm', 'o', 're',
    've', 'y', 'ain', 'aren', "aren't", 'couldn', "couldn't", 'didn', "didn't",
    'doesn', "doesn't", 'hadn', "hadn't", 'hasn', "hasn't", 'haven', "haven't", 'isn',
    "isn't", 'ma', 'mightn', "mightn't", 'mustn', "mustn't", 'needn', "needn't",
    'shan', "shan't", 'shouldn', "shouldn't", 'wasn', "wasn't", 'weren', "weren't",
    'won', "won't", 'wouldn', "wouldn't",
}

# Apostrophes are dropped before matching (as lab does), so match "dont" too.
STOPWORDS |= {w.replace("'", "") for w in STOPWORDS}

TAG = re.compile(r"<[^<>]*>")
URL = re.compile(r"(?:\bhttps?://|\bwww\.)\S*", re.IGNORECASE)
APOSTROPHE = re.compile("['`\u2018\u2019]")
NON_WORD = re.compile(r"[^\w\s]|_")


class Tokenizer:
    """keras.preprocessing.text.Tokenizer's fit_on_texts / texts_to_sequences for texts
    that are already lists of tokens."""

    def __init__(self, num_words=None, oov_token=None):
        self.num_words = num_words
        self.oov_token = oov_token
        self.word_counts = OrderedDict()
        self.word_index = {}

    def fit_on_texts(self, texts):
        for seq in texts:
            for w in seq:
                if w in self.word_counts:
                    self.word_counts[w] += 1
                else:
                    self.word_counts[w] = 1
        wcounts = list(self.word_counts.items())
        wcounts.sort(key=lambda x: x[1], reverse=True)
        sorted_voc = [] if self.oov_token is None else [self.oov_token]
        sorted_voc.extend(wc[0] for wc in wcounts)
        self.word_index = dict(zip(sorted_voc, range(1, len(sorted_voc) + 1)))

    def texts_to_sequences(self, texts):
        num_words = self.num_words
        oov = self.word_index.get(self.oov_token)
        out = []
        for seq in texts:
            vect = []
            for w in seq:
                i = self.word_index.get(w)
                if i is not None:
                    if num_words and i >= num_words:
                        if oov is not None:
                            vect.append(oov)
                    else:
                        vect.append(i)
                elif oov is not None:
                    vect.append(oov)
            out.append(vect)
        return out


def pad_sequences(seqs, maxlen):
    """keras pad_sequences(seqs, maxlen, padding="post", truncating="post")."""
    x = np.zeros((len(seqs), maxlen), dtype="int32")
    for i, s in enumerate(seqs):
        s = s[:maxlen]
        x[i, : len(s)] = s
    return x


def stratified_split(labels, seed=0, fractions=(0.8, 0.1, 0.1)):
    rng = np.random.default_rng(seed)
    parts = ([], [], [])
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_valid = round(len(idx) * fractions[1])
        n_test = round(len(idx) * fractions[2])
        n_train = len(idx) - n_valid - n_test
        parts[0].append(idx[:n_train])
        parts[1].append(idx[n_train : n_train + n_valid])
        parts[2].append(idx[n_train + n_valid :])
    return [np.sort(np.concatenate(p)) for p in parts]


def make_stem(kind, wordnet_dir, memo):
    if kind == "porter":
        from nltk.stem import PorterStemmer

        stem = PorterStemmer().stem
    else:
        import nltk
        from nltk.corpus.reader.wordnet import WordNetCorpusReader

        class Reader(WordNetCorpusReader):
            def map_wn(self, version="wordnet"):
                return None  # no Open Multilingual Wordnet mapping (needs a download)

        nltk.data.path.append(wordnet_dir)  # NLTK only reads from its data path
        wn = Reader(wordnet_dir, None)

        def stem(word):
            # WordNetLemmatizer().lemmatize(word): the noun reading, shortest lemma.
            lemmas = wn._morphy(word, "n")
            return min(lemmas, key=len) if lemmas else word

    if memo:
        from functools import lru_cache

        stem = lru_cache(maxsize=None)(stem)
    return stem


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--stem", choices=["porter", "wordnet"], default="porter")
    ap.add_argument("--wordnet", help="WordNet 3.0 dict directory (for --stem wordnet)")
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--num-words", type=int, default=20000)
    ap.add_argument("--memo", action="store_true")
    args = ap.parse_args()
    stem = make_stem(args.stem, args.wordnet, args.memo)

    def clean(text):
        text = TAG.sub(" ", text)
        text = html.unescape(text)
        text = URL.sub(" ", text)
        text = text.lower()
        text = APOSTROPHE.sub("", text)
        text = NON_WORD.sub(" ", text)
        return [stem(w) for w in text.split() if w not in STOPWORDS]

    start = time.perf_counter()
    df = pd.read_csv(args.csv)
    df = df[df["text"].str.strip().astype(bool)]
    df["tokens"] = df["text"].apply(clean)
    labels = df["label"].astype("category").cat.codes.to_numpy()
    train, valid, test = stratified_split(labels)
    tokens = df["tokens"].tolist()
    tok = Tokenizer(num_words=args.num_words, oov_token="<unk>")
    tok.fit_on_texts(tokens[i] for i in train)
    encoded = {
        name: pad_sequences(tok.texts_to_sequences(tokens[i] for i in rows), args.max_len)
        for name, rows in (("train", train), ("valid", valid), ("test", test))
    }
    seconds = time.perf_counter() - start
    rows = len(df)
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": seconds,
                "rows_per_second": rows / seconds,
                "vocab": min(len(tok.word_index) + 1, args.num_words),
                "ids": int(sum((a != 0).sum() for a in encoded.values())),
                "stem": args.stem + (" (memoised)" if args.memo else ""),
            }
        )
    )


if __name__ == "__main__":
    main()
