#!/usr/bin/env python3
"""Tables of bench/bbaf1b0 (or the directory given): the medians of
catchup-*-{A,B}.txt, events/s per variant and version with each variant's
ratio to the read of the log in the same runs; per run (catchup-*, floor-*)
batch=500, noop and the floors against that run's read; and per run of
ingest-*.json the store's rates, the HTTP ones and the two target ratios.
A log line may sit between a benchmark's name and its figures (A logs),
so the name is the last one seen."""
import glob, os, re, statistics, sys

d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def rates(path):
    """events/s of each benchmark of a file, by name."""
    out, name = {}, None
    for line in open(path):
        m = re.match(r"(BenchmarkCatchUp/\S+?)-\d+\s", line)
        if m:
            name = m.group(1)
        m = re.search(r"([\d.]+) events/s", line)
        if m and name:
            out.setdefault(name, []).append(float(m.group(1)))
            name = None
    return out


vals = {}
for f in sorted(glob.glob(os.path.join(d, "catchup-*-*.txt"))):
    v = f.rsplit("-", 1)[1][0]
    for name, xs in rates(f).items():
        vals.setdefault((v, name), []).extend(xs)
names = sorted({n for _, n in vals}, key=lambda n: (n.split("/")[1], n))
print("| variant | A events/s (runs) | ÷ read | B events/s (runs) | ÷ read |")
print("|---|---|---|---|---|")
for n in names:
    cells = []
    for v in "AB":
        xs = vals.get((v, n), [])
        read = vals.get((v, "/".join(n.split("/")[:2]) + "/read"), [])
        if not xs:
            cells += ["", ""]
            continue
        med = statistics.median(xs)
        cells.append(f"{med:,.0f} ({len(xs)})")
        cells.append(f"{med / statistics.median(read):.3f}" if read else "")
    print(f"| {n.removeprefix('BenchmarkCatchUp/')} | " + " | ".join(cells) + " |")

# Per run (file): batch=500 ÷ read, each the median of the file's two.
print()
for f in sorted(glob.glob(os.path.join(d, "catchup-*-*.txt"))) + sorted(glob.glob(os.path.join(d, "floor-*.txt"))):
    per = rates(f)
    cells = []
    for be in ("SQLite", "Postgres"):
        read = per.get(f"BenchmarkCatchUp/{be}/read")
        if not read:
            continue
        r = statistics.median(read)
        parts = [f"read {r:,.0f}"]
        for v in ("batch=500", "batch=500/noop", "floor-writes", "floor-search"):
            xs = per.get(f"BenchmarkCatchUp/{be}/{v}")
            if xs:
                parts.append(f"{v} {statistics.median(xs):,.0f} ({statistics.median(xs) / r:.3f})")
        cells.append(f"{be}: " + ", ".join(parts))
    print(f"{os.path.basename(f)}: " + "; ".join(cells))

# rawevents bench ingest: the store's rates, HTTP single at 64 clients and
# batches, and the two target ratios, per run.
import json
print()
for f in sorted(glob.glob(os.path.join(d, "ingest-*.json"))):
    rows, ratios = {}, {}
    for line in open(f):
        x = json.loads(line)
        if "ratios" in x:
            ratios = {r["name"].split("/")[0]: r for r in x["ratios"]}
        elif "shape" in x:
            rows[(x["scenario"], x["shape"], x["clients"])] = x["events_per_sec"]
    b, s = ratios["http_batch100_best"], ratios["http_single_64"]
    print(f"{os.path.basename(f)[:-5]:16} store1 {rows[('store','append1',1)]:7.0f} store100 {rows[('store','append100',1)]:7.0f} "
          f"single64 {rows[('http','single',64)]:6.0f} batch8 {rows[('http','batch100',8)]:6.0f} batch64 {rows[('http','batch100',64)]:6.0f} "
          f"batch {b['ratio']:.2f} single {s['ratio']:.2f}")
