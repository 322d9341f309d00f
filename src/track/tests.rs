//! Tracker and line-counter tests on synthetic detection sequences.
//!
//! A scene is a list of [`Obj`]: boxes moving at constant velocity, visible over a time span
//! with optional hidden intervals and a score profile. [`run`] samples the scene at a frame
//! rate and stride, feeds a tracker, and records which track id each object's detections got.

use super::*;
use crate::postprocess::Detection;
use std::collections::BTreeSet;

const EPS: f64 = 1e-9;

#[derive(Clone)]
struct Obj {
    class_id: u32,
    /// Box centre at t = 0 and velocity in px/s.
    start: (f32, f32),
    vel: (f32, f32),
    size: (f32, f32),
    /// Detected over [from, to] seconds …
    span: (f64, f64),
    /// … except within these [from, to) intervals.
    hidden: Vec<(f64, f64)>,
    score: fn(f64) -> f32,
}

fn sure(_: f64) -> f32 {
    0.9
}

fn person(start: (f32, f32), vel: (f32, f32)) -> Obj {
    Obj {
        class_id: 0,
        start,
        vel,
        size: (40.0, 100.0),
        span: (0.0, 1e9),
        hidden: Vec::new(),
        score: sure,
    }
}

impl Obj {
    fn bbox(&self, t: f64) -> BoxInFrame {
        let cx = self.start.0 + self.vel.0 * t as f32;
        let cy = self.start.1 + self.vel.1 * t as f32;
        let (w, h) = self.size;
        BoxInFrame {
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
        }
    }

    fn at(&self, t: f64) -> Option<Detection> {
        let visible = t >= self.span.0 - EPS
            && t <= self.span.1 + EPS
            && !self
                .hidden
                .iter()
                .any(|&(a, b)| t >= a - EPS && t < b - EPS);
        visible.then(|| Detection {
            class_id: self.class_id,
            score: (self.score)(t),
            box_in_frame: self.bbox(t),
        })
    }
}

/// One processed frame: pts, and per visible object (object index, score, id given).
struct Frame {
    pts: f64,
    got: Vec<(usize, f32, Option<u64>)>,
}

struct Run {
    frames: Vec<Frame>,
    summaries: Vec<TrackSummary>,
}

impl Run {
    /// Every id the object's detections were given.
    fn ids(&self, obj: usize) -> BTreeSet<u64> {
        let got = self.frames.iter().flat_map(|f| &f.got);
        got.filter(|g| g.0 == obj).filter_map(|g| g.2).collect()
    }

    /// The single id the object had; panics if it had none or several.
    fn id(&self, obj: usize) -> u64 {
        let ids = self.ids(obj);
        assert_eq!(ids.len(), 1, "object {obj} got ids {ids:?}");
        *ids.first().unwrap()
    }

    fn summary(&self, id: u64) -> &TrackSummary {
        self.summaries.iter().find(|s| s.track_id == id).unwrap()
    }

    /// How many of the object's detections got no id.
    fn untracked(&self, obj: usize) -> usize {
        let got = self.frames.iter().flat_map(|f| &f.got);
        got.filter(|g| g.0 == obj && g.2.is_none()).count()
    }
}

/// Samples `objs` at `fps` for `secs` seconds, keeping every `stride`-th frame, through `tr`.
fn run_with(tr: &mut Tracker, objs: &[Obj], fps: f64, stride: u64, secs: f64) -> Run {
    let mut frames = Vec::new();
    let n = (secs * fps).round() as u64;
    for i in (0..=n).step_by(stride as usize) {
        let pts = i as f64 / fps;
        let mut visible: Vec<(usize, Detection)> = objs
            .iter()
            .enumerate()
            .filter_map(|(k, o)| o.at(pts).map(|d| (k, d)))
            .collect();
        // Detection order must not matter: reverse it on every other frame.
        if (i / stride) % 2 == 1 {
            visible.reverse();
        }
        let (idx, dets): (Vec<usize>, Vec<Detection>) = visible.into_iter().unzip();
        let ids = tr.update(i, pts, &dets);
        assert_eq!(ids.len(), dets.len());
        let got = idx.into_iter().zip(&dets).zip(ids);
        let got = got.map(|((k, d), id)| (k, d.score, id)).collect();
        frames.push(Frame { pts, got });
    }
    Run {
        frames,
        summaries: tr.finish(),
    }
}

fn run(objs: &[Obj], fps: f64, stride: u64, secs: f64) -> Run {
    run_with(
        &mut Tracker::new(TrackerConfig::default()),
        objs,
        fps,
        stride,
        secs,
    )
}

