#!/usr/bin/env python3
"""Baseline 3: the seed article's onnxruntime-python loop, headless (imshow dropped).

cv2.VideoCapture → cv2.dnn.blobFromImage(frame, 1/255, (300,300), swapRB=True) →
onnxruntime (CPU) on the raw model → conf > 0.5 + per-class NMS (cv2.dnn.NMSBoxesBatched,
IoU 0.6) → cv2.rectangle, serially.

usage: onnxruntime_loop.py VIDEO RAW_MODEL.onnx [--frames N]
Prints: RESULT baseline=onnxruntime_loop frames=N seconds=S fps=F detections=D
"""
import argparse
import time

import cv2
import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("model")
    ap.add_argument("--frames", type=int, default=0)
    a = ap.parse_args()

    sess = ort.InferenceSession(a.model, providers=["CPUExecutionProvider"])
    cap = cv2.VideoCapture(a.video)
    frames = detections = 0
    start = time.time()
    while True:
        ret, frame = cap.read()
        if not ret:
            break
        (h, w) = frame.shape[:2]
        blob = cv2.dnn.blobFromImage(frame, 1 / 255, (300, 300), swapRB=True)
        boxes, scores = sess.run(["boxes", "scores"], {"images": blob})
        boxes, scores = boxes[0], scores[0][:, 1:]
        anchor, cls = np.nonzero(scores > 0.5)
        if len(anchor):
            b = boxes[anchor]  # ymin, xmin, ymax, xmax
            rects = np.stack([b[:, 1] * w, b[:, 0] * h, (b[:, 3] - b[:, 1]) * w, (b[:, 2] - b[:, 0]) * h], axis=1)
            keep = cv2.dnn.NMSBoxesBatched(rects.tolist(), scores[anchor, cls].tolist(), cls.tolist(), 0.5, 0.6)
            for i in np.array(keep).flatten():
                x, y, bw, bh = rects[i].astype("int")
                cv2.rectangle(frame, (x, y), (x + bw, y + bh), (0, 255, 0), 2)
                detections += 1
        frames += 1
        if a.frames and frames >= a.frames:
            break
    seconds = time.time() - start
    print(f"RESULT baseline=onnxruntime_loop frames={frames} seconds={seconds:.3f} fps={frames / seconds:.2f} detections={detections}")


if __name__ == "__main__":
    main()
