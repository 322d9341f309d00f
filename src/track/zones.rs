//! Zones: polygons in frame pixels, the tracks inside them, when each entered and left, and
//! how long it stayed (dwell).
//!
//! **Where a detection is.** At its box's **bottom centre** (the feet of a person), as for
//! count lines. A zone is a closed polygon (`polygon.rs`): a point exactly on an edge or a
//! vertex (within [`ON_EDGE_PX`](super::ON_EDGE_PX)) is inside. Polygons may be concave; one
//! that crosses itself is refused (so there is no even-odd versus non-zero question), as is
//! one with fewer than 3 distinct points or with all its points on one line. A zone may reach past the frame's edges; one
//! with no area inside the frame is refused once the frame size is known
//! ([`ZoneConfig::check_frame`]).
//!
//! **Classes.** A zone lists the classes it counts (empty: every class); a track of another
//! class is never in it.
//!
//! **Inertia, in stream time.** Only frames on which a track was matched to a detection are
//! observations (a track coasting through a short occlusion keeps its state). A track
//! *enters* a zone once it has been observed inside it continuously for at least
//! `inertia_s` seconds, and *leaves* once observed outside continuously for as long: feet
//! wavering across an edge for less than that change nothing. Seconds of stream time, not
//! frames, so the frame rate and the inference stride change what is counted by at most one
//! frame period. A track first seen inside a zone enters it the same way.
//!
//! **Times and dwell.** An enter event carries the frame and time of the *first* observation
//! inside (the inertia only delays when it is known), an exit event those of the first
//! observation outside, so `dwell_s = exit pts − enter pts`: at any frame rate or stride
//! each end is seen late by at most one observation period, in the same direction, so the
//! dwell of one walk agrees within one period. A track that
//! ends (lost for longer than the tracker's lost time) while inside leaves at its last
//! observation inside (`track_ended`); a track still inside when the input ends has no exit
//! event, it is counted as inside at the end.
//!
//! **Occupancy** of a zone on a frame is the number of tracks that have entered it and not
//! yet left, as known on that frame: enters so far minus exits so far (a move across an edge
//! counts from the frame its inertia runs out).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use super::{RefPoint, TrackView, Zone};
use crate::{error::ZoneError, postprocess::Detection};

/// Slack when comparing stream times, far below any frame period (timestamps are rounded).
const TIME_EPS: f64 = 1e-6;

/// What `--zone` asks for: the zones, and the inertia of entering and leaving.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneConfig {
    /// Unique names.
    pub zones: Vec<Zone>,
    /// Seconds a track must be observed inside a zone before it enters, and outside before it
    /// leaves. Default 0.3: 3 frames at 10 fps, 9 at 30; longer than a box's bottom edge
    /// wavering across a zone's edge, shorter than anyone takes to walk through a doorway.
    pub inertia_s: f64,
}

impl Default for ZoneConfig {
    fn default() -> Self {
        ZoneConfig {
            zones: Vec::new(),
            inertia_s: 0.3,
        }
    }
}

impl ZoneConfig {
    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    /// Checks that every zone has at least one square pixel inside a `width` × `height`
    /// frame; the error names the first that does not.
    pub fn check_frame(&self, width: u32, height: u32) -> Result<(), ZoneError> {
        match (self.zones.iter()).find(|z| z.area_inside(width as f64, height as f64) < 1.0) {
            None => Ok(()),
            Some(z) => Err(ZoneError::OutsideFrame {
                name: z.name().to_string(),
                points: z.describe_points(),
                width,
                height,
            }),
        }
    }
}

/// A frame index and its time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stamp {
    pub frame: u64,
    pub pts: f64,
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ZoneEventKind {
    Enter,
    Exit {
        /// Seconds from the enter event's time to this one's.
        dwell_s: f64,
        /// The track ended inside the zone (it was lost): it left at its last observation.
        track_ended: bool,
    },
}

