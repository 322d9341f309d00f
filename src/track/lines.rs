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
//! appears already on the far side (or inside the band and then leaves it) is not counted,
//! unless it continues a lost track (below).
//!
//! **Gaps.** A crossing is judged between consecutive *observed* points of a track: while the
//! tracker coasts a lost track on its prediction the counter keeps its side and last point,
//! and when the track is matched again, on the other side, the move from the last point to
//! the new one is the crossing (tested against the segment as above). A prediction alone
//! never counts: a track that is lost and ends has not been seen to cross.
//!
//! **Id changes.** When the tracker loses an object at a line and starts a new track for it
//! just past the line, neither track crosses on its own. So a *young* track (first seen
//! within the tracker's `lost_s`, plus [`OVERLAP_S`], of the moment) that has not crossed
//! anything yet may take over the line state of a *lost* track it continues: same class; its
//! first point within 0.6 box heights of the lost track's last point, plus one box height per
//! second of the gap between them (a person walks about one box height a second; the box
//! height is smoothed over [`VELOCITY_S`], so a box cut short for a frame does not shrink the
//! allowance); first seen no earlier than [`OVERLAP_S`] before the lost track was last seen (a
//! fading box may linger on the old track for a frame or two while the new one begins);
//! moving the same way as the lost track was (its displacement over its first [`SETTLE_S`]
//! seconds against the lost track's smoothed velocity) and not starting behind it. Pairs are
//! taken best (nearest) first, each track in at most one. Then, per line: if the lost track
//! was last on one side and the young one was first seen on the other, that is one crossing
//! (counted on the young track's id, when the pair is made, if the move between the two
//! points meets the segment); if the young track has not yet left the band, it carries on
//! from the lost track's side. A lost track that already crossed was last seen on the far
//! side, so the pair adds nothing: one crossing, not two. A lost track whose state was taken
//! over and that is matched again later starts afresh (no side), so it cannot count the same
//! crossing again. [`LineCounterConfig::hand_over`] turns this off.

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
    pub(super) fn of(self, b: &BoxInFrame) -> (f32, f32) {
        let x = 0.5 * (b.x1 + b.x2);
        match self {
            RefPoint::BottomCentre => (x, b.y2),
            RefPoint::Centre => (x, 0.5 * (b.y1 + b.y2)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LineCounterConfig {
    /// Half-width in pixels of the neutral band around each line (the hysteresis margin).
    /// Default 5.0: more than the frame-to-frame jitter of a standing person's box bottom at
    /// SSD resolutions, much less than the distance walked across a line in the ~0.1 s of
    /// frames around a crossing. Feet that waver on the line cross it once: the side changes
    /// only when the point leaves the band on the other side.
    pub hysteresis_px: f32,
    /// The reference point. Default: bottom centre.
    pub point: RefPoint,
    /// A young track takes over the line state of a lost track it continues (module doc,
    /// "Id changes"). Default: on.
    pub hand_over: bool,
    /// How long after a track was last seen a track that continues it may begin, in seconds:
    /// the tracker's `lost_s`. Default 1.0.
    pub hand_over_s: f64,
}

impl Default for LineCounterConfig {
    fn default() -> Self {
        LineCounterConfig {
            hysteresis_px: 5.0,
            point: RefPoint::BottomCentre,
            hand_over: true,
            hand_over_s: 1.0,
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

/// A track's matched observation, as the counter saw it.
#[derive(Debug, Clone, Copy)]
struct Seen {
    point: (f32, f32),
    pts: f64,
    /// Box height, the scale for how far an object moves.
    height: f32,
}

#[derive(Debug)]
struct TrackLines {
    /// Pass of [`LineCounter::update`] in which the track was last listed.
    pass: u64,
    class_id: u32,
    /// Per line: the latest point outside the band.
    anchors: Vec<Option<Anchor>>,
    /// Per line: the first point outside the band, kept while the track may still take over
    /// a lost one's state (module doc, "Id changes").
    first_anchors: Vec<Option<Anchor>>,
    first: Option<Seen>,
    last: Option<Seen>,
    /// Velocity of the point over its observations (pixels per second), smoothed over about
    /// [`VELOCITY_S`].
    velocity: (f32, f32),
    /// Box height smoothed the same way: a box cut short for a frame or two (an occlusion, a
    /// merged pair) does not make it small.
    height: f32,
    /// This track's state went to another track: it is not handed on twice, and starts
    /// afresh if it is matched again.
    handed_on: bool,
    /// This track took over another one's state, or is too old to.
    settled: bool,
}

/// Time constant of the smoothed velocity of a track's point, in seconds.
const VELOCITY_S: f64 = 0.5;
/// How long a lost track may have gone on being matched after its successor's first
/// observation (a fading box lingering beside the new one), in seconds.
const OVERLAP_S: f64 = 0.25;
/// How long a young track is seen before it may take over a lost one: long enough for its
/// direction to show, in seconds.
const SETTLE_S: f64 = 0.25;

impl TrackLines {
    fn new(pass: u64, class_id: u32, n_lines: usize) -> Self {
        TrackLines {
            pass,
            class_id,
            anchors: vec![None; n_lines],
            first_anchors: vec![None; n_lines],
            first: None,
            last: None,
            velocity: (0.0, 0.0),
            height: 0.0,
            handed_on: false,
            settled: false,
        }
    }

    /// Records an observation: first and last, the smoothed velocity.
    fn see(&mut self, now: Seen) {
        if let Some(prev) = self.last {
            let dt = now.pts - prev.pts;
            if dt > 0.0 {
                let inst = (
                    (now.point.0 - prev.point.0) / dt as f32,
                    (now.point.1 - prev.point.1) / dt as f32,
                );
                let first_step = self.first.is_some_and(|f| f.pts == prev.pts);
                let k = if first_step {
                    1.0
                } else {
                    (1.0 - (-dt / VELOCITY_S).exp()) as f32
                };
                self.velocity.0 += k * (inst.0 - self.velocity.0);
                self.velocity.1 += k * (inst.1 - self.velocity.1);
                let k = (1.0 - (-dt / VELOCITY_S).exp()) as f32;
                self.height += k * (now.height - self.height);
            }
        } else {
            self.height = now.height;
        }
        self.first.get_or_insert(now);
        self.last = Some(now);
    }
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
    /// Scratch: the ids of this pass's lost and young tracks, and hand-over candidates
    /// (cost, lost id, young id).
    lost: Vec<u64>,
    young: Vec<u64>,
    pairs: Vec<(f32, u64, u64)>,
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
            lost: Vec::new(),
            young: Vec::new(),
            pairs: Vec::new(),
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
    /// ones keep their state; a young track may take over a lost one's (module doc, "Id
    /// changes"); tracks no longer listed are forgotten once no young track could take them
    /// over. Returns this frame's crossings (also
    /// added to the totals).
    pub fn update(
        &mut self,
        frame: u64,
        pts: f64,
        tracks: impl IntoIterator<Item = TrackView>,
    ) -> &[CrossingEvent] {
        self.events.clear();
        self.pass += 1;
        self.lost.clear();
        self.young.clear();
        let (pass, n_lines) = (self.pass, self.lines.len());
        for t in tracks {
            let state = self
                .tracks
                .entry(t.track_id)
                .or_insert_with(|| TrackLines::new(pass, t.class_id, n_lines));
            state.pass = pass;
            if !t.matched {
                if state.last.is_some() && !state.handed_on {
                    self.lost.push(t.track_id);
                }
                continue;
            }
            self.observe(frame, pts, &t);
        }
        // A track the tracker has ended is kept while a young track could still take it over
        // (first seen within `hand_over_s` of its last sighting, then seen for SETTLE_S).
        let keep = pts - (self.cfg.hand_over_s + SETTLE_S + OVERLAP_S);
        let (lost, hand_over) = (&mut self.lost, self.cfg.hand_over);
        self.tracks.retain(|&id, s| {
            if s.pass == pass {
                return true;
            }
            let wanted = hand_over && !s.handed_on && s.last.is_some_and(|l| l.pts >= keep);
            if wanted {
                lost.push(id);
            }
            wanted
        });
        if self.cfg.hand_over {
            self.hand_over(frame, pts);
        }
        &self.events
    }

    /// Tests a matched track's new point against every line.
    fn observe(&mut self, frame: u64, pts: f64, t: &TrackView) {
        let p = self.cfg.point.of(&t.last_box);
        let state = self.tracks.get_mut(&t.track_id).expect("listed");
        if state.handed_on {
            // Matched again after its state went to another track: start afresh.
            state.handed_on = false;
            state.anchors.fill(None);
        }
        state.see(Seen {
            point: p,
            pts,
            height: t.last_box.y2 - t.last_box.y1,
        });
        for (li, line) in self.lines.iter().enumerate() {
            let crossed = step(line, &mut state.anchors[li], p, self.cfg);
            if state.first_anchors[li].is_none() {
                state.first_anchors[li] = state.anchors[li];
            }
            let Some((dir, x, y)) = crossed else {
                continue;
            };
            // A track that crossed on its own does not take over another's state.
            state.settled = true;
            count(
                &mut self.totals,
                &mut self.events,
                (li, line),
                (t.track_id, t.class_id),
                frame,
                pts,
                (dir, x, y),
            );
        }
    }
    /// Lost tracks hand their state to young ones that continue them (module doc, "Id
    /// changes"), best pairs first, each track in at most one pair.
    fn hand_over(&mut self, frame: u64, pts: f64) {
        let horizon = pts - OVERLAP_S;
        self.young.clear();
        for (&id, s) in &mut self.tracks {
            if s.settled || s.last.is_none_or(|l| l.pts != pts) {
                continue;
            }
            // Young: first seen while a track lost now could still have been alive.
            match s.first {
                Some(f) if f.pts >= horizon - self.cfg.hand_over_s => self.young.push(id),
                _ => s.settled = true,
            }
        }
        self.pairs.clear();
        for &a in &self.lost {
            for &b in &self.young {
                let (sa, sb) = (&self.tracks[&a], &self.tracks[&b]);
                if let Some(cost) = hand_over_cost(sa, sb, self.cfg.hand_over_s) {
                    self.pairs.push((cost, a, b));
                }
            }
        }
        self.pairs.sort_by(|x, y| x.0.total_cmp(&y.0));
        for k in 0..self.pairs.len() {
            let (_, a, b) = self.pairs[k];
            if self.tracks[&a].handed_on || self.tracks[&b].settled {
                continue;
            }
            self.join(a, b, frame, pts);
        }
    }

    /// Track `b` takes over lost track `a`'s line state: a line `a` was last on one side of
    /// and `b` was first seen on the other is crossed now, if the move between the two
    /// points meets the segment; a line `b` has not yet left the band of gets `a`'s side.
    fn join(&mut self, a: u64, b: u64, frame: u64, pts: f64) {
        let mut from = std::mem::take(&mut self.tracks.get_mut(&a).expect("lost").anchors);
        let sa = self.tracks.get_mut(&a).expect("lost");
        sa.anchors = vec![None; from.len()];
        sa.handed_on = true;
        let sb = self.tracks.get_mut(&b).expect("young");
        sb.settled = true;
        let who = (b, sb.class_id);

        for (li, line) in self.lines.iter().enumerate() {
            let Some(old) = from[li].take() else {
                continue;
            };
            let Some(new) = sb.first_anchors[li] else {
                sb.anchors[li] = Some(old);
                continue;
            };
            if old.side == new.side {
                continue;
            }
            if let Some((x, y)) = meets(line, old.point, new.point) {
                let dir = direction(new.side);
                count(
                    &mut self.totals,
                    &mut self.events,
                    (li, line),
                    who,
                    frame,
                    pts,
                    (dir, x, y),
                );
            }
        }
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

/// Adds a crossing of line `li` by track `t` to the totals and this frame's events.
fn count(
    totals: &mut BTreeMap<(usize, u32), [u64; 2]>,
    events: &mut Vec<CrossingEvent>,
    (li, line): (usize, &CountLine),
    (track_id, class_id): (u64, u32),
    frame: u64,
    pts: f64,
    (direction, x, y): (Direction, f32, f32),
) {
    totals.entry((li, class_id)).or_default()[direction as usize] += 1;
    events.push(CrossingEvent {
        track_id,
        class_id,
        line: line.name.clone(),
        direction,
        frame,
        pts,
        x,
        y,
    });
}

/// How well young track `b` continues lost track `a`: `None` if it cannot, else a cost (lower
/// is better). Of the same class; `b` first seen no earlier than [`OVERLAP_S`] before `a` was
/// last and no later than `max_gap` after, and seen for [`SETTLE_S`] since; `b`'s first point within 0.6 box heights of `a`'s
/// last, plus one box height per second of the gap between them; `b` moving the same way as
/// `a` was (its displacement since its first point against `a`'s velocity), and starting ahead
/// of `a`, not behind.
fn hand_over_cost(a: &TrackLines, b: &TrackLines, max_gap: f64) -> Option<f32> {
    let (Some(la), Some(fb), Some(lb)) = (a.last, b.first, b.last) else {
        return None;
    };
    let (early, late) = (fb.pts < la.pts - OVERLAP_S, fb.pts - la.pts > max_gap);
    if a.class_id != b.class_id || early || late || lb.pts - fb.pts < SETTLE_S {
        return None;
    }
    let gap = (fb.pts - la.pts).max(0.0) as f32;
    let (dx, dy) = (fb.point.0 - la.point.0, fb.point.1 - la.point.1);
    let dist = (dx * dx + dy * dy).sqrt();
    let tol = a.height.max(1.0) * (0.6 + gap);
    let va = a.velocity;
    let ahead = va.0 * dx + va.1 * dy;
    let moved = (lb.point.0 - fb.point.0, lb.point.1 - fb.point.1);
    let same_way = va.0 * moved.0 + va.1 * moved.1;
    let speed = (va.0 * va.0 + va.1 * va.1).sqrt();
    let behind = -0.25 * a.height * speed;
    (dist <= tol && ahead >= behind && same_way > 0.0).then_some(dist / tol)
}

fn direction(side: i8) -> Direction {
    if side > 0 {
        Direction::In
    } else {
        Direction::Out
    }
}

/// Where the move `q → p`, from one side of `line` to the other, meets the segment (`None`
/// if it meets the infinite line beyond an end).
fn meets(line: &CountLine, q: (f32, f32), p: (f32, f32)) -> Option<(f32, f32)> {
    let (ax, ay) = line.a;
    let (dx, dy) = (line.b.0 - ax, line.b.1 - ay);
    let len2 = dx * dx + dy * dy;
    let d = |p: (f32, f32)| dx * (p.1 - ay) - dy * (p.0 - ax);
    let (d_q, d_p) = (d(q), d(p));
    let s = d_q / (d_q - d_p);
    let (x, y) = (q.0 + s * (p.0 - q.0), q.1 + s * (p.1 - q.1));
    let along = ((x - ax) * dx + (y - ay) * dy) / len2;
    (0.0..=1.0).contains(&along).then_some((x, y))
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
    let (x, y) = meets(line, prev.point, p)?;
    Some((direction(side), x, y))
}

#[cfg(test)]
mod tests;
