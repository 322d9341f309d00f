#!/usr/bin/env python3
"""Baseline 2: the seed article's multiprocessing fix, headless (imshow dropped), faults kept.

Worker processes each load the network and read frames from an input queue; the main loop
reads the video, puts each frame in the input queue and takes whatever result is ready with
`get(block=False)`. Results can be dropped or come back out of order, and every frame is
pickled across processes: that is the article's design, reproduced as is.

usage: multiprocessing_cv2_dnn.py VIDEO DETOUT_MODEL.onnx [--workers 2] [--frames N]
Prints: RESULT baseline=multiprocessing_cv2_dnn frames=N seconds=S fps=F detections=D results=R
(frames = frames read and shown; results = inference results the main loop actually received)
"""
import argparse
import queue
import time
from multiprocessing import Process, Queue

import cv2


def worker(model, input_q, output_q):
    net = cv2.dnn.readNet(model)
    while True:
        frame = input_q.get()
        if frame is None:
            break
        blob = cv2.dnn.blobFromImage(frame, 1 / 255, (300, 300), swapRB=True)
        net.setInput(blob)
        output_q.put(net.forward())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("model")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--frames", type=int, default=0)
    a = ap.parse_args()

    input_q, output_q = Queue(maxsize=5), Queue(maxsize=5)
    procs = [Process(target=worker, args=(a.model, input_q, output_q), daemon=True) for _ in range(a.workers)]
    for p in procs:
        p.start()
    cap = cv2.VideoCapture(a.video)
    frames = detections = results = 0
    out = None
    start = time.time()
    while True:
        ret, frame = cap.read()
        if not ret:
            break
        (h, w) = frame.shape[:2]
        input_q.put(frame)
        try:
            out = output_q.get(block=False)
            results += 1
        except queue.Empty:
            pass
        if out is not None:
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
    print(f"RESULT baseline=multiprocessing_cv2_dnn frames={frames} seconds={seconds:.3f} fps={frames / seconds:.2f} detections={detections} results={results}")
    # Harness only (not in the article): stop the workers without waiting on queued frames.
    for q in (input_q, output_q):
        q.cancel_join_thread()
    for p in procs:
        p.terminate()


if __name__ == "__main__":
    main()
