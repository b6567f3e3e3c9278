#!/usr/bin/env python3
"""Medians of the events/s of each sub-benchmark per build (A, B, C, H) in the
catchup*-*.txt and pipeline*-*.txt files of this directory, and the
ratios of the rawevents bench ingest runs (ingest-*.json)."""
import glob, json, os, re, statistics, sys

here = os.path.dirname(os.path.abspath(__file__))

def bench(kind):
    rates = {}
    for f in sorted(glob.glob(os.path.join(here, kind + "-*.txt"))):
        build = f.rsplit("-", 1)[1][0]
        name = None
        for line in open(f):
            m = re.match(r"^(Benchmark\S+?)(-\d+)?\s", line)
            if m:
                name = m.group(1)
            m = re.search(r"([\d.]+) events/s", line)
            if m and name:
                rates.setdefault(name, {}).setdefault(build, []).append(float(m.group(1)))
    print(f"## {kind}: median events/s (runs)")
    for name, by in rates.items():
        cells = []
        for b in "ABCH":
            v = by.get(b, [])
            cells.append(f"{b} {statistics.median(v):,.0f} ({', '.join(f'{x:,.0f}' for x in v)})" if v else f"{b} -")
        print(f"{name:55s} " + " | ".join(cells))

def ingest():
    print("## ingest (B)")
    for f in sorted(glob.glob(os.path.join(here, "ingest-*.json"))):
        rows, ratios = {}, {}
        for line in open(f):
            d = json.loads(line)
            if "ratios" in d:
                ratios = {r["name"].split("/")[0]: r for r in d["ratios"]}
            elif "shape" in d:
                rows[(d["scenario"], d["shape"], d["clients"])] = d["events_per_sec"]
        if not ratios:
            continue
        b, s = ratios["http_batch100_best"], ratios["http_single_64"]
        print(f"{os.path.basename(f)[:-5]:16} store1 {rows[('store','append1',1)]:7.0f} store100 {rows[('store','append100',1)]:7.0f} "
              f"single64 {rows[('http','single',64)]:6.0f} batch8 {rows[('http','batch100',8)]:6.0f} batch64 {rows[('http','batch100',64)]:6.0f} "
              f"batch {b['ratio']:.2f} single {s['ratio']:.2f}")

for kind in ("catchup", "pipeline", "catchup2", "pipeline2", "pipeline4"):
    bench(kind)
ingest()
