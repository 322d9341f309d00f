"""Type stubs of vidinfer's native module (re-exported by `vidinfer`)."""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Optional, Union

import numpy as np
import numpy.typing as npt

_Path = Union[str, os.PathLike[str]]

class VidinferError(Exception):
    """Base class of vidinfer's errors; the message is the library's, with its causes."""

class InputError(VidinferError):
    """An input could not be opened or decoded (its frames before the failure were yielded)."""

class ModelError(VidinferError):
    """The model could not be found, loaded or run as asked."""

class FrameResult:
    """One frame's detections, in frame pixels."""

    input: str
    frame: int
    pts: float
    width: int
    height: int
    inferred: bool
    boxes: npt.NDArray[np.float32]  # (N, 4): x1, y1, x2, y2
    scores: npt.NDArray[np.float32]  # (N,)
    class_ids: npt.NDArray[np.int64]  # (N,)
    labels: list[str]
    track_ids: Optional[list[Optional[int]]]
    image: Optional[npt.NDArray[np.uint8]]  # (H, W, 3) RGB, with frames=True
    def __len__(self) -> int: ...

class DetectIter(Iterator[FrameResult]):
    def __iter__(self) -> DetectIter: ...
    def __next__(self) -> FrameResult: ...
    def close(self) -> None: ...
    def __enter__(self) -> DetectIter: ...
    def __exit__(
        self,
        t: Optional[type[BaseException]],
        v: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool: ...

def detect(
    inputs: Union[_Path, Sequence[_Path]],
    *,
    model: Optional[_Path] = None,
    ep: str = "cpu",
    precision: str = "fp32",
    batch: int = 1,
    workers: int = 0,
    threads: int = 0,
    streams: int = 0,
    conf: float = 0.5,
    iou: float = 0.6,
    max_detections: int = 100,
    stride: int = 1,
    max_frames: Optional[int] = None,
    track: bool = False,
    count_lines: Sequence[Union[tuple[float, float, float, float], tuple[float, float, float, float, str]]] = (),
    zones: Mapping[str, Sequence[tuple[float, float]]] = {},
    frames: bool = False,
    preprocess: str = "fused",
    queue: int = 8,
    labels: Optional[_Path] = None,
    ort_lib: Optional[_Path] = None,
) -> DetectIter: ...

class Detector:
    def __init__(
        self,
        model: Optional[_Path] = None,
        *,
        ep: str = "cpu",
        precision: str = "fp32",
        batch: int = 8,
        threads: int = 0,
        conf: float = 0.5,
        iou: float = 0.6,
        max_detections: int = 100,
        labels: Optional[_Path] = None,
        ort_lib: Optional[_Path] = None,
        ) -> None: ...
    @property
    def model(self) -> str: ...
    def __call__(
        self, images: Union[npt.NDArray[np.uint8], Sequence[npt.NDArray[np.uint8]]]
    ) -> list[FrameResult]: ...

def ort_library() -> Optional[str]: ...
def _set_bundled(ort_lib: Optional[_Path], models: Optional[_Path]) -> None: ...
