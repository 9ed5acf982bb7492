#!/usr/bin/env python3
"""bench/ui_load.sh's client: times every page and JSON endpoint of a running
`lab ui`, sequential requests on a fresh connection each (urllib, standard
library only), and prints one row per URL: n, p50, p95 and max milliseconds
and the body's bytes.

    python3 bench/ui_load.py http://127.0.0.1:PORT [--experiment big]
        [--requests 30] [--warmup 3] [--budget-s 60] [--bar-ms 300]
        [--json OUT.json] [--markdown OUT.md] [--strict]

The trials are found through the API: T and T2 the first two done trials of
the experiment, R its first running one (`/api/experiments/E/trials?status=`);
the page of every other experiment of the store (`/api/experiments`) is timed
too.
A response of type text/event-stream (a live stream) is timed to its first
event. A URL stops being sampled once its requests have taken --budget-s
seconds (the n column says how many were timed; at least 3). Exit status 1 when a URL answered anything but 2xx (or nothing), and
with --strict also when a p95 is over the bar.
"""
import argparse
import json
import platform
import statistics
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_S = 60


def fetch(url):
    """(status, bytes, milliseconds) of one GET; status 0 when no answer came."""
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as r:
            if r.headers.get_content_type() == "text/event-stream":
                body = first_event(r)
            else:
                body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    except (urllib.error.URLError, OSError) as e:
        print(f"{url}: {e}", file=sys.stderr)
        body, status = b"", 0
    return status, len(body), (time.perf_counter() - start) * 1000.0


def first_event(r):
    """The bytes of a server-sent-event stream up to its first blank line."""
    body = b""
    while b"\n\n" not in body and b"\r\n\r\n" not in body:
        line = r.readline()
        if not line:
            break
        body += line
    return body


def get_json(base, path):
    with urllib.request.urlopen(base + path, timeout=TIMEOUT_S) as r:
        return json.load(r)


def trial_ids(base, experiment, status):
    quoted = urllib.parse.quote(experiment, safe="")
    rows = get_json(base, f"/api/experiments/{quoted}/trials?status={status}")
    return [row["id"] for row in rows]


def urls(base, experiment):
    done = trial_ids(base, experiment, "done")
    running = trial_ids(base, experiment, "running")
    if len(done) < 2:
        sys.exit(f"experiment {experiment} has {len(done)} done trials; 2 are needed")
    if not running:
        sys.exit(f"experiment {experiment} has no running trial")
    e = urllib.parse.quote(experiment, safe="")
    t, t2, r = done[0], done[1], running[0]
    others = [
        "/experiments/" + urllib.parse.quote(x["name"], safe="")
        for x in get_json(base, "/api/experiments")
        if x["name"] != experiment
    ]
    return [
        "/",
        "/api/experiments",
        "/api/stamp",
        "/live/experiments",
        f"/experiments/{e}",
        f"/experiments/{e}/live",
        f"/experiments/{e}?top=all",
        f"/api/experiments/{e}",
        f"/api/experiments/{e}/stamp",
        f"/api/experiments/{e}/trials",
        f"/trials/{t}",
        f"/trials/{r}",
        f"/trials/{t}/live",
        f"/trials/{t}/errors",
        f"/api/trials/{t}",
        f"/api/trials/{t}/stamp",
        f"/compare?a={t}&b={t2}",
    ] + others


def percentile(sorted_ms, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    if len(sorted_ms) == 1:
        return sorted_ms[0]
    at = (len(sorted_ms) - 1) * q
    lo = int(at)
    hi = min(lo + 1, len(sorted_ms) - 1)
    return sorted_ms[lo] + (sorted_ms[hi] - sorted_ms[lo]) * (at - lo)


def measure(base, path, requests, warmup, budget_s):
    for _ in range(warmup):
        fetch(base + path)
    samples, spent = [], 0.0
    while len(samples) < requests and (len(samples) < 3 or spent < budget_s * 1000.0):
        samples.append(fetch(base + path))
        spent += samples[-1][2]
    ms = sorted(s[2] for s in samples)
    statuses = sorted({s[0] for s in samples})
    return {
        "url": path,
        "statuses": statuses,
        "n": len(samples),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 0.95), 2),
        "max_ms": round(ms[-1], 2),
        "bytes": samples[-1][1],
    }


def table(rows, bar_ms):
    out = [
        "| URL | status | n | p50 ms | p95 ms | max ms | bytes |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        status = ",".join(str(s) for s in r["statuses"])
        p95 = f"{r['p95_ms']:.1f}"
        if r["p95_ms"] >= bar_ms:
            p95 = f"**{p95}**"
        out.append(
            f"| `{r['url']}` | {status} | {r['n']} | {r['p50_ms']:.1f} | {p95} | "
            f"{r['max_ms']:.1f} | {r['bytes']} |"
        )
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("--experiment", default="big")
    ap.add_argument("--requests", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--budget-s", type=float, default=60.0)
    ap.add_argument("--bar-ms", type=float, default=300.0)
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--strict", action="store_true")
    args = ap.parse_args()
    base = args.base.rstrip("/")

    rows = []
    for path in urls(base, args.experiment):
        row = measure(base, path, args.requests, args.warmup, args.budget_s)
        print(f"{path}: p95 {row['p95_ms']:.1f} ms", file=sys.stderr)
        rows.append(row)

    bad = [r["url"] for r in rows if any(not 200 <= s < 300 for s in r["statuses"])]
    slow = [r["url"] for r in rows if r["p95_ms"] >= args.bar_ms]
    text = table(rows, args.bar_ms)
    verdict = (
        f"bar: every p95 under {args.bar_ms:.0f} ms: "
        + ("yes" if not slow else f"no ({len(slow)} over: {', '.join(slow)})")
    )
    print(text)
    print()
    print(verdict)
    if bad:
        print(f"non-2xx answers: {', '.join(bad)}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n\n" + verdict + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "base": base,
                    "experiment": args.experiment,
                    "requests": args.requests,
                    "warmup": args.warmup,
                    "budget_s": args.budget_s,
                    "bar_ms": args.bar_ms,
                    "python": platform.python_version(),
                    "rows": rows,
                    "over_bar": slow,
                    "non_2xx": bad,
                },
                f,
                indent=2,
            )
    if bad or (args.strict and slow):
        sys.exit(1)


if __name__ == "__main__":
    main()
