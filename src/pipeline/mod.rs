//! The detect pipeline: `decode (streams) → preprocess + batch → infer (workers) → reorder +
//! postprocess → sinks`, one thread per stage (one per stream and per worker), joined by
//! bounded [`channel`](crate::channel)s. This module only wires the stages; each stage's loop
//! lives in the file named after it. Items go through every stage in arrival order (the
//! reorder buffer undoes the workers' overtaking), so results leave in frame order per input
//! and nothing is dropped.

mod batcher;
mod decode_stage;
mod infer_stage;
mod item;
mod live;
mod postprocess_stage;
mod preprocess_stage;
mod reorder;
mod report;
mod sink_stage;
mod stage;
mod streams;

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

pub use batcher::{BatchPolicy, Padding};
pub use live::LiveOptions;
pub use report::{ClassCount, InputReport, LineReport, Observer, Quiet, RunReport, TrackingReport};
pub use streams::StreamReport;

use crate::{
    channel::{self, QueueStats, StageStats},
    decode::DecodeOptions,
    error::{Error, Result},
    infer::Detector,
    output::OutputDir,
    postprocess::PostprocessConfig,
    preprocess::{Kernel, Tensor},
    sink::SinkConfig,
    track::TrackingConfig,
};
use decode_stage::Out;
use item::{Decoded, Detected, InferredBatch, Item, Prepared};
use preprocess_stage::SharedBatcher;
use stage::{join, spawn, Jitter};
use streams::{Merge, StreamStats};

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub inputs: Vec<PathBuf>,
    /// Output file stem per input (same length as `inputs`); empty: claimed in the output
    /// directory with [`OutputDir::stem_for`].
    pub stems: Vec<String>,
    /// Images per inference call.
    pub batch: usize,
    /// Pad a short last batch with blank images so the session always sees one shape.
    pub pad_batches: bool,
    /// Flush a partial batch when no new frame arrived for this long.
    pub max_wait: Option<Duration>,
    /// Inputs decoded side by side, each by its own decoder on its own thread, the next input
    /// starting when one ends (1: one after the other). No more run than there are inputs.
    pub streams: usize,
    /// `decode.threads` is a budget shared out between the streams (at least 1 each), not
    /// each decoder's own count.
    pub share_decode_threads: bool,
    pub decode: DecodeOptions,
    /// The preprocessing kernel.
    pub kernel: Kernel,
    /// Stop each input after this many frames.
    pub max_frames: Option<u64>,
    pub post: PostprocessConfig,
    pub sinks: SinkConfig,
    /// Capacity of each inter-stage queue.
    pub queue_capacity: usize,
    /// What produced the outputs (model, thresholds, preprocessing...), recorded in each
    /// `<name>.done` marker; a rerun skips an input only if its marker records the same.
    pub settings: String,
    /// Process inputs even when a done marker says they are finished.
    pub force: bool,
    /// Testing aid: every stage sleeps a random 0..=jitter before handling each item, to
    /// shake out ordering and loss bugs. `None` in normal runs.
    pub jitter: Option<Duration>,
    /// Release decoded frames no faster than their timestamps (like `ffmpeg -re`): a file
    /// behaves like the live stream it was recorded from, e.g. to try `--max-wait-ms`.
    pub realtime: bool,
    /// Which frames are decoded and which run the model.
    pub selection: FrameSelection,
    /// How live sources are kept going.
    pub live: LiveOptions,
    /// Cut a live input's outputs into segments this long (by stream time), each finished
    /// on its own.
    pub segment: Option<Duration>,
    /// Track objects across frames (and count line crossings); `None`: no tracking, and
    /// outputs exactly as without it.
    pub tracking: Option<TrackingConfig>,
}

/// Which frames of each input run the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameSelection {
    /// Every n-th frame runs the model (1: all); the annotated video keeps every frame.
    pub stride: u64,
    /// Seek here first (seconds); earlier frames are left out.
    pub start: Option<f64>,
    /// Stop this many seconds after `start`.
    pub duration: Option<f64>,
}

