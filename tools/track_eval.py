#!/usr/bin/env python3
"""MOT metrics of one tracker output against ground truth, by roboflow `trackers`' evaluation
(TrackEval's matching and formulas): HOTA, IDF1, id switches, MOTA. Both files in
MOTChallenge form (frame from 1, id, x, y, w, h, ...). Run with tools/tracking_venv.sh's python.
Prints one JSON object.

usage: track_eval.py GT.txt TRACKER.txt
"""
import json
import sys

from trackers.eval import evaluate_mot_sequence


def main():
    gt, tr = sys.argv[1:3]
    r = evaluate_mot_sequence(gt, tr, metrics=["CLEAR", "HOTA", "Identity"])
    print(json.dumps({"HOTA": r.HOTA.HOTA, "IDF1": r.Identity.IDF1, "IDSW": int(r.CLEAR.IDSW), "MOTA": r.CLEAR.MOTA}))


if __name__ == "__main__":
    main()
