#!/usr/bin/env python3
"""The TFLite reference for the tfod and int8 models: runs the ORIGINAL quantised .tflite (with
its TFLite_Detection_PostProcess) in TensorFlow's tf.lite.Interpreter on the first N frames of a
video, and writes vidinfer's JSONL schema, one line per frame:
    {"frame": 0, "detections": [{"class_id": 0, "label": "person", "score": 0.83,
                                 "x1": 12.5, "y1": 40.0, "x2": 60.1, "y2": 180.2}]}
class_id is the labels-file id (TFLite's output class, 0 = person); boxes are scaled by the
original frame width/height (no clamping); detections with score > --conf are kept.

Run it with the converter venv: .cache/model/venv/bin/python tools/tflite_reference.py ...

Pixels: ffmpeg decodes the video and scales every frame to 300x300 RGB with
    ffmpeg -i VIDEO -frames:v N -vf scale=300:300:flags=bilinear -pix_fmt rgb24 -f rawvideo -
(stretch, no aspect kept). --save-pixels keeps that stream; --pixels FILE --frame-size WxH reads
one instead (any 300x300 rgb24 frames, e.g. from another scaler), so every engine sees the same
uint8 pixels.

Engines (same pixels, same JSONL):
  (default)      tf.lite.Interpreter; --kernels default (XNNPACK delegate, what a TFLite user
                 gets), builtin (TFLite's optimised kernels, no delegate) or reference.
  --onnx MODEL   onnxruntime (CPU EP) instead. A uint8 NHWC model (the tfod model) gets the
                 pixels as they are and its four TF-OD outputs are read like TFLite's; an f32 NCHW
                 model with boxes/scores outputs (the raw or int8 model) gets pixels / 255 and
                 the post-processing below.

Post-processing (--nms), for the raw-interface ONNX models and, with the TFLite engine, on the
dequantised inputs of TFLite's post-process op (so both sides can be compared like with like):
  tflite     (TFLite engine only, the default there) the op's own outputs.
  fast       TFLite's fast NMS as the model has it configured (use_regular_nms false,
             max_classes_per_detection 1): each anchor keeps its best class, one class-agnostic
             NMS (IoU > 0.6 suppresses, stable order by score), at most 20 detections.
  per-class  vidinfer's: score > conf, NMS per class (IoU > 0.6 suppresses), top 100
             (the default for the ONNX raw-interface models).

Compare two outputs with tools/agreement.py (the matching rule of tools/check_accuracy.py).

usage: tflite_reference.py (--video V | --pixels F --frame-size WxH) [--frames 300] [--conf 0.5]
                           --out OUT.jsonl [--model M.tflite] [--labels L] [--save-pixels F]
                           [--onnx MODEL] [--nms tflite|fast|per-class] [--kernels default|builtin|reference]
                           [--threads 1]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIZE = 300
# The model's TFLite_Detection_PostProcess options: nms_iou_threshold 0.6, max_detections 20,
# nms_score_threshold 1e-8, use_regular_nms false, y/x/h/w_scale 10/10/5/5.
NMS_IOU, MAX_FAST, MAX_PER_CLASS_TOTAL, SCORE_FLOOR = 0.6, 20, 100, 1e-8
SCALES = np.array([10.0, 10.0, 5.0, 5.0], np.float32)  # y, x, h, w


def load_labels(path):
    labels = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                i, name = line.split(maxsplit=1)
                labels[int(i)] = name.strip()
    return labels


def frame_size(video):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height", "-of", "csv=p=0", video], check=True,
                         capture_output=True, text=True).stdout
    w, h = out.strip().split(",")[:2]
    return int(w), int(h)


def decode(video, n):
    """The first n frames as uint8 [300,300,3] RGB (ffmpeg, bilinear stretch)."""
    cmd = ["ffmpeg", "-v", "error", "-nostdin", "-i", video, "-frames:v", str(n), "-vf",
           f"scale={SIZE}:{SIZE}:flags=bilinear", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, SIZE, SIZE, 3)


def iou_one_to_many(b, bs):
    """IoU of box b with boxes bs (ymin, xmin, ymax, xmax); 0 where either area is not positive."""
    area = (b[2] - b[0]) * (b[3] - b[1])
    areas = (bs[:, 2] - bs[:, 0]) * (bs[:, 3] - bs[:, 1])
    ih = np.maximum(0.0, np.minimum(b[2], bs[:, 2]) - np.maximum(b[0], bs[:, 0]))
    iw = np.maximum(0.0, np.minimum(b[3], bs[:, 3]) - np.maximum(b[1], bs[:, 1]))
    inter = ih * iw
    union = area + areas - inter
    out = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return np.where((area > 0) & (areas > 0), out, 0.0)


def greedy_nms(boxes, scores, iou_thr, limit):
    """Indices kept by greedy NMS: stable descending score order, IoU > iou_thr suppresses."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    alive = np.ones(len(order), bool)
    for r, i in enumerate(order):
        if not alive[r]:
            continue
        keep.append(i)
        if len(keep) == limit:
            break
        rest = order[r + 1:]
        alive[r + 1:] &= iou_one_to_many(boxes[i], boxes[rest]) <= iou_thr
    return np.array(keep, int)


