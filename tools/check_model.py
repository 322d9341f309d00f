#!/usr/bin/env python3
"""Compares a built model with a reference conversion on the same deterministic inputs.

usage: check_model.py BUILT.onnx REFERENCE.onnx [--tol 1e-4]
Prints the max abs difference per output; exits 1 if any exceeds the tolerance (or is NaN), or
the input/output names, declared shapes or actual output shapes differ. Batch 1 and, for a
dynamic batch, batch 3 are checked, on uniform noise in [0, 1) (seeded) and on a smooth
(low-frequency) image. Needs onnxruntime: run it with .cache/model/venv/bin/python after
tools/build_model.sh.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("built")
    ap.add_argument("reference")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
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
