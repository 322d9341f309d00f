//! Sinks: where detections go. Each sink is created per input and receives frames in order.
//! Every file a sink writes goes to a temporary name first ([`crate::output::PartialFile`])
//! and is renamed into place by [`Sink::finish`]; a failed input leaves no file that looks
//! complete.

pub mod csv;
pub mod draw;
pub mod jsonl;
pub mod results;
pub mod snapshot;
pub mod tracks;
pub mod video;

use std::{path::PathBuf, sync::Arc};

use ffmpeg_next::frame;

pub use results::{result_channel, FrameResults, ResultEvent, ResultSender, RgbPicture};
pub use snapshot::Snapshot;
pub use video::VideoSettings;

use crate::{
    error::{Error, Result},
    labels::Labels,
    postprocess::Detection,
    track::{Direction, FrameTracks, TrackDwell, TrackSummary, TrackingConfig},
};

/// One processed frame, as the sinks see it.
pub struct FrameResult<'a> {
    pub index: u64,
    pub pts_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub detections: &'a [Detection],
    /// False for a frame `--stride` left out of inference: it has no detections of its own
    /// (the annotated video draws the latest ones; JSONL and CSV skip it).
    pub inferred: bool,
    /// The decoded picture; present when a sink asked for pictures.
    pub picture: Option<&'a frame::Video>,
    /// With tracking, for an inferred frame: a track id per detection, the line crossings
    /// completed on this frame; with zones, where the detections are and the zones' events.
    pub tracks: Option<&'a FrameTracks>,
}

/// Something that happened to a stream, written as its own JSONL line
/// (`{"event":"dropped",...}`) between the frames it came between.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum StreamEvent {
    /// A live source ran ahead of inference: the oldest waiting frames were dropped.
    Dropped {
        frames: u64,
        first_frame: u64,
        last_frame: u64,
    },
    /// A network source dropped and was opened again; frame numbers and timestamps go on.
    Reconnected {
        /// The last frame before the outage, if any.
        after_frame: Option<u64>,
        /// Seconds without frames.
        gap_s: f64,
        /// Why the source was lost.
        reason: String,
    },
    /// Packets that gave no frame (a file cut in the middle of a GOP starts with some): how
    /// many, and the presentation times of the first and last, in seconds like `pts`.
    Undecodable {
        packets: u64,
        from_pts: f64,
        to_pts: f64,
    },
    /// A tracked object crossed a count line; written after the line of the frame on which
    /// the crossing was completed.
    Crossing {
        line: String,
        direction: Direction,
        track_id: u64,
        class_id: u32,
        label: String,
        frame: u64,
        pts: f64,
        /// Where the object's path crossed the line, in frame pixels.
        x: f32,
        y: f32,
    },
    /// A tracked object entered a zone; written after the line of the frame on which its
    /// inertia was over. `frame` and `pts` are those of its first observation inside.
    ZoneEnter {
        zone: String,
        track_id: u64,
        class_id: u32,
        label: String,
        frame: u64,
        pts: f64,
    },
    /// A tracked object left a zone: `frame` and `pts` are those of its first observation
    /// outside (or, `track_ended`, its last one inside before its track ended); `dwell_s`
    /// is the time since it entered.
    ZoneExit {
        zone: String,
        track_id: u64,
        class_id: u32,
        label: String,
        frame: u64,
        pts: f64,
        dwell_s: f64,
        track_ended: bool,
    },
    /// With `--snapshots`: a track ended (the same moment its tracks-file line is written),
    /// with its snapshot.
    TrackEnd {
        track_id: u64,
        class_id: u32,
        label: String,
        last_frame: u64,
        last_pts: f64,
        snapshot: Option<Snapshot>,
    },
    /// Events of this input an event sink (`sink`: its target) dropped because its queue
    /// was full; written before the input's outputs are committed.
    EventsDropped { sink: String, events: u64 },
}

pub trait Sink {
    fn write(&mut self, frame: &FrameResult<'_>) -> Result<()>;
    /// Records an event of the stream (sinks that have no place for one ignore it).
    fn event(&mut self, _event: &StreamEvent) -> Result<()> {
        Ok(())
    }
    /// Records tracks that have ended, with their time in zones (by track id; empty without
    /// zones) and, with `--snapshots`, each one's snapshot (same order as `tracks`; empty
    /// without). Sinks that do not list tracks ignore them.
    fn tracks_ended(
        &mut self,
        _tracks: &[TrackSummary],
        _dwell: &[TrackDwell],
        _snapshots: &[Option<Snapshot>],
    ) -> Result<()> {
        Ok(())
    }
    /// Flushes and renames the output into place; returns the final paths.
    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>>;
}

/// Which outputs to write for every input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinkKinds {
    pub jsonl: bool,
    pub csv: bool,
    pub video: bool,
    /// `<name>.tracks.jsonl`, one line per track (only written when tracking).
    pub tracks: bool,
    /// `<name>.snapshots/`, the best frame of each track (only when tracking).
    pub snapshots: bool,
}

impl SinkKinds {
    pub fn needs_pictures(&self) -> bool {
        self.video || self.snapshots
    }
}

/// Settings shared by all sinks of a run.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub out_dir: PathBuf,
    pub kinds: SinkKinds,
    pub labels: Arc<Labels>,
    /// x264 settings of the annotated video.
    pub video: VideoSettings,
    /// Also hand every frame's results to the caller through this channel (no file).
    pub results: Option<ResultSender>,
}

impl SinkConfig {
    /// Whether the decoded pictures must travel to the sinks.
    pub fn needs_pictures(&self) -> bool {
        self.kinds.needs_pictures() || self.results.as_ref().is_some_and(|r| r.pictures)
    }
}

/// Facts about the input a sink set is opened for.
#[derive(Debug, Clone)]
pub struct SinkInput {
    /// Output file stem, e.g. `vtest` for `vtest.avi`.
    pub stem: String,
    pub width: u32,
    pub height: u32,
    pub frame_rate: (i32, i32),
}

/// Opens the configured sinks for one input; `tracking` is the run's, if it tracks.
pub fn open_sinks(
    cfg: &SinkConfig,
    tracking: Option<&TrackingConfig>,
    input: &SinkInput,
) -> Result<Vec<Box<dyn Sink>>> {
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| Error::write(&cfg.out_dir, e))?;
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let path = |ext: &str| cfg.out_dir.join(format!("{}.{ext}", input.stem));
    // The zones' names, when there are zones.
    let zones: Option<Vec<String>> = tracking
        .filter(|t| !t.zones.is_empty())
        .map(|t| t.zones.zones.iter().map(|z| z.name().to_string()).collect());
    if cfg.kinds.jsonl {
        sinks.push(Box::new(jsonl::JsonlSink::create(
            &path("jsonl"),
            cfg.labels.clone(),
            zones.clone(),
        )?));
    }
    if cfg.kinds.csv {
        sinks.push(Box::new(csv::CsvSink::create(
            &path("csv"),
            cfg.labels.clone(),
            tracking.is_some(),
            zones.clone(),
        )?));
    }
    if cfg.kinds.video {
        sinks.push(Box::new(video::AnnotatedVideoSink::create(
            &path("annotated.mp4"),
            input,
            cfg,
            tracking,
        )?));
    }
    if cfg.kinds.tracks && tracking.is_some() {
        sinks.push(Box::new(tracks::TracksSink::create(
            &path("tracks.jsonl"),
            cfg.labels.clone(),
            zones.is_some(),
        )?));
    }
    Ok(sinks)
}
