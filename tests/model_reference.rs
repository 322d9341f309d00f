//! The model built by tools/ must compute what the reference conversion in ../shared computes.

mod common;
use common::*;
use std::process::Command;

use vidinfer::{
    infer::{resolve_ort_lib, BatchOutput, Detector, EpChoice, EpKind, Runtime, SessionConfig},
    preprocess::Tensor,
};

#[test]
#[ignore = "needs tools/setup"]
fn built_model_matches_shared_reference() {
    let xz = root().join("../shared/reference/ssd_mobilenet_v2_coco_raw.onnx.xz");
    assert!(
        xz.exists(),
        "missing {}: the reference conversion lives in ../shared beside the checkout (CI clones it there)",
        xz.display()
    );
    require_model(&[]);
    let dir = scratch("model-reference");
    let reference = dir.join("reference_raw.onnx");
    let out = Command::new("xz")
        .arg("-dc")
        .arg(&xz)
        .output()
        .expect("xz is installed");
    assert!(out.status.success());
    std::fs::write(&reference, out.stdout).unwrap();

    let rt = Runtime::load(&resolve_ort_lib(None, &EpChoice::Listed(vec![EpKind::Cpu])))
        .expect("ONNX Runtime loads");
    let cfg = SessionConfig::default();
    let mut ours = Detector::load(&rt, &model(), &cfg).expect("our model loads");
    let mut theirs = Detector::load(&rt, &reference, &cfg).expect("reference loads");
    assert_eq!(ours.spec(), theirs.spec());
    assert_eq!(ours.signature().outputs, theirs.signature().outputs);
    assert_eq!(ours.fixed_batch(), None, "dynamic batch");

    // Deterministic pseudo-random images in [0, 1], batch of 3.
    let n = 3 * ours.spec().slot_len();
    let mut state = 0x9e3779b97f4a7c15u64;
    let input: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect();
    let input = Tensor::F32(input);
    let raw = |d: &mut Detector| match d.run(&input, 3).unwrap() {
        BatchOutput::Raw { boxes, scores, .. } => (boxes, scores),
        BatchOutput::Selected(_) => panic!("the raw layout"),
    };
    let (a, b) = (raw(&mut ours), raw(&mut theirs));
    let max = |x: &[f32], y: &[f32]| {
        x.iter()
            .zip(y)
            .map(|(p, q)| (p - q).abs())
            .fold(0f32, f32::max)
    };
    let (db, ds) = (max(&a.0, &b.0), max(&a.1, &b.1));
    println!("built vs reference model: max abs diff boxes {db:e}, scores {ds:e}");
    assert!(db <= 1e-4 && ds <= 1e-4, "boxes {db}, scores {ds}");
}
