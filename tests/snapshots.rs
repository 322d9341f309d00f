//! `--snapshots` end to end on vtest (issue 27): one snapshot per track, named in the tracks
//! file and in its `track_end` JSONL event; the JPEGs decode; the crop lies inside the frame
//! and is the box's size; the frame chosen is, of the track's detections in the JSONL, the
//! highest-scoring one clear of the edge; a rerun leaves no stale JPEG; an input inside a
//! snapshot folder is never written over; the flag needs --track.

mod common;
use common::*;
use serde_json::Value;
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

const FRAMES: &str = "300";
const W: f64 = 768.0;
const H: f64 = 576.0;

fn lines(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn edge(b: &[f64; 4]) -> bool {
    b[0] < 1.0 || b[1] < 1.0 || b[2] > W - 1.0 || b[3] > H - 1.0
}

/// Each track's best detection in the JSONL: (clear of the edge, score) highest, earliest
/// frame first; as (frame, score, touches_edge).
fn best_per_track(jsonl: &[Value]) -> BTreeMap<u64, (u64, f64, bool)> {
    let mut best: BTreeMap<u64, (u64, f64, bool)> = BTreeMap::new();
    for l in jsonl.iter().filter(|l| l.get("event").is_none()) {
        let frame = l["frame"].as_u64().unwrap();
        for d in l["detections"].as_array().unwrap() {
            let Some(id) = d["track_id"].as_u64() else {
                continue;
            };
            let b = ["x1", "y1", "x2", "y2"].map(|k| d[k].as_f64().unwrap());
            let (score, e) = (d["score"].as_f64().unwrap(), edge(&b));
            let better = best
                .get(&id)
                .is_none_or(|&(_, s, be)| (!e, score) > (!be, s));
            if better {
                best.insert(id, (frame, score, e));
            }
        }
    }
    best
}

fn decode(path: &Path) -> image::RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("decode {}: {e}", path.display()))
        .to_rgb8()
}

/// Checks one snapshot object against the files and the frame; returns its track id's files.
fn check_snapshot(out: &Path, s: &Value) -> [String; 2] {
    let (crop, frame) = (
        s["crop"].as_str().unwrap().to_string(),
        s["frame_image"].as_str().unwrap().to_string(),
    );
    let full = decode(&out.join(&frame));
    assert_eq!(
        full.dimensions(),
        (W as u32, H as u32),
        "{frame}: the whole frame"
    );
    let c = decode(&out.join(&crop));
    let b = ["x1", "y1", "x2", "y2"].map(|k| s["box"][k].as_f64().unwrap());
    assert!(
        b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= W && b[3] <= H,
        "{crop}: {b:?}"
    );
    let (cw, ch) = c.dimensions();
    let (bw, bh) = (b[2].ceil() - b[0].floor(), b[3].ceil() - b[1].floor());
    assert_eq!(
        (cw as f64, ch as f64),
        (bw, bh),
        "{crop} is the box, rounded out"
    );
    assert!(
        cw <= W as u32 && ch <= H as u32,
        "{crop} lies inside the frame"
    );
    assert_eq!(s["touches_edge"].as_bool().unwrap(), edge(&b), "{crop}");
    [crop, frame]
}

