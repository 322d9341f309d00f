#!/usr/bin/env python3
"""Graph edit of tf2onnx's conversion of the TFLite SSD MobileNet v2 (quantised, postprocess).

From the --dequantize conversion (f32 weights and activations) it writes:
  raw:    input `images` f32 [N,3,300,300] in [0,1] (dynamic batch N), outputs
          `boxes` [N,1917,4] (decoded ymin,xmin,ymax,xmax, normalised) and
          `scores` [N,1917,91] (sigmoid; column 0 background, column k = label id k-1).
  detout: input `images` f32 [1,3,300,300], output `detections` [1,1,100,7] in OpenCV's
          DetectionOutput layout (image_id, class_id (label id + 1), score, x1, y1, x2, y2).

The TFLite input is uint8 NHWC with (q - 128) / 128 dequantisation; ours is [0,1] NCHW, so the
dequantise + NHWC->NCHW transpose becomes `images * (255/128) - 1`.

From the conversion without --dequantize (a QDQ graph: uint8 weights and activations, per tensor,
as the TFLite model has them; ORT fuses DequantizeLinear -> Conv -> QuantizeLinear into
QLinearConv) it writes:
  int8:   the raw variant's interface exactly (`images` f32 [N,3,300,300] in [0,1] -> `boxes`,
          `scores`), the convolutions still quantised, their weights stored as int8 (q - 128,
          zero point z - 128: the same values; see signed_weights for why). The uint8 input + transpose becomes
          QuantizeLinear(images, 1/255, 0), which gives back the uint8 pixel for images = pixel/255,
          and feeds the model's own input DequantizeLinear ((q - 128) / 128). `scores` are the
          model's quantised sigmoid outputs (steps of 1/256), dequantised, as TFLite's post-process
          sees them.
  tfod:   tf2onnx's conversion (uint8 NHWC input [1,300,300,3], the four TF-OD outputs of
          TFLite_Detection_PostProcess), only the weights stored as int8 as for int8, plus the
          preprocessing metadata (scale 1: raw pixels).
          From the QDQ conversion because that one computes what TFLite computes: the --dequantize
          one has f32 activations and finds ~5% more (near-threshold) detections than TFLite.

usage: edit_graph.py TF2ONNX.onnx RAW_OUT.onnx DETOUT_OUT.onnx [--int8 TF2ONNX_QDQ.onnx INT8_OUT.onnx]
                     [--tfod TF2ONNX_QDQ.onnx TFOD_OUT.onnx]
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def load(path):
    return onnx.load(path)


def consumers(graph, name):
    return [n for n in graph.node if name in n.input]


def producer(graph, name):
    for n in graph.node:
        if name in n.output:
            return n
    return None


def replace_input(model, batch):
    """Swaps the uint8 NHWC input + dequantise + transpose for an f32 NCHW [0,1] input."""
    g = model.graph
    (old_in,) = [i for i in g.input if i.name not in {t.name for t in g.initializer}]
    # Follow Cast -> Sub(zero point) -> Mul(scale) -> Transpose(0,3,1,2).
    chain, cur = [], old_in.name
    for op in ("Cast", "Sub", "Mul", "Transpose"):
        (n,) = consumers(g, cur)
        assert n.op_type == op, f"unexpected {n.op_type} where {op} was expected after {cur}"
        chain.append(n)
        cur = n.output[0]
    perm = [a.ints for a in chain[-1].attribute if a.name == "perm"][0]
    assert list(perm) == [0, 3, 1, 2], perm
    zero = numpy_helper.to_array(next(t for t in g.initializer if t.name == chain[1].input[1]))
    scale = numpy_helper.to_array(next(t for t in g.initializer if t.name == chain[2].input[1]))
    assert float(zero) == 128.0 and abs(float(scale) - 1 / 128) < 1e-9, (zero, scale)
    out_name = chain[-1].output[0]
    for n in chain:
        g.node.remove(n)
    g.input.remove(old_in)
    g.input.insert(0, helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 300, 300]))
    g.initializer.extend([
        numpy_helper.from_array(np.array(255.0 / 128.0, dtype=np.float32), "in_scale"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "in_one"),
    ])
    g.node.insert(0, helper.make_node("Sub", ["images_scaled", "in_one"], [out_name], name="in_shift"))
    g.node.insert(0, helper.make_node("Mul", ["images", "in_scale"], ["images_scaled"], name="in_mul"))


def prune(model):
    """Drops nodes and initializers the outputs do not depend on."""
    g = model.graph
    needed = {o.name for o in g.output}
    keep = []
    for n in reversed(list(g.node)):
        if any(o in needed for o in n.output):
            keep.append(n)
            needed.update(i for i in n.input if i)
    keep.reverse()
    del g.node[:]
    g.node.extend(keep)
    inits = [t for t in g.initializer if t.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)


def dynamic_batch(model):
    """Reshape targets with a leading 1 copy the batch dimension instead (0 = keep)."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    for n in g.node:
        if n.op_type != "Reshape":
            continue
        t = inits.get(n.input[1])
        if t is None:
            continue
        shape = numpy_helper.to_array(t).copy()
        if shape.ndim == 1 and shape.size >= 2 and shape[0] == 1:
            shape[0] = 0
            name = t.name + "_dyn"
            if name not in inits:
                inits[name] = numpy_helper.from_array(shape.astype(np.int64), name)
                g.initializer.append(inits[name])
            n.input[1] = name


