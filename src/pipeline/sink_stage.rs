//! The sink stage: opens an input's outputs on its `Begin`, writes each frame to every sink
//! in order, and on its `End` commits the outputs (renames them into place) and writes the
//! done marker — or, if the input failed, drops them, which removes the partial files.
//!
//! With several streams, inputs interleave: every input between its `Begin` and `End` is
//! open at once, each with its own outputs, keyed by its index in the input list.
//!
//! With tracking, tracks that end on a frame go to the sinks with it, and those still alive
//! at the `End` before the outputs are committed; with `--segment-s`, a track is listed in
//! the segment open when it ended.

mod commit;
mod publish;
mod segments;

use std::{collections::BTreeMap, time::Instant};

use super::{
    config::PipelineConfig,
    item::{Detected, InputEnd, InputStart, Item, Marker},
    report::{InputReport, Observer, TrackingReport, ZoneReport},
    stage::Jitter,
};
use crate::{
    channel::{Rx, StageStats},
    error::{Error, Result},
    output::{InputIdentity, OutputDir, StemLock},
    sink::{
        open_sinks, results::ResultDelivery, snapshot::Snapshots, video, FrameResult, FrameResults,
        Sink, SinkInput, StreamEvent,
    },
    track::{TrackDwell, TrackSummary},
};
use publish::InputTelemetry;
use segments::segment_input;

struct OpenInput<'a> {
    sinks: Vec<Box<dyn Sink>>,
    /// With `--snapshots`: the best frame of each live track (kept across segments).
    snapshots: Option<Snapshots>,
    /// Its metrics and events (taken when it ends).
    tele: Option<InputTelemetry<'a>>,
    report: InputReport,
    identity: Option<InputIdentity>,
    /// What the sinks were opened with (a new segment opens them again).
    base: SinkInput,
    live: bool,
    /// With `--segment-s`: the open segment's number and the stream time it began at.
    segment: Option<(u32, f64)>,
    /// Released (dropped) once the outputs are committed or dropped.
    _lock: StemLock,
}

struct SinkStage<'a> {
    cfg: &'a PipelineConfig,
    out: &'a OutputDir,
    stems: &'a [String],
    observer: &'a dyn Observer,
    reports: Vec<Option<InputReport>>,
    /// The inputs begun and not yet ended, by input index.
    open: BTreeMap<usize, OpenInput<'a>>,
    latency_ms: Vec<f64>,
    /// The caller's channel, when it asked for results (`SinkConfig::results`).
    delivery: Option<ResultDelivery>,
}

/// Runs until the queue closes. Returns a report per input (inputs never reached are
/// reported as interrupted) and each frame's latency in milliseconds.
pub(super) fn sink_stage(
    cfg: &PipelineConfig,
    (out, stems): (&OutputDir, &[String]),
    rx: Rx<Item<Detected>>,
    observer: &dyn Observer,
    stats: &StageStats,
) -> (Vec<InputReport>, Vec<f64>) {
    let mut jitter = Jitter::new(cfg.jitter, 5);
    let mut stage = SinkStage {
        cfg,
        out,
        stems,
        observer,
        reports: (0..cfg.inputs.len()).map(|_| None).collect(),
        open: BTreeMap::new(),
        latency_ms: Vec::new(),
        delivery: cfg.sinks.results.clone().map(ResultDelivery::new),
    };
    while let Some(item) = rx.recv() {
        Jitter::sleep(&mut jitter);
        let t0 = Instant::now();
        match item {
            Item::Marker(Marker::Begin(start)) => stage.begin(*start),
            Item::Frame(d) => stage.frame(d),
            Item::Marker(Marker::End(end)) => stage.end(*end),
            Item::Marker(Marker::Event { input, event }) => stage.event(input, &event),
        }
        stats.record(1, t0.elapsed());
    }
    let SinkStage {
        reports,
        latency_ms,
        ..
    } = stage;
    let reports = reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let mut b = InputReport::new(&cfg.inputs[i]);
                b.interrupted = true;
                b.error = Some(Error::NotStarted(cfg.inputs[i].clone()));
                b
            })
        })
        .collect();
    (reports, latency_ms)
}

