#!/usr/bin/env python3
"""A synthetic counting clip with known truth, built from real photos: people cut out of
opencv-doc's vtest.avi (by difference to the walkway's median background) pasted onto that
background, walking straight paths across one counting line, and a real-photo occluder
(a crop of opencv-doc's building.jpg) standing on the line. Truth by construction.

Scenes (feet = box bottom centre; the line is x = 384 from y = 450 up to y = 110, drawn upwards,
so "in" is walking left to right, as on vtest's walkway line):
  1. a person crossing in;            2. a person crossing out;
  3. two people passing each other on the line (one in, one out);
  4. two people walking side by side across it (both in);
  5. a person approaching the line and turning back (no crossing);
  6. a person crossing out behind the occluder, hidden at the line;
  7. a fast person crossing in (250 px/s, about half a box width per frame at 10 fps).
Sprites are scaled 1.5x (people ~130 px tall) so that the SSD model sees them as vtest's
nearest people; every scene uses a different cut-out, mirrored to face the way it walks.

Writes OUT.mp4 (768x576, 10 fps, H.264 by ffmpeg, lossless-ish crf 12), OUT.truth.json
({"line": ..., "crossings": [{"actor", "t", "frame", "direction"}], ...}) and OUT.gt.txt
(MOTChallenge ground truth: frame from 1, id, x, y, w, h, 1, 1, visibility; a box is listed
while at least half of it is visible).

usage: synth_crossings.py --video samples/vtest.avi --photo DIR/building.jpg --out samples/crossings
"""
import argparse
import json
import os
import subprocess

import cv2
import numpy as np

W, H, FPS = 768, 576, 10
LINE = ((384.0, 450.0), (384.0, 110.0))
SCALE = 1.5
# Cut-outs from vtest: (frame, x1, y1, x2, y2) around an isolated person SSD is sure of.
SPRITES = [
    (0, 249, 215, 285, 309),
    (235, 683, 278, 733, 381),
    (261, 311, 215, 368, 301),
    (377, 637, 205, 685, 308),
    (455, 317, 209, 359, 293),
    (510, 527, 222, 569, 316),
    (562, 638, 303, 681, 406),
    (643, 642, 210, 687, 298),
    (697, 289, 209, 340, 304),
]
# (actor id, sprite, waypoints [(t, x_feet, y_feet)]): straight segments between waypoints.
# Everyone walks in from one edge of the frame and out at an edge (people do not appear or vanish
# in mid-frame), at about 75 px/s unless said.
ACTORS = [
    (1, 0, [(0.0, -30, 300), (11.0, 800, 300)]),
    (2, 1, [(2.0, 800, 410), (13.0, -30, 410)]),
    (3, 2, [(12.0, -30, 255), (23.0, 800, 255)]),
    (4, 3, [(12.0, 800, 285), (23.0, -30, 285)]),
    (5, 4, [(20.0, -30, 280), (31.0, 800, 280)]),
    (6, 5, [(20.0, 0, 400), (31.0, 830, 400)]),
    (7, 6, [(26.0, -30, 430), (30.8, 330, 430), (35.6, -30, 430)]),
    (8, 7, [(32.0, 800, 240), (39.5, -30, 240)]),  # 110 px/s, hidden behind the occluder at the line
    (9, 8, [(38.0, -30, 380), (41.3, 800, 380)]),  # 250 px/s
]
# On the line, a little wider than scene 8's person (fully hidden for a moment), taller than
# anyone behind it; people with their feet below its bottom edge walk in front of it.
OCCLUDER = (356, 60, 412, 250)  # x1, y1, x2, y2
DURATION = 42.0


def background(cap, n):
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = []
    for k in range(n):
        cap.set(cv2.CAP_PROP_POS_FRAMES, int((k + 0.5) * total / n))
        ok, f = cap.read()
        if ok:
            frames.append(f)
    return np.median(np.stack(frames), axis=0).astype(np.uint8)


def cutout(cap, bg, spec):
    """The person in box spec of that frame: BGR crop and alpha (0..1), scaled by SCALE."""
    frame, x1, y1, x2, y2 = spec
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame)
    ok, f = cap.read()
    assert ok, f"frame {frame}"
    crop, ref = f[y1:y2, x1:x2].astype(np.int16), bg[y1:y2, x1:x2].astype(np.int16)
    diff = np.abs(crop - ref).sum(axis=2)
    mask = (diff > 60).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    mask = (labels == keep).astype(np.float32)
    mask = cv2.GaussianBlur(mask, (3, 3), 0)
    ys, xs = np.where(mask > 0.5)
    tx1, ty1, tx2, ty2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    img, alpha = f[y1:y2, x1:x2][ty1:ty2, tx1:tx2], mask[ty1:ty2, tx1:tx2]
    size = (round((tx2 - tx1) * SCALE), round((ty2 - ty1) * SCALE))
    img = cv2.resize(img, size, interpolation=cv2.INTER_CUBIC)
    alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR)
    return img, alpha


def position(way, t):
    """Feet (x, y) at time t, or None outside the waypoints; and the x velocity sign."""
    if t < way[0][0] - 1e-9 or t > way[-1][0] + 1e-9:
        return None
    for (t0, x0, y0), (t1, x1, y1) in zip(way, way[1:]):
        if t <= t1 + 1e-9:
            s = (t - t0) / (t1 - t0)
            return x0 + s * (x1 - x0), y0 + s * (y1 - y0), np.sign(x1 - x0)
    return None


