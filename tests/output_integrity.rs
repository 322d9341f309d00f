//! Outputs that cannot be confused, lost or stale: names that are unique per input and stable
//! across runs and processes, done markers that mean done, one writer per input, SIGTERM
//! finalising like Ctrl-C, odd file names, text files with a byte-order mark.

mod common;
use common::*;
use std::{
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

fn detect(out: &Path, inputs: &[&Path], extra: &[&str]) -> Output {
    let mut c = Command::new(bin());
    c.arg("detect").args(inputs).arg("--out").arg(out);
    c.args(["--model", model().to_str().unwrap(), "--no-progress"]);
    c.args(extra).env("RUST_BACKTRACE", "0");
    c.output().expect("run vidinfer")
}

/// `a/clip.mp4` and `b/clip.mp4` (different lengths, so their outputs differ) and
/// `c/clip-2.mp4`, the name de-duplication used to hand to `b`.
fn same_named_clips(dir: &Path) -> [PathBuf; 3] {
    let mk = |sub: &str, name: &str, frames: u32| {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
        let src = "testsrc2=size=160x120:rate=25";
        lavfi_clip(&dir.join(sub), name, src, frames, &["-pix_fmt", "yuv420p"])
    };
    [
        mk("a", "clip.mp4", 12),
        mk("b", "clip.mp4", 17),
        mk("c", "clip-2.mp4", 9),
    ]
}

/// Output stems in `out` whose JSONL exists, with their line counts.
fn jsonl_lines(out: &Path) -> Vec<(String, usize)> {
    let mut v: Vec<(String, usize)> = std::fs::read_dir(out)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.strip_suffix(".jsonl")?.to_string();
            Some((stem, read_jsonl(&e.path()).len()))
        })
        .collect();
    v.sort();
    v
}

