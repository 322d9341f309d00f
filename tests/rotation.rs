//! Rotation metadata: boxes are reported on the frame as displayed, not as stored.

mod common;
use common::*;
use std::process::Command;

#[test]
#[ignore = "needs tools/setup"]
fn rotation_metadata_puts_boxes_on_the_displayed_frame() {
    require_model(&[&vtest()]);
    let dir = scratch("rotation");
    let v = vtest();
    // The same 10 frames, once turned upright by ffmpeg, once stored sideways with a display matrix.
    let upright = dir.join("upright.mp4");
    let sideways = dir.join("sideways.mp4");
    for (out, vf) in [(&upright, "transpose=clock"), (&sideways, "null")] {
        let st = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-i"])
            .arg(&v)
            .args([
                "-frames:v",
                "10",
                "-vf",
                vf,
                "-c:v",
                "libx264",
                "-crf",
                "18",
            ])
            .arg(out)
            .status()
            .unwrap();
        assert!(st.success());
    }
    // Write a 90°-clockwise display matrix into the track header (as phones do).
    let mut bytes = std::fs::read(&sideways).unwrap();
    let p = bytes
        .windows(4)
        .position(|w| w == b"tkhd")
        .expect("tkhd box");
    let m = p + 44;
    for (i, v) in [0i32, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x4000_0000]
        .iter()
        .enumerate()
    {
        bytes[m + 4 * i..m + 4 * i + 4].copy_from_slice(&v.to_be_bytes());
    }
    std::fs::write(&sideways, bytes).unwrap();
    assert_eq!(ffprobe_field(&sideways, "width"), "768", "stored sideways");
    let o = detect_in(&dir, &[&upright, &sideways], &["--outputs", "jsonl,mp4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.join("out");
    assert_eq!(
        (
            ffprobe_field(&out.join("sideways.annotated.mp4"), "width"),
            ffprobe_field(&out.join("sideways.annotated.mp4"), "height")
        ),
        ("576".into(), "768".into())
    );
    let (a, b) = (
        read_jsonl(&out.join("upright.jsonl")),
        read_jsonl(&out.join("sideways.jsonl")),
    );
    let (mut m, mut r) = (0, 0);
    for ((_, x), (_, y)) in a.iter().zip(&b) {
        let (mm, rr, _) = match_frame(x, y, 0.8);
        m += mm;
        r += rr;
        assert!(
            y.iter().all(|d| d.b[2] <= 576.0 && d.b[3] <= 768.0),
            "boxes in the displayed 576x768 frame: {y:?}"
        );
    }
    assert!(
        r > 0 && m as f64 >= 0.9 * r as f64,
        "{m}/{r} boxes agree with the upright copy"
    );
}
