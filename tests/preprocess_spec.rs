//! The preprocessing spec end to end: NHWC models, metadata defaults, CLI overrides, letterbox.

mod common;
use common::*;

/// Detections on the first 20 vtest frames (the default model unless `extra` names one).
fn detect_rows(out: &std::path::Path, extra: &[&str]) -> Vec<(u64, Vec<Det>)> {
    let mut c = vidinfer();
    c.arg("detect").arg(vtest());
    c.args(["--max-frames", "20", "--outputs", "jsonl", "--out"]);
    c.arg(out).args(extra).assert().success();
    read_jsonl(&out.join("vtest.jsonl"))
}

fn assert_same(a: &[(u64, Vec<Det>)], b: &[(u64, Vec<Det>)]) {
    assert_eq!(a.len(), b.len());
    for ((fa, x), (_, y)) in a.iter().zip(b) {
        assert_eq!(x.len(), y.len(), "frame {fa}");
        for (p, q) in x.iter().zip(y) {
            assert_eq!(p.class_id, q.class_id);
            assert!(
                (p.score - q.score).abs() < 1e-4
                    && p.b.iter().zip(&q.b).all(|(s, t)| (s - t).abs() < 0.05),
                "frame {fa}: {p:?} vs {q:?}"
            );
        }
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn an_nhwc_model_gives_the_same_detections_as_nchw() {
    require_model(&[&vtest(), &model_python()]);
    let dir = scratch("spec-nhwc");
    let nhwc = dir.join("nhwc.onnx");
    let script = "import onnx,sys\nfrom onnx import helper, TensorProto\nm=onnx.load(sys.argv[1]); g=m.graph\nold=g.input[0]\nfor n in g.node:\n    n.input[:]=[('images_nchw' if i==old.name else i) for i in n.input]\ng.node.insert(0, helper.make_node('Transpose',['images'],['images_nchw'],perm=[0,3,1,2]))\ng.input.remove(old)\ng.input.insert(0, helper.make_tensor_value_info('images', TensorProto.FLOAT, ['N',300,300,3]))\nonnx.save(m, sys.argv[2])\n";
    model_script(script, &[&model(), &nhwc]);
    // Both kernels write NHWC: the exact one per pixel, the fused one through a packed row.
    for kernel in ["exact", "fused"] {
        let a = detect_rows(
            &dir.join(format!("nchw-{kernel}")),
            &["--preprocess", kernel],
        );
        let b = detect_rows(
            &dir.join(format!("nhwc-{kernel}")),
            &[
                "--model",
                nhwc.to_str().unwrap(),
                "--labels",
                root().join("models/coco_labels.txt").to_str().unwrap(),
                "--preprocess",
                kernel,
            ],
        );
        assert!(a.iter().map(|r| r.1.len()).sum::<usize>() > 20);
        assert_same(&a, &b);
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn model_metadata_sets_the_defaults_and_flags_override_them() {
    require_model(&[&vtest(), &model_python()]);
    let dir = scratch("spec-metadata");
    let boxed = dir.join("letterbox.onnx");
    let script = "import onnx,sys\nm=onnx.load(sys.argv[1])\nfor p in m.metadata_props:\n    if p.key=='preprocess.resize': p.value='letterbox'\nonnx.save(m, sys.argv[2])\n";
    model_script(script, &[&model(), &boxed]);
    let labels = root().join("models/coco_labels.txt");
    let by_flag = detect_rows(&dir.join("flag"), &["--resize", "letterbox"]);
    let by_meta = detect_rows(
        &dir.join("meta"),
        &[
            "--model",
            boxed.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
        ],
    );
    assert_same(&by_flag, &by_meta);
    let overridden = detect_rows(
        &dir.join("override"),
        &[
            "--model",
            boxed.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
            "--resize",
            "stretch",
            "--preprocess",
            "exact",
        ],
    );
    let stretch = detect_rows(&dir.join("stretch"), &["--preprocess", "exact"]);
    assert_same(&overridden, &stretch);
}

#[test]
#[ignore = "needs tools/setup"]
fn letterboxed_detections_land_on_the_frame() {
    require_model(&[&vtest()]);
    let dir = scratch("spec-letterbox");
    let boxed = detect_rows(&dir.join("lb"), &["--resize", "letterbox"]);
    let stretched = detect_rows(&dir.join("st"), &["--preprocess", "exact"]);
    let (mut m, mut r) = (0, 0);
    for ((_, a), (_, b)) in stretched.iter().zip(&boxed) {
        let (mm, rr, _) = match_frame(a, b, 0.5);
        (m, r) = (m + mm, r + rr);
        assert!(b
            .iter()
            .all(|d| d.b[0] >= 0.0 && d.b[2] <= 768.0 && d.b[1] >= 0.0 && d.b[3] <= 576.0));
    }
    // Different input pixels, same people: most boxes agree loosely once mapped back.
    assert!(r > 20 && m as f64 >= 0.6 * r as f64, "{m}/{r}");
}

#[test]
fn odd_preprocessing_flags_are_usage_errors() {
    let o = run(&["detect", "x.mp4", "--mean", "1,2"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("is not a mean"));
    let o = run(&["detect", "x.mp4", "--resize", "crop"]);
    assert_eq!(o.status.code(), Some(2));
}
