//! Live sources against real servers on 127.0.0.1 (tests/common/servers.rs): HTTP, RTSP
//! (GStreamer's server), MPEG-TS over TCP, standard input; reconnecting when a server drops,
//! giving up on one that stays away; frame selection (--stride); segments.

mod common;
use common::{servers::*, *};
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Duration,
};

/// A 5 s H.264 cut of vtest (50 frames), what the real-time servers send.
fn clip5(dir: &Path) -> PathBuf {
    require_model(&[&vtest()]);
    h264_clip(&vtest(), 5.0, &dir.join("clip5.mp4"))
}

fn detect_cmd(input: &str, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["detect", input, "--out"]).arg(out);
    c.args([
        "--model",
        model().to_str().unwrap(),
        "--no-progress",
        "--outputs",
        "jsonl",
    ]);
    c.args(extra).env("RUST_BACKTRACE", "0");
    c
}

/// Runs detect (bounded in time) and returns its JSONL rows and its stderr.
fn detect_rows(input: &str, out: &Path, extra: &[&str]) -> (Vec<(u64, Vec<Det>)>, String) {
    let o = output_timeout(&mut detect_cmd(input, out, extra), Duration::from_secs(120));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    (read_jsonl(&only_jsonl(out)), err)
}

fn only_jsonl(out: &Path) -> PathBuf {
    let mut v: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(v.len(), 1, "{v:?}");
    v.remove(0)
}

