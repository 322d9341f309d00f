//! Unusable models are refused clearly; a model with a fixed batch of 1 runs at batch 1.

mod common;
use common::*;

/// Makes small models that no layout fits: an output signature vidinfer does not know, an
/// input of the wrong rank, a five-channel input, a string input.
const BAD_MODELS: &str = r#"
import sys, onnx
from onnx import TensorProto as T, helper as h
raw, out = sys.argv[1], sys.argv[2]
m = onnx.load(raw)
keep = [o for o in m.graph.output if o.name == "scores"]
del m.graph.output[:]
m.graph.output.extend(keep)
onnx.save(m, out + "/one_output.onnx")
def single(name, elem, shape):
    x = h.make_tensor_value_info("x", elem, shape)
    y = h.make_tensor_value_info("y", elem, shape)
    g = h.make_graph([h.make_node("Identity", ["x"], ["y"])], name, [x], [y])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]), out + "/" + name + ".onnx")
single("rank3", T.FLOAT, [1, 300, 300])
single("five_channels", T.FLOAT, [1, 5, 300, 300])
single("strings", T.STRING, [1, 3, 300, 300])
"#;

#[test]
#[ignore = "needs tools/setup"]
fn bad_models_are_refused_clearly() {
    require_model(&[&model_python()]);
    let dir = scratch("models");
    let clip = lavfi_clip(
        &dir,
        "c.mp4",
        "testsrc2=size=160x120:rate=10",
        4,
        &["-pix_fmt", "yuv420p"],
    );
    let not_onnx = dir.join("model.onnx");
    std::fs::write(&not_onnx, "definitely not a protobuf").unwrap();
    let o = detect_in(&dir, &[&clip], &["--model", not_onnx.to_str().unwrap()]);
    expect_failure(&o, 1, "cannot load model");
    model_script(BAD_MODELS, &[&model(), &dir]);
    for (name, needle) in [
        (
            "one_output",
            "outputs are 'scores' [-1, 1917, 91] Float32; supported layouts: raw",
        ),
        (
            "rank3",
            "has shape [1, 300, 300] (rank 3); expected an image batch",
        ),
        (
            "five_channels",
            "has shape [1, 5, 300, 300] (rank 4); expected an image batch",
        ),
        (
            "strings",
            "holds String values; vidinfer feeds images as float32 or uint8",
        ),
    ] {
        let m = dir.join(format!("{name}.onnx"));
        let o = detect_in(&dir, &[&clip], &["--model", m.to_str().unwrap()]);
        let err = expect_failure(&o, 1, needle);
        assert!(err.contains("is not a supported detector"), "{err}");
        let o = run(&["info", m.to_str().unwrap()]);
        expect_failure(&o, 1, needle);
    }
    // Forcing a layout the outputs do not have says so.
    let o = detect_in(&dir, &[&clip], &["--model-format", "tf-od"]);
    expect_failure(&o, 1, "which is not the tf-od layout");
    assert!(finished_outputs(&dir.join("out")).is_empty());
}

#[test]
#[ignore = "needs tools/setup"]
fn a_batch_one_model_with_batch_eight_says_it_uses_batch_one() {
    require_model(&[&model_python()]);
    let dir = scratch("batch1");
    let fixed = dir.join("batch1.onnx");
    let script = "import onnx,sys\nm=onnx.load(sys.argv[1])\nfor v in list(m.graph.input)+list(m.graph.output):\n    v.type.tensor_type.shape.dim[0].dim_value=1\nonnx.save(m,sys.argv[2])\n";
    model_script(script, &[&model(), &fixed]);
    let clip = lavfi_clip(
        &dir,
        "c.mp4",
        "testsrc2=size=160x120:rate=10",
        5,
        &["-pix_fmt", "yuv420p"],
    );
    let o = detect_in(
        &dir,
        &[&clip],
        &[
            "--model",
            fixed.to_str().unwrap(),
            "--batch",
            "8",
            "--outputs",
            "jsonl",
        ],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("fixed batch size of 1; using batch 1 instead of 8"),
        "{err}"
    );
    assert!(err.contains("batch 1"), "summary: {err}");
    assert_eq!(read_jsonl(&dir.join("out/c.jsonl")).len(), 5);
}