/// The zones' names (none without zones).
fn zone_names(cfg: &PipelineConfig) -> Vec<String> {
    let zones = cfg.tracking.as_ref().map(|t| &t.zones.zones);
    zones
        .into_iter()
        .flatten()
        .map(|z| z.name().to_string())
        .collect()
}

fn outputs_error(input: &std::path::Path, e: Error) -> Error {
    Error::Outputs {
        input: input.into(),
        source: Box::new(e),
    }
}

impl<'a> SinkStage<'a> {
    fn begin(&mut self, start: InputStart) {
        let InputStart {
            input,
            info,
            lock,
            identity,
            live,
        } = start;
        let path = &self.cfg.inputs[input];
        let mut report = InputReport::new(path);
        report.expected_frames = info
            .frames_hint
            .map(|h| self.cfg.max_frames.map_or(h, |m| h.min(m)));
        self.observer.input_started(path, report.expected_frames);
        if self.cfg.sinks.kinds.video && video::scaled_down(info.width, info.height) {
            report.annotated_scaled_to = Some(video::encoded_size(info.width, info.height));
        }
        let base = SinkInput {
            stem: self.stems[input].clone(),
            width: info.width,
            height: info.height,
            frame_rate: info.frame_rate,
        };
        let segment = self.cfg.segment.map(|_| (1, 0.0));
        let tracking = self.cfg.tracking.as_ref();
        let sinks = open_sinks(&self.cfg.sinks, tracking, &segment_input(&base, segment))
            .unwrap_or_else(|e| {
                report.error = Some(outputs_error(path, e));
                Vec::new()
            });
        let snapshots = (self.cfg.sinks.kinds.snapshots && tracking.is_some()).then(|| {
            let labels = self.cfg.sinks.labels.clone();
            Snapshots::new(&self.cfg.sinks.out_dir, &base.stem, labels)
        });
        let cfg: &'a PipelineConfig = self.cfg;
        let names = (&*cfg.sinks.labels, zone_names(cfg));
        let tele = InputTelemetry::begin(&cfg.telemetry, names, &base.stem, &info, live);
        let open = OpenInput {
            sinks,
            snapshots,
            tele: Some(tele),
            report,
            identity,
            base,
            live,
            segment,
            _lock: lock,
        };
        self.open.insert(input, open);
    }

    /// Writes an event into an open input's sinks (those that have a place for one).
    fn event_of(open: &mut OpenInput<'_>, event: &StreamEvent) {
        if open.report.error.is_none() {
            if let Err(e) = open.sinks.iter_mut().try_for_each(|s| s.event(event)) {
                open.report.error = Some(outputs_error(&open.report.path, e));
            }
        }
    }

    fn event(&mut self, input: usize, event: &StreamEvent) {
        if let Some(open) = self.open.get_mut(&input) {
            if let Some(t) = &mut open.tele {
                t.event(event);
            }
            Self::event_of(open, event);
        }
    }

    /// Tells every sink of tracks that ended, with their time in zones and, with
    /// `--snapshots`, their snapshots, written now (nothing when none ended).
    fn tracks_ended(
        open: &mut OpenInput<'_>,
        tracks: &[TrackSummary],
        dwell: &[TrackDwell],
    ) -> Result<()> {
        if tracks.is_empty() {
            return Ok(());
        }
        let snaps = match &mut open.snapshots {
            Some(s) => s.save(tracks),
            None => Ok(Vec::new()),
        };
        if let Some(tele) = &mut open.tele {
            tele.track_ends(tracks, dwell, snaps.as_deref().unwrap_or_default());
        }
        let snaps = snaps?;
        open.sinks
            .iter_mut()
            .try_for_each(|s| s.tracks_ended(tracks, dwell, &snaps))
    }

    /// Hands a frame's results to the caller, if it asked for them.
    fn deliver(
        delivery: &mut Option<ResultDelivery>,
        d: &Detected,
        path: &std::path::Path,
    ) -> Result<()> {
        let Some(delivery) = delivery else {
            return Ok(());
        };
        let m = &d.meta;
        let results = FrameResults {
            input: m.input,
            index: m.index,
            pts: m.pts,
            width: m.width,
            height: m.height,
            inferred: m.infer,
            detections: d.detections.clone(),
            track_ids: d.tracks.as_ref().map(|t| t.ids.clone()),
            picture: None,
        };
        delivery
            .frame(results, d.picture.as_ref())
            .map_err(|source| Error::Preprocess {
                path: path.into(),
                frame: m.index,
                source,
            })
    }

