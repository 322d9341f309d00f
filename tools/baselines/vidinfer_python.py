#!/usr/bin/env python3
"""The seed article's loop rewritten with the `vidinfer` Python package: the pipeline
(decode, preprocess, inference, NMS) runs on vidinfer's threads, the loop body gets each
frame's boxes as numpy arrays, in order. With --draw it also gets the decoded frame and draws
the boxes with cv2.rectangle, as the article's loop does.

    for r in vidinfer.detect(video):            # r.boxes (N, 4), r.scores, r.labels, ...
        for x1, y1, x2, y2 in r.boxes.astype(int):
            cv2.rectangle(r.image, (x1, y1), (x2, y2), (0, 255, 0), 2)   # with frames=True

usage: vidinfer_python.py VIDEO [--model M] [--frames N] [--draw]
Prints: RESULT baseline=vidinfer_python frames=N seconds=S fps=F detections=D
(timed from the first frame asked for: the model is loaded by then, as vidinfer's own fps
counts from the pipeline's start.)
"""
import argparse
import time

import vidinfer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("--model", default=None)
    ap.add_argument("--frames", type=int, default=0)
    ap.add_argument("--draw", action="store_true", help="get the frames and draw the boxes (needs cv2)")
    a = ap.parse_args()
    if a.draw:
        import cv2
    it = vidinfer.detect(a.video, model=a.model, max_frames=a.frames or None, frames=a.draw)
    frames = detections = 0
    start = time.time()
    for r in it:
        if a.draw:
            img = r.image
            for x1, y1, x2, y2 in r.boxes.astype(int):
                cv2.rectangle(img, (x1, y1), (x2, y2), (0, 255, 0), 2)
        detections += len(r)
        frames += 1
    seconds = time.time() - start
    print(f"RESULT baseline=vidinfer_python frames={frames} seconds={seconds:.3f} fps={frames / seconds:.2f} detections={detections}")


if __name__ == "__main__":
    main()
