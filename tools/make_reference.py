#!/usr/bin/env python3
"""The OpenCV reference for vidinfer's accuracy tests: the classic loop, verbatim.

    cap = cv2.VideoCapture(video)
    net = cv2.dnn.readNet(detout_onnx)
    blob = cv2.dnn.blobFromImage(frame, 1/255, (300, 300), swapRB=True, crop=False)
    net.setInput(blob); out = net.forward()        # detections [1, 1, 100, 7]
    keep score > conf, scale x1, y1, x2, y2 by frame width / height (no clamping)

Writes vidinfer's JSONL schema, one line per frame:
    {"frame": 0, "pts": 0.0, "detections": [{"class_id": 0, "label": "person", "score": 0.83,
                                            "x1": 12.5, "y1": 40.0, "x2": 60.1, "y2": 180.2}]}
class_id is the labels-file id (OpenCV's class_id - 1), pts = frame index / fps.

The threshold is strict (score > conf), as in the classic loop; the summary reports how many
detections a `>=` test would have added (0 on vtest: no score lands exactly on 0.5).

Paths (--path):
  detout  the classic loop above on the detout model (the default, and what the reference is).
  raw     the same without the in-graph post-processing: cv2.dnn runs the raw model (boxes
          [1,1917,4] ymin,xmin,ymax,xmax, scores [1,1917,91], column 0 background) and
          cv2.dnn.NMSBoxesBatched does per-class NMS (IoU --nms-iou 0.6, score > conf), top 100.
  auto    detout; if cv2.dnn cannot load or run it, raw (needs --raw-model).
With --raw-model and --path detout, the raw path also runs on every frame as a cross-check and
the agreement is printed (--raw-out saves its JSONL).

With --blobs-dir it also saves, for the listed frames, the decoded BGR pixels exactly as
cv2.VideoCapture returned them (frame_<i>.bgr, u8 HxWx3), the blob (frame_<i>.blob, f32 NCHW
1x3x300x300 little-endian) and index.json ({"opencv": ver, "frames": {"<i>": {width, height}}}),
so a test can feed identical pixels to vidinfer's resize.

usage: make_reference.py --video V --model DETOUT.onnx --labels L [--frames 100] [--conf 0.5]
                         --out ref.jsonl [--blobs-dir D --blob-frames 0,50,99] [--odd-sizes]
                         [--raw-model RAW.onnx [--raw-out raw.jsonl]] [--path auto|detout|raw]
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_accuracy import match_frame  # noqa: E402  (same matching rule as the accuracy check)

MAX_DETECTIONS = 100


def load_labels(path):
    labels = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                i, name = line.split(maxsplit=1)
                labels[int(i)] = name
    return labels


def det(labels, cid, score, x1, y1, x2, y2, w, h):
    """One detection in vidinfer's schema; cid is the labels-file id, coords normalised."""
    return {"class_id": cid, "label": labels.get(cid, f"class_{cid}"), "score": float(score),
            "x1": float(x1 * w), "y1": float(y1 * h), "x2": float(x2 * w), "y2": float(y2 * h)}


def run_detout(net, blob):
    net.setInput(blob)
    return net.forward()[0, 0]                      # [100, 7]: image_id, class_id, score, x1, y1, x2, y2


def detout_dets(rows, conf, labels, w, h, stats):
    dets = []
    for d in rows:
        score = float(d[2])
        if score >= conf and not score > conf:
            stats["ge_only"] += 1
        if score > conf:
            if min(d[3:7]) < 0.0 or max(d[3:7]) > 1.0:
                stats["outside"] += 1
            dets.append(det(labels, int(d[1]) - 1, score, *d[3:7], w, h))
    return dets


def run_raw(net, blob):
    net.setInput(blob)
    boxes, scores = net.forward(["boxes", "scores"])
    return boxes[0], scores[0]                      # [1917, 4] ymin,xmin,ymax,xmax; [1917, 91]


