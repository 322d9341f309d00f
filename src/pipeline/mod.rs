//! The detect pipeline: `decode (streams) → preprocess + batch → infer (workers) → reorder +
//! postprocess → sinks`, one thread per stage (one per stream and per worker), joined by
//! bounded [`channel`](crate::channel)s. This module only wires the stages: each stage's loop
//! lives in the file named after it, what a run is asked in `config.rs`, how queues, batches
//! and decoder threads are sized in `policy.rs`. Items go through every stage in arrival order (the
//! reorder buffer undoes the workers' overtaking), so results leave in frame order per input
//! and nothing is dropped.

mod batcher;
mod config;
mod decode_stage;
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

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::Instant,
};

pub use batcher::{BatchPolicy, Padding};
pub use config::{FrameSelection, PipelineConfig};
pub use live::LiveOptions;
pub use report::{ClassCount, InputReport, LineReport, Observer, Quiet, RunReport, TrackingReport};
pub use streams::StreamReport;

use crate::{
    channel::{self, QueueStats, StageStats},
    error::{Error, Result},
    infer::Detector,
    output::OutputDir,
    preprocess::Tensor,
};
use decode_stage::Out;
use item::{Decoded, Detected, InferredBatch, Item, Prepared};
use policy::{
    batch_policy, check_memory, decoders_fill_batches, stream_decode_options, QueueSizes,
};
use preprocess_stage::SharedBatcher;
use stage::{join, spawn, Jitter};
use streams::{Merge, StreamStats};

const STAGES: [&str; 5] = ["decode", "preprocess", "infer", "postprocess", "sinks"];

type DecodedQueue = (channel::Tx<Item<Decoded>>, channel::Rx<Item<Decoded>>);

/// What the front of the pipeline is given: the streams' queues (none when the decoders fill
/// the batches themselves), the queue to the workers, the tensors coming back for reuse.
type Front = (
    Vec<DecodedQueue>,
    channel::Tx<batcher::ToInfer<Prepared>>,
    crossbeam_channel::Receiver<Tensor>,
);

/// The queues between the stages, and the statistics each one keeps.
struct Queues {
    /// One per stream.
    decoded: Vec<DecodedQueue>,
    batches: (
        channel::Tx<batcher::ToInfer<Prepared>>,
        channel::Rx<batcher::ToInfer<Prepared>>,
    ),
    inferred: (channel::Tx<InferredBatch>, channel::Rx<InferredBatch>),
    detected: (channel::Tx<Item<Detected>>, channel::Rx<Item<Detected>>),
    /// The streams' queues first, then the others in order.
    stats: Vec<Arc<QueueStats>>,
    /// Batches allowed between the preprocess queue and the sinks' queue (see [`run`]).
    in_flight: usize,
}

impl Queues {
    /// `streams`: how many stream queues (0 when the decoders fill the batches themselves).
    fn new(sizes: QueueSizes, streams: usize) -> Self {
        let (mut decoded, mut stats) = (Vec::new(), Vec::new());
        for i in 0..streams {
            let name = match streams {
                1 => "decode→preprocess".to_string(),
                _ => format!("decode-{i}→preprocess"),
            };
            let (tx, rx, q) = channel::bounded(name, sizes.stream);
            decoded.push((tx, rx));
            stats.push(q);
        }
        let (b_tx, b_rx, b) = channel::bounded("preprocess→infer (batches)", sizes.batches);
        let (c_tx, c_rx, c) = channel::bounded("infer→postprocess (batches)", sizes.inferred);
        let (d_tx, d_rx, d) = channel::bounded("postprocess→sinks", sizes.detected);
        stats.extend([b, c, d]);
        Queues {
            decoded,
            batches: (b_tx, b_rx),
            inferred: (c_tx, c_rx),
            detected: (d_tx, d_rx),
            stats,
            in_flight: sizes.in_flight,
        }
    }
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
    let stems = if cfg.stems.len() == cfg.inputs.len() {
        cfg.stems.clone()
    } else {
        cfg.inputs
            .iter()
            .map(|p| out.stem_for(p))
            .collect::<Result<Vec<_>>>()?
    };
    let stages = STAGES.map(StageStats::new);
    let streams = cfg.streams.clamp(1, cfg.inputs.len().max(1));
    let shared = decoders_fill_batches(cfg, streams);
    let stream_queues = if shared { 0 } else { streams };
    let sizes = QueueSizes::new(cfg.queue_capacity, policy.size, workers, stream_queues);
    check_memory(sizes.in_flight, policy.size, spec.slot_len())?;
    let queues = Queues::new(sizes, stream_queues);
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
    let out = wiring.run_stages(detectors, queues)?;
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
    }
    .with_totals())
}

