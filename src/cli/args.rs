//! The command line as clap types. Every flag is parsed and range-checked here, once, with
//! the bounds in `ranges.rs` that the settings file is checked with too; `settings.rs` layers
//! them over the file, `plan.rs` makes them what the library runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use vidinfer::{
    infer::{EpChoice, Precision},
    preprocess::parse_mean,
};

pub use super::arg_values::*;
use super::ranges;
pub use super::snapshot_args::SnapshotArgs;
pub use super::telemetry_args::TelemetryArgs;
pub use super::track_args::TrackArgs;

#[derive(Parser)]
#[command(
    name = "vidinfer",
    about = "Run SSD object detection over video files, fast.",
    disable_version_flag = true,
    arg_required_else_help = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Print the version, the ONNX Runtime and FFmpeg it loads and the providers available.
    #[arg(short = 'V', long)]
    pub version: bool,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Detect objects in one or more videos; writes DIR/<name>.jsonl and DIR/<name>.annotated.mp4.
    #[command(after_help = DETECT_EXAMPLES)]
    Detect(DetectArgs),
    /// Sweep batch sizes, execution providers and thread counts over one input; report fps,
    /// latency percentiles, per-stage times and the model-only ceiling.
    #[command(after_help = BENCH_EXAMPLES)]
    Bench(BenchArgs),
    /// Describe a model: the output layout recognised, its input, batch dimension, classes,
    /// the preprocessing vidinfer will use and where each value comes from, and the
    /// execution providers that can run it.
    #[command(after_help = INFO_EXAMPLES)]
    Info(InfoArgs),
    /// Find the fastest settings this machine runs (provider x precision x workers x batch)
    /// whose detections agree with fp32's, and write them to vidinfer.toml.
    #[command(after_help = TUNE_EXAMPLES)]
    Tune(TuneArgs),
}

const TUNE_EXAMPLES: &str = "\
Examples:
  vidinfer tune samples/vtest.avi
      measure on vtest, write ./vidinfer.toml; detect and bench then use it
  vidinfer tune clip.mp4 --frames 400 --write /etc/vidinfer.toml
      detect --config /etc/vidinfer.toml uses it";

const INFO_EXAMPLES: &str = "\
Examples:
  vidinfer info models/ssd_mobilenet_v2_coco_detout.onnx
      the seed article's model: detection-output layout, batch 1
  vidinfer info my_ssd.onnx --labels my_labels.txt --ort-lib /opt/ort/libonnxruntime.so";

const DETECT_EXAMPLES: &str = "\
Examples:
  vidinfer detect samples/vtest.avi
      people in OpenCV's sample video: out/vtest.jsonl and out/vtest.annotated.mp4
  vidinfer detect \"clips/*.mp4\" --out results --outputs jsonl,csv --conf 0.4
      every clip of a folder, JSONL and CSV only, a lower score threshold
  vidinfer detect clip.mp4 --ep openvino --batch 4 --summary-json run.json
      OpenVINO (tools/setup --ep openvino), batches of 4, the run's summary as JSON
  vidinfer detect samples/vtest.avi --track --count-line 220,280,220,180,walkway
      track people (ids in the JSONL and MP4, out/vtest.tracks.jsonl) and count those
      crossing a line, each way
  vidinfer detect --inputs-from list.txt --shard-index 0 --shard-count 4
      the first of four shards of a manifest (see deploy/)
  vidinfer detect \"cams/*.mp4\" --streams 4 --batch 8
      four inputs decoded at once, their frames batched together";

