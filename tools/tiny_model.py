#!/usr/bin/env python3
"""Writes a tiny detection model whose inference costs almost nothing, for decode-bound
benchmarks (tools/streams_bench): it shows how far decoding several inputs side by side
(--streams) scales once the model is no longer the bottleneck, as on a GPU or a many-core CPU.

The model has SSD MobileNet's interface in vidinfer's raw layout: input float32 NCHW
`image [N,3,300,300]` (dynamic batch), outputs `boxes [N,100,4]` and `scores [N,100,91]`.
Inside it is one 3x3 convolution with stride 30 on the input (a 10x10 grid of anchors, 95
channels: about 0.26 M multiply-adds per image, against SSD MobileNet's ~0.8 G), split into
box corners and class scores, each through a sigmoid. Its weights are fixed pseudo-random numbers (seed
15) with a negative score bias: it detects next to nothing, which keeps postprocessing and
the sinks cheap too. Its detections mean nothing; only its cost matters.

usage: tiny_model.py OUT.onnx   (needs the `onnx` package: tools/streams_bench provides it)
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SIZE, CELL, KERNEL, CLASSES = 300, 30, 3, 91
GRID = SIZE // CELL
ANCHORS = GRID * GRID


def build():
    rng = np.random.default_rng(15)
    channels = 4 + CLASSES
    weight = (rng.standard_normal((channels, 3, KERNEL, KERNEL)) * 0.2).astype(np.float32)
    bias = np.concatenate([np.zeros(4), np.full(CLASSES, -3.0)]).astype(np.float32)
    inits = [
        numpy_helper.from_array(weight, "conv_w"),
        numpy_helper.from_array(bias, "conv_b"),
        numpy_helper.from_array(np.array([0, ANCHORS, channels], np.int64), "shape"),
        numpy_helper.from_array(np.array([4, CLASSES], np.int64), "split"),
    ]
    nodes = [
        helper.make_node("Conv", ["image", "conv_w", "conv_b"], ["grid"], kernel_shape=[KERNEL, KERNEL], strides=[CELL, CELL]),
        # [N,95,10,10] -> [N,10,10,95] -> [N,100,95]: one row per anchor.
        helper.make_node("Transpose", ["grid"], ["cells"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["cells", "shape"], ["anchors"]),
        helper.make_node("Split", ["anchors", "split"], ["box_logits", "class_logits"], axis=2),
        helper.make_node("Sigmoid", ["box_logits"], ["boxes"]),
        helper.make_node("Sigmoid", ["class_logits"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_decode_bound",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [
            helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", ANCHORS, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", ANCHORS, CLASSES]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="vidinfer tools/tiny_model.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    onnx.save(build(), sys.argv[1])
    print(f"wrote {sys.argv[1]}", file=sys.stderr)


if __name__ == "__main__":
    main()
