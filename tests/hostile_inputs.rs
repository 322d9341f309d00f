//! Inputs that used to break a run (issue 25), each made here as a new user would make it:
//! a video whose name is an output's (its output renamed over it), a named pipe, a finite
//! file from a plain HTTP server, a file cut in the middle of a GOP, an MP4 whose edit list
//! trims frames, and a picture wider than x264 encodes.

mod common;
use common::{servers::*, *};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// A small H.264 MPEG-TS clip of `frames` frames at 10 fps.
fn ts_clip(dir: &Path, name: &str, frames: u32) -> PathBuf {
    let opts = [
        "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", "10", "-bf", "0", "-f", "mpegts",
    ];
    lavfi_clip(dir, name, "testsrc2=size=160x120:rate=10", frames, &opts)
}

fn detect_cmd(inputs: &[&Path], out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.arg("detect").args(inputs).arg("--out").arg(out);
    c.arg("--model").arg(model()).arg("--no-progress");
    c.args(extra).env("RUST_BACKTRACE", "0");
    c
}

fn summary(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).expect("summary JSON")
}

/// Lines ffprobe prints for the first video stream's `entries` (`-v quiet`: a cut file's
/// decoding errors are not wanted), empty ones left out.
/// `detect INPUT --outputs OUTPUTS --summary-json DIR/summary.json` in `dir` (outputs in
/// `dir/out`): the run and where its summary is.
fn detect_with_summary(dir: &Path, input: &Path, outputs: &str) -> (Output, PathBuf) {
    let sum = dir.join("summary.json");
    let extra = [
        "--outputs",
        outputs,
        "--summary-json",
        sum.to_str().unwrap(),
    ];
    (detect_in(dir, &[input], &extra), sum)
}

fn ffprobe_lines(path: &Path, entries: &str, extra: &[&str]) -> Vec<String> {
    let o = Command::new("ffprobe")
        .args(["-v", "quiet", "-select_streams", "v:0"])
        .args(extra)
        .args(["-show_entries", entries, "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe is installed");
    assert!(o.status.success(), "ffprobe {}", path.display());
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| l.trim().trim_end_matches(',').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// The presentation times of the frames ffprobe decodes, from the stream's start_time.
fn ffprobe_times_from_start(path: &Path) -> Vec<f64> {
    let start: f64 = ffprobe_lines(path, "stream=start_time", &[])[0]
        .parse()
        .unwrap();
    ffprobe_lines(path, "frame=pts_time", &[])
        .iter()
        .map(|t| t.parse::<f64>().unwrap() - start)
        .collect()
}

/// (pts of each frame line, event lines) of a JSONL file.
fn jsonl_times_and_events(path: &Path) -> (Vec<f64>, Vec<serde_json::Value>) {
    let (mut pts, mut events) = (Vec::new(), Vec::new());
    for l in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v.get("event").is_some() {
            events.push(v);
        } else {
            pts.push(v["pts"].as_f64().unwrap());
        }
    }
    (pts, events)
}

fn assert_times(ours: &[f64], theirs: &[f64]) {
    assert_eq!(ours.len(), theirs.len(), "{ours:?} vs {theirs:?}");
    for (a, b) in ours.iter().zip(theirs) {
        assert!((a - b).abs() < 1e-3, "{ours:?} vs {theirs:?}");
    }
}

fn sha(path: &Path) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(std::fs::read(path).unwrap()).to_vec()
}

