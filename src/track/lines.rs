//! Counting tracks that cross line segments.
//!
//! Each track has a reference point, by default its box's **bottom centre** (where a person
//! stands on the ground; the box centre is an option for objects seen from above). On every
//! frame where the track was matched, the point of its latest detection box is tested against
//! each [`CountLine`].
//!
//! **Direction.** A line goes from `a` to `b`. [`Direction::In`] is a crossing from the left
//! of `a → b` to its right *as seen on screen* (image y grows downwards), [`Direction::Out`]
//! the reverse. For a line drawn left to right (`a` left of `b`), "in" means moving down the
//! image; to count the other way, swap `a` and `b`.
//!
//! **Hysteresis.** A band of `hysteresis_px` on both sides of the line is neutral ground: a
//! point inside it is on neither side. Per track and line, the counter remembers the side and
//! the latest position of the point outside the band. A crossing is counted when the point
//! next shows up outside the band on the *other* side, so a point wandering within the band —
//! detector jitter while someone stands on the line — never counts, and a real crossing counts
//! once, however long the point lingers near the line.
//!
//! **Extent.** The crossing must happen within the segment: the move from the last position on
//! the old side to the first on the new side must intersect the segment `a–b` (ends included).
//! A track that passes beyond an end changes side without being counted.
//!
//! A track's first side is the one where it is first seen outside the band: a track that
//! appears already on the far side (or inside the band and then leaves it) is not counted.

use super::TrackView;
use crate::postprocess::BoxInFrame;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// A counting line segment in frame pixels.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CountLine {
    pub name: String,
    pub a: (f32, f32),
    pub b: (f32, f32),
}

/// Crossing direction relative to the line's orientation `a → b` (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From the left of `a → b` to its right, as seen on screen.
    In,
    /// From the right of `a → b` to its left.
    Out,
}

/// Which point of a track's box is tested against lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum RefPoint {
    /// `((x1 + x2) / 2, y2)`: the feet of a person.
    #[default]
    BottomCentre,
    /// `((x1 + x2) / 2, (y1 + y2) / 2)`.
    Centre,
}

