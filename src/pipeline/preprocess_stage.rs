//! The preprocess stage: each decoded frame → its slot of the next batch tensor (the kernel
//! writes straight into the [`Batcher`]'s buffer), then batches to the inference workers.
//! A frame the kernel cannot handle fails its input (the rest of that input's frames are
//! dropped and its `End` carries the error); other inputs go on.
//!
//! Frames come from the decoders' queues through [`Merge`], one stream after the other, so a
//! batch is filled from whichever streams have frames ready.

use std::{collections::HashMap, path::PathBuf};

use crossbeam_channel::Receiver;

use super::{
    batcher::{BatchPolicy, Batcher, ToInfer},
    item::{Decoded, Item, Marker, Prepared},
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

struct Stage<'a> {
    batcher: Batcher<Prepared>,
    kernel: FramePreprocessor,
    keep_pictures: bool,
    inputs: &'a [PathBuf],
    /// Inputs whose frames are being dropped after one failed, and why.
    failed: HashMap<usize, Error>,
}

pub(super) fn preprocess_stage(
    s: PreprocessSettings<'_>,
    links: PreprocessLinks,
    stats: &StageStats,
) -> Result<()> {
    let PreprocessLinks { mut rx, tx, pool } = links;
    let mut jitter = s.jitter;
    let mut stage = Stage {
        batcher: Batcher::new(s.policy, s.spec.slot_len(), s.spec.dtype),
        kernel: FramePreprocessor::new(s.kernel, s.spec),
        keep_pictures: s.keep_pictures,
        inputs: s.inputs,
        failed: HashMap::new(),
    };
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
        let out = match item {
            Item::Frame(d) => {
                let t0 = std::time::Instant::now();
                let out = stage.frame(d, &pool);
                stats.record(1, t0.elapsed());
                out
            }
            Item::Marker(m) => stage.marker(m),
        };
        if let Some(out) = out {
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

impl Stage<'_> {
    fn frame(&mut self, d: Decoded, pool: &Receiver<Tensor>) -> Option<ToInfer<Prepared>> {
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
        let (kernel, keep) = (&mut self.kernel, self.keep_pictures);
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
