//! The [`Tracker`]: ByteTrack association over Kalman-predicted boxes (see the module doc of
//! [`crate::track`] for the stages).

use super::assign::{Assigner, FORBIDDEN};
use super::kalman::BoxKalman;
use super::{TrackSummary, TrackView, TrackerConfig};
use crate::postprocess::{BoxInFrame, Detection};

#[derive(Debug, Clone)]
struct Track {
    /// 0 while tentative; ids are handed out on confirmation.
    id: u64,
    class_id: u32,
    kf: BoxKalman,
    /// The Kalman box predicted for the current update.
    pred: BoxInFrame,
    hits: u64,
    score_sum: f64,
    first_frame: u64,
    first_pts: f64,
    first_box: BoxInFrame,
    last_frame: u64,
    last_pts: f64,
    last_box: BoxInFrame,
    /// The update (1-based sequence number) of the latest match.
    last_seq: u64,
}

impl Track {
    fn confirmed(&self) -> bool {
        self.id != 0
    }

    fn summary(&self) -> TrackSummary {
        TrackSummary {
            track_id: self.id,
            class_id: self.class_id,
            first_frame: self.first_frame,
            last_frame: self.last_frame,
            first_pts: self.first_pts,
            last_pts: self.last_pts,
            frames_seen: self.hits,
            mean_score: (self.score_sum / self.hits.max(1) as f64) as f32,
            first_box: self.first_box,
            last_box: self.last_box,
        }
    }
}

/// How far detection box `b` is from track `t`'s predicted box, as a share of how far the
/// object may have strayed from its prediction after `lost` seconds unseen: 0.5 box heights
/// plus one box height per second, the height being the track's predicted one. `FORBIDDEN` if
/// it is further, if the heights differ by more than 1.5 times, or if the track has been
/// unseen for less than `min_lost` or more than `max_lost` seconds.
fn recover_cost(t: &Track, b: &BoxInFrame, lost: f64, (min_lost, max_lost): (f64, f64)) -> f64 {
    let p = &t.pred;
    let (ph, bh) = ((p.y2 - p.y1).max(1.0) as f64, (b.y2 - b.y1).max(1.0) as f64);
    if !(min_lost..=max_lost).contains(&lost) || ph / bh > 1.5 || bh / ph > 1.5 {
        return FORBIDDEN;
    }
    let dx = 0.5 * ((b.x1 + b.x2) - (p.x1 + p.x2)) as f64;
    let dy = 0.5 * ((b.y1 + b.y2) - (p.y1 + p.y2)) as f64;
    let gate = ph * (0.5 + lost);
    let d = (dx * dx + dy * dy).sqrt() / gate;
    if d < 1.0 {
        d
    } else {
        FORBIDDEN
    }
}

/// Which association stage runs; decides the eligible tracks, detections and IoU floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Confirmed tracks (seen or lost) × high detections.
    High,
    /// Confirmed tracks seen on the previous update × low detections.
    Low,
    /// Tentative tracks × remaining high detections.
    Tentative,
    /// Confirmed tracks still unmatched × remaining high detections, by distance from the
    /// predicted box rather than overlap (see [`TrackerConfig::recover_s`]).
    Recover,
}

/// A ByteTrack multi-object tracker for one video input. Not shared between inputs: create
/// one per input, or call [`Tracker::finish`] / [`Tracker::reset`] between inputs.
#[derive(Debug)]
pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    finished: Vec<TrackSummary>,
    next_id: u64,
    /// Updates so far in this input.
    seq: u64,
    /// Stream clock: the largest finite pts seen (None before the first update).
    clock: Option<f64>,
    frame: u64,
    // Per-update scratch, kept to avoid allocating every frame.
    assigner: Assigner,
    rows: Vec<usize>,
    cols: Vec<usize>,
    pairs: Vec<(usize, usize)>,
    det_used: Vec<bool>,
}

impl Tracker {
    /// A tracker with the given parameters and no tracks; the first confirmed id will be 1.
    pub fn new(cfg: TrackerConfig) -> Self {
        Tracker {
            cfg,
            tracks: Vec::new(),
            finished: Vec::new(),
            next_id: 1,
            seq: 0,
            clock: None,
            frame: 0,
            assigner: Assigner::default(),
            rows: Vec::new(),
            cols: Vec::new(),
            pairs: Vec::new(),
            det_used: Vec::new(),
        }
    }

    pub fn config(&self) -> &TrackerConfig {
        &self.cfg
    }

