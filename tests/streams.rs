//! Many inputs at once (`--streams`): several inputs decoded side by side and batched together
//! give each input exactly what decoding them one after another gives, byte for byte, under
//! random stage delays; a corrupt input among healthy ones fails alone; a signal finalises
//! every open input; live sources stream side by side; `bench` sweeps the stream count.

mod common;
use common::{servers::*, *};
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{atomic::AtomicBool, Arc},
    time::Duration,
};

use vidinfer::pipeline::{self, PipelineConfig, RunReport};

/// Cuts of vtest (people walking) of different lengths, sizes and frame rates, so that the
/// streams run unevenly and end at different times.
fn people_clips(dir: &Path) -> Vec<(PathBuf, u64)> {
    let cuts = [
        ("a.mp4", "0", "23", "384x288", "10"),
        ("b.mp4", "9", "9", "320x240", "10"),
        ("c.mp4", "21", "31", "448x336", "12"),
        ("d.mp4", "40", "17", "384x288", "8"),
    ];
    cuts.iter()
        .map(|&(name, start, frames, size, rate)| {
            let out = dir.join(name);
            let v = vtest();
            ffmpeg([
                "-ss",
                start,
                "-i",
                v.to_str().unwrap(),
                "-frames:v",
                frames,
                "-vf",
                &format!("scale={size},fps={rate}"),
                "-pix_fmt",
                "yuv420p",
                out.to_str().unwrap(),
            ]);
            (out.clone(), ffprobe_frames(&out))
        })
        .collect()
}

/// JSONL + annotated MP4, padded batches of 4, small queues, random delays in every stage.
fn config(inputs: Vec<PathBuf>, out: &Path, streams: usize) -> PipelineConfig {
    PipelineConfig {
        settings: "streams test".into(),
        streams,
        jitter: Some(Duration::from_millis(3)),
        ..pipeline_config(inputs, out, 4)
    }
}

/// Runs the pipeline with three workers (batches finish out of order) and `streams` streams.
fn run_pipeline(inputs: &[PathBuf], out: &Path, streams: usize) -> RunReport {
    run_with(config(inputs.to_vec(), out, streams))
}

fn run_with(cfg: PipelineConfig) -> RunReport {
    let detectors = vec![cpu_detector(), cpu_detector(), cpu_detector()];
    pipeline::run(
        &cfg,
        detectors,
        Arc::new(AtomicBool::new(false)),
        &pipeline::Quiet,
    )
    .expect("pipeline runs")
}

#[test]
#[ignore = "needs tools/setup"]
fn four_streams_give_each_input_what_one_stream_gives_byte_for_byte_under_random_delays() {
    require_model(&[&vtest()]);
    let dir = scratch("streams-jitter");
    let clips = people_clips(&dir);
    let inputs: Vec<PathBuf> = clips.iter().map(|c| c.0.clone()).collect();
    let one = run_pipeline(&inputs, &dir.join("one"), 1);
    let four = run_pipeline(&inputs, &dir.join("four"), 4);
    // A push timeout keeps the preprocess thread and the streams' queues (the way live
    // sources go); without one, the four decoders fill the batches themselves.
    let queued = run_with(PipelineConfig {
        max_wait: Some(Duration::from_secs(3600)),
        ..config(inputs.clone(), &dir.join("queued"), 4)
    });
    assert_eq!(one.streams.len(), 1);
    assert_eq!(four.streams.len(), 4, "four decoders ran");
    assert_eq!(four.streams.iter().map(|s| s.inputs).sum::<u64>(), 4);
    assert!(four.streams.iter().all(|s| s.fills_batches));
    assert!(queued
        .streams
        .iter()
        .all(|s| !s.fills_batches && s.queue_capacity > 0));
    let total: u64 = clips.iter().map(|c| c.1).sum();
    for r in [&one, &four, &queued] {
        assert_eq!(r.failed(), 0, "{:?}", r.inputs);
        assert_eq!(r.frames, total);
        assert_eq!(r.frame_latency_ms.len() as u64, total);
    }
    let mut detections = 0;
    for (i, (path, n)) in clips.iter().enumerate() {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let a = std::fs::read(dir.join(format!("one/{stem}.jsonl"))).unwrap();
        let b = std::fs::read(dir.join(format!("four/{stem}.jsonl"))).unwrap();
        assert!(a == b, "{stem}: the JSONL differs between 1 and 4 streams");
        let c = std::fs::read(dir.join(format!("queued/{stem}.jsonl"))).unwrap();
        assert!(
            a == c,
            "{stem}: the JSONL differs between 1 and 4 queued streams"
        );
        let rows = read_jsonl(&dir.join(format!("four/{stem}.jsonl")));
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            (0..*n).collect::<Vec<_>>(),
            "{stem}: exactly frames 0..{n}, in order, each once"
        );
        detections += rows.iter().map(|r| r.1.len()).sum::<usize>();
        let video = dir.join(format!("four/{stem}.annotated.mp4"));
        assert_eq!(
            ffprobe_frames(&video),
            *n,
            "{stem}: every frame in its video"
        );
        assert!(
            dir.join(format!("four/{stem}.done")).is_file(),
            "{stem}: done"
        );
        assert_eq!(four.inputs[i].frames, *n, "reports stay in input order");
        assert_eq!(four.inputs[i].path, *path);
    }
    assert!(detections > 50, "people were detected ({detections})");
}

