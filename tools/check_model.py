#!/usr/bin/env python3
"""Compares a built model with a reference conversion on the same deterministic inputs.

usage: check_model.py BUILT.onnx REFERENCE.onnx [--tol 1e-4]
Prints the max abs difference per output; exits 1 if any exceeds the tolerance (or is NaN), or
the input/output names, declared shapes or actual output shapes differ. Batch 1 and, for a
dynamic batch, batch 3 are checked, on uniform noise in [0, 1) (seeded) and on a smooth
(low-frequency) image. Needs onnxruntime: run it with .cache/model/venv/bin/python after
tools/build_model.sh.

usage: check_model.py BUILT.onnx --tflite MODEL.tflite [--margin 1.5]
For the int8 model (raw interface, quantised), where no reference conversion exists: the TFLite
interpreter runs the original model on the same pixels (the noise and smooth images above,
rounded to uint8) with its default kernels (XNNPACK) and with its builtin kernels (no delegate).
Integer kernels round differently, and on this model TFLite's two kernel families disagree in
~0.2% of the quantised scores and in the boxes of ~5-15% of the anchors (mostly background
anchors with large box encodings). So the int8 model is compared with XNNPACK on the inputs
of TFLite's post-process (`scores` against its quantised sigmoid scores, in steps of 1/256;
`boxes` against its box encodings decoded the same way), and it passes when it is no further
from XNNPACK than TFLite's builtin kernels are, times --margin: the share of score entries
more than one step apart and the share of anchors whose boxes have IoU < 0.9.
Needs tensorflow as well (the converter venv has it).
"""
import argparse
import sys

import numpy as np

try:
    import onnxruntime as ort
except ImportError:
    sys.exit("check_model.py needs onnxruntime and numpy: run it with .cache/model/venv/bin/python")


def inputs(shape, rng):
    """Seeded noise and a smooth image (bilinear upsampling of an 8x8 grid), both in [0, 1)."""
    noise = rng.random(shape, dtype=np.float32)
    n, c, h, w = shape
    grid = rng.random((n, c, 8, 8), dtype=np.float32)
    ys, xs = np.linspace(0, 7, h), np.linspace(0, 7, w)
    y0, x0 = np.minimum(ys.astype(int), 6), np.minimum(xs.astype(int), 6)
    fy, fx = (ys - y0)[:, None], (xs - x0)[None, :]
    g = lambda dy, dx: grid[:, :, y0 + dy][:, :, :, x0 + dx]
    smooth = (g(0, 0) * (1 - fy) * (1 - fx) + g(0, 1) * (1 - fy) * fx
              + g(1, 0) * fy * (1 - fx) + g(1, 1) * fy * fx).astype(np.float32)
    return [("noise", noise), ("smooth", smooth)]


