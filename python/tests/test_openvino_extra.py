"""The `openvino` extra: with `pip install "vidinfer[openvino]"` the package loads the
onnxruntime-openvino build's library and runs ep="openvino", detecting what the CLI detects
with `--ep openvino` (run by tools/python_test in a venv of its own)."""
import os

import vidinfer
from test_vidinfer import VIDEO, env, jsonl_line


def test_the_extra_s_onnx_runtime_is_the_one_loaded():
    for _ in vidinfer.detect(VIDEO, max_frames=1, ep="openvino"):
        pass
    lib = os.path.realpath(vidinfer.ort_library())
    assert os.sep + "onnxruntime" + os.sep + "capi" + os.sep in lib, lib


def test_openvino_matches_the_cli_jsonl_byte_for_byte():
    with open(env("VIDINFER_TEST_JSONL_OPENVINO")) as f:
        cli = f.read()
    runs = vidinfer.detect(VIDEO, ep="openvino", max_frames=200)
    mine = "".join(jsonl_line(r) + "\n" for r in runs if r.inferred)
    assert cli.count("\n") == 200
    assert mine == cli