#[test]
#[ignore = "needs tools/setup"]
fn one_snapshot_per_track_the_best_frame_clear_of_the_edge() {
    require_model(&[&vtest()]);
    let dir = scratch("snapshots");
    let args = ["--track", "--snapshots", "--max-frames", FRAMES];
    let o = detect_in(
        &dir,
        &[&vtest()],
        &[&["--outputs", "jsonl"][..], &args].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.join("out");
    let tracks = lines(&out.join("vtest.tracks.jsonl"));
    let jsonl = lines(&out.join("vtest.jsonl"));
    assert!(tracks.len() > 20, "vtest's 30 s have dozens of tracks");
    let (named, by_track) = check_snapshots_of_tracks(&out, &tracks, &jsonl);
    assert!(
        by_track.values().any(|s| s["touches_edge"] == false),
        "most people are seen clear of the edge"
    );
    // The track_end events: one per track, naming the same snapshot.
    let ends: Vec<&Value> = jsonl.iter().filter(|l| l["event"] == "track_end").collect();
    assert_eq!(ends.len(), tracks.len(), "one track_end per track");
    for e in ends {
        let id = e["track_id"].as_u64().unwrap();
        assert_eq!(
            e["snapshot"], by_track[&id],
            "track {id}'s event names its snapshot"
        );
    }
    // Nothing in the folder but the snapshots named, two per track.
    let on_disk: BTreeSet<String> = std::fs::read_dir(out.join("vtest.snapshots"))
        .unwrap()
        .map(|e| {
            format!(
                "vtest.snapshots/{}",
                e.unwrap().file_name().to_string_lossy()
            )
        })
        .collect();
    assert_eq!(on_disk, named);
    assert_eq!(on_disk.len(), 2 * tracks.len());
    assert_no_partials(&out);
    reruns_leave_only_their_snapshots(&dir, &out, tracks.len());
}

/// Each track's snapshot is its best detection in the JSONL (clear of the edge first, then
/// the highest score), its files named once; returns the files named and each track's snapshot.
fn check_snapshots_of_tracks(
    out: &Path,
    tracks: &[Value],
    jsonl: &[Value],
) -> (BTreeSet<String>, BTreeMap<u64, Value>) {
    let best = best_per_track(jsonl);
    let mut named = BTreeSet::new();
    let mut by_track = BTreeMap::new();
    for t in tracks {
        let id = t["track_id"].as_u64().unwrap();
        let s = &t["snapshot"];
        assert!(s.is_object(), "track {id} has a snapshot: {t}");
        for f in check_snapshot(out, s) {
            assert!(named.insert(f.clone()), "{f} named once");
        }
        let (frame, score, e) = best[&id];
        assert_eq!(
            s["frame"].as_u64().unwrap(),
            frame,
            "track {id}'s best frame"
        );
        assert_eq!(
            s["score"].as_f64().unwrap(),
            score,
            "track {id}'s best score"
        );
        assert_eq!(s["touches_edge"].as_bool().unwrap(), e, "track {id}");
        by_track.insert(id, s.clone());
    }
    (named, by_track)
}

/// A shorter rerun has fewer tracks, and a rerun without --snapshots none: each leaves only
/// its own snapshots in `out`.
fn reruns_leave_only_their_snapshots(dir: &Path, out: &Path, tracks: usize) {
    let short = ["--track", "--snapshots", "--max-frames", "50", "--force"];
    let o = detect_in(
        dir,
        &[&vtest()],
        &[&["--outputs", "jsonl"][..], &short].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let n = lines(&out.join("vtest.tracks.jsonl")).len();
    let left = std::fs::read_dir(out.join("vtest.snapshots"))
        .unwrap()
        .count();
    assert!(n < tracks);
    assert_eq!(left, 2 * n, "only this run's snapshots are left");
    // Without --snapshots, the folder an earlier run left is an output of other settings.
    let plain = [
        "--track",
        "--max-frames",
        "20",
        "--force",
        "--outputs",
        "jsonl",
    ];
    let o = detect_in(dir, &[&vtest()], &plain);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        !out.join("vtest.snapshots").exists(),
        "stale snapshots removed"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn an_input_in_a_snapshot_folder_is_never_written_over() {
    require_model(&[&vtest()]);
    let dir = scratch("snapshots-input");
    let folder = dir.join("out/clip.snapshots");
    std::fs::create_dir_all(&folder).unwrap();
    // An input named like a snapshot, in the folder `clip`'s snapshots would go to.
    let input = folder.join("1.crop.jpg");
    ffmpeg([
        "-i".as_ref(),
        vtest().as_os_str(),
        "-frames:v".as_ref(),
        "30".as_ref(),
        "-c:v".as_ref(),
        "libx264".as_ref(),
        "-f".as_ref(),
        "mp4".as_ref(),
        input.as_os_str(),
    ]);
    let link = dir.join("clip.mp4");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let before = std::fs::read(&input).unwrap();
    let args = ["--track", "--snapshots", "--outputs", "jsonl"];
    let o = detect_in(&dir, &[&link], &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&input).unwrap(),
        before,
        "the input is untouched"
    );
    assert!(
        !dir.join("out/clip.jsonl").exists(),
        "clip's name, whose snapshot folder holds the input, is not used"
    );
}

#[test]
#[ignore = "needs tools/setup"]
fn snapshots_need_track() {
    require_model(&[&vtest()]);
    let dir = scratch("snapshots-no-track");
    let o = detect_in(&dir, &[&vtest()], &["--snapshots", "--max-frames", "5"]);
    expect_failure(&o, 2, "--track");
}