def raw_dets(boxes, scores, conf, nms_iou, labels, w, h):
    """Per-class NMS over the raw outputs with cv2.dnn.NMSBoxesBatched (score > conf)."""
    fg = scores[:, 1:]
    anchor, cls = np.nonzero(fg > conf)
    if len(anchor) == 0:
        return []
    b = boxes[anchor]                               # ymin, xmin, ymax, xmax
    rects = [(float(x1), float(y1), float(x2 - x1), float(y2 - y1)) for y1, x1, y2, x2 in b]
    sc = fg[anchor, cls].astype(float).tolist()
    keep = cv2.dnn.NMSBoxesBatched(rects, sc, cls.astype(int).tolist(), conf, nms_iou)
    keep = sorted((int(k) for k in np.array(keep).reshape(-1)), key=lambda k: -sc[k])[:MAX_DETECTIONS]
    return [det(labels, int(cls[k]), sc[k], b[k][1], b[k][0], b[k][3], b[k][2], w, h) for k in keep]


def can_run_detout(model):
    try:
        net = cv2.dnn.readNet(model)
        out = run_detout(net, np.zeros((1, 3, 300, 300), np.float32))
        if out.shape[-1] != 7:
            raise ValueError(f"unexpected output shape {out.shape}")
        return net, None
    except (cv2.error, ValueError) as e:
        return None, str(e).strip().splitlines()[-1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--video", required=True)
    ap.add_argument("--model", required=True, help="the detout model")
    ap.add_argument("--labels", required=True)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--conf", type=float, default=0.5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--blobs-dir")
    ap.add_argument("--blob-frames", default="0,50,99")
    ap.add_argument("--odd-sizes", action="store_true",
                    help="also save blobs of random images of odd sizes (641x359, 1x1, 3x5, 1919x1081) as synthetic_<w>x<h>")
    ap.add_argument("--raw-model", help="the raw model: fallback path and cross-check")
    ap.add_argument("--raw-out", help="JSONL of the raw+NMSBoxesBatched path (with --raw-model)")
    ap.add_argument("--path", choices=("auto", "detout", "raw"), default="auto")
    ap.add_argument("--nms-iou", type=float, default=0.6)
    ap.add_argument("--frames-raw", help="also write the decoded frames, as cv2.VideoCapture returned "
                    "them, one after another as raw bgr24 (to make a lossless clip of exactly these pixels)")
    ap.add_argument("--pixels-out", help="also write each frame as the TFLite reference's input: "
                    "RGB, cv2.resize to 300x300 with INTER_LINEAR (the pixels blobFromImage scales), raw rgb24")
    a = ap.parse_args()

    labels = load_labels(a.labels)
    net = raw_net = None
    if a.path in ("auto", "detout"):
        net, err = can_run_detout(a.model)
        if net is None:
            if a.path == "detout" or not a.raw_model:
                sys.exit(f"cv2.dnn cannot run {a.model}: {err}")
            print(f"cv2.dnn cannot run {a.model} ({err}); using the raw model + NMSBoxesBatched", file=sys.stderr)
    if a.raw_model:
        raw_net = cv2.dnn.readNet(a.raw_model)
    elif net is None:
        sys.exit("--path raw needs --raw-model")
    path = "detout" if net is not None else "raw"

    cap = cv2.VideoCapture(a.video)
    if not cap.isOpened():
        sys.exit(f"cannot open {a.video}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    blob_frames = {int(x) for x in a.blob_frames.split(",")} if a.blobs_dir else set()
    if a.blobs_dir:
        os.makedirs(a.blobs_dir, exist_ok=True)
    index = {}
    stats = {"ge_only": 0, "outside": 0}
    xc = {"ref": 0, "raw": 0, "matched": 0, "min_iou": 1.0, "max_dscore": 0.0, "max_dpx": 0.0, "frames_differ": 0}
    total, n, t_net, t_raw, t_blob = 0, 0, 0.0, 0.0, 0.0
    raw_out = open(a.raw_out, "w") if a.raw_out and raw_net is not None else None
    frames_raw = open(a.frames_raw, "wb") if a.frames_raw else None
    pixels_out = open(a.pixels_out, "wb") if a.pixels_out else None
    t_start = time.perf_counter()
    with open(a.out, "w") as out:
        while n < a.frames:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            if frames_raw:
                frames_raw.write(frame.tobytes())
            if pixels_out:
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                pixels_out.write(cv2.resize(rgb, (300, 300), interpolation=cv2.INTER_LINEAR).tobytes())
            t0 = time.perf_counter()
            blob = cv2.dnn.blobFromImage(frame, 1 / 255, (300, 300), swapRB=True, crop=False)
            t1 = time.perf_counter()
            t_blob += t1 - t0
            rdets = None
            if raw_net is not None:
                boxes, scores = run_raw(raw_net, blob)
                rdets = raw_dets(boxes, scores, a.conf, a.nms_iou, labels, w, h)
                t_raw += time.perf_counter() - t1
            if net is not None:
                t2 = time.perf_counter()
                dets = detout_dets(run_detout(net, blob), a.conf, labels, w, h, stats)
                t_net += time.perf_counter() - t2
            else:
                dets, t_net = rdets, t_raw
            pts = round(n / fps, 6)
            out.write(json.dumps({"frame": n, "pts": pts, "detections": dets}) + "\n")
            if raw_out:
                raw_out.write(json.dumps({"frame": n, "pts": pts, "detections": rdets}) + "\n")
            if rdets is not None and net is not None:
                pairs = match_frame(dets, rdets, 0.0)
                xc["ref"] += len(dets)
                xc["raw"] += len(rdets)
                xc["matched"] += len(pairs)
                xc["frames_differ"] += not (len(pairs) == len(dets) == len(rdets))
                for v, i, j in pairs:
                    xc["min_iou"] = min(xc["min_iou"], v)
                    xc["max_dscore"] = max(xc["max_dscore"], abs(dets[i]["score"] - rdets[j]["score"]))
                    xc["max_dpx"] = max(xc["max_dpx"], max(abs(dets[i][k] - rdets[j][k]) for k in ("x1", "y1", "x2", "y2")))
            if n in blob_frames:
                frame.tofile(os.path.join(a.blobs_dir, f"frame_{n}.bgr"))
                blob.astype("<f4").tofile(os.path.join(a.blobs_dir, f"frame_{n}.blob"))
                index[str(n)] = {"width": w, "height": h}
            total += len(dets)
            n += 1
    for f in (raw_out, frames_raw, pixels_out):
        if f:
            f.close()
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
    wall = time.perf_counter() - t_start
    nn = max(n, 1)
    print(f"reference ({path} path, OpenCV {cv2.__version__}): {n} frames, {total} detections "
          f"({total / nn:.2f}/frame), score > {a.conf}")
    print(f"time: {wall:.1f} s total; per frame: blobFromImage {t_blob / nn * 1e3:.2f} ms, "
          f"cv2.dnn {path} forward {t_net / nn * 1e3:.1f} ms"
          + (f", raw forward+NMSBoxesBatched {t_raw / nn * 1e3:.1f} ms" if raw_net is not None and net is not None else ""))
    if net is not None:
        print(f"'>=' instead of '>' would add {stats['ge_only']} detections; "
              f"{stats['outside']} kept boxes have a coordinate outside [0, 1] (written unclamped)")
    if raw_net is not None and net is not None:
        ok = xc["frames_differ"] == 0 and xc["matched"] == xc["ref"] == xc["raw"]
        print(f"cross-check raw+NMSBoxesBatched vs detout: {xc['matched']}/{xc['ref']} detout boxes paired with "
              f"{xc['raw']} raw boxes (same class), {xc['frames_differ']} frames differ in count; "
              f"min IoU {xc['min_iou']:.6f}, max |dscore| {xc['max_dscore']:.2e}, max |dcoord| {xc['max_dpx']:.3f} px"
              f" -> {'AGREE' if ok else 'DIFFER'}")


if __name__ == "__main__":
    main()