/// A clip whose index is fine but whose media data is cut off: it opens (its outputs are
/// opened) and then no frame decodes.
fn no_frames_clip(dir: &Path) -> PathBuf {
    let full = lavfi_clip(
        dir,
        "full.mp4",
        "testsrc2=size=160x120:rate=10",
        10,
        &["-pix_fmt", "yuv420p", "-movflags", "+faststart"],
    );
    let bytes = std::fs::read(full).unwrap();
    let mdat = bytes.windows(4).position(|w| w == b"mdat").expect("mdat") - 4;
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..mdat]).unwrap();
    cut
}

#[test]
#[ignore = "needs tools/setup"]
fn a_corrupt_input_among_healthy_ones_fails_alone_while_the_others_complete() {
    require_model(&[&vtest()]);
    let dir = scratch("streams-corrupt");
    let clips = people_clips(&dir);
    let cut = no_frames_clip(&dir);
    let garbage = dir.join("garbage.mp4");
    std::fs::write(&garbage, b"\x00\x00\x00\x18ftypisom".repeat(300)).unwrap();
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let healthy: Vec<String> = clips.iter().map(|c| p(&c.0)).collect();
    let mixed = [
        healthy[0].clone(),
        p(&cut),
        healthy[1].clone(),
        p(&garbage),
        healthy[2].clone(),
        healthy[3].clone(),
    ];
    let args = |inputs: &[String], out: &str, streams: &str| {
        let mut v: Vec<String> = inputs.to_vec();
        let out = dir.join(out);
        v.extend(
            [
                "--outputs",
                "jsonl,mp4",
                "--batch",
                "4",
                "--streams",
                streams,
            ]
            .map(String::from),
        );
        v.extend(["--out".into(), p(&out)]);
        v
    };
    let o = vidinfer()
        .arg("detect")
        .args(args(&healthy, "one", "1"))
        .args(["--model", model().to_str().unwrap(), "--no-progress"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = vidinfer()
        .arg("detect")
        .args(args(&mixed, "four", "4"))
        .args(["--model", model().to_str().unwrap(), "--no-progress"])
        .output()
        .unwrap();
    let err = expect_failure(&o, 1, "4 of 6 inputs ok");
    assert!(err.contains("no frame could be decoded"), "{err}");
    assert!(err.contains("garbage.mp4"), "{err}");
    let four = dir.join("four");
    for (path, n) in &clips {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let a = std::fs::read(dir.join(format!("one/{stem}.jsonl"))).unwrap();
        let b = std::fs::read(four.join(format!("{stem}.jsonl"))).unwrap();
        assert!(a == b, "{stem}: same JSONL as without the corrupt inputs");
        assert_eq!(
            read_jsonl(&four.join(format!("{stem}.jsonl"))).len() as u64,
            *n
        );
        assert!(four.join(format!("{stem}.done")).is_file());
    }
    let left = finished_outputs(&four);
    for bad in ["cut", "garbage"] {
        assert!(
            !left.iter().any(|f| f.starts_with(bad)),
            "no outputs for {bad}: {left:?}"
        );
    }
    assert_no_partials(&four);
}

/// Four clips long enough to be interrupted (about 40 s of inference on 2 cores).
fn long_clips(dir: &Path) -> Vec<PathBuf> {
    (0..4)
        .map(|i| {
            let out = dir.join(format!("long{i}.mp4"));
            let v = vtest();
            let start = (10 * i).to_string();
            ffmpeg([
                "-ss",
                &start,
                "-i",
                v.to_str().unwrap(),
                "-frames:v",
                "600",
                "-vf",
                "scale=384x288",
                "-pix_fmt",
                "yuv420p",
                out.to_str().unwrap(),
            ]);
            out
        })
        .collect()
}

#[test]
#[ignore = "needs tools/setup"]
fn sigterm_with_four_streams_finalises_every_open_input() {
    require_model(&[&vtest()]);
    let dir = scratch("streams-sigterm");
    let clips = long_clips(&dir);
    let out = dir.join("out");
    let mut child = Command::new(bin())
        .arg("detect")
        .args(&clips)
        .args(["--model", model().to_str().unwrap(), "--streams", "4"])
        .arg("--out")
        .arg(&out)
        .args(["--no-progress", "--outputs", "jsonl,mp4"])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vidinfer");
    // Every input's partial JSONL has frames: all four are open at once.
    let partial = |i: usize| out.join(format!("long{i}.jsonl.{}.partial", child.id()));
    let flowing = wait_until(Duration::from_secs(120), || {
        (0..4)
            .all(|i| std::fs::metadata(partial(i)).is_ok_and(|m| m.len() > 500))
            .then_some(())
    });
    if flowing.is_none() {
        let _ = child.kill();
        panic!("the four inputs did not all produce output within 120 s");
    }
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = wait_timeout(&mut child, Duration::from_secs(120)).expect("exits after SIGTERM");
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(status.code(), Some(143), "exit 143 after SIGTERM: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("4 cut short"), "{err}");
    for i in 0..4 {
        let rows = read_jsonl(&out.join(format!("long{i}.jsonl")));
        let n = rows.len() as u64;
        assert!(n > 0 && n < 600, "long{i}: cut short with {n} frames");
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>(),
            "long{i}: frames in order up to where it stopped"
        );
        let video = out.join(format!("long{i}.annotated.mp4"));
        assert_eq!(ffprobe_frames(&video), n, "long{i}: a playable video");
        assert!(
            !out.join(format!("long{i}.done")).exists(),
            "long{i}: not done"
        );
    }
    assert_no_partials(&out);
}

#[test]
#[ignore = "needs tools/setup"]
fn two_live_sources_and_a_file_stream_side_by_side() {
    require_model(&[&vtest()]);
    let dir = scratch("streams-live");
    let clip = h264_clip(&vtest(), 5.0, &dir.join("clip5.mp4"));
    let servers = [TsServer::tcp(&clip, true), TsServer::tcp(&clip, true)];
    let mut cmd = Command::new(bin());
    cmd.arg("detect")
        .args([&servers[0].url(), &servers[1].url()])
        .arg(&clip)
        .args(["--model", model().to_str().unwrap(), "--streams", "3"])
        .args(["--no-progress", "--outputs", "jsonl", "--no-reconnect"])
        .arg("--out")
        .arg(dir.join("out"))
        .env("RUST_BACKTRACE", "0");
    let o = output_timeout(&mut cmd, Duration::from_secs(120));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("3 of 3 inputs ok"), "{err}");
    let file = read_jsonl(&dir.join("out/clip5.jsonl"));
    assert_eq!(file.len(), 50);
    for s in &servers {
        let name = format!("127.0.0.1_{}", s.port());
        let jsonl = std::fs::read_dir(dir.join("out"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                let n = p.file_name().unwrap().to_string_lossy();
                n.starts_with(&name) && n.ends_with(".jsonl")
            })
            .expect("the live source's JSONL");
        let rows = read_jsonl(&jsonl);
        assert_eq!(
            rows.iter().map(|r| (r.0, r.1.len())).collect::<Vec<_>>(),
            file.iter().map(|r| (r.0, r.1.len())).collect::<Vec<_>>(),
            "{name}: every frame, the file's detections"
        );
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn bench_sweeps_streams_and_reports_memory_per_point() {
    require_model(&[&vtest()]);
    let dir = scratch("streams-bench");
    let json = dir.join("b.json");
    let o = vidinfer()
        .args(["bench", vtest().to_str().unwrap(), "--model"])
        .arg(model())
        .args([
            "--streams",
            "1,2",
            "--copies",
            "2",
            "--frames",
            "8",
            "--batch",
            "2",
        ])
        .args(["--repeat", "1", "--warmup", "1", "--out"])
        .arg(dir.join("out"))
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let points: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let streams: Vec<u64> = points
        .iter()
        .map(|p| p["streams"].as_u64().unwrap())
        .collect();
    assert_eq!(streams, [1, 2]);
    for p in &points {
        assert_eq!(p["inputs"], 2, "{p}");
        assert_eq!(p["frames"], 16, "8 frames of each copy: {p}");
        assert!(p["peak_rss_mib"].as_f64().unwrap() > 50.0, "{p}");
        assert!(p["e2e_fps"].as_f64().unwrap() > 0.0, "{p}");
    }
    // Each copy has its own outputs.
    let out = finished_outputs(&dir.join("out"));
    assert!(
        out.contains(&"vtest-1.jsonl".to_string()) && out.contains(&"vtest-2.jsonl".to_string()),
        "{out:?}"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn shards_each_decode_their_inputs_side_by_side_and_all_are_done_once() {
    require_model(&[]);
    let dir = scratch("streams-shards");
    let clips: Vec<(PathBuf, u32)> = (0..8u32)
        .map(|i| {
            let name = format!("clip{i}.mp4");
            let src = format!("testsrc2=size=96x64:rate={}", 5 + i);
            let clip = lavfi_clip(&dir, &name, &src, 4 + i, &["-pix_fmt", "yuv420p"]);
            (clip, 4 + i)
        })
        .collect();
    let list = dir.join("manifest.txt");
    let manifest: String = clips
        .iter()
        .map(|c| format!("{}\n", c.0.display()))
        .collect();
    std::fs::write(&list, manifest).unwrap();
    let out = dir.join("out");
    let shards: Vec<_> = (0..2)
        .map(|i| {
            Command::new(bin())
                .args(["detect", "--inputs-from", list.to_str().unwrap()])
                .args(["--shard-count", "2", "--shard-index", &i.to_string()])
                .args(["--streams", "3", "--outputs", "jsonl", "--no-progress"])
                .arg("--model")
                .arg(model())
                .arg("--out")
                .arg(&out)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in shards.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        let err = stderr(&o);
        assert!(o.status.success(), "shard {i}: {err}");
        assert!(err.contains("4 of 4 inputs ok, "), "shard {i}: {err}");
        assert!(
            err.contains("3 inputs decoded side by side"),
            "shard {i}: {err}"
        );
    }
    for (clip, n) in &clips {
        let stem = clip.file_stem().unwrap().to_str().unwrap();
        let rows = read_jsonl(&out.join(format!("{stem}.jsonl")));
        assert_eq!(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            (0..*n as u64).collect::<Vec<_>>(),
            "{stem}"
        );
        assert!(out.join(format!("{stem}.done")).is_file(), "{stem}");
    }
}

#[test]
fn streams_out_of_range_are_usage_errors() {
    for (args, needle) in [
        (&["detect", "x.mp4", "--streams", "0"][..], "--streams"),
        (&["detect", "x.mp4", "--streams", "65"][..], "--streams"),
        (&["bench", "x.mp4", "--streams", "1,99"][..], "--streams"),
    ] {
        expect_failure(&run(args), 2, needle);
    }
}
