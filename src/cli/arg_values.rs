//! The value types of the command line's flags (clap `ValueEnum`s) and their mapping onto the
//! library's types.

use clap::ValueEnum;
use vidinfer::{
    decode::hw::HwAccel,
    infer::ModelFormat,
    preprocess::{Kernel, ResizeMode},
};

/// The preprocessing kernel.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum KernelArg {
    /// YUV 4:2:0 straight to the tensor in one pass (any layout, mean, order, letterbox).
    Fused,
    /// Bit-compatible with cv2.resize + blobFromImage, and with Ultralytics' letterbox (via an
    /// RGB frame): what cv2-based tools compute, pixel for pixel; slower.
    Exact,
}

impl From<KernelArg> for Kernel {
    fn from(k: KernelArg) -> Self {
        match k {
            KernelArg::Fused => Kernel::Fused,
            KernelArg::Exact => Kernel::Exact,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ResizeArg {
    /// Stretch to the model's input, aspect ratio ignored (blobFromImage crop=False).
    Stretch,
    /// Keep the aspect ratio and pad.
    Letterbox,
}

impl From<ResizeArg> for ResizeMode {
    fn from(r: ResizeArg) -> Self {
        match r {
            ResizeArg::Stretch => ResizeMode::Stretch,
            ResizeArg::Letterbox => ResizeMode::Letterbox,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ChannelOrderArg {
    Rgb,
    Bgr,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum HwAccelArg {
    None,
    Auto,
    #[value(alias = "nvdec")]
    Cuda,
    Vaapi,
    Qsv,
    Vdpau,
}

impl From<HwAccelArg> for HwAccel {
    fn from(h: HwAccelArg) -> Self {
        match h {
            HwAccelArg::None => HwAccel::None,
            HwAccelArg::Auto => HwAccel::Auto,
            HwAccelArg::Cuda => HwAccel::Cuda,
            HwAccelArg::Vaapi => HwAccel::Vaapi,
            HwAccelArg::Qsv => HwAccel::Qsv,
            HwAccelArg::Vdpau => HwAccel::Vdpau,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CudnnSearchArg {
    Heuristic,
    Exhaustive,
    Default,
}

/// x264 presets, fastest first.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PresetArg {
    Ultrafast,
    Superfast,
    Veryfast,
    Faster,
    Fast,
    Medium,
    Slow,
    Slower,
    Veryslow,
}

/// x264 tunes.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TuneArg {
    None,
    Zerolatency,
    Fastdecode,
    Film,
    Animation,
    Grain,
    Stillimage,
}

/// `--model-format`: which output layout to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ModelFormatArg {
    /// Recognise it from the outputs' names, shapes and order.
    Auto,
    /// boxes [N,A,4] + scores [N,A,C]; vidinfer filters and runs NMS.
    Raw,
    /// OpenCV's DetectionOutput [N,1,K,7] (the seed article's layout).
    DetectionOutput,
    /// TF Object Detection API / TFLite post-process outputs.
    TfOd,
    /// Ultralytics YOLOv8/v9/v11/v12 [N,4+C,A]; letterboxed, vidinfer runs Ultralytics' NMS.
    Yolo,
    /// YOLOv5 [N,A,5+C] (with objectness); letterboxed, vidinfer runs NMS.
    Yolov5,
    /// NMS-free / NMS-in-graph [N,K,6] (x1,y1,x2,y2,score,class); letterboxed.
    #[value(name = "yolo-end2end")]
    YoloEnd2End,
    /// RT-DETR [N,Q,4+C] or Ultralytics' [N,K,6] (normalised cx,cy,w,h); stretched, no NMS.
    Rtdetr,
}

impl ModelFormatArg {
    pub fn forced(self) -> Option<ModelFormat> {
        match self {
            ModelFormatArg::Auto => None,
            ModelFormatArg::Raw => Some(ModelFormat::Raw),
            ModelFormatArg::DetectionOutput => Some(ModelFormat::DetectionOutput),
            ModelFormatArg::TfOd => Some(ModelFormat::TfOd),
            ModelFormatArg::Yolo => Some(ModelFormat::Yolo),
            ModelFormatArg::Yolov5 => Some(ModelFormat::YoloV5),
            ModelFormatArg::YoloEnd2End => Some(ModelFormat::YoloEnd2End),
            ModelFormatArg::Rtdetr => Some(ModelFormat::RtDetr),
        }
    }
}

/// Name of a clap value (its `--help` spelling).
pub fn value_name(v: &impl ValueEnum) -> String {
    v.to_possible_value()
        .map(|p| p.get_name().to_string())
        .unwrap_or_default()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputArg {
    /// One JSON line per frame.
    Jsonl,
    /// The annotated H.264 video.
    #[value(alias = "video")]
    Mp4,
    /// One row per detection.
    Csv,
    /// No files (benchmarks).
    None,
}
