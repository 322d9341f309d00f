//! Shared helpers for the integration tests: the assets tools/setup makes (and a check that
//! they are there), a runner for the built binary, scratch directories, and small media made
//! on the fly with the ffmpeg CLI.
#![allow(dead_code)]
pub mod media;
pub mod procs;
pub mod servers;

use std::{
    ffi::OsStr,
    ops::Deref,
    path::{Path, PathBuf},
    process::{Command, Output},
};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn model() -> PathBuf {
    root().join("models/ssd_mobilenet_v2_coco.onnx")
}

/// The CPU build of ONNX Runtime that `detect` loads by default.
pub fn ort_lib() -> PathBuf {
    root().join(".cache/onnxruntime/cpu/libonnxruntime.so")
}

pub fn vtest() -> PathBuf {
    root().join("samples/vtest.avi")
}

/// The model venv's python (onnx, onnxruntime), for tests that edit the model.
pub fn model_python() -> PathBuf {
    root().join(".cache/model/venv/bin/python")
}

/// Fails the test, naming what is missing, unless every path exists. Tests that call this are
/// `#[ignore = "needs tools/setup"]`; tools/test runs them with `--include-ignored`.
pub fn require(paths: &[&Path]) {
    let missing: Vec<_> = paths
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    // tools/build_model.sh stops early when models/ is up to date, so it does not remake
    // .cache/model (the model venv, the tf2onnx output) unless forced.
    let hint = if missing.iter().any(|p| p.contains(".cache/model/")) {
        "tools/build_model.sh --force"
    } else {
        "tools/setup --ep openvino (tools/test does, and builds .cache/reference)"
    };
    assert!(
        missing.is_empty(),
        "missing {}: run {hint}",
        missing.join(", ")
    );
}

/// [`require`]s the model and ONNX Runtime, which every inference needs, and `more`.
pub fn require_model(more: &[&Path]) {
    let (m, ort) = (model(), ort_lib());
    require(&[&[m.as_path(), ort.as_path()], more].concat());
}

/// The built binary, for tests that spawn it and talk to it while it runs.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_vidinfer"))
}

/// The built binary, with one-line panics.
pub fn vidinfer() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("vidinfer").expect("the vidinfer binary");
    c.env("RUST_BACKTRACE", "0");
    c
}

pub fn run(args: &[&str]) -> Output {
    vidinfer().args(args).output().expect("run vidinfer")
}

/// Runs vidinfer and fails the test, showing its output, unless it exits 0.
pub fn run_ok(args: &[&str]) -> Output {
    vidinfer()
        .args(args)
        .assert()
        .success()
        .get_output()
        .clone()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Checks a clean failure: exit `code`, no panic, `needle` in stderr. Returns stderr.
pub fn expect_failure(o: &Output, code: i32, needle: &str) -> String {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code for '{needle}': {err}"
    );
    assert!(!err.contains("panicked"), "must not panic: {err}");
    assert!(err.contains(needle), "expected '{needle}' in: {err}");
    err
}

/// `detect` on `inputs` with the model (unless `extra` names one), outputs to `dir/out`.
pub fn detect_in(dir: &Path, inputs: &[&Path], extra: &[&str]) -> Output {
    let mut c = vidinfer();
    c.arg("detect").args(inputs);
    if !extra.contains(&"--model") {
        c.arg("--model").arg(model());
    }
    c.arg("--out").arg(dir.join("out")).arg("--no-progress");
    c.args(extra).output().expect("run vidinfer")
}

/// The files in `dir` (not directories). A failed input must leave none there, not even a
/// `.partial`.
pub fn finished_outputs(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Fails unless no temporary output file (`<name>.<pid>.partial`) is left in `out`.
pub fn assert_no_partials(out: &Path) {
    let left: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".partial"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
}

/// A fresh scratch directory, removed afterwards; kept (and its path printed) when the test
/// fails, to look at what was written.
pub struct Scratch(tempfile::TempDir);

pub fn scratch(name: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("vidinfer-{name}-"))
        .tempdir()
        .expect("create scratch dir");
    Scratch(dir)
}