/// Case 1: every output kind, its done marker, a temporary file and a lock, each named so
/// that it would be an input (the same file, a hard link, a symbolic link to one). The
/// inputs keep their bytes, and each still gets its outputs under another name.
#[test]
#[ignore = "needs tools/setup"]
fn no_output_is_written_over_an_input() {
    require_model(&[]);
    let dir = scratch("over-input");
    let d: &Path = &dir;
    let clip = ts_clip(d, "source.ts", 5);
    let copy = |name: &str| {
        let p = d.join(name);
        std::fs::copy(&clip, &p).unwrap();
        p
    };
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    std::fs::create_dir_all(d.join(".vidinfer")).unwrap();
    let real = copy("elsewhere/real.ts");
    let y = copy("y.mp4");
    // y's annotated MP4 would be a hard link to y; t's tracks file a link to another input.
    std::fs::hard_link(&y, d.join("y.annotated.mp4")).unwrap();
    std::os::unix::fs::symlink(&real, d.join("t.tracks.jsonl")).unwrap();
    let inputs: Vec<PathBuf> = vec![
        copy("clip.jsonl"),
        copy("x.mp4"),
        copy("x.csv"),
        y,
        copy("t.mp4"),
        real,
        copy("w.mp4"),
        copy("w.done"),
        copy("v.mp4"),
        copy("v.jsonl.4242.partial"),
        copy("u.mp4"),
        copy(".vidinfer/u.lock"),
    ];
    let before: BTreeMap<PathBuf, Vec<u8>> = inputs.iter().map(|p| (p.clone(), sha(p))).collect();
    let refs: Vec<&Path> = inputs.iter().map(PathBuf::as_path).collect();
    let sum = dir.join("summary.json");
    let extra = ["--outputs", "jsonl,csv,mp4", "--track", "--summary-json"];
    let mut c = detect_cmd(&refs, d, &extra);
    let o = output_timeout(c.arg(&sum), RUN_TIMEOUT);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    for (p, h) in &before {
        assert_eq!(&sha(p), h, "{} was written over: {err}", p.display());
    }
    let s = summary(&sum);
    let reports = s["inputs"].as_array().unwrap();
    assert_eq!(reports.len(), inputs.len());
    for r in reports {
        let outputs: Vec<&str> = r["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert_eq!(outputs.len(), 4, "{r}");
        let jsonl = outputs.iter().find(|o| o.ends_with(".jsonl")).unwrap();
        assert_eq!(read_jsonl(Path::new(jsonl)).len(), 5, "{r}");
        for out in &outputs {
            assert!(!before.contains_key(Path::new(out)), "{out} is an input");
        }
    }
    // Another run gives every input the same names: all done, nothing redone or written.
    let o = output_timeout(&mut detect_cmd(&refs, d, &extra[..3]), RUN_TIMEOUT);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("already done").count(), inputs.len(), "{err}");
    // Names the user gives are refused before anything is decoded (exit 2): `y` (its MP4
    // would be y's hard link), a summary over the input.
    let y = d.join("y.mp4");
    let o = output_timeout(&mut detect_cmd(&[&y], d, &["--name", "y"]), RUN_TIMEOUT);
    expect_failure(&o, 2, "would replace");
    let mut c = detect_cmd(&[&y], &d.join("out"), &["--summary-json"]);
    let o = output_timeout(c.arg(d.join("y.annotated.mp4")), RUN_TIMEOUT);
    expect_failure(&o, 2, "would replace an input");
    for (p, h) in &before {
        assert_eq!(&sha(p), h, "{} was written over", p.display());
    }
}

/// A named pipe, `live.ts`, in a fresh scratch folder.
fn fifo_in(name: &str) -> (Scratch, PathBuf) {
    let dir = scratch(name);
    let fifo = dir.join("live.ts");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    (dir, fifo)
}

/// `sh -c '{ cat CLIP; <tail>; } > FIFO'`, CLIP a 30-frame TS clip made in `dir`, in its own
/// process group, so that killing the group ends a `sleep` holding the pipe open too.
fn fifo_writer(dir: &Path, fifo: &Path, tail: &str) -> std::process::Child {
    use std::os::unix::process::CommandExt;
    let clip = ts_clip(dir, "stream.ts", 30);
    let script = format!(
        "{{ cat '{}'{tail}; }} > '{}'",
        clip.display(),
        fifo.display()
    );
    let mut c = Command::new("sh");
    c.args(["-c", &script]).process_group(0);
    c.spawn().unwrap()
}

const ONE_AT_A_TIME: [&str; 6] = [
    "--outputs",
    "jsonl",
    "--batch",
    "1",
    "--decode-threads",
    "1",
];

/// Lines written so far to the `.partial` files of `out`.
fn partial_lines(out: &Path) -> usize {
    std::fs::read_dir(out)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".partial"))
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .count()
        })
        .sum()
}

/// Case 2: a named pipe is a stream: read once to its end (no done marker). The writer
/// writes the whole stream and closes: every frame, outputs committed.
#[test]
#[ignore = "needs tools/setup"]
fn a_named_pipe_is_read_to_its_end() {
    require_model(&[]);
    let (dir, fifo) = fifo_in("fifo-whole");
    let mut w = fifo_writer(&dir, &fifo, "");
    let out = dir.join("whole");
    let o = output_timeout(&mut detect_cmd(&[&fifo], &out, &[]), RUN_TIMEOUT);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(wait_timeout(&mut w, Duration::from_secs(10)).is_some_and(|s| s.success()));
    assert_eq!(read_jsonl(&out.join("live.jsonl")).len(), 30);
    assert_eq!(ffprobe_frames(&out.join("live.annotated.mp4")), 30);
    assert!(
        !out.join("live.done").exists(),
        "a stream has no done marker"
    );
}