    /// Forgets every track and summary (for a new input): ids start again at 1.
    pub fn reset(&mut self) {
        self.tracks.clear();
        self.finished.clear();
        self.next_id = 1;
        self.seq = 0;
        self.clock = None;
        self.frame = 0;
    }

    /// Runs one frame; see [`Tracker::update_into`]. Returns one entry per detection.
    pub fn update(&mut self, frame: u64, pts: f64, dets: &[Detection]) -> Vec<Option<u64>> {
        let mut out = Vec::with_capacity(dets.len());
        self.update_into(frame, pts, dets, &mut out);
        out
    }

    /// Runs one frame: `frame` is the frame index (for summaries and events only), `pts` its
    /// presentation time in seconds, `dets` every detection with `score > low` (lower ones are
    /// ignored). Frames should come in pts order; a pts that goes backwards or is not finite
    /// counts as no time passing.
    ///
    /// Fills `out` with one entry per detection: `Some(track_id)` when the detection was
    /// matched to a confirmed track (or confirmed one by this match), `None` when it was not:
    /// it is at or below `low`; or it is a low detection matching no track seen on the
    /// previous frame; or it started a new tentative track (or re-matched one not yet
    /// confirmed); or it matched nothing and was too weak (`<= new_track`) to start a track.
    pub fn update_into(
        &mut self,
        frame: u64,
        pts: f64,
        dets: &[Detection],
        out: &mut Vec<Option<u64>>,
    ) {
        out.clear();
        out.resize(dets.len(), None);
        self.det_used.clear();
        self.det_used.resize(dets.len(), false);
        self.seq += 1;
        self.frame = frame;
        let dt = self.advance_clock(pts);
        let seq = self.seq;
        for t in &mut self.tracks {
            if t.last_seq + 1 < seq {
                t.kf.freeze_size();
            }
            t.kf.predict(dt as f32);
            t.pred = t.kf.bbox();
        }
        self.associate(dets, Stage::High, out);
        self.associate(dets, Stage::Low, out);
        if self.cfg.recover {
            self.associate(dets, Stage::Recover, out);
        }
        self.associate(dets, Stage::Tentative, out);
        // A tentative track gets one chance: the update right after the one it was born in.
        self.tracks.retain(|t| t.confirmed() || t.last_seq == seq);
        self.spawn(dets, out);
        self.expire();
    }

