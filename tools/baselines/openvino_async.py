#!/usr/bin/env python3
"""Baseline 4: what a CPU expert writes instead of vidinfer — OpenVINO's Python API with its
throughput machinery, not the seed article's serial loops.

cv2.VideoCapture → cv2.dnn.blobFromImage(frame, 1/255, (300,300), swapRB=True) →
OpenVINO `AsyncInferQueue` (as many requests as the compiled model asks for) on the raw model,
reshaped to a static [1,3,300,300] and compiled with PERFORMANCE_HINT THROUGHPUT and
INFERENCE_PRECISION_HINT f32 or bf16 → in each request's callback: conf > 0.5 + per-class NMS
(cv2.dnn.NMSBoxesBatched, IoU 0.6), as the onnxruntime-python loop does.

--precision: fp32 (hint f32), bf16 (hint bf16: the fp32 model run in bf16), int8 (give the
quantised model; hint f32 for what it leaves in float, as vidinfer does).

usage: openvino_async.py VIDEO RAW_MODEL.onnx [--precision fp32|bf16|int8] [--frames N] [--jsonl OUT]
Prints: RESULT baseline=openvino_async precision=P requests=R frames=N seconds=S fps=F detections=D
--jsonl writes the detections in vidinfer's JSONL schema (frame, pts, detections with class_id,
score, x1, y1, x2, y2 in frame pixels), for tools/agreement.py.
"""
import argparse
import json
import time

import cv2
import numpy as np
import openvino as ov
import openvino.properties.hint as hints


def detections(boxes, scores, w, h):
    """[(class_id, score, x1, y1, x2, y2)] above 0.5 after per-class NMS."""
    boxes, scores = boxes[0], scores[0][:, 1:]
    anchor, cls = np.nonzero(scores > 0.5)
    if not len(anchor):
        return []
    b = boxes[anchor]  # ymin, xmin, ymax, xmax
    rects = np.stack([b[:, 1] * w, b[:, 0] * h, (b[:, 3] - b[:, 1]) * w, (b[:, 2] - b[:, 0]) * h], axis=1)
    sc = scores[anchor, cls]
    keep = cv2.dnn.NMSBoxesBatched(rects.tolist(), sc.tolist(), cls.tolist(), 0.5, 0.6)
    out = []
    for i in np.array(keep).flatten():
        x, y, bw, bh = rects[i]
        out.append((int(cls[i]), float(sc[i]), float(x), float(y), float(x + bw), float(y + bh)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("video")
    ap.add_argument("model")
    ap.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32")
    ap.add_argument("--frames", type=int, default=0)
    ap.add_argument("--jsonl")
    a = ap.parse_args()

    core = ov.Core()
    model = core.read_model(a.model)
    model.reshape([1, 3, 300, 300])
    config = {hints.performance_mode: hints.PerformanceMode.THROUGHPUT,
              hints.inference_precision: ov.Type.bf16 if a.precision == "bf16" else ov.Type.f32}
    compiled = core.compile_model(model, "CPU", config)
    queue = ov.AsyncInferQueue(compiled)
    out_boxes, out_scores = compiled.output("boxes"), compiled.output("scores")
    results = {}

    def done(request, userdata):
        idx, pts, w, h = userdata
        results[idx] = (pts, detections(request.get_tensor(out_boxes).data,
                                        request.get_tensor(out_scores).data, w, h))

    queue.set_callback(done)
    cap = cv2.VideoCapture(a.video)
    fps_in = cap.get(cv2.CAP_PROP_FPS) or 25.0
    frames = 0
    start = time.time()
    while True:
        ret, frame = cap.read()
        if not ret:
            break
        (h, w) = frame.shape[:2]
        blob = cv2.dnn.blobFromImage(frame, 1 / 255, (300, 300), swapRB=True)
        queue.start_async({0: blob}, (frames, frames / fps_in, w, h))
        frames += 1
        if a.frames and frames >= a.frames:
            break
    queue.wait_all()
    seconds = time.time() - start
    n = sum(len(d) for _, d in results.values())
    print(f"RESULT baseline=openvino_async precision={a.precision} requests={len(queue)} frames={frames} "
          f"seconds={seconds:.3f} fps={frames / seconds:.2f} detections={n}")
    if a.jsonl:
        with open(a.jsonl, "w") as f:
            for i in sorted(results):
                pts, dets = results[i]
                f.write(json.dumps({"frame": i, "pts": round(pts, 6), "detections": [
                    {"class_id": c, "score": s, "x1": x1, "y1": y1, "x2": x2, "y2": y2}
                    for c, s, x1, y1, x2, y2 in dets]}) + "\n")


if __name__ == "__main__":
    main()
