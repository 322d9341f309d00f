//! Parity with the classic OpenCV loop (`cv2.dnn.blobFromImage` + `net.forward()` on the
//! detection-output variant of the same model), over the first 100 frames of vtest.avi.
//! The reference comes from tools/make_reference.py (run by tools/test).

mod common;
use common::*;
use std::path::PathBuf;

use vidinfer::preprocess::{PreprocessSpec, Resizer, RgbImage};

fn reference_dir() -> PathBuf {
    root().join(".cache/reference")
}

#[test]
fn detections_match_opencv_dnn_on_vtest() {
    let reference = reference_dir().join("vtest_ref.jsonl");
    if !assets_ready(&[&model(), &vtest(), &reference]) {
        return;
    }
    let dir = scratch("accuracy");
    let out = dir.join("out");
    let o = run(&[
        "detect", vtest().to_str().unwrap(), "--model", model().to_str().unwrap(), "--max-frames", "100", "--batch", "4", "--outputs", "jsonl", "--out", out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "detect failed: {}", stderr(&o));
    let ours = read_jsonl(&out.join("vtest.jsonl"));
    let theirs = read_jsonl(&reference);
    assert_eq!(theirs.len(), 100, "reference covers 100 frames");
    assert_eq!(ours.iter().map(|r| r.0).collect::<Vec<_>>(), theirs.iter().map(|r| r.0).collect::<Vec<_>>(), "same frames");
    let (mut matched, mut total_ref, mut total_ours) = (0, 0, 0);
    for ((_, r), (_, us)) in theirs.iter().zip(&ours) {
        let r: Vec<_> = r.iter().filter(|d| d.score >= 0.5).copied().collect();
        let (m, nr, no) = match_frame(&r, us, 0.9);
        matched += m;
        total_ref += nr;
        total_ours += no;
    }
    let recall = matched as f64 / total_ref as f64;
    let extra = (total_ours - matched) as f64 / total_ref as f64;
    println!(
        "accuracy vs cv2.dnn over 100 vtest frames: {matched}/{total_ref} reference boxes matched (same class, IoU >= 0.9) = {:.2}%, {} extra boxes = {:.2}%",
        recall * 100.0,
        total_ours - matched,
        extra * 100.0
    );
    assert!(total_ref > 100, "the reference should hold hundreds of boxes, has {total_ref}");
    assert!(recall >= 0.98, "recall {:.2}% < 98%", recall * 100.0);
    assert!(extra <= 0.02, "extra {:.2}% > 2%", extra * 100.0);
}

#[test]
fn resize_matches_blob_from_image_on_the_same_pixels() {
    let blobs = reference_dir().join("blobs");
    let index = blobs.join("index.json");
    if !assets_ready(&[&index]) {
        return;
    }
    let idx: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&index).unwrap()).unwrap();
    let frames = idx["frames"].as_object().expect("index.json: {\"frames\": {\"<i>\": {\"width\", \"height\"}}}");
    assert!(!frames.is_empty());
    let spec = PreprocessSpec::default();
    for (i, meta) in frames {
        let (w, h) = (meta["width"].as_u64().unwrap() as u32, meta["height"].as_u64().unwrap() as u32);
        let bgr = std::fs::read(blobs.join(format!("frame_{i}.bgr"))).unwrap();
        assert_eq!(bgr.len(), (w * h * 3) as usize);
        let rgb: Vec<u8> = bgr.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
        let blob: Vec<f32> = std::fs::read(blobs.join(format!("frame_{i}.blob"))).unwrap().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        assert_eq!(blob.len(), spec.slot_len());
        let mut ours = vec![0f32; spec.slot_len()];
        Resizer::new(spec, w, h).run(&RgbImage { data: &rgb, width: w, height: h, stride: 3 * w as usize }, &mut ours);
        let max = ours.iter().zip(&blob).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let exact = ours.iter().zip(&blob).filter(|(a, b)| (*a - *b).abs() < 1e-6).count();
        println!("frame {i}: max abs diff {max:.6} ({:.3}/255), {:.3}% values identical", max * 255.0, exact as f64 * 100.0 / blob.len() as f64);
        assert!(max <= 1.0 / 255.0 + 1e-6, "frame {i}: max abs diff {max} > 1/255");
    }
}
