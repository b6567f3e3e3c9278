import json,sys
cur=None
for line in open(sys.argv[1]):
    if line.startswith("=="):
        cur=line.split()[1].split('/')[-1]; vals={}; continue
    d=json.loads(line)
    if 'scenario' in d:
        vals[(d['scenario'],d['shape'],d['clients'])]=d['events_per_sec']
    else:
        s=vals[('store','append1',1)]; h=vals[('http','single',64)]; b=vals[('http','batch100',64)]; sb=vals[('store','append100',1)]
        print(f"{cur:12s} store1 {s:7.0f} http1@64 {h:7.0f} ratio {h/s:5.2f}  batch {b:7.0f}/{sb:7.0f}={b/sb:4.2f}")
