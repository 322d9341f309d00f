//! The postprocess stage: puts the workers' batches back in order ([`Reorder`]), then turns
//! each frame's raw outputs into detections in frame pixels (score filter, per-class NMS,
//! mapping back through where the frame sat in the model input).

use std::time::Instant;

use super::{
    item::{Detected, Inferred, InferredBatch, Item},
    reorder::Reorder,
    stage::Jitter,
};
use crate::{
    channel::{Rx, StageStats, Tx},
    error::Result,
    infer::{BatchOutput, ImageOutput},
    postprocess::{Detection, FrameInModel, PostprocessConfig, Postprocessor},
    preprocess::PreprocessSpec,
};

pub(super) struct PostprocessLinks {
    pub rx: Rx<InferredBatch>,
    pub tx: Tx<Item<Detected>>,
    /// A token back for every batch released in order: a worker may take another.
    pub tokens: crossbeam_channel::Sender<()>,
}

pub(super) fn postprocess_stage(
    cfg: PostprocessConfig,
    spec: PreprocessSpec,
    mut jitter: Option<Jitter>,
    links: PostprocessLinks,
    stats: &StageStats,
) -> Result<()> {
    let mut pp = Postprocessor::new(cfg);
    let mut order = Reorder::new();
    while let Some(b) = links.rx.recv() {
        order.push(b.seq, b.items);
        while let Some(items) = order.pop() {
            let _ = links.tokens.try_send(());
            for item in items {
                Jitter::sleep(&mut jitter);
                let out = item.map_frame(|f| {
                    let t0 = Instant::now();
                    let detections = match &f.output {
                        Some((output, position)) => {
                            let d = detect_in_frame(&mut pp, &spec, &f, output, *position);
                            stats.record(1, t0.elapsed());
                            d
                        }
                        None => Vec::new(),
                    };
                    Detected {
                        meta: f.meta,
                        detections,
                        picture: f.picture,
                    }
                });
                if links.tx.send(out).is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Filter + NMS for one frame, with boxes mapped back through where the frame sat in the input.
fn detect_in_frame(
    pp: &mut Postprocessor,
    spec: &PreprocessSpec,
    f: &Inferred,
    output: &BatchOutput,
    position: usize,
) -> Vec<Detection> {
    let p = spec.placement(f.meta.width, f.meta.height);
    let (sw, sh) = (spec.width as f32, spec.height as f32);
    let region = FrameInModel {
        x: p.x as f32 / sw,
        y: p.y as f32 / sh,
        width: p.width as f32 / sw,
        height: p.height as f32 / sh,
    };
    let (w, h) = (f.meta.width, f.meta.height);
    match output.image(position) {
        ImageOutput::Raw(raw) => pp.run_in(raw, w, h, &region),
        ImageOutput::Selected(dets) => pp.select_in(dets, w, h, &region),
    }
}