#[test]
fn objects_crossing_paths_keep_their_ids() {
    // Towards each other at 120 px/s each, 15 px apart vertically: the boxes overlap for
    // ~0.33 s (10 frames) around t = 1.67 s, with IoU up to 0.74.
    let objs = [
        person((100.0, 200.0), (120.0, 0.0)),
        person((500.0, 215.0), (-120.0, 0.0)),
    ];
    let r = run(&objs, 30.0, 1, 3.4);
    let max_overlap = (0..=102)
        .map(|i| i as f64 / 30.0)
        .map(|t| objs[0].bbox(t).iou(&objs[1].bbox(t)))
        .fold(0.0f32, f32::max);
    assert!(max_overlap > 0.7, "the scene must make the boxes overlap");
    let (a, b) = (r.id(0), r.id(1));
    assert_ne!(a, b);
    // Both were tracked on every frame (tracks born in the first frame are confirmed).
    assert_eq!(r.untracked(0) + r.untracked(1), 0);
    assert_eq!(r.summaries.len(), 2);
    // Each track ended where its own object went, i.e. they did not swap.
    assert!(r.summary(a).last_box.x1 > 400.0 && r.summary(b).last_box.x1 < 200.0);

    // Head-on on the same row: the boxes coincide exactly at t = 1.67 s (frame 50), so
    // only the predicted motion tells them apart after that.
    let objs = [
        person((100.0, 200.0), (120.0, 0.0)),
        person((500.0, 200.0), (-120.0, 0.0)),
    ];
    assert_eq!(objs[0].bbox(50.0 / 30.0), objs[1].bbox(50.0 / 30.0));
    let r = run(&objs, 30.0, 1, 3.4);
    assert_ne!(r.id(0), r.id(1));
    assert_eq!(r.summaries.len(), 2);
}

/// Walks right until 1.0 s, is unseen for `gap` s while turning to walk down, and is seen again
/// 52 px from where its track's prediction puts it (IoU with it below 0.05).
fn turned(gap: f64) -> [Obj; 2] {
    let mut before = person((100.0, 200.0), (80.0, 0.0));
    before.span = (0.0, 1.0);
    let t = 1.0 + gap;
    let mut after = person((170.0, 240.0 - 80.0 * t as f32), (0.0, 80.0));
    after.span = (t, 3.0);
    [before, after]
}

#[test]
fn a_track_missed_for_a_few_frames_is_recovered_by_distance() {
    let [a, b] = turned(0.3);
    assert!(a.bbox(1.3).iou(&b.bbox(1.3)) < 0.05);
    let r = run(&[a.clone(), b.clone()], 10.0, 1, 3.0);
    assert_eq!(r.id(0), r.id(1), "recovered");
    assert_eq!(r.summaries.len(), 1);
    // Without the stage (ByteTrack's association): a new track.
    let cfg = TrackerConfig {
        recover: false,
        ..TrackerConfig::default()
    };
    let r = run_with(&mut Tracker::new(cfg), &[a, b], 10.0, 1, 3.0);
    assert_ne!(r.id(0), r.id(1));
    // Missed for 0.1 s only: left to IoU, which finds nothing; a new track.
    let r = run(&turned(0.1), 10.0, 1, 3.0);
    assert_ne!(r.id(0), r.id(1));
    // Missed for 0.7 s: too long to tell by distance; a new track.
    let r = run(&turned(0.7), 10.0, 1, 3.0);
    assert_ne!(r.id(0), r.id(1));
}

fn occluded(gap: f64) -> Obj {
    let mut o = person((100.0, 200.0), (80.0, 0.0));
    o.hidden = vec![(1.0, 1.0 + gap)];
    o
}

#[test]
fn short_occlusion_keeps_the_id_long_one_gives_a_new_id() {
    // At 80 px/s a 40 px wide box moves its own width in 0.5 s: the box after the gap does
    // not overlap the last one seen, so only the motion model can bridge the gap.
    let o = occluded(0.5);
    assert_eq!(o.bbox(1.0 - 1.0 / 30.0).iou(&o.bbox(1.5)), 0.0);
    let r = run(&[o], 30.0, 1, 3.0);
    let id = r.id(0);
    let s = r.summary(id);
    assert_eq!(r.summaries.len(), 1);
    assert!((s.first_pts - 0.0).abs() < EPS && (s.last_pts - 3.0).abs() < EPS);
    assert_eq!(s.frames_seen, 91 - 15); // 0.5 s of 30 fps frames hidden

    let r = run(&[occluded(1.5)], 30.0, 1, 4.0);
    let ids = r.ids(0);
    assert_eq!(
        ids,
        BTreeSet::from([1, 2]),
        "a 1.5 s gap must end the first track"
    );
    assert!((r.summary(1).last_pts - (1.0 - 1.0 / 30.0)).abs() < 1e-6);
    assert!((r.summary(2).first_pts - 2.5).abs() < 1e-6);
    // The new track's first detection is tentative, so it gets no id.
    assert_eq!(r.untracked(0), 1);
}

