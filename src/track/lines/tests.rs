use super::*;

/// A horizontal line from x = 100 to x = 500 at y = 300, drawn left to right.
fn door() -> CountLine {
    CountLine {
        name: "door".into(),
        a: (100.0, 300.0),
        b: (500.0, 300.0),
    }
}

use crate::track::matched_track_at as feet;

/// Feeds one track along `path` (one point per frame); returns every event.
fn walk(c: &mut LineCounter, id: u64, class_id: u32, path: &[(f32, f32)]) -> Vec<CrossingEvent> {
    let mut out = Vec::new();
    for (i, &(x, y)) in path.iter().enumerate() {
        out.extend_from_slice(c.update(i as u64, i as f64 / 30.0, [feet(id, class_id, x, y)]));
    }
    out
}

fn vertical(x: f32, from: f32, to: f32, step: f32) -> Vec<(f32, f32)> {
    let n = ((to - from) / step).abs().round() as usize;
    (0..=n)
        .map(|i| (x, from + (to - from) * i as f32 / n as f32))
        .collect()
}

#[test]
fn each_direction_counts_once() {
    let mut c = LineCounter::new(vec![door()], LineCounterConfig::default());
    let down = walk(&mut c, 1, 0, &vertical(300.0, 200.0, 400.0, 3.0));
    assert_eq!(down.len(), 1);
    assert_eq!(down[0].direction, Direction::In);
    assert!((down[0].x - 300.0).abs() < 1e-3 && (down[0].y - 300.0).abs() < 1e-3);
    let up = walk(&mut c, 1, 0, &vertical(250.0, 400.0, 200.0, 3.0));
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].direction, Direction::Out);
    assert_eq!(c.count("door", 0, Direction::In), 1);
    assert_eq!(c.count("door", 0, Direction::Out), 1);
    let totals = c.totals();
    assert_eq!(totals.len(), 1);
    assert_eq!((totals[0].inward, totals[0].outward), (1, 1));
    let json = serde_json::to_string(&totals[0]).unwrap();
    assert_eq!(json, r#"{"line":"door","class_id":0,"in":1,"out":1}"#);
}

/// Approaches from above, then oscillates within ±2 px of the line for 2 s.
fn jitter_path() -> Vec<(f32, f32)> {
    let mut p = vertical(300.0, 250.0, 298.0, 4.0);
    p.extend((0..60).map(|i| {
        (
            300.0 + (i % 3) as f32,
            if i % 2 == 0 { 298.0 } else { 302.0 },
        )
    }));
    p
}

#[test]
fn jitter_on_the_line_does_not_count() {
    // Without hysteresis the same path crosses the line dozens of times.
    let bare = LineCounterConfig {
        hysteresis_px: 0.0,
        ..LineCounterConfig::default()
    };
    let mut c = LineCounter::new(vec![door()], bare);
    assert!(walk(&mut c, 1, 0, &jitter_path()).len() > 50);

    // Jitter, then back where it came from: nothing.
    let mut c = LineCounter::new(vec![door()], LineCounterConfig::default());
    let mut path = jitter_path();
    path.extend(vertical(300.0, 298.0, 250.0, 4.0));
    assert!(walk(&mut c, 1, 0, &path).is_empty());

    // Jitter, then on through: exactly one "in".
    let mut c = LineCounter::new(vec![door()], LineCounterConfig::default());
    let mut path = jitter_path();
    path.extend(vertical(300.0, 302.0, 350.0, 4.0));
    let ev = walk(&mut c, 1, 0, &path);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].direction, Direction::In);
    assert!(ev[0].frame as usize > jitter_path().len());
}

#[test]
fn passing_beyond_the_segment_does_not_count() {
    let mut c = LineCounter::new(vec![door()], LineCounterConfig::default());
    // Down at x = 520, past the b end (x = 500): the infinite line is crossed, not the segment.
    assert!(walk(&mut c, 1, 0, &vertical(520.0, 200.0, 400.0, 5.0)).is_empty());
    // Now below; coming back up through the segment counts one "out".
    let ev = walk(&mut c, 1, 0, &vertical(480.0, 400.0, 200.0, 5.0));
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].direction, Direction::Out);
    // A diagonal move from beyond the end to the other side that misses the segment.
    let mut c = LineCounter::new(vec![door()], LineCounterConfig::default());
    assert!(walk(&mut c, 2, 0, &[(560.0, 250.0), (530.0, 350.0)]).is_empty());
    // … and one whose step passes through the segment counts, even in one big jump.
    assert_eq!(
        walk(&mut c, 3, 0, &[(520.0, 250.0), (470.0, 350.0)]).len(),
        1
    );
}

#[test]
fn counts_per_class_and_line_and_forgets_ended_tracks() {
    let lines = vec![
        door(),
        CountLine {
            name: "side".into(),
            a: (400.0, 500.0),
            b: (400.0, 100.0),
        },
    ];
    let mut c = LineCounter::new(lines, LineCounterConfig::default());
    walk(&mut c, 1, 0, &vertical(300.0, 200.0, 400.0, 5.0));
    walk(&mut c, 2, 2, &vertical(300.0, 200.0, 400.0, 5.0));
    walk(&mut c, 3, 2, &vertical(300.0, 200.0, 400.0, 5.0));
    // Line "side" goes up the image at x = 400: its right on screen is x > 400.
    let ev = walk(&mut c, 4, 0, &[(350.0, 250.0), (450.0, 250.0)]);
    assert_eq!(
        (ev.len(), ev[0].line.as_str(), ev[0].direction),
        (1, "side", Direction::In)
    );
    assert_eq!(c.count("door", 0, Direction::In), 1);
    assert_eq!(c.count("door", 2, Direction::In), 2);
    assert_eq!(c.count("door", 1, Direction::In), 0);
    assert_eq!(c.count("side", 0, Direction::In), 1);
    assert_eq!(c.totals().len(), 3);
    // Ended tracks are forgotten once no young track could take them over.
    c.update(1000, 100.0, std::iter::empty());
    assert!(c.tracks.is_empty());
    c.reset();
    assert!(c.totals().is_empty());
}