const BENCH_EXAMPLES: &str = "\
Examples:
  vidinfer bench samples/vtest.avi
      batch 1, 2, 4, 8, 16 on the CPU provider: model-only and end-to-end fps
  vidinfer bench samples/vtest.avi --batch 1,4 --ep cpu,openvino --json b.json --plot b.svg
      two providers side by side, results as JSON and an SVG plot
  vidinfer bench samples/vtest_1080p.mp4 --workers 1,2 --threads 1,2 --csv b.csv
      the thread budget: workers x ORT threads per worker
  vidinfer bench samples/vtest_1080p.mp4 --streams 1,2,4 --copies 4 --decode-threads 1
      the clip decoded 4 times over by 1, 2 and 4 decoders side by side
  vidinfer bench samples/vtest.avi --batch 1 --track off,on --count-line 220,280,220,180
      what tracking and counting cost, side by side";

fn unit_interval(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("must be between 0 and 1, got {v}"))
    }
}

fn nonzero_scale(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(v) if v.is_finite() && v != 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a non-zero number")),
    }
}

fn ep_choice(s: &str) -> Result<EpChoice, vidinfer::error::ParseError> {
    s.parse()
}

fn precision(s: &str) -> Result<Precision, vidinfer::error::ParseError> {
    s.parse()
}

/// Settings shared by `detect` and `bench`.
#[derive(Args, Debug)]
pub struct EngineArgs {
    /// Settings file (see `vidinfer tune`); default: ./vidinfer.toml if there is one. Flags
    /// win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// ONNX model (see `vidinfer info`). Default: models/ssd_mobilenet_v2_coco.onnx
    /// (_int8.onnx for --precision int8) here, else in vidinfer's own folder (a release
    /// bundle's models/, or the source tree).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// The model's output layout (see `vidinfer info MODEL`).
    #[arg(long, value_enum, default_value_t = ModelFormatArg::Auto)]
    pub model_format: ModelFormatArg,
    /// Labels file (`<id> <name>` per line). Default: coco_labels.txt next to the model.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Keep detections with a score above this.
    #[arg(long, default_value_t = 0.5, value_parser = unit_interval)]
    pub conf: f32,
    /// Per-class NMS IoU threshold.
    #[arg(long, default_value_t = 0.6, value_parser = unit_interval)]
    pub iou: f32,
    /// NMS across classes instead of per class (layouts vidinfer runs NMS for: raw, yolo, yolov5).
    #[arg(long)]
    pub agnostic_nms: bool,
    /// At most this many detections per frame.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_detections: u32,
    /// Flush a partial batch after waiting this long for frames (for live streams).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub max_wait_ms: Option<u64>,
    /// Run a short last batch as is instead of padding it to --batch.
    #[arg(long)]
    pub no_pad: bool,
    /// Path to libonnxruntime.so (default: ORT_DYLIB_PATH, then .cache/onnxruntime from tools/setup).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
    /// Let ONNX Runtime threads spin while idle (faster only when cores are otherwise free).
    #[arg(long)]
    pub spin: bool,
    /// Preprocessing kernel. Pictures that are not 8-bit YUV 4:2:0 (or NV12) always take the
    /// exact one.
    #[arg(long, value_enum, default_value_t = KernelArg::Fused)]
    pub preprocess: KernelArg,
    /// Fit frames by stretching or letterboxing. Default: the model's `preprocess.resize`
    /// metadata, else stretch.
    #[arg(long, value_enum)]
    pub resize: Option<ResizeArg>,
    /// Per-channel mean subtracted before scaling, "R,G,B" in 0..255 units. Default: model metadata, else 0.
    #[arg(long, value_parser = parse_mean)]
    pub mean: Option<[f32; 3]>,
    /// Scale applied after the mean. Default: model metadata, else 1/255.
    #[arg(long, value_parser = nonzero_scale)]
    pub scale: Option<f32>,
    /// Channel order the model wants. Default: model metadata, else rgb.
    #[arg(long, value_enum)]
    pub channel_order: Option<ChannelOrderArg>,
    /// Hardware decoding. Falls back to software (logged once).
    #[arg(long, value_enum, default_value_t = HwAccelArg::None)]
    pub hwaccel: HwAccelArg,
    /// FFmpeg decoder threads (frame threading) of each stream's decoder. Default: a quarter
    /// of the cores, 1 to 4, shared out between the streams (on a small machine the model needs
    /// the cores, and frame threads only add overhead).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub decode_threads: Option<u32>,
    /// Capacity of each queue between stages.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub queue: u32,
    /// x264 preset of the annotated video (ultrafast keeps encoding from starving inference).
    #[arg(long, value_enum, default_value_t = PresetArg::Ultrafast)]
    pub video_preset: PresetArg,
    /// x264 tune of the annotated video.
    #[arg(long, value_enum, default_value_t = TuneArg::Zerolatency)]
    pub video_tune: TuneArg,
    /// x264 CRF of the annotated video (0 lossless .. 51 worst).
    #[arg(long, default_value_t = 23, value_parser = clap::value_parser!(u32).range(0..=51))]
    pub crf: u32,
    /// x264 threads for the annotated video (0: x264's choice). Default: 1 on machines with
    /// up to 4 cores, where the model needs every core and encoder threads only add overhead;
    /// x264's choice above that.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=256))]
    pub video_threads: Option<u32>,
    /// CUDA device id (cuda, tensorrt).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=255))]
    pub cuda_device: i32,
    /// cuDNN convolution algorithm search.
    #[arg(long, value_enum, default_value_t = CudnnSearchArg::Heuristic)]
    pub cudnn_algo_search: CudnnSearchArg,
    /// TensorRT fp16 kernels.
    #[arg(long)]
    pub trt_fp16: bool,
    /// TensorRT engine cache directory.
    #[arg(long)]
    pub trt_cache_dir: Option<String>,
    /// OpenVINO device type (CPU, GPU, ...).
    #[arg(long, default_value = "CPU")]
    pub openvino_device: String,
    /// Start this many seconds into each input (seek).
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub start: Option<f64>,
    /// Stop this many seconds after the start.
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub duration: Option<f64>,
    /// RTSP transport: tcp (default; works through firewalls, loses nothing) or udp.
    #[arg(long, value_enum, default_value_t = RtspTransport::Tcp)]
    pub rtsp_transport: RtspTransport,
    /// A network source that sends nothing for this long fails (opening and reading).
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0, value_parser = seconds)]
    pub io_timeout_s: f64,
    /// An FFmpeg option for opening inputs, passed as it is (repeatable), e.g.
    /// `--input-option probesize=32` or `--input-option fflags=nobuffer`.
    #[arg(long, value_name = "KEY=VALUE", value_parser = key_value)]
    pub input_option: Vec<(String, String)>,
}