#[test]
fn lost_s_is_stream_time() {
    // The same 1.5 s gap with lost_s = 2.0 is bridged.
    let cfg = TrackerConfig {
        lost_s: 2.0,
        ..TrackerConfig::default()
    };
    let r = run_with(&mut Tracker::new(cfg), &[occluded(1.5)], 30.0, 1, 4.0);
    assert_eq!(r.ids(0).len(), 1);
}

#[test]
fn lost_s_counts_seconds_at_any_frame_rate() {
    for (fps, stride) in [(15.0, 1), (30.0, 1), (30.0, 2), (60.0, 1), (60.0, 3)] {
        let short = run(&[occluded(0.5)], fps, stride, 3.0);
        assert_eq!(short.ids(0).len(), 1, "{fps} fps, stride {stride}");
        let long = run(&[occluded(1.5)], fps, stride, 4.0);
        assert_eq!(long.ids(0).len(), 2, "{fps} fps, stride {stride}");
    }
}

#[test]
fn prediction_follows_pts_across_a_stall() {
    // No frames at all between 1.0 and 1.5 s (a decoder stall, dropped frames, variable
    // frame rate): one prediction step must cover the 0.5 s, i.e. 60 px at 120 px/s, so the
    // 40 px wide box is found again. A step of one frame interval would miss it.
    let o = person((100.0, 200.0), (120.0, 0.0));
    let mut tr = Tracker::new(TrackerConfig::default());
    let times = (0..=30).chain(45..=75).map(|i| i as f64 / 30.0);
    let mut ids = BTreeSet::new();
    for (i, t) in times.enumerate() {
        ids.extend(
            tr.update(i as u64, t, &[o.at(t).unwrap()])
                .into_iter()
                .flatten(),
        );
    }
    assert_eq!(o.bbox(1.0).iou(&o.bbox(1.5)), 0.0);
    assert_eq!(ids, BTreeSet::from([1]));
}

/// A scene with crossing, occlusion, late arrival, early departure and two classes.
/// Spans are multiples of 1/15 s so 15 and 30 fps sample the same first and last instants.
fn busy_scene() -> Vec<Obj> {
    let mut v = vec![
        person((50.0, 150.0), (90.0, 0.0)),
        person((600.0, 165.0), (-90.0, 10.0)),
        person((300.0, 400.0), (120.0, -20.0)),
        person((200.0, 300.0), (60.0, 20.0)),
        person((700.0, 450.0), (-50.0, -30.0)),
    ];
    // Hidden for 0.5 s while moving 1.5 box widths: bridged only by a prediction over the
    // real elapsed time (one 1/30 s step per update would fall 30 px short at 15 fps).
    v[2].hidden = vec![(1.2, 1.7)];
    v[3].span = (0.4, 3.2);
    v[4].span = (0.0, 2.6);
    v[4].class_id = 2;
    v
}

#[test]
fn same_tracks_at_15_and_30_fps_and_with_stride() {
    let objs = busy_scene();
    let runs = [
        run(&objs, 30.0, 1, 4.0),
        run(&objs, 15.0, 1, 4.0),
        run(&objs, 30.0, 2, 4.0),
        run(&objs, 60.0, 4, 4.0),
        run(&objs, 60.0, 1, 4.0),
    ];
    for (k, r) in runs.iter().enumerate() {
        assert_eq!(r.summaries.len(), objs.len(), "run {k}");
        let ids: BTreeSet<u64> = (0..objs.len()).map(|o| r.id(o)).collect();
        assert_eq!(ids.len(), objs.len(), "run {k}: objects share a track");
        for (o, obj) in objs.iter().enumerate() {
            let s = r.summary(r.id(o));
            assert_eq!(s.class_id, obj.class_id);
            let first = runs[0].summary(runs[0].id(o));
            assert!(
                (s.first_pts - first.first_pts).abs() < 1e-6,
                "run {k} obj {o}"
            );
            assert!(
                (s.last_pts - first.last_pts).abs() < 1e-6,
                "run {k} obj {o}"
            );
        }
    }
    // The occluded object's gap really is there in every run.
    for r in &runs {
        assert!(r.frames.iter().any(|f| f.pts > 1.3 && f.pts < 1.6));
        assert!(!r
            .frames
            .iter()
            .any(|f| f.pts > 1.3 && f.pts < 1.6 && f.got.iter().any(|g| g.0 == 2)));
    }
}

