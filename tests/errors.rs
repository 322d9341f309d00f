//! The error matrix: hostile inputs, models and outputs. Each case checks the message, the
//! exit code, that nothing panicked and that no complete-looking output was left behind.
//! Usable streams are processed and what was skipped is reported.

mod common;
use common::*;
use std::{path::Path, process::Command};

fn detect_in(dir: &Path, inputs: &[&Path], extra: &[&str]) -> std::process::Output {
    let out = dir.join("out");
    let mut args: Vec<String> = vec!["detect".into()];
    args.extend(inputs.iter().map(|p| p.to_string_lossy().into_owned()));
    if !extra.contains(&"--model") {
        args.extend(["--model".into(), model().to_string_lossy().into_owned()]);
    }
    args.extend([
        "--out".into(),
        out.to_string_lossy().into_owned(),
        "--no-progress".into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(bin())
        .args(&args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("run vidinfer")
}

fn expect_failure(o: &std::process::Output, code: i32, needle: &str) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code for '{needle}': {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    err
}

/// Files in `dir` that look like finished outputs (no `.partial`, not a directory).
fn finished_outputs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn unusable_inputs_fail_with_clear_messages() {
    if !assets_ready(&[&model()]) {
        return;
    }
    let dir = scratch("errors-inputs");
    let empty = dir.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "hello\n".repeat(500)).unwrap();
    let audio = dir.join("audio.m4a");
    let st = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-c:a",
            "aac",
        ])
        .arg(&audio)
        .status()
        .unwrap();
    assert!(st.success());
    // A video stream with no frames: a fast-start MP4 cut right where its media data begins.
    let full = lavfi_clip(
        &dir,
        "full.mp4",
        "testsrc2=size=160x120:rate=10",
        10,
        &[
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-movflags",
            "+faststart",
        ],
    );
    let bytes = std::fs::read(&full).unwrap();
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
    let cases: [(&Path, &str); 7] = [
        (&zero, "no frame could be decoded"),
        (
            Path::new("/nonexistent/clip.mp4"),
            "input not found: /nonexistent/clip.mp4",
        ),
        (&dir, "input is a directory"),
        (&empty, "the file is empty"),
        (&text, "this is a text file, not a video"),
        (&binary, "cannot open"),
        (&audio, "has no video stream"),
    ];
    for (input, needle) in cases {
        let o = detect_in(&dir, &[input], &[]);
        expect_failure(&o, 1, needle);
        assert!(
            finished_outputs(&dir.join("out")).is_empty(),
            "{needle}: no outputs"
        );
    }
}

