//! Tracking one video input as the pipeline does it: a [`Tracker`] and, when there are count
//! lines, a [`LineCounter`], and when there are zones, a [`ZoneCounter`], fed each inferred
//! frame in order.
//!
//! Post-processing runs with `conf = tracker.low` so that low-score detections can keep
//! tracks alive; [`InputTracking::frame`] then hands back only the detections the user asked
//! for (`score > conf`), each with its track id. Greedy NMS decides a box only by the boxes
//! that score higher, so those are exactly the detections a run at `conf` gives (unless more
//! than `max_detections` boxes score above `low`: then the lowest are cut first).

use super::{
    CountLine, CrossingEvent, FrameZones, LineCount, LineCounter, LineCounterConfig, TrackSummary,
    Tracker, TrackerConfig, ZoneConfig, ZoneCounter, ZonesEnd,
};
use crate::{
    error::{CountLineError, ZoneError},
    postprocess::Detection,
};

/// What `--track` and `--count-line` ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingConfig {
    pub tracker: TrackerConfig,
    /// Lines to count crossings of, in frame pixels; names are unique.
    pub lines: Vec<CountLine>,
    pub counter: LineCounterConfig,
    /// Zones to follow tracks in and out of (none: no zone output at all).
    pub zones: ZoneConfig,
}

impl TrackingConfig {
    /// Checks that every line lies within a `width` × `height` frame (its ends on the frame's
    /// edge or inside); the message names the first line that does not.
    pub fn check_frame(&self, width: u32, height: u32) -> Result<(), CountLineError> {
        let (w, h) = (width as f32, height as f32);
        let inside = |p: (f32, f32)| (0.0..=w).contains(&p.0) && (0.0..=h).contains(&p.1);
        match self.lines.iter().find(|l| !inside(l.a) || !inside(l.b)) {
            None => Ok(()),
            Some(l) => Err(CountLineError {
                name: l.name.clone(),
                a: l.a,
                b: l.b,
                width,
                height,
            }),
        }
    }

    /// Checks that every zone has some area inside a `width` × `height` frame.
    pub fn check_zones(&self, width: u32, height: u32) -> Result<(), ZoneError> {
        self.zones.check_frame(width, height)
    }
}

/// One inferred frame's tracking, for the sinks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FrameTracks {
    /// Per output detection (same order): the id of its confirmed track, or `None` for a
    /// detection not (yet) on a confirmed track.
    pub ids: Vec<Option<u64>>,
    /// Line crossings completed on this frame.
    pub crossings: Vec<CrossingEvent>,
    /// Tracks that ended (were lost for longer than `lost_s`) on this frame.
    pub ended: Vec<TrackSummary>,
    /// With zones: where the output detections are, occupancy, events, ended tracks' dwell.
    pub zones: Option<FrameZones>,
}

/// The end of an input's tracking.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackingEnd {
    /// Tracks still alive when the input ended, by id.
    pub remaining: Vec<TrackSummary>,
    /// Confirmed tracks of the whole input (ended before and remaining).
    pub tracks: u64,
    /// Crossings per line and class (pairs with at least one crossing).
    pub counts: Vec<LineCount>,
    /// With zones: the remaining tracks' dwell and the zones' totals.
    pub zones: Option<ZonesEnd>,
}

/// The tracking state of one input: created when it begins, finished when it ends.
#[derive(Debug)]
pub struct InputTracking {
    tracker: Tracker,
    counter: Option<LineCounter>,
    zones: Option<ZoneCounter>,
    /// The user's threshold: detections above it are output.
    conf: f32,
    /// Confirmed tracks ended so far.
    ended: u64,
    ids: Vec<Option<u64>>,
}

impl InputTracking {
    /// Tracking for a new input; detections scoring above `conf` are output.
    pub fn new(cfg: &TrackingConfig, conf: f32) -> Self {
        InputTracking {
            tracker: Tracker::new(cfg.tracker),
            counter: (!cfg.lines.is_empty())
                .then(|| LineCounter::new(cfg.lines.clone(), cfg.counter)),
            zones: (!cfg.zones.is_empty()).then(|| ZoneCounter::new(cfg.zones.clone())),
            conf,
            ended: 0,
            ids: Vec::new(),
        }
    }

    /// Tracks one inferred frame. `dets` are post-processed with `conf = tracker.low`; returns
    /// those above the output threshold (in their order) and their tracking.
    pub fn frame(
        &mut self,
        frame: u64,
        pts: f64,
        mut dets: Vec<Detection>,
    ) -> (Vec<Detection>, FrameTracks) {
        self.tracker.update_into(frame, pts, &dets, &mut self.ids);
        let crossings = match &mut self.counter {
            Some(c) => c.update(frame, pts, self.tracker.tracks()).to_vec(),
            None => Vec::new(),
        };
        let mut zones = (self.zones.as_mut()).map(|z| z.update(frame, pts, self.tracker.tracks()));
        let ended = self.tracker.take_finished();
        self.ended += ended.len() as u64;
        let conf = self.conf;
        let mut ids = Vec::with_capacity(dets.len());
        let mut keep = self.ids.iter();
        dets.retain(|d| {
            let id = keep.next().copied().flatten();
            let out = d.score > conf;
            if out {
                ids.push(id);
            }
            out
        });
        if let (Some(z), Some(counter)) = (&mut zones, &self.zones) {
            z.inside = counter.inside(&dets);
        }
        let tracks = FrameTracks {
            ids,
            crossings,
            ended,
            zones,
        };
        (dets, tracks)
    }