def check_tflite(a):
    """The int8 model against the TFLite interpreter on the same uint8 pixels (see the usage)."""
    import os
    import tensorflow as tf
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tflite_reference import decode_boxes

    def interpreter(resolver):
        # Without a delegate, keep every tensor; with XNNPACK the post-process op's inputs are
        # outputs of the delegated graph, still intact after invoke.
        delegate = resolver == tf.lite.experimental.OpResolverType.AUTO
        it = tf.lite.Interpreter(model_path=a.tflite, experimental_op_resolver_type=resolver,
                                 experimental_preserve_all_tensors=not delegate)
        it.allocate_tensors()
        (pp,) = [o for o in it._get_ops_details() if o["op_name"] == "TFLite_Detection_PostProcess"]
        details = {d["index"]: d for d in it.get_tensor_details()}
        enc, cls, anc = (details[int(t)] for t in pp["inputs"])
        assert cls["quantization"] == (1 / 256, 0), cls["quantization"]
        deq = lambda d: (it.get_tensor(d["index"]).astype(np.float32) - d["quantization"][1]) * d["quantization"][0]

        def run(pix):  # uint8 [1,300,300,3] -> boxes [1917,4], scores in 1/256 steps [1917,91]
            it.set_tensor(it.get_input_details()[0]["index"], pix)
            it.invoke()
            return (decode_boxes(deq(enc).reshape(-1, 4), deq(anc).reshape(-1, 4)),
                    it.get_tensor(cls["index"]).reshape(-1, 91).astype(np.int32))
        return run

    def iou(p, q):
        ih = np.clip(np.minimum(p[:, 2], q[:, 2]) - np.maximum(p[:, 0], q[:, 0]), 0, None)
        iw = np.clip(np.minimum(p[:, 3], q[:, 3]) - np.maximum(p[:, 1], q[:, 1]), 0, None)
        area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        inter = ih * iw
        union = area(p) + area(q) - inter
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0)

    def distance(p, q):  # (share of scores > 1 step apart, share of anchors with box IoU < 0.9)
        return float(np.mean(np.abs(p[1] - q[1]) > 1)), float(np.mean(iou(p[0], q[0]) < 0.9))

    xnn = interpreter(tf.lite.experimental.OpResolverType.AUTO)
    builtin = interpreter(tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    s = ort.InferenceSession(a.built, opts, providers=["CPUExecutionProvider"])
    if [o.name for o in s.get_outputs()] != ["boxes", "scores"] or s.get_inputs()[0].name != "images":
        print(f"FAIL: {a.built} does not have the raw interface (images -> boxes, scores)")
        return 1
    ok = True
    for kind, x in inputs((1, 3, 300, 300), np.random.default_rng(0)):
        pix = np.rint(x * 255).astype(np.uint8)                   # [1,3,300,300]
        nhwc = pix.transpose(0, 2, 3, 1).copy()
        ref = xnn(nhwc)
        boxes, scores = s.run(None, {"images": pix.astype(np.float32) / 255})
        ours = distance((boxes[0], np.rint(scores[0] * 256).astype(np.int32)), ref)
        spread = distance(builtin(nhwc), ref)
        good = all(o <= a.margin * t + 1e-3 for o, t in zip(ours, spread))
        ok &= good
        print(f"{kind}: vs TFLite XNNPACK: scores > 1/256 apart {ours[0]:.3%} (TFLite builtin {spread[0]:.3%}), "
              f"anchor boxes IoU < 0.9 {ours[1]:.2%} (TFLite builtin {spread[1]:.2%}){'' if good else '  <- too far'}")
    print(f"{'OK' if ok else 'FAIL'}: {a.built} vs the TFLite interpreter on {a.tflite} (margin {a.margin:g}x)")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("built")
    ap.add_argument("reference", nargs="?")
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--tflite")
    ap.add_argument("--margin", type=float, default=1.5)
    a = ap.parse_args()
    if a.tflite:
        return check_tflite(a)
    if not a.reference:
        ap.error("a REFERENCE.onnx or --tflite is needed")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    built = ort.InferenceSession(a.built, opts, providers=["CPUExecutionProvider"])
    ref = ort.InferenceSession(a.reference, opts, providers=["CPUExecutionProvider"])
    sig = lambda s: ([(i.name, i.type, i.shape) for i in s.get_inputs()],
                     [(o.name, o.type, o.shape) for o in s.get_outputs()])
    if sig(built) != sig(ref):
        print(f"signatures differ:\n  built     {sig(built)}\n  reference {sig(ref)}")
        return 1
    (inp,) = built.get_inputs()
    batches = [1, 3] if not isinstance(inp.shape[0], int) else [inp.shape[0]]
    rng = np.random.default_rng(0)
    ok = True
    for n in batches:
        for kind, x in inputs((n, *inp.shape[1:]), rng):
            diffs = []
            for o, p, q in zip(built.get_outputs(), built.run(None, {inp.name: x}), ref.run(None, {inp.name: x})):
                if p.shape != q.shape:
                    print(f"batch {n} {kind}: output {o.name} shape {list(p.shape)} vs reference {list(q.shape)}")
                    ok = False
                    continue
                d = float(np.abs(p.astype(np.float64) - q.astype(np.float64)).max()) if p.size else 0.0
                ok &= d <= a.tol  # False for NaN too
                diffs.append(f"{o.name} {list(p.shape)} {d:.3g}")
            print(f"batch {n} {kind}: max abs diff {', '.join(diffs)}")
    print(f"{'OK' if ok else 'FAIL'}: {a.built} vs {a.reference} (tolerance {a.tol:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