#[test]
fn lost_tracks_keep_their_side_through_occlusion() {
    let mut c = LineCounter::new(vec![door()], LineCounterConfig::default());
    c.update(0, 0.0, [feet(1, 0, 300.0, 250.0)]);
    let mut lost = feet(1, 0, 300.0, 250.0);
    lost.matched = false;
    for i in 1..10 {
        assert!(c.update(i, i as f64 / 30.0, [lost]).is_empty());
    }
    let ev = c.update(10, 0.33, [feet(1, 0, 300.0, 360.0)]);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].frame, ev[0].direction), (10, Direction::In));
}

/// Frames at 10 fps: `a` walks down at x = 300 until `a_until` (then is lost but listed),
/// `b` appears at `b_from` and walks with velocity `b_vy` px/s. Returns every event.
fn id_change(a_until: f64, b_from: f64, b_start: f32, b_vy: f32) -> Vec<CrossingEvent> {
    let mut c = LineCounter::new(vec![door()], LineCounterConfig::default());
    let mut out = Vec::new();
    for i in 0..30u64 {
        let t = i as f64 / 10.0;
        let mut views = Vec::new();
        let a_y = 200.0 + 40.0 * t.min(a_until) as f32;
        let mut a = feet(1, 0, 300.0, a_y);
        a.matched = t <= a_until + 1e-9;
        views.push(a);
        if t >= b_from - 1e-9 {
            let y = b_start + b_vy * (t - b_from) as f32;
            views.push(feet(2, 0, 300.0, y));
        }
        out.extend_from_slice(c.update(i, t, views));
    }
    out
}

#[test]
fn a_new_id_just_past_the_line_continues_the_lost_one() {
    // `a` is last seen at y = 296 (in the band; its side is from y = 292), `b` starts
    // at y = 312 0.2 s later, walking on down: one "in", on b's id.
    let ev = id_change(2.4, 2.6, 312.0, 40.0);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!((ev[0].track_id, ev[0].direction), (2, Direction::In));
    assert!((ev[0].y - 300.0).abs() < 1e-3, "{ev:?}");
    // Without the hand-over: nothing.
    let mut c = LineCounter::new(
        vec![door()],
        LineCounterConfig {
            hand_over: false,
            ..LineCounterConfig::default()
        },
    );
    let mut n = 0;
    for i in 0..30u64 {
        let t = i as f64 / 10.0;
        let mut a = feet(1, 0, 300.0, 200.0 + 40.0 * t.min(2.4) as f32);
        a.matched = t <= 2.4 + 1e-9;
        let mut views = vec![a];
        if t >= 2.6 - 1e-9 {
            views.push(feet(2, 0, 300.0, 312.0 + 40.0 * (t - 2.6) as f32));
        }
        n += c.update(i, t, views).len();
    }
    assert_eq!(n, 0);
}

#[test]
fn a_track_that_already_crossed_is_not_counted_again_by_its_successor() {
    // `a` crosses at 2.5 s and is lost at y = 316; `b` goes on from y = 330.
    let ev = id_change(2.9, 2.1 + 1.0, 330.0, 40.0);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!((ev[0].track_id, ev[0].direction), (1, Direction::In));
}

#[test]
fn no_hand_over_to_one_going_the_other_way_or_too_far_or_too_late() {
    // Walking back up from y = 312: someone else.
    assert!(id_change(2.4, 2.6, 312.0, -40.0).is_empty());
    // 150 px further on: too far for 0.2 s.
    assert!(id_change(2.4, 2.6, 446.0, 40.0).is_empty());
    // 1.4 s later: the lost track had been lost for longer than lost_s (1 s).
    assert!(id_change(1.2, 2.6, 312.0, 40.0).is_empty());
}

#[test]
fn a_lost_track_matched_again_after_a_hand_over_starts_afresh() {
    let mut c = LineCounter::new(vec![door()], LineCounterConfig::default());
    let mut ev = Vec::new();
    for i in 0..40u64 {
        let t = i as f64 / 10.0;
        let mut a = feet(1, 0, 300.0, 200.0 + 40.0 * t.min(2.4) as f32);
        a.matched = t <= 2.4 + 1e-9 || t >= 3.2 - 1e-9;
        if t >= 3.2 - 1e-9 {
            // Back, on the far side (a duplicate of `b`'s object).
            a = feet(1, 0, 300.0, 340.0 + 40.0 * (t - 3.2) as f32);
        }
        let mut views = vec![a];
        if t >= 2.6 - 1e-9 {
            views.push(feet(2, 0, 300.0, 312.0 + 40.0 * (t - 2.6) as f32));
        }
        ev.extend_from_slice(c.update(i, t, views));
    }
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].track_id, 2);
}

#[test]
fn zero_length_line_never_counts() {
    let dot = CountLine {
        name: "dot".into(),
        a: (300.0, 300.0),
        b: (300.0, 300.0),
    };
    let mut c = LineCounter::new(vec![dot], LineCounterConfig::default());
    assert!(walk(&mut c, 1, 0, &vertical(300.0, 200.0, 400.0, 5.0)).is_empty());
}
