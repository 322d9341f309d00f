//! Ultralytics exports held to Ultralytics' own results: for each test model (made by
//! Ultralytics' trainer and exporter, tools/yolo_models.sh), vidinfer's detections against
//! Ultralytics' `predict` on the same ONNX file and the same pixels (tools/yolo_reference.py,
//! both run by tools/test): the first 100 frames of vtest.avi and 30 frames of a portrait crop
//! (padded at the sides, unevenly). Same number of detections on every frame, same classes,
//! IoU >= 0.99, scores within 1e-3. Then what `info` says of them, and the models it refuses.

mod common;
use common::*;
use std::path::{Path, PathBuf};

/// The thresholds tools/test gives tools/yolo_reference.py.
const CONF: &str = "0.1";
const IOU: &str = "0.7";
const MAX_DET: &str = "300";

/// Each model with the layout `info` must recognise. `_dyn`: exported with a dynamic batch,
/// run with batches of 4.
const MODELS: [(&str, &str); 11] = [
    ("yolov8n", "yolo"),
    ("yolov8n_dyn", "yolo"),
    ("yolov8n_nms", "yolo-end2end"),
    ("yolo11n", "yolo"),
    ("yolo11n_dyn", "yolo"),
    ("yolov10n", "yolo-end2end"),
    ("yolov10n_dyn", "yolo-end2end"),
    ("yolov5nu", "yolo"),
    ("yolov5nu_dyn", "yolo"),
    ("rtdetr", "rtdetr"),
    ("rtdetr_dyn", "rtdetr"),
];

const CLIPS: [(&str, usize); 2] = [("vtest100", 100), ("portrait30", 30)];

fn models_dir() -> PathBuf {
    root().join(".cache/yolo/models")
}

fn reference_dir() -> PathBuf {
    root().join(".cache/yolo/reference")
}

fn yolo_model(name: &str) -> PathBuf {
    models_dir().join(format!("{name}.onnx"))
}

/// Pairs each reference detection with one of ours (same class, best IoU first) and checks the
/// pair; returns the frame's detection count.
fn check_frame(what: &str, theirs: &[Det], ours: &[Det]) -> usize {
    assert_eq!(
        ours.len(),
        theirs.len(),
        "{what}: {} detections, Ultralytics {}\nours: {ours:?}\ntheirs: {theirs:?}",
        ours.len(),
        theirs.len()
    );
    let (matched, _, _) = match_frame(theirs, ours, 0.99);
    assert_eq!(
        matched,
        theirs.len(),
        "{what}: only {matched} of {} boxes match (same class, IoU >= 0.99)\nours: {ours:?}\ntheirs: {theirs:?}",
        theirs.len()
    );
    for t in theirs {
        let best = ours
            .iter()
            .filter(|o| o.class_id == t.class_id)
            .max_by(|a, b| iou(&a.b, &t.b).total_cmp(&iou(&b.b, &t.b)))
            .expect("a match");
        assert!(
            (best.score - t.score).abs() <= 1e-3,
            "{what}: score {} against Ultralytics' {} for {t:?}",
            best.score,
            t.score
        );
    }
    theirs.len()
}

fn conformance(name: &str) {
    let model = yolo_model(name);
    let clips: Vec<PathBuf> = CLIPS
        .iter()
        .map(|(c, _)| reference_dir().join(format!("{c}.mkv")))
        .collect();
    let refs: Vec<PathBuf> = CLIPS
        .iter()
        .map(|(c, _)| reference_dir().join(format!("{c}.{name}.jsonl")))
        .collect();
    let needed: Vec<&Path> = [&model]
        .into_iter()
        .chain(&clips)
        .chain(&refs)
        .map(|p| p.as_path())
        .collect();
    require_model(&needed);
    let dir = scratch(&format!("yolo-{name}"));
    let batch = if name.ends_with("_dyn") { "4" } else { "1" };
    let mut total = 0;
    for (((clip, frames), path), reference) in CLIPS.iter().zip(&clips).zip(&refs) {
        let out = dir.join(clip);
        run_ok(&[
            "detect",
            path.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--conf",
            CONF,
            "--iou",
            IOU,
            "--max-detections",
            MAX_DET,
            "--batch",
            batch,
            // Bit for bit (the clips are RGB, so the fused kernel could not run on them anyway).
            "--preprocess",
            "exact",
            "--outputs",
            "jsonl",
            "--out",
            out.to_str().unwrap(),
        ]);
        let ours = read_jsonl(&out.join(format!("{clip}.jsonl")));
        let theirs = read_jsonl(reference);
        assert_eq!(theirs.len(), *frames, "{name} {clip}: reference frames");
        assert_eq!(ours.len(), *frames, "{name} {clip}: our frames");
        for ((f, t), (_, o)) in theirs.iter().zip(&ours) {
            total += check_frame(&format!("{name} {clip} frame {f}"), t, o);
        }
    }
    println!("{name}: {total} detections, all matching Ultralytics' predict");
    assert!(total > 0, "{name}: no detections at all: a test of nothing");
}

