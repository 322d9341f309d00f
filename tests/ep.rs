//! Execution providers and hardware decoding on a CPU-only machine: named providers that
//! cannot register fail clearly, OpenVINO (when set up) matches the CPU provider, and every
//! hardware decoder falls back to software with the right frame count.

mod common;
use common::*;

/// `detect` on the first `frames` frames of vtest, JSONL into `out`.
fn detect(extra: &[&str], out: &std::path::Path, frames: &str) -> std::process::Output {
    let mut c = vidinfer();
    c.arg("detect").arg(vtest()).arg("--model").arg(model());
    c.args(["--max-frames", frames, "--outputs", "jsonl", "--out"]);
    c.arg(out).args(extra).output().expect("run vidinfer")
}

#[test]
#[ignore = "needs tools/setup"]
fn gpu_providers_fail_clearly_with_the_cpu_library() {
    require_model(&[&vtest()]);
    let dir = scratch("ep-gpu");
    let cpu_lib = ort_lib();
    for ep in ["cuda", "tensorrt"] {
        let o = detect(
            &["--ep", ep, "--ort-lib", cpu_lib.to_str().unwrap()],
            &dir,
            "2",
        );
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains(&format!("execution provider '{ep}' is unavailable")),
            "{err}"
        );
        assert!(
            err.contains("not enabled in this build")
                || err.contains("not supported in this build"),
            "names the cause: {err}"
        );
        assert!(
            err.contains("tools/setup --ep gpu"),
            "says how to fix it: {err}"
        );
        assert!(err.contains("NVIDIA GPU and driver"), "{err}");
        assert!(!dir.join("vtest.jsonl").exists(), "no silent CPU run");
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn a_provider_list_falls_through_and_reports_what_ran() {
    require_model(&[&vtest()]);
    let dir = scratch("ep-list");
    let cpu_lib = ort_lib();
    let summary = dir.join("summary.json");
    let o = detect(
        &[
            "--ep",
            "cuda,cpu",
            "--ort-lib",
            cpu_lib.to_str().unwrap(),
            "--summary-json",
            summary.to_str().unwrap(),
        ],
        &dir,
        "2",
    );
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("execution provider cuda unavailable, trying the next one"),
        "{err}"
    );
    assert!(
        err.contains("EP cpu"),
        "summary names the provider that ran: {err}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(j["ep"], "cpu");
    assert_eq!(j["frames"], 2);
    assert_eq!(j["inputs"][0]["ok"], true);
}

#[test]
#[ignore = "needs tools/setup"]
fn openvino_matches_cpu_detections() {
    let ov = root().join(".cache/onnxruntime/openvino/libonnxruntime.so");
    require_model(&[&vtest(), &ov]);
    let dir = scratch("ep-openvino");
    let cpu_out = dir.join("cpu");
    let a = detect(&["--ep", "cpu"], &cpu_out, "40");
    assert!(a.status.success(), "{}", stderr(&a));
    let cpu = read_jsonl(&cpu_out.join("vtest.jsonl"));
    assert_eq!(cpu.len(), 40);
    // OpenVINO compiles the model for the run's batch: batch 3 over 40 frames ends with a
    // batch of one frame padded to three, which must not add, lose or shift a frame.
    for batch in ["1", "3"] {
        let ov_out = dir.join(format!("ov-{batch}"));
        let b = detect(&["--ep", "openvino", "--batch", batch], &ov_out, "40");
        assert!(b.status.success(), "{}", stderr(&b));
        assert!(stderr(&b).contains("EP openvino"), "{}", stderr(&b));
        assert!(
            stderr(&b).contains(&format!("batch {batch},")),
            "{}",
            stderr(&b)
        );
        let ov = read_jsonl(&ov_out.join("vtest.jsonl"));
        let frames: Vec<u64> = ov.iter().map(|(f, _)| *f).collect();
        assert_eq!(frames, (0..40).collect::<Vec<u64>>(), "batch {batch}");
        let (mut m, mut r, mut o) = (0, 0, 0);
        for ((_, c), (_, v)) in cpu.iter().zip(&ov) {
            let (mm, rr, oo) = match_frame(c, v, 0.9);
            (m, r, o) = (m + mm, r + rr, o + oo);
        }
        println!(
            "openvino batch {batch} vs cpu: {m}/{r} boxes matched, {} extra",
            o - m
        );
        assert!(r > 50);
        assert!(m as f64 >= 0.98 * r as f64 && (o - m) as f64 <= 0.02 * r as f64);
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn hardware_decoders_fall_back_to_software_with_correct_frame_counts() {
    require_model(&[]);
    let dir = scratch("hwaccel");
    let clip = lavfi_clip(
        &dir,
        "h264.mp4",
        "testsrc2=size=320x240:rate=25",
        24,
        &["-pix_fmt", "yuv420p", "-c:v", "libx264"],
    );
    for hw in ["cuda", "vaapi", "qsv", "auto"] {
        let o = detect_in(
            &dir.join(hw),
            &[&clip],
            &["--hwaccel", hw, "--outputs", "jsonl,mp4"],
        );
        let out = dir.join(hw).join("out");
        let err = stderr(&o);
        assert!(o.status.success(), "{hw}: {err}");
        assert!(
            err.contains("decoding in software"),
            "{hw}: the fallback is logged: {err}"
        );
        assert_eq!(
            err.matches("decoding in software").count(),
            1,
            "{hw}: logged once: {err}"
        );
        assert_eq!(read_jsonl(&out.join("h264.jsonl")).len(), 24, "{hw}");
        assert_eq!(ffprobe_frames(&out.join("h264.annotated.mp4")), 24, "{hw}");
    }
}

/// `bench` takes `ep = "auto"` from vidinfer.toml as `detect` does: the build with the most
/// providers is loaded and the provider that ran is OpenVINO (the only one set up beyond the
/// CPU's), where it used to fall back silently to the CPU provider.
#[test]
#[ignore = "needs tools/setup"]
fn bench_takes_ep_auto_from_the_config_file() {
    let ov = root().join(".cache/onnxruntime/openvino/libonnxruntime.so");
    require_model(&[&vtest(), &ov]);
    let dir = scratch("ep-bench-auto");
    std::fs::write(dir.join("vidinfer.toml"), "ep = \"auto\"\n").unwrap();
    let json = dir.join("bench.json");
    let o = vidinfer()
        .current_dir(&*dir)
        .arg("bench")
        .arg(vtest())
        .arg("--model")
        .arg(model())
        .args([
            "--batch", "1", "--frames", "8", "--repeat", "1", "--warmup", "1",
        ])
        .args([
            "--workers",
            "1",
            "--streams",
            "1",
            "--outputs",
            "none",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("settings from vidinfer.toml: ep auto"),
        "{err}"
    );
    let points: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let ran = points[0]["ep"].as_str().unwrap_or_default().to_string();
    if root().join(".cache/onnxruntime/gpu").exists() {
        assert!(!ran.is_empty(), "{points}");
    } else {
        assert_eq!(ran, "openvino", "{points}");
    }
}
