//! tools/quantize on footage the test makes (vtest's second half, mirrored and cropped: not
//! vtest as the pipeline sees it): a model and a report are written; a clip too short to
//! calibrate and an already quantised model are clear errors with nothing written.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

fn quantize(args: &[&str]) -> std::process::Output {
    Command::new(root().join("tools/quantize"))
        .args(args)
        .env("VIDINFER", bin())
        .output()
        .unwrap()
}

#[test]
#[ignore = "needs tools/setup"]
fn quantize_writes_a_model_and_report_and_refuses_what_it_cannot_do() {
    let venv = root().join(".cache/venv-nncf/.pins");
    let int8 = root().join("models/ssd_mobilenet_v2_coco_int8.onnx");
    require_model(&[&vtest(), &venv, &int8]);
    let dir = scratch("int8-quantize");
    let clip = street_clip(&dir);
    let out = dir.join("q/street_int8.onnx");
    let o = quantize(&[
        "--model",
        model().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--per-input",
        "20",
        "--eval-frames",
        "200",
        "--min-agreement",
        "0.9",
        clip.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = out.with_extension("report.json");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let g = &r["agreement"];
    println!("quantize on a made clip: {g}");
    assert_eq!(r["passed"], true);
    assert_eq!(g["held_out_frames"], 180);
    assert!(g["fp32_boxes"].as_u64().unwrap() > 100, "{g}");
    assert!(out.metadata().unwrap().len() > 1_000_000);
    assert!(out.with_extension("report.md").exists());
    // `info` finds the fp32 original through the model's metadata and measures both.
    let o = Command::new(bin())
        .args(["info", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{text}{}", stderr(&o));
    assert!(text.contains("int8 speed against"), "{text}");
    assert!(text.contains("  cpu: int8 "), "{text}");

    refuses_a_short_clip_and_a_quantised_model(&dir, &clip, &int8);
}

/// 200 frames of vtest from 40 s on, mirrored and cropped to 640x480, as H.264: footage the
/// shipped model was not calibrated on.
fn street_clip(dir: &Path) -> PathBuf {
    let clip = dir.join("street.mp4");
    let vf = "hflip,crop=640:480:64:48";
    ffmpeg([
        "-ss",
        "40",
        "-i",
        vtest().to_str().unwrap(),
        "-vf",
        vf,
        "-frames:v",
        "200",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        clip.to_str().unwrap(),
    ]);
    clip
}

/// Too few frames to calibrate, and a model that is already int8: each a clear error, exit 1,
/// nothing written.
fn refuses_a_short_clip_and_a_quantised_model(dir: &Path, clip: &Path, int8: &Path) {
    let short = lavfi_clip(dir, "short.mp4", "testsrc=size=320x240:rate=10", 5, &[]);
    let o = quantize(&[
        "--model",
        model().to_str().unwrap(),
        "--out",
        dir.join("s.onnx").to_str().unwrap(),
        short.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("at least 16 needed"), "{}", stderr(&o));
    assert!(!dir.join("s.onnx").exists());

    let o = quantize(&[
        "--model",
        int8.to_str().unwrap(),
        "--out",
        dir.join("i.onnx").to_str().unwrap(),
        "--per-input",
        "20",
        clip.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already quantised"), "{}", stderr(&o));
    assert!(!dir.join("i.onnx").exists());
}