/// A track entering or leaving a zone.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneEvent {
    pub zone: String,
    pub kind: ZoneEventKind,
    pub track_id: u64,
    pub class_id: u32,
    /// When it happened: the first observation inside (enter) or outside (exit), or the last
    /// observation of a track that ended inside.
    pub at: Stamp,
}

/// One track's time in one zone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneDwell {
    pub zone: String,
    /// Times it entered.
    pub visits: u32,
    /// Seconds inside over all its visits (one still going when the input ended: up to its
    /// last observation).
    pub dwell_s: f64,
}

/// A track's time in the zones it entered (none: an empty list).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackDwell {
    pub track_id: u64,
    pub zones: Vec<ZoneDwell>,
}

/// Totals of one zone and class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneCount {
    pub zone: String,
    pub class_id: u32,
    pub entered: u64,
    pub exited: u64,
    /// Tracks inside when the input ended (entered, not exited).
    pub inside_at_end: u64,
    /// Sum and maximum of the exits' dwell times.
    pub dwell_s_sum: f64,
    pub dwell_s_max: f64,
}

/// One frame's zones, for the sinks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameZones {
    /// Per output detection (same order): the indices of the zones its feet are in now
    /// (no inertia: where it is on this frame).
    pub inside: Vec<Vec<usize>>,
    /// Per zone: tracks that have entered it and not left.
    pub occupancy: Vec<u32>,
    /// Enters and exits decided on this frame.
    pub events: Vec<ZoneEvent>,
    /// The zone time of each track that ended on this frame (by id).
    pub ended: Vec<TrackDwell>,
}

/// The end of an input's zones.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ZonesEnd {
    /// The zone time of each track alive at the end (by id).
    pub remaining: Vec<TrackDwell>,
    /// Per zone and class with at least one entry, in zone order then class order.
    pub counts: Vec<ZoneCount>,
}

/// Where a track stands with one zone.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Out,
    /// Observed inside since then, not yet for `inertia_s`.
    Entering(Stamp),
    /// Entered at `entered`; `last` is the latest observation inside.
    In {
        entered: Stamp,
        last: Stamp,
    },
    /// Entered, then observed outside since `left`, not yet for `inertia_s`.
    Leaving {
        entered: Stamp,
        left: Stamp,
    },
}

impl State {
    fn entered(self) -> bool {
        matches!(self, State::In { .. } | State::Leaving { .. })
    }
}

#[derive(Debug)]
struct TrackZones {
    pass: u64,
    class_id: u32,
    states: Vec<State>,
    /// Per zone: visits and seconds of finished visits.
    dwell: Vec<(u32, f64)>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    entered: u64,
    exited: u64,
    dwell_sum: f64,
    dwell_max: f64,
}

/// Follows tracks in and out of zones; one per video input (or [`ZoneCounter::finish`]
/// between inputs).
#[derive(Debug)]
pub struct ZoneCounter {
    cfg: ZoneConfig,
    tracks: HashMap<u64, TrackZones>,
    /// (zone index, class id) → totals.
    totals: BTreeMap<(usize, u32), Totals>,
    pass: u64,
}

/// A visit of zone `zi` from `entered` to `left`.
struct Visit {
    zi: usize,
    entered: Stamp,
    left: Stamp,
}

impl ZoneCounter {
    pub fn new(cfg: ZoneConfig) -> Self {
        ZoneCounter {
            cfg,
            tracks: HashMap::new(),
            totals: BTreeMap::new(),
            pass: 0,
        }
    }

    pub fn zones(&self) -> &[Zone] {
        &self.cfg.zones
    }

