//! What a pipeline run is asked to do: [`PipelineConfig`] and its parts. The stages read it;
//! nothing here decides how the stages are wired (that is `mod.rs`) or sized (`policy.rs`).

use std::{path::PathBuf, sync::Arc, time::Duration};

use super::live::LiveOptions;
use crate::{
    decode::DecodeOptions,
    labels::Labels,
    postprocess::PostprocessConfig,
    preprocess::Kernel,
    sink::{SinkConfig, SinkKinds, VideoSettings},
    telemetry::Telemetry,
    track::TrackingConfig,
};

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
    /// Metrics to update and event sinks to publish to while running (none by default).
    pub telemetry: Telemetry,
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

/// One input after the other into `out/`, JSONL and the annotated MP4, batch 1 padded, the
/// default kernel, thresholds and decoder, queues of 8, no tracking: a caller sets only what
/// it means (`PipelineConfig { inputs, batch: 4, ..Default::default() }`).
impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            inputs: Vec::new(),
            stems: Vec::new(),
            batch: 1,
            pad_batches: true,
            max_wait: None,
            streams: 1,
            share_decode_threads: true,
            decode: DecodeOptions::default(),
            kernel: Kernel::default(),
            max_frames: None,
            post: PostprocessConfig::default(),
            sinks: SinkConfig {
                out_dir: PathBuf::from("out"),
                kinds: SinkKinds {
                    jsonl: true,
                    video: true,
                    ..SinkKinds::default()
                },
                labels: Arc::new(Labels::default()),
                video: VideoSettings {
                    preset: "ultrafast".into(),
                    tune: "zerolatency".into(),
                    crf: 23,
                    threads: 0,
                },
                results: None,
            },
            queue_capacity: 8,
            settings: String::new(),
            force: false,
            jitter: None,
            realtime: false,
            selection: FrameSelection::default(),
            live: LiveOptions::default(),
            segment: None,
            tracking: None,
            telemetry: Telemetry::default(),
        }
    }
}
