//! The detect pipeline: `decode (streams) → preprocess + batch → infer (workers) → reorder +
//! postprocess → sinks`, one thread per stage (one per stream and per worker), joined by
//! bounded [`channel`](crate::channel)s. This module only runs them: each stage's loop lives
//! in the file named after it, what a run is asked in `config.rs`, how queues, batches and
//! decoder threads are sized in `policy.rs`, the queues and threads in `wiring.rs`. Items go
//! through every stage in arrival order (the reorder buffer undoes the workers' overtaking),
//! so results leave in frame order per input and nothing is dropped.

mod batcher;
mod config;
mod decode_stage;
mod images;
mod infer_stage;
mod item;
mod live;
mod policy;
mod postprocess_stage;
mod preprocess_stage;
mod reorder;
mod report;
mod sink_stage;
mod stage;
mod streams;
mod wiring;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Instant,
};

pub use batcher::{BatchPolicy, Padding};
pub use config::{FrameSelection, PipelineConfig};
pub use images::ImageDetector;
pub use live::LiveOptions;
pub use report::{
    ClassCount, InputReport, LineReport, Observer, Quiet, RunReport, TrackingReport,
    ZoneClassCount, ZoneReport,
};
pub use streams::StreamReport;

use crate::{
    channel::StageStats,
    error::{Error, Result},
    infer::Detector,
    output::OutputDir,
};
use policy::{batch_policy, check_memory, decoders_fill_batches, QueueSizes};
use streams::StreamStats;
use wiring::{Queues, Wiring};

const STAGES: [&str; 5] = ["decode", "preprocess", "infer", "postprocess", "sinks"];

/// Each input's output stem: the planned ones, else claimed now. No output is written over
/// an input, whoever chose the names.
fn output_stems(cfg: &PipelineConfig, out: &OutputDir) -> Result<Vec<String>> {
    let protected = out.protect(&cfg.inputs);
    if cfg.stems.len() == cfg.inputs.len() {
        for (p, stem) in cfg.inputs.iter().zip(&cfg.stems) {
            out.check_stem(p, stem, &protected)?;
        }
        return Ok(cfg.stems.clone());
    }
    cfg.inputs
        .iter()
        .map(|p| out.stem_for(p, &protected))
        .collect()
}

/// Runs detection over every input, with one inference worker per detector (sessions of
/// the same model: batches go to whichever worker is free, and results are put back in
/// order). Per-input failures are reported in the result; an `Err` means the run as a
/// whole failed (inference error, a stage died).
pub fn run(
    cfg: &PipelineConfig,
    detectors: Vec<Detector>,
    cancel: Arc<AtomicBool>,
    observer: &dyn Observer,
) -> Result<RunReport> {
    let start = Instant::now();
    let cpu_start = crate::sys::process_cpu_time();
    let Some(first) = detectors.first() else {
        return Err(Error::Config(
            "the pipeline needs at least one detector".into(),
        ));
    };
    let (spec, ep, workers) = (*first.spec(), first.ep(), detectors.len());
    let precision = first.precision();
    let policy = batch_policy(cfg, first.fixed_batch());
    let out = OutputDir::prepare(&cfg.sinks.out_dir)?;
    let stems = output_stems(cfg, &out)?;
    let stages = STAGES.map(StageStats::new);
    let streams = cfg.streams.clamp(1, cfg.inputs.len().max(1));
    let shared = decoders_fill_batches(cfg, streams);
    let stream_queues = if shared { 0 } else { streams };
    let sizes = QueueSizes::new(cfg.queue_capacity, policy.size, workers, stream_queues);
    check_memory(sizes.in_flight, policy.size, spec.slot_len())?;
    let queues = Queues::new(sizes, stream_queues);
    let metrics = cfg.telemetry.metrics.as_deref();
    if let Some(m) = metrics {
        m.set_queues(queues.stats.clone());
    }
    let stream_stats: Vec<StreamStats> = (0..streams)
        .map(|i| StreamStats {
            decode: StageStats::new("decode"),
            queue: (!shared).then(|| queues.stats[i].clone()),
            waited_ns: Default::default(),
        })
        .collect();
    let wiring = Wiring {
        cfg,
        out: &out,
        stems: &stems,
        spec,
        policy,
        stages: &stages,
        streams: &stream_stats,
        next_input: AtomicUsize::new(0),
        cancel: &cancel,
        observer,
    };
    let out = wiring.run_stages(detectors, queues);
    if let Some(m) = metrics {
        m.stopped();
    }
    let out = out?;
    Ok(RunReport {
        ep,
        precision,
        batch: policy.size,
        workers,
        frames: 0,
        detections: 0,
        elapsed: start.elapsed(),
        fps: 0.0,
        cpu_ms_per_frame: None,
        interrupted: cancel.load(Ordering::SeqCst),
        peak_rss_kib: None,
        inputs: out.inputs,
        stages: stages.iter().map(|s| s.report()).collect(),
        queues: out.queues,
        streams: out.streams,
        frame_latency_ms: out.frame_latency_ms,
        batch_ms: out.batch_ms,
        cpu_s: cpu_start
            .zip(crate::sys::process_cpu_time())
            .map(|(a, b)| (b - a).as_secs_f64()),
        events: Vec::new(),
    }
    .with_totals())
}
