use super::*;

/// A U seen from above: a 300 × 200 block (x 100..400, y 100..300) with a notch (x 200..300,
/// y 100..250) cut from its top edge. Concave, with reflex vertices at (200, 250) and
/// (300, 250).
fn u_shape() -> Zone {
    let p = [
        (100.0, 100.0),
        (200.0, 100.0),
        (200.0, 250.0),
        (300.0, 250.0),
        (300.0, 100.0),
        (400.0, 100.0),
        (400.0, 300.0),
        (100.0, 300.0),
    ];
    Zone::new("u", &p, Vec::new()).unwrap()
}

#[test]
fn concave_polygons_leave_their_notch_out() {
    let u = u_shape();
    for (x, y) in [
        (150.0, 150.0),
        (350.0, 150.0),
        (250.0, 280.0),
        (120.0, 290.0),
    ] {
        assert!(u.contains(x, y), "({x}, {y}) is in an arm or the base");
    }
    for (x, y) in [
        (250.0, 150.0),
        (250.0, 249.0),
        (50.0, 200.0),
        (450.0, 200.0),
    ] {
        assert!(
            !u.contains(x, y),
            "({x}, {y}) is in the notch or beside the U"
        );
    }
    // Rays through the reflex vertices' height (y = 250) and the top edge's (y = 100):
    // a vertex on the ray is counted once.
    assert!(u.contains(150.0, 250.0) && u.contains(350.0, 250.0));
    assert!(!u.contains(50.0, 250.0) && !u.contains(450.0, 250.0));
    assert!(!u.contains(50.0, 100.0) && !u.contains(250.0, 100.0));
    assert!(!u.contains(250.0, 99.0));
}

#[test]
fn points_on_edges_and_vertices_are_inside() {
    let u = u_shape();
    let on = [
        (100.0, 100.0), // a convex vertex
        (200.0, 250.0), // a reflex vertex
        (150.0, 100.0), // the top edge of an arm
        (250.0, 250.0), // the bottom of the notch
        (200.0, 175.0), // the notch's side
        (250.0, 300.0), // the bottom edge
        (400.0, 300.0), // a corner
        (400.0, 123.25),
    ];
    for (x, y) in on {
        assert!(u.contains(x, y), "({x}, {y}) is on the boundary");
    }
    // Just off the boundary, outside: not in.
    for (x, y) in [
        (99.99, 150.0),
        (250.0, 249.99),
        (250.0, 300.01),
        (200.01, 175.0),
    ] {
        assert!(!u.contains(x, y), "({x}, {y}) is just outside");
    }
    // A slanted edge: its points (computed in f32) are on it.
    let tri = Zone::new("t", &[(0.0, 0.0), (30.0, 10.0), (0.0, 20.0)], vec![]).unwrap();
    for i in 0..=30 {
        let x = i as f32;
        assert!(tri.contains(x, x / 3.0), "({x}, {}) on the edge", x / 3.0);
    }
    assert!(!tri.contains(f32::NAN, 5.0));
}

#[test]
fn polygons_that_cannot_count_are_refused() {
    let err = |p: &[(f32, f32)]| Zone::new("z", p, vec![]).unwrap_err();
    // A bow tie: edge 1 (point 1 → 2) crosses edge 3 (point 3 → 4).
    let bow = err(&[(0.0, 0.0), (10.0, 10.0), (10.0, 0.0), (0.0, 10.0)]);
    assert_eq!(
        bow,
        ZoneError::SelfIntersecting {
            name: "z".into(),
            a: 1,
            b: 3
        }
    );
    assert!(bow.to_string().contains("crosses itself"), "{bow}");
    // A vertex touching another edge, and an edge turning straight back on itself.
    let touch = [
        (0.0, 0.0),
        (20.0, 0.0),
        (20.0, 20.0),
        (10.0, 0.0),
        (0.0, 20.0),
    ];
    assert!(matches!(err(&touch), ZoneError::SelfIntersecting { .. }));
    let spike = [
        (0.0, 0.0),
        (20.0, 0.0),
        (20.0, 20.0),
        (20.0, 10.0),
        (0.0, 20.0),
    ];
    assert!(matches!(err(&spike), ZoneError::SelfIntersecting { .. }));
    assert_eq!(
        err(&[(0.0, 0.0), (5.0, 5.0), (0.0, 0.0)]),
        ZoneError::TooFewPoints {
            name: "z".into(),
            points: 2
        }
    );
    assert_eq!(
        err(&[(0.0, 0.0), (5.0, 5.0), (9.0, 9.0)]),
        ZoneError::NoArea { name: "z".into() }
    );
    assert!(matches!(
        err(&[(0.0, 0.0), (5.0, f32::INFINITY), (9.0, 0.0)]),
        ZoneError::NotFinite { index: 2, .. }
    ));
    // Closed explicitly (last = first) and with a repeated point: the same triangle.
    let closed = [
        (0.0, 0.0),
        (10.0, 0.0),
        (10.0, 0.0),
        (10.0, 10.0),
        (0.0, 0.0),
    ];
    let z = Zone::new("z", &closed, vec![]).unwrap();
    assert_eq!(z.points(), &[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0)]);
    // Collinear neighbours going on in the same direction are fine.
    let square = [
        (0.0, 0.0),
        (5.0, 0.0),
        (10.0, 0.0),
        (10.0, 10.0),
        (0.0, 10.0),
    ];
    assert!(Zone::new("z", &square, vec![]).is_ok());
}

