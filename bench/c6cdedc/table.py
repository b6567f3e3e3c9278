#!/usr/bin/env python3
"""Tables of bench/c6cdedc: per run and median, the worker pipeline's
rates and their ratios to the store's append100 of the same run
(pipeline-<run>-<build>.txt), the rawevents bench ingest targets
(ingest-<backend>-<run>.json) and BenchmarkCatchUp (catchup-<run>.txt)."""
import glob, json, os, re, statistics

here = os.path.dirname(os.path.abspath(__file__))

def rates(path):
    out, name = {}, None
    for line in open(path):
        m = re.match(r"^(Benchmark\S+?)(-\d+)?\s", line)
        if m:
            name = m.group(1)
        m = re.search(r"([\d.]+) events/s", line)
        if m and name:
            out.setdefault(name, []).append(float(m.group(1)))
    return out

def pipeline():
    print("## pipeline (events/s; ratio to the same run's append100)")
    runs = {}
    for f in sorted(glob.glob(os.path.join(here, "pipeline-*.txt"))):
        run, build = os.path.basename(f)[:-4].split("-")[1:]
        r = {k.replace("BenchmarkPipeline/", ""): v[0] for k, v in rates(f).items()}
        runs.setdefault(build, []).append(r)
        cells = []
        for be, parts in (("SQLite", ("partitions=1", "partitions=4")), ("Postgres", ("workers=1", "workers=3"))):
            base = r.get(f"{be}/append100")
            for p in parts:
                v = r.get(f"{be}/{p}")
                if v and base:
                    cells.append(f"{be}/{p} {v:,.0f} ({v / base:.2f}x)")
            if base:
                cells.append(f"{be}/append100 {base:,.0f}; river {r.get(f'{be}/river', 0):,.0f}")
        print(f"run {run} {build}: " + "; ".join(cells))
    for build, rs in sorted(runs.items()):
        print(f"medians {build} ({len(rs)} runs):")
        for k in rs[0]:
            vals = [r[k] for r in rs if k in r]
            print(f"  {k:28s} {statistics.median(vals):10,.0f}  ({', '.join(f'{v:,.0f}' for v in vals)})")
        for be, parts in (("SQLite", ("partitions=1", "partitions=4")), ("Postgres", ("workers=1", "workers=3"))):
            for p in parts:
                ratios = [r[f"{be}/{p}"] / r[f"{be}/append100"] for r in rs if f"{be}/{p}" in r]
                river = [r[f"{be}/{p}"] / r[f"{be}/river"] for r in rs if f"{be}/river" in r]
                print(f"  {be}/{p} / append100: per run {', '.join(f'{x:.2f}' for x in ratios)}; median {statistics.median(ratios):.2f}; / river median {statistics.median(river):.1f}")

def ingest():
    print("## ingest")
    for f in sorted(glob.glob(os.path.join(here, "ingest-*.json"))):
        rows, ratios = {}, {}
        for line in open(f):
            d = json.loads(line)
            if "ratios" in d:
                ratios = {r["name"].split("/")[0]: r for r in d["ratios"]}
            elif "shape" in d:
                rows[(d["scenario"], d["shape"], d["clients"])] = d["events_per_sec"]
        b, s = ratios["http_batch100_best"], ratios["http_single_64"]
        print(f"{os.path.basename(f)[:-5]:16} store1 {rows[('store','append1',1)]:7.0f} store100 {rows[('store','append100',1)]:7.0f} "
              f"single64 {rows[('http','single',64)]:6.0f} batch8 {rows[('http','batch100',8)]:6.0f} batch64 {rows[('http','batch100',64)]:6.0f} "
              f"batch {b['ratio']:.2f} single {s['ratio']:.2f}")

def catchup():
    print("## catch-up (events/s, all samples; ratio of medians to read)")
    all_ = {}
    for f in sorted(glob.glob(os.path.join(here, "catchup-*.txt"))):
        for k, v in rates(f).items():
            all_.setdefault(k.replace("BenchmarkCatchUp/", ""), []).extend(v)
    for be in ("SQLite", "Postgres"):
        read = statistics.median(all_.get(f"{be}/read", [0])) or 1
        for k, v in all_.items():
            if k.startswith(be + "/"):
                m = statistics.median(v)
                print(f"  {k:28s} {m:10,.0f} ({m / read:.3f}x)  ({', '.join(f'{x:,.0f}' for x in v)})")

pipeline()
ingest()
catchup()