def set_outputs(model, outputs):
    g = model.graph
    del g.output[:]
    g.output.extend(outputs)


def raw_variant(src):
    m = load(src)
    g = m.graph
    replace_input(m, "N")
    (nms,) = [n for n in g.node if n.op_type == "NonMaxSuppression"]
    (sig,) = [n for n in g.node if n.op_type == "Sigmoid"]
    g.node.extend([
        helper.make_node("Identity", [nms.input[0]], ["boxes"], name="boxes_out"),
        helper.make_node("Identity", [sig.output[0]], ["scores"], name="scores_out"),
    ])
    set_outputs(m, [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 1917, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 1917, 91]),
    ])
    prune(m)
    dynamic_batch(m)
    del g.value_info[:]
    return m


def set_init(graph, name, value, was):
    """Sets a constant in place (every user sees the new value), checking its old value."""
    t = next(t for t in graph.initializer if t.name == name)
    arr = numpy_helper.to_array(t)
    assert np.allclose(arr, was), f"{name} is {arr}, expected {was}: tf2onnx's output changed"
    t.CopyFrom(numpy_helper.from_array(np.full(arr.shape, value, dtype=arr.dtype), name))


def detout_variant(src):
    m = load(src)
    g = m.graph
    replace_input(m, 1)
    # OpenCV's DetectionOutput keeps up to 100 boxes (TFLite's post-process: 20); low scores
    # are cut at 0.01 instead of 1e-8, as OpenCV's SSD does.
    (nms,) = [n for n in g.node if n.op_type == "NonMaxSuppression"]
    set_init(g, nms.input[2], 100, was=20)
    set_init(g, nms.input[3], 0.6, was=0.6)  # IoU threshold: unchanged
    set_init(g, nms.input[4], 0.01, was=1e-8)
    # The top-k count k = min(20, #candidates); the same constant also sizes the zero padding
    # (Sub 20 - k), so the output grows to 100 rows.
    (topk,) = [n for n in g.node if n.op_type == "TopK"]
    k_min = producer(g, topk.input[1])
    assert k_min.op_type == "Min", k_min.op_type
    set_init(g, next(i for i in k_min.input if any(t.name == i for t in g.initializer)), 100, was=20)
    outs = [o.name for o in g.output]
    boxes, classes, scores = outs[0], outs[1], outs[2]  # [1,K,4] yxyx, [1,K], [1,K]
    g.initializer.extend([
        numpy_helper.from_array(np.array([1, 0, 3, 2], dtype=np.int64), "xy_perm"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), "one_f"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "ax2"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1"),
    ])
    g.node.extend([
        helper.make_node("Gather", [boxes, "xy_perm"], ["boxes_xyxy"], axis=2, name="to_xyxy"),
        helper.make_node("Add", [classes, "one_f"], ["cls1"], name="cls_plus_one"),
        helper.make_node("Unsqueeze", ["cls1", "ax2"], ["cls_u"], name="cls_unsqueeze"),
        helper.make_node("Unsqueeze", [scores, "ax2"], ["score_u"], name="score_unsqueeze"),
        helper.make_node("Sub", ["cls_u", "cls_u"], ["img_id"], name="image_id"),
        helper.make_node("Concat", ["img_id", "cls_u", "score_u", "boxes_xyxy"], ["det7"], axis=2, name="det_concat"),
        helper.make_node("Unsqueeze", ["det7", "ax1"], ["detections"], name="det_unsqueeze"),
    ])
    set_outputs(m, [helper.make_tensor_value_info("detections", TensorProto.FLOAT, [1, 1, 100, 7])])
    prune(m)
    del g.value_info[:]
    return m


