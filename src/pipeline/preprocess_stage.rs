//! The preprocess stage: each decoded frame → its slot of the next batch tensor (the kernel
//! writes straight into the [`Batcher`]'s buffer), then batches to the inference workers.
//! A frame the kernel cannot handle fails its input (the rest of that input's frames are
//! dropped and its `End` carries the error); other inputs go on.
//!
//! It runs in one of two ways:
//! - its own thread ([`preprocess_stage`]), reading the decoders' queues through [`Merge`],
//!   one stream after the other, so a batch is filled from whichever streams have frames
//!   ready. Used with one stream (a spare core preprocesses while the decoder decodes), and
//!   whenever a batch must be pushed on a timer (`--max-wait-ms`, live sources).
//! - on the decoder threads themselves ([`SharedBatcher`]), with several streams of files:
//!   each decoder writes its frame into the batch being filled right after decoding it, under
//!   one lock. The picture is still in that core's cache (read from another core it costs
//!   twice as much), and no thread has to be woken for it. Items enter the batch in the order
//!   the decoders take the lock, so batches still mix inputs and each input keeps its order.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use crossbeam_channel::Receiver;

use super::{
    batcher::{BatchPolicy, Batcher, ToInfer},
    item::{Decoded, Item, Marker, Prepared},
    live::Stopped,
    stage::Jitter,
    streams::{Merge, Recv},
};
use crate::{
    channel::{StageStats, Tx},
    error::{Error, Result},
    preprocess::{frame::FramePreprocessor, Kernel, PreprocessSpec, Tensor},
};

pub(super) struct PreprocessLinks {
    /// Every stream's decoded frames.
    pub rx: Merge<Item<Decoded>>,
    pub tx: Tx<ToInfer<Prepared>>,
    /// Batch tensors coming back from inference for reuse.
    pub pool: Receiver<Tensor>,
}

pub(super) struct PreprocessSettings<'a> {
    pub kernel: Kernel,
    pub spec: PreprocessSpec,
    pub policy: BatchPolicy,
    /// Keep each frame's picture for the sinks (the annotated video draws on it).
    pub keep_pictures: bool,
    pub inputs: &'a [PathBuf],
    pub jitter: Option<Jitter>,
}

struct Stage {
    batcher: Batcher<Prepared>,
    keep_pictures: bool,
    inputs: Vec<PathBuf>,
    /// Inputs whose frames are being dropped after one failed, and why.
    failed: HashMap<usize, Error>,
}

pub(super) fn preprocess_stage(
    s: PreprocessSettings<'_>,
    links: PreprocessLinks,
    stats: &StageStats,
) -> Result<()> {
    let PreprocessLinks { mut rx, tx, pool } = links;
    let mut kernel = FramePreprocessor::new(s.kernel, s.spec);
    let mut stage = Stage::new(&s);
    let mut jitter = s.jitter;
    loop {
        let item = match rx.recv(stage.batcher.max_wait()) {
            Recv::Item(v) => v,
            // Nothing new within the wait: send what there is (live streams).
            Recv::TimedOut => {
                if let Some(out) = stage.batcher.flush() {
                    if tx.send(out).is_err() {
                        return Ok(());
                    }
                }
                continue;
            }
            Recv::Closed => break,
        };
        Jitter::sleep(&mut jitter);
        if let Some(out) = stage.item(&mut kernel, item, &pool, stats) {
            if tx.send(out).is_err() {
                return Ok(());
            }
        }
    }
    if let Some(out) = stage.batcher.flush() {
        let _ = tx.send(out);
    }
    Ok(())
}

impl Stage {
    fn new(s: &PreprocessSettings<'_>) -> Self {
        Stage {
            batcher: Batcher::new(s.policy, s.spec.slot_len(), s.spec.dtype),
            keep_pictures: s.keep_pictures,
            inputs: s.inputs.to_vec(),
            failed: HashMap::new(),
        }
    }

    /// One item; a frame's time goes to `stats`. Returns what is ready to leave.
    fn item(
        &mut self,
        kernel: &mut FramePreprocessor,
        item: Item<Decoded>,
        pool: &Receiver<Tensor>,
        stats: &StageStats,
    ) -> Option<ToInfer<Prepared>> {
        match item {
            Item::Frame(d) => {
                let t0 = Instant::now();
                let out = self.frame(kernel, d, pool);
                stats.record(1, t0.elapsed());
                out
            }
            Item::Marker(m) => self.marker(m),
        }
    }