#[test]
fn zones_must_have_area_inside_the_frame() {
    let zone = |p: &[(f32, f32)]| ZoneConfig {
        zones: vec![Zone::new("door", p, vec![]).unwrap()],
        ..ZoneConfig::default()
    };
    let rect = |x0: f32, y0: f32, x1: f32, y1: f32| [(x0, y0), (x1, y0), (x1, y1), (x0, y1)];
    assert_eq!(
        u_shape().area_inside(768.0, 576.0),
        300.0 * 200.0 - 100.0 * 150.0
    );
    // The U's right arm and half its base stick out of a 300-px-wide frame.
    assert_eq!(
        u_shape().area_inside(300.0, 576.0),
        100.0 * 200.0 + 100.0 * 50.0
    );
    assert_eq!(
        zone(&rect(700.0, 500.0, 900.0, 700.0)).check_frame(768, 576),
        Ok(())
    );
    assert_eq!(
        zone(&rect(-50.0, -50.0, 10.0, 10.0)).check_frame(768, 576),
        Ok(())
    );
    let outside = zone(&rect(800.0, 0.0, 900.0, 100.0)).check_frame(768, 576);
    let err = outside.unwrap_err();
    assert_eq!(
        err.to_string(),
        "zone 'door' (800,0;900,0;900,100;800,100) has no area inside the 768x576 frame"
    );
    // Touching the frame along its edge only: no area inside.
    assert!(zone(&rect(768.0, 0.0, 900.0, 100.0))
        .check_frame(768, 576)
        .is_err());
    // A concave zone around the frame's corner whose arms both miss it.
    let around = [
        (-10.0, 600.0),
        (-10.0, -10.0),
        (800.0, -10.0),
        (800.0, -5.0),
        (-5.0, -5.0),
        (-5.0, 600.0),
    ];
    assert!(zone(&around).check_frame(768, 576).is_err());
}

use crate::track::matched_track_at as at;

/// A rectangle zone x 100..300, y 0..400, every class.
fn room() -> ZoneConfig {
    let p = [(100.0, 0.0), (300.0, 0.0), (300.0, 400.0), (100.0, 400.0)];
    ZoneConfig {
        zones: vec![Zone::new("room", &p, vec![]).unwrap()],
        ..ZoneConfig::default()
    }
}

/// Feeds one track (id 1, class 0) through `xs` (feet at y = 200), one observation every
/// `dt` seconds from frame 0; returns every event.
fn walk(c: &mut ZoneCounter, xs: &[f32], dt: f64) -> Vec<ZoneEvent> {
    let mut events = Vec::new();
    for (i, &x) in xs.iter().enumerate() {
        let f = c.update(i as u64, i as f64 * dt, [at(1, 0, x, 200.0)]);
        events.extend(f.events);
    }
    events
}

