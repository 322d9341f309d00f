//! `--zone` end to end: a clip made here of a real photo (a man cropped from vtest) walking
//! across a grey frame and back, so where his feet are at every moment is known by
//! construction; the enter and exit events the binary writes must be his movements through a
//! concave zone and one that reaches past the frame, at 10 and 30 fps, with --stride and two
//! inputs decoded side by side (each its own state), with the same dwell times. Then a zone
//! outside the frame, and zones the command line refuses.

mod common;
use common::*;
use serde_json::Value;
use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
};

/// The frame: 640 × 360.
const SIZE: &str = "640x360";
/// The man's picture is 128 × 256 and enters at x = −128; his feet are at its bottom centre,
/// 64 px right of its left edge, at y ≈ 322.
const FEET_DX: f64 = 64.0;
/// He walks right at 120 px/s for 5 s, then back left at 120 px/s.
const SPEED: f64 = 120.0;
const TURN_S: f64 = 5.0;
const CLIP_S: f64 = 9.6;

/// The x of his feet at `t` seconds.
fn feet_x(t: f64) -> f64 {
    let left = if t < TURN_S {
        -128.0 + SPEED * t
    } else {
        -128.0 + SPEED * TURN_S - SPEED * (t - TURN_S)
    };
    left + FEET_DX
}

/// When his feet pass `x`, going right (`true`) or left.
fn passes(x: f64, right: bool) -> f64 {
    let turn = feet_x(TURN_S);
    if right {
        (x - feet_x(0.0)) / SPEED
    } else {
        TURN_S + (turn - x) / SPEED
    }
}

/// A U (x 160..480, y 200..360) with a notch (x 280..360) cut down from its top to y = 340:
/// his feet (y ≈ 322) are outside it in the notch.
const U: &str = "u:160,200;280,200;280,340;360,340;360,200;480,200;480,360;160,360";
/// A zone reaching past the frame's right edge; he walks into it and turns back.
const FAR: &str = "far:500,250;700,250;700,400;500,400";
/// The same place, for cars only: nothing enters it.
const CARS: &str = "cars:500,250;700,250;700,400;500,400;classes=car";

/// Whether feet at (x, y) are in the zone named `zone` (edges included).
fn in_zone(zone: &str, x: f64, y: f64) -> bool {
    let within =
        |x0: f64, x1: f64, y0: f64, y1: f64| (x0..=x1).contains(&x) && (y0..=y1).contains(&y);
    match zone {
        "u" => within(160.0, 480.0, 200.0, 360.0) && !(x > 280.0 && x < 360.0 && y < 340.0),
        "far" => within(500.0, 700.0, 250.0, 400.0),
        _ => false,
    }
}

/// The events by construction: (zone, enter?, when).
fn truth() -> Vec<(&'static str, bool, f64)> {
    vec![
        ("u", true, passes(160.0, true)),
        ("u", false, passes(280.0, true)),
        ("u", true, passes(360.0, true)),
        ("u", false, passes(480.0, true)),
        ("far", true, passes(500.0, true)),
        ("far", false, passes(500.0, false)),
        ("u", true, passes(480.0, false)),
        ("u", false, passes(360.0, false)),
        ("u", true, passes(280.0, false)),
        ("u", false, passes(160.0, false)),
    ]
}

/// The man, cropped from vtest's frame 50 and scaled 2x (128 × 256).
fn man(dir: &Path) -> PathBuf {
    let png = dir.join("man.png");
    let vf = "select=eq(n\\,50),crop=64:128:661:250,scale=128:256";
    let v = vtest();
    let args = [
        OsStr::new("-i"),
        v.as_os_str(),
        OsStr::new("-vf"),
        OsStr::new(vf),
    ];
    ffmpeg(
        args.into_iter()
            .chain([OsStr::new("-frames:v"), OsStr::new("1"), png.as_os_str()]),
    );
    png
}

