"""vidinfer: object detection over video, fast, from Python.

    import vidinfer
    for r in vidinfer.detect("video.mp4"):
        print(r.frame, r.pts, r.labels, r.boxes)      # boxes: (N, 4) float32, frame pixels

    det = vidinfer.Detector()                          # the same model on numpy RGB images
    results = det([image1, image2])

The pipeline (FFmpeg decode, Rust preprocessing, ONNX Runtime inference, NMS, tracking)
runs on its own threads; the iterator reads its results from a bounded queue, so a slow
loop body slows the pipeline and never loses a frame. See docs/python.md.
"""
from __future__ import annotations

import os as _os
from typing import TYPE_CHECKING, Any

from . import _native
from ._native import (
    DetectIter,
    Detector,
    FrameResult,
    InputError,
    ModelError,
    VidinferError,
    detect,
    ort_library,
)

__all__ = [
    "DetectIter",
    "Detector",
    "FrameResult",
    "InputError",
    "ModelError",
    "VidinferError",
    "detect",
    "ort_library",
    "to_supervision",
]

_HERE = _os.path.dirname(_os.path.abspath(__file__))


def _bundled_ort() -> str | None:
    """The ONNX Runtime library the wheel ships (vidinfer/libs/onnxruntime/), if any."""
    d = _os.path.join(_HERE, "libs", "onnxruntime")
    if not _os.path.isdir(d):
        return None
    names = sorted(n for n in _os.listdir(d) if n.startswith("libonnxruntime.so"))
    return _os.path.join(d, names[0]) if names else None


def _openvino_ort() -> str | None:
    """ONNX Runtime from the `openvino` extra (the onnxruntime-openvino package's library, found
    without importing it), if that package is installed."""
    import importlib.util

    spec = importlib.util.find_spec("onnxruntime")
    if spec is None or not spec.submodule_search_locations:
        return None
    capi = _os.path.join(list(spec.submodule_search_locations)[0], "capi")
    if not _os.path.isfile(_os.path.join(capi, "libonnxruntime_providers_openvino.so")):
        return None
    names = sorted(n for n in _os.listdir(capi) if n.startswith("libonnxruntime.so."))
    return _os.path.join(capi, names[0]) if names else None


_models = _os.path.join(_HERE, "models")
_native._set_bundled(_openvino_ort() or _bundled_ort(), _models if _os.path.isdir(_models) else None)

if TYPE_CHECKING:  # pragma: no cover
    import supervision


def to_supervision(result: FrameResult) -> "supervision.Detections":
    """A FrameResult as `supervision.Detections` (needs `pip install supervision`)."""
    import numpy as np
    import supervision as sv

    data: dict[str, Any] = {"class_name": np.array(result.labels, dtype=object)}
    tracker_id = None
    if result.track_ids is not None:
        tracker_id = np.array([-1 if t is None else t for t in result.track_ids], dtype=int)
    return sv.Detections(
        xyxy=np.asarray(result.boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.asarray(result.scores, dtype=np.float32),
        class_id=np.asarray(result.class_ids, dtype=int),
        tracker_id=tracker_id,
        data=data,
    )