fn dips(t: f64) -> f32 {
    if (1.0..1.3).contains(&t) {
        0.3
    } else {
        0.9
    }
}

#[test]
fn low_score_detections_keep_the_track() {
    let mut o = person((100.0, 200.0), (60.0, 0.0));
    o.score = dips;
    let r = run(&[o.clone()], 30.0, 1, 2.0);
    let id = r.id(0);
    let low: Vec<_> = r
        .frames
        .iter()
        .flat_map(|f| &f.got)
        .filter(|g| g.1 < 0.5)
        .collect();
    assert_eq!(low.len(), 9);
    assert!(low.iter().all(|g| g.2 == Some(id)), "{low:?}");
    assert_eq!(r.summary(id).frames_seen, 61);

    // With `low` above the dip those detections are ignored: no id, though the track
    // coasts through and keeps its id afterwards.
    let cfg = TrackerConfig {
        low: 0.4,
        ..TrackerConfig::default()
    };
    let r = run_with(&mut Tracker::new(cfg), &[o], 30.0, 1, 2.0);
    assert_eq!(r.untracked(0), 9);
    assert_eq!(r.summary(r.id(0)).frames_seen, 61 - 9);
}

#[test]
fn low_score_detections_alone_start_nothing() {
    let mut o = person((100.0, 200.0), (60.0, 0.0));
    o.score = |_| 0.3;
    let r = run(&[o], 30.0, 1, 1.0);
    assert_eq!(r.untracked(0), 31);
    assert!(r.summaries.is_empty());
}

#[test]
fn ids_restart_at_one_per_input() {
    let objs = busy_scene();
    let mut tr = Tracker::new(TrackerConfig::default());
    let first = run_with(&mut tr, &objs, 30.0, 1, 4.0);
    let ids: BTreeSet<u64> = first.summaries.iter().map(|s| s.track_id).collect();
    assert_eq!(ids, (1..=5).collect());
    // `finish` resets: the next input starts at 1 again with the same ids.
    let second = run_with(&mut tr, &objs, 30.0, 1, 4.0);
    assert_eq!(second.summaries, first.summaries);
    // `reset` mid-input drops every track.
    tr.update(0, 0.0, &[objs[0].at(0.0).unwrap()]);
    tr.update(1, 0.1, &[objs[0].at(0.1).unwrap()]);
    tr.reset();
    assert_eq!(tr.tracks().count(), 0);
    let ids = tr.update(0, 5.0, &[objs[1].at(0.0).unwrap()]);
    assert_eq!(ids, vec![Some(1)]);
}

#[test]
fn different_classes_never_share_a_track() {
    // Two objects of different classes on exactly the same path.
    let mut cat = person((100.0, 200.0), (60.0, 0.0));
    cat.class_id = 16;
    let objs = [person((100.0, 200.0), (60.0, 0.0)), cat];
    let r = run(&objs, 30.0, 1, 2.0);
    assert_ne!(r.id(0), r.id(1));
    assert_eq!(r.summary(r.id(0)).class_id, 0);
    assert_eq!(r.summary(r.id(1)).class_id, 16);

    // An object whose class flips mid-way gets a new track; the old one is not continued.
    let mut early = person((100.0, 200.0), (60.0, 0.0));
    early.span = (0.0, 1.0);
    let mut late = early.clone();
    late.span = (1.0 + 1.0 / 30.0, 2.0);
    late.class_id = 3;
    let r = run(&[early, late], 30.0, 1, 2.0);
    assert_ne!(r.id(0), r.id(1));
    assert_eq!(r.summary(r.id(1)).class_id, 3);
    assert!((r.summary(r.id(0)).last_pts - 1.0).abs() < 1e-6);
}

