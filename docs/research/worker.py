# Persistent benchmark worker: builds one session, then for each "N" line on stdin runs N inferences
# and prints the per-run times (ms). Config from argv: model threads spin [key=value ...] [ep=openvino:json]
import os, sys, time, json, numpy as np, onnxruntime as ort
model, threads, spin = sys.argv[1], int(sys.argv[2]), sys.argv[3]
so = ort.SessionOptions()
so.intra_op_num_threads = threads
so.inter_op_num_threads = 1
so.log_severity_level = 3
so.add_session_config_entry("session.intra_op.allow_spinning", spin)
providers = ["CPUExecutionProvider"]
for kv in sys.argv[4:]:
    k, v = kv.split("=", 1)
    if k == "ep":
        providers = [tuple(json.loads(v))] if v.startswith("[") else [v]
    elif k == "opt":
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, v)
    else:
        so.add_session_config_entry(k, v)
s = ort.InferenceSession(model, so, providers=providers)
inp = s.get_inputs()[0]
fr = np.fromfile(os.environ.get("PIXELS", "vtest300.rgb"), np.uint8).reshape(-1, 300, 300, 3)[0]
x = fr[None] if inp.type == "tensor(uint8)" else (fr.astype(np.float32) / 255).transpose(2, 0, 1)[None].copy()
feed = {inp.name: x}
for _ in range(5):
    s.run(None, feed)
print("ready", ort.__version__, s.get_providers(), flush=True)
for line in sys.stdin:
    n = int(line)
    ts = []
    for _ in range(n):
        t = time.perf_counter(); s.run(None, feed); ts.append((time.perf_counter() - t) * 1e3)
    print(json.dumps(ts), flush=True)