#[test]
fn a_bad_input_does_not_stop_the_others_and_exit_code_is_1() {
    if !assets_ready(&[&model()]) {
        return;
    }
    let dir = scratch("errors-mixed");
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
fn truncated_and_corrupt_files_keep_what_decodes_and_say_what_was_lost() {
    if !assets_ready(&[&model()]) {
        return;
    }
    let dir = scratch("errors-truncated");
    // moov at the front, so the first half stays readable when the file is cut.
    let full = lavfi_clip(
        &dir,
        "full.mp4",
        "testsrc2=size=320x240:rate=25",
        100,
        &[
            "-pix_fmt",
            "yuv420p",
            "-c:v",
            "libx264",
            "-movflags",
            "+faststart",
        ],
    );
    let bytes = std::fs::read(&full).unwrap();
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
fn odd_sizes_pixel_formats_and_frame_rates_work() {
    if !assets_ready(&[&model()]) {
        return;
    }
    let dir = scratch("errors-formats");
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
fn resolution_change_mid_stream_is_followed() {
    if !assets_ready(&[&model()]) {
        return;
    }
    let dir = scratch("errors-reschange");
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

#[test]
fn bad_models_are_refused_clearly() {
    if !assets_ready(&[&model()]) {
        return;
    }
    let dir = scratch("errors-models");
    let clip = lavfi_clip(
        &dir,
        "c.mp4",
        "testsrc2=size=160x120:rate=10",
        4,
        &["-pix_fmt", "yuv420p"],
    );
    let not_onnx = dir.join("model.onnx");
    std::fs::write(&not_onnx, "definitely not a protobuf").unwrap();
    let o = detect_in(&dir, &[&clip], &["--model", not_onnx.to_str().unwrap()]);
    expect_failure(&o, 1, "cannot load model");
    let detout = root().join("models/ssd_mobilenet_v2_coco_detout.onnx");
    let o = detect_in(&dir, &[&clip], &["--model", detout.to_str().unwrap()]);
    expect_failure(&o, 1, "expected 'boxes' [N, anchors, 4] and 'scores'");
    let tflite = root().join(".cache/model/ssd_tflite.onnx");
    if tflite.exists() {
        let o = detect_in(&dir, &[&clip], &["--model", tflite.to_str().unwrap()]);
        expect_failure(&o, 1, "must be float32");
    }
    assert!(finished_outputs(&dir.join("out")).is_empty());
}

#[test]
fn a_batch_one_model_with_batch_eight_says_it_uses_batch_one() {
    let py = root().join(".cache/model/venv/bin/python");
    if !assets_ready(&[&model(), &py]) {
        return;
    }
    let dir = scratch("errors-batch1");
    let fixed = dir.join("batch1.onnx");
    let script = "import onnx,sys\nm=onnx.load(sys.argv[1])\nfor v in list(m.graph.input)+list(m.graph.output):\n    v.type.tensor_type.shape.dim[0].dim_value=1\nonnx.save(m,sys.argv[2])\n";
    let st = Command::new(&py)
        .args(["-c", script])
        .arg(model())
        .arg(&fixed)
        .status()
        .unwrap();
    assert!(st.success());
    let clip = lavfi_clip(
        &dir,
        "c.mp4",
        "testsrc2=size=160x120:rate=10",
        5,
        &["-pix_fmt", "yuv420p"],
    );
    let o = detect_in(
        &dir,
        &[&clip],
        &[
            "--model",
            fixed.to_str().unwrap(),
            "--batch",
            "8",
            "--outputs",
            "jsonl",
        ],
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("fixed batch size of 1; using batch 1 instead of 8"),
        "{err}"
    );
    assert!(err.contains("batch 1"), "summary: {err}");
    assert_eq!(read_jsonl(&dir.join("out/c.jsonl")).len(), 5);
}

#[test]
fn unwritable_output_is_a_clear_error() {
    if !assets_ready(&[&model()]) {
        return;
    }
    let dir = scratch("errors-unwritable");
    let clip = lavfi_clip(
        &dir,
        "c.mp4",
        "testsrc2=size=160x120:rate=10",
        4,
        &["-pix_fmt", "yuv420p"],
    );
    let blocker = dir.join("file");
    std::fs::write(&blocker, "x").unwrap();
    let m = model();
    let o = run(&[
        "detect",
        clip.to_str().unwrap(),
        "--model",
        m.to_str().unwrap(),
        "--out",
        blocker.join("out").to_str().unwrap(),
    ]);
    expect_failure(&o, 1, "cannot write");
}

#[test]
fn full_disk_leaves_no_complete_looking_file() {
    if !assets_ready(&[&model(), &vtest()]) {
        return;
    }
    let dir = scratch("errors-diskfull");
    let mnt = dir.join("tiny");
    std::fs::create_dir_all(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&mnt)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("SKIPPED: cannot mount a small tmpfs here (needs root and mount rights)");
        return;
    }
    let m = model();
    let o = run(&[
        "detect",
        vtest().to_str().unwrap(),
        "--model",
        m.to_str().unwrap(),
        "--max-frames",
        "200",
        "--out",
        mnt.to_str().unwrap(),
        "--no-progress",
    ]);
    let left = finished_outputs(&mnt);
    let _ = Command::new("umount").arg(&mnt).status();
    expect_failure(&o, 1, "No space left on device");
    assert!(left.is_empty(), "nothing that looks complete: {left:?}");
}

#[test]
fn rotation_metadata_puts_boxes_on_the_displayed_frame() {
    if !assets_ready(&[&model(), &vtest()]) {
        return;
    }
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

#[test]
fn three_shards_process_nine_inputs_exactly_once_and_retries_skip_finished_ones() {
    if !assets_ready(&[&model()]) {
        return;
    }
    let dir = scratch("shards");
    let mut manifest = String::new();
    for i in 0..9 {
        let clip = lavfi_clip(
            &dir,
            &format!("clip{i}.mp4"),
            &format!("testsrc2=size=96x64:rate={}", 5 + i),
            3 + i as u32,
            &["-pix_fmt", "yuv420p"],
        );
        manifest.push_str(&format!("{}\n", clip.display()));
    }
    let list = dir.join("manifest.txt");
    std::fs::write(&list, manifest).unwrap();
    let out = dir.join("out");
    let m = model();
    let spawn = |i: usize, env: bool| {
        let mut c = Command::new(bin());
        c.args([
            "detect",
            "--inputs-from",
            list.to_str().unwrap(),
            "--model",
            m.to_str().unwrap(),
            "--outputs",
            "jsonl",
            "--out",
            out.to_str().unwrap(),
            "--shard-count",
            "3",
            "--no-progress",
            "--threads",
            "1",
        ]);
        if env {
            c.env("JOB_COMPLETION_INDEX", i.to_string());
        } else {
            c.args(["--shard-index", &i.to_string()]);
        }
        c.stderr(std::process::Stdio::piped()).spawn().unwrap()
    };
    // Shard 1 takes its index from the Kubernetes variable, the others from the flag.
    let children: Vec<_> = (0..3).map(|i| spawn(i, i == 1)).collect();
    let mut seen = std::collections::BTreeMap::new();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "shard {i}: {err}");
        for line in err.lines().filter(|l| l.contains(" frames, ")) {
            let name = line
                .split(':')
                .next()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_string();
            *seen.entry(name).or_insert(0) += 1;
        }
    }
    assert_eq!(seen.len(), 9, "{seen:?}");
    assert!(
        seen.values().all(|&n| n == 1),
        "each input exactly once: {seen:?}"
    );
    for i in 0..9 {
        assert_eq!(read_jsonl(&out.join(format!("clip{i}.jsonl"))).len(), 3 + i);
        assert!(out.join(format!("clip{i}.done")).exists());
    }
    // A retried shard finds its inputs done and skips them.
    let o = spawn(0, false).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success());
    assert_eq!(err.matches("already done").count(), 3, "{err}");
    assert!(err.contains("done: 0 frames"), "{err}");
    // Different settings are not "done": the outputs are redone.
    let o = Command::new(bin())
        .args([
            "detect",
            "--inputs-from",
            list.to_str().unwrap(),
            "--model",
            m.to_str().unwrap(),
            "--outputs",
            "jsonl",
            "--out",
            out.to_str().unwrap(),
        ])
        .args([
            "--shard-count",
            "3",
            "--shard-index",
            "0",
            "--no-progress",
            "--conf",
            "0.4",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && !err.contains("already done") && err.contains("3 of 3 inputs ok"),
        "{err}"
    );
}
