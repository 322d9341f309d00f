//! What travels between the stages. Every queue carries [`Item`]s: a frame at the stage's
//! level of processing, or a [`Marker`] that opens or closes an input. Markers travel in the
//! same queues as frames, so each stage sees an input's frames between its `Begin` and `End`.

use std::{sync::Arc, time::Instant};

use ffmpeg_next::frame;

use super::report::Skip;
use crate::{
    decode::{DecodeIssues, VideoInfo},
    error::Error,
    infer::BatchOutput,
    output::{InputIdentity, StemLock},
    postprocess::Detection,
    sink::StreamEvent,
    track::{FrameTracks, TrackingEnd},
};

/// Where a frame came from and when it was decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameMeta {
    /// Index of the input in the run's list.
    pub input: usize,
    /// 0-based frame index in the input.
    pub index: u64,
    /// Presentation time in seconds.
    pub pts: f64,
    pub width: u32,
    pub height: u32,
    pub decoded_at: Instant,
    /// False for a frame `--stride` leaves out: it goes to the sinks (the annotated video keeps
    /// every frame) without inference.
    pub infer: bool,
}

/// How an input ended, as decoding saw it.
#[derive(Debug)]
pub(crate) struct InputEnd {
    pub input: usize,
    pub issues: DecodeIssues,
    pub interrupted: bool,
    pub error: Option<Error>,
    /// Not processed, and why (not an error).
    pub skipped: Option<Skip>,
    /// Frames of a live source dropped to keep up.
    pub dropped: u64,
    /// Times a network source was opened again after it dropped.
    pub reconnects: u32,
    /// With `--track`: the tracks alive at the end, the line counts and the zones' totals
    /// (filled in by the postprocess stage; boxed, so markers stay small).
    pub tracking: Option<Box<TrackingEnd>>,
}

impl InputEnd {
    pub fn new(input: usize) -> Self {
        InputEnd {
            input,
            issues: DecodeIssues::default(),
            interrupted: false,
            error: None,
            skipped: None,
            dropped: 0,
            reconnects: 0,
            tracking: None,
        }
    }
}

/// What an input's outputs are opened with.
#[derive(Debug)]
pub(crate) struct InputStart {
    pub input: usize,
    pub info: VideoInfo,
    /// Held until the outputs are committed: no other process writes this stem meanwhile.
    pub lock: StemLock,
    /// The input file as it was when decoding started (for its done marker; none for a
    /// stream).
    pub identity: Option<InputIdentity>,
    /// A stream with no end of its own (its outputs may be cut into segments).
    pub live: bool,
}

/// Opens or closes an input, or tells of something that happened to it on the way.
#[derive(Debug)]
pub(crate) enum Marker {
    Begin(Box<InputStart>),
    Event { input: usize, event: StreamEvent },
    End(Box<InputEnd>),
}

pub(crate) enum Item<F> {
    Marker(Marker),
    Frame(F),
}

impl<F> Item<F> {
    /// The same item one stage further: frames are transformed, markers pass as they are.
    pub fn map_frame<G>(self, f: impl FnOnce(F) -> G) -> Item<G> {
        match self {
            Item::Marker(m) => Item::Marker(m),
            Item::Frame(x) => Item::Frame(f(x)),
        }
    }
}

/// A decoded picture (decode → preprocess).
pub(crate) struct Decoded {
    pub meta: FrameMeta,
    pub picture: frame::Video,
}

/// A frame whose tensor is in its batch; the picture is kept only if a sink draws on it.
pub(crate) struct Prepared {
    pub meta: FrameMeta,
    pub picture: Option<frame::Video>,
}

/// A frame with the model's raw outputs for its batch and its position in that batch (`None`
/// for a frame that skipped inference).
pub(crate) struct Inferred {
    pub meta: FrameMeta,
    pub output: Option<(Arc<BatchOutput>, usize)>,
    pub picture: Option<frame::Video>,
}

/// A frame with its detections in frame pixels (postprocess → sinks).
pub(crate) struct Detected {
    pub meta: FrameMeta,
    pub detections: Vec<Detection>,
    pub picture: Option<frame::Video>,
    /// With `--track`, for an inferred frame: the detections' track ids, crossings, tracks
    /// that ended.
    pub tracks: Option<FrameTracks>,
}

/// One batch's results, numbered so that postprocessing can restore the order in which the
/// inference workers took the batches.
pub(crate) struct InferredBatch {
    pub seq: u64,
    pub items: Vec<Item<Inferred>>,
}
