//! Multi-object tracking (ByteTrack-style) and line-crossing counting over per-frame detections.
//!
//! - [`Tracker`]: one per video input. Feed it every frame's detections with the frame index
//!   and presentation timestamp; it returns, per detection, the id of the confirmed track the
//!   detection was assigned to. [`Tracker::finish`] returns a [`TrackSummary`] per track.
//! - [`LineCounter`]: counts tracks crossing [`CountLine`]s, per line, direction and class,
//!   and emits a [`CrossingEvent`] per crossing; a crossing at which the tracker changed the
//!   object's id still counts once (`lines.rs`, "Id changes").
//! - [`ZoneCounter`]: follows tracks in and out of [`Zone`]s (polygons): occupancy, enter and
//!   exit events with inertia in seconds, dwell time (`zones.rs`).
//! - [`InputTracking`]: all of them, for one input of the pipeline (`--track`, `--count-line`,
//!   `--zone`): the postprocess stage keeps one per input, from its `Begin` to its `End`.
//!
//! # Algorithm (ByteTrack, Zhang et al. 2022), per frame
//! 1. Every track's Kalman state (`kalman.rs`: constant velocity on box centre and size) is
//!    predicted forward by the **stream-time** delta since the previous frame.
//! 2. Detections with `score > high` are matched to confirmed tracks (both those seen on the
//!    previous frame and lost ones) by IoU with the predicted boxes, requiring
//!    `IoU > match_iou_high`.
//! 3. Detections with `low < score <= high` are matched to the confirmed tracks that were seen
//!    on the previous frame and are still unmatched, requiring `IoU > match_iou_low` (stricter:
//!    low-score boxes are where false positives live). This keeps a track — and its id —
//!    through partial occlusion, when the detector's score for the object sags. As in
//!    ByteTrack, low-score boxes do not revive tracks that are already lost.
//! 4. (Not in ByteTrack: `recover`.) Confirmed tracks unseen for between 0.25 and 0.5 s
//!    (`recover_s`) and remaining high detections are matched by the distance between box
//!    centres, within half a box height plus one box height per second unseen, of similar
//!    height (within 1.5×). After a miss of a few frames the Kalman prediction of someone who
//!    slowed, turned or was cut short by an occluder no longer overlaps their new box, and
//!    ByteTrack starts a new track: on the synthetic counting clip (tools/synth_crossings.py)
//!    this keeps the id of the person hidden behind the occluder and of the ones passing each
//!    other, on vtest it joins a tenth of the person tracks. Tracks missed for only a frame or
//!    two are left to IoU: a distance gate that soon took a neighbour's box in groups.
//! 5. Remaining high detections are matched to tentative tracks (`IoU > match_iou_tentative`);
//!    a tentative track that finds no detection is dropped at once.
//! 6. Remaining high detections with `score > new_track` start tentative tracks.
//! 7. Confirmed tracks not matched for more than `lost_s` seconds of stream time end.
//!
//! Each stage is an optimal assignment (Hungarian method with a cost limit, like ByteTrack's
//! `lap.lapjv`) on cost `1 − IoU` (stage 4: the normalised distance); pairs of different
//! classes are never matched. See
//! `assign.rs` for why not greedy.
//!
//! A tentative track is confirmed when it has been matched `min_hits` times (default 2:
//! ByteTrack confirms on the second frame) **and** spans at least `min_confirm_s` seconds
//! (default 0). Tracks born in the very first frame of an input are confirmed at once, as in
//! ByteTrack. Ids are handed out on confirmation, so the ids a caller sees are 1, 2, 3, …
//! with no gaps left by one-frame false positives.
//!
//! # Time
//! All durations are seconds of stream time taken from `pts`, never frame counts, and the
//! Kalman prediction uses the real `dt`. The same motion decoded at 15 fps, 30 fps, or with
//! every 2nd frame skipped gives the same tracks (see the tests). Confirmation is the one
//! frame-counted rule (`min_hits` matched frames), as in ByteTrack; `min_confirm_s` adds a
//! time floor when wanted.
//!
//! # Why not `similari`
//! `similari` 0.26.2 (Savant project; latest on crates.io) was evaluated and not used:
//! - it has no cargo features and always builds its Python bindings: `pyo3` 0.18 with
//!   `extension-module` (its build script wants a Python interpreter; the feature is meant
//!   for Python extension modules and leaves libpython unlinked), plus `nalgebra`, `geo`,
//!   `rayon`, `crossbeam`, `pathfinding`, `ultraviolet`, `env_logger`, `rand`: ~175 crates
//!   in its normal dependency tree, several times this crate's tracking needs;
//! - its Kalman filters step by a fixed `DT = 1` per call and its trackers expire tracks
//!   after idle *epochs* (calls), not seconds of stream time — the opposite of what is
//!   needed here;
//! - it has SORT and Visual SORT, not ByteTrack's two-stage low-score association;
//! - it pins old major versions (`thiserror` 1, `itertools` 0.10, `geo` 0.23, `pyo3` 0.18)
//!   that would duplicate crates vidinfer already has.
//!
//! The implementation here is about 1,100 lines with docs, needs no new dependency, and does
//! not allocate per frame once warmed up (apart from the `Vec` returned by
//! [`Tracker::update`], avoidable with [`Tracker::update_into`]). It costs ~2 µs per frame
//! for 10 people (`benches/track.rs`).

mod assign;
mod bytetrack;
mod input;
mod kalman;
mod lines;
mod polygon;
#[cfg(test)]
mod tests;
mod zones;

