#!/usr/bin/env python3
"""The worker pipeline (pipeline-<backend>-<run>.txt of this directory, or of
the one given): per run
the rates and their ratios to the same run's append100 and River rate."""
import glob, os, re, statistics, sys

here = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
parts = {"SQLite": ("partitions=1", "partitions=4"), "Postgres": ("workers=1", "workers=3")}
for be, names in parts.items():
    runs = []
    for f in sorted(glob.glob(os.path.join(here, f"pipeline-{be}-*.txt"))):
        r, name = {}, None
        for line in open(f):
            m = re.match(rf"^BenchmarkPipeline/{be}/(\S+?)-\d+\s", line)
            if m:
                name = m.group(1)
            m = re.search(r"([\d.]+) events/s", line)
            if m and name:
                r[name] = float(m.group(1))
        runs.append(r)
    print(f"## {be} ({len(runs)} runs)")
    for k in runs[0]:
        vals = [r[k] for r in runs]
        print(f"  {k:18s} median {statistics.median(vals):9,.0f}  runs {', '.join(f'{v:,.0f}' for v in vals)}")
    for n in names:
        ratio = [r[n] / r["append100"] for r in runs]
        river = [r[n] / r["river"] for r in runs]
        print(f"  {n} / append100: {', '.join(f'{x:.2f}' for x in ratio)} (median {statistics.median(ratio):.2f}); / river: {', '.join(f'{x:.1f}' for x in river)}")