/// What the stages produced.
struct StagesOut {
    inputs: Vec<InputReport>,
    frame_latency_ms: Vec<f64>,
    batch_ms: Vec<f64>,
    queues: Vec<channel::QueueReport>,
    streams: Vec<StreamReport>,
}

/// Everything the stage threads borrow.
struct Wiring<'a> {
    cfg: &'a PipelineConfig,
    out: &'a OutputDir,
    stems: &'a [String],
    spec: crate::preprocess::PreprocessSpec,
    policy: BatchPolicy,
    stages: &'a [Arc<StageStats>; 5],
    /// One per stream.
    streams: &'a [StreamStats],
    /// The next input no stream has taken.
    next_input: AtomicUsize,
    cancel: &'a Arc<AtomicBool>,
    observer: &'a dyn Observer,
}

type Handle<'scope, T> = thread::ScopedJoinHandle<'scope, Result<T>>;

/// The decoders (each returns how many inputs it took) and the preprocess thread, if any.
type FrontHandles<'scope> = (Vec<Handle<'scope, u64>>, Option<Handle<'scope, ()>>);

/// The inference workers' shared ends of the queues around them.
struct WorkerEnds<'a> {
    rx: channel::Rx<batcher::ToInfer<Prepared>>,
    tx: channel::Tx<InferredBatch>,
    pool: crossbeam_channel::Sender<Tensor>,
    tokens: crossbeam_channel::Receiver<()>,
    abort: &'a AtomicBool,
}

impl<'a> Wiring<'a> {
    /// Starts every stage, waits for all of them, and reports the first error upstream
    /// (it explains the rest).
    fn run_stages(&self, detectors: Vec<Detector>, q: Queues) -> Result<StagesOut> {
        let (cfg, st) = (self.cfg, self.stages);
        let Queues {
            decoded,
            batches,
            inferred,
            detected,
            stats,
            in_flight,
        } = q;
        // Batch tensors go back from inference to preprocessing for reuse.
        let (pool_tx, pool_rx) = crossbeam_channel::bounded::<Tensor>(in_flight + 1);
        // A worker takes a token before each batch and postprocessing returns it once the
        // batch is released in order: however unevenly the workers run, at most `in_flight`
        // batches are between the preprocess queue and the sinks' queue, so the reorder
        // buffer is bounded.
        let (token_tx, token_rx) = crossbeam_channel::bounded::<()>(in_flight);
        for _ in 0..in_flight {
            let _ = token_tx.try_send(());
        }
        let abort = AtomicBool::new(false);
        // Several streams of files: the decoders fill the batches themselves.
        let shared = decoded.is_empty().then(|| {
            let links = (batches.0.clone(), pool_rx.clone());
            let streams = self.streams.len();
            SharedBatcher::new(self.preprocess_settings(), links, streams, st[1].clone())
        });
        thread::scope(|s| {
            let front = (decoded, batches.0, pool_rx);
            let (decoders, pre) = self.spawn_front(s, shared.as_ref(), front)?;
            let ends = WorkerEnds {
                rx: batches.1,
                tx: inferred.0,
                pool: pool_tx,
                tokens: token_rx,
                abort: &abort,
            };
            // The workers hold clones of these ends; the queues close when the last one stops.
            let infer = self.spawn_workers(s, detectors, ends)?;
            let post = self.spawn_postprocess(s, inferred.1, detected.0, token_tx)?;
            let sinks = spawn(s, "sinks", "sinks".into(), &st[4], move || {
                let names = (self.out, self.stems);
                sink_stage::sink_stage(cfg, names, detected.1, self.observer, &st[4])
            })?;
            let (inputs, frame_latency_ms) = sinks.join().map_err(|_| Error::StageDied("sinks"))?;
            let taken: Vec<Result<u64>> = decoders.into_iter().map(|h| join(h, "decode")).collect();
            let pre_result = pre.map_or(Ok(()), |h| join(h, "preprocess"));
            let mut batch_ms = Vec::new();
            let mut infer_result = Ok(());
            for h in infer {
                match join(h, "infer") {
                    Ok(ms) => batch_ms.extend(ms),
                    Err(e) => infer_result = infer_result.and(Err(e)),
                }
            }
            let post_result = join(post, "postprocess");
            let mut streams = Vec::with_capacity(taken.len());
            for (i, t) in taken.into_iter().enumerate() {
                streams.push(self.streams[i].report(i, t?));
            }
            pre_result?;
            infer_result?;
            post_result?;
            Ok(StagesOut {
                inputs,
                frame_latency_ms,
                batch_ms,
                queues: stats.iter().map(|q| q.report()).collect(),
                streams,
            })
        })
    }

