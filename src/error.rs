//! The library's one error type. Every fallible public function returns [`Result`].
//!
//! Two rules keep messages readable and each fact printed once:
//! - **The path:** an error about a file names that file in its own message, so callers never
//!   add it again.
//! - **The cause:** a variant's message says what we were doing; the underlying FFmpeg, ONNX
//!   Runtime or I/O error is kept as its [`source`](std::error::Error::source), not repeated in
//!   the message. [`chain`] (or anyhow's `{:#}`) prints the whole story on one line.
//!
//! This module depends on nothing else in the crate (it is below every stage): the errors a
//! variant carries from one stage (a model's [`SignatureError`], a frame's [`FrameError`],
//! a setting's [`ParseError`], ...) are defined here, and the stages use them. Messages say
//! what is wrong in the library's terms and name no command-line flag; the binary adds the
//! flag that fixes it.

use std::{fmt, path::PathBuf};

use ffmpeg_next as ffmpeg;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("input not found: {}", .0.display())]
    InputNotFound(PathBuf),
    #[error("input is a directory, not a video file: {}", .0.display())]
    InputIsDirectory(PathBuf),
    /// Something we found wrong with the input ourselves (empty, plain text, ...).
    #[error("cannot open {} as a video: {problem}", path.display())]
    BadInput {
        path: PathBuf,
        problem: &'static str,
    },
    #[error("cannot open {} as a video", path.display())]
    OpenInput {
        path: PathBuf,
        #[source]
        source: AvError,
    },
    #[error("{}: the source did not come back within {waited_s} s (last: {last})", path.display())]
    SourceLost {
        path: PathBuf,
        waited_s: u64,
        last: String,
    },
    #[error("{}: cannot open the camera", path.display())]
    Camera {
        path: PathBuf,
        #[source]
        source: CameraError,
    },
    #[error("{} has no video stream", .0.display())]
    NoVideoStream(PathBuf),
    #[error("cannot decode {}: {step}", path.display())]
    Decode {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: AvError,
    },
    #[error("{}: no frame could be decoded{}", path.display(), packet_note(*corrupt, *rejected))]
    NoFrames {
        path: PathBuf,
        corrupt: u64,
        rejected: u64,
    },
    #[error("{}: frame {frame} cannot be preprocessed", path.display())]
    Preprocess {
        path: PathBuf,
        frame: u64,
        #[source]
        source: FrameError,
    },

    #[error("model file not found: {}", .0.display())]
    ModelNotFound(PathBuf),
    #[error("cannot load model {}", path.display())]
    ModelLoad {
        path: PathBuf,
        #[source]
        source: OrtError,
    },
    #[error("cannot load model {}: it is a directory", .0.display())]
    ModelIsDirectory(PathBuf),
    /// The model loaded but its inputs or outputs are not a layout vidinfer runs.
    #[error("model {} is not a supported detector", path.display())]
    ModelSignature {
        path: PathBuf,
        #[source]
        source: Box<SignatureError>,
    },
    /// The model loaded but its weights cannot run in the precision asked for.
    #[error("model {} cannot run as asked", path.display())]
    ModelPrecision {
        path: PathBuf,
        #[source]
        source: PrecisionError,
    },
    /// The execution provider (on this CPU) cannot run the precision asked for.
    #[error("{ep} cannot run {precision}")]
    ProviderPrecision {
        ep: &'static str,
        precision: &'static str,
        #[source]
        source: PrecisionError,
    },
    #[error("cannot load the ONNX Runtime library {}", path.display())]
    OrtLibrary {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No provider of the requested list could be registered; each one's cause is listed.
    #[error(
        "execution provider '{requested}' is unavailable: {}",
        EpFailure::list(tried)
    )]
    ExecutionProvider {
        requested: String,
        tried: Vec<EpFailure>,
    },
    #[error("inference failed")]
    Inference {
        #[source]
        source: OrtError,
    },
    /// The batch handed to a session does not fit the model's input.
    #[error("the input batch holds {len} {dtype} values for {batch} images, the model takes {expected} {wanted}")]
    InputTensor {
        dtype: &'static str,
        len: usize,
        batch: usize,
        expected: usize,
        wanted: &'static str,
    },
    #[error("model output '{name}' has shape {shape:?}, expected {expected} values")]
    OutputShape {
        name: String,
        shape: Vec<i64>,
        expected: usize,
    },

    /// A labels file for another class list than the model's.
    #[error("labels file {} has {names} names, but the model has {classes} classes (ids 0..{})", path.display(), classes.saturating_sub(1))]
    LabelsClassCount {
        path: PathBuf,
        names: usize,
        classes: usize,
    },
    #[error("labels file {}", path.display())]
    Labels {
        path: PathBuf,
        #[source]
        source: LabelsError,
    },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the snapshot {}", path.display())]
    Snapshot {
        path: PathBuf,
        #[source]
        source: Box<image::ImageError>,
    },
    #[error("cannot encode {}: {step}", path.display())]
    Encode {
        path: PathBuf,
        step: &'static str,
        #[source]
        source: AvError,
    },
    /// A count line that does not fit this input's frames.
    #[error("{}", path.display())]
    CountLine {
        path: PathBuf,
        #[source]
        source: Box<CountLineError>,
    },
    /// A zone that does not fit this input's frames.
    #[error("{}", path.display())]
    Zone {
        path: PathBuf,
        #[source]
        source: Box<ZoneError>,
    },
    /// The H.264 encoder cannot be opened with the video settings (checked before a run).
    #[error("no H.264 encoder in this FFmpeg build")]
    NoH264Encoder,
    #[error("the H.264 encoder refuses these settings")]
    EncoderSettings {
        #[source]
        source: AvError,
    },
    /// Both names an input's outputs could take in the output directory are other inputs'.
    #[error(transparent)]
    OutputNameTaken(Box<NameTaken>),
    /// The files of an input's outputs would be one of the run's inputs.
    #[error(transparent)]
    OutputOverInput(Box<OverInput>),
    /// A setting that cannot work, found before any input is touched.
    #[error("invalid setting: {0}")]
    Config(String),
    /// A target for events that cannot be used (its password left out).
    #[error("event target {target}: {reason}")]
    EventTarget { target: String, reason: String },
    /// The metrics server could not listen.
    #[error("cannot serve metrics on {addr}")]
    MetricsServer {
        addr: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The batches in flight would not fit in the memory available.
    #[error(
        "a batch of {batch} frames can hold up to {need_gib:.1} GiB of model input in flight, more than the {avail_gib:.1} GiB available"
    )]
    BatchTooLarge {
        batch: usize,
        need_gib: f64,
        avail_gib: f64,
    },
    #[error("pipeline stage '{0}' stopped unexpectedly")]
    StageDied(&'static str),
    #[error("{}: not started (the run was interrupted)", .0.display())]
    NotStarted(PathBuf),
    /// An input decoded fine but its outputs could not be opened, written or committed.
    #[error("{}: its outputs could not be written", input.display())]
    Outputs {
        input: PathBuf,
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Write {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn read(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Read {
            path: path.into(),
            source,
        }
    }
}

fn packet_note(corrupt: u64, rejected: u64) -> String {
    if corrupt + rejected > 0 {
        format!(" ({corrupt} corrupt and {rejected} rejected packets)")
    } else {
        String::new()
    }
}

/// The error and every source below it, joined with ": " (what anyhow's `{:#}` prints).
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Both names an input's outputs could take in `dir` belong to other inputs.
#[derive(Debug, thiserror::Error)]
#[error("{}: both output names '{base}' and '{hashed}' in {} belong to other inputs", input.display(), dir.display())]
pub struct NameTaken {
    pub input: PathBuf,
    pub base: String,
    pub hashed: String,
    pub dir: PathBuf,
}

/// An output name whose files would replace an input.
#[derive(Debug, thiserror::Error)]
#[error("{}: its outputs named '{stem}' would replace {}, an input of this run", input.display(), file.display())]
pub struct OverInput {
    pub input: PathBuf,
    pub stem: String,
    pub file: PathBuf,
}

/// A setting's text that does not parse (a name, a list, a number).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("unknown {what} '{value}' (expected {expected})")]
    Unknown {
        what: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("'{value}' is not {what}")]
    Malformed { what: &'static str, value: String },
    #[error("empty {0}")]
    Empty(&'static str),
}

/// Why a model's inputs or outputs are not a layout vidinfer runs.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignatureError {
    #[error("expected exactly one input (the image batch), found {0}")]
    InputCount(usize),
    #[error("input '{0}' is not a tensor")]
    InputNotTensor(String),
    #[error("input '{name}' holds {element} values; vidinfer feeds images as float32 or uint8")]
    InputElement { name: String, element: String },
    #[error("input '{name}' has shape {shape:?} (rank {}); expected an image batch [N, 3, H, W] or [N, H, W, 3] with fixed H and W (or dynamic ones and Ultralytics' imgsz metadata)", .shape.len())]
    InputShape { name: String, shape: Vec<i64> },
    /// No layout fits the outputs (`found` describes them).
    #[error("outputs are {found}; {SUPPORTED_LAYOUTS}")]
    Outputs { found: String },
    /// The outputs do not fit the layout the caller asked for.
    #[error("outputs are {found}, which is not the {layout} layout; {SUPPORTED_LAYOUTS}")]
    NotLayout { found: String, layout: &'static str },
    /// An Ultralytics export for another task than detection.
    #[error("this is an Ultralytics '{task}' model (metadata task={task}); vidinfer runs detection models (task=detect) only")]
    Task { task: String },
    /// A `preprocess.*` metadata value that does not parse.
    #[error("metadata {key}")]
    Metadata {
        key: &'static str,
        #[source]
        source: ParseError,
    },
}

/// The output layouts vidinfer reads, for messages.
pub const SUPPORTED_LAYOUTS: &str = "supported layouts: raw (boxes [N,A,4] + scores [N,A,C]), detection-output (one [N,1,K,7] output), tf-od (boxes [N,K,4], classes [N,K], scores [N,K], count [N]), yolo ([N,4+C,A]), yolov5 ([N,A,5+C]), yolo-end2end ([N,K,6]), rtdetr ([N,Q,4+C] or Ultralytics' [N,K,6])";

/// Why a precision cannot run as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrecisionError {
    #[error("this CPU ({cpu}) has neither AVX-512 BF16 nor AMX: bf16 would be emulated, slower than fp32")]
    Bf16Emulated { cpu: String },
    #[error("bf16 runs through the OpenVINO provider (its bf16 inference hint), not {ep}")]
    Bf16NeedsOpenVino { ep: &'static str },
    #[error("int8 needs a quantised model (metadata precision=int8): tools/setup builds models/ssd_mobilenet_v2_coco_int8.onnx; this model is fp32")]
    Int8NeedsQuantisedModel,
    #[error("bf16 runs an fp32 model in bf16; this model is int8")]
    Bf16OfInt8Model,
}

/// Why a labels file cannot be read as `<id> <name>` lines.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelsError {
    #[error("line {line}: expected '<id> <name>'")]
    NoName { line: usize },
    #[error("line {line}: '{id}' is not a class id")]
    BadId { line: usize, id: String },
    #[error("no labels found")]
    Empty,
}

/// A count line outside the frames of an input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("count line '{name}' ({},{} to {},{}) is not inside the {width}x{height} frame", .a.0, .a.1, .b.0, .b.1)]
pub struct CountLineError {
    pub name: String,
    pub a: (f32, f32),
    pub b: (f32, f32),
    pub width: u32,
    pub height: u32,
}

/// A zone polygon that cannot count: refused when it is made, or (outside the frame) when an
/// input's frame size is known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ZoneError {
    #[error("zone '{name}' has {points} distinct point(s): a polygon needs at least 3")]
    TooFewPoints { name: String, points: usize },
    #[error("zone '{name}': point {index} ({x},{y}) is not a finite number")]
    NotFinite {
        name: String,
        index: usize,
        x: f32,
        y: f32,
    },
    #[error("zone '{name}' crosses itself: edge {a} and edge {b} meet (edge 1 runs from point 1 to point 2); list the points in order around the polygon")]
    SelfIntersecting { name: String, a: usize, b: usize },
    #[error("zone '{name}' has no area (its points are on one line)")]
    NoArea { name: String },
    #[error("zone '{name}' ({points}) has no area inside the {width}x{height} frame")]
    OutsideFrame {
        name: String,
        /// The points as given, `x,y;x,y;...`.
        points: String,
        width: u32,
        height: u32,
    },
}

/// Why cameras cannot be opened: FFmpeg's device library is missing or unusable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CameraError {
    #[error("cameras need FFmpeg's libavdevice (Debian: apt-get install libavdevice59)")]
    NoLibavdevice,
    #[error("libavdevice has no avdevice_register_all")]
    NoRegister(#[source] std::sync::Arc<libloading::Error>),
}

/// An FFmpeg error, described for a person (FFmpeg's own words for the common ones are
/// cryptic: "Invalid data found when processing input" for a text file).
#[derive(Debug)]
pub struct AvError(pub ffmpeg::Error);

impl fmt::Display for AvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            ffmpeg::Error::InvalidData => f.write_str(
                "invalid data found when processing input (not a video file, or corrupt)",
            ),
            ffmpeg::Error::DecoderNotFound => f.write_str("no decoder available for this codec"),
            ffmpeg::Error::EncoderNotFound => f.write_str("no encoder available for this codec"),
            ffmpeg::Error::StreamNotFound => f.write_str("no stream found"),
            ref other => write!(f, "{other}"),
        }
    }
}

