//! The postprocess stage: puts the workers' batches back in order ([`Reorder`]), then turns
//! each frame's raw outputs into detections in frame pixels (score filter, per-class NMS,
//! mapping back through where the frame sat in the model input) and, with `--track`, tracks
//! them.
//!
//! Tracking needs every input's frames in order, which is what this stage sees after the
//! reorder buffer. Its state is kept per input (created on the input's `Begin`, finished on
//! its `End`, whose marker carries the result on to the sinks), so inputs whose items
//! interleave each keep their own tracks, and ids start at 1 for every input. Only inferred
//! frames update the tracker, with their timestamps: `--stride` changes no time constant.

use std::{collections::HashMap, time::Instant};

use super::{
    item::{Detected, Inferred, InferredBatch, Item, Marker},
    reorder::Reorder,
    stage::Jitter,
};
use crate::{
    channel::{Rx, StageStats, Tx},
    error::Result,
    infer::{BatchOutput, ImageOutput},
    postprocess::{Detection, FrameInModel, PostprocessConfig, Postprocessor},
    preprocess::PreprocessSpec,
    track::{InputTracking, TrackingConfig},
};

pub(super) struct PostprocessLinks {
    pub rx: Rx<InferredBatch>,
    pub tx: Tx<Item<Detected>>,
    /// A token back for every batch released in order: a worker may take another.
    pub tokens: crossbeam_channel::Sender<()>,
}

/// What the stage works with.
pub(super) struct PostprocessSettings<'a> {
    pub post: PostprocessConfig,
    pub spec: PreprocessSpec,
    pub tracking: Option<&'a TrackingConfig>,
}

struct PostprocessStage<'a> {
    pp: Postprocessor,
    spec: PreprocessSpec,
    /// The user's threshold (`pp` keeps lower scores when tracking).
    conf: f32,
    tracking: Option<&'a TrackingConfig>,
    /// Per input being processed.
    trackers: HashMap<usize, InputTracking>,
}

pub(super) fn postprocess_stage(
    settings: PostprocessSettings<'_>,
    mut jitter: Option<Jitter>,
    links: PostprocessLinks,
    stats: &StageStats,
) -> Result<()> {
    let mut post = settings.post;
    if let Some(t) = settings.tracking {
        // Low-score detections keep tracks alive through occlusions.
        post.conf = post.conf.min(t.tracker.low);
    }
    let mut stage = PostprocessStage {
        pp: Postprocessor::new(post),
        spec: settings.spec,
        conf: settings.post.conf,
        tracking: settings.tracking,
        trackers: HashMap::new(),
    };
    let mut order = Reorder::new();
    while let Some(b) = links.rx.recv() {
        order.push(b.seq, b.items);
        while let Some(items) = order.pop() {
            let _ = links.tokens.try_send(());
            for item in items {
                Jitter::sleep(&mut jitter);
                let out = stage.item(item, stats);
                if links.tx.send(out).is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

impl PostprocessStage<'_> {
    fn item(&mut self, item: Item<Inferred>, stats: &StageStats) -> Item<Detected> {
        match item {
            Item::Frame(f) => Item::Frame(self.frame(f, stats)),
            Item::Marker(Marker::Begin(start)) => {
                if let Some(cfg) = self.tracking {
                    let t = InputTracking::new(cfg, self.conf);
                    self.trackers.insert(start.input, t);
                }
                Item::Marker(Marker::Begin(start))
            }
            Item::Marker(Marker::End(mut end)) => {
                let finished = self.trackers.remove(&end.input).map(|mut t| t.finish());
                end.tracking = finished.map(Box::new);
                Item::Marker(Marker::End(end))
            }
            Item::Marker(m) => Item::Marker(m),
        }
    }

    fn frame(&mut self, f: Inferred, stats: &StageStats) -> Detected {
        let Some((output, position)) = &f.output else {
            return Detected {
                meta: f.meta,
                detections: Vec::new(),
                picture: f.picture,
                tracks: None,
            };
        };
        let t0 = Instant::now();
        let size = (f.meta.width, f.meta.height);
        let mut detections = detect_in_frame(&mut self.pp, &self.spec, size, output, *position);
        let mut tracks = None;
        if let Some(cfg) = self.tracking {
            let conf = self.conf;
            let t = (self.trackers.entry(f.meta.input))
                .or_insert_with(|| InputTracking::new(cfg, conf));
            let (kept, frame_tracks) = t.frame(f.meta.index, f.meta.pts, detections);
            detections = kept;
            tracks = Some(frame_tracks);
        }
        stats.record(1, t0.elapsed());
        Detected {
            meta: f.meta,
            detections,
            picture: f.picture,
            tracks,
        }
    }
}

/// Filter + NMS for one frame of `width`x`height` at `position` in its batch's outputs, with
/// boxes mapped back through where the frame sat in the model input.
pub(super) fn detect_in_frame(
    pp: &mut Postprocessor,
    spec: &PreprocessSpec,
    (w, h): (u32, u32),
    output: &BatchOutput,
    position: usize,
) -> Vec<Detection> {
    let p = spec.placement(w, h);
    let (sw, sh) = (spec.width as f32, spec.height as f32);
    let region = FrameInModel {
        x: p.x as f32 / sw,
        y: p.y as f32 / sh,
        width: p.width as f32 / sw,
        height: p.height as f32 / sh,
    };
    match output.image(position) {
        ImageOutput::Raw(raw) => pp.run_in(raw, w, h, &region),
        ImageOutput::Selected(dets) => pp.select_in(dets, w, h, &region),
        ImageOutput::Yolo(a) => pp.run_yolo(a, (spec.width, spec.height), (w, h), &region),
    }
}
