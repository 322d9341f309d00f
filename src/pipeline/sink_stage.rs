//! The sink stage: opens an input's outputs on its `Begin`, writes each frame to every sink
//! in order, and on its `End` commits the outputs (renames them into place) and writes the
//! done marker — or, if the input failed, drops them, which removes the partial files.

use std::time::Instant;

use super::{
    item::{Detected, InputEnd, InputStart, Item, Marker},
    report::{InputReport, Observer},
    stage::Jitter,
    PipelineConfig,
};
use crate::{
    channel::{Rx, StageStats},
    error::{Error, Result},
    output::{DoneMarker, InputIdentity, OutputDir, OutputFile, StemLock},
    sink::{open_sinks, FrameResult, Sink, SinkInput},
};

struct OpenInput {
    input: usize,
    sinks: Vec<Box<dyn Sink>>,
    report: InputReport,
    identity: Option<InputIdentity>,
    /// Released (dropped) once the outputs are committed or dropped.
    _lock: StemLock,
}

struct SinkStage<'a> {
    cfg: &'a PipelineConfig,
    out: &'a OutputDir,
    stems: &'a [String],
    observer: &'a dyn Observer,
    reports: Vec<Option<InputReport>>,
    open: Option<OpenInput>,
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
        open: None,
        latency_ms: Vec::new(),
    };
    while let Some(item) = rx.recv() {
        Jitter::sleep(&mut jitter);
        let t0 = Instant::now();
        match item {
            Item::Marker(Marker::Begin(start)) => stage.begin(*start),
            Item::Frame(d) => stage.frame(d),
            Item::Marker(Marker::End(end)) => stage.end(end),
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
        } = start;
        let path = &self.cfg.inputs[input];
        let mut report = InputReport::new(path);
        report.expected_frames = info
            .frames_hint
            .map(|h| self.cfg.max_frames.map_or(h, |m| h.min(m)));
        self.observer.input_started(path, report.expected_frames);
        let si = SinkInput {
            stem: self.stems[input].clone(),
            width: info.width,
            height: info.height,
            frame_rate: info.frame_rate,
        };
        let sinks = open_sinks(&self.cfg.sinks, &si).unwrap_or_else(|e| {
            report.error = Some(outputs_error(path, e));
            Vec::new()
        });
        self.open = Some(OpenInput {
            input,
            sinks,
            report,
            identity,
            _lock: lock,
        });
    }

    fn frame(&mut self, d: Detected) {
        if let Some(open) = self.open.as_mut().filter(|o| o.input == d.meta.input) {
            let r = &mut open.report;
            if r.error.is_none() {
                let fr = FrameResult {
                    index: d.meta.index,
                    pts_seconds: d.meta.pts,
                    width: d.meta.width,
                    height: d.meta.height,
                    detections: &d.detections,
                    picture: d.picture.as_ref(),
                };
                if let Err(e) = open.sinks.iter_mut().try_for_each(|s| s.write(&fr)) {
                    r.error = Some(outputs_error(&r.path, e));
                }
            }
            r.frames += 1;
            r.detections += d.detections.len() as u64;
        }
        self.latency_ms
            .push(d.meta.decoded_at.elapsed().as_secs_f64() * 1e3);
        self.observer.frame_done();
    }

    fn end(&mut self, end: InputEnd) {
        let mut report = match self.open.take() {
            Some(open) if open.input == end.input => self.commit(open, &end),
            other => {
                // An input that failed before it began: nothing was opened for it.
                self.open = other;
                InputReport::new(&self.cfg.inputs[end.input])
            }
        };
        report.issues = end.issues;
        report.interrupted = end.interrupted;
        report.skipped = end.skipped;
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
            ..
        } = open;
        if report.error.is_some() || end.error.is_some() {
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
        if let Some(identity) = identity.filter(|_| !end.interrupted) {
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
