# Alternates configurations: round-robin blocks of N runs over persistent workers; reports the
# median over all runs and the median of per-block medians, per configuration.
import sys, json, subprocess, statistics, itertools, os, argparse
ap = argparse.ArgumentParser()
ap.add_argument("--rounds", type=int, default=8)
ap.add_argument("--block", type=int, default=20)
ap.add_argument("configs", nargs="+", help="label|python|model|threads|spin[|k=v...]")
a = ap.parse_args()
workers = []
for c in a.configs:
    label, py, model, threads, spin, *extra = c.split("|")
    p = subprocess.Popen([py, os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.py"), model, threads, spin, *extra],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    info = p.stdout.readline().strip()
    workers.append((label, p, info))
    print(f"# {label}: {info}", flush=True)
times = {l: [] for l, _, _ in workers}
blocks = {l: [] for l, _, _ in workers}
for r in range(a.rounds):
    order = workers if r % 2 == 0 else workers[::-1]
    for label, p, _ in order:
        p.stdin.write(f"{a.block}\n"); p.stdin.flush()
        ts = json.loads(p.stdout.readline())
        times[label] += ts; blocks[label].append(statistics.median(ts))
for label, p, _ in workers:
    p.stdin.close(); p.wait()
base = None
for label, _, _ in workers:
    m = statistics.median(times[label]); mb = statistics.median(blocks[label])
    print(f"{label:40s} median {m:7.2f} ms  (block medians: median {mb:7.2f}, min {min(blocks[label]):7.2f})  {1000/m:6.1f} fps")
print(json.dumps({l: statistics.median(t) for l, t in times.items()}))