impl Default for FrameSelection {
    fn default() -> Self {
        FrameSelection {
            stride: 1,
            start: None,
            duration: None,
        }
    }
}

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
    fn new(cap: usize, batch: usize, workers: usize, streams: usize) -> Self {
        let (mut decoded, mut stats) = (Vec::new(), Vec::new());
        for i in 0..streams {
            let name = match streams {
                1 => "decode→preprocess".to_string(),
                _ => format!("decode-{i}→preprocess"),
            };
            let (tx, rx, q) = channel::bounded(name, streams::stream_capacity(cap, streams));
            decoded.push((tx, rx));
            stats.push(q);
        }
        // Batches, not frames: each holds up to `batch` tensors, so a few keep the model fed.
        let batch_cap = cap.div_ceil(batch).max(2);
        let (b_tx, b_rx, b) = channel::bounded("preprocess→infer (batches)", batch_cap);
        let (c_tx, c_rx, c) =
            channel::bounded("infer→postprocess (batches)", batch_cap.max(workers));
        let (d_tx, d_rx, d) = channel::bounded("postprocess→sinks", cap.max(batch));
        stats.extend([b, c, d]);
        Queues {
            decoded,
            batches: (b_tx, b_rx),
            inferred: (c_tx, c_rx),
            detected: (d_tx, d_rx),
            stats,
            in_flight: batch_cap + workers,
        }
    }
}

/// The batch size the model will run: a fixed batch dimension wins over the request.
fn batch_policy(cfg: &PipelineConfig, fixed_batch: Option<usize>) -> BatchPolicy {
    let size = match fixed_batch {
        Some(n) if n != cfg.batch => {
            tracing::warn!(
                "the model has a fixed batch size of {n}; using batch {n} instead of {}",
                cfg.batch
            );
            n
        }
        _ => cfg.batch.max(1),
    };
    // A fixed batch dimension needs every batch full; otherwise a short batch is padded only
    // to a size the session already ran, so padding never costs more than the batches before.
    let padding = if fixed_batch.is_some() {
        Padding::ToSize
    } else if cfg.pad_batches {
        Padding::ToSeen
    } else {
        Padding::Never
    };
    BatchPolicy {
        size,
        padding,
        max_wait: cfg.max_wait,
    }
}

/// Refuses a batch size whose tensors in flight could not fit in memory: better said before
/// decoding than found by the allocator an hour later.
fn check_memory(q: &Queues, batch: usize, slot_len: usize) -> Result<()> {
    // Tensors being filled, queued, run, and pooled for reuse.
    let buffers = 2 * q.in_flight + 2;
    let need = (buffers * batch * slot_len * size_of::<f32>()) as u64; // u8 needs less
    match crate::sys::available_memory() {
        Some(avail) if need > avail => Err(Error::Config(format!(
            "--batch {batch} can hold up to {:.1} GiB of model input in flight, more than the {:.1} GiB available; use a smaller --batch",
            need as f64 / (1u64 << 30) as f64,
            avail as f64 / (1u64 << 30) as f64
        ))),
        _ => Ok(()),
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
    let queues = Queues::new(
        cfg.queue_capacity.max(1),
        policy.size,
        workers,
        stream_queues,
    );
    check_memory(&queues, policy.size, spec.slot_len())?;
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

/// Whether the decoder threads preprocess their own frames into the batch (see
/// `preprocess_stage`): with several streams, when every input is a file (or standard input)
/// and no batch has to leave on a timer. One stream keeps its preprocess thread, which runs
/// on a spare core while the decoder decodes; a live source needs its queue to drop frames;
/// `--max-wait-ms` needs a thread that can wait with a timeout.
fn decoders_fill_batches(cfg: &PipelineConfig, streams: usize) -> bool {
    use crate::decode::source::SourceKind;
    streams > 1
        && cfg.max_wait.is_none()
        && cfg
            .inputs
            .iter()
            .all(|p| matches!(SourceKind::of(p), SourceKind::File | SourceKind::Stdin))
}

/// Each stream decoder's options: `--decode-threads` as given, or the budget shared out.
fn stream_decode_options(cfg: &PipelineConfig, streams: usize) -> DecodeOptions {
    let mut decode = cfg.decode.clone();
    if cfg.share_decode_threads && decode.threads > 0 {
        decode.threads = (decode.threads / streams.max(1)).max(1);
    }
    decode
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
