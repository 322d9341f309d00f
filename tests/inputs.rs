//! Hostile and unusual inputs: each unusable one fails with a clear message, exit code 1, no
//! panic and no complete-looking output; a bad input does not stop the others; what decodes
//! of a damaged file is kept and the loss reported; odd sizes, pixel formats, frame rates and
//! a mid-stream resolution change are processed.

mod common;
use common::*;
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
};

/// An x264 clip of `frames` frames with `-movflags +faststart` (the index before the media).
fn faststart_clip(dir: &Path, name: &str, source: &str, frames: u32) -> PathBuf {
    let opts = [
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx264",
        "-movflags",
        "+faststart",
    ];
    lavfi_clip(dir, name, source, frames, &opts)
}

/// Files no video can be read from, each with the message it must fail with.
fn unusable_inputs(dir: &Path) -> Vec<(PathBuf, &'static str)> {
    let empty = dir.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello\n".repeat(500)).unwrap();
    let audio = dir.join("audio.m4a");
    let sine = [
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:duration=1",
        "-c:a",
        "aac",
    ];
    ffmpeg(sine.iter().map(OsStr::new).chain([audio.as_os_str()]));
    // A video stream with no frames: a fast-start MP4 cut right where its media data begins.
    let bytes = std::fs::read(faststart_clip(
        dir,
        "full.mp4",
        "testsrc2=size=160x120:rate=10",
        10,
    ))
    .unwrap();
    let mdat = bytes
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("mdat box")
        - 4;
    let zero = dir.join("zero_frames.mp4");
    std::fs::write(&zero, &bytes[..mdat]).unwrap();
    let binary = dir.join("noise.bin");
    std::fs::write(
        &binary,
        (0..20000u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect::<Vec<u8>>(),
    )
    .unwrap();
    vec![
        (zero, "no frame could be decoded"),
        (
            "/nonexistent/clip.mp4".into(),
            "input not found: /nonexistent/clip.mp4",
        ),
        (dir.into(), "input is a directory"),
        (empty, "the file is empty"),
        (text, "this is a text file, not a video"),
        (binary, "cannot open"),
        (audio, "has no video stream"),
    ]
}

#[test]
#[ignore = "needs tools/setup"]
fn unusable_inputs_fail_with_clear_messages() {
    require_model(&[]);
    let dir = scratch("inputs");
    for (input, needle) in unusable_inputs(&dir) {
        let o = detect_in(&dir, &[&input], &[]);
        expect_failure(&o, 1, needle);
        assert!(
            finished_outputs(&dir.join("out")).is_empty(),
            "{needle}: no outputs"
        );
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn a_bad_input_does_not_stop_the_others_and_exit_code_is_1() {
    require_model(&[]);
    let dir = scratch("mixed");
    let good = lavfi_clip(
        &dir,
        "good.mp4",
        "testsrc2=size=160x120:rate=10",
        12,
        &["-pix_fmt", "yuv420p"],
    );
    let bad = dir.join("bad.mp4");
    std::fs::write(&bad, "not a video").unwrap();
    let o = detect_in(&dir, &[&bad, &good], &["--outputs", "jsonl,mp4"]);
    let err = expect_failure(&o, 1, "bad.mp4");
    assert!(err.contains("1 of 2 inputs ok"), "{err}");
    let out = dir.join("out");
    assert_eq!(read_jsonl(&out.join("good.jsonl")).len(), 12);
    assert!(!out.join("bad.jsonl").exists() && !out.join("bad.annotated.mp4").exists());
}

#[test]
#[ignore = "needs tools/setup"]
fn a_truncated_faststart_mp4_keeps_what_decodes_and_says_what_was_lost() {
    require_model(&[]);
    let dir = scratch("truncated");
    // moov at the front, so the first half stays readable when the file is cut.
    let bytes = std::fs::read(faststart_clip(
        &dir,
        "full.mp4",
        "testsrc2=size=320x240:rate=25",
        100,
    ))
    .unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = detect_in(&dir, &[&cut], &["--outputs", "jsonl,mp4"]);
    let err = stderr(&o);
    assert!(o.status.success(), "a usable prefix is processed: {err}");
    let rows = read_jsonl(&dir.join("out/cut.jsonl"));
    assert!(
        rows.len() > 20 && rows.len() < 100,
        "decoded {} frames of the first half",
        rows.len()
    );
    assert!(
        err.contains(&format!("decoded {} of 100 frames", rows.len())),
        "reports what was lost: {err}"
    );
    assert_eq!(
        ffprobe_frames(&dir.join("out/cut.annotated.mp4")),
        rows.len() as u64
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn a_truncated_mp4_with_its_index_at_the_end_fails() {
    require_model(&[]);
    let dir = scratch("truncated-tail");
    // Without faststart the index is at the end: cut in half, nothing is playable.
    let tail = lavfi_clip(
        &dir,
        "tail.mp4",
        "testsrc2=size=320x240:rate=25",
        100,
        &["-pix_fmt", "yuv420p", "-c:v", "libx264"],
    );
    let bytes = std::fs::read(&tail).unwrap();
    let cut2 = dir.join("cut2.mp4");
    std::fs::write(&cut2, &bytes[..bytes.len() / 2]).unwrap();
    let o = detect_in(&dir, &[&cut2], &[]);
    expect_failure(&o, 1, "cut2.mp4");
}

#[test]
#[ignore = "needs tools/setup"]
fn corrupt_h264_keeps_most_frames_and_reports_the_losses() {
    require_model(&[]);
    let dir = scratch("corrupt");
    // Garbage in the middle of a raw H.264 stream: the rest still decodes, losses are counted.
    let h264 = lavfi_clip(
        &dir,
        "raw.h264",
        "testsrc2=size=320x240:rate=25",
        100,
        &[
            "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", "10", "-f", "h264",
        ],
    );
    let mut bytes = std::fs::read(&h264).unwrap();
    let mid = bytes.len() / 2;
    for (i, b) in bytes[mid..mid + 4000].iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    let corrupt = dir.join("corrupt.h264");
    std::fs::write(&corrupt, &bytes).unwrap();
    let o = detect_in(&dir, &[&corrupt], &["--outputs", "jsonl"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let rows = read_jsonl(&dir.join("out/corrupt.jsonl"));
    assert!(rows.len() >= 80, "most frames survive: {}", rows.len());
    assert!(
        rows.len() == 100 || err.contains("corrupt") || err.contains("concealed"),
        "losses are reported: {err}"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn odd_sizes_pixel_formats_and_frame_rates_work() {
    require_model(&[]);
    let dir = scratch("formats");
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "tiny.mp4",
            "testsrc2=size=2x2:rate=10",
            &[
                "-pix_fmt",
                "yuv420p",
                "-vf",
                "scale=1:1",
                "-c:v",
                "ffv1",
                "-f",
                "matroska",
            ],
        ),
        (
            "odd.mkv",
            "testsrc2=size=641x359:rate=10",
            &["-pix_fmt", "yuv420p", "-c:v", "ffv1"],
        ),
        (
            "ten_bit.mkv",
            "testsrc2=size=320x240:rate=10",
            &["-pix_fmt", "yuv420p10le", "-c:v", "libx264"],
        ),
        (
            "yuv444.mkv",
            "testsrc2=size=320x240:rate=10",
            &["-pix_fmt", "yuv444p", "-c:v", "libx264"],
        ),
        (
            "vfr.mkv",
            "testsrc2=size=320x240:rate=10",
            &[
                "-pix_fmt",
                "yuv420p",
                "-vf",
                "setpts='PTS+if(gt(N,5),0.05*N/TB,0)'",
                "-fps_mode",
                "vfr",
                "-c:v",
                "libx264",
            ],
        ),
        (
            "gray.mkv",
            "testsrc2=size=320x240:rate=10",
            &["-pix_fmt", "gray", "-c:v", "ffv1"],
        ),
    ];
    for (name, src, extra) in cases {
        let clip = lavfi_clip(&dir, name, src, 12, extra);
        let o = detect_in(&dir, &[&clip], &["--outputs", "jsonl,mp4"]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let stem = name.split('.').next().unwrap();
        let rows = read_jsonl(&dir.join(format!("out/{stem}.jsonl")));
        assert_eq!(rows.len(), 12, "{name}");
        assert_eq!(
            ffprobe_frames(&dir.join(format!("out/{stem}.annotated.mp4"))),
            12,
            "{name}"
        );
        let pts: Vec<f64> = std::fs::read_to_string(dir.join(format!("out/{stem}.jsonl")))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["pts"]
                    .as_f64()
                    .unwrap()
            })
            .collect();
        assert!(
            pts.windows(2).all(|w| w[1] > w[0]),
            "{name}: pts increase: {pts:?}"
        );
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn resolution_change_mid_stream_is_followed() {
    require_model(&[]);
    let dir = scratch("reschange");
    let a = lavfi_clip(
        &dir,
        "a.ts",
        "testsrc2=size=320x240:rate=10",
        10,
        &["-pix_fmt", "yuv420p", "-c:v", "libx264"],
    );
    let b = lavfi_clip(
        &dir,
        "b.ts",
        "testsrc2=size=640x360:rate=10",
        10,
        &["-pix_fmt", "yuv420p", "-c:v", "libx264"],
    );
    let joined = dir.join("joined.ts");
    let mut all = std::fs::read(&a).unwrap();
    all.extend(std::fs::read(&b).unwrap());
    std::fs::write(&joined, all).unwrap();
    let o = detect_in(&dir, &[&joined], &["--outputs", "jsonl,mp4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_jsonl(&dir.join("out/joined.jsonl")).len(), 20);
    assert_eq!(ffprobe_frames(&dir.join("out/joined.annotated.mp4")), 20);
}
