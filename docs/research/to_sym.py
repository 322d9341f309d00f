# Research: requantise every Conv's weights to symmetric s8 (zero point 0), per channel (default)
# or per tensor, and its int32 bias to the new scale (input scale x weight scale), so ORT's
# QLinearConv can take its symmetric (MlasConvSym / SymmQgemm) path. NOT exact: weights are rounded again.
import sys, onnx, numpy as np
from onnx import numpy_helper as nh
src, dst, mode = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "channel")
m = onnx.load(src); g = m.graph
inits = {t.name: t for t in g.initializer}
prod = {o: n for n in g.node for o in n.output}
arr = lambda n: nh.to_array(inits[n])
def put(name, a):
    t = nh.from_array(a, name); g.initializer.append(t); inits[name] = t; return name
worst = 0
for n in g.node:
    if n.op_type != "Conv": continue
    wdq, xdq = prod[n.input[1]], prod[n.input[0]]
    bdq = prod[n.input[2]] if len(n.input) > 2 else None
    w, ws, wz = arr(wdq.input[0]).astype(np.float64), float(arr(wdq.input[1])), float(arr(wdq.input[2]))
    wf = (w - wz) * ws                                  # [O, I, kh, kw]
    xs = float(arr(xdq.input[1]))
    if mode == "channel":
        amax = np.abs(wf).reshape(wf.shape[0], -1).max(axis=1)
        s = np.where(amax > 0, amax / 127, ws).astype(np.float32)
        q = np.clip(np.rint(wf / s.astype(np.float64)[:, None, None, None]), -127, 127).astype(np.int8)
        zp = np.zeros(wf.shape[0], np.int8)
    else:
        amax = np.abs(wf).max(); s = np.float32(amax / 127 if amax > 0 else ws)
        q = np.clip(np.rint(wf / float(s)), -127, 127).astype(np.int8); zp = np.int8(0)
    back = q.astype(np.float64) * (s[:, None, None, None] if mode == "channel" else float(s))
    worst = max(worst, float(np.abs(back - wf).max() / (np.abs(wf).max() + 1e-12)))
    k = wdq.output[0]
    wdq.input[0] = put(k + "_symq", q); wdq.input[1] = put(k + "_syms", np.asarray(s, np.float32)); wdq.input[2] = put(k + "_symz", zp)
    if mode == "channel":
        wdq.attribute.append(onnx.helper.make_attribute("axis", 0))
    if bdq is not None:
        b = arr(bdq.input[0]).astype(np.float64) * float(arr(bdq.input[1]))
        bs = (xs * np.asarray(s, np.float64)).astype(np.float32)
        bq = np.rint(b / bs.astype(np.float64)).astype(np.int32)
        bdq.input[0] = put(k + "_symb", bq); bdq.input[1] = put(k + "_symbs", bs)
        bdq.input[2] = put(k + "_symbz", np.zeros(bq.shape if mode == "channel" else (), np.int32))
        if mode == "channel":
            bdq.attribute.append(onnx.helper.make_attribute("axis", 0))
used = {i for n in g.node for i in n.input}
keep = [t for t in g.initializer if t.name in used]
del g.initializer[:]; g.initializer.extend(keep)
onnx.checker.check_model(m)
onnx.save(m, dst); print(f"{mode}: worst weight rounding error {worst:.4f} of the layer's max |w|")