def init_value(graph, name):
    return numpy_helper.to_array(next(t for t in graph.initializer if t.name == name))


def replace_input_qdq(model, batch):
    """Swaps the QDQ graph's uint8 NHWC input + transpose for an f32 NCHW [0,1] input that is
    quantised back to the uint8 pixel (QuantizeLinear with scale 1/255, zero point 0)."""
    g = model.graph
    (old_in,) = [i for i in g.input if i.name not in {t.name for t in g.initializer}]
    assert old_in.type.tensor_type.elem_type == TensorProto.UINT8, old_in.type
    (tr,) = consumers(g, old_in.name)
    assert tr.op_type == "Transpose", tr.op_type
    assert list([a.ints for a in tr.attribute if a.name == "perm"][0]) == [0, 3, 1, 2]
    (dq,) = consumers(g, tr.output[0])
    assert dq.op_type == "DequantizeLinear", dq.op_type
    scale, zero = init_value(g, dq.input[1]), init_value(g, dq.input[2])
    assert zero.dtype == np.uint8 and int(zero) == 128 and float(scale) == 1 / 128, (scale, zero)
    g.node.remove(tr)
    g.input.remove(old_in)
    g.input.insert(0, helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 300, 300]))
    g.initializer.extend([
        numpy_helper.from_array(np.array(1 / 255, dtype=np.float32), "in_q_scale"),
        numpy_helper.from_array(np.array(0, dtype=np.uint8), "in_q_zero"),
    ])
    g.node.insert(0, helper.make_node("QuantizeLinear", ["images", "in_q_scale", "in_q_zero"], [tr.output[0]],
                                      name="in_quantize"))


def int8_variant(src):
    m = load(src)
    g = m.graph
    replace_input_qdq(m, "N")
    (nms,) = [n for n in g.node if n.op_type == "NonMaxSuppression"]
    (sig,) = [n for n in g.node if n.op_type == "Sigmoid"]
    (q,) = consumers(g, sig.output[0])
    assert q.op_type == "QuantizeLinear", q.op_type
    assert float(init_value(g, q.input[1])) == 1 / 256 and int(init_value(g, q.input[2])) == 0
    g.node.extend([
        helper.make_node("Identity", [nms.input[0]], ["boxes"], name="boxes_out"),
        helper.make_node("DequantizeLinear", [q.output[0], q.input[1], q.input[2]], ["scores"], name="scores_out"),
    ])
    set_outputs(m, [
        helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 1917, 4]),
        helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 1917, 91]),
    ])
    prune(m)
    dynamic_batch(m)
    prune(m)
    del g.value_info[:]
    n_conv = sum(n.op_type == "Conv" for n in g.node)
    assert n_conv == 72, f"{n_conv} Conv nodes, expected 72"
    # Every Conv must still read dequantised uint8 input and weights (or ORT cannot fuse it).
    for n in g.node:
        if n.op_type == "Conv":
            for i in n.input[:2]:
                p = producer(g, i)
                assert p is not None and p.op_type == "DequantizeLinear", f"{n.name}: {i} not from DequantizeLinear"
    signed_weights(g)
    return m