impl Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.disable_cleanup(true);
            eprintln!("scratch dir kept: {}", self.0.path().display());
        }
    }
}

/// Runs `script` with the model venv's python, `args` as `sys.argv[1..]`: edited copies of the
/// model are made this way.
pub fn model_script(script: &str, args: &[&Path]) {
    let st = Command::new(model_python())
        .arg("-c")
        .arg(script)
        .args(args)
        .status()
        .expect("run the model venv's python");
    assert!(st.success(), "model script failed:\n{script}");
}

/// Runs `ffmpeg -v error -y` with `args`; fails the test if ffmpeg does.
pub fn ffmpeg<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) {
    let st = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args)
        .status()
        .expect("ffmpeg is installed (tools/setup)");
    assert!(st.success(), "ffmpeg failed");
}

/// Makes a synthetic clip with ffmpeg's lavfi source, e.g. `testsrc2=size=320x240:rate=25`.
pub fn lavfi_clip(dir: &Path, name: &str, source: &str, frames: u32, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let frames = frames.to_string();
    let head = ["-f", "lavfi", "-i", source, "-frames:v", &frames];
    let args = head.iter().chain(extra).map(OsStr::new);
    ffmpeg(args.chain([out.as_os_str()]));
    out
}

/// ffprobe's options that decode every frame of the first video stream and print their count.
pub const FFPROBE_COUNT_FRAMES: [&str; 7] = [
    "-count_frames",
    "-select_streams",
    "v:0",
    "-show_entries",
    "stream=nb_read_frames",
    "-of",
    "csv=p=0",
];

/// Frame count of the first video stream, decoded by ffprobe.
pub fn ffprobe_frames(path: &Path) -> u64 {
    let o = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(FFPROBE_COUNT_FRAMES)
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
/// (frame, detections) of each frame line; event lines are left out.
pub fn read_jsonl(path: &Path) -> Vec<(u64, Vec<Det>)> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("valid JSON line"))
        // Event lines (`{"event":...}`) of live sources are not frames.
        .filter(|v| v.get("event").is_none())
        .map(|v| {
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

/// A one-thread CPU detector of the default model; ONNX Runtime allows one environment per
/// process, so a test binary's detectors share it.
pub fn cpu_detector() -> vidinfer::infer::Detector {
    use vidinfer::infer::{resolve_ort_lib, Detector, EpChoice, EpKind, Runtime, SessionConfig};
    static RT: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    vidinfer::decode::init_ffmpeg(false);
    let rt = RT.get_or_init(|| {
        Runtime::load(&resolve_ort_lib(None, &EpChoice::Listed(vec![EpKind::Cpu])))
            .expect("ONNX Runtime loads")
    });
    let session = SessionConfig {
        intra_threads: 1,
        ..Default::default()
    };
    Detector::load(rt, &model(), &session).expect("model loads")
}

/// A pipeline writing JSONL + annotated MP4 into `out`: padded batches of `batch`, one
/// stream, one decoder thread, queues of 2, no random delays.
pub fn pipeline_config(
    inputs: Vec<PathBuf>,
    out: &Path,
    batch: usize,
) -> vidinfer::pipeline::PipelineConfig {
    use vidinfer::{
        decode::DecodeOptions,
        labels::Labels,
        pipeline::PipelineConfig,
        sink::{SinkConfig, VideoSettings},
    };
    let defaults = PipelineConfig::default();
    PipelineConfig {
        inputs,
        batch,
        share_decode_threads: false,
        decode: DecodeOptions {
            threads: 1,
            ..Default::default()
        },
        sinks: SinkConfig {
            out_dir: out.to_path_buf(),
            labels: std::sync::Arc::new(Labels::parse("0 person\n").unwrap()),
            video: VideoSettings {
                preset: "ultrafast".into(),
                tune: String::new(),
                crf: 30,
                threads: 1,
            },
            ..defaults.sinks.clone()
        },
        queue_capacity: 2,
        ..defaults
    }
}
