//! The model tools/setup builds must compute what the reference conversion computes. The
//! reference's outputs live in the repository (`tests/fixtures/model_reference/`, made once by
//! its `make_fixture.py` from `ssd_mobilenet_v2_coco_raw.onnx.xz`, whose sha256 the fixture
//! records), so a clone anywhere runs this check without the reference beside it.
//!
//! How strong: the same check as against the reference model itself. A batch of 3
//! deterministic pseudo-random images goes through the built model, and every value of both
//! outputs (3 × 1917 × 4 boxes, 3 × 1917 × 91 scores: all of them, no sample) must be within
//! 1e-4 of the reference's. Boxes are stored as exact f32. Scores (sigmoids in [0, 1]) are
//! stored as u16 steps of 1/65535, each within half a step (7.6e-6) of the reference's, so
//! they are held to 1e-4 less half a step: passing still means within 1e-4 of the reference.
//! The built model's interface (input name and shape, output names and shapes, dynamic batch,
//! the preprocessing the reference's missing metadata means) must be the reference's as well.

mod common;
use common::*;
use sha2::{Digest, Sha256};
use std::{path::PathBuf, process::Command};

use vidinfer::{
    infer::{
        resolve_ort_lib, BatchOutput, Detector, EpChoice, EpKind, Outputs, Runtime, SessionConfig,
    },
    preprocess::{PreprocessSpec, Tensor},
};

/// The largest difference from the reference any output value may have.
const TOLERANCE: f32 = 1e-4;

fn fixture_dir() -> PathBuf {
    root().join("tests/fixtures/model_reference")
}

/// The fixture's `expected.json` and its decompressed outputs blob (sha256-checked).
fn load_fixture() -> (serde_json::Value, Vec<u8>) {
    let dir = fixture_dir();
    let (json, blob) = (dir.join("expected.json"), dir.join("outputs.bin.xz"));
    for p in [&json, &blob] {
        assert!(
            p.exists(),
            "missing {}: the model-reference fixture is committed with the tests \
             (regenerate it with {}/make_fixture.py from the reference conversion)",
            p.display(),
            dir.display()
        );
    }
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("expected.json parses");
    let out = Command::new("xz")
        .arg("-dc")
        .arg(&blob)
        .output()
        .expect("xz is installed (tools/setup installs xz-utils)");
    assert!(
        out.status.success(),
        "xz -dc {}: {}",
        blob.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let digest: String = Sha256::digest(&out.stdout)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        digest,
        expected["blob"]["sha256"].as_str().unwrap(),
        "{} is not the blob expected.json describes",
        blob.display()
    );
    (expected, out.stdout)
}

fn dims(v: &serde_json::Value) -> Vec<i64> {
    v.as_array()
        .expect("a shape")
        .iter()
        .map(|d| d.as_i64().unwrap())
        .collect()
}

/// The same images the fixture's outputs were computed on (make_fixture.py's generator):
/// xorshift64, each value in [0, 1).
fn images(n: usize) -> Vec<f32> {
    let mut state = 0x9e3779b97f4a7c15u64;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// The largest |a - b| and where (flat index), NaN counting as infinitely far.
fn max_diff(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len(), "output sizes");
    a.iter()
        .zip(b)
        .map(|(p, q)| {
            let d = (p - q).abs();
            if d.is_nan() {
                f32::INFINITY
            } else {
                d
            }
        })
        .enumerate()
        .fold((0f32, 0), |m, (i, d)| if d > m.0 { (d, i) } else { m })
}

#[test]
#[ignore = "needs tools/setup"]
fn built_model_matches_the_reference_conversion() {
    let (expected, blob) = load_fixture();
    require_model(&[]);
    let rt = Runtime::load(&resolve_ort_lib(None, &EpChoice::Listed(vec![EpKind::Cpu])))
        .expect("ONNX Runtime loads");
    let mut ours = Detector::load(&rt, &model(), &SessionConfig::default()).expect("model loads");

    // The interface: what loading the reference conversion gave.
    let sig = ours.signature();
    let input = &expected["input"];
    assert_eq!(sig.input_name, input["name"].as_str().unwrap());
    assert_eq!(sig.input_shape, dims(&input["shape"]));
    assert_eq!(ours.fixed_batch(), None, "dynamic batch");
    let outs = expected["outputs"].as_array().unwrap();
    let (bshape, sshape) = (dims(&outs[0]["shape"]), dims(&outs[1]["shape"]));
    let want = Outputs::Raw {
        boxes: outs[0]["name"].as_str().unwrap().into(),
        scores: outs[1]["name"].as_str().unwrap().into(),
        anchors: bshape[1] as usize,
        classes: sshape[2] as usize,
    };
    assert_eq!(sig.outputs, want);
    // The reference carries no preprocess metadata, so it loads with the defaults (1/255,
    // RGB, stretch to 300x300, NCHW f32); ours states them in its metadata.
    let meta = expected["reference"]["metadata"].as_object().unwrap();
    assert!(
        !meta.keys().any(|k| k.starts_with("preprocess.")),
        "{meta:?}"
    );
    assert_eq!(ours.spec(), &PreprocessSpec::default());

    // The expected outputs: boxes f32, then scores as u16 steps of 1/scale.
    let batch = input["batch"].as_u64().unwrap() as usize;
    let (nb, ns) = (
        batch * bshape[1] as usize * 4,
        batch * sshape[1] as usize * sshape[2] as usize,
    );
    assert_eq!(blob.len(), nb * 4 + ns * 2, "blob size");
    let scale = expected["blob"]["scores"]["scale"].as_f64().unwrap();
    let ref_boxes: Vec<f32> = blob[..nb * 4]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let ref_scores: Vec<f32> = blob[nb * 4..]
        .chunks_exact(2)
        .map(|c| (u16::from_le_bytes(c.try_into().unwrap()) as f64 / scale) as f32)
        .collect();

    let input = Tensor::F32(images(batch * ours.spec().slot_len()));
    let (boxes, scores) = match ours.run(&input, batch).unwrap() {
        BatchOutput::Raw { boxes, scores, .. } => (boxes, scores),
        BatchOutput::Selected(_) | BatchOutput::Yolo { .. } => panic!("the raw layout"),
    };
    let (db, ib) = max_diff(&boxes, &ref_boxes);
    let (ds, is) = max_diff(&scores, &ref_scores);
    println!(
        "built model vs the reference conversion's outputs (fixture): max abs diff boxes {db:e} \
         (at {ib}), scores {ds:e} (at {is}; stored to {:e})",
        0.5 / scale
    );
    assert!(db <= TOLERANCE, "boxes differ by {db} at index {ib}");
    let score_tol = TOLERANCE - (0.5 / scale) as f32;
    assert!(ds <= score_tol, "scores differ by {ds} at index {is}");
}