def nms_fast(boxes, fg, conf):
    """TFLite's fast NMS (max_classes_per_detection 1): best class per anchor, class-agnostic NMS,
    at most 20; then score > conf. fg: [anchors, 90] foreground scores. -> (idx, cls, score)."""
    cls = np.argmax(fg, axis=1)
    best = fg[np.arange(len(fg)), cls]
    cand = np.nonzero(best >= SCORE_FLOOR)[0]
    keep = cand[greedy_nms(boxes[cand], best[cand], NMS_IOU, MAX_FAST)]
    keep = keep[best[keep] > conf]
    return keep, cls[keep], best[keep]


def nms_per_class(boxes, fg, conf):
    """vidinfer's post-processing: score > conf, NMS per class, top 100 by score."""
    anchor, cls = np.nonzero(fg > conf)
    sc = fg[anchor, cls]
    kept = []
    for c in np.unique(cls):
        sel = np.nonzero(cls == c)[0]
        kept.extend(sel[greedy_nms(boxes[anchor[sel]], sc[sel], NMS_IOU, len(sel))])
    kept = np.array(kept, int)
    kept = kept[np.argsort(-sc[kept], kind="stable")][:MAX_PER_CLASS_TOTAL]
    return anchor[kept], cls[kept], sc[kept]


def decode_boxes(enc, anchors):
    """TF-OD centre-size decoding: enc [A,4] (ty, tx, th, tw), anchors [A,4] (yc, xc, h, w)."""
    e = enc / SCALES
    yc = e[:, 0] * anchors[:, 2] + anchors[:, 0]
    xc = e[:, 1] * anchors[:, 3] + anchors[:, 1]
    h = np.exp(e[:, 2]) * anchors[:, 2]
    w = np.exp(e[:, 3]) * anchors[:, 3]
    return np.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=1)


def to_json(i, labels, w, h, boxes, classes, scores):
    dets = []
    for b, c, s in zip(boxes, classes, scores):
        c = int(c)
        dets.append({"class_id": c, "label": labels.get(c, f"class_{c}"), "score": float(s),
                     "x1": float(b[1]) * w, "y1": float(b[0]) * h, "x2": float(b[3]) * w, "y2": float(b[2]) * h})
    return {"frame": i, "detections": dets}


def postprocess(boxes, fg, conf, nms):
    idx, cls, sc = (nms_fast if nms == "fast" else nms_per_class)(boxes, fg, conf)
    return boxes[idx], cls, sc


class TFLite:
    def __init__(self, model, kernels, threads, nms):
        import tensorflow as tf
        resolver = {"default": tf.lite.experimental.OpResolverType.AUTO,
                    "builtin": tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                    "reference": tf.lite.experimental.OpResolverType.BUILTIN_REF}[kernels]
        self.it = tf.lite.Interpreter(model_path=model, num_threads=threads, experimental_op_resolver_type=resolver,
                                      experimental_preserve_all_tensors=nms != "tflite")
        self.it.allocate_tensors()
        self.nms = nms
        (self.inp,) = self.it.get_input_details()
        assert self.inp["dtype"] == np.uint8 and list(self.inp["shape"]) == [1, SIZE, SIZE, 3], self.inp
        self.outs = [d["index"] for d in self.it.get_output_details()]
        (pp,) = [o for o in self.it._get_ops_details() if o["op_name"] == "TFLite_Detection_PostProcess"]
        details = {d["index"]: d for d in self.it.get_tensor_details()}
        self.pp_in = [details[int(t)] for t in pp["inputs"]]  # box encodings, class predictions, anchors

    def _deq(self, d):
        x = self.it.get_tensor(d["index"]).astype(np.float32)
        s, z = d["quantization"]
        return (x - z) * s if s else x

    def run(self, rgb, conf):
        self.it.set_tensor(self.inp["index"], rgb[None])
        self.it.invoke()
        if self.nms == "tflite":
            boxes, classes, scores, count = (self.it.get_tensor(i) for i in self.outs)
            n = int(count[0])
            keep = scores[0, :n] > conf
            return boxes[0, :n][keep], classes[0, :n][keep], scores[0, :n][keep]
        enc, cls_pred, anchors = (self._deq(d) for d in self.pp_in)
        boxes = decode_boxes(enc.reshape(-1, 4), anchors.reshape(-1, 4))
        return postprocess(boxes, cls_pred.reshape(len(boxes), -1)[:, 1:], conf, self.nms)


