#!/usr/bin/env python3
"""Baseline 1: the seed article's naive loop, headless (imshow dropped).

cv2.VideoCapture → cv2.dnn.blobFromImage(frame, 1/255, (300,300), swapRB=True) →
net.forward() → keep conf > 0.5 → cv2.rectangle, serially on one thread.

usage: naive_cv2_dnn.py VIDEO DETOUT_MODEL.onnx [--frames N]
Prints: RESULT baseline=naive_cv2_dnn frames=N seconds=S fps=F detections=D
"""
import argparse
import time

import cv2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("model")
    ap.add_argument("--frames", type=int, default=0)
    a = ap.parse_args()

    net = cv2.dnn.readNet(a.model)
    cap = cv2.VideoCapture(a.video)
    frames = detections = 0
    start = time.time()
    while True:
        ret, frame = cap.read()
        if not ret:
            break
        (h, w) = frame.shape[:2]
        blob = cv2.dnn.blobFromImage(frame, 1 / 255, (300, 300), swapRB=True)
        net.setInput(blob)
        out = net.forward()
        for i in range(out.shape[2]):
            confidence = out[0, 0, i, 2]
            if confidence > 0.5:
                box = out[0, 0, i, 3:7] * [w, h, w, h]
                (x1, y1, x2, y2) = box.astype("int")
                cv2.rectangle(frame, (x1, y1), (x2, y2), (0, 255, 0), 2)
                detections += 1
        frames += 1
        if a.frames and frames >= a.frames:
            break
    seconds = time.time() - start
    print(f"RESULT baseline=naive_cv2_dnn frames={frames} seconds={seconds:.3f} fps={frames / seconds:.2f} detections={detections}")


if __name__ == "__main__":
    main()
