//! What a run reports: per input ([`InputReport`]) and for the whole run ([`RunReport`]).
//! One definition serves the program (fields) and `--summary-json` (serde). Progress is
//! reported as it happens to an [`Observer`]; drawing it is the caller's business.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{ser::SerializeStruct, Serialize, Serializer};

use crate::{
    channel::{QueueReport, StageReport},
    decode::DecodeIssues,
    error::{chain, Error},
    infer::{EpKind, Precision},
    labels::Labels,
    track::{CountLine, LineCount, Zone, ZoneCount},
};

/// Told about progress by the sink stage, as frames complete.
pub trait Observer: Sync {
    /// An input's outputs were opened; the container says it holds `frames_hint` frames.
    fn input_started(&self, _path: &Path, _frames_hint: Option<u64>) {}
    /// A frame reached the sinks.
    fn frame_done(&self) {}
}

/// Observes nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// Why an input was not processed (not an error: its outputs are, or will be, complete).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Another process is writing this input's outputs now.
    Busy { pid: Option<u32> },
    /// Another process finished it after this run was planned.
    DoneMeanwhile,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::Busy { pid: Some(p) } => {
                write!(
                    f,
                    "another vidinfer process (pid {p}) is writing its outputs"
                )
            }
            Skip::Busy { pid: None } => {
                f.write_str("another vidinfer process is writing its outputs")
            }
            Skip::DoneMeanwhile => f.write_str("another vidinfer process has finished it"),
        }
    }
}

/// What happened to one input.
#[derive(Debug)]
pub struct InputReport {
    pub path: PathBuf,
    pub frames: u64,
    /// Frames the container says it holds (capped by `max_frames`), when it says.
    pub expected_frames: Option<u64>,
    pub detections: u64,
    pub outputs: Vec<PathBuf>,
    pub issues: DecodeIssues,
    pub interrupted: bool,
    pub error: Option<Error>,
    pub skipped: Option<Skip>,
    /// Frames of a live source dropped to keep up with it.
    pub dropped_frames: u64,
    /// Times a network source was opened again after it dropped.
    pub reconnects: u32,
    /// With tracking: tracks and line counts.
    pub tracking: Option<TrackingReport>,
    /// The annotated video's size when the input's is more than H.264 encodes (it is scaled
    /// down to fit).
    pub annotated_scaled_to: Option<(u32, u32)>,
}

/// An input's tracking, in the summary (`"tracking"` in `--summary-json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrackingReport {
    /// Confirmed tracks (ids 1..=tracks).
    pub tracks: u64,
    /// Every count line, in the order given.
    pub lines: Vec<LineReport>,
    /// Every zone, in the order given (without zones: not in the JSON).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<ZoneReport>,
}

/// One zone's tracks: in total, and per class that entered it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneReport {
    pub name: String,
    pub entered: u64,
    pub exited: u64,
    /// Tracks inside when the input ended (entered, not exited).
    pub inside_at_end: u64,
    /// Mean and longest dwell of the exits, in seconds (`None` without exits).
    pub dwell_s_mean: Option<f64>,
    pub dwell_s_max: Option<f64>,
    pub classes: Vec<ZoneClassCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ZoneClassCount {
    pub class_id: u32,
    pub label: String,
    pub entered: u64,
    pub exited: u64,
    pub inside_at_end: u64,
}

