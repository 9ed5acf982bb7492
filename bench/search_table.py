#!/usr/bin/env python3
"""bench/search.sh's table: one row per run (experiment) of the store, then
the sampler medians against the grid. Reads SQLite with Python's own module.

    python3 bench/search_table.py STORE.db [--json OUT.json] [--within 0.005]
"""
import argparse
import json
import sqlite3
import statistics


def runs(conn):
    out = {}
    for (exp_id, name) in conn.execute("SELECT id, name FROM experiments ORDER BY id"):
        trials = conn.execute(
            """SELECT t.id, t.status, t.finished_at,
                 (SELECT sum(seconds) FROM epochs e WHERE e.trial_id = t.id),
                 (SELECT value FROM metrics m WHERE m.trial_id = t.id
                    AND m.split = 'valid' AND m.name = 'macro_f1'),
                 (SELECT value FROM metrics m WHERE m.trial_id = t.id
                    AND m.split = 'test' AND m.name = 'accuracy')
               FROM trials t WHERE t.experiment_id = ? AND t.status IN ('done', 'pruned')
               ORDER BY t.finished_at, t.id""",
            (exp_id,),
        ).fetchall()
        out[name] = [
            {"status": s, "seconds": sec or 0.0, "valid": v, "test": t}
            for (_, s, _, sec, v, t) in trials
        ]
    return out


def summary(trials, target):
    done = [t for t in trials if t["valid"] is not None]
    best = max(done, key=lambda t: t["valid"])
    spent, reached = 0.0, None
    for t in trials:
        spent += t["seconds"]
        if reached is None and t["valid"] is not None and t["valid"] >= target:
            reached = spent
    return {
        "trials": len(trials),
        "pruned": sum(t["status"] == "pruned" for t in trials),
        "train_seconds": sum(t["seconds"] for t in trials),
        "best_valid_macro_f1": best["valid"],
        "its_test_accuracy": best["test"],
        "seconds_to_target": reached,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--json")
    ap.add_argument("--within", type=float, default=0.005)
    args = ap.parse_args()
    conn = sqlite3.connect(args.db)
    all_runs = runs(conn)
    grid = all_runs.pop("grid")
    grid_best = max(t["valid"] for t in grid if t["valid"] is not None)
    target = grid_best - args.within
    rows = {"grid": summary(grid, target)}
    rows.update({name: summary(trials, target) for name, trials in all_runs.items()})
    fmt = lambda x, d: "-" if x is None else f"{x:.{d}f}"
    print(f"target: valid macro-F1 >= {target:.4f} (grid best {grid_best:.4f} - {args.within})")
    print("| run | trials | pruned | train s | best valid F1 | its test acc | s to target |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows.items():
        print(f"| {name} | {r['trials']} | {r['pruned']} | {r['train_seconds']:.0f} | "
              f"{fmt(r['best_valid_macro_f1'], 4)} | {fmt(r['its_test_accuracy'], 4)} | "
              f"{fmt(r['seconds_to_target'], 0)} |")
    grid_s = rows["grid"]["train_seconds"]
    medians = {}
    for sampler in ("random-asha", "tpe-asha"):
        mine = [r for n, r in rows.items() if n.startswith(sampler + "-")]
        if not mine:
            continue
        reach = [r["seconds_to_target"] for r in mine]
        # A run that never reached the target counts as infinitely slow.
        med = statistics.median(float("inf") if s is None else s for s in reach)
        medians[sampler] = {
            "median_train_seconds": statistics.median(r["train_seconds"] for r in mine),
            "median_seconds_to_target": None if med == float("inf") else med,
            "median_best_valid_macro_f1": statistics.median(r["best_valid_macro_f1"] for r in mine),
            "reached": sum(s is not None for s in reach),
            "runs": len(mine),
        }
    print()
    print("| sampler | runs reaching target | median s to target | vs grid total s | median train s | bar (<= 1/3 grid) |")
    print("|---|---:|---:|---:|---:|---|")
    for sampler, m in medians.items():
        s = m["median_seconds_to_target"]
        ratio = "-" if s is None else f"{s / grid_s:.2f}"
        bar = "met" if s is not None and s <= grid_s / 3 else "not met"
        print(f"| {sampler} | {m['reached']}/{m['runs']} | {fmt(s, 0)} | {ratio} | "
              f"{m['median_train_seconds']:.0f} | {bar} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"target": target, "grid_best": grid_best, "runs": rows,
                       "medians": medians, "grid_train_seconds": grid_s}, f, indent=2)


if __name__ == "__main__":
    main()
