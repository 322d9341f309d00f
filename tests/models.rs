//! Unusable models are refused clearly; a model with a fixed batch of 1 runs at batch 1.

mod common;
use common::*;

#[test]
#[ignore = "needs tools/setup"]
fn bad_models_are_refused_clearly() {
    let detout = root().join("models/ssd_mobilenet_v2_coco_detout.onnx");
    let tflite = root().join(".cache/model/ssd_tflite.onnx");
    require_model(&[&detout, &tflite]);
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
    let o = detect_in(&dir, &[&clip], &["--model", detout.to_str().unwrap()]);
    expect_failure(&o, 1, "expected 'boxes' [N, anchors, 4] and 'scores'");
    // tf2onnx's conversion of the quantised TFLite model, before tools/edit_graph.py.
    let o = detect_in(&dir, &[&clip], &["--model", tflite.to_str().unwrap()]);
    expect_failure(&o, 1, "must be float32");
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