/// His walk at `fps` frames per second, as `name`.
fn walk_clip(dir: &Path, man: &Path, fps: u32, name: &str) -> PathBuf {
    let out = dir.join(name);
    let bg = format!("color=c=0x8a8a8a:s={SIZE}:r={fps}:d={CLIP_S}");
    let x = format!("if(lt(t,{TURN_S}),-128+{SPEED}*t,-128+{SPEED}*{TURN_S}-{SPEED}*(t-{TURN_S}))");
    let filter = format!("[0][1]overlay=x='{x}':y=80:shortest=1,format=yuv420p");
    let frames = ((CLIP_S * fps as f64).round() as u64).to_string();
    let args: Vec<&OsStr> = vec![
        "-f".as_ref(),
        "lavfi".as_ref(),
        "-i".as_ref(),
        bg.as_ref(),
        "-loop".as_ref(),
        "1".as_ref(),
        "-i".as_ref(),
        man.as_os_str(),
        "-filter_complex".as_ref(),
        filter.as_ref(),
        "-frames:v".as_ref(),
        frames.as_ref(),
        "-c:v".as_ref(),
        "libx264".as_ref(),
        out.as_os_str(),
    ];
    ffmpeg(args);
    out
}

fn lines(path: &Path) -> Vec<Value> {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Runs detect with the three zones on `inputs`; returns the output folder and the summary.
fn run_zones(dir: &Path, name: &str, inputs: &[&Path], extra: &[&str]) -> (PathBuf, Value) {
    let summary = dir.join(format!("{name}.json"));
    let mut args = vec!["--track", "--zone", U, "--zone", FAR, "--zone", CARS];
    args.extend_from_slice(&["--outputs", "jsonl,csv", "--summary-json"]);
    args.push(summary.to_str().unwrap());
    args.extend_from_slice(extra);
    let o = detect_in(&dir.join(name), inputs, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    (dir.join(name).join("out"), summary)
}

/// One zone event as read back.
#[derive(Debug)]
struct Event {
    zone: String,
    enter: bool,
    track: u64,
    pts: f64,
    dwell: Option<f64>,
}

/// Checks one input's outputs against the walk; returns its events. `period`: seconds between
/// observations.
fn check_walk(out: &Path, stem: &str, summary: &Value, period: f64) -> Vec<Event> {
    let events = walk_events(&lines(&out.join(format!("{stem}.jsonl"))));
    check_events_follow_him(&events, period);
    check_tracks_file(out, stem, &events);
    check_summary_totals(summary, stem);
    events
}

/// The zone events of the JSONL, checking on the way each person's zones (by where the feet
/// are) and each frame's occupancy (enters minus exits so far).
fn walk_events(jsonl: &[Value]) -> Vec<Event> {
    let mut events = Vec::new();
    // Occupancy on a frame's line: enters minus exits written up to the next frame's line.
    let mut pending: Option<Value> = None;
    let mut inside = [0i64; 3];
    let zone_index = |z: &str| ["u", "far", "cars"].iter().position(|n| *n == z).unwrap();
    let check_occupancy = |line: &Value, inside: &[i64; 3]| {
        let occ = &line["zones"];
        let got: Vec<i64> = ["u", "far", "cars"]
            .iter()
            .map(|z| occ[z].as_i64().unwrap())
            .collect();
        assert_eq!(got, inside.to_vec(), "occupancy of {line}");
    };
    for v in jsonl {
        match v.get("event").and_then(Value::as_str) {
            None => {
                if let Some(prev) = pending.replace(v.clone()) {
                    check_occupancy(&prev, &inside);
                }
                for d in v["detections"].as_array().unwrap() {
                    let (x, y) = (
                        (d["x1"].as_f64().unwrap() + d["x2"].as_f64().unwrap()) / 2.0,
                        d["y2"].as_f64().unwrap(),
                    );
                    let zones: Vec<&str> = d["zones"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|z| z.as_str().unwrap())
                        .collect();
                    let want: Vec<&str> = ["u", "far"]
                        .into_iter()
                        .filter(|z| in_zone(z, x, y))
                        .collect();
                    if d["label"] == "person" {
                        assert_eq!(zones, want, "feet at ({x:.1}, {y:.1}): {d}");
                    }
                }
            }
            Some(kind @ ("zone_enter" | "zone_exit")) => {
                let enter = kind == "zone_enter";
                let zone = v["zone"].as_str().unwrap().to_string();
                inside[zone_index(&zone)] += if enter { 1 } else { -1 };
                assert_eq!(v["track_ended"].as_bool(), (!enter).then_some(false), "{v}");
                events.push(Event {
                    zone,
                    enter,
                    track: v["track_id"].as_u64().unwrap(),
                    pts: v["pts"].as_f64().unwrap(),
                    dwell: v["dwell_s"].as_f64(),
                });
            }
            Some(other) => panic!("unexpected event {other}: {v}"),
        }
    }
    check_occupancy(&pending.expect("frames"), &inside);

    events
}

/// The events are his movements, in order, each soon after it happened, with exits' dwell.
fn check_events_follow_him(events: &[Event], period: f64) {
    let want = truth();
    let got: Vec<(&str, bool)> = events.iter().map(|e| (e.zone.as_str(), e.enter)).collect();
    let expected: Vec<(&str, bool)> = want.iter().map(|w| (w.0, w.1)).collect();
    assert_eq!(got, expected, "{events:#?}");
    assert!(
        events.iter().all(|e| e.track == events[0].track),
        "one track: {events:#?}"
    );
    // Each is seen at the first observation past the edge, less than a period after it
    // happened; 0.1 s (12 px) more for where the detector puts his box.
    for (e, w) in events.iter().zip(&want) {
        let late = e.pts - w.2;
        assert!(late > -0.1 && late < period + 0.1, "{e:?} vs {w:?}");
    }
    for pair in events.chunks(2) {
        let dwell = pair[1].dwell.expect("an exit has its dwell");
        assert!(
            (dwell - (pair[1].pts - pair[0].pts)).abs() < 2e-6,
            "{pair:?}"
        );
    }
}

/// The tracks file: his time in each zone, the sum of his visits.
fn check_tracks_file(out: &Path, stem: &str, events: &[Event]) {
    let tracks = lines(&out.join(format!("{stem}.tracks.jsonl")));
    let his = tracks
        .iter()
        .find(|t| t["track_id"] == events[0].track)
        .unwrap();
    let zones = his["zones"].as_array().unwrap();
    assert_eq!(zones.len(), 2, "{his}");
    for z in zones {
        let name = z["zone"].as_str().unwrap();
        let mine: Vec<&Event> = events.iter().filter(|e| e.zone == name).collect();
        let total: f64 = mine.iter().filter_map(|e| e.dwell).sum();
        assert_eq!(z["visits"].as_u64(), Some(mine.len() as u64 / 2));
        assert!((z["dwell_s"].as_f64().unwrap() - total).abs() < 1e-5, "{z}");
    }
    assert!(
        tracks.iter().all(|t| t["zones"].is_array()),
        "every track lists its zones"
    );
}

/// The summary's totals per zone.
fn check_summary_totals(summary: &Value, stem: &str) {
    let input = summary["inputs"].as_array().unwrap().iter();
    let file = format!("{stem}.mp4");
    let input = input
        .filter(|i| i["path"].as_str().unwrap().ends_with(&file))
        .collect::<Vec<_>>();
    let z = &input[0]["tracking"]["zones"];
    let totals: Vec<(&str, u64, u64, u64)> = (z.as_array().unwrap().iter())
        .map(|z| {
            let n = |k: &str| z[k].as_u64().unwrap();
            (
                z["name"].as_str().unwrap(),
                n("entered"),
                n("exited"),
                n("inside_at_end"),
            )
        })
        .collect();
    assert_eq!(
        totals,
        [("u", 4, 4, 0), ("far", 1, 1, 0), ("cars", 0, 0, 0)]
    );
}

/// His dwell per visit, in order.
fn dwells(events: &[Event]) -> Vec<f64> {
    events.iter().filter_map(|e| e.dwell).collect()
}

#[test]
#[ignore = "needs tools/setup"]
fn enter_and_exit_events_are_the_walk_at_any_frame_rate_stride_and_stream() {
    require_model(&[&vtest()]);
    let dir = scratch("zones-walk");
    let man = man(&dir);
    let ten = walk_clip(&dir, &man, 10, "ten.mp4");
    let thirty = walk_clip(&dir, &man, 30, "thirty.mp4");

    let (out, s) = run_zones(&dir, "ten", &[&ten], &[]);
    let at_ten = check_walk(&out, "ten", &s, 0.1);
    let (out, s) = run_zones(&dir, "thirty", &[&thirty], &[]);
    let at_thirty = check_walk(&out, "thirty", &s, 1.0 / 30.0);
    let (out, s) = run_zones(&dir, "stride", &[&thirty], &["--stride", "3"]);
    let strided = check_walk(&out, "thirty", &s, 0.1);

    // Dwell is seconds: each visit lasts the same at 10 fps, 30 fps and 30 fps stride 3,
    // within one period of the slower (0.1 s).
    let base = dwells(&at_thirty);
    let truth: Vec<f64> = truth().chunks(2).map(|p| p[1].2 - p[0].2).collect();
    for (name, other) in [("10 fps", &at_ten), ("stride 3", &strided)] {
        for ((a, b), t) in base.iter().zip(dwells(other)).zip(&truth) {
            assert!(
                (a - b).abs() <= 0.1 + 1e-6,
                "{name}: {b} vs 30 fps {a} (truth {t})"
            );
        }
    }
    for (d, t) in base.iter().zip(&truth) {
        assert!((d - t).abs() < 0.1, "30 fps: {d} vs {t}");
    }

    // Both inputs decoded side by side, with batches mixing them: each has its own zones'
    // state, so each gives its own events as when it ran alone.
    let args = ["--streams", "2", "--batch", "4"];
    let (out, s) = run_zones(&dir, "streams", &[&ten, &thirty], &args);
    let (a, b) = (
        check_walk(&out, "ten", &s, 0.1),
        check_walk(&out, "thirty", &s, 1.0 / 30.0),
    );
    for (x, y) in [(&a, &at_ten), (&b, &at_thirty)] {
        let pts = |e: &[Event]| {
            e.iter()
                .map(|e| (e.zone.clone(), e.pts))
                .collect::<Vec<_>>()
        };
        assert_eq!(pts(x), pts(y));
    }
}

#[test]
#[ignore = "needs tools/setup"]
fn a_zone_outside_the_frame_fails_the_input_and_writes_nothing() {
    require_model(&[&vtest()]);
    let dir = scratch("zones-outside");
    let clip = lavfi_clip(&dir, "grey.mp4", "color=c=gray:s=640x360:r=10", 10, &[]);
    let zone = "off:700,0;800,0;800,100;700,100";
    let o = detect_in(&dir, &[&clip], &["--track", "--zone", U, "--zone", zone]);
    expect_failure(
        &o,
        1,
        "zone 'off' (700,0;800,0;800,100;700,100) has no area inside the 640x360 frame",
    );
    assert!(finished_outputs(&dir.join("out")).is_empty());
}

#[test]
fn bad_zones_are_usage_errors() {
    let dir = scratch("zones-usage");
    let clip = dir.join("missing.mp4");
    let tri = "a:0,0;90,0;90,90";
    for (args, needle) in [
        (vec!["--zone", tri], "--track"),
        (vec!["--track", "--zone-inertia-s", "1"], "--zone"),
        (vec!["--track", "--zone", "a:0,0;9,9"], "at least 3"),
        (vec!["--track", "--zone", "0,0;9,0;9,9"], "is not NAME:"),
        (
            vec!["--track", "--zone", "a:0,0;9,9;9,0;0,9"],
            "crosses itself",
        ),
        (vec!["--track", "--zone", "a:0,0;5,5;9,9"], "no area"),
        (
            vec!["--track", "--zone", tri, "--zone", tri],
            "two --zone are named 'a'",
        ),
        (
            vec!["--track", "--zone", "a:0,0;90,0;90,90;classes=persn"],
            "no class is named 'persn'",
        ),
        (
            vec!["--track", "--zone", tri, "--zone-inertia-s", "7200"],
            "is not a number of seconds",
        ),
    ] {
        let o = detect_in(&dir, &[&clip], &args);
        expect_failure(&o, 2, needle);
    }
}
