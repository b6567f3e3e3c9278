#!/usr/bin/env python3
"""Prints the ratios of each `rawevents bench ingest --json` output here."""
import glob, json, os
for f in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)), "ingest-*.json"))):
    rows = {}
    for line in open(f):
        d = json.loads(line)
        if "ratios" in d:
            ratios = {r["name"].split("/")[0]: r for r in d["ratios"]}
        elif "shape" in d:
            rows[(d["scenario"], d["shape"], d["clients"])] = d["events_per_sec"]
    b, s = ratios["http_batch100_best"], ratios["http_single_64"]
    print(f"{os.path.basename(f)[:-5]:22} store1 {rows[('store','append1',1)]:7.0f} store100 {rows[('store','append100',1)]:7.0f} "
          f"single64 {rows[('http','single',64)]:6.0f} batch8 {rows[('http','batch100',8)]:6.0f} batch64 {rows[('http','batch100',64)]:6.0f} "
          f"batch {b['ratio']:.2f} single {s['ratio']:.2f}")
