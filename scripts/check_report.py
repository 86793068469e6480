#!/usr/bin/env python3
"""Checks a `focaldet compare` report against the runs it came from: every row of
final_metrics.csv must equal the last val evaluation in that run's eval.jsonl (to the 10
significant digits the CSV keeps), and each group's mean AP in README.md must be the mean of its
runs' AP. Usage: scripts/check_report.py REPORT_DIR   (exit 1 on the first mismatch)."""
import csv, json, os, statistics, sys

out = sys.argv[1]
rows = list(csv.DictReader(open(os.path.join(out, "final_metrics.csv"))))
checked = 0
by_group = {}
for row in rows:
    evals = [json.loads(l) for l in open(os.path.join(row["run"], "eval.jsonl")) if l.strip()]
    last = [e for e in evals if e.get("split") == "val"][-1]
    if int(row["iter"]) != last["iter"]:
        sys.exit(f"{row['run']}: report at iteration {row['iter']}, eval.jsonl at {last['iter']}")
    for key, value in row.items():
        if key in ("run", "group", "seed", "iter") or value == "":
            continue
        want = last["AP_per_class"][key[3:]] if key.startswith("AP_") else last[key]
        if abs(float(value) - want) > 1e-9 * max(1.0, abs(want)):
            sys.exit(f"{row['run']}: {key} is {value} in the report, {want} in eval.jsonl")
        checked += 1
    by_group.setdefault(row["group"], []).append(last["AP"])
readme = open(os.path.join(out, "README.md")).read()
for group, aps in by_group.items():
    text = f"{statistics.mean(aps):.3f}" + (f" ± {statistics.stdev(aps):.3f}" if len(aps) > 1 else "")
    if f"| {group} | {len(aps)} | {text} |" not in readme and f"| {group} | {len(aps)} | **{text}** |" not in readme:
        sys.exit(f"README.md: no row '| {group} | {len(aps)} | {text} |' in the metrics table")
print(f"{out}: {checked} numbers of {len(rows)} runs equal their eval.jsonl; "
      f"{len(by_group)} group means match")