#[test]
#[ignore = "needs tools/setup"]
fn same_names_in_different_folders_never_share_outputs() {
    require_model(&[]);
    let dir = scratch("integrity-names");
    let [a, b, c] = same_named_clips(&dir);
    let out = dir.join("out");
    let o = detect(&out, &[&a, &b, &c], &["--outputs", "jsonl"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = jsonl_lines(&out);
    assert_eq!(lines.len(), 3, "{lines:?}");
    let counts: Vec<usize> = lines.iter().map(|l| l.1).collect();
    for n in [12, 17, 9] {
        assert!(counts.contains(&n), "an output with {n} frames: {lines:?}");
    }
    // Run b alone into the same folder: it is done (its own marker), not mistaken for a.
    let o = detect(&out, &[&b], &["--outputs", "jsonl"]);
    assert!(stderr(&o).contains("already done"), "{}", stderr(&o));
    assert_eq!(jsonl_lines(&out), lines, "nothing rewritten or renamed");
}

#[test]
#[ignore = "needs tools/setup"]
fn a_later_run_of_another_same_named_input_gets_its_own_outputs() {
    require_model(&[]);
    let dir = scratch("integrity-later");
    let [a, b, _] = same_named_clips(&dir);
    let out = dir.join("out");
    assert!(detect(&out, &[&a], &["--outputs", "jsonl"])
        .status
        .success());
    let o = detect(&out, &[&b], &["--outputs", "jsonl"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("already done"), "b is not a: {err}");
    let lines = jsonl_lines(&out);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        read_jsonl(&out.join("clip.jsonl")).len(),
        12,
        "a's results intact"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn a_marker_is_honoured_only_while_input_and_outputs_are_what_it_says() {
    require_model(&[]);
    let dir = scratch("integrity-stale");
    let [a, b, _] = same_named_clips(&dir);
    let out = dir.join("out");
    assert!(detect(&out, &[&a], &["--outputs", "jsonl"])
        .status
        .success());
    // The input replaced by another video under the same name.
    std::fs::copy(&b, &a).unwrap();
    let o = detect(&out, &[&a], &["--outputs", "jsonl"]);
    assert!(
        stderr(&o).contains("redoing: the input changed"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read_jsonl(&out.join("clip.jsonl")).len(), 17);
    // The outputs deleted, the marker kept.
    std::fs::remove_file(out.join("clip.jsonl")).unwrap();
    let o = detect(&out, &[&a], &["--outputs", "jsonl"]);
    assert!(
        stderr(&o).contains("redoing: clip.jsonl is missing"),
        "{}",
        stderr(&o)
    );
    assert_eq!(read_jsonl(&out.join("clip.jsonl")).len(), 17);
    // Other outputs than last time: the old annotated video does not stay beside the new JSONL.
    assert!(detect(&out, &[&a], &["--outputs", "jsonl,mp4", "--force"])
        .status
        .success());
    assert!(out.join("clip.annotated.mp4").exists());
    assert!(detect(&out, &[&a], &["--outputs", "csv"]).status.success());
    assert!(out.join("clip.csv").exists());
    assert!(!out.join("clip.annotated.mp4").exists() && !out.join("clip.jsonl").exists());
    assert_no_partials(&out);
}

#[test]
#[ignore = "needs tools/setup"]
fn file_names_that_are_not_utf8_work() {
    require_model(&[]);
    let dir = scratch("integrity-bytes");
    let [a, ..] = same_named_clips(&dir);
    let odd = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9 \x01clip.mp4"));
    std::fs::copy(&a, &odd).unwrap();
    let out = dir.join("out");
    let o = detect(&out, &[&odd], &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines = jsonl_lines(&out);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].1, 12);
    let mp4 = out.join(format!("{}.annotated.mp4", lines[0].0));
    assert_eq!(ffprobe_frames(&mp4), 12);
}

#[test]
#[ignore = "needs tools/setup"]
fn problems_known_before_decoding_are_reported_before_decoding() {
    require_model(&[]);
    let dir = scratch("integrity-early");
    let [a, ..] = same_named_clips(&dir);
    let blocker = dir.join("file");
    std::fs::write(&blocker, "x").unwrap();
    let o = detect(&blocker.join("out"), &[&a], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot write"), "{}", stderr(&o));
    assert!(
        !stderr(&o).contains("frames"),
        "nothing was decoded: {}",
        stderr(&o)
    );
    let o = detect(&dir.join("out"), &[&a], &["--video-preset", "warp"]);
    assert_eq!(o.status.code(), Some(2));
    let o = detect(&dir.join("out"), &[&a], &["--threads", "10000"]);
    assert_eq!(o.status.code(), Some(2));
    let o = detect(&dir.join("out"), &[&a], &["--threads", "200"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("per core"), "{}", stderr(&o));
    let o = detect(&dir.join("out"), &[&a], &["--queue", "100000"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
#[ignore = "needs tools/setup"]
fn padding_a_short_clip_costs_no_more_than_running_it_unpadded() {
    require_model(&[]);
    let dir = scratch("integrity-pad");
    let [a, ..] = same_named_clips(&dir);
    let rss = |extra: &[&str], name: &str| {
        let summary = dir.join(format!("{name}.json"));
        let mut args = vec!["--batch", "256", "--outputs", "jsonl", "--force"];
        args.extend(extra);
        args.extend(["--summary-json", summary.to_str().unwrap()]);
        let o = detect(&dir.join(name), &[&a], &args);
        assert!(o.status.success(), "{}", stderr(&o));
        let j: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        assert_eq!(j["frames"], 12);
        j["peak_rss_kib"].as_f64().unwrap()
    };
    let (padded, unpadded) = (rss(&[], "pad"), rss(&["--no-pad"], "nopad"));
    assert!(
        padded <= unpadded * 1.15,
        "padded peak RSS {padded} KiB vs unpadded {unpadded} KiB"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn sigterm_finalises_like_ctrl_c_and_exits_143() {
    require_model(&[&vtest()]);
    let dir = scratch("integrity-sigterm");
    let out = dir.join("out");
    let child = Command::new(bin())
        .arg("detect")
        .arg(vtest())
        .args([
            "--model",
            model().to_str().unwrap(),
            "--no-progress",
            "--realtime",
        ])
        .arg("--out")
        .arg(&out)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // --realtime: about 10 frames a second, so the run is mid-way for sure.
    std::thread::sleep(std::time::Duration::from_secs(3));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(143), "{err}");
    assert!(err.contains("stopped early"), "{err}");
    let rows = read_jsonl(&out.join("vtest.jsonl"));
    assert!(!rows.is_empty() && rows.len() < 795, "{} rows", rows.len());
    assert_eq!(
        ffprobe_frames(&out.join("vtest.annotated.mp4")),
        rows.len() as u64
    );
    assert!(!out.join("vtest.done").exists(), "a cut input is not done");
    assert_no_partials(&out);
}

#[test]
#[ignore = "needs tools/setup"]
fn a_manifest_and_labels_saved_with_a_bom_and_crlf_work() {
    require_model(&[]);
    let dir = scratch("integrity-bom");
    let [a, b, _] = same_named_clips(&dir);
    let list = dir.join("list.txt");
    let text = format!(
        "\u{feff}{}\r\n# comment\r\n{}\r\n",
        a.display(),
        b.display()
    );
    std::fs::write(&list, text).unwrap();
    let labels = dir.join("labels.txt");
    std::fs::write(&labels, "\u{feff}0 person\r\n1 bicycle\r\n").unwrap();
    let out = dir.join("out");
    let list_arg = list.to_str().unwrap();
    let o = detect(
        &out,
        &[],
        &[
            "--inputs-from",
            list_arg,
            "--labels",
            labels.to_str().unwrap(),
            "--outputs",
            "jsonl",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 of 2 inputs ok"), "{}", stderr(&o));
}

#[test]
#[ignore = "needs tools/setup"]
fn a_second_process_on_the_same_input_skips_it_cleanly() {
    require_model(&[&vtest()]);
    let dir = scratch("integrity-two");
    let out = dir.join("out");
    let args = |c: &mut Command| {
        c.arg("detect").arg(vtest()).arg("--out").arg(&out);
        c.args([
            "--model",
            model().to_str().unwrap(),
            "--no-progress",
            "--max-frames",
            "150",
        ]);
        c.args(["--outputs", "jsonl", "--realtime"]);
    };
    let mut first = Command::new(bin());
    args(&mut first);
    let first = first.stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut second = Command::new(bin());
    args(&mut second);
    let o = second.output().unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("skipped: another vidinfer process"), "{err}");
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success());
    assert_eq!(read_jsonl(&out.join("vtest.jsonl")).len(), 150);
    assert_no_partials(&out);
}

/// Three processes over overlapping lists (same names in different folders among them),
/// twice: exactly one complete, correct output set per input, and nothing redone.
#[test]
#[ignore = "needs tools/setup"]
fn three_processes_on_overlapping_inputs_make_one_correct_output_set_each() {
    require_model(&[]);
    let dir = scratch("integrity-three");
    let [a, b, c] = same_named_clips(&dir);
    let d = lavfi_clip(
        &dir,
        "d.mp4",
        "testsrc2=size=128x96:rate=25",
        14,
        &["-pix_fmt", "yuv420p"],
    );
    let lists: [Vec<&Path>; 3] = [vec![&a, &b, &c], vec![&b, &c, &d], vec![&d, &a, &b]];
    let out = dir.join("out");
    for round in 0..2 {
        let children: Vec<_> = lists
            .iter()
            .map(|l| {
                let mut cmd = Command::new(bin());
                cmd.arg("detect").args(l).arg("--out").arg(&out);
                cmd.args(["--model", model().to_str().unwrap(), "--no-progress"]);
                cmd.args(["--outputs", "jsonl,csv", "--workers", "1", "--threads", "1"]);
                cmd.stderr(Stdio::piped()).spawn().unwrap()
            })
            .collect();
        for ch in children {
            let o = ch.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "round {round}: {err}");
            if round == 1 {
                assert!(!err.contains(" frames, "), "round 2 redid something: {err}");
            }
        }
    }
    assert_no_partials(&out);
    // Each input alone, into its own folder: the reference for its outputs.
    let mut expected = Vec::new();
    for (i, p) in [&a, &b, &c, &d].iter().enumerate() {
        let solo = dir.join(format!("solo{i}"));
        let o = detect(
            &solo,
            &[p],
            &["--outputs", "jsonl,csv", "--workers", "1", "--threads", "1"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        let (stem, _) = jsonl_lines(&solo).remove(0);
        expected.push(std::fs::read(solo.join(format!("{stem}.jsonl"))).unwrap());
    }
    let got: Vec<Vec<u8>> = jsonl_lines(&out)
        .iter()
        .map(|(stem, _)| std::fs::read(out.join(format!("{stem}.jsonl"))).unwrap())
        .collect();
    assert_eq!(got.len(), 4, "one output set per input");
    for e in &expected {
        assert_eq!(
            got.iter().filter(|g| *g == e).count(),
            1,
            "each input's JSONL exactly once"
        );
    }
    let dones = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".done"))
        .count();
    assert_eq!(dones, 4);
}
