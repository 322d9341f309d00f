#!/usr/bin/env python3
"""Compares a built model with a reference conversion on the same deterministic inputs.

usage: check_model.py BUILT.onnx REFERENCE.onnx [--tol 1e-4]
Prints the max abs difference per output; exits 1 if any exceeds the tolerance or the
input/output signatures differ. Batch 1 and (for a dynamic batch) batch 3 are checked.
"""
import argparse
import sys

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("built")
    ap.add_argument("reference")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    built, ref = ort.InferenceSession(a.built), ort.InferenceSession(a.reference)
    sig = lambda s: ([(i.name, i.shape) for i in s.get_inputs()], [(o.name, o.shape) for o in s.get_outputs()])
    if sig(built) != sig(ref):
        print(f"signatures differ: {sig(built)} vs {sig(ref)}")
        return 1
    (inp,) = built.get_inputs()
    batches = [1, 3] if not isinstance(inp.shape[0], int) else [inp.shape[0]]
    rng = np.random.default_rng(0)
    worst = 0.0
    for n in batches:
        x = rng.random((n, *inp.shape[1:]), dtype=np.float32)
        for o, p, q in zip(built.get_outputs(), built.run(None, {inp.name: x}), ref.run(None, {inp.name: x})):
            d = float(np.abs(p - q).max())
            worst = max(worst, d)
            print(f"{a.built}: batch {n}, output {o.name} {list(p.shape)}: max abs diff vs reference {d:.3g}")
    return 0 if worst <= a.tol else 1


if __name__ == "__main__":
    sys.exit(main())