    fn frame(
        &mut self,
        kernel: &mut FramePreprocessor,
        d: Decoded,
        pool: &Receiver<Tensor>,
    ) -> Option<ToInfer<Prepared>> {
        if self.failed.contains_key(&d.meta.input) {
            return None;
        }
        let Decoded { meta, picture } = d;
        if !meta.infer {
            let picture = self.keep_pictures.then_some(picture);
            return self
                .batcher
                .push_passthrough(Item::Frame(Prepared { meta, picture }));
        }
        let keep = self.keep_pictures;
        let pushed = self.batcher.push_frame(
            || pool.try_recv().ok(),
            |slot| {
                kernel.write(&picture, slot)?;
                Ok(Prepared {
                    meta,
                    picture: keep.then_some(picture),
                })
            },
        );
        match pushed {
            Ok(out) => out,
            Err(source) => {
                let error = Error::Preprocess {
                    path: self.inputs[meta.input].clone(),
                    frame: meta.index,
                    source,
                };
                self.failed.insert(meta.input, error);
                None
            }
        }
    }

    fn marker(&mut self, mut m: Marker) -> Option<ToInfer<Prepared>> {
        if let Marker::End(end) = &mut m {
            if let Some(error) = self.failed.remove(&end.input) {
                end.error.get_or_insert(error);
            }
        }
        self.batcher.push_marker(m)
    }
}

/// The preprocess stage run by the decoder threads (see the module's note): one batcher that
/// every stream's decoder fills under a lock, each running the kernel on its own thread.
pub(super) struct SharedBatcher {
    state: Mutex<Shared>,
    pool: Receiver<Tensor>,
    stats: Arc<StageStats>,
    /// For each stream's own kernel.
    kernel: (Kernel, PreprocessSpec),
}

struct Shared {
    stage: Stage,
    /// Dropped when the last stream ends, which tells the inference workers that no batch
    /// will follow.
    tx: Option<Tx<ToInfer<Prepared>>>,
    jitter: Option<Jitter>,
    /// Streams that have not ended yet.
    open: usize,
}

impl SharedBatcher {
    pub fn new(
        s: PreprocessSettings<'_>,
        (tx, pool): (Tx<ToInfer<Prepared>>, Receiver<Tensor>),
        streams: usize,
        stats: Arc<StageStats>,
    ) -> Self {
        let stage = Stage::new(&s);
        let shared = Shared {
            stage,
            tx: Some(tx),
            jitter: s.jitter,
            open: streams,
        };
        SharedBatcher {
            state: Mutex::new(shared),
            pool,
            stats,
            kernel: (s.kernel, s.spec),
        }
    }

    /// A kernel for one stream's thread (it stays on that thread: FFmpeg's converter is not
    /// `Send`).
    pub fn kernel(&self) -> FramePreprocessor {
        FramePreprocessor::new(self.kernel.0, self.kernel.1)
    }

    /// Adds one item of the calling stream, its frame preprocessed with the caller's `kernel`
    /// (one per stream, so each keeps its plan for its own frame size). A batch that fills
    /// is sent before the lock is let go, so batches leave in the order they are numbered.
    /// Returns how long the caller waited for the lock and for room downstream.
    pub fn push(
        &self,
        kernel: &mut FramePreprocessor,
        item: Item<Decoded>,
    ) -> Result<Duration, Stopped> {
        let t0 = Instant::now();
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let st = &mut *guard;
        let locked = t0.elapsed();
        Jitter::sleep(&mut st.jitter);
        let Some(out) = st.stage.item(kernel, item, &self.pool, &self.stats) else {
            return Ok(locked);
        };
        let t1 = Instant::now();
        let sent = st.tx.as_ref().map(|tx| tx.send(out));
        match sent {
            Some(Ok(())) => Ok(locked + t1.elapsed()),
            _ => Err(Stopped),
        }
    }

    /// A stream has sent its last item (it may have stopped early); the last stream to end
    /// sends the partial batch and closes the queue to the inference workers.
    pub fn stream_ended(&self) {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        st.open = st.open.saturating_sub(1);
        if st.open > 0 {
            return;
        }
        let (out, tx) = (st.stage.batcher.flush(), st.tx.take());
        if let (Some(out), Some(tx)) = (out, tx) {
            let _ = tx.send(out);
        }
    }
}