#[test]
#[ignore = "needs tools/setup"]
fn yolov8n_matches_ultralytics() {
    conformance("yolov8n");
    conformance("yolov8n_dyn");
}

#[test]
#[ignore = "needs tools/setup"]
fn yolov8n_nms_export_matches_ultralytics() {
    conformance("yolov8n_nms");
}

/// The default kernel, fused (straight from the decoder's YUV 4:2:0), against Ultralytics on the
/// same 100 frames: not bit for bit (the exact kernel is, above: the reference clips are RGB, so
/// they take it), but close: boxes of the same class at IoU >= 0.9 both ways, for 97% or more.
#[test]
#[ignore = "needs tools/setup"]
fn the_fused_default_letterbox_stays_close_to_ultralytics() {
    let model = yolo_model("yolov8n");
    let reference = reference_dir().join("vtest100.yolov8n.jsonl");
    require_model(&[&model, &reference]);
    let dir = scratch("yolo-fused");
    let (m, d) = (model.to_str().unwrap(), dir.to_str().unwrap());
    run_ok(&[
        "detect",
        vtest().to_str().unwrap(),
        "--model",
        m,
        "--max-frames",
        "100",
        "--conf",
        CONF,
        "--iou",
        IOU,
        "--max-detections",
        MAX_DET,
        "--outputs",
        "jsonl",
        "--out",
        d,
    ]);
    let ours = read_jsonl(&dir.join("vtest.jsonl"));
    let theirs = read_jsonl(&reference);
    assert_eq!(ours.len(), theirs.len());
    let (mut matched, mut n_ours, mut n_theirs) = (0, 0, 0);
    for ((_, t), (_, o)) in theirs.iter().zip(&ours) {
        matched += match_frame(t, o, 0.9).0;
        (n_ours, n_theirs) = (n_ours + o.len(), n_theirs + t.len());
    }
    let (a, b) = (
        matched as f64 / n_theirs as f64,
        matched as f64 / n_ours as f64,
    );
    println!("fused vs Ultralytics: {matched} of {n_theirs} / {n_ours} boxes ({a:.4}, {b:.4})");
    assert!(n_theirs > 100 && a >= 0.97 && b >= 0.97, "{a:.4} / {b:.4}");
}

#[test]
#[ignore = "needs tools/setup"]
fn yolo11n_matches_ultralytics() {
    conformance("yolo11n");
    conformance("yolo11n_dyn");
}

/// YOLOv10's NMS-free head, exported with `nms=False` (its one-to-one branch: `[N, 300, 6]`).
#[test]
#[ignore = "needs tools/setup"]
fn yolov10n_nms_free_export_matches_ultralytics() {
    conformance("yolov10n");
    conformance("yolov10n_dyn");
}

/// YOLOv5's "u" model (the v5 backbone with the anchor-free v8 head: the `yolo` layout).
#[test]
#[ignore = "needs tools/setup"]
fn yolov5nu_matches_ultralytics() {
    conformance("yolov5nu");
    conformance("yolov5nu_dyn");
}

