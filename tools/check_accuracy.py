#!/usr/bin/env python3
"""Compares two vidinfer-schema JSONL files (reference first) with the accuracy rule:
per frame, same-class boxes are matched one-to-one greedily by IoU (highest IoU first, each box
used at most once, a match needs IoU >= --iou).
Prints recall (matched / reference boxes), extras (unmatched ours / reference boxes) and the
number of frames compared.

usage: check_accuracy.py REF.jsonl OURS.jsonl [--iou 0.9] [--min-recall 0.98] [--max-extra 0.02]
Exits 1 if recall < min, extras > max, or the frame sets differ.
"""
import argparse
import json
import sys


def load(path):
    frames = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            if r["frame"] in frames:
                sys.exit(f"{path}:{n}: frame {r['frame']} appears twice")
            frames[r["frame"]] = r["detections"]
    return frames


def iou(a, b):
    iw = max(0.0, min(a["x2"], b["x2"]) - max(a["x1"], b["x1"]))
    ih = max(0.0, min(a["y2"], b["y2"]) - max(a["y1"], b["y1"]))
    inter = iw * ih
    union = (a["x2"] - a["x1"]) * (a["y2"] - a["y1"]) + (b["x2"] - b["x1"]) * (b["y2"] - b["y1"]) - inter
    return inter / union if union > 0 else 0.0


def match_frame(ref, ours, thr):
    """Greedy one-to-one same-class matching: [(iou, ref_index, ours_index)], best IoU first."""
    pairs = sorted(((iou(x, y), i, j) for i, x in enumerate(ref) for j, y in enumerate(ours)
                    if x["class_id"] == y["class_id"]), key=lambda p: -p[0])
    used_r, used_o, out = set(), set(), []
    for v, i, j in pairs:
        if v >= thr and i not in used_r and j not in used_o:
            used_r.add(i)
            used_o.add(j)
            out.append((v, i, j))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("reference")
    ap.add_argument("ours")
    ap.add_argument("--iou", type=float, default=0.9)
    ap.add_argument("--min-recall", type=float, default=0.98)
    ap.add_argument("--max-extra", type=float, default=0.02)
    a = ap.parse_args()
    ref, ours = load(a.reference), load(a.ours)
    if set(ref) != set(ours):
        only_r, only_o = sorted(set(ref) - set(ours)), sorted(set(ours) - set(ref))
        print(f"FAIL: frame sets differ: {len(ref)} reference frames, {len(ours)} ours; "
              f"only in reference: {only_r[:10]}{'...' if len(only_r) > 10 else ''}, "
              f"only in ours: {only_o[:10]}{'...' if len(only_o) > 10 else ''}")
        return 1
    matched = total_ref = total_ours = 0
    worst = []
    for f in sorted(ref):
        r, o = ref[f], ours[f]
        m = len(match_frame(r, o, a.iou))
        matched += m
        total_ref += len(r)
        total_ours += len(o)
        if m < max(len(r), len(o)):
            worst.append((max(len(r), len(o)) - m, f, len(r), len(o), m))
    extra_n = total_ours - matched
    recall = matched / total_ref if total_ref else 1.0
    extra = extra_n / total_ref if total_ref else (0.0 if extra_n == 0 else float("inf"))
    ok = recall >= a.min_recall and extra <= a.max_extra
    print(f"{len(ref)} frames compared; same class, IoU >= {a.iou}")
    print(f"recall: {matched}/{total_ref} reference boxes matched = {recall:.2%} (min {a.min_recall:.2%})")
    print(f"extra:  {extra_n} of our {total_ours} boxes unmatched = {extra:.2%} of reference count (max {a.max_extra:.2%})")
    for _, f, nr, no, m in sorted(worst, key=lambda t: (-t[0], t[1]))[:5]:
        print(f"  frame {f}: reference {nr}, ours {no}, matched {m}")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