def crossings(way, actor):
    """Where the straight path crosses the line (x = 384, y within the segment)."""
    lx, (ya, yb) = LINE[0][0], (LINE[1][1], LINE[0][1])
    out = []
    for (t0, x0, y0), (t1, x1, y1) in zip(way, way[1:]):
        if (x0 - lx) * (x1 - lx) < 0:
            t = t0 + (lx - x0) / (x1 - x0) * (t1 - t0)
            y = y0 + (t - t0) / (t1 - t0) * (y1 - y0)
            if ya <= y <= yb:
                out.append({"actor": actor, "t": round(t, 3), "frame": int(np.ceil(t * FPS - 1e-9)),
                            "direction": "in" if x1 > x0 else "out"})
    return out


def paste(canvas, img, alpha, x1, y1):
    h, w = alpha.shape
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x1 + w, W), min(y1 + h, H)
    if cx1 >= cx2 or cy1 >= cy2:
        return
    a = alpha[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1, None]
    region = canvas[cy1:cy2, cx1:cx2].astype(np.float32)
    src = img[cy1 - y1:cy2 - y1, cx1 - x1:cx2 - x1].astype(np.float32)
    canvas[cy1:cy2, cx1:cx2] = (a * src + (1 - a) * region).astype(np.uint8)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--video", required=True)
    ap.add_argument("--photo", required=True, help="opencv-doc's building.jpg (the occluder)")
    ap.add_argument("--out", required=True, help="path without extension")
    a = ap.parse_args()
    cap = cv2.VideoCapture(a.video)
    bg = background(cap, 120)
    sprites = [cutout(cap, bg, s) for s in SPRITES]
    photo = cv2.imread(a.photo)
    assert photo is not None, a.photo
    ox1, oy1, ox2, oy2 = OCCLUDER
    ph, pw = photo.shape[:2]
    occ = cv2.resize(photo[ph // 4: ph // 4 + 3 * (oy2 - oy1), pw // 3: pw // 3 + 3 * (ox2 - ox1)],
                     (ox2 - ox1, oy2 - oy1), interpolation=cv2.INTER_AREA)
    n = int(round(DURATION * FPS))
    enc = subprocess.Popen(["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{W}x{H}",
                            "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-preset", "medium", "-crf", "12",
                            "-pix_fmt", "yuv420p", a.out + ".mp4.tmp.mp4"], stdin=subprocess.PIPE)
    gt = []
    for k in range(n):
        t = k / FPS
        canvas = bg.copy()
        placed = []
        for actor, si, way in ACTORS:
            p = position(way, t)
            if p is None:
                continue
            x, y, vx = p
            img, alpha = sprites[si]
            if vx > 0:
                img, alpha = img[:, ::-1], alpha[:, ::-1]
            h, w = alpha.shape
            x1, y1 = int(round(x - w / 2)), int(round(y - h))
            placed.append((y, actor, img, alpha, x1, y1, w, h))
        # Painter's order: further up the image (further away) first; the occluder stands on
        # the ground at its bottom edge, so people whose feet are above it pass behind it.
        behind = [p for p in placed if p[0] < oy2]
        for y, actor, img, alpha, x1, y1, w, h in sorted(behind, key=lambda p: p[0]):
            paste(canvas, img, alpha, x1, y1)
        canvas[oy1:oy2, ox1:ox2] = occ
        for y, actor, img, alpha, x1, y1, w, h in sorted(placed, key=lambda p: p[0]):
            if y >= oy2:
                paste(canvas, img, alpha, x1, y1)
        for y, actor, img, alpha, x1, y1, w, h in placed:
            # Visibility: the share of the box not behind the occluder (people pass in front of
            # each other: that is not counted as hidden).
            ix = max(0, min(x1 + w, ox2) - max(x1, ox1))
            iy = max(0, min(y1 + h, oy2) - max(y1, oy1))
            vis = 1.0 - ix * iy / (w * h) if y < oy2 else 1.0
            inside = min(x1 + w, W) - max(x1, 0) > w / 2
            if vis >= 0.5 and inside:
                gt.append(f"{k + 1},{actor},{x1},{y1},{w},{h},1,1,{vis:.2f}")
        enc.stdin.write(canvas.tobytes())
    enc.stdin.close()
    assert enc.wait() == 0, "ffmpeg failed"
    truth = {
        "line": {"name": "door", "a": LINE[0], "b": LINE[1]},
        "fps": FPS,
        "frames": n,
        "crossings": sorted((c for actor, _, way in ACTORS for c in crossings(way, actor)), key=lambda c: c["t"]),
        "actors": {str(actor): way for actor, _, way in ACTORS},
        "occluder": OCCLUDER,
    }
    with open(a.out + ".gt.txt", "w") as f:
        f.write("\n".join(gt) + "\n")
    with open(a.out + ".truth.json", "w") as f:
        json.dump(truth, f, indent=1)
    os.replace(a.out + ".mp4.tmp.mp4", a.out + ".mp4")


if __name__ == "__main__":
    main()