#[test]
fn inertia_ignores_short_visits_and_dates_events_from_the_first_observation() {
    // At 10 fps, 0.3 s inertia: 2 frames inside then out again is not an entry.
    let mut c = ZoneCounter::new(room());
    let xs = [50.0, 90.0, 110.0, 120.0, 90.0, 80.0];
    assert!(walk(&mut c, &xs, 0.1).is_empty());
    // 4 frames inside (0.3 s from the first to the last) is; the entry is the first of them.
    let mut c = ZoneCounter::new(room());
    let xs = [50.0, 90.0, 110.0, 120.0, 130.0, 140.0, 150.0];
    let ev = walk(&mut c, &xs, 0.1);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].kind, ev[0].at.frame), (ZoneEventKind::Enter, 2));
    // Feet wavering out across the edge for 0.2 s and back: still inside, no exit.
    let mut xs = vec![150.0; 5];
    xs.extend([95.0, 90.0, 105.0, 110.0, 95.0, 104.0]);
    let mut c = ZoneCounter::new(room());
    let ev = walk(&mut c, &xs, 0.1);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(
        c.update(20, 2.0, [at(1, 0, 150.0, 200.0)]).occupancy,
        vec![1]
    );
    // Out for 0.3 s: an exit, dated from the first observation outside.
    let mut xs = vec![150.0; 5];
    xs.extend([90.0, 80.0, 70.0, 60.0]);
    let mut c = ZoneCounter::new(room());
    let ev = walk(&mut c, &xs, 0.1);
    assert_eq!(ev.len(), 2);
    let ZoneEventKind::Exit {
        dwell_s,
        track_ended,
    } = ev[1].kind
    else {
        panic!("an exit: {ev:?}")
    };
    assert_eq!((ev[1].at.frame, track_ended), (5, false));
    assert!((dwell_s - 0.5).abs() < 1e-9, "{dwell_s}");
    assert_eq!(c.update(9, 0.9, [at(1, 0, 60.0, 200.0)]).occupancy, vec![0]);
}

#[test]
fn zero_inertia_enters_and_leaves_on_the_frame() {
    let mut c = ZoneCounter::new(ZoneConfig {
        inertia_s: 0.0,
        ..room()
    });
    let ev = walk(&mut c, &[50.0, 150.0, 50.0], 0.1);
    assert_eq!(ev.len(), 2);
    assert_eq!((ev[0].at.frame, ev[0].kind), (1, ZoneEventKind::Enter));
    assert_eq!(ev[1].at.frame, 2);
    assert!(matches!(
        ev[1].kind,
        ZoneEventKind::Exit { dwell_s, track_ended: false } if (dwell_s - 0.1).abs() < 1e-9
    ));
}

/// The feet of someone walking at 100 px/s from x = 0 at t = 0: crossing the room (x 100..300)
/// from t = 1 s to t = 3 s, then on to x = 400.
fn walker(t: f64) -> f32 {
    (100.0 * t) as f32
}

/// The dwell of one walk through the room seen at `fps`, every `stride`-th frame.
fn dwell_at(fps: f64, stride: u64) -> f64 {
    let mut c = ZoneCounter::new(room());
    let mut events = Vec::new();
    for frame in (0..(4.0 * fps) as u64).step_by(stride as usize) {
        let t = frame as f64 / fps;
        events.extend(c.update(frame, t, [at(1, 0, walker(t), 200.0)]).events);
    }
    assert_eq!(events.len(), 2, "{fps} fps, stride {stride}: {events:?}");
    let ZoneEventKind::Exit { dwell_s, .. } = events[1].kind else {
        panic!("an exit: {events:?}")
    };
    assert_eq!(dwell_s, events[1].at.pts - events[0].at.pts);
    dwell_s
}

#[test]
fn dwell_is_seconds_whatever_the_frame_rate_and_stride() {
    // (fps, stride): observations every 1/30 s up to every 0.2 s.
    let runs = [
        (30.0, 1),
        (30.0, 3),
        (10.0, 1),
        (25.0, 2),
        (10.0, 2),
        (29.97, 1),
        (15.0, 3),
    ];
    for (fps, stride) in runs {
        let period = stride as f64 / fps;
        let d = dwell_at(fps, stride);
        // Walked in 2 s; each end is seen late by at most one observation period.
        assert!(
            (d - 2.0).abs() <= period + 1e-9,
            "{fps} fps stride {stride}: {d}"
        );
        for (fps2, stride2) in runs {
            let slower = period.max(stride2 as f64 / fps2);
            let d2 = dwell_at(fps2, stride2);
            let what = format!("{fps}/{stride}: {d} vs {fps2}/{stride2}: {d2}");
            assert!((d - d2).abs() <= slower + 1e-9, "{what}");
        }
    }
}