    /// Confirmed tracks alive after the latest update (matched now, or lost but not expired).
    pub fn tracks(&self) -> impl Iterator<Item = TrackView> + '_ {
        let seq = self.seq;
        self.tracks
            .iter()
            .filter(|t| t.confirmed())
            .map(move |t| TrackView {
                track_id: t.id,
                class_id: t.class_id,
                last_box: t.last_box,
                matched: t.last_seq == seq,
                predicted_box: t.pred,
            })
    }

    /// Takes the summaries of the tracks that have ended (expired) since the last call, in
    /// the order they ended. For streaming output; [`Tracker::finish`] returns the rest.
    pub fn take_finished(&mut self) -> Vec<TrackSummary> {
        std::mem::take(&mut self.finished)
    }

    /// Ends the input: every confirmed track ends; returns the summaries not yet taken with
    /// [`Tracker::take_finished`], sorted by id, and resets the tracker for a new input.
    pub fn finish(&mut self) -> Vec<TrackSummary> {
        let mut all = std::mem::take(&mut self.finished);
        all.extend(
            self.tracks
                .iter()
                .filter(|t| t.confirmed())
                .map(Track::summary),
        );
        all.sort_by_key(|s| s.track_id);
        self.reset();
        all
    }

    /// Moves the stream clock to `pts`; returns the elapsed seconds (never negative).
    fn advance_clock(&mut self, pts: f64) -> f64 {
        let prev = self.clock;
        let now = match (prev, pts.is_finite()) {
            (Some(p), true) => p.max(pts),
            (Some(p), false) => p,
            (None, true) => pts,
            (None, false) => 0.0,
        };
        self.clock = Some(now);
        prev.map_or(0.0, |p| now - p)
    }

    fn now(&self) -> f64 {
        self.clock.unwrap_or(0.0)
    }

    /// One association stage: optimal matching on `1 − IoU` among the stage's eligible,
    /// still unmatched tracks and detections of the same class.
    fn associate(&mut self, dets: &[Detection], stage: Stage, out: &mut [Option<u64>]) {
        let cfg = self.cfg;
        let seq = self.seq;
        self.rows.clear();
        self.cols.clear();
        self.pairs.clear();
        self.rows
            .extend(self.tracks.iter().enumerate().filter_map(|(i, t)| {
                let ok = t.last_seq != seq
                    && match stage {
                        Stage::High => t.confirmed(),
                        Stage::Recover => t.confirmed(),
                        Stage::Low => t.confirmed() && t.last_seq + 1 == seq,
                        Stage::Tentative => !t.confirmed(),
                    };
                ok.then_some(i)
            }));
        let used = &self.det_used;
        self.cols
            .extend(dets.iter().enumerate().filter_map(|(j, d)| {
                let ok = !used[j]
                    && match stage {
                        Stage::High | Stage::Tentative | Stage::Recover => d.score > cfg.high,
                        Stage::Low => d.score > cfg.low && d.score <= cfg.high,
                    };
                ok.then_some(j)
            }));
        let min_iou = match stage {
            Stage::High => cfg.match_iou_high,
            Stage::Low => cfg.match_iou_low,
            Stage::Tentative => cfg.match_iou_tentative,
            // The cost is a normalised distance, matched below 1 (limit 1 − 0).
            Stage::Recover => 0.0,
        };
        let now = self.now();
        let (tracks, rows, cols) = (&self.tracks, &self.rows, &self.cols);
        let cost = |r: usize, c: usize| {
            let (t, d) = (&tracks[rows[r]], &dets[cols[c]]);
            if t.class_id != d.class_id {
                FORBIDDEN
            } else if stage == Stage::Recover {
                recover_cost(t, &d.box_in_frame, now - t.last_pts, cfg.recover_s)
            } else {
                1.0 - t.pred.iou(&d.box_in_frame) as f64
            }
        };
        let limit = 1.0 - min_iou as f64;
        self.assigner
            .solve(rows.len(), cols.len(), limit, cost, &mut self.pairs);
        for k in 0..self.pairs.len() {
            let (r, c) = self.pairs[k];
            let (ti, di) = (self.rows[r], self.cols[c]);
            self.det_used[di] = true;
            out[di] = self.observe(ti, &dets[di]);
        }
    }

    /// Folds a matched detection into track `ti`; returns its id if it is confirmed now.
    fn observe(&mut self, ti: usize, det: &Detection) -> Option<u64> {
        let (seq, frame, now) = (self.seq, self.frame, self.now());
        let t = &mut self.tracks[ti];
        t.kf.update(&det.box_in_frame);
        t.hits += 1;
        t.score_sum += det.score as f64;
        t.last_frame = frame;
        t.last_pts = now;
        t.last_box = det.box_in_frame;
        t.last_seq = seq;
        self.maybe_confirm(ti)
    }

    /// Confirms track `ti` if it has earned it; returns its id if confirmed.
    fn maybe_confirm(&mut self, ti: usize) -> Option<u64> {
        let first_update = self.seq == 1;
        let cfg = self.cfg;
        let t = &mut self.tracks[ti];
        if !t.confirmed()
            && (first_update
                || (t.hits >= cfg.min_hits as u64 && t.last_pts - t.first_pts >= cfg.min_confirm_s))
        {
            t.id = self.next_id;
            self.next_id += 1;
        }
        t.confirmed().then_some(t.id)
    }

    /// Starts a tentative track for every unmatched detection with `score > new_track`.
    fn spawn(&mut self, dets: &[Detection], out: &mut [Option<u64>]) {
        let (seq, frame, now) = (self.seq, self.frame, self.now());
        for (j, d) in dets.iter().enumerate() {
            if self.det_used[j] || d.score <= self.cfg.high || d.score <= self.cfg.new_track {
                continue;
            }
            let kf = BoxKalman::new(&d.box_in_frame);
            self.tracks.push(Track {
                id: 0,
                class_id: d.class_id,
                kf,
                pred: kf.bbox(),
                hits: 1,
                score_sum: d.score as f64,
                first_frame: frame,
                first_pts: now,
                first_box: d.box_in_frame,
                last_frame: frame,
                last_pts: now,
                last_box: d.box_in_frame,
                last_seq: seq,
            });
            self.det_used[j] = true;
            out[j] = self.maybe_confirm(self.tracks.len() - 1);
        }
    }

    /// Ends confirmed tracks unmatched for more than `lost_s`.
    fn expire(&mut self) {
        let (now, lost_s) = (self.now(), self.cfg.lost_s);
        let finished = &mut self.finished;
        self.tracks.retain(|t| {
            let alive = !t.confirmed() || now - t.last_pts <= lost_s;
            if !alive {
                finished.push(t.summary());
            }
            alive
        });
    }
}