class Onnx:
    def __init__(self, model, threads, nms):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.log_severity_level = 3
        self.s = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        (self.inp,) = self.s.get_inputs()
        self.tfod = self.inp.type == "tensor(uint8)"
        if self.tfod:
            assert list(self.inp.shape)[1:] == [SIZE, SIZE, 3], self.inp.shape
        else:
            assert list(self.inp.shape)[1:] == [3, SIZE, SIZE], self.inp.shape
            assert [o.name for o in self.s.get_outputs()] == ["boxes", "scores"]
            if nms == "tflite":
                sys.exit("--nms tflite is the TFLite engine's own post-processing: use fast or per-class here")
        self.nms = nms

    def run(self, rgb, conf):
        if self.tfod:
            boxes, classes, scores, count = self.s.run(None, {self.inp.name: rgb[None]})
            n = int(count[0])
            keep = scores[0, :n] > conf
            return boxes[0, :n][keep], classes[0, :n][keep], scores[0, :n][keep]
        x = (rgb.astype(np.float32) / 255).transpose(2, 0, 1)[None]
        boxes, scores = self.s.run(None, {self.inp.name: x})
        return postprocess(boxes[0], scores[0, :, 1:], conf, self.nms)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--video")
    src.add_argument("--pixels", help="raw rgb24 300x300 frames, as --save-pixels writes them")
    ap.add_argument("--frame-size", help="WxH of the original frames (with --pixels)")
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--conf", type=float, default=0.5)
    ap.add_argument("--out", required=True)
    ap.add_argument("--model", default=os.path.join(ROOT, ".cache/model/mobilenet_ssd_v2_coco_quant_postprocess.tflite"))
    ap.add_argument("--labels", default=os.path.join(ROOT, "models/coco_labels.txt"))
    ap.add_argument("--save-pixels")
    ap.add_argument("--onnx")
    ap.add_argument("--nms", choices=["tflite", "fast", "per-class"])
    ap.add_argument("--kernels", choices=["default", "builtin", "reference"], default="default")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    if a.video:
        w, h = frame_size(a.video)
        frames = decode(a.video, a.frames)
    else:
        if not a.frame_size:
            sys.exit("--pixels needs --frame-size WxH")
        w, h = (int(v) for v in a.frame_size.lower().split("x"))
        frames = np.fromfile(a.pixels, np.uint8).reshape(-1, SIZE, SIZE, 3)[:a.frames]
    if a.save_pixels:
        frames.tofile(a.save_pixels)
    labels = load_labels(a.labels)
    if a.onnx:
        engine = Onnx(a.onnx, a.threads, a.nms or "per-class")
    else:
        engine = TFLite(a.model, a.kernels, a.threads, a.nms or "tflite")
    n_det = 0
    with open(a.out + ".tmp", "w") as f:
        for i, rgb in enumerate(frames):
            rec = to_json(i, labels, w, h, *engine.run(np.ascontiguousarray(rgb), a.conf))
            n_det += len(rec["detections"])
            f.write(json.dumps(rec) + "\n")
    os.replace(a.out + ".tmp", a.out)
    what = a.onnx or f"{a.model} (tf.lite.Interpreter, {a.kernels} kernels)"
    print(f"{len(frames)} frames ({w}x{h}), {n_det} detections > {a.conf}: {what}, "
          f"nms {engine.nms} -> {a.out}")


if __name__ == "__main__":
    sys.exit(main())