    /// Feeds one frame's live tracks — `tracker.tracks()` right after its update. Matched
    /// tracks are observations; lost ones keep their state; tracks no longer listed have
    /// ended (those inside a zone leave it). Returns the frame's events, occupancy and the
    /// zone time of the tracks that ended; `inside` is left empty
    /// (see [`ZoneCounter::inside`]).
    pub fn update(
        &mut self,
        frame: u64,
        pts: f64,
        tracks: impl IntoIterator<Item = TrackView>,
    ) -> FrameZones {
        self.pass += 1;
        let now = Stamp { frame, pts };
        let mut out = FrameZones::default();
        let (zones, n) = (&self.cfg.zones, self.cfg.zones.len());
        for t in tracks {
            let state = self.tracks.entry(t.track_id).or_insert_with(|| TrackZones {
                pass: 0,
                class_id: t.class_id,
                states: vec![State::Out; n],
                dwell: vec![(0, 0.0); n],
            });
            state.pass = self.pass;
            if !t.matched {
                continue;
            }
            let (x, y) = RefPoint::BottomCentre.of(&t.last_box);
            for (zi, zone) in zones.iter().enumerate() {
                let inside = zone.counts(t.class_id) && zone.contains(x, y);
                let event = match step(&mut state.states[zi], inside, now, self.cfg.inertia_s) {
                    Some(Step::Entered(at)) => {
                        state.dwell[zi].0 += 1;
                        self.totals.entry((zi, t.class_id)).or_default().entered += 1;
                        event(zones, zi, (t.track_id, t.class_id), at, None)
                    }
                    Some(Step::Left { entered, left }) => {
                        let visit = Visit { zi, entered, left };
                        let who = (t.track_id, state.class_id);
                        exit(
                            zones,
                            &mut self.totals,
                            &visit,
                            who,
                            &mut state.dwell,
                            false,
                        )
                    }
                    None => continue,
                };
                out.events.push(event);
            }
        }
        self.end_unlisted(&mut out);
        out.occupancy = (0..n)
            .map(|zi| {
                let inside = self.tracks.values().filter(|t| t.states[zi].entered());
                inside.count() as u32
            })
            .collect();
        out
    }

    /// Tracks no longer listed have ended: each leaves the zones it is in, by id.
    fn end_unlisted(&mut self, out: &mut FrameZones) {
        let pass = self.pass;
        let mut gone: Vec<u64> = (self.tracks.iter())
            .filter(|(_, t)| t.pass != pass)
            .map(|(&id, _)| id)
            .collect();
        gone.sort_unstable();
        for id in gone {
            let Some(mut t) = self.tracks.remove(&id) else {
                continue;
            };
            for zi in 0..t.states.len() {
                if let Some((entered, left)) = open_visit(t.states[zi]) {
                    let visit = Visit { zi, entered, left };
                    let zones = &self.cfg.zones;
                    let who = (id, t.class_id);
                    let e = exit(zones, &mut self.totals, &visit, who, &mut t.dwell, true);
                    out.events.push(e);
                }
            }
            out.ended.push(dwell_of(&self.cfg.zones, id, &t.dwell));
        }
    }

    /// Per detection: the indices of the zones its feet are in (classes checked).
    pub fn inside(&self, dets: &[Detection]) -> Vec<Vec<usize>> {
        dets.iter()
            .map(|d| {
                let (x, y) = RefPoint::BottomCentre.of(&d.box_in_frame);
                (self.cfg.zones.iter().enumerate())
                    .filter(|(_, z)| z.counts(d.class_id) && z.contains(x, y))
                    .map(|(zi, _)| zi)
                    .collect()
            })
            .collect()
    }

    /// Ends the input: the zone time of the tracks alive (a visit still going counts up to
    /// its last observation; no exit event) and the totals; then forgets everything.
    pub fn finish(&mut self) -> ZonesEnd {
        let mut ids: Vec<u64> = self.tracks.keys().copied().collect();
        ids.sort_unstable();
        let mut remaining = Vec::with_capacity(ids.len());
        for id in ids {
            let t = &self.tracks[&id];
            let mut dwell = t.dwell.clone();
            for (zi, s) in t.states.iter().enumerate() {
                if let Some((entered, last)) = open_visit(*s) {
                    dwell[zi].1 += (last.pts - entered.pts).max(0.0);
                }
            }
            remaining.push(dwell_of(&self.cfg.zones, id, &dwell));
        }
        let counts = (self.totals.iter())
            .map(|(&(zi, class_id), t)| ZoneCount {
                zone: self.cfg.zones[zi].name().to_string(),
                class_id,
                entered: t.entered,
                exited: t.exited,
                inside_at_end: (self.tracks.values())
                    .filter(|tr| tr.class_id == class_id && tr.states[zi].entered())
                    .count() as u64,
                dwell_s_sum: t.dwell_sum,
                dwell_s_max: t.dwell_max,
            })
            .collect();
        self.tracks.clear();
        self.totals.clear();
        self.pass = 0;
        ZonesEnd { remaining, counts }
    }
}

