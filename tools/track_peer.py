#!/usr/bin/env python3
"""The tracking peers on vidinfer's own detections: roboflow `trackers` (ByteTrack, OC-SORT) and
supervision's LineZone, run over the JSONL of `vidinfer detect --conf 0.1`, so the detector is
identical and only tracking and counting differ. Run with the venv of tools/tracking_venv.sh.

Only one class is tracked (--class, default 0: person), as vidinfer never matches a box to a
track of another class. Settings as in issue 24: ByteTrackTracker(lost_track_buffer=10,
frame_rate=10, track_activation_threshold=0.6, high_conf_det_threshold=0.5), the library's
defaults otherwise; OCSORTTracker(lost_track_buffer=10, frame_rate=10,
high_conf_det_threshold=0.5), defaults otherwise; LineZone(..., triggering_anchors=[BOTTOM_CENTER]).
The trackers are fed frame by frame without timestamps (their fixed-rate mode; the JSONL's
frames are evenly spaced).

Writes one JSON object to stdout: per tracker, the crossings per line ({"in", "out"}, named as
vidinfer names them: supervision's "in" is vidinfer's "out" for the same line), every
crossing (frame, pts, track id, direction), and the number of confirmed tracks. With
--mot-dir, also writes DIR/<tracker>.txt in MOTChallenge format (frame from 1,
id, x, y, w, h, score, -1, -1, -1) for MOT evaluation.

usage: track_peer.py DETECTIONS.jsonl --line NAME:X1,Y1,X2,Y2 ... [--class 0] [--mot-dir DIR]
"""
import argparse
import json
import os
import sys

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker, OCSORTTracker


def peers():
    return {
        "bytetrack": lambda: ByteTrackTracker(
            lost_track_buffer=10, frame_rate=10, track_activation_threshold=0.6, high_conf_det_threshold=0.5
        ),
        "ocsort": lambda: OCSORTTracker(lost_track_buffer=10, frame_rate=10, high_conf_det_threshold=0.5),
    }


def read_frames(path, class_id):
    frames = []
    with open(path) as f:
        for line in f:
            v = json.loads(line)
            if "event" in v:
                continue
            dets = [d for d in v["detections"] if d["class_id"] == class_id]
            xyxy = np.array([[d["x1"], d["y1"], d["x2"], d["y2"]] for d in dets], dtype=np.float32).reshape(-1, 4)
            conf = np.array([d["score"] for d in dets], dtype=np.float32)
            frames.append((v["frame"], v["pts"], sv.Detections(xyxy=xyxy, confidence=conf,
                                                               class_id=np.full(len(dets), class_id, dtype=int))))
    return frames


def run(make, frames, lines, mot_path):
    tracker = make()
    zones = {name: sv.LineZone(start=sv.Point(*a), end=sv.Point(*b), triggering_anchors=[sv.Position.BOTTOM_CENTER])
             for name, a, b in lines}
    crossings, ids = [], set()
    mot = open(mot_path, "w") if mot_path else None
    for frame, pts, dets in frames:
        tracked = tracker.update(dets)
        keep = tracked.tracker_id >= 0
        ids.update(int(i) for i in tracked.tracker_id[keep])
        if mot:
            for (x1, y1, x2, y2), tid, s in zip(tracked.xyxy[keep], tracked.tracker_id[keep], tracked.confidence[keep]):
                mot.write(f"{frame + 1},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},{s:.3f},-1,-1,-1\n")
        for name, zone in zones.items():
            cin, cout = zone.trigger(tracked)
            for k in np.where(cin | cout)[0]:
                crossings.append({"line": name, "frame": frame, "pts": pts, "track_id": int(tracked.tracker_id[k]),
                                  "direction": "out" if cin[k] else "in"})
    if mot:
        mot.close()
    # supervision counts "in" for a move to the left of start → end as seen on screen, vidinfer for
    # one to its right (checked on vtest's walkway and the synthetic clip): swap to vidinfer's names.
    counts = {name: {"in": z.out_count, "out": z.in_count} for name, z in zones.items()}
    return {"counts": counts, "crossings": crossings, "tracks": len(ids)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jsonl")
    ap.add_argument("--line", action="append", default=[], help="NAME:X1,Y1,X2,Y2")
    ap.add_argument("--class", dest="class_id", type=int, default=0)
    ap.add_argument("--mot-dir")
    ap.add_argument("--peers", default="bytetrack,ocsort")
    a = ap.parse_args()
    lines = []
    for spec in a.line:
        name, xy = spec.split(":")
        x1, y1, x2, y2 = (float(v) for v in xy.split(","))
        lines.append((name, (x1, y1), (x2, y2)))
    frames = read_frames(a.jsonl, a.class_id)
    if a.mot_dir:
        os.makedirs(a.mot_dir, exist_ok=True)
    out = {}
    for name in a.peers.split(","):
        mot = os.path.join(a.mot_dir, f"{name}.txt") if a.mot_dir else None
        out[name] = run(peers()[name], frames, lines, mot)
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
