//! `--track` and `--count-line` end to end on vtest (pedestrians on a walkway, 10 fps): the
//! ids in the JSONL and CSV, the tracks file, crossing events against the summary's counts,
//! --batch, --stride, several inputs (one after another and decoded side by side), --segment-s,
//! and bad count lines.

mod common;
use common::*;
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

/// A line across the walkway (vertical, at x = 330): people walking along it cross it.
const WALKWAY: &str = "330,170,330,330,walkway";
/// A line across the lawn path people walk down towards the camera on the right.
const LAWN: &str = "520,330,768,330,lawn";

/// Frames per run: 30 s of vtest, dozens of people.
const FRAMES: &str = "300";

fn lines(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// `detect` on `inputs` (the first [`FRAMES`] frames of each) with `outputs` and the summary,
/// `extra` added; into `dir/name/out`. Returns that directory and the summary.
fn run_in(
    dir: &Path,
    name: &str,
    inputs: &[&Path],
    outputs: &str,
    extra: &[&str],
) -> (std::path::PathBuf, Value) {
    let summary = dir.join(format!("{name}.json"));
    let mut args = vec![
        "--max-frames",
        FRAMES,
        "--outputs",
        outputs,
        "--summary-json",
        summary.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    // Outputs in dir/name/out.
    let o = detect_in(&dir.join(name), inputs, &args);
    let out = dir.join(name).join("out");
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    (out, summary)
}

/// vtest with tracking and both count lines, `outputs` and `extra` flags.
fn tracked_run(
    dir: &Path,
    name: &str,
    outputs: &str,
    extra: &[&str],
) -> (std::path::PathBuf, Value) {
    let mut args = vec!["--track", "--count-line", WALKWAY, "--count-line", LAWN];
    args.extend_from_slice(extra);
    run_in(dir, name, &[&vtest()], outputs, &args)
}

/// Per track id in a JSONL file: (class, frames the id was output on).
fn ids_in_jsonl(jsonl: &[Value]) -> BTreeMap<u64, (u64, Vec<u64>)> {
    let mut ids: BTreeMap<u64, (u64, Vec<u64>)> = BTreeMap::new();
    for f in jsonl.iter().filter(|v| v.get("event").is_none()) {
        for d in f["detections"].as_array().unwrap() {
            let id = d.get("track_id").expect("every detection has a track_id");
            if let Some(id) = id.as_u64() {
                let e = ids
                    .entry(id)
                    .or_insert((d["class_id"].as_u64().unwrap(), vec![]));
                assert_eq!(e.0, d["class_id"].as_u64().unwrap(), "one class per track");
                e.1.push(f["frame"].as_u64().unwrap());
            } else {
                assert!(id.is_null(), "track_id is a number or null: {id}");
            }
        }
    }
    ids
}

/// The tracks file agrees with the JSONL: the same ids (1..=n, each once), each track's class,
/// and its first/last frame and frames seen bracket where its id was output (a track also
/// counts the detection that started it and low-score ones, which are not output).
fn check_tracks_file(out: &Path, stem: &str) -> Vec<Value> {
    let jsonl = lines(&out.join(format!("{stem}.jsonl")));
    let tracks = lines(&out.join(format!("{stem}.tracks.jsonl")));
    let in_jsonl = ids_in_jsonl(&jsonl);
    let listed: Vec<u64> = tracks
        .iter()
        .map(|t| t["track_id"].as_u64().unwrap())
        .collect();
    let unique: BTreeSet<u64> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "each track once");
    assert_eq!(unique, (1..=listed.len() as u64).collect(), "ids 1..=n");
    assert_eq!(
        unique,
        in_jsonl.keys().copied().collect(),
        "the JSONL's ids"
    );
    for t in &tracks {
        let (class, frames) = &in_jsonl[&t["track_id"].as_u64().unwrap()];
        let (first, last) = (frames[0], *frames.last().unwrap());
        assert_eq!(t["class_id"].as_u64(), Some(*class), "{t}");
        assert!(t["first_frame"].as_u64().unwrap() <= first, "{t}");
        assert!(t["last_frame"].as_u64().unwrap() >= last, "{t}");
        assert!(
            t["frames_seen"].as_u64().unwrap() >= frames.len() as u64,
            "{t}"
        );
        assert!(t["last_pts"].as_f64() >= t["first_pts"].as_f64(), "{t}");
    }
    tracks
}

/// Crossings per (line, class id, direction).
type Counts = BTreeMap<(String, u64, String), u64>;

/// Crossing events per (line, class, direction), after the line of the frame they name.
fn crossings(jsonl: &[Value]) -> Counts {
    let mut counts = BTreeMap::new();
    let mut frame = None;
    for v in jsonl {
        match v.get("event").and_then(Value::as_str) {
            None => frame = v["frame"].as_u64(),
            Some("crossing") => {
                assert_eq!(v["frame"].as_u64(), frame, "after its frame's line: {v}");
                assert!(v["track_id"].as_u64().is_some(), "{v}");
                let key = (
                    v["line"].as_str().unwrap().to_string(),
                    v["class_id"].as_u64().unwrap(),
                    v["direction"].as_str().unwrap().to_string(),
                );
                *counts.entry(key).or_insert(0) += 1;
            }
            Some(other) => panic!("unexpected event {other}"),
        }
    }
    counts
}

/// The summary's counts per (line, class, direction), and every line it lists.
fn summary_counts(summary: &Value) -> (Counts, Vec<String>) {
    let t = &summary["inputs"][0]["tracking"];
    let mut counts = BTreeMap::new();
    let mut names = Vec::new();
    for l in t["lines"].as_array().unwrap() {
        let name = l["name"].as_str().unwrap().to_string();
        let (mut sum_in, mut sum_out) = (0, 0);
        for c in l["classes"].as_array().unwrap() {
            for dir in ["in", "out"] {
                let n = c[dir].as_u64().unwrap();
                if n > 0 {
                    counts.insert(
                        (name.clone(), c["class_id"].as_u64().unwrap(), dir.into()),
                        n,
                    );
                }
            }
            sum_in += c["in"].as_u64().unwrap();
            sum_out += c["out"].as_u64().unwrap();
        }
        assert_eq!(
            (l["in"].as_u64(), l["out"].as_u64()),
            (Some(sum_in), Some(sum_out))
        );
        names.push(name);
    }
    (counts, names)
}

#[test]
#[ignore = "needs tools/setup"]
fn ids_tracks_file_and_counts_agree_and_detections_are_unchanged() {
    require_model(&[&vtest()]);
    let dir = scratch("track");
    let (out, summary) = tracked_run(&dir, "on", "jsonl,csv", &[]);
    let tracks = check_tracks_file(&out, "vtest");
    let jsonl = lines(&out.join("vtest.jsonl"));

    // Most detections are on a confirmed track (null only while a track is tentative).
    let dets: Vec<&Value> = jsonl
        .iter()
        .filter(|v| v.get("event").is_none())
        .flat_map(|f| f["detections"].as_array().unwrap())
        .collect();
    let with_id = dets.iter().filter(|d| d["track_id"].is_u64()).count();
    assert!(
        with_id * 10 > dets.len() * 9,
        "{with_id} of {} have an id",
        dets.len()
    );

    // The CSV has the same ids, row for row.
    let csv = std::fs::read_to_string(out.join("vtest.csv")).unwrap();
    let mut rows = csv.lines();
    assert_eq!(
        rows.next(),
        Some("frame,pts,class_id,label,score,x1,y1,x2,y2,track_id")
    );
    let csv_ids: Vec<String> = rows
        .map(|r| r.rsplit(',').next().unwrap().to_string())
        .collect();
    let json_ids: Vec<String> = dets
        .iter()
        .map(|d| {
            d["track_id"]
                .as_u64()
                .map_or(String::new(), |id| id.to_string())
        })
        .collect();
    assert_eq!(csv_ids, json_ids);

    // Crossing events add up to the summary's counts; the summary lists both lines.
    let t = &summary["inputs"][0]["tracking"];
    assert_eq!(t["tracks"].as_u64(), Some(tracks.len() as u64));
    let events = crossings(&jsonl);
    let (counts, names) = summary_counts(&summary);
    assert_eq!(names, ["walkway", "lawn"]);
    assert!(!events.is_empty(), "people cross the walkway line in 30 s");
    assert_eq!(events, counts);

    // Without --track: the same detections, no ids, no tracks file, no tracking summary.
    let (plain, summary) = run_in(&dir, "off", &[&vtest()], "jsonl,csv", &[]);
    assert!(summary["inputs"][0].get("tracking").is_none());
    assert!(!plain.join("vtest.tracks.jsonl").exists());
    let csv = std::fs::read_to_string(plain.join("vtest.csv")).unwrap();
    assert!(csv.starts_with("frame,pts,class_id,label,score,x1,y1,x2,y2\n"));
    let untracked = lines(&plain.join("vtest.jsonl"));
    let mut stripped: Vec<Value> = jsonl
        .into_iter()
        .filter(|v| v.get("event").is_none())
        .collect();
    for f in &mut stripped {
        for d in f["detections"].as_array_mut().unwrap() {
            d.as_object_mut().unwrap().remove("track_id");
        }
    }
    assert_eq!(
        stripped, untracked,
        "tracking outputs the detections above --conf, unchanged"
    );
}

/// The same tracks, frame for frame; boxes within 0.05 px (batches of another size or
/// make-up can move a box by float rounding).
fn assert_same_tracks(a: &[Value], b: &[Value]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        for k in [
            "track_id",
            "class_id",
            "first_frame",
            "last_frame",
            "frames_seen",
        ] {
            assert_eq!(x[k], y[k], "{k}: {x} vs {y}");
        }
        let (p, q) = (&x["last_box"], &y["last_box"]);
        for c in ["x1", "y1", "x2", "y2"] {
            assert!((p[c].as_f64().unwrap() - q[c].as_f64().unwrap()).abs() < 0.05);
        }
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn batch_four_gives_the_same_tracks_and_stride_two_tracks_the_frames_it_infers() {
    require_model(&[&vtest()]);
    let dir = scratch("track-batch");
    let (one, s1) = tracked_run(&dir, "b1", "jsonl", &[]);
    let (four, s4) = tracked_run(&dir, "b4", "jsonl", &["--batch", "4"]);
    let (a, b) = (
        check_tracks_file(&one, "vtest"),
        check_tracks_file(&four, "vtest"),
    );
    assert_same_tracks(&a, &b);
    assert_eq!(
        s1["inputs"][0]["tracking"], s4["inputs"][0]["tracking"],
        "same counts"
    );

    // Stride 2: only even frames are inferred and tracked (the MP4 keeps every frame).
    let (two, s2) = tracked_run(&dir, "s2", "jsonl,mp4", &["--stride", "2"]);
    let tracks = check_tracks_file(&two, "vtest");
    let jsonl = lines(&two.join("vtest.jsonl"));
    assert!(jsonl.iter().all(|v| v["frame"].as_u64().unwrap() % 2 == 0));
    assert!(tracks
        .iter()
        .all(|t| t["first_frame"].as_u64().unwrap() % 2 == 0));
    assert_eq!(crossings(&jsonl), summary_counts(&s2).0);
    assert_eq!(ffprobe_frames(&two.join("vtest.annotated.mp4")), 300);
    // Stream time, not frames: tracks last about as long as at stride 1.
    let secs = |ts: &[Value]| -> f64 {
        ts.iter()
            .map(|t| t["last_pts"].as_f64().unwrap() - t["first_pts"].as_f64().unwrap())
            .sum()
    };
    let (full, half) = (secs(&a), secs(&tracks));
    assert!(
        half > 0.8 * full && half < 1.2 * full,
        "track-seconds: stride 1 {full:.1}, stride 2 {half:.1}"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn every_input_has_its_own_ids_and_counts() {
    require_model(&[&vtest()]);
    let dir = scratch("track-two");
    let copy = dir.join("again.avi");
    std::fs::copy(vtest(), &copy).unwrap();
    // Batches of 4 over 300 frames per input: a batch holds the end of the first input and
    // the start of the second.
    let args = ["--track", "--count-line", WALKWAY, "--batch", "4"];
    let (out, s) = run_in(&dir, "two", &[&vtest(), &copy], "jsonl", &args);
    let first = check_tracks_file(&out, "vtest");
    let second = check_tracks_file(&out, "again");
    // The same frames give the same tracks, ids from 1: nothing carried over.
    assert!(!first.is_empty());
    assert_eq!(first, second);
    assert_eq!(s["inputs"][0]["tracking"], s["inputs"][1]["tracking"]);

    // Decoded side by side, their frames interleave through every stage and batches mix
    // them: each input still has its own tracker, so the tracks are the same.
    let args = [&args[..], &["--streams", "2"]].concat();
    let (out2, s2) = run_in(&dir, "streams", &[&vtest(), &copy], "jsonl", &args);
    assert_same_tracks(&first, &check_tracks_file(&out2, "vtest"));
    assert_same_tracks(&first, &check_tracks_file(&out2, "again"));
    assert_eq!(s["inputs"][0]["tracking"], s2["inputs"][0]["tracking"]);
    assert_eq!(s["inputs"][1]["tracking"], s2["inputs"][1]["tracking"]);
}

#[test]
#[ignore = "needs tools/setup"]
fn segments_list_each_track_once_in_the_segment_it_ended() {
    require_model(&[&vtest()]);
    let dir = scratch("track-seg");
    let (whole, _) = tracked_run(&dir, "whole", "jsonl", &[]);
    let (seg, _) = tracked_run(&dir, "seg", "jsonl", &["--segment-s", "10"]);
    let mut all = Vec::new();
    for n in 1..=3 {
        let stem = format!("vtest-{n:06}");
        all.extend(lines(&seg.join(format!("{stem}.tracks.jsonl"))));
    }
    let key = |t: &Value| t["track_id"].as_u64().unwrap();
    all.sort_by_key(key);
    let mut expected = lines(&whole.join("vtest.tracks.jsonl"));
    expected.sort_by_key(key);
    assert_eq!(all, expected);
}

#[test]
#[ignore = "needs tools/setup"]
fn a_count_line_outside_the_frame_fails_the_input() {
    require_model(&[&vtest()]);
    let dir = scratch("track-outside");
    let o = detect_in(
        &dir,
        &[&vtest()],
        &["--track", "--count-line", "0,300,800,300,wide"],
    );
    expect_failure(
        &o,
        1,
        "count line 'wide' (0,300 to 800,300) is not inside the 768x576 frame",
    );
    assert!(finished_outputs(&dir.join("out")).is_empty());
}

#[test]
fn bad_count_lines_are_usage_errors() {
    let dir = scratch("track-usage");
    let clip = dir.join("missing.mp4");
    for (args, needle) in [
        (
            vec!["--track", "--count-line", "1,2,3"],
            "is not X1,Y1,X2,Y2[,NAME]",
        ),
        (
            vec!["--track", "--count-line", "5,5,5,5"],
            "two distinct points",
        ),
        (
            vec!["--track", "--count-line", "-5,5,50,5"],
            "must be 0 or more",
        ),
        (
            vec!["--track", "--count-line", "5,5,50,5,"],
            "name after the 4th comma is empty",
        ),
        (vec!["--count-line", "5,5,50,5"], "--track"),
        (vec!["--track-lost-s", "2"], "--track"),
        (
            vec!["--track", "--track-lost-s", "7200"],
            "is not a number of seconds",
        ),
        (
            vec![
                "--track",
                "--count-line",
                "0,0,9,9,a",
                "--count-line",
                "1,1,8,8,a",
            ],
            "two --count-line are named 'a'",
        ),
    ] {
        let o = detect_in(&dir, &[&clip], &args);
        expect_failure(&o, 2, needle);
    }
}

/// The synthetic counting clip tools/setup makes (tools/synth_crossings.py): people cut out of
/// vtest walking across a line with known truth — both ways, two passing each other on the
/// line, two side by side, one turning back before it, one hidden behind an occluder on it, a
/// fast one. Tracked on the real model's detections, every crossing is counted once, in its
/// direction, and nothing else.
#[test]
#[ignore = "needs tools/setup"]
fn every_crossing_of_the_synthetic_clip_is_counted_once() {
    let clip = root().join("samples/crossings.mp4");
    let truth_path = root().join("samples/crossings.truth.json");
    require_model(&[&clip, &truth_path]);
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(&truth_path).unwrap()).unwrap();
    let line = &truth["line"];
    let xy = |p: &Value| format!("{},{}", p[0], p[1]);
    let spec = format!("{},{},door", xy(&line["a"]), xy(&line["b"]));
    let dir = scratch("track-synthetic");
    let summary_path = dir.join("summary.json");
    let args = [
        "--track",
        "--count-line",
        &spec,
        "--outputs",
        "jsonl",
        "--summary-json",
        summary_path.to_str().unwrap(),
    ];
    let o = detect_in(&dir, &[&clip], &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary_path).unwrap()).unwrap();
    let jsonl = lines(&dir.join("out/crossings.jsonl"));
    let events: Vec<(f64, String)> = jsonl
        .iter()
        .filter(|v| v["event"] == "crossing")
        .map(|v| {
            (
                v["pts"].as_f64().unwrap(),
                v["direction"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected: Vec<(f64, String)> = truth["crossings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["t"].as_f64().unwrap(),
                c["direction"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(expected.len(), 8, "the clip's scenes");
    assert!(expected.iter().any(|e| e.1 == "in") && expected.iter().any(|e| e.1 == "out"));
    // One to one, in time order: a crossing is counted when the track is seen past the line
    // (or, after an id change, when the new track has shown its way), within a second.
    let mut left = events.clone();
    for (t, dir) in &expected {
        let k = left
            .iter()
            .position(|(s, d)| d == dir && *s >= t - 0.05 && *s <= t + 1.0)
            .unwrap_or_else(|| panic!("crossing {dir} at {t:.2} s not counted: {events:?}"));
        left.remove(k);
    }
    assert!(
        left.is_empty(),
        "counted crossings that did not happen: {left:?}"
    );
    let (counts, _) = summary_counts(&summary);
    let n = |d: &str| counts.get(&("door".to_string(), 0, d.to_string())).copied();
    let want = |d: &str| expected.iter().filter(|e| e.1 == d).count() as u64;
    assert_eq!((n("in"), n("out")), (Some(want("in")), Some(want("out"))));
}
