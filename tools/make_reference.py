#!/usr/bin/env python3
"""The OpenCV reference for vidinfer's accuracy tests: the classic loop, verbatim.

    cap = cv2.VideoCapture(video)
    blob = cv2.dnn.blobFromImage(frame, 1/255, (300, 300), swapRB=True, crop=False)
    net.setInput(blob); out = net.forward()        # detections [1, 1, 100, 7]
    keep score > conf, scale x1, y1, x2, y2 to frame pixels

Writes vidinfer's JSONL schema (one line per frame; class_id is the labels-file id, i.e.
OpenCV's class_id - 1). With --blobs-dir it also saves, for the listed frames, the decoded BGR
pixels (frame_<i>.bgr, u8 HxWx3), the blob (frame_<i>.blob, f32 NCHW little-endian) and
index.json, so a test can feed identical pixels to vidinfer's resize.

usage: make_reference.py --video V --model DETOUT.onnx --labels L [--frames 100] [--conf 0.5]
                         --out ref.jsonl [--blobs-dir D --blob-frames 0,50,99]
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np


def load_labels(path):
    labels = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                i, name = line.split(maxsplit=1)
                labels[int(i)] = name
    return labels


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--video", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--labels", required=True)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--conf", type=float, default=0.5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--blobs-dir")
    ap.add_argument("--blob-frames", default="0,50,99")
    ap.add_argument("--odd-sizes", action="store_true",
                    help="also save blobs of random images of odd sizes (641x359, 1x1, 3x5, 1919x1081) as synthetic_<w>x<h>")
    a = ap.parse_args()

    labels = load_labels(a.labels)
    net = cv2.dnn.readNet(a.model)
    cap = cv2.VideoCapture(a.video)
    if not cap.isOpened():
        sys.exit(f"cannot open {a.video}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    blob_frames = {int(x) for x in a.blob_frames.split(",")} if a.blobs_dir else set()
    if a.blobs_dir:
        os.makedirs(a.blobs_dir, exist_ok=True)
    index = {}
    total, n, t_net = 0, 0, 0.0
    with open(a.out, "w") as out:
        while n < a.frames:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            blob = cv2.dnn.blobFromImage(frame, 1 / 255, (300, 300), swapRB=True, crop=False)
            t0 = time.perf_counter()
            net.setInput(blob)
            det = net.forward()
            t_net += time.perf_counter() - t0
            dets = []
            for d in det[0, 0]:
                score = float(d[2])
                if score > a.conf:
                    cid = int(d[1]) - 1
                    dets.append({
                        "class_id": cid,
                        "label": labels.get(cid, f"class_{cid}"),
                        "score": score,
                        "x1": float(d[3] * w), "y1": float(d[4] * h),
                        "x2": float(d[5] * w), "y2": float(d[6] * h),
                    })
            out.write(json.dumps({"frame": n, "pts": round(n / fps, 6), "detections": dets}) + "\n")
            if n in blob_frames:
                frame.tofile(os.path.join(a.blobs_dir, f"frame_{n}.bgr"))
                blob.astype("<f4").tofile(os.path.join(a.blobs_dir, f"frame_{n}.blob"))
                index[str(n)] = {"width": w, "height": h}
            total += len(dets)
            n += 1
    if a.blobs_dir and a.odd_sizes:
        rng = np.random.default_rng(7)
        for w, h in ((641, 359), (1, 1), (3, 5), (1919, 1081)):
            img = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            blob = cv2.dnn.blobFromImage(img, 1 / 255, (300, 300), swapRB=True, crop=False)
            name = f"synthetic_{w}x{h}"
            img.tofile(os.path.join(a.blobs_dir, f"frame_{name}.bgr"))
            blob.astype("<f4").tofile(os.path.join(a.blobs_dir, f"frame_{name}.blob"))
            index[name] = {"width": w, "height": h}
    if a.blobs_dir:
        with open(os.path.join(a.blobs_dir, "index.json"), "w") as f:
            json.dump({"opencv": cv2.__version__, "frames": index}, f)
    print(f"reference: {n} frames, {total} detections, cv2.dnn {t_net / max(n, 1) * 1e3:.1f} ms/frame (OpenCV {cv2.__version__})")


if __name__ == "__main__":
    main()
