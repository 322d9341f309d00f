//! The inference stage: `--workers` threads, each with its own session of the model, take
//! numbered batches from one queue, run them, and send the results on with the batch's
//! number (the reorder buffer after them restores the order).

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Instant,
};

use super::{
    batcher::ToInfer,
    item::{Inferred, InferredBatch, Prepared},
    stage::Jitter,
};
use crate::{
    channel::{Rx, StageStats, Tx},
    error::Result,
    infer::Detector,
    preprocess::Tensor,
    telemetry::Metrics,
};

/// What an inference worker shares with the other workers.
pub(super) struct WorkerLinks<'a> {
    pub rx: Rx<ToInfer<Prepared>>,
    pub tx: Tx<InferredBatch>,
    /// Batch tensors back to preprocessing.
    pub pool: crossbeam_channel::Sender<Tensor>,
    /// One per batch allowed in flight (see `pipeline::run`).
    pub tokens: crossbeam_channel::Receiver<()>,
    /// Set by a worker that failed, so the others stop too.
    pub abort: &'a AtomicBool,
    /// With `--metrics`: the batch size and inference time histograms.
    pub metrics: Option<&'a Metrics>,
}

/// One inference worker. Returns the milliseconds each of its inference calls took.
pub(super) fn infer_stage(
    mut detector: Detector,
    links: WorkerLinks<'_>,
    stats: &StageStats,
    mut jitter: Option<Jitter>,
) -> Result<Vec<f64>> {
    let mut batch_ms = Vec::new();
    loop {
        // No token: postprocessing has stopped.
        if links.tokens.recv().is_err() {
            break;
        }
        let Some(next) = links.rx.recv() else { break };
        if links.abort.load(Ordering::SeqCst) {
            break;
        }
        Jitter::sleep(&mut jitter);
        let out = match next {
            ToInfer::Passthrough { seq, items } => InferredBatch {
                seq,
                items: items
                    .into_iter()
                    .map(|it| {
                        it.map_frame(|p| Inferred {
                            meta: p.meta,
                            output: None,
                            picture: p.picture,
                        })
                    })
                    .collect(),
            },
            ToInfer::Batch(b) => {
                let t0 = Instant::now();
                let output = match detector.run(&b.tensor, b.run_n) {
                    Ok(o) => Arc::new(o),
                    Err(e) => {
                        links.abort.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                };
                let took = t0.elapsed();
                batch_ms.push(took.as_secs_f64() * 1e3);
                stats.record(b.frames as u64, took);
                if let Some(m) = links.metrics {
                    m.batch(b.frames, took);
                }
                let _ = links.pool.try_send(b.tensor);
                let mut position = 0;
                let items = b
                    .items
                    .into_iter()
                    .map(|it| {
                        it.map_frame(|p| {
                            // Frames that skip inference ride in the batch without a slot.
                            let out = p.meta.infer.then(|| {
                                position += 1;
                                (output.clone(), position - 1)
                            });
                            Inferred {
                                meta: p.meta,
                                output: out,
                                picture: p.picture,
                            }
                        })
                    })
                    .collect();
                InferredBatch { seq: b.seq, items }
            }
        };
        if links.tx.send(out).is_err() {
            break;
        }
    }
    Ok(batch_ms)
}
