"""The seed projects' deployment, for bench/serve.sh: a Flask app under Gunicorn
serving a PyTorch LSTM of the same size as the lab model it is compared with.

It loads a `lab export` directory (MODEL_DIR): the vocabulary, the settings and
lab's own weights (lab's LSTM follows PyTorch's gate order, so they load into
torch.nn.LSTM unchanged), and answers POST /v1/predict {"texts": [...]} with the
same JSON as `lab serve`. Cleaning is the usual notebook regex: lowercase,
strip tags, drop apostrophes, split on anything that is not a letter or digit.
"""
import json
import os
import re

import torch
from flask import Flask, jsonify, request
from safetensors.torch import load_file

torch.set_num_threads(1)  # one thread per Gunicorn worker, as deployed
MODEL_DIR = os.environ["MODEL_DIR"]
with open(os.path.join(MODEL_DIR, "vocab.json")) as f:
    VOCAB = json.load(f)
with open(os.path.join(MODEL_DIR, "config.json")) as f:
    CONFIG = json.load(f)["config"]
CLASSES = VOCAB["classes"]
STOI = {t: i for i, t in enumerate(VOCAB["itos"])}
MODEL_CFG = CONFIG["model"]
MAX_LEN = CONFIG["preprocess"]["max_len"]
assert MODEL_CFG["cell"] == "lstm" and not MODEL_CFG["bidirectional"] and MODEL_CFG["layers"] == 1
assert MODEL_CFG["pooling"] == "last"


class LSTMClassifier(torch.nn.Module):
    def __init__(self, vocab, emb, hidden, classes):
        super().__init__()
        self.embedding = torch.nn.Embedding(vocab, emb, padding_idx=0)
        self.lstm = torch.nn.LSTM(emb, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, classes)

    def forward(self, ids, lengths):
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            self.embedding(ids), lengths, batch_first=True, enforce_sorted=False
        )
        _, (h, _) = self.lstm(packed)
        return self.head(h[-1])


MODEL = LSTMClassifier(len(VOCAB["itos"]), MODEL_CFG["embedding_dim"], MODEL_CFG["hidden"], len(CLASSES))
w = load_file(os.path.join(MODEL_DIR, "model.safetensors"))
MODEL.load_state_dict(
    {
        "embedding.weight": w["embedding.weight"],
        "lstm.weight_ih_l0": w["rnn.0.fwd.w_ih"],
        "lstm.weight_hh_l0": w["rnn.0.fwd.w_hh"],
        "lstm.bias_ih_l0": w["rnn.0.fwd.b_ih"],
        "lstm.bias_hh_l0": w["rnn.0.fwd.b_hh"],
        "head.weight": w["head.weight"],
        "head.bias": w["head.bias"],
    }
)
MODEL.eval()
TAG = re.compile(r"<[^>]+>")
NON_WORD = re.compile(r"[^a-z0-9]+")


def encode(text):
    text = TAG.sub(" ", text.lower()).replace("'", "")
    ids = [STOI.get(t, 1) for t in NON_WORD.split(text) if t][:MAX_LEN]
    return ids or [1]


app = Flask(__name__)


@app.post("/v1/predict")
def predict():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("texts"), list):
        return jsonify(error='expected {"texts": [...]}'), 400
    encoded = [encode(str(t)) for t in body["texts"]]
    if not encoded:
        return jsonify(predictions=[])
    lengths = torch.tensor([len(e) for e in encoded])
    ids = torch.zeros(len(encoded), int(lengths.max()), dtype=torch.long)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = torch.tensor(e)
    with torch.inference_mode():
        probs = torch.softmax(MODEL(ids, lengths), dim=-1).tolist()
    return jsonify(
        predictions=[
            {"label": CLASSES[max(range(len(p)), key=p.__getitem__)], "probabilities": dict(zip(CLASSES, p))}
            for p in probs
        ]
    )


@app.get("/healthz")
def healthz():
    return jsonify(status="ok")
