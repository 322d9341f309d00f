//! End-to-end tests of the `vidinfer detect` command on the real model.

mod common;
use common::*;

#[test]
#[ignore = "needs tools/setup"]
fn synthetic_clip_gives_one_jsonl_line_and_one_video_frame_per_input_frame() {
    require_model(&[]);
    let dir = scratch("synthetic");
    let clip = lavfi_clip(
        &dir,
        "synth.mp4",
        "testsrc2=size=320x240:rate=25",
        37,
        &["-pix_fmt", "yuv420p", "-c:v", "libx264"],
    );
    let out = dir.join("out");
    let o = run_ok(&[
        "detect",
        clip.to_str().unwrap(),
        "--model",
        model().to_str().unwrap(),
        "--batch",
        "4",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = read_jsonl(&out.join("synth.jsonl"));
    assert_eq!(rows.len(), 37);
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (0..37).collect::<Vec<_>>(),
        "frames in order, none lost"
    );
    let mp4 = out.join("synth.annotated.mp4");
    assert_eq!(ffprobe_frames(&mp4), 37);
    assert_eq!(ffprobe_field(&mp4, "codec_name"), "h264");
    assert_eq!(ffprobe_field(&mp4, "r_frame_rate"), "25/1");
    assert!(
        stderr(&o).contains("37 frames"),
        "summary line: {}",
        stderr(&o)
    );
    assert_no_partials(&out);
}

#[test]
#[ignore = "needs tools/setup"]
fn vtest_people_are_found_and_outputs_match_frame_count() {
    require_model(&[&vtest()]);
    let dir = scratch("vtest");
    let out = dir.join("out");
    run_ok(&[
        "detect",
        vtest().to_str().unwrap(),
        "--model",
        model().to_str().unwrap(),
        "--max-frames",
        "30",
        "--out",
        out.to_str().unwrap(),
    ]);
    let rows = read_jsonl(&out.join("vtest.jsonl"));
    assert_eq!(rows.len(), 30);
    let persons: usize = rows
        .iter()
        .map(|r| r.1.iter().filter(|d| d.class_id == 0).count())
        .sum();
    assert!(
        persons >= 30,
        "vtest shows several pedestrians per frame; found {persons} person boxes in 30 frames"
    );
    for (_, dets) in &rows {
        for d in dets {
            assert!(d.score > 0.5);
            assert!(
                d.b[0] >= 0.0
                    && d.b[1] >= 0.0
                    && d.b[2] <= 768.0
                    && d.b[3] <= 576.0
                    && d.b[0] <= d.b[2]
                    && d.b[1] <= d.b[3],
                "{d:?}"
            );
        }
    }
    assert_eq!(ffprobe_frames(&out.join("vtest.annotated.mp4")), 30);
}

#[test]
#[ignore = "needs tools/setup"]
fn csv_output_has_a_row_per_detection() {
    require_model(&[&vtest()]);
    let dir = scratch("csv");
    let out = dir.join("out");
    run_ok(&[
        "detect",
        vtest().to_str().unwrap(),
        "--model",
        model().to_str().unwrap(),
        "--max-frames",
        "5",
        "--outputs",
        "jsonl,csv",
        "--out",
        out.to_str().unwrap(),
    ]);
    let dets: usize = read_jsonl(&out.join("vtest.jsonl"))
        .iter()
        .map(|r| r.1.len())
        .sum();
    let csv = std::fs::read_to_string(out.join("vtest.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("frame,pts,class_id,label,score,x1,y1,x2,y2")
    );
    assert_eq!(lines.count(), dets);
    assert!(
        !out.join("vtest.annotated.mp4").exists(),
        "mp4 not requested"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn missing_input_is_a_clear_error() {
    require_model(&[]);
    let dir = scratch("missing-input");
    let o = run(&[
        "detect",
        "/nonexistent/clip.mp4",
        "--model",
        model().to_str().unwrap(),
        "--out",
        dir.to_str().unwrap(),
    ]);
    expect_failure(&o, 1, "input not found: /nonexistent/clip.mp4");
}

#[test]
#[ignore = "needs tools/setup"]
fn non_video_input_is_a_clear_error_and_leaves_no_output() {
    require_model(&[]);
    let dir = scratch("text-input");
    let txt = dir.join("notes.mp4");
    std::fs::write(&txt, "this is not a video\n".repeat(100)).unwrap();
    let out = dir.join("out");
    let o = run(&[
        "detect",
        txt.to_str().unwrap(),
        "--model",
        model().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = expect_failure(&o, 1, "cannot open");
    assert!(err.contains("notes.mp4"));
    // The bookkeeping folder (name claims, locks) is not an output.
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| !p.ends_with(".vidinfer"))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        leftovers.is_empty(),
        "no output for a failed input: {leftovers:?}"
    );
}

#[test]
fn missing_model_is_a_clear_error() {
    let dir = scratch("missing-model");
    let clip = lavfi_clip(
        &dir,
        "c.mp4",
        "testsrc2=size=64x48:rate=5",
        2,
        &["-pix_fmt", "yuv420p"],
    );
    let o = run(&[
        "detect",
        clip.to_str().unwrap(),
        "--model",
        "/nonexistent/model.onnx",
        "--out",
        dir.join("o").to_str().unwrap(),
    ]);
    expect_failure(&o, 1, "model file not found: /nonexistent/model.onnx");
}

#[test]
fn bad_flags_are_usage_errors() {
    let o = run(&["detect", "x.mp4", "--conf", "1.5"]);
    expect_failure(&o, 2, "'--conf <CONF>': must be between 0 and 1");
    let o = run(&["detect", "x.mp4", "--ep", "gpu"]);
    expect_failure(&o, 2, "unknown execution provider 'gpu'");
    let o = run(&["detect"]);
    expect_failure(&o, 2, "INPUT");
}
