#!/usr/bin/env python3
"""Detection agreement between two vidinfer-schema JSONL files, in both directions, with the
matching rule of tools/check_accuracy.py (per frame, same class, one-to-one greedy by IoU,
a match needs IoU >= --iou):
  A->B: matched / boxes in A,   B->A: matched / boxes in B.
Exits 1 if either is below --min (when given) or the frame sets differ.

usage: agreement.py A.jsonl B.jsonl [--iou 0.9] [--min 0.98] [--frames N] [--show 5]
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_accuracy import load, match_frame  # noqa: E402  (the one matching rule)


def agreement(a, b, iou, frames=None):
    """(matched, boxes in a, boxes in b, [(unmatched, frame, n_a, n_b)]) over the common frames."""
    matched = na = nb = 0
    worst = []
    for f in sorted(a)[:frames]:
        m = len(match_frame(a[f], b[f], iou))
        matched += m
        na += len(a[f])
        nb += len(b[f])
        if m < max(len(a[f]), len(b[f])):
            worst.append((len(a[f]) + len(b[f]) - 2 * m, f, len(a[f]), len(b[f])))
    return matched, na, nb, sorted(worst, key=lambda t: (-t[0], t[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--iou", type=float, default=0.9)
    ap.add_argument("--min", type=float)
    ap.add_argument("--frames", type=int, help="only the first N frames")
    ap.add_argument("--show", type=int, default=5, help="list the N frames that disagree most")
    a = ap.parse_args()
    da, db = load(a.a), load(a.b)
    if set(da) != set(db):
        print(f"FAIL: frame sets differ ({len(da)} vs {len(db)} frames)")
        return 1
    m, na, nb, worst = agreement(da, db, a.iou, a.frames)
    ab, ba = (m / na if na else 1.0), (m / nb if nb else 1.0)
    n = min(len(da), a.frames or len(da))
    print(f"{n} frames; same class, IoU >= {a.iou}: {m} matched; "
          f"A->B {m}/{na} = {ab:.2%}, B->A {m}/{nb} = {ba:.2%}  (A {a.a}, B {a.b})")
    for miss, f, x, y in worst[:a.show]:
        print(f"  frame {f}: A {x}, B {y}, unmatched {miss}")
    ok = a.min is None or min(ab, ba) >= a.min
    if a.min is not None:
        print(("PASS" if ok else "FAIL") + f" (min {a.min:.2%} both ways)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