/// RT-DETR (yolov8n-rtdetr.yaml): no NMS, the frame stretched to the input, not letterboxed.
#[test]
#[ignore = "needs tools/setup"]
fn rtdetr_matches_ultralytics() {
    conformance("rtdetr");
    conformance("rtdetr_dyn");
}

#[test]
#[ignore = "needs tools/setup"]
fn info_names_each_layout_and_its_metadata() {
    for (name, layout) in MODELS {
        let model = yolo_model(name);
        require_model(&[&model]);
        let o = run_ok(&["info", model.to_str().unwrap()]);
        let text = String::from_utf8_lossy(&o.stdout);
        for want in [
            format!("layout: {layout} (recognised)"),
            "task detect".into(),
            "names: 3 (0:person, 1:bicycle, 2:car)".into(),
            "stride: 32".into(),
            "labels: 3 names from the model's metadata".into(),
        ] {
            assert!(text.contains(&want), "{name}: no '{want}' in:\n{text}");
        }
        let resize = if layout == "rtdetr" {
            "Stretch"
        } else {
            "Letterbox"
        };
        assert!(
            text.contains(&format!("resize {resize} (the layout's convention)")),
            "{text}"
        );
        let batch = if name.ends_with("_dyn") {
            "batch: dynamic"
        } else {
            "batch: fixed at 1"
        };
        assert!(text.contains(batch), "{name}: {text}");
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn wrong_labels_segmentation_and_truncated_models_are_refused() {
    let (v8, seg) = (yolo_model("yolov8n"), yolo_model("yolov8n_seg"));
    require_model(&[&v8, &seg]);
    let dir = scratch("yolo-refused");
    let clip = reference_dir().join("portrait30.mkv");
    let detect = |model: &Path, extra: &[&str]| {
        let out = dir.join("out");
        let mut args = vec![
            "detect",
            clip.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
            "--max-frames",
            "2",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        run(&args)
    };
    // COCO's labels file (80 names, ids up to 90) for a 3-class model.
    let labels = root().join("models/coco_labels.txt");
    let o = detect(&v8, &["--labels", labels.to_str().unwrap()]);
    let e = expect_failure(&o, 1, "has 80 names, but the model has 3 classes");
    assert!(!e.contains("panicked"), "{e}");
    let o = detect(&seg, &[]);
    let e = expect_failure(&o, 1, "Ultralytics 'segment' model");
    assert!(!e.contains("panicked"), "{e}");
    let o = run(&["info", seg.to_str().unwrap()]);
    expect_failure(&o, 1, "'segment' model");
    // The first half of a model.
    let bytes = std::fs::read(&v8).expect("read the model");
    let cut = dir.join("truncated.onnx");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let o = detect(&cut, &[]);
    let e = expect_failure(&o, 1, "truncated.onnx");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
#[ignore = "needs tools/setup"]
fn zone_classes_are_the_models_own_names() {
    let v8 = yolo_model("yolov8n");
    let clip = vtest();
    require_model(&[&v8, &clip]);
    let dir = scratch("yolo-zone");
    let detect = |zone: &str| {
        run(&[
            "detect",
            clip.to_str().unwrap(),
            "--model",
            v8.to_str().unwrap(),
            "--max-frames",
            "30",
            "--track",
            "--zone",
            zone,
            "--outputs",
            "jsonl",
            "--out",
            dir.join("out").to_str().unwrap(),
        ])
    };
    // No labels file beside the model: the export's metadata names its 3 classes.
    let o = detect("all:0,0;767,0;767,575;0,575;classes=person");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("no labels file"), "{err}");
    let rows = read_jsonl(&dir.join("out/vtest.jsonl"));
    let people = rows
        .iter()
        .flat_map(|(_, d)| d)
        .filter(|d| d.class_id == 0)
        .count();
    assert!(people > 0, "the test model finds people in vtest");
    let text = std::fs::read_to_string(dir.join("out/vtest.jsonl")).expect("jsonl");
    assert!(text.contains("\"label\":\"person\""), "named by the model");
    assert!(text.contains("\"zone_enter\""), "people enter the zone");
    let o = detect("all:0,0;767,0;767,575;0,575;classes=giraffe");
    expect_failure(&o, 2, "no class is named 'giraffe'");
}