#[test]
fn lost_tracks_keep_their_state_and_ended_ones_leave() {
    let mut c = ZoneCounter::new(room());
    for i in 0..5 {
        c.update(i, i as f64 * 0.1, [at(7, 0, 150.0, 200.0)]);
    }
    // Unmatched (coasting through an occlusion): no observation, still inside.
    let mut lost = at(7, 0, 150.0, 200.0);
    lost.matched = false;
    for i in 5..10 {
        let f = c.update(i, i as f64 * 0.1, [lost]);
        assert!(f.events.is_empty() && f.ended.is_empty());
        assert_eq!(f.occupancy, vec![1]);
    }
    // The tracker drops it: it leaves at its last observation inside (frame 4).
    let f = c.update(10, 1.0, []);
    assert_eq!(f.events.len(), 1);
    assert_eq!(f.events[0].at, Stamp { frame: 4, pts: 0.4 });
    assert!(matches!(
        f.events[0].kind,
        ZoneEventKind::Exit { track_ended: true, dwell_s } if (dwell_s - 0.4).abs() < 1e-9
    ));
    assert_eq!(f.occupancy, vec![0]);
    assert_eq!(f.ended.len(), 1);
    assert_eq!(f.ended[0].track_id, 7);
    assert_eq!(f.ended[0].zones[0].visits, 1);
    let end = c.finish();
    assert!(end.remaining.is_empty());
    assert_eq!((end.counts[0].entered, end.counts[0].exited), (1, 1));
    assert_eq!(end.counts[0].inside_at_end, 0);
}

#[test]
fn classes_totals_and_the_end_of_an_input() {
    let p = [(100.0, 0.0), (300.0, 0.0), (300.0, 400.0), (100.0, 400.0)];
    let cfg = ZoneConfig {
        zones: vec![
            Zone::new("cars", &p, vec![2]).unwrap(),
            Zone::new("all", &p, vec![]).unwrap(),
        ],
        ..ZoneConfig::default()
    };
    let mut c = ZoneCounter::new(cfg);
    // A person (class 0) and a car (class 2) stay inside; a second person walks in and out.
    let mut events = Vec::new();
    for i in 0..30u64 {
        let t = i as f64 * 0.1;
        let x = if i < 20 { 150.0 } else { 50.0 };
        let tracks = [
            at(1, 0, 150.0, 200.0),
            at(2, 2, 200.0, 200.0),
            at(3, 0, x, 200.0),
        ];
        let f = c.update(i, t, tracks);
        events.extend(f.events);
        if i == 10 {
            assert_eq!(f.occupancy, vec![1, 3], "the car alone is in 'cars'");
        }
    }
    let named = |z: &str| events.iter().filter(|e| e.zone == z).count();
    assert_eq!((named("cars"), named("all")), (1, 4));
    // Per detection: the zones its feet are in now, classes checked.
    let det = |class_id, x| Detection {
        class_id,
        score: 0.9,
        box_in_frame: at(0, class_id, x, 200.0).last_box,
    };
    let inside = c.inside(&[det(0, 150.0), det(2, 150.0), det(2, 50.0)]);
    assert_eq!(inside, vec![vec![1], vec![0, 1], vec![]]);
    let end = c.finish();
    let ids: Vec<u64> = end.remaining.iter().map(|d| d.track_id).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    // Track 1: in "all" from 0.0 s to its last observation at 2.9 s, no exit.
    let d = &end.remaining[0].zones;
    assert_eq!((d.len(), d[0].zone.as_str(), d[0].visits), (1, "all", 1));
    assert!((d[0].dwell_s - 2.9).abs() < 1e-9);
    let counts: Vec<_> = (end.counts.iter())
        .map(|c| {
            (
                c.zone.as_str(),
                c.class_id,
                c.entered,
                c.exited,
                c.inside_at_end,
            )
        })
        .collect();
    assert_eq!(
        counts,
        vec![
            ("cars", 2, 1, 0, 1),
            ("all", 0, 2, 1, 1),
            ("all", 2, 1, 0, 1)
        ]
    );
    let person = &end.counts[1];
    assert!((person.dwell_s_sum - 2.0).abs() < 1e-9 && person.dwell_s_max == person.dwell_s_sum);
    // Finished means forgotten.
    assert_eq!(c.finish(), ZonesEnd::default());
}