/// A track's event for zone `zi` (`exit`: its dwell and whether the track ended).
fn event(
    zones: &[Zone],
    zi: usize,
    (track_id, class_id): (u64, u32),
    at: Stamp,
    exit: Option<(f64, bool)>,
) -> ZoneEvent {
    ZoneEvent {
        zone: zones[zi].name().to_string(),
        kind: match exit {
            None => ZoneEventKind::Enter,
            Some((dwell_s, track_ended)) => ZoneEventKind::Exit {
                dwell_s,
                track_ended,
            },
        },
        track_id,
        class_id,
        at,
    }
}

/// Records an exit in the totals and the track's dwell; returns its event.
fn exit(
    zones: &[Zone],
    totals: &mut BTreeMap<(usize, u32), Totals>,
    v: &Visit,
    who: (u64, u32),
    dwell: &mut [(u32, f64)],
    track_ended: bool,
) -> ZoneEvent {
    let d = (v.left.pts - v.entered.pts).max(0.0);
    dwell[v.zi].1 += d;
    let t = totals.entry((v.zi, who.1)).or_default();
    t.exited += 1;
    t.dwell_sum += d;
    t.dwell_max = t.dwell_max.max(d);
    event(zones, v.zi, who, v.left, Some((d, track_ended)))
}

/// A track's zone time, from its per-zone (visits, seconds).
fn dwell_of(zones: &[Zone], track_id: u64, dwell: &[(u32, f64)]) -> TrackDwell {
    let zones = (zones.iter().zip(dwell))
        .filter(|(_, d)| d.0 > 0)
        .map(|(z, &(visits, dwell_s))| ZoneDwell {
            zone: z.name().to_string(),
            visits,
            dwell_s,
        })
        .collect();
    TrackDwell { track_id, zones }
}

/// A visit not yet closed by an exit: when it began and when it ends if the track ends now
/// (its first observation outside, else its last inside).
fn open_visit(s: State) -> Option<(Stamp, Stamp)> {
    match s {
        State::In { entered, last } => Some((entered, last)),
        State::Leaving { entered, left } => Some((entered, left)),
        State::Out | State::Entering(_) => None,
    }
}

enum Step {
    Entered(Stamp),
    Left { entered: Stamp, left: Stamp },
}

/// One observation (`inside` or not, at `now`) of a track for one zone.
fn step(s: &mut State, inside: bool, now: Stamp, inertia_s: f64) -> Option<Step> {
    let held = |since: Stamp| now.pts - since.pts >= inertia_s - TIME_EPS;
    let (next, step) = match (*s, inside) {
        (State::Out, false) => (State::Out, None),
        (State::Out, true) | (State::Entering(_), true) => {
            let since = match *s {
                State::Entering(since) => since,
                _ => now,
            };
            if held(since) {
                let last = now;
                let entered = since;
                (State::In { entered, last }, Some(Step::Entered(since)))
            } else {
                (State::Entering(since), None)
            }
        }
        (State::Entering(_), false) => (State::Out, None),
        (State::In { entered, .. }, true) | (State::Leaving { entered, .. }, true) => {
            (State::In { entered, last: now }, None)
        }
        (State::In { entered, .. }, false) | (State::Leaving { entered, .. }, false) => {
            let left = match *s {
                State::Leaving { left, .. } => left,
                _ => now,
            };
            if held(left) {
                (State::Out, Some(Step::Left { entered, left }))
            } else {
                (State::Leaving { entered, left }, None)
            }
        }
    };
    *s = next;
    step
}

#[cfg(test)]
mod tests;
