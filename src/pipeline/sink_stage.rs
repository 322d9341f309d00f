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

use std::{collections::BTreeMap, time::Instant};

use super::{
    config::PipelineConfig,
    item::{Detected, InputEnd, InputStart, Item, Marker},
    report::{InputReport, Observer, TrackingReport},
    stage::Jitter,
};
use crate::{
    channel::{Rx, StageStats},
    error::{Error, Result},
    output::{DoneMarker, InputIdentity, OutputDir, OutputFile, StemLock},
    sink::{open_sinks, FrameResult, Sink, SinkInput, StreamEvent},
    track::TrackSummary,
};

struct OpenInput {
    sinks: Vec<Box<dyn Sink>>,
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
    open: BTreeMap<usize, OpenInput>,
    latency_ms: Vec<f64>,
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
    };
    while let Some(item) = rx.recv() {
        Jitter::sleep(&mut jitter);
        let t0 = Instant::now();
        match item {
            Item::Marker(Marker::Begin(start)) => stage.begin(*start),
            Item::Frame(d) => stage.frame(d),
            Item::Marker(Marker::End(end)) => stage.end(end),
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

/// The sinks' input for a segment: `<stem>-<n:06>` (the stem itself without segments).
fn segment_input(base: &SinkInput, segment: Option<(u32, f64)>) -> SinkInput {
    let mut si = base.clone();
    if let Some((n, _)) = segment {
        si.stem = format!("{}-{n:06}", base.stem);
    }
    si
}

fn outputs_error(input: &std::path::Path, e: Error) -> Error {
    Error::Outputs {
        input: input.into(),
        source: Box::new(e),
    }
}

impl SinkStage<'_> {
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
        let open = OpenInput {
            sinks,
            report,
            identity,
            base,
            live,
            segment,
            _lock: lock,
        };
        self.open.insert(input, open);
    }

    fn event(&mut self, input: usize, event: &StreamEvent) {
        if let Some(open) = self.open.get_mut(&input) {
            if open.report.error.is_none() {
                if let Err(e) = open.sinks.iter_mut().try_for_each(|s| s.event(event)) {
                    open.report.error = Some(outputs_error(&open.report.path, e));
                }
            }
        }
    }

    /// Closes the segment a frame at `pts` no longer belongs to and opens the next.
    fn next_segment(cfg: &PipelineConfig, open: &mut OpenInput, pts: f64) -> Result<()> {
        let (Some(len), Some((n, start))) = (cfg.segment, open.segment) else {
            return Ok(());
        };
        if pts < start + len.as_secs_f64() {
            return Ok(());
        }
        // Segments start on their nominal boundaries, however long the gap before the frame.
        let skipped = ((pts - start) / len.as_secs_f64()).floor();
        let next = (n + 1, start + skipped * len.as_secs_f64());
        for s in std::mem::take(&mut open.sinks) {
            open.report.outputs.extend(s.finish()?);
        }
        open.segment = Some(next);
        let input = segment_input(&open.base, open.segment);
        open.sinks = open_sinks(&cfg.sinks, cfg.tracking.as_ref(), &input)?;
        Ok(())
    }

    /// Tells every sink of tracks that ended (nothing when none did).
    fn tracks_ended(open: &mut OpenInput, tracks: &[TrackSummary]) -> Result<()> {
        if tracks.is_empty() {
            return Ok(());
        }
        open.sinks
            .iter_mut()
            .try_for_each(|s| s.tracks_ended(tracks))
    }

    fn frame(&mut self, d: Detected) {
        let cfg = self.cfg;
        if let Some(open) = self.open.get_mut(&d.meta.input) {
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
                let ended = d.tracks.as_ref().map_or(&[][..], |t| &t.ended);
                let written = Self::next_segment(cfg, open, d.meta.pts)
                    .and_then(|()| open.sinks.iter_mut().try_for_each(|s| s.write(&fr)))
                    .and_then(|()| Self::tracks_ended(open, ended));
                if let Err(e) = written {
                    open.report.error = Some(outputs_error(&open.report.path, e));
                }
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
                    if open.report.error.is_none() {
                        if let Err(e) = Self::tracks_ended(&mut open, &t.remaining) {
                            open.report.error = Some(outputs_error(&open.report.path, e));
                        }
                    }
                }
                self.commit(open, &end)
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
            report.tracking = Some(TrackingReport::new(t.tracks, &cfg.lines, &t.counts, labels));
        }
        if report.error.is_none() {
            report.error = end.error;
        }
        self.reports[end.input] = Some(report);
    }

    /// Finishes an input's sinks (renaming its outputs into place) unless it failed, then
    /// writes its done marker if it also completed. Unfinished sinks are dropped, which
    /// removes their partial files.
    fn commit(&self, open: OpenInput, end: &InputEnd) -> InputReport {
        let OpenInput {
            sinks,
            mut report,
            identity,
            live,
            ..
        } = open;
        // A live source that failed leaves outputs complete up to where it stopped; any other
        // failure leaves nothing that looks complete.
        if report.error.is_some() || (end.error.is_some() && !live) {
            return report;
        }
        for s in sinks {
            match s.finish() {
                Ok(paths) => report.outputs.extend(paths),
                Err(e) => {
                    report.error = Some(outputs_error(&report.path, e));
                    return report;
                }
            }
        }
        if let Some(identity) = identity.filter(|_| !end.interrupted && end.error.is_none()) {
            if let Err(e) = self.write_done(end, identity, &report) {
                report.error = Some(outputs_error(&report.path, e));
            }
        }
        report
    }

    /// The done marker, written once the outputs are in place; outputs of this stem that this
    /// run did not write (another `--outputs` before) are removed, so none is stale.
    fn write_done(&self, end: &InputEnd, input: InputIdentity, r: &InputReport) -> Result<()> {
        let stem = &self.stems[end.input];
        let marker = DoneMarker {
            input,
            settings: self.cfg.settings.clone(),
            frames: r.frames,
            detections: r.detections,
            corrupt_packets: end.issues.corrupt_packets,
            outputs: r
                .outputs
                .iter()
                .map(|p| OutputFile::of(p))
                .collect::<Result<_>>()?,
        };
        self.out.remove_other_outputs(stem, &r.outputs);
        marker.write(self.out.root(), stem)?;
        Ok(())
    }
}
