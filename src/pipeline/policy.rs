//! The pipeline's policy: how big its queues are, how batches are padded, whether a batch
//! size fits in memory, who fills the batches and how the decoder threads are shared out.
//! `mod.rs` wires the stages with what these decide.

use super::{
    batcher::{BatchPolicy, Padding},
    config::PipelineConfig,
    streams::stream_capacity,
};
use crate::{
    decode::{source::SourceKind, DecodeOptions},
    error::{Error, Result},
};

/// The capacity of each queue between the stages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct QueueSizes {
    /// Each stream's queue of decoded frames.
    pub stream: usize,
    /// Batches waiting for a worker.
    pub batches: usize,
    /// Batches the workers ran, waiting for postprocessing.
    pub inferred: usize,
    /// Frames waiting for the sinks.
    pub detected: usize,
    /// Batches allowed between the preprocess queue and the sinks' queue (the workers'
    /// tokens, see `pipeline::run`).
    pub in_flight: usize,
}

impl QueueSizes {
    /// `queue` (`--queue`) frames per queue, shared out between `streams` stream queues.
    pub fn new(queue: usize, batch: usize, workers: usize, streams: usize) -> Self {
        let cap = queue.max(1);
        // Batches, not frames: each holds up to `batch` tensors, so a few keep the model fed.
        let batches = cap.div_ceil(batch).max(2);
        QueueSizes {
            stream: stream_capacity(cap, streams),
            batches,
            inferred: batches.max(workers),
            detected: cap.max(batch),
            in_flight: batches + workers,
        }
    }
}

/// The batch size the model will run: a fixed batch dimension wins over the request.
pub(super) fn batch_policy(cfg: &PipelineConfig, fixed_batch: Option<usize>) -> BatchPolicy {
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
pub(super) fn check_memory(in_flight: usize, batch: usize, slot_len: usize) -> Result<()> {
    // Tensors being filled, queued, run, and pooled for reuse.
    let buffers = 2 * in_flight + 2;
    let need = (buffers * batch * slot_len * size_of::<f32>()) as u64; // u8 needs less
    match crate::sys::available_memory() {
        Some(avail) if need > avail => Err(Error::BatchTooLarge {
            batch,
            need_gib: need as f64 / (1u64 << 30) as f64,
            avail_gib: avail as f64 / (1u64 << 30) as f64,
        }),
        _ => Ok(()),
    }
}

/// Whether the decoder threads preprocess their own frames into the batch (see
/// `preprocess_stage`): with several streams, when every input is a file (or standard input)
/// and no batch has to leave on a timer. One stream keeps its preprocess thread, which runs
/// on a spare core while the decoder decodes; a live source needs its queue to drop frames;
/// `--max-wait-ms` needs a thread that can wait with a timeout.
pub(super) fn decoders_fill_batches(cfg: &PipelineConfig, streams: usize) -> bool {
    streams > 1
        && cfg.max_wait.is_none()
        && cfg
            .inputs
            .iter()
            .all(|p| matches!(SourceKind::of(p), SourceKind::File | SourceKind::Stdin))
}

/// Each stream decoder's options: `--decode-threads` as given, or the budget shared out.
pub(super) fn stream_decode_options(cfg: &PipelineConfig, streams: usize) -> DecodeOptions {
    let mut decode = cfg.decode.clone();
    if cfg.share_decode_threads && decode.threads > 0 {
        decode.threads = (decode.threads / streams.max(1)).max(1);
    }
    decode
}
