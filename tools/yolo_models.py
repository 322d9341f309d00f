#!/usr/bin/env python3
"""Makes vidinfer's Ultralytics test models with Ultralytics' own code (tools/yolo_models.sh).

No pretrained weights can be downloaded here, so each model is built from one of the model
configs Ultralytics ships, trained briefly by Ultralytics' own trainer on frames of the sample
videos labelled by vidinfer's SSD (its person/bicycle/car detections, --dets), and exported by
Ultralytics' `export(format="onnx")`, with a static batch of 1 and with a dynamic batch.
These are test models: they find the people of these clips with real scores (confident ones,
but for RT-DETR's: see MODELS) so the decoders can be held to Ultralytics' own `predict`; they
make no accuracy claim.

Writes OUT/<name>.onnx and OUT/<name>_dyn.onnx for each model, OUT/yolov8n_nms.onnx (NMS in
the graph) and OUT/yolov8n_seg.onnx (an untrained segmentation export, for the test that such a
model is refused).
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

# The three classes the labels use: COCO's first three, so their ids are SSD's label ids.
NAMES = ["person", "bicycle", "car"]

# Few steps from scratch on one scene: no warm-up (it would take all of them), AdamW at a
# fixed rate, small batches (more steps for the same work), whole frames (no mosaic).
# name, Ultralytics model config, model class, export options besides the batch. Each YOLO
# takes about 1.5 minutes on this project's 2-core machine (25 epochs of 9 steps, about 4 s an
# epoch; 17-26 s before torch ran over OpenBLAS, see below).
# YOLOv10 is exported NMS-free: its one-to-one head, `[N, 300, 6]` (Ultralytics 8.4 keeps that
# branch only with nms=False; by default it exports the one-to-many head, `[N, 4+C, A]`).
# RT-DETR, the smallest config Ultralytics has (yolov8n-rtdetr.yaml: YOLOv8n's backbone under
# RT-DETR's encoder and decoder), starts from the YOLOv8n just trained: Ultralytics' own
# `load` moves the backbone's weights across (the layers are the same), so only the encoder
# and decoder learn from nothing, at an AdamW rate of RT-DETR's order and at 160 px (an epoch:
# about 50 s here). A DETR decoder learns one box per object slowly (set matching): after 15
# epochs its boxes sit on the people, several per person, scored 0.3-0.46; ~30 epochs found 70%
# of the SSD's people at IoU 0.5 but did not raise the scores. Real outputs, not confident ones.
# Debian's torch runs matrix products (RT-DETR's transformer, and its convolutions too) on
# libblas.so.3: with Debian's reference BLAS an RT-DETR step took a minute, with OpenBLAS 8 s,
# and the four YOLOs train in about 6 minutes instead of 30 (tools/yolo_models.sh puts
# OpenBLAS first). All five, RT-DETR's 15 epochs included: about 19 minutes in a fresh clone.
MODELS = [
    ("yolov8n", "yolov8n.yaml", "YOLO", {}),
    ("yolo11n", "yolo11n.yaml", "YOLO", {}),
    ("yolov10n", "yolov10n.yaml", "YOLO", {"nms": False}),
    ("yolov5nu", "yolov5nu.yaml", "YOLO", {}),
    ("rtdetr", "yolov8n-rtdetr.yaml", "RTDETR", {}),
]
# What RT-DETR's training differs in: (epochs, imgsz, lr0, the model whose weights it starts from).
RTDETR_RECIPE = (15, 160, 3e-4, "yolov8n")


def log(*a):
    print("[yolo_models]", *a, file=sys.stderr, flush=True)


def build_dataset(dets_paths, work: Path, every: int) -> Path:
    """Frames of each video (one in `every` of those the SSD labelled) as JPEGs with YOLO label files."""
    import cv2

    img_dir, lbl_dir = work / "images" / "train", work / "labels" / "train"
    shutil.rmtree(work / "images", ignore_errors=True)
    shutil.rmtree(work / "labels", ignore_errors=True)
    img_dir.mkdir(parents=True)
    lbl_dir.mkdir(parents=True)
    total = 0
    for video, dets in dets_paths:
        rows = {}
        with open(dets) as f:
            for line in f:
                r = json.loads(line)
                if "frame" in r:
                    rows[r["frame"]] = r["detections"]
        wanted = sorted(rows)[::every]
        cap = cv2.VideoCapture(str(video))
        n, stem = 0, Path(video).stem
        want = set(wanted)
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if n in want:
                h, w = frame.shape[:2]
                lines = []
                for d in rows[n]:
                    c = d["class_id"]
                    if c >= len(NAMES):
                        continue
                    cx, cy = (d["x1"] + d["x2"]) / 2 / w, (d["y1"] + d["y2"]) / 2 / h
                    bw, bh = (d["x2"] - d["x1"]) / w, (d["y2"] - d["y1"]) / h
                    if bw > 0 and bh > 0:
                        lines.append(f"{c} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
                cv2.imwrite(str(img_dir / f"{stem}_{n:05d}.jpg"), frame)
                (lbl_dir / f"{stem}_{n:05d}.txt").write_text("\n".join(lines) + "\n")
                total += 1
            n += 1
        cap.release()
    log(f"dataset: {total} labelled frames")
    data = work / "data.yaml"
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(NAMES))
    data.write_text(f"path: {work}\ntrain: images/train\nval: images/train\nnames:\n{names}\n")
    return data


def export(model, out: Path, name: str, imgsz: int, extra: dict):
    """Static batch 1 and dynamic batch, each moved to OUT/<name>[_dyn].onnx."""
    for suffix, opts in (("", {"batch": 1}), ("_dyn", {"dynamic": True, "batch": 4})):
        f = model.export(format="onnx", imgsz=imgsz, simplify=True, verbose=False, **opts, **extra)
        dst = out / f"{name}{suffix}.onnx"
        shutil.move(f, dst)
        log(f"exported {dst}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dets", nargs=2, action="append", metavar=("VIDEO", "JSONL"), required=True,
                    help="a video and vidinfer's SSD detections on it (repeatable)")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--work", required=True, type=Path)
    ap.add_argument("--imgsz", type=int, default=224)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--every", type=int, default=1, help="keep one labelled frame in EVERY")
    ap.add_argument("--only", nargs="*", help="make only these models")
    a = ap.parse_args()
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch
    from ultralytics import RTDETR, YOLO

    torch.set_num_threads(os.cpu_count() or 1)
    a.out.mkdir(parents=True, exist_ok=True)
    a.work.mkdir(parents=True, exist_ok=True)
    data = build_dataset(a.dets, a.work.resolve(), a.every)
    if not a.only or "seg" in a.only:
        # An untrained segmentation export: for the test that vidinfer refuses it.
        seg = YOLO("yolov8n-seg.yaml")
        seg.model.names = dict(enumerate(NAMES))
        f = seg.export(format="onnx", imgsz=a.imgsz, batch=1, verbose=False)
        shutil.move(f, a.out / "yolov8n_seg.onnx")
    runs = a.work.resolve() / "runs"
    for name, cfg, cls, extra in MODELS:
        if a.only and name not in a.only:
            continue
        epochs, imgsz, lr0, start = (a.epochs, a.imgsz, 0.003, None)
        if cls == "RTDETR":
            epochs, imgsz, lr0, start = RTDETR_RECIPE
        log(f"training {name} ({cfg}) for {epochs} epochs at {imgsz}")
        model = (RTDETR if cls == "RTDETR" else YOLO)(cfg)
        if start:
            weights = runs / start / "weights" / "last.pt"
            if not weights.exists():
                sys.exit(f"{name} starts from {start}'s weights: no {weights} (train {start} first)")
            model.load(str(weights))
        model.train(data=str(data), epochs=epochs, imgsz=imgsz, batch=8, workers=0,
                    device="cpu", plots=False, val=False, amp=False, seed=0, cache="ram",
                    project=str(runs), name=name, exist_ok=True,
                    verbose=False, mosaic=0.0, warmup_epochs=0, optimizer="AdamW", lr0=lr0)
        export(model, a.out, name, imgsz, extra)
        if name == "yolov8n":
            # Ultralytics' NMS-in-the-graph export: the [N, 300, 6] end-to-end layout from a v8 head.
            f = model.export(format="onnx", imgsz=a.imgsz, nms=True, batch=1, verbose=False)
            shutil.move(f, a.out / "yolov8n_nms.onnx")
    log("done")


if __name__ == "__main__":
    main()
