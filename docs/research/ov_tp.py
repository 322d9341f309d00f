# Throughput (frames/s) of ORT sessions with several requests in flight: k Python threads calling
# run() on one shared session (or one session per thread). Configurations alternate, rounds of 3 s.
import os, json, sys, time, threading, statistics, numpy as np, onnxruntime as ort
fr = np.fromfile(os.environ.get("PIXELS", "vtest300.rgb"), np.uint8).reshape(-1, 300, 300, 3)[:8]
X = [(f.astype(np.float32) / 255).transpose(2, 0, 1)[None].copy() for f in fr]
def ovcfg(prec, hint="THROUGHPUT", streams="2"):
    c = {"INFERENCE_PRECISION_HINT": prec, "PERFORMANCE_HINT": hint}
    if streams: c["NUM_STREAMS"] = streams
    return {"device_type": "CPU", "load_config": json.dumps({"CPU": c})}
def session(model, ep_opts, threads=1):
    so = ort.SessionOptions(); so.log_severity_level = 3
    if ep_opts is None:
        so.intra_op_num_threads = threads; so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    s = ort.InferenceSession(model, so, providers=[("OpenVINOExecutionProvider", ep_opts)])
    assert s.get_providers()[0] == "OpenVINOExecutionProvider"
    return s
def throughput(sessions, nthreads, secs):
    stop = time.perf_counter() + secs; counts = [0] * nthreads
    def loop(i):
        s = sessions[i % len(sessions)]; n = 0
        while time.perf_counter() < stop:
            s.run(None, {"images": X[n % len(X)]}); n += 1
        counts[i] = n
    ts = [threading.Thread(target=loop, args=(i,)) for i in range(nthreads)]
    t0 = time.perf_counter(); [t.start() for t in ts]; [t.join() for t in ts]
    return sum(counts) / (time.perf_counter() - t0)
model = sys.argv[1]; rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
configs = {}
def add(label, sessions, k): configs[label] = (sessions, k)
which = sys.argv[3].split(",") if len(sys.argv) > 3 else ["all"]
def want(l): return "all" in which or any(w in l for w in which)
if want("cpu"):
    add("CPU EP f32 model, 1 req, 2 intra threads", [session(model, None, 2)], 1)
    s1 = [session(model, None, 1), session(model, None, 1)]
    add("CPU EP, 2 sessions x 1 thread, 2 req", s1, 2)
if want("ov"):
    add("OVEP f32 LATENCY, 1 req", [session(model, ovcfg("f32", "LATENCY", None))], 1)
    sf = session(model, ovcfg("f32"))
    add("OVEP f32 TPUT 2 streams, 1 shared sess, 2 req", [sf], 2)
    sb = session(model, ovcfg("bf16"))
    add("OVEP bf16 TPUT 2 streams, 1 shared sess, 1 req", [sb], 1)
    add("OVEP bf16 TPUT 2 streams, 1 shared sess, 2 req", [sb], 2)
    add("OVEP bf16 TPUT 2 streams, 1 shared sess, 4 req", [sb], 4)
    add("OVEP bf16 LATENCY, 1 req", [session(model, ovcfg("bf16", "LATENCY", None))], 1)
    s2 = [session(model, ovcfg("bf16", "THROUGHPUT", "1")), session(model, ovcfg("bf16", "THROUGHPUT", "1"))]
    add("OVEP bf16 2 sessions x 1 stream, 2 req", s2, 2)
for s, k in configs.values(): throughput(s, k, 0.5)
res = {l: [] for l in configs}
for r in range(rounds):
    for l in (list(configs) if r % 2 == 0 else list(configs)[::-1]):
        res[l].append(throughput(*configs[l], 2.0))
for l, v in res.items():
    print(f"{l:50s} median {statistics.median(v):6.1f} fps  (min {min(v):6.1f}, max {max(v):6.1f})")