/// The engine flags alone, to read their defaults.
#[derive(Parser)]
struct EngineOnly {
    #[command(flatten)]
    engine: EngineArgs,
}

impl EngineArgs {
    /// Every engine flag at its default (what `detect` runs with none given).
    pub fn defaults() -> EngineArgs {
        EngineOnly::parse_from(["vidinfer"]).engine
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RtspTransport {
    Tcp,
    Udp,
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds")),
    }
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("'{s}' is not KEY=VALUE")),
    }
}

#[derive(Args, Debug)]
pub struct DetectArgs {
    /// Inputs: video files (quoted glob patterns like "clips/*.mp4" are expanded), URLs
    /// (rtsp://, rtmp://, http(s):// incl. HLS, tcp://, udp://, srt://), `-` for standard
    /// input, /dev/videoN for a V4L2 camera.
    #[arg(value_name = "INPUT", required_unless_present = "inputs_from")]
    pub inputs: Vec<PathBuf>,
    /// Name of the outputs of the one input (default: from its file name, or host and path
    /// of a URL).
    #[arg(long)]
    pub name: Option<String>,
    /// Run the model on every N-th frame only (JSONL and CSV rows for those; the annotated
    /// video keeps every frame, with the latest detections drawn).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub stride: u64,
    /// Reopen a network source that drops (default: on for live URLs — RTSP, RTMP, UDP, TCP,
    /// SRT, HTTP without a duration).
    #[arg(long, overrides_with = "no_reconnect")]
    pub reconnect: bool,
    /// Never reopen a source that drops.
    #[arg(long)]
    pub no_reconnect: bool,
    /// Give up on a source that stays away this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, value_parser = seconds)]
    pub reconnect_max_s: f64,
    /// Cut each input's outputs into segments of this many seconds (of stream time), each
    /// finished on its own: `<name>-000001.jsonl`, ... (for endless streams).
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub segment_s: Option<f64>,
    /// Read more inputs from this file, one path per line ('#' starts a comment).
    #[arg(long, value_name = "FILE")]
    pub inputs_from: Option<PathBuf>,
    /// This process's shard (0-based) of the sorted input list. Default: JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID, else 0.
    #[arg(long)]
    pub shard_index: Option<usize>,
    /// Number of shards. Default: SLURM_ARRAY_TASK_COUNT when SLURM_ARRAY_TASK_ID is used, else 1.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub shard_count: Option<u64>,
    /// Reprocess inputs whose outputs are already complete (a `<name>.done` marker exists).
    #[arg(long)]
    pub force: bool,
    /// Frames per inference call [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u32).range(ranges::BATCH))]
    pub batch: Option<u32>,
    /// Process at most this many frames of each input.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_frames: Option<u64>,
    /// Output directory.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// Outputs per input, comma separated.
    #[arg(long, value_enum, default_value = "jsonl,mp4", value_delimiter = ',')]
    pub outputs: Vec<OutputArg>,
    /// Execution providers in order of preference (cpu, cuda, tensorrt, openvino) or `auto`
    /// [default: cpu].
    #[arg(long, value_parser = ep_choice)]
    pub ep: Option<EpChoice>,
    /// Arithmetic: fp32; bf16 (OpenVINO's bf16 hint, on CPUs with AVX-512 BF16 or AMX); int8
    /// (the calibrated model tools/setup makes, models/ssd_mobilenet_v2_coco_int8.onnx, unless
    /// --model says) [default: fp32].
    #[arg(long, value_parser = precision)]
    pub precision: Option<Precision>,
    /// ONNX Runtime intra-op threads per inference worker (0: the cores shared out between
    /// the workers) [default: 0].
    #[arg(long, value_parser = clap::value_parser!(u32).range(ranges::THREADS))]
    pub threads: Option<u32>,
    /// Release frames no faster than their timestamps, like a live stream (`ffmpeg -re`).
    #[arg(long)]
    pub realtime: bool,
    /// Inference workers: sessions that run batches side by side (results stay in order).
    /// Default: one per core up to 4 with the CPU provider or OpenVINO named first, 1 with
    /// any other (and auto).
    #[arg(long, value_parser = clap::value_parser!(u32).range(ranges::WORKERS))]
    pub workers: Option<u32>,
    /// Inputs decoded side by side, each by its own decoder (with its own share of
    /// --decode-threads); when one ends the next input starts. Batches take frames from
    /// whichever inputs have them ready. 1: one input after the other. Default: one per 3
    /// cores (1 to 8) when the model runs on the CPU (cpu, openvino), one per 2 cores (1 to
    /// 16) with a GPU provider or auto.
    #[arg(long, value_parser = clap::value_parser!(u32).range(ranges::STREAMS))]
    pub streams: Option<u32>,
    /// Print per-stage times and queue depths.
    #[arg(long)]
    pub stats: bool,
    /// Also write the run's summary (provider that ran, fps, per-input results, stages, queues) as JSON.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    pub no_progress: bool,
    /// Track objects across frames (ByteTrack): a track_id on every detection, colours and
    /// ids in the MP4, DIR/<name>.tracks.jsonl with one line per track.
    #[arg(long)]
    pub track: bool,
    #[command(flatten)]
    pub tracking: TrackArgs,
    #[command(flatten)]
    pub snapshots: SnapshotArgs,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// `--track` of `bench`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    Off,
    On,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// The video to benchmark on.
    pub input: PathBuf,
    /// Batch sizes to sweep [default: the config file's, else 1,2,4,8,16].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(ranges::BATCH))]
    pub batch: Vec<u32>,
    /// Execution providers to sweep, each must register (`auto`: the first that does, as in
    /// detect) [default: the config file's, else cpu].
    #[arg(long, value_delimiter = ',', value_parser = ep_choice)]
    pub ep: Vec<EpChoice>,
    /// Precisions to sweep (fp32, bf16, int8; each must be possible on every provider swept)
    /// [default: the config file's, else fp32].
    #[arg(long, value_delimiter = ',', value_parser = precision)]
    pub precision: Vec<Precision>,
    /// ORT intra-op thread counts per worker to sweep (0: the cores shared out between the
    /// workers) [default: the config file's, else 0].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(ranges::THREADS))]
    pub threads: Vec<u32>,
    /// Inference worker counts to sweep (0: the provider's default, as in detect) [default:
    /// the config file's, else 0].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(ranges::WORKERS_OR_DEFAULT))]
    pub workers: Vec<u32>,
    /// Stream counts to sweep (inputs decoded side by side, see detect --streams; 0: the
    /// provider's default) [default: the config file's, else 0].
    #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(ranges::STREAMS_OR_DEFAULT))]
    pub streams: Vec<u32>,
    /// The end-to-end runs decode the input this many times over, as that many inputs
    /// (--frames each), so that several streams have inputs to decode [default: the largest
    /// --streams].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub copies: Option<u32>,
    /// Frame strides to sweep: the model runs on every N-th frame, the end-to-end fps count
    /// every decoded frame.
    #[arg(long, value_delimiter = ',', default_value = "1", value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub stride: Vec<u64>,
    /// Frames per timed run.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(1..))]
    pub frames: u64,
    /// Untimed model-only runs before timing.
    #[arg(long, default_value_t = 10)]
    pub warmup: usize,
    /// Model-only / end-to-end pairs per point, alternated; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,
    /// Outputs the end-to-end runs write.
    #[arg(long, value_enum, default_value = "jsonl", value_delimiter = ',')]
    pub outputs: Vec<OutputArg>,
    /// Where the end-to-end runs write their outputs.
    #[arg(long, default_value = "out/bench")]
    pub out: PathBuf,
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write the results as CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// Write an SVG plot of fps vs batch size per EP.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<PathBuf>,
    /// Tracking to sweep: `off,on` measures what tracking (and --count-line) costs, side by
    /// side.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "off")]
    pub track: Vec<OnOff>,
    #[command(flatten)]
    pub tracking: TrackArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// The video to tune on (representative of what you will run).
    pub input: PathBuf,
    /// Frames per measurement (and for the agreement check).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..))]
    pub frames: u64,
    /// Minimum agreement with fp32's detections (same class, IoU >= 0.5, both directions).
    #[arg(long, default_value_t = 0.95)]
    pub min_agreement: f64,
    /// Where to write the winning settings.
    #[arg(long, default_value = "vidinfer.toml")]
    pub write: PathBuf,
    /// Work folder for the measurements' outputs.
    #[arg(long, default_value = "out/tune")]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The ONNX model to describe. Default: the one detect uses.
    pub model: Option<PathBuf>,
    /// Labels file. Default: coco_labels.txt next to the model.
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// The model's output layout.
    #[arg(long, value_enum, default_value_t = ModelFormatArg::Auto)]
    pub model_format: ModelFormatArg,
    /// Path to libonnxruntime.so (default: the build with the most providers tools/setup fetched).
    #[arg(long, value_name = "PATH")]
    pub ort_lib: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_defaults_are_the_flags_defaults() {
        let e = EngineArgs::defaults();
        assert_eq!((e.conf, e.iou, e.queue, e.crf), (0.5, 0.6, 8, 23));
        assert!(e.config.is_none() && e.model.is_none());
    }
}