impl std::error::Error for AvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The described text above already says what FFmpeg said.
        None
    }
}

impl From<ffmpeg::Error> for AvError {
    fn from(e: ffmpeg::Error) -> Self {
        AvError(e)
    }
}

/// An ONNX Runtime error, shown by its first line (ORT appends stack-like detail).
#[derive(Debug)]
pub struct OrtError(pub ort::Error);

impl fmt::Display for OrtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.to_string();
        f.write_str(s.lines().next().unwrap_or("").trim())
    }
}

impl std::error::Error for OrtError {}

impl From<ort::Error> for OrtError {
    fn from(e: ort::Error) -> Self {
        OrtError(e)
    }
}

/// Why one execution provider could not be registered.
#[derive(Debug)]
pub struct EpFailure {
    /// The provider's name, as [`crate::infer::EpKind`] spells it.
    pub ep: &'static str,
    pub source: OrtError,
}

impl EpFailure {
    fn list(all: &[EpFailure]) -> String {
        all.iter()
            .map(|f| format!("{}: {}", f.ep, f.source))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl fmt::Display for EpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.source.fmt(f)
    }
}

/// Why a kernel cannot process a frame: its geometry does not fit the plan or the buffers.
/// The pipeline fails that input with this as the cause; nothing panics.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    #[error(
        "the picture or the model input has a zero size ({src_w}x{src_h} into {dst_w}x{dst_h})"
    )]
    ZeroSize {
        src_w: u32,
        src_h: u32,
        dst_w: u32,
        dst_h: u32,
    },
    #[error("the plan was built for {planned:?} but the picture is {got:?}")]
    SizeChanged {
        planned: (u32, u32),
        got: (u32, u32),
    },
    #[error("the {0} is shorter than its size and stride say")]
    PlaneTooShort(&'static str),
    #[error("the tensor slot holds {got} values, {need} are needed")]
    SlotTooSmall { need: usize, got: usize },
}

/// Why a picture could not be turned into model input.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error(transparent)]
    Geometry(#[from] GeometryError),
    #[error("cannot convert the picture to RGB: {0}")]
    Convert(AvError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_prints_each_cause_once() {
        let e = Error::Write {
            path: "out/x.jsonl".into(),
            source: std::io::Error::other("No space left on device"),
        };
        assert_eq!(
            chain(&e),
            "cannot write out/x.jsonl: No space left on device"
        );
        let e = Error::OpenInput {
            path: "notes.txt".into(),
            source: AvError(ffmpeg::Error::InvalidData),
        };
        let s = chain(&e);
        assert_eq!(s.matches("notes.txt").count(), 1, "{s}");
        assert!(s.ends_with("(not a video file, or corrupt)"), "{s}");
    }

    #[test]
    fn errors_stay_small() {
        // Errors ride in the pipeline's markers and in every `Result`: big payloads are boxed.
        assert!(size_of::<Error>() <= 64, "{}", size_of::<Error>());
    }
}
