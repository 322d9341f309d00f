"""The peer on the same work: Ultralytics' own predict loop (stream=True, batch 1), same weights, same video.
usage: ultralytics_predict.py VIDEO WEIGHTS OUT.jsonl IMGSZ CONF [DEVICE]   (DEVICE: 0 = the first GPU, cpu)
Writes vidinfer-schema JSONL (frame, detections with class_id, score, x1, y1, x2, y2) of the
second pass; prints the fps of both passes (the first holds model load and CUDA warm-up)."""
import json
import sys
import time

from ultralytics import YOLO

src, weights, out, imgsz, conf = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
device = sys.argv[6] if len(sys.argv) > 6 else "0"
model = YOLO(weights)
for rep in range(2):
    t0 = time.perf_counter()
    rows = []
    for i, r in enumerate(model.predict(source=src, device=device, stream=True, imgsz=imgsz, conf=conf,
                                        verbose=False)):
        b = r.boxes
        dets = [{"class_id": int(c), "score": float(s), "x1": xyxy[0], "y1": xyxy[1], "x2": xyxy[2],
                 "y2": xyxy[3]} for xyxy, s, c in zip(b.xyxy.cpu().tolist(), b.conf.cpu().tolist(), b.cls.cpu().tolist())]
        rows.append({"frame": i, "detections": dets})
    dt = time.perf_counter() - t0
    print(f"peer pass {rep + 1}: {len(rows)} frames in {dt:.2f} s = {len(rows) / dt:.1f} fps", flush=True)
with open(out, "w") as f:
    for r in rows:
        f.write(json.dumps(r) + "\n")