/// Case 2: the writer sends everything, then stays silent with the pipe open: the frames are
/// processed, and SIGTERM commits them.
#[test]
#[ignore = "needs tools/setup"]
fn sigterm_commits_what_a_silent_pipe_sent() {
    require_model(&[]);
    let (dir, fifo) = fifo_in("fifo-silent");
    let mut w = fifo_writer(&dir, &fifo, "; sleep 60");
    let out = dir.join("silent");
    let mut child = detect_cmd(&[&fifo], &out, &ONE_AT_A_TIME)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The TS demuxer holds the last frame until more data or the end comes.
    let seen = wait_until(Duration::from_secs(120), || {
        (partial_lines(&out) >= 25).then_some(())
    });
    assert!(seen.is_some(), "frames processed from the pipe");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let st = wait_timeout(&mut child, Duration::from_secs(60));
    // SAFETY: the group of our own child.
    unsafe { libc::kill(-(w.id() as i32), libc::SIGKILL) };
    let _ = w.wait();
    let err = {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut s);
        s
    };
    assert_eq!(st.and_then(|s| s.code()), Some(143), "{err}");
    assert!(read_jsonl(&out.join("live.jsonl")).len() >= 25, "{err}");
    assert!(err.contains("(interrupted)"), "{err}");
    assert_no_partials(&out);
}

/// Case 2: no writer at all: SIGTERM while vidinfer waits for one ends the run.
#[test]
#[ignore = "needs tools/setup"]
fn sigterm_while_waiting_for_a_pipe_writer_ends_the_run() {
    require_model(&[]);
    let (dir, fifo) = fifo_in("fifo-nobody");
    let out = dir.join("nobody");
    let mut child = detect_cmd(&[&fifo], &out, &ONE_AT_A_TIME)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let waiting = wait_until(Duration::from_secs(120), || {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
        fds.flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == fifo))
            .then_some(())
    });
    assert!(waiting.is_some(), "vidinfer opens the pipe");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let st = wait_timeout(&mut child, Duration::from_secs(60));
    assert_eq!(st.and_then(|s| s.code()), Some(143));
}

/// Case 3: a file from a server that sends its length and no byte ranges (like `python3 -m
/// http.server`) ends when it has been read: not a lost live source, not read again.
#[test]
#[ignore = "needs tools/setup"]
fn a_finite_http_response_ends_the_input() {
    require_model(&[]);
    let dir = scratch("http-finite");
    let clip = ts_clip(&dir, "stream.ts", 30);
    let srv = HttpServer::start(
        &clip,
        HttpOpts {
            no_range: true,
            max_seconds: 300,
            ..HttpOpts::default()
        },
    );
    for (run, extra) in [("plain", &[][..]), ("forced", &["--reconnect"][..])] {
        let out = dir.join(run);
        let url = srv.file_url();
        let mut c = Command::new(bin());
        c.args([
            "detect",
            &url,
            "--outputs",
            "jsonl",
            "--no-progress",
            "--model",
        ])
        .arg(model())
        .arg("--out")
        .arg(&out)
        .args(extra);
        let o = output_timeout(&mut c, RUN_TIMEOUT);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "{run}: {err}");
        assert!(!err.contains("reconnecting"), "{run}: {err}");
        let jsonl = out.join(format!("127.0.0.1_{}_stream.ts.jsonl", srv.port()));
        assert_eq!(read_jsonl(&jsonl).len(), 30, "{run}: {err}");
    }
    assert_eq!(
        srv.requests().len(),
        2,
        "one request a run: {:#?}",
        srv.requests()
    );
}