    /// Ends the input: the tracks still alive, the number of tracks and the line counts.
    pub fn finish(&mut self) -> TrackingEnd {
        let counts = self
            .counter
            .as_mut()
            .map(|c| {
                let t = c.totals();
                c.reset();
                t
            })
            .unwrap_or_default();
        let remaining = self.tracker.finish();
        let tracks = self.ended + remaining.len() as u64;
        self.ended = 0;
        TrackingEnd {
            remaining,
            tracks,
            counts,
            zones: self.zones.as_mut().map(ZoneCounter::finish),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postprocess::BoxInFrame;

    fn det(score: f32, x: f32, y: f32) -> Detection {
        Detection {
            class_id: 0,
            score,
            box_in_frame: BoxInFrame {
                x1: x - 20.0,
                y1: y - 100.0,
                x2: x + 20.0,
                y2: y,
            },
        }
    }

    fn cfg(lines: Vec<CountLine>) -> TrackingConfig {
        TrackingConfig {
            tracker: TrackerConfig::for_conf(0.5),
            lines,
            counter: LineCounterConfig::default(),
            zones: ZoneConfig::default(),
        }
    }

    #[test]
    fn outputs_only_detections_above_conf_with_their_ids() {
        let mut t = InputTracking::new(&cfg(Vec::new()), 0.5);
        // A sure person, and a weak one (kept for tracking, not output).
        let (out, tr) = t.frame(0, 0.0, vec![det(0.3, 100.0, 300.0), det(0.9, 400.0, 300.0)]);
        assert_eq!(out, vec![det(0.9, 400.0, 300.0)]);
        assert_eq!(tr.ids, vec![Some(1)]);
        // The sure one sags to 0.3 (kept alive by the low stage, not output), then recovers.
        let (out, tr) = t.frame(1, 0.1, vec![det(0.3, 402.0, 300.0)]);
        assert!(out.is_empty() && tr.ids.is_empty());
        let (out, tr) = t.frame(2, 0.2, vec![det(0.8, 404.0, 300.0)]);
        assert_eq!((out.len(), tr.ids.clone()), (1, vec![Some(1)]));
        let end = t.finish();
        assert_eq!(end.tracks, 1);
        assert_eq!(end.remaining[0].frames_seen, 3);
        assert!(end.counts.is_empty());
    }

    #[test]
    fn counts_crossings_and_reports_ended_tracks() {
        let line = CountLine {
            name: "door".into(),
            a: (0.0, 300.0),
            b: (768.0, 300.0),
        };
        let mut c = cfg(vec![line]);
        c.tracker.lost_s = 0.5;
        let mut t = InputTracking::new(&c, 0.5);
        let mut crossings = Vec::new();
        for i in 0..20u64 {
            let y = 200.0 + 10.0 * i as f32;
            let (_, tr) = t.frame(i, i as f64 / 10.0, vec![det(0.9, 300.0, y)]);
            crossings.extend(tr.crossings);
        }
        assert_eq!(crossings.len(), 1);
        assert_eq!(crossings[0].line, "door");
        // The person is gone: more than 0.5 s later the track ends.
        let mut ended = Vec::new();
        for i in 20..30u64 {
            ended.extend(t.frame(i, i as f64 / 10.0, Vec::new()).1.ended);
        }
        assert_eq!(ended.len(), 1);
        let end = t.finish();
        assert_eq!((end.tracks, end.remaining.len()), (1, 0));
        assert_eq!((end.counts[0].inward, end.counts[0].outward), (1, 0));
        // Finished means reset: a new input starts at id 1 with no counts.
        let (_, tr) = t.frame(0, 0.0, vec![det(0.9, 300.0, 200.0)]);
        assert_eq!(tr.ids, vec![Some(1)]);
        assert!(t.finish().counts.is_empty());
    }

    #[test]
    fn lines_must_lie_inside_the_frame() {
        let line = |a, b| CountLine {
            name: "l".into(),
            a,
            b,
        };
        let inside = cfg(vec![line((0.0, 0.0), (768.0, 576.0))]);
        assert_eq!(inside.check_frame(768, 576), Ok(()));
        let outside = cfg(vec![line((0.0, 0.0), (800.0, 300.0))]);
        let err = outside.check_frame(768, 576).unwrap_err().to_string();
        assert!(err.contains("'l'") && err.contains("768x576"), "{err}");
    }
}
