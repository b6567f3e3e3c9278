# Prints the tables of BENCHMARKS.md "Ingestion with a clustering dedup key":
# python3 table.py bench/bb23fb9 sqlite|pg
import json,glob,os,re,statistics,sys
d=sys.argv[1]; backend=sys.argv[2]
load={}
for line in open(os.path.join(d,'load.txt')):
    name=line.split()[0]
    m=re.search(r'load average: ([\d.]+)',line); load[name]=m.group(1)
def idle(name):
    ids=[int(l.split()[14]) for l in open(os.path.join(d,name+'.vmstat')) if l.split() and l.split()[0].isdigit()][1:]
    return statistics.median(ids)
runs=[]
for f in glob.glob(os.path.join(d,backend+'-*.json')):
    name=os.path.basename(f)[:-5]; _,v,r=name.split('-')
    sc={}; rat=None
    for l in open(f):
        o=json.loads(l)
        if 'ratios' in o: rat={x['name'].split('/')[0]:x for x in o['ratios']}; continue
        sc[(o['scenario'],o['shape'],o['clients'])]=o['events_per_sec']
    runs.append(dict(name=name,v=v,r=int(r),sc=sc,rat=rat))
order={'sqlite':{1:'A,B',2:'A,B',3:'A,B',4:'B,A',5:'B,A'},'pg':{1:'A,B',2:'A,B',3:'A,B',4:'B,A',5:'B,A'}}
runs.sort(key=lambda x:(x['r'], order[backend][x['r']].index(x['v'])))
f=lambda x: f"{x:,.0f}"
print("| run | build | 1-min load before | CPU idle (median of `vmstat 2`) | store 1/call | store 100/call | HTTP single, 64 | HTTP batch100, 8 | HTTP batch100, 64 | batch ratio (best) | single ratio |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for x in runs:
    sc=x['sc']; b=x['rat']['http_batch100_best']; s=x['rat']['http_single_64']
    print(f"| {x['r']} | {x['v']} | {load[x['name']]} | {idle(x['name']):.0f} % | {f(sc[('store','append1',1)])} | {f(sc[('store','append100',1)])} | {f(sc[('http','single',64)])} | {f(sc[('http','batch100',8)])} | {f(sc[('http','batch100',64)])} | {b['ratio']:.2f} (at {b['clients']}) | {s['ratio']:.2f} |")
print()
for v in 'AB':
    xs=[x for x in runs if x['v']==v]
    med=lambda k: statistics.median([x['sc'][k] for x in xs])
    bb=statistics.median([max(x['sc'][('http','batch100',c)] for c in (1,8,64)) for x in xs])
    print(f"median {v}: store1 {f(med(('store','append1',1)))} store100 {f(med(('store','append100',1)))} single64 {f(med(('http','single',64)))} b8 {f(med(('http','batch100',8)))} b64 {f(med(('http','batch100',64)))} best-batch {f(bb)} batchratio {statistics.median([x['rat']['http_batch100_best']['ratio'] for x in xs]):.2f} singleratio {statistics.median([x['rat']['http_single_64']['ratio'] for x in xs]):.2f}")