    fn frame(&mut self, d: Detected) {
        let cfg = self.cfg;
        if let Some(open) = self.open.get_mut(&d.meta.input) {
            if let Some(t) = &mut open.tele {
                t.frame(&d);
            }
            let ended = d.tracks.as_ref().map_or(&[][..], |t| &t.ended);
            let zones = d.tracks.as_ref().and_then(|t| t.zones.as_ref());
            let dwell = zones.map_or(&[][..], |z| &z.ended);
            if open.report.error.is_none() {
                let fr = FrameResult {
                    index: d.meta.index,
                    pts_seconds: d.meta.pts,
                    width: d.meta.width,
                    height: d.meta.height,
                    detections: &d.detections,
                    inferred: d.meta.infer,
                    picture: d.picture.as_ref(),
                    tracks: d.tracks.as_ref(),
                };
                let written = Self::next_segment(cfg, open, d.meta.pts)
                    .and_then(|()| open.snapshots.as_mut().map_or(Ok(()), |s| s.observe(&fr)))
                    .and_then(|()| open.sinks.iter_mut().try_for_each(|s| s.write(&fr)))
                    .and_then(|()| Self::tracks_ended(open, ended, dwell));
                let delivered =
                    written.and_then(|()| Self::deliver(&mut self.delivery, &d, &open.report.path));
                if let Err(e) = delivered {
                    open.report.error = Some(outputs_error(&open.report.path, e));
                }
            } else if let Some(tele) = &mut open.tele {
                tele.track_ends(ended, dwell, &[]);
            }
            let r = &mut open.report;
            r.frames += 1;
            r.detections += d.detections.len() as u64;
        }
        self.latency_ms
            .push(d.meta.decoded_at.elapsed().as_secs_f64() * 1e3);
        self.observer.frame_done();
    }

    fn end(&mut self, mut end: InputEnd) {
        let tracking = end.tracking.take();
        let mut report = match self.open.remove(&end.input) {
            Some(mut open) => {
                if let Some(t) = &tracking {
                    let dwell = t.zones.as_ref().map_or(&[][..], |z| &z.remaining);
                    if open.report.error.is_none() {
                        if let Err(e) = Self::tracks_ended(&mut open, &t.remaining, dwell) {
                            open.report.error = Some(outputs_error(&open.report.path, e));
                        }
                    } else if let Some(tele) = &mut open.tele {
                        tele.track_ends(&t.remaining, dwell, &[]);
                    }
                }
                let tele = open.tele.take().map(|mut tele| {
                    let error = (open.report.error.as_ref().or(end.error.as_ref()))
                        .map(|e| crate::error::chain(e));
                    for e in tele.close(open.report.frames, error) {
                        Self::event_of(&mut open, &e);
                    }
                    tele
                });
                let live = open.live;
                let report = self.commit(open, &end);
                if let Some(tele) = tele {
                    let ok = report.error.is_none() && end.error.is_none();
                    tele.ended(end.issues.corrupt_packets, ok, live);
                }
                report
            }
            // An input that failed before it began: nothing was opened for it.
            None => InputReport::new(&self.cfg.inputs[end.input]),
        };
        report.issues = end.issues;
        report.interrupted = end.interrupted;
        report.skipped = end.skipped;
        report.dropped_frames = end.dropped;
        report.reconnects = end.reconnects;
        if let (Some(t), Some(cfg)) = (tracking, &self.cfg.tracking) {
            let labels = &self.cfg.sinks.labels;
            let mut r = TrackingReport::new(t.tracks, &cfg.lines, &t.counts, labels);
            if let Some(z) = &t.zones {
                r.zones = ZoneReport::all(&cfg.zones.zones, &z.counts, labels);
            }
            report.tracking = Some(r);
        }
        if report.error.is_none() {
            report.error = end.error;
        }
        if let Some(d) = &self.delivery {
            d.input_ended(end.input, report.error.as_ref(), report.interrupted);
        }
        self.reports[end.input] = Some(report);
    }
}