/// Event lines of a JSONL file.
fn events(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"event\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Same frames, same detections (class, box within a pixel, score within 1e-4).
fn assert_same_rows(a: &[(u64, Vec<Det>)], b: &[(u64, Vec<Det>)]) {
    assert_eq!(a.len(), b.len());
    for ((fa, x), (fb, y)) in a.iter().zip(b) {
        assert_eq!(fa, fb);
        assert_eq!(x.len(), y.len(), "frame {fa}");
        for (p, q) in x.iter().zip(y) {
            assert_eq!(p.class_id, q.class_id, "frame {fa}");
            assert!((p.score - q.score).abs() < 1e-4, "frame {fa}: {p:?} {q:?}");
            assert!(
                p.b.iter().zip(&q.b).all(|(s, t)| (s - t).abs() < 1.0),
                "frame {fa}"
            );
        }
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn http_gives_what_the_file_gives() {
    require_model(&[&vtest()]);
    let dir = scratch("live-http");
    let srv = HttpServer::start(&vtest(), HttpOpts::default());
    let (file, _) = detect_rows(
        vtest().to_str().unwrap(),
        &dir.join("file"),
        &["--max-frames", "200"],
    );
    let (http, _) = detect_rows(&srv.file_url(), &dir.join("http"), &["--max-frames", "200"]);
    assert_eq!(file.len(), 200);
    assert_same_rows(&file, &http);
    let name = only_jsonl(&dir.join("http"));
    assert!(
        name.ends_with(format!("127.0.0.1_{}_vtest.avi.jsonl", srv.port())),
        "{name:?}"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn rtsp_tcp_and_stdin_give_the_clips_frames_and_detections() {
    let dir = scratch("live-rtsp");
    let clip = clip5(&dir);
    let (file, _) = detect_rows(clip.to_str().unwrap(), &dir.join("file"), &[]);
    assert_eq!(file.len(), 50);
    let rtsp = RtspServer::start(&clip, RtspOpts::default());
    let (rows, _) = detect_rows(&rtsp.url(), &dir.join("rtsp"), &["--no-reconnect"]);
    // RTSP delivers what it delivers (over TCP: everything); each delivered frame's
    // detections are the file's.
    assert!(rows.len() >= 48, "{} frames over RTSP", rows.len());
    assert_same_rows(&file[..rows.len()], &rows);
    let ts = TsServer::tcp(&clip, true);
    let (rows, _) = detect_rows(&ts.url(), &dir.join("tcp"), &["--no-reconnect"]);
    assert_same_rows(&file, &rows);
    let mut consumer = detect_cmd("-", &dir.join("stdin"), &[]);
    consumer.stderr(Stdio::piped());
    let (producer, o) = pipe_into(ffmpeg_mpegts_to_stdout(&clip, false, false), consumer)
        .wait_output(Duration::from_secs(120));
    assert!(producer.is_some_and(|s| s.success()) && o.status.success());
    let rows = read_jsonl(&dir.join("stdin/stdin.jsonl"));
    assert_same_rows(&file, &rows);
}

/// The server dies mid-stream and comes back: vidinfer reconnects, says so once, frame
/// numbers and timestamps go on, and the JSONL records the gap.
#[test]
#[ignore = "needs tools/setup"]
fn a_dropped_rtsp_source_is_reconnected_and_the_gap_recorded() {
    let dir = scratch("live-reconnect");
    let clip = clip5(&dir);
    let mut rtsp = RtspServer::start(&clip, RtspOpts::default());
    let out = dir.join("out");
    let mut child = detect_cmd(
        &rtsp.url(),
        &out,
        &["--duration", "7", "--reconnect-max-s", "20"],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    rtsp.kill();
    std::thread::sleep(Duration::from_secs(1));
    rtsp.restart();
    assert!(wait_timeout(&mut child, Duration::from_secs(60)).is_some_and(|s| s.success()));
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("reconnecting for up to").count(), 1, "{err}");
    let jsonl = only_jsonl(&out);
    let ev = events(&jsonl);
    let reconnected: Vec<_> = ev.iter().filter(|e| e["event"] == "reconnected").collect();
    assert_eq!(reconnected.len(), 1, "{ev:?}");
    assert!(reconnected[0]["gap_s"].as_f64().unwrap() > 0.5);
    let rows = read_jsonl_frames(&jsonl);
    let frames: Vec<u64> = rows.iter().map(|r| r.0).collect();
    assert!(
        frames.windows(2).all(|w| w[0] < w[1]),
        "frame numbers go on: {frames:?}"
    );
    let pts: Vec<f64> = rows.iter().map(|r| r.1).collect();
    assert!(
        pts.windows(2).all(|w| w[0] < w[1]),
        "timestamps go on: {pts:?}"
    );
    // --duration counts stream time, the gap included: frames on both sides of it, none
    // past 7 s.
    let after = reconnected[0]["after_frame"].as_u64().unwrap();
    assert!(frames.iter().any(|&f| f > after) && after > 5, "{frames:?}");
    assert!(*pts.last().unwrap() < 7.0, "{pts:?}");
}

/// (frame, pts) of each frame line.
fn read_jsonl_frames(path: &Path) -> Vec<(u64, f64)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("{\"frame\""))
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (v["frame"].as_u64().unwrap(), v["pts"].as_f64().unwrap())
        })
        .collect()
}

#[test]
#[ignore = "needs tools/setup"]
fn a_source_that_never_comes_back_ends_with_a_clear_error() {
    let dir = scratch("live-gone");
    let clip = clip5(&dir);
    let rtsp = RtspServer::start(&clip, RtspOpts::default());
    let out = dir.join("out");
    let mut child = detect_cmd(&rtsp.url(), &out, &["--reconnect-max-s", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    rtsp.kill();
    assert!(wait_timeout(&mut child, Duration::from_secs(60)).is_some());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("did not come back within"), "{err}");
    // What arrived before the outage is kept, complete.
    assert!(!read_jsonl_frames(&only_jsonl(&out)).is_empty());
}

/// `--stride 4` gives every 4th row of the stride-1 run, the same detections; the annotated
/// video keeps every frame.
#[test]
#[ignore = "needs tools/setup"]
fn stride_runs_every_nth_frame_and_the_video_keeps_all() {
    require_model(&[&vtest()]);
    let dir = scratch("live-stride");
    let all = ["--max-frames", "80"];
    let (one, _) = detect_rows(vtest().to_str().unwrap(), &dir.join("s1"), &all);
    let mut o = detect_cmd(vtest().to_str().unwrap(), &dir.join("s4"), &all);
    o.args(["--stride", "4", "--outputs", "jsonl,mp4"]);
    assert!(o.status().unwrap().success());
    let four = read_jsonl(&dir.join("s4/vtest.jsonl"));
    let every4: Vec<_> = one.iter().filter(|r| r.0 % 4 == 0).cloned().collect();
    assert_eq!(four.len(), 20);
    assert_same_rows(&every4, &four);
    assert_eq!(ffprobe_frames(&dir.join("s4/vtest.annotated.mp4")), 80);
}

/// `--segment-s` cuts the outputs into finished segments; `--start`/`--duration` select.
#[test]
#[ignore = "needs tools/setup"]
fn segments_and_a_time_window() {
    let dir = scratch("live-segments");
    let clip = clip5(&dir);
    let out = dir.join("out");
    let mut c = detect_cmd(
        clip.to_str().unwrap(),
        &out,
        &["--segment-s", "2", "--outputs", "jsonl,mp4"],
    );
    assert!(c.status().unwrap().success());
    let mut frames = 0;
    for (i, n) in [(1, 20u64), (2, 20), (3, 10)] {
        let jsonl = out.join(format!("clip5-{i:06}.jsonl"));
        let rows = read_jsonl(&jsonl);
        assert_eq!(rows.len() as u64, n, "{jsonl:?}");
        assert_eq!(
            ffprobe_frames(&out.join(format!("clip5-{i:06}.annotated.mp4"))),
            n
        );
        frames += n;
    }
    assert_eq!(frames, 50);
    assert_no_partials(&out);
    let (rows, _) = detect_rows(
        clip.to_str().unwrap(),
        &dir.join("window"),
        &["--start", "1", "--duration", "2"],
    );
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0].0, 0, "frames count from the start point");
}