impl RefPoint {
    fn of(self, b: &BoxInFrame) -> (f32, f32) {
        let x = 0.5 * (b.x1 + b.x2);
        match self {
            RefPoint::BottomCentre => (x, b.y2),
            RefPoint::Centre => (x, 0.5 * (b.y1 + b.y2)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LineCounterConfig {
    /// Half-width in pixels of the neutral band around each line. Default 5.0: more than the
    /// frame-to-frame jitter of a standing person's box bottom at SSD resolutions, much less
    /// than the distance walked across a line in the ~0.1 s of frames around a crossing.
    pub hysteresis_px: f32,
    /// The reference point. Default: bottom centre.
    pub point: RefPoint,
}

impl Default for LineCounterConfig {
    fn default() -> Self {
        LineCounterConfig {
            hysteresis_px: 5.0,
            point: RefPoint::BottomCentre,
        }
    }
}

/// One crossing, for logging as JSONL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CrossingEvent {
    pub track_id: u64,
    pub class_id: u32,
    pub line: String,
    pub direction: Direction,
    /// Frame index and pts of the observation that completed the crossing.
    pub frame: u64,
    pub pts: f64,
    /// Where the track's path crossed the line, in frame pixels.
    pub x: f32,
    pub y: f32,
}

/// Running totals for one line and class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineCount {
    pub line: String,
    pub class_id: u32,
    #[serde(rename = "in")]
    pub inward: u64,
    #[serde(rename = "out")]
    pub outward: u64,
}

/// The latest point seen outside a line's band, and on which side (+1 right, −1 left).
#[derive(Debug, Clone, Copy)]
struct Anchor {
    side: i8,
    point: (f32, f32),
}

#[derive(Debug)]
struct TrackLines {
    /// Pass of [`LineCounter::update`] in which the track was last listed.
    pass: u64,
    anchors: Vec<Option<Anchor>>,
}

/// Counts crossings of a set of lines by tracks; one per video input (or [`reset`] between).
///
/// [`reset`]: LineCounter::reset
#[derive(Debug)]
pub struct LineCounter {
    lines: Vec<CountLine>,
    cfg: LineCounterConfig,
    tracks: HashMap<u64, TrackLines>,
    /// (line index, class id) → [in, out].
    totals: BTreeMap<(usize, u32), [u64; 2]>,
    events: Vec<CrossingEvent>,
    pass: u64,
}

impl LineCounter {
    /// A counter over `lines`. A zero-length line never counts.
    pub fn new(lines: Vec<CountLine>, cfg: LineCounterConfig) -> Self {
        LineCounter {
            lines,
            cfg,
            tracks: HashMap::new(),
            totals: BTreeMap::new(),
            events: Vec::new(),
            pass: 0,
        }
    }

    pub fn lines(&self) -> &[CountLine] {
        &self.lines
    }

    /// Forgets all track state, totals and events (for a new input).
    pub fn reset(&mut self) {
        self.tracks.clear();
        self.totals.clear();
        self.events.clear();
        self.pass = 0;
    }

    /// Feeds one frame's live tracks — normally `tracker.tracks()` right after
    /// `tracker.update(frame, pts, ..)`. Matched tracks are tested against every line; lost
    /// ones keep their state; tracks no longer listed are forgotten. Returns this frame's
    /// crossings (also added to the totals).
    pub fn update(
        &mut self,
        frame: u64,
        pts: f64,
        tracks: impl IntoIterator<Item = TrackView>,
    ) -> &[CrossingEvent] {
        self.events.clear();
        self.pass += 1;
        let n_lines = self.lines.len();
        for t in tracks {
            let state = self.tracks.entry(t.track_id).or_insert_with(|| TrackLines {
                pass: 0,
                anchors: vec![None; n_lines],
            });
            state.pass = self.pass;
            if !t.matched {
                continue;
            }
            let p = self.cfg.point.of(&t.last_box);
            for (li, line) in self.lines.iter().enumerate() {
                let Some((dir, x, y)) = step(line, &mut state.anchors[li], p, self.cfg) else {
                    continue;
                };
                self.totals.entry((li, t.class_id)).or_default()[dir as usize] += 1;
                self.events.push(CrossingEvent {
                    track_id: t.track_id,
                    class_id: t.class_id,
                    line: line.name.clone(),
                    direction: dir,
                    frame,
                    pts,
                    x,
                    y,
                });
            }
        }
        let pass = self.pass;
        self.tracks.retain(|_, s| s.pass == pass);
        &self.events
    }

    /// Running totals per line and class, in line order then class order; a (line, class)
    /// pair appears once it has at least one crossing.
    pub fn totals(&self) -> Vec<LineCount> {
        self.totals
            .iter()
            .map(|(&(li, class_id), &[inward, outward])| LineCount {
                line: self.lines[li].name.clone(),
                class_id,
                inward,
                outward,
            })
            .collect()
    }

    /// Crossings so far of line `name` by class `class_id` in direction `dir`.
    pub fn count(&self, name: &str, class_id: u32, dir: Direction) -> u64 {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.name == name)
            .filter_map(|(li, _)| self.totals.get(&(li, class_id)))
            .map(|c| c[dir as usize])
            .sum()
    }
}

/// Advances one track's state for one line with a new point; returns a counted crossing's
/// direction and position.
fn step(
    line: &CountLine,
    anchor: &mut Option<Anchor>,
    p: (f32, f32),
    cfg: LineCounterConfig,
) -> Option<(Direction, f32, f32)> {
    let (ax, ay) = line.a;
    let (dx, dy) = (line.b.0 - ax, line.b.1 - ay);
    let len = (dx * dx + dy * dy).sqrt();
    if len <= 0.0 || !len.is_finite() {
        return None;
    }
    // Signed distance: positive on the right of a → b on screen (y down).
    let dist = (dx * (p.1 - ay) - dy * (p.0 - ax)) / len;
    if dist.is_nan() || dist.abs() <= cfg.hysteresis_px {
        return None;
    }
    let side: i8 = if dist > 0.0 { 1 } else { -1 };
    let prev = anchor.replace(Anchor { side, point: p });
    let prev = prev.filter(|a| a.side != side)?;
    // The move prev.point → p goes from one side to the other, so it meets the infinite
    // line; count only if the meeting point lies on the segment.
    let q = prev.point;
    let d_q = (dx * (q.1 - ay) - dy * (q.0 - ax)) / len;
    let s = d_q / (d_q - dist);
    let (x, y) = (q.0 + s * (p.0 - q.0), q.1 + s * (p.1 - q.1));
    let along = ((x - ax) * dx + (y - ay) * dy) / (len * len);
    if !(0.0..=1.0).contains(&along) {
        return None;
    }
    let dir = if side > 0 {
        Direction::In
    } else {
        Direction::Out
    };
    Some((dir, x, y))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A horizontal line from x = 100 to x = 500 at y = 300, drawn left to right.
    fn door() -> CountLine {
        CountLine {
            name: "door".into(),
            a: (100.0, 300.0),
            b: (500.0, 300.0),
        }
    }

    /// A matched track whose box bottom centre is at (x, y).
    fn feet(id: u64, class_id: u32, x: f32, y: f32) -> TrackView {
        let b = BoxInFrame {
            x1: x - 20.0,
            y1: y - 100.0,
            x2: x + 20.0,
            y2: y,
        };
        TrackView {
            track_id: id,
            class_id,
            last_box: b,
            matched: true,
            predicted_box: b,
        }
    }

    /// Feeds one track along `path` (one point per frame); returns every event.
    fn walk(
        c: &mut LineCounter,
        id: u64,
        class_id: u32,
        path: &[(f32, f32)],
    ) -> Vec<CrossingEvent> {
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
        // Only the track listed last is remembered.
        assert_eq!(c.tracks.len(), 1);
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
}
