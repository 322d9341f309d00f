#!/usr/bin/env python3
"""Compares two vidinfer-schema JSONL files (reference first) with the accuracy rule:
per frame, same-class boxes are matched one-to-one by IoU (best pairs first, IoU >= --iou).
Prints recall (matched / reference boxes) and extras (unmatched ours / reference boxes).

usage: check_accuracy.py REF.jsonl OURS.jsonl [--iou 0.9] [--min-recall 0.98] [--max-extra 0.02]
Exits 1 if recall < min, extras > max, or the frame sets differ.
"""
import argparse
import json
import sys


def load(path):
    with open(path) as f:
        return {r["frame"]: r["detections"] for r in map(json.loads, f)}


def iou(a, b):
    iw = max(0.0, min(a["x2"], b["x2"]) - max(a["x1"], b["x1"]))
    ih = max(0.0, min(a["y2"], b["y2"]) - max(a["y1"], b["y1"]))
    inter = iw * ih
    union = (a["x2"] - a["x1"]) * (a["y2"] - a["y1"]) + (b["x2"] - b["x1"]) * (b["y2"] - b["y1"]) - inter
    return inter / union if union > 0 else 0.0


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
        print(f"frame sets differ: {len(ref)} reference frames, {len(ours)} ours")
        return 1
    matched = total_ref = total_ours = 0
    for f, r in ref.items():
        o = ours[f]
        pairs = sorted(((iou(x, y), i, j) for i, x in enumerate(r) for j, y in enumerate(o)
                        if x["class_id"] == y["class_id"]), reverse=True)
        used_r, used_o = set(), set()
        for v, i, j in pairs:
            if v >= a.iou and i not in used_r and j not in used_o:
                used_r.add(i)
                used_o.add(j)
        matched += len(used_r)
        total_ref += len(r)
        total_ours += len(o)
    recall = matched / total_ref if total_ref else 1.0
    extra = (total_ours - matched) / total_ref if total_ref else 0.0
    print(f"{len(ref)} frames: {matched}/{total_ref} reference boxes matched (same class, IoU >= {a.iou}) = {recall:.2%}; "
          f"{total_ours - matched} extra = {extra:.2%}")
    return 0 if recall >= a.min_recall and extra <= a.max_extra else 1


if __name__ == "__main__":
    sys.exit(main())