#[test]
fn one_frame_false_positives_get_no_id_and_leave_no_gap() {
    let mut blip = person((400.0, 400.0), (0.0, 0.0));
    blip.span = (0.5, 0.5);
    let mut late = person((100.0, 200.0), (30.0, 0.0));
    late.span = (1.0, 2.0);
    let r = run(&[blip, late], 30.0, 1, 2.0);
    assert_eq!(r.untracked(0), 1);
    assert!(r.ids(0).is_empty());
    // The later object is confirmed on its 2nd frame and gets id 1, not 2.
    assert_eq!(r.id(1), 1);
    assert_eq!(r.untracked(1), 1);
    assert_eq!(r.summaries.len(), 1);
}

#[test]
fn summary_fields() {
    let mut o = person((100.0, 200.0), (30.0, 0.0));
    o.span = (0.2, 1.2);
    o.score = |t| if t < 0.7 { 0.8 } else { 0.6 + 1e-3 };
    let r = run(&[o.clone()], 10.0, 1, 2.0);
    let s = r.summary(r.id(0));
    assert_eq!((s.first_frame, s.last_frame), (2, 12));
    assert_eq!(s.frames_seen, 11);
    assert!((s.mean_score - (5.0 * 0.8 + 6.0 * 0.601) / 11.0).abs() < 1e-5);
    assert_eq!(s.first_box, o.bbox(0.2));
    assert_eq!(s.last_box, o.bbox(1.2));
    let json = serde_json::to_string(s).unwrap();
    assert!(json.contains("\"track_id\":1") && json.contains("\"first_box\":{\"x1\""));
}

#[test]
fn detections_at_or_below_low_are_ignored_and_order_is_kept() {
    let mut tr = Tracker::new(TrackerConfig::default());
    let a = person((100.0, 100.0), (0.0, 0.0)).at(0.0).unwrap();
    let mut weak = person((400.0, 100.0), (0.0, 0.0)).at(0.0).unwrap();
    weak.score = 0.1;
    let mid = Detection {
        score: 0.55,
        ..person((600.0, 300.0), (0.0, 0.0)).at(0.0).unwrap()
    };
    let ids = tr.update(0, 0.0, &[weak.clone(), a.clone(), mid.clone()]);
    // `mid` is high (> 0.5) but not sure enough (<= 0.6) to start a track.
    assert_eq!(ids, vec![None, Some(1), None]);
    let ids = tr.update(1, 0.04, &[a, weak]);
    assert_eq!(ids, vec![Some(1), None]);
}

#[test]
fn line_counting_with_the_tracker() {
    // Walks down through a horizontal line drawn left to right, then back up: "in", "out".
    let mut o = person((300.0, 150.0), (0.0, 100.0));
    o.span = (0.0, 2.0);
    let mut back = person((300.0, 350.0), (0.0, -100.0));
    back.span = (2.5, 4.5);
    back.start.1 += 250.0; // at y = 350 when t = 2.5
    let mut tr = Tracker::new(TrackerConfig::default());
    let line = CountLine {
        name: "door".into(),
        a: (100.0, 300.0),
        b: (500.0, 300.0),
    };
    let mut counter = LineCounter::new(vec![line], LineCounterConfig::default());
    let mut events = Vec::new();
    for i in 0..=135u64 {
        let pts = i as f64 / 30.0;
        let dets: Vec<_> = [&o, &back].iter().filter_map(|o| o.at(pts)).collect();
        tr.update(i, pts, &dets);
        events.extend_from_slice(counter.update(i, pts, tr.tracks()));
    }
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        (events[0].direction, events[0].track_id),
        (Direction::In, 1)
    );
    assert_eq!(
        (events[1].direction, events[1].track_id),
        (Direction::Out, 1)
    );
    // Feet (box bottom, centre y + 50) reach y = 300 at t = 1.0 s.
    assert!((events[0].pts - 1.0).abs() < 0.25 && (events[0].y - 300.0).abs() < 1e-3);
    assert_eq!(counter.count("door", 0, Direction::In), 1);
    assert_eq!(counter.count("door", 0, Direction::Out), 1);
    let json = serde_json::to_string(&events[0]).unwrap();
    assert!(json.contains("\"direction\":\"in\"") && json.contains("\"line\":\"door\""));
}

#[test]
fn config_for_conf() {
    assert_eq!(TrackerConfig::for_conf(0.5), TrackerConfig::default());
    let c = TrackerConfig::for_conf(0.9);
    assert!((c.high, c.low) == (0.9, 0.1) && (c.new_track - 0.95).abs() < 1e-6);
    let c = TrackerConfig::for_conf(0.1);
    assert!((c.high, c.low) == (0.1, 0.05) && (c.new_track - 0.2).abs() < 1e-6);
}
