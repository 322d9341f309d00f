//! Shared helpers for the integration tests: paths to the built binary, the model built by
//! tools/setup, the sample video, and small media made on the fly with the ffmpeg CLI.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vidinfer"))
}

pub fn model() -> PathBuf {
    root().join("models/ssd_mobilenet_v2_coco.onnx")
}

pub fn vtest() -> PathBuf {
    root().join("samples/vtest.avi")
}

/// A fresh scratch directory under target/, unique per test.
pub fn scratch(name: &str) -> PathBuf {
    let d = root().join("target/test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create scratch dir");
    d
}

/// True when the assets from tools/setup exist. Under tools/test (VIDINFER_REQUIRE_ASSETS=1)
/// a missing asset fails the test; a bare `cargo test` skips it with a message.
pub fn assets_ready(what: &[&Path]) -> bool {
    let missing: Vec<_> = what.iter().filter(|p| !p.exists()).collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!("missing {:?}: run tools/setup first", missing);
    if std::env::var_os("VIDINFER_REQUIRE_ASSETS").is_some() {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run vidinfer")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Makes a synthetic clip with ffmpeg's lavfi source, e.g. `testsrc2=size=320x240:rate=25`.
pub fn lavfi_clip(dir: &Path, name: &str, source: &str, frames: u32, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut args: Vec<String> = [
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        source,
        "-frames:v",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.push(frames.to_string());
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(out.to_string_lossy().into_owned());
    let st = Command::new("ffmpeg")
        .args(&args)
        .status()
        .expect("ffmpeg is installed (tools/setup)");
    assert!(st.success(), "ffmpeg failed to make {name}");
    out
}

/// Frame count of the first video stream, decoded by ffprobe.
pub fn ffprobe_frames(path: &Path) -> u64 {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    assert!(
        o.status.success(),
        "ffprobe failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .trim_end_matches(',')
        .parse()
        .expect("frame count")
}

pub fn ffprobe_field(path: &Path, field: &str) -> String {
    let o = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            &format!("stream={field}"),
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .trim_end_matches(',')
        .to_string()
}

#[derive(Debug, Clone, Copy)]
pub struct Det {
    pub class_id: u64,
    pub score: f64,
    pub b: [f64; 4],
}

/// Reads a vidinfer-schema JSONL file into (frame index, detections) rows.
pub fn read_jsonl(path: &Path) -> Vec<(u64, Vec<Det>)> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("valid JSON line");
            let frame = v["frame"].as_u64().expect("frame index");
            let dets = v["detections"]
                .as_array()
                .expect("detections array")
                .iter()
                .map(|d| Det {
                    class_id: d["class_id"].as_u64().expect("class_id"),
                    score: d["score"].as_f64().expect("score"),
                    b: ["x1", "y1", "x2", "y2"].map(|k| d[k].as_f64().expect("coordinate")),
                })
                .collect();
            (frame, dets)
        })
        .collect()
}

pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let iw = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let ih = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = iw * ih;
    let area = |r: &[f64; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union <= 0.0 {
        0.0
    } else {
        inter / union
    }
}

/// Greedy one-to-one matching of same-class boxes at IoU >= `min_iou`, best pairs first.
/// Returns (matched, reference boxes, our boxes).
pub fn match_frame(reference: &[Det], ours: &[Det], min_iou: f64) -> (usize, usize, usize) {
    let mut pairs = Vec::new();
    for (i, r) in reference.iter().enumerate() {
        for (j, o) in ours.iter().enumerate() {
            if r.class_id == o.class_id {
                let v = iou(&r.b, &o.b);
                if v >= min_iou {
                    pairs.push((v, i, j));
                }
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut ru, mut ou) = (vec![false; reference.len()], vec![false; ours.len()]);
    let mut matched = 0;
    for (_, i, j) in pairs {
        if !ru[i] && !ou[j] {
            ru[i] = true;
            ou[j] = true;
            matched += 1;
        }
    }
    (matched, reference.len(), ours.len())
}