def signed_weights(g):
    """Stores every Conv weight as int8 instead of uint8: q - 128 with zero point z - 128 dequantises
    to exactly the same values. ONNX Runtime >= 1.25 (microsoft/onnxruntime#27671) runs uint8 x
    uint8 convolutions on a kernel without VNNI or AMX, but uint8 x int8 on VNNI/AMX, so this makes
    the quantised model faster than the f32 one again on such CPUs, with bit-identical results."""
    inits = {t.name: t for t in g.initializer}
    for n in g.node:
        if n.op_type != "Conv":
            continue
        dq = producer(g, n.input[1])
        w, zp = numpy_helper.to_array(inits[dq.input[0]]), numpy_helper.to_array(inits[dq.input[2]])
        assert w.dtype == np.uint8 and zp.dtype == np.uint8 and zp.size == 1, (dq.name, w.dtype, zp.dtype)
        # Zero points are shared between tensors, so each weight gets its own (as does each weight).
        w_name, zp_name = dq.input[0] + "_s8", dq.output[0] + "_zero_s8"
        g.initializer.extend([
            numpy_helper.from_array((w.astype(np.int16) - 128).astype(np.int8), w_name),
            numpy_helper.from_array((zp.astype(np.int16) - 128).astype(np.int8), zp_name),
        ])
        dq.input[0], dq.input[2] = w_name, zp_name
    prune_initializers(g)


def prune_initializers(g):
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


def tfod_variant(src):
    m = load(src)
    outs = [(o.name, o.type.tensor_type.elem_type) for o in m.graph.output]
    want = [("TFLite_Detection_PostProcess", TensorProto.FLOAT), ("TFLite_Detection_PostProcess:1", TensorProto.FLOAT),
            ("TFLite_Detection_PostProcess:2", TensorProto.FLOAT), ("TFLite_Detection_PostProcess:3", TensorProto.FLOAT)]
    assert outs == want, f"tf2onnx's outputs changed: {outs}"
    (inp,) = m.graph.input
    assert inp.type.tensor_type.elem_type == TensorProto.UINT8, inp.type
    signed_weights(m.graph)
    return m


def describe_preprocessing(model, scale, precision):
    """Metadata vidinfer reads: its preprocessing defaults (what blobFromImage does here) and the
    arithmetic the weights are for (--precision int8 checks it, so an f32 model never runs as
    if it were the int8 one)."""
    for k, v in {"preprocess.resize": "stretch", "preprocess.mean": "0,0,0",
                 "preprocess.scale": repr(scale), "preprocess.channel_order": "rgb",
                 "precision": precision}.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v


def save(model, path, scale=1 / 255, precision="fp32"):
    describe_preprocessing(model, scale, precision)
    onnx.checker.check_model(model)
    onnx.save(model, path)


if __name__ == "__main__":
    args = sys.argv[1:]
    opt = {"--tfod": 2, "--int8": 2}  # flag: number of values
    got = {}
    for flag, n in opt.items():
        if flag in args:
            i = args.index(flag)
            got[flag] = args[i + 1:i + 1 + n]
            del args[i:i + 1 + n]
            if len(got[flag]) != n or any(v.startswith("--") for v in got[flag]):
                sys.exit(__doc__)
    if len(args) != 3:
        sys.exit(__doc__)
    raw = raw_variant(args[0])
    prune(raw)  # drops the batch-1 shape constants the reshapes no longer use
    save(raw, args[1])
    save(detout_variant(args[0]), args[2])
    written = [args[1], args[2]]
    if "--tfod" in got:
        src, out = got["--tfod"]
        save(tfod_variant(src), out, scale=1.0, precision="int8")  # uint8 pixels as they are
        written.append(out)
    if "--int8" in got:
        src, out = got["--int8"]
        save(int8_variant(src), out, precision="int8")
        written.append(out)
    print("wrote " + ", ".join(written))
