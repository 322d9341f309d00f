#!/usr/bin/env python3
"""Post-training int8 quantisation of an fp32 ONNX detector with NNCF (ONNX backend), on
calibration tensors made by vidinfer's own preprocessing (examples/calib_tensors.rs).
Run by tools/quantize in the NNCF venv (tools/nncf_venv.sh); not meant to be run alone.

Writes QDQ ONNX (QuantizeLinear/DequantizeLinear around the int8 operations), which ONNX
Runtime and OpenVINO both read, with the fp32 model's metadata (its preprocessing, so vidinfer
feeds it the same input) and `precision=int8` (what `--precision int8` checks).

usage: quantize.py FP32.onnx CALIB.npy OUT.onnx [--preset performance|mixed] [--heads keep|ignore]
                   [--bias fast|full|none] [--subset N] [--float REGEX]... [--quantized-from REL_PATH]
Exit 1 with a message when the model cannot be quantised.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx

# The detector's box and class heads: the last convolutions, whose outputs are the boxes and
# logits themselves (quantising them costs more agreement than anything else in SSD).
HEADS = r".*BoxPredictor_\d+/(ClassPredictor|BoxEncodingPredictor)/.*"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("calib")
    ap.add_argument("out")
    ap.add_argument("--preset", choices=["performance", "mixed"], default="performance")
    ap.add_argument("--heads", choices=["keep", "ignore"], default="keep",
                    help="ignore: leave the box/class head convolutions in float")
    ap.add_argument("--bias", choices=["fast", "full", "none"], default="fast",
                    help="bias correction after quantisation")
    ap.add_argument("--subset", type=int, default=300, help="calibration samples NNCF uses")
    ap.add_argument("--float", action="append", default=[], metavar="REGEX",
                    help="leave the nodes whose names match in float (repeatable)")
    ap.add_argument("--quantized-from", help="the fp32 model's path relative to where the int8 one goes "
                    "(metadata for `vidinfer info`; default: its file name)")
    a = ap.parse_args()

    import nncf  # noqa: E402  (slow to import; after the arguments are checked)

    model = onnx.load(a.model)
    if len(model.graph.input) != 1:
        sys.exit(f"{a.model}: {len(model.graph.input)} inputs; only single-input models are quantised")
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("precision", "fp32") != "fp32" or any(
            n.op_type in ("QuantizeLinear", "DequantizeLinear", "QLinearConv") for n in model.graph.node):
        sys.exit(f"{a.model}: already quantised (precision={meta.get('precision')}); give the fp32 model")
    name = model.graph.input[0].name
    data = np.load(a.calib, mmap_mode="r")
    want = model.graph.input[0].type.tensor_type.elem_type
    if want == onnx.TensorProto.UINT8 and data.dtype != np.uint8 or \
            want == onnx.TensorProto.FLOAT and data.dtype != np.float32:
        sys.exit(f"{a.calib}: {data.dtype} tensors, the model's input is {onnx.TensorProto.DataType.Name(want)}")
    dataset = nncf.Dataset(range(len(data)), lambda i: {name: np.ascontiguousarray(data[i:i + 1])})
    opts = dict(
        preset=nncf.QuantizationPreset.PERFORMANCE if a.preset == "performance" else nncf.QuantizationPreset.MIXED,
        subset_size=min(a.subset, len(data)),
        fast_bias_correction=a.bias == "fast",
    )
    if a.bias == "none":
        opts["advanced_parameters"] = nncf.AdvancedQuantizationParameters(disable_bias_correction=True)
    floats = ([HEADS] if a.heads == "ignore" else []) + a.float
    if floats:
        opts["ignored_scope"] = nncf.IgnoredScope(patterns=floats, validate=False)
    try:
        q = nncf.quantize(model, dataset, **opts)
    except Exception as e:  # NNCF raises many types; the message is what the user needs
        sys.exit(f"{a.model}: NNCF could not quantise it: {type(e).__name__}: {e}")
    del q.metadata_props[:]
    # quantized_from: `vidinfer info` measures the int8 model against this fp32 file beside it.
    for k, v in {**meta, "precision": "int8", "quantized_from": a.quantized_from or os.path.basename(a.model)}.items():
        p = q.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(q, a.out)
    ops = {}
    for n in q.graph.node:
        ops[n.op_type] = ops.get(n.op_type, 0) + 1
    print(json.dumps({"options": {"preset": a.preset, "heads": a.heads, "bias": a.bias,
                                  "float": a.float, "subset": opts["subset_size"]},
                      "quantize_ops": ops.get("QuantizeLinear", 0), "nncf": nncf.__version__}))


if __name__ == "__main__":
    main()