    /// The decoders, and the preprocess thread that reads their queues, unless they fill
    /// the `shared` batcher themselves.
    fn spawn_front<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        shared: Option<&'scope SharedBatcher>,
        (queues, tx, pool): Front,
    ) -> Result<FrontHandles<'scope>> {
        if let Some(shared) = shared {
            // The shared batcher holds its own end of the queue to the workers.
            drop(tx);
            let outs = (0..self.streams.len()).map(|_| Out::Batch(shared));
            return Ok((self.spawn_decoders(s, outs.collect())?, None));
        }
        let (txs, rxs): (Vec<_>, Vec<_>) = queues.into_iter().unzip();
        let decoders = self.spawn_decoders(s, txs.into_iter().map(Out::Queue).collect())?;
        let pre = self.spawn_preprocess(s, Merge::new(rxs), tx, pool)?;
        Ok((decoders, Some(pre)))
    }

    /// One decode thread per stream, each with its own queue (or way into the shared
    /// batcher), taking inputs from one list.
    fn spawn_decoders<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        outs: Vec<Out<'scope>>,
    ) -> Result<Vec<Handle<'scope, u64>>> {
        let (cfg, st) = (self.cfg, &self.stages[0]);
        let next_input = &self.next_input;
        let k = outs.len();
        let mut handles = Vec::with_capacity(k);
        for (i, out_to) in outs.into_iter().enumerate() {
            let name = if k == 1 {
                "decode".into()
            } else {
                format!("decode-{i}")
            };
            let (own, waited_ns) = (&self.streams[i].decode, &self.streams[i].waited_ns);
            let decode = stream_decode_options(cfg, k);
            handles.push(spawn(s, "decode", name, st, move || {
                let names = (self.out, self.stems);
                let stream = decode_stage::Stream {
                    index: i,
                    next_input,
                    stage: st,
                    own,
                    waited_ns,
                };
                let ends = (out_to, decode);
                let taken = decode_stage::decode_stage(cfg, names, ends, self.cancel, stream);
                own.record_thread_cpu();
                taken
            })?);
        }
        Ok(handles)
    }

    fn spawn_preprocess<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        rx: Merge<Item<Decoded>>,
        tx: channel::Tx<batcher::ToInfer<Prepared>>,
        pool: crossbeam_channel::Receiver<Tensor>,
    ) -> Result<Handle<'scope, ()>> {
        let st = &self.stages[1];
        spawn(s, "preprocess", "preprocess".into(), st, move || {
            let links = preprocess_stage::PreprocessLinks { rx, tx, pool };
            preprocess_stage::preprocess_stage(self.preprocess_settings(), links, st)
        })
    }

    fn preprocess_settings(&self) -> preprocess_stage::PreprocessSettings<'a> {
        let cfg = self.cfg;
        preprocess_stage::PreprocessSettings {
            kernel: cfg.kernel,
            spec: self.spec,
            policy: self.policy,
            keep_pictures: cfg.sinks.kinds.needs_pictures(),
            inputs: &cfg.inputs,
            jitter: Jitter::new(cfg.jitter, 2),
        }
    }

    fn spawn_workers<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        detectors: Vec<Detector>,
        ends: WorkerEnds<'scope>,
    ) -> Result<Vec<Handle<'scope, Vec<f64>>>> {
        let (workers, st) = (detectors.len(), &self.stages[2]);
        let mut handles = Vec::with_capacity(workers);
        for (i, detector) in detectors.into_iter().enumerate() {
            let links = infer_stage::WorkerLinks {
                rx: ends.rx.clone(),
                tx: ends.tx.clone(),
                pool: ends.pool.clone(),
                tokens: ends.tokens.clone(),
                abort: ends.abort,
            };
            let name = if workers == 1 {
                "infer".into()
            } else {
                format!("infer-{i}")
            };
            let jitter = Jitter::new(self.cfg.jitter, 3 + 10 * i as u64);
            handles.push(spawn(s, "infer", name, st, move || {
                infer_stage::infer_stage(detector, links, st, jitter)
            })?);
        }
        Ok(handles)
    }

    fn spawn_postprocess<'scope>(
        &'scope self,
        s: &'scope thread::Scope<'scope, '_>,
        rx: channel::Rx<InferredBatch>,
        tx: channel::Tx<Item<Detected>>,
        tokens: crossbeam_channel::Sender<()>,
    ) -> Result<Handle<'scope, ()>> {
        let (cfg, st) = (self.cfg, &self.stages[3]);
        spawn(s, "postprocess", "postprocess".into(), st, move || {
            let links = postprocess_stage::PostprocessLinks { rx, tx, tokens };
            let jitter = Jitter::new(cfg.jitter, 4);
            let settings = postprocess_stage::PostprocessSettings {
                post: cfg.post,
                spec: self.spec,
                tracking: cfg.tracking.as_ref(),
            };
            postprocess_stage::postprocess_stage(settings, jitter, links, st)
        })
    }
}
