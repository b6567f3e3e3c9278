#!/usr/bin/env python3
"""Prints, for each *.out file here, each run's store 1/call and HTTP
single-event rate at 64 clients (events/s) and their ratio, by variant."""
import collections, glob, os, re, statistics

here = os.path.dirname(os.path.abspath(__file__))
for path in sorted(glob.glob(os.path.join(here, "*.out"))):
    runs = collections.OrderedDict()
    for line in open(path):
        m = re.match(r"(\S+) (\S+) (store append, 1/call|HTTP single)\s+(\d+)\s.*?([\d,]+)\s+[\d.]+\s+[\d.]+\s+\d+$", line)
        if not m:
            continue
        variant, run, what, clients, rate = m.groups()
        if what == "HTTP single" and clients != "64":
            continue
        runs.setdefault((variant, run), {})[what] = int(rate.replace(",", ""))
    print(f"== {os.path.basename(path)}")
    by = collections.defaultdict(list)
    for (variant, run), r in runs.items():
        s, h = r.get("store append, 1/call"), r.get("HTTP single")
        print(f"  {variant:7} {run:3} store 1/call {s:6,}  HTTP single@64 {h:6,}  ratio {h / s:.2f}")
        by[variant].append((h, h / s))
    for variant, v in by.items():
        print(f"  median {variant:7} HTTP single@64 {statistics.median(x for x, _ in v):8,.0f}  ratio {statistics.median(r for _, r in v):.2f}")