impl ZoneReport {
    /// The report of every zone from the counter's totals.
    pub fn all(zones: &[Zone], counts: &[ZoneCount], labels: &Labels) -> Vec<ZoneReport> {
        let micros = |s: f64| (s * 1e6).round() / 1e6;
        zones
            .iter()
            .map(|z| {
                let mine: Vec<&ZoneCount> = counts.iter().filter(|c| c.zone == z.name()).collect();
                let exited: u64 = mine.iter().map(|c| c.exited).sum();
                let sum: f64 = mine.iter().map(|c| c.dwell_s_sum).sum();
                let max = mine.iter().map(|c| c.dwell_s_max).fold(0.0, f64::max);
                ZoneReport {
                    name: z.name().to_string(),
                    entered: mine.iter().map(|c| c.entered).sum(),
                    exited,
                    inside_at_end: mine.iter().map(|c| c.inside_at_end).sum(),
                    dwell_s_mean: (exited > 0).then(|| micros(sum / exited as f64)),
                    dwell_s_max: (exited > 0).then(|| micros(max)),
                    classes: (mine.iter())
                        .map(|c| ZoneClassCount {
                            class_id: c.class_id,
                            label: labels.name(c.class_id).into_owned(),
                            entered: c.entered,
                            exited: c.exited,
                            inside_at_end: c.inside_at_end,
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

/// One count line's crossings: in total, and per class that crossed it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LineReport {
    pub name: String,
    #[serde(rename = "in")]
    pub inward: u64,
    #[serde(rename = "out")]
    pub outward: u64,
    pub classes: Vec<ClassCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassCount {
    pub class_id: u32,
    pub label: String,
    #[serde(rename = "in")]
    pub inward: u64,
    #[serde(rename = "out")]
    pub outward: u64,
}

impl TrackingReport {
    /// The report of `tracks` tracks and the counter's totals over `lines`.
    pub fn new(tracks: u64, lines: &[CountLine], counts: &[LineCount], labels: &Labels) -> Self {
        let lines = lines
            .iter()
            .map(|l| {
                let classes: Vec<ClassCount> = counts
                    .iter()
                    .filter(|c| c.line == l.name)
                    .map(|c| ClassCount {
                        class_id: c.class_id,
                        label: labels.name(c.class_id).into_owned(),
                        inward: c.inward,
                        outward: c.outward,
                    })
                    .collect();
                LineReport {
                    name: l.name.clone(),
                    inward: classes.iter().map(|c| c.inward).sum(),
                    outward: classes.iter().map(|c| c.outward).sum(),
                    classes,
                }
            })
            .collect();
        TrackingReport {
            tracks,
            lines,
            zones: Vec::new(),
        }
    }
}

impl InputReport {
    pub(crate) fn new(path: &Path) -> Self {
        InputReport {
            path: path.into(),
            frames: 0,
            expected_frames: None,
            detections: 0,
            outputs: Vec::new(),
            issues: DecodeIssues::default(),
            interrupted: false,
            error: None,
            skipped: None,
            dropped_frames: 0,
            reconnects: 0,
            tracking: None,
            annotated_scaled_to: None,
        }
    }

    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

impl Serialize for InputReport {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let lossy = |p: &Path| p.to_string_lossy().into_owned();
        let fields = 16 + usize::from(self.tracking.is_some());
        let mut st = s.serialize_struct("InputReport", fields)?;
        st.serialize_field("path", &lossy(&self.path))?;
        st.serialize_field("ok", &self.ok())?;
        st.serialize_field("error", &self.error.as_ref().map(|e| chain(e)))?;
        st.serialize_field("frames", &self.frames)?;
        st.serialize_field("expected_frames", &self.expected_frames)?;
        st.serialize_field("detections", &self.detections)?;
        let outputs: Vec<String> = self.outputs.iter().map(|p| lossy(p)).collect();
        st.serialize_field("outputs", &outputs)?;
        st.serialize_field("corrupt_packets", &self.issues.corrupt_packets)?;
        st.serialize_field("damaged_frames", &self.issues.damaged_frames)?;
        let undecodable = &self.issues.undecodable_packets;
        st.serialize_field("undecodable_packets", undecodable)?;
        let leading = &self.issues.undecodable_leading;
        st.serialize_field("undecodable_leading_packets", leading)?;
        st.serialize_field("interrupted", &self.interrupted)?;
        st.serialize_field("skipped", &self.skipped.as_ref().map(|s| s.to_string()))?;
        st.serialize_field("dropped_frames", &self.dropped_frames)?;
        st.serialize_field("reconnects", &self.reconnects)?;
        st.serialize_field("annotated_scaled_to", &self.annotated_scaled_to)?;
        // Only with tracking: the summary of a run without it keeps its fields.
        if let Some(t) = &self.tracking {
            st.serialize_field("tracking", t)?;
        }
        st.end()
    }
}

/// The whole run.
#[derive(Debug, Serialize)]
pub struct RunReport {
    /// The execution provider that ran.
    #[serde(serialize_with = "ep_name")]
    pub ep: EpKind,
    /// The arithmetic that ran.
    pub precision: Precision,
    pub batch: usize,
    /// Inference workers that ran.
    pub workers: usize,
    pub frames: u64,
    pub detections: u64,
    #[serde(rename = "seconds", serialize_with = "seconds")]
    pub elapsed: Duration,
    pub fps: f64,
    /// CPU milliseconds the whole process spent per frame (all stages and their helpers).
    pub cpu_ms_per_frame: Option<f64>,
    pub interrupted: bool,
    pub peak_rss_kib: Option<u64>,
    pub inputs: Vec<InputReport>,
    pub stages: Vec<StageReport>,
    pub queues: Vec<QueueReport>,
    /// Each stream's decoder (one per input decoded side by side).
    pub streams: Vec<super::StreamReport>,
    /// Per frame: milliseconds from the end of its decode to the end of its sinks.
    #[serde(skip)]
    pub frame_latency_ms: Vec<f64>,
    /// Per inference call: milliseconds the session ran.
    #[serde(skip)]
    pub batch_ms: Vec<f64>,
    /// CPU time all threads of the process used during the run, in seconds (if known).
    #[serde(skip)]
    pub cpu_s: Option<f64>,
    /// What became of the events of each event sink (filled by whoever ran them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<crate::telemetry::EventSinkReport>,
}

fn ep_name<S: Serializer>(ep: &EpKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(ep.name())
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl RunReport {
    /// Fills the totals from the per-input reports.
    pub(crate) fn with_totals(mut self) -> Self {
        self.frames = self.inputs.iter().map(|i| i.frames).sum();
        self.detections = self.inputs.iter().map(|i| i.detections).sum();
        self.fps = self.frames as f64 / self.elapsed.as_secs_f64().max(1e-9);
        self.cpu_ms_per_frame = self
            .cpu_s
            .filter(|_| self.frames > 0)
            .map(|s| s * 1e3 / self.frames as f64);
        self.peak_rss_kib = crate::sys::peak_rss_kib();
        self
    }

    pub fn failed(&self) -> usize {
        self.inputs.iter().filter(|i| !i.ok()).count()
    }
}
