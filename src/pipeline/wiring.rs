//! How the stages are wired: the queues between them, and the scoped threads that run them
//! (`spawn.rs`), each given its ends of the queues. What sizes the queues is `policy.rs`.

mod spawn;

use std::{
    sync::{
        atomic::{AtomicBool, AtomicUsize},
        Arc,
    },
    thread,
};

use super::{
    batcher::{self, BatchPolicy},
    config::PipelineConfig,
    item::{Decoded, Detected, InferredBatch, Item, Prepared},
    policy::QueueSizes,
    preprocess_stage::SharedBatcher,
    report::{InputReport, Observer},
    sink_stage,
    stage::{join, spawn},
    streams::{StreamReport, StreamStats},
};
use crate::{
    channel::{self, QueueStats, StageStats},
    error::{Error, Result},
    infer::Detector,
    output::OutputDir,
    preprocess::Tensor,
};
use spawn::WorkerEnds;

pub(super) type DecodedQueue = (channel::Tx<Item<Decoded>>, channel::Rx<Item<Decoded>>);

/// What the front of the pipeline is given: the streams' queues (none when the decoders fill
/// the batches themselves), the queue to the workers, the tensors coming back for reuse.
pub(super) type Front = (
    Vec<DecodedQueue>,
    channel::Tx<batcher::ToInfer<Prepared>>,
    crossbeam_channel::Receiver<Tensor>,
);

/// The queues between the stages, and the statistics each one keeps.
pub(super) struct Queues {
    /// One per stream.
    pub decoded: Vec<DecodedQueue>,
    pub batches: (
        channel::Tx<batcher::ToInfer<Prepared>>,
        channel::Rx<batcher::ToInfer<Prepared>>,
    ),
    pub inferred: (channel::Tx<InferredBatch>, channel::Rx<InferredBatch>),
    pub detected: (channel::Tx<Item<Detected>>, channel::Rx<Item<Detected>>),
    /// The streams' queues first, then the others in order.
    pub stats: Vec<Arc<QueueStats>>,
    /// Batches allowed between the preprocess queue and the sinks' queue (see [`run`]).
    pub in_flight: usize,
}

impl Queues {
    /// `streams`: how many stream queues (0 when the decoders fill the batches themselves).
    pub fn new(sizes: QueueSizes, streams: usize) -> Self {
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

/// What the stages produced.
pub(super) struct StagesOut {
    pub inputs: Vec<InputReport>,
    pub frame_latency_ms: Vec<f64>,
    pub batch_ms: Vec<f64>,
    pub queues: Vec<channel::QueueReport>,
    pub streams: Vec<StreamReport>,
}

/// Everything the stage threads borrow.
pub(super) struct Wiring<'a> {
    pub cfg: &'a PipelineConfig,
    pub out: &'a OutputDir,
    pub stems: &'a [String],
    pub spec: crate::preprocess::PreprocessSpec,
    pub policy: BatchPolicy,
    pub stages: &'a [Arc<StageStats>; 5],
    /// One per stream.
    pub streams: &'a [StreamStats],
    /// The next input no stream has taken.
    pub next_input: AtomicUsize,
    pub cancel: &'a Arc<AtomicBool>,
    pub observer: &'a dyn Observer,
}

impl<'a> Wiring<'a> {
    /// Starts every stage, waits for all of them, and reports the first error upstream
    /// (it explains the rest).
    pub fn run_stages(&self, detectors: Vec<Detector>, q: Queues) -> Result<StagesOut> {
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
}