pub use bytetrack::Tracker;
pub use input::{FrameTracks, InputTracking, TrackingConfig, TrackingEnd};
pub use lines::{
    CountLine, CrossingEvent, Direction, LineCount, LineCounter, LineCounterConfig, RefPoint,
};
pub use polygon::{Zone, ON_EDGE_PX};
pub use zones::{
    FrameZones, Stamp, TrackDwell, ZoneConfig, ZoneCount, ZoneCounter, ZoneDwell, ZoneEvent,
    ZoneEventKind, ZonesEnd,
};

use crate::postprocess::BoxInFrame;
use serde::Serialize;

/// Tracker parameters. Scores compare as vidinfer's `--conf` does: strictly greater than.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrackerConfig {
    /// Detections with `score > high` are "high": matched first, and may start tracks.
    /// Default 0.5, vidinfer's default `--conf` (ByteTrack's `track_thresh` is also 0.5).
    pub high: f32,
    /// Detections with `low < score <= high` are only used to keep existing tracks going;
    /// detections with `score <= low` are ignored. Default 0.1 (ByteTrack's).
    /// The caller should run post-processing with `conf = low` and output only `> high`.
    pub low: f32,
    /// A high detection matches a confirmed track's predicted box only if their IoU exceeds
    /// this. Default 0.2 (ByteTrack's `match_thresh` 0.8 on cost `1 − IoU`).
    pub match_iou_high: f32,
    /// The same for the low-score stage. Default 0.5 (ByteTrack's second stage).
    pub match_iou_low: f32,
    /// The same for tentative tracks. Default 0.3 (ByteTrack's).
    pub match_iou_tentative: f32,
    /// A high detection that matches no track starts one only if `score > new_track`.
    /// Default 0.6 (ByteTrack's `det_thresh = track_thresh + 0.1`): new tracks need a
    /// surer detection than continuing ones.
    pub new_track: f32,
    /// A confirmed track unmatched for more than this many seconds of stream time ends.
    /// Default 1.0 (ByteTrack's `track_buffer` of 30 frames at 30 fps).
    pub lost_s: f64,
    /// Matched frames before a tentative track is confirmed. Default 2 (ByteTrack).
    pub min_hits: u32,
    /// Seconds between a tentative track's first and latest match before it is confirmed,
    /// on top of `min_hits`. Default 0.0 (off, as in ByteTrack).
    pub min_confirm_s: f64,
    /// After the IoU stages, match confirmed tracks still unmatched to high detections still
    /// unclaimed by distance from the predicted box (module doc, step 4). Default: on.
    pub recover: bool,
    /// Only tracks unseen for between these many seconds are recovered so. Default 0.25 to
    /// 0.5 s: a track missed for a frame or two is still found by IoU, and a distance gate
    /// that soon takes a neighbour's box in a group (measured on vtest); after half a second
    /// the prediction has drifted too far to tell people apart by distance.
    pub recover_s: (f64, f64),
}

impl Default for TrackerConfig {
    fn default() -> Self {
        TrackerConfig {
            high: 0.5,
            low: 0.1,
            match_iou_high: 0.2,
            match_iou_low: 0.5,
            match_iou_tentative: 0.3,
            new_track: 0.6,
            lost_s: 1.0,
            min_hits: 2,
            min_confirm_s: 0.0,
            recover: true,
            recover_s: (0.25, 0.5),
        }
    }
}

impl TrackerConfig {
    /// Defaults scaled to an output threshold `conf` (vidinfer's `--conf`): `high = conf`,
    /// `new_track = conf + 0.1` (ByteTrack's rule; at most halfway from `conf` to 1) and
    /// `low = 0.1` (at most `conf / 2`). Post-processing should then keep scores `> low`.
    pub fn for_conf(conf: f32) -> Self {
        TrackerConfig {
            high: conf,
            low: 0.1f32.min(0.5 * conf),
            new_track: (conf + 0.1).min(0.5 * (conf + 1.0)),
            ..TrackerConfig::default()
        }
    }
}

/// One finished track, for JSONL output. Frames and pts are those of matched detections;
/// boxes are the detections' boxes as given, not filtered estimates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackSummary {
    pub track_id: u64,
    pub class_id: u32,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_pts: f64,
    pub last_pts: f64,
    /// Frames in which a detection was matched to the track (including its tentative start).
    pub frames_seen: u64,
    /// Mean score of the matched detections.
    pub mean_score: f32,
    pub first_box: BoxInFrame,
    pub last_box: BoxInFrame,
}

/// A confirmed, live track as of the latest update (see [`Tracker::tracks`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackView {
    pub track_id: u64,
    pub class_id: u32,
    /// Box of the latest matched detection.
    pub last_box: BoxInFrame,
    /// True if a detection was matched to the track in the latest update; false while the
    /// track is lost (coasting on its prediction, not yet expired).
    pub matched: bool,
    /// Box predicted by the motion model for the latest update's pts.
    pub predicted_box: BoxInFrame,
}

/// A matched track whose 40x100 box has its bottom centre (feet) at (x, y): for the line and
/// zone counters' tests.
#[cfg(test)]
pub(crate) fn matched_track_at(track_id: u64, class_id: u32, x: f32, y: f32) -> TrackView {
    let b = BoxInFrame {
        x1: x - 20.0,
        y1: y - 100.0,
        x2: x + 20.0,
        y2: y,
    };
    TrackView {
        track_id,
        class_id,
        last_box: b,
        matched: true,
        predicted_box: b,
    }
}
