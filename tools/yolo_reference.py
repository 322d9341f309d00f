#!/usr/bin/env python3
"""Ultralytics' own `predict` on vidinfer's Ultralytics test models, for tests/yolo.rs.

For each clip (a lossless FFV1 file, so OpenCV here and FFmpeg in vidinfer see the same
pixels) and each model, writes OUT/<clip>.<model>.jsonl: one row per frame,
{"frame": i, "detections": [{"class_id", "score", "x1", "y1", "x2", "y2"}]}, in vidinfer's
JSONL shape. The model is loaded as Ultralytics loads an ONNX export (YOLO, or RTDETR for an
RT-DETR head) and run one frame at a time with the given conf / iou / max_det.

A dynamic-size export (`dynamic=True`) is run with `rect=False`: by default Ultralytics
letterboxes each picture for such a model into the smallest stride-multiple rectangle (e.g.
224x192 for a 4:3 frame), while vidinfer runs every export at its `imgsz` square, as
Ultralytics runs a static one; `rect=False` is Ultralytics' own letterbox to that square.

vidinfer clamps every box to the frame; Ultralytics' RT-DETR post-processing does not (its
YOLO post-processing does), so RT-DETR boxes are clamped here the same way before comparing.
"""

import argparse
import json
import os
import sys
from pathlib import Path


def frames(path):
    import cv2

    cap = cv2.VideoCapture(str(path))
    while True:
        ok, f = cap.read()
        if not ok:
            break
        yield f
    cap.release()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clip", action="append", required=True, type=Path)
    ap.add_argument("--model", action="append", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--conf", type=float, required=True)
    ap.add_argument("--iou", type=float, required=True)
    ap.add_argument("--max-det", type=int, required=True)
    a = ap.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import onnx
    from ultralytics import RTDETR, YOLO

    a.out.mkdir(parents=True, exist_ok=True)
    for m in a.model:
        meta = {p.key: p.value for p in onnx.load(str(m), load_external_data=False).metadata_props}
        rtdetr = "RTDETR" in meta.get("head", "") or "RT-DETR" in meta.get("description", "")
        imgsz = json.loads(meta["imgsz"])
        dynamic = "'dynamic': True" in meta.get("args", "")
        model = RTDETR(str(m)) if rtdetr else YOLO(str(m), task="detect")
        for clip in a.clip:
            rows, total = [], 0
            for i, f in enumerate(frames(clip)):
                h, w = f.shape[:2]
                r = model.predict(f, conf=a.conf, iou=a.iou, max_det=a.max_det, imgsz=imgsz,
                                  rect=not dynamic, verbose=False)[0]
                dets = []
                for (x1, y1, x2, y2), s, c in zip(r.boxes.xyxy.tolist(), r.boxes.conf.tolist(),
                                                  r.boxes.cls.tolist()):
                    if rtdetr:
                        x1, x2 = (min(max(v, 0.0), w) for v in (x1, x2))
                        y1, y2 = (min(max(v, 0.0), h) for v in (y1, y2))
                    dets.append({"class_id": int(c), "score": s, "x1": x1, "y1": y1, "x2": x2,
                                 "y2": y2})
                total += len(dets)
                rows.append(json.dumps({"frame": i, "detections": dets}))
            out = a.out / f"{clip.stem}.{m.stem}.jsonl"
            out.write_text("\n".join(rows) + "\n")
            print(f"[yolo_reference] {out}: {len(rows)} frames, {total} detections", file=sys.stderr)


if __name__ == "__main__":
    main()