/// Case 4: a file cut in the middle of a GOP. Its frames keep their times from the stream's
/// start (ffprobe's start_time), and the packets before the first keyframe are reported:
/// in the summary, `--summary-json` and a JSONL event with their time span.
#[test]
#[ignore = "needs tools/setup"]
fn a_file_cut_mid_gop_keeps_its_times_and_reports_what_did_not_decode() {
    require_model(&[]);
    let dir = scratch("mid-gop");
    let opts = [
        "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", "50", "-bf", "0",
    ];
    let full = lavfi_clip(&dir, "full.ts", "testsrc2=size=320x240:rate=10", 100, &opts);
    let cut = dir.join("cut.ts");
    // Output seeking with stream copy and -copyinkf: the file starts at 2.1 s with the
    // P-frames before the keyframe at 5 s.
    let args = ["-i", full.to_str().unwrap(), "-ss", "2.1", "-c", "copy"];
    ffmpeg(args.iter().chain(&["-copyinkf", cut.to_str().unwrap()]));
    let counts = ffprobe_lines(
        &cut,
        "stream=nb_read_packets,nb_read_frames",
        &["-count_packets", "-count_frames"],
    );
    let (frames, packets): (u64, u64) = {
        let v: Vec<u64> = counts[0].split(',').map(|n| n.parse().unwrap()).collect();
        (v[0], v[1])
    };
    let lost = packets - frames;
    assert!(
        lost > 10,
        "the cut starts mid-GOP: {packets} packets, {frames} frames"
    );
    let theirs = ffprobe_times_from_start(&cut);
    assert!(theirs[0] > 2.0, "{theirs:?}");

    let (o, sum) = detect_with_summary(&dir, &cut, "jsonl");
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let (ours, events) = jsonl_times_and_events(&dir.join("out/cut.jsonl"));
    assert_times(&ours, &theirs);
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["event"], "undecodable");
    assert_eq!(e["packets"].as_u64(), Some(lost));
    assert!(e["from_pts"].as_f64().unwrap().abs() < 1e-3, "{e}");
    assert!(
        (e["to_pts"].as_f64().unwrap() - (theirs[0] - 0.1)).abs() < 1e-3,
        "{e}"
    );
    let first = std::fs::read_to_string(dir.join("out/cut.jsonl")).unwrap();
    assert!(
        first.starts_with("{\"event\""),
        "the event comes before the frames"
    );
    let r = &summary(&sum)["inputs"][0];
    assert_eq!(r["undecodable_packets"].as_u64(), Some(lost), "{r}");
    assert_eq!(r["undecodable_leading_packets"].as_u64(), Some(lost), "{r}");
    assert!(
        err.contains(&format!("{lost} packets gave no frame")),
        "{err}"
    );
}

/// Case 5: an MP4 whose edit list trims its first 21 frames: every frame it presents is
/// processed, with its time, and no loss is reported.
#[test]
#[ignore = "needs tools/setup"]
fn an_edit_list_is_not_a_loss() {
    require_model(&[]);
    let dir = scratch("edit-list");
    let opts = [
        "-pix_fmt", "yuv420p", "-c:v", "libx264", "-g", "50", "-bf", "0",
    ];
    let full = lavfi_clip(
        &dir,
        "full.mp4",
        "testsrc2=size=320x240:rate=10",
        100,
        &opts,
    );
    let edit = dir.join("edit.mp4");
    // Input seeking with stream copy keeps the GOP from 0 s and writes an edit list that
    // starts at 2.1 s.
    let args = ["-ss", "2.1", "-i", full.to_str().unwrap(), "-c", "copy"];
    ffmpeg(args.iter().chain(&[edit.to_str().unwrap()]));
    assert_eq!(ffprobe_field(&edit, "nb_frames"), "100");
    let presented = ffprobe_frames(&edit);
    assert_eq!(presented, 79);

    let (o, sum) = detect_with_summary(&dir, &edit, "jsonl");
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("frames the container lists"), "{err}");
    assert!(!err.contains("gave no frame"), "{err}");
    let (ours, events) = jsonl_times_and_events(&dir.join("out/edit.jsonl"));
    assert!(events.is_empty(), "{events:?}");
    assert_times(&ours, &ffprobe_times_from_start(&edit));
    let r = &summary(&sum)["inputs"][0];
    assert_eq!(r["expected_frames"].as_u64(), Some(presented), "{r}");
    assert_eq!(r["frames"].as_u64(), Some(presented), "{r}");
}

/// Case 6: a 17000x64 panorama, wider than x264 encodes: the annotated MP4 is scaled down to
/// fit (16384x62) and says so; every output is written, the input succeeds.
#[test]
#[ignore = "needs tools/setup"]
fn a_picture_too_wide_for_h264_gets_a_scaled_video_and_all_its_outputs() {
    require_model(&[]);
    let dir = scratch("panorama");
    let pano = lavfi_clip(&dir, "pano.png", "testsrc2=size=17000x64:rate=1", 1, &[]);
    let (o, sum) = detect_with_summary(&dir, &pano, "jsonl,csv,mp4");
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("annotated MP4 scaled down to 16384x62"),
        "{err}"
    );
    let out = dir.join("out");
    assert_eq!(read_jsonl(&out.join("pano.jsonl")).len(), 1);
    assert!(out.join("pano.csv").exists() && out.join("pano.done").exists());
    let mp4 = out.join("pano.annotated.mp4");
    assert_eq!(ffprobe_frames(&mp4), 1);
    assert_eq!(ffprobe_field(&mp4, "width"), "16384");
    assert_eq!(ffprobe_field(&mp4, "height"), "62");
    let r = &summary(&sum)["inputs"][0];
    assert_eq!(
        r["annotated_scaled_to"],
        serde_json::json!([16384, 62]),
        "{r}"
    );
}
