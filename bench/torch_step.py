"""PyTorch's side of bench/compare.sh (CPU) and bench/gpu.sh (`--device cuda`: cuDNN's
fused recurrent kernels): the same models and shapes as bench/step.rs
(Embedding(20000, 100) -> LSTM/GRU(128) -> Linear(.., 2), batch 64, 128 tokens,
Adam, no dropout). Prints one JSON object like the Rust side.
    python3 bench/torch_step.py MODEL [--steps N] [--batch B] [--time T] [--threads N]
        [--device cpu|cuda|cuda:N]"""
import json
import statistics
import sys
import time

import torch

VOCAB, EMB, HIDDEN = 20000, 100, 128


class Net(torch.nn.Module):
    def __init__(self, cell, bidirectional, layers):
        super().__init__()
        self.emb = torch.nn.Embedding(VOCAB, EMB, padding_idx=0)
        rnn = torch.nn.LSTM if cell == "lstm" else torch.nn.GRU
        self.rnn = rnn(EMB, HIDDEN, num_layers=layers, bidirectional=bidirectional)
        self.dirs = 2 if bidirectional else 1
        self.head = torch.nn.Linear(HIDDEN * self.dirs, 2)

    def forward(self, ids):  # ids: (time, batch)
        _, state = self.rnn(self.emb(ids))
        h = state[0] if isinstance(state, tuple) else state
        last = torch.cat([h[-1 - d] for d in reversed(range(self.dirs))], dim=1)
        return self.head(last)


def main():
    model = sys.argv[1]
    args = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    steps = int(args.get("--steps", 10))
    batch, steps_t = int(args.get("--batch", 64)), int(args.get("--time", 128))
    threads = int(args.get("--threads", 2))
    device = torch.device(args.get("--device", "cpu"))
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    cell, bi, layers = {
        "lstm": ("lstm", False, 1),
        "gru": ("gru", False, 1),
        "bilstm": ("lstm", True, 1),
        "lstm2": ("lstm", False, 2),
    }[model]
    net = Net(cell, bi, layers).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    ids = torch.randint(1, VOCAB, (steps_t, batch)).to(device)
    labels = (torch.arange(batch) % 2).to(device)

    def sync():
        # CUDA runs asynchronously: a time is the GPU's only once it has caught up.
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    train, infer = [], []
    for i in range(steps + 2):
        start = time.perf_counter()
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(ids), labels)
        loss.backward()
        opt.step()
        sync()
        if i >= 2:
            train.append((time.perf_counter() - start) * 1e3)
    with torch.inference_mode():
        for i in range(steps + 2):
            start = time.perf_counter()
            net(ids).tolist()
            if i >= 2:
                infer.append((time.perf_counter() - start) * 1e3)
    out = {"model": model, "device": str(device), "train_ms": statistics.median(train),
           "infer_ms": statistics.median(infer), "threads": torch.get_num_threads()}
    if device.type == "cuda":
        out.update(gpu=torch.cuda.get_device_name(device), torch=torch.__version__,
                   cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                   cudnn_enabled=torch.backends.cudnn.enabled)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
