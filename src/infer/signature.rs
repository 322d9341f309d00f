//! What a loaded model looks like from outside: its input (element type, layout, size, batch
//! dimension) and its outputs, recognised as one of the layouts SSD-family detectors are
//! exported in ([`ModelFormat`]), plus the preprocessing it wants — from its input, its
//! `preprocess.*` metadata and the user's overrides, each value with where it came from.

use std::fmt;

use ort::{session::Session, value::TensorElementType};

use super::yolo::{self, UltralyticsMeta};
use crate::{
    error::{ParseError, SignatureError},
    preprocess::{parse_channel_order, parse_mean, DType, Layout, PreprocessSpec, ResizeMode},
};

/// Preprocessing choices the user made on the command line; each one overrides what the model's
/// metadata says (keys `preprocess.resize`, `preprocess.mean`, `preprocess.scale`,
/// `preprocess.channel_order`), which in turn overrides the defaults (blobFromImage's).
#[derive(Debug, Clone, Default)]
pub struct PreprocessOverrides {
    pub mode: Option<ResizeMode>,
    pub mean: Option<[f32; 3]>,
    pub scale: Option<f32>,
    pub swap_rb: Option<bool>,
}

/// The output layouts vidinfer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelFormat {
    /// `boxes [N,A,4]` (ymin, xmin, ymax, xmax) + `scores [N,A,C]` (column 0 background):
    /// vidinfer filters and runs per-class NMS.
    Raw,
    /// OpenCV's DetectionOutput `[N,1,K,7]` rows (image_id, class_id = label id + 1, score,
    /// x1, y1, x2, y2), NMS already done by the model.
    DetectionOutput,
    /// TF Object Detection API / TFLite post-process: boxes `[N,K,4]`, classes `[N,K]`
    /// (label ids), scores `[N,K]`, count `[N]`, NMS already done by the model.
    TfOd,
    /// Ultralytics YOLOv8/v9/v11/v12: `[N, 4+C, A]` (cx, cy, w, h in input pixels, C scores);
    /// vidinfer takes each anchor's best class and runs NMS as Ultralytics does.
    Yolo,
    /// YOLOv5: `[N, A, 5+C]` (cx, cy, w, h, objectness, C scores).
    YoloV5,
    /// NMS-free / NMS-in-graph exports: `[N, K, 6]` (x1, y1, x2, y2 in input pixels, score,
    /// class).
    YoloEnd2End,
    /// RT-DETR: `[N, Q, 4+C]` (normalised cx, cy, w, h, C scores), or `[N, K, 6]` rows
    /// (normalised cx, cy, w, h, score, class) as Ultralytics 8.4 exports it; no NMS.
    RtDetr,
}

impl ModelFormat {
    pub fn name(self) -> &'static str {
        match self {
            ModelFormat::Raw => "raw",
            ModelFormat::DetectionOutput => "detection-output",
            ModelFormat::TfOd => "tf-od",
            ModelFormat::Yolo => "yolo",
            ModelFormat::YoloV5 => "yolov5",
            ModelFormat::YoloEnd2End => "yolo-end2end",
            ModelFormat::RtDetr => "rtdetr",
        }
    }

    /// Ultralytics' layouts: letterboxed (RT-DETR: stretched) to the export size, and mapped
    /// back as Ultralytics maps them.
    pub fn is_ultralytics(self) -> bool {
        matches!(
            self,
            ModelFormat::Yolo
                | ModelFormat::YoloV5
                | ModelFormat::YoloEnd2End
                | ModelFormat::RtDetr
        )
    }
}

impl fmt::Display for ModelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to read the outputs of each layout.
#[derive(Debug, Clone, PartialEq)]
pub enum Outputs {
    Raw {
        boxes: String,
        scores: String,
        anchors: usize,
        classes: usize,
    },
    DetectionOutput {
        name: String,
    },
    TfOd {
        boxes: String,
        classes: String,
        scores: String,
        count: String,
    },
    /// `[N, 4+C, A]`; the anchor count is read from each run's output.
    Yolo {
        name: String,
        classes: usize,
    },
    /// `[N, A, 5+C]`.
    YoloV5 {
        name: String,
        classes: usize,
    },
    /// `[N, K, 6]` rows in input pixels.
    YoloEnd2End {
        name: String,
    },
    /// `[N, Q, 4+C]` (`classes` known) or top-k `[N, K, 6]` rows (`None`).
    RtDetr {
        name: String,
        classes: Option<usize>,
    },
}

impl Outputs {
    /// The output tensors to fetch, in the order [`Outputs`] lists them.
    pub fn names(&self) -> Vec<String> {
        match self {
            Outputs::Raw { boxes, scores, .. } => vec![boxes.clone(), scores.clone()],
            Outputs::DetectionOutput { name } => vec![name.clone()],
            Outputs::TfOd {
                boxes,
                classes,
                scores,
                count,
            } => vec![
                boxes.clone(),
                classes.clone(),
                scores.clone(),
                count.clone(),
            ],
            Outputs::Yolo { name, .. }
            | Outputs::YoloV5 { name, .. }
            | Outputs::YoloEnd2End { name }
            | Outputs::RtDetr { name, .. } => vec![name.clone()],
        }
    }

    pub fn format(&self) -> ModelFormat {
        match self {
            Outputs::Raw { .. } => ModelFormat::Raw,
            Outputs::DetectionOutput { .. } => ModelFormat::DetectionOutput,
            Outputs::TfOd { .. } => ModelFormat::TfOd,
            Outputs::Yolo { .. } => ModelFormat::Yolo,
            Outputs::YoloV5 { .. } => ModelFormat::YoloV5,
            Outputs::YoloEnd2End { .. } => ModelFormat::YoloEnd2End,
            Outputs::RtDetr { .. } => ModelFormat::RtDetr,
        }
    }
}

impl Signature {
    /// The model's class count where its layout or metadata tells it (Ultralytics' layouts),
    /// label ids `0..count`.
    pub fn model_classes(&self) -> Option<usize> {
        let named = self
            .ultralytics
            .as_ref()
            .map(|m| m.names.len())
            .filter(|&n| n > 0);
        match &self.outputs {
            Outputs::Yolo { classes, .. } | Outputs::YoloV5 { classes, .. } => Some(*classes),
            Outputs::RtDetr {
                classes: Some(c), ..
            } => Some(*c),
            Outputs::RtDetr { classes: None, .. } | Outputs::YoloEnd2End { .. } => named,
            _ => None,
        }
    }
}

/// Where a preprocessing value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// vidinfer's default (blobFromImage's).
    Default,
    /// The model's `preprocess.*` metadata.
    Metadata,
    /// A command-line flag.
    Flag,
    /// The convention of the model's output layout (Ultralytics' letterbox for its layouts).
    Layout,
    /// The model's input (size, layout, element type).
    Input,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Source::Default => "default",
            Source::Metadata => "model metadata",
            Source::Flag => "flag",
            Source::Input => "model input",
            Source::Layout => "the layout's convention",
        })
    }
}

/// Where each preprocessing value of a [`PreprocessSpec`] came from (for `vidinfer info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecSources {
    pub resize: Source,
    pub mean: Source,
    pub scale: Source,
    pub channel_order: Source,
}

/// The checked interface of a detector.
#[derive(Debug, Clone)]
pub struct Signature {
    pub input_name: String,
    /// The input's shape as the model declares it (-1 for a dynamic dimension).
    pub input_shape: Vec<i64>,
    pub spec: PreprocessSpec,
    pub sources: SpecSources,
    /// `Some(n)` when the model's batch dimension is fixed.
    pub fixed_batch: Option<usize>,
    pub outputs: Outputs,
    /// The arithmetic the weights are for (`precision` metadata; fp32 if absent).
    pub precision: super::Precision,
    /// The file name of the fp32 model this one was quantised from (`quantized_from`
    /// metadata, written by tools/quantize), if it says.
    pub quantized_from: Option<String>,
    /// An Ultralytics export's metadata (names, imgsz, stride, task, batch, head).
    pub ultralytics: Option<UltralyticsMeta>,
}

pub(super) fn dims(outlet: &ort::value::Outlet) -> Option<Vec<i64>> {
    outlet
        .dtype()
        .tensor_shape()
        .map(|s| s.iter().copied().collect())
}

/// `name [shape] type` of every output, for messages.
fn describe_outputs(session: &Session) -> String {
    let all: Vec<String> = session
        .outputs()
        .iter()
        .map(|o| match (dims(o), o.dtype().tensor_type()) {
            (Some(d), Some(t)) => format!("'{}' {d:?} {t:?}", o.name()),
            _ => format!("'{}' (not a tensor)", o.name()),
        })
        .collect();
    all.join(", ")
}

/// Checks the session's input and outputs; the error says what was found.
pub(super) fn read_signature(
    session: &Session,
    overrides: &PreprocessOverrides,
    forced: Option<ModelFormat>,
) -> Result<Signature, SignatureError> {
    let meta = session.metadata().ok();
    let custom = |key: &str| meta.as_ref().and_then(|m| m.custom(key));
    let ultralytics = UltralyticsMeta::read(custom);
    if let Some(task) = ultralytics
        .as_ref()
        .filter(|m| !m.is_detection())
        .and_then(|m| m.task.clone())
    {
        return Err(SignatureError::Task { task });
    }
    let [input] = session.inputs() else {
        return Err(SignatureError::InputCount(session.inputs().len()));
    };
    let input_name = input.name().to_string();
    let not_tensor = || SignatureError::InputNotTensor(input_name.clone());
    let in_dims = dims(input).ok_or_else(not_tensor)?;
    let dtype = match input.dtype().tensor_type() {
        Some(TensorElementType::Float32) => DType::F32,
        Some(TensorElementType::Uint8) => DType::U8,
        Some(other) => {
            return Err(SignatureError::InputElement {
                name: input_name,
                element: format!("{other:?}"),
            })
        }
        None => return Err(not_tensor()),
    };
    let batch_of = |n: i64| if n > 0 { Some(n as usize) } else { None };
    // A dynamic height and width (Ultralytics' `dynamic=True`) take the export's `imgsz`.
    let imgsz = ultralytics.as_ref().and_then(|m| m.imgsz);
    let size = |h: i64, w: i64| match (h, w, imgsz) {
        (h, w, _) if h > 0 && w > 0 => Some((h as u32, w as u32)),
        (h, w, Some((ih, iw))) if h < 0 && w < 0 => Some((ih, iw)),
        _ => None,
    };
    let (fixed_batch, (h, w), layout) = match in_dims.as_slice() {
        [n, 3, h, w] if size(*h, *w).is_some() => {
            (batch_of(*n), size(*h, *w).unwrap_or_default(), Layout::Nchw)
        }
        [n, h, w, 3] if size(*h, *w).is_some() => {
            (batch_of(*n), size(*h, *w).unwrap_or_default(), Layout::Nhwc)
        }
        other => {
            return Err(SignatureError::InputShape {
                name: input_name,
                shape: other.to_vec(),
            })
        }
    };
    let outputs = match forced {
        Some(f) => read_outputs_as(session, f, ultralytics.as_ref())?,
        None => recognise_outputs(session, ultralytics.as_ref())?,
    };
    let (mut spec, mut sources) = preprocess_spec(session, overrides)?;
    layout_defaults(outputs.format(), &mut spec, &mut sources);
    let precision = super::Precision::of_model(custom("precision").as_deref());
    let quantized_from = custom("quantized_from");
    (spec.width, spec.height, spec.layout, spec.dtype) = (w, h, layout, dtype);
    Ok(Signature {
        input_name,
        input_shape: in_dims,
        spec,
        sources,
        fixed_batch,
        outputs,
        precision,
        quantized_from,
        ultralytics,
    })
}

/// Ultralytics' preprocessing for its layouts, where neither the metadata nor a flag chose:
/// letterbox to the export size with gray 114 padding (RT-DETR: a stretch), RGB, 1/255.
fn layout_defaults(f: ModelFormat, spec: &mut PreprocessSpec, src: &mut SpecSources) {
    if !f.is_ultralytics() {
        return;
    }
    spec.pad = 114;
    if src.resize == Source::Default {
        spec.mode = if f == ModelFormat::RtDetr {
            ResizeMode::Stretch
        } else {
            ResizeMode::Letterbox
        };
        src.resize = Source::Layout;
    }
}

/// The first layout whose outputs fit.
fn recognise_outputs(
    session: &Session,
    meta: Option<&UltralyticsMeta>,
) -> Result<Outputs, SignatureError> {
    for f in [
        ModelFormat::Raw,
        ModelFormat::DetectionOutput,
        ModelFormat::TfOd,
    ] {
        if let Ok(o) = read_outputs_as(session, f, meta) {
            return Ok(o);
        }
    }
    // Ultralytics' layouts only with its metadata: one output of rank 3 is too common a shape
    // to be read as them unasked (`--model-format` forces one).
    if let Some(o) = meta.and_then(|m| yolo::recognise(&output_dims(session), Some(m))) {
        return Ok(o);
    }
    Err(SignatureError::Outputs {
        found: describe_outputs(session),
    })
}

/// Each tensor output's name and declared shape.
fn output_dims(session: &Session) -> Vec<(String, Vec<i64>)> {
    session
        .outputs()
        .iter()
        .filter_map(|o| dims(o).map(|d| (o.name().to_string(), d)))
        .collect()
}

/// Reads the outputs as layout `f`, or says why they do not fit it.
fn read_outputs_as(
    session: &Session,
    f: ModelFormat,
    meta: Option<&UltralyticsMeta>,
) -> Result<Outputs, SignatureError> {
    let outs = output_dims(session);
    let fits = match f {
        ModelFormat::Raw => raw_outputs(&outs),
        ModelFormat::DetectionOutput => match outs.as_slice() {
            [(name, d)] if d.len() == 4 && d[3] == 7 => {
                Some(Outputs::DetectionOutput { name: name.clone() })
            }
            _ => None,
        },
        ModelFormat::TfOd => tfod_outputs(&outs),
        _ => yolo::outputs_as(&outs, f, meta),
    };
    fits.ok_or_else(|| SignatureError::NotLayout {
        found: describe_outputs(session),
        layout: f.name(),
    })
}

/// `boxes` and `scores` by name, else the one pair of outputs shaped like them.
fn raw_outputs(outs: &[(String, Vec<i64>)]) -> Option<Outputs> {
    let is_boxes = |d: &[i64]| matches!(d, [_, a, 4] if *a > 0);
    let is_scores = |d: &[i64]| matches!(d, [_, a, c] if *a > 0 && *c > 1);
    let by_name = |n: &str| outs.iter().find(|(name, _)| name == n);
    let (b, s) = match (by_name("boxes"), by_name("scores")) {
        (Some(b), Some(s)) => (b, s),
        _ if outs.len() == 2 => {
            let b = outs.iter().find(|(_, d)| is_boxes(d))?;
            let s = outs.iter().find(|(n, d)| n != &b.0 && is_scores(d))?;
            (b, s)
        }
        _ => return None,
    };
    match (b.1.as_slice(), s.1.as_slice()) {
        ([_, a, 4], [_, a2, c]) if a == a2 && *a > 0 && *c > 1 => Some(Outputs::Raw {
            boxes: b.0.clone(),
            scores: s.0.clone(),
            anchors: *a as usize,
            classes: *c as usize,
        }),
        _ => None,
    }
}

/// The four TF-OD outputs: by the TF Object Detection API's names, by tf2onnx's names for
/// the TFLite post-process op (`X`, `X:1`, `X:2`, `X:3`), else by shape and order.
fn tfod_outputs(outs: &[(String, Vec<i64>)]) -> Option<Outputs> {
    if outs.len() != 4 {
        return None;
    }
    let find = |n: &str| outs.iter().position(|(name, _)| name == n);
    let tf_api = [
        "detection_boxes",
        "detection_classes",
        "detection_scores",
        "num_detections",
    ]
    .map(find);
    let base = outs
        .iter()
        .find(|(n, _)| !n.contains(':'))
        .map(|(n, _)| n.clone());
    let tflite = base.as_ref().map(|b| {
        [
            b.clone(),
            format!("{b}:1"),
            format!("{b}:2"),
            format!("{b}:3"),
        ]
        .map(|n| find(&n))
    });
    let idx: [usize; 4] = if let [Some(a), Some(b), Some(c), Some(d)] = tf_api {
        [a, b, c, d]
    } else if let Some([Some(a), Some(b), Some(c), Some(d)]) = tflite {
        [a, b, c, d]
    } else {
        // Boxes [N,K,4], then classes and scores [N,K] in output order, count [N].
        let boxes = outs.iter().position(|(_, d)| d.len() == 3)?;
        let count = outs.iter().position(|(_, d)| d.len() == 1)?;
        let two: Vec<usize> = (0..4).filter(|&i| outs[i].1.len() == 2).collect();
        let [classes, scores] = two.as_slice() else {
            return None;
        };
        [boxes, *classes, *scores, count]
    };
    let shape_ok = matches!(outs[idx[0]].1.as_slice(), [_, _, 4])
        && outs[idx[1]].1.len() == 2
        && outs[idx[2]].1.len() == 2
        && outs[idx[3]].1.len() == 1;
    shape_ok.then(|| Outputs::TfOd {
        boxes: outs[idx[0]].0.clone(),
        classes: outs[idx[1]].0.clone(),
        scores: outs[idx[2]].0.clone(),
        count: outs[idx[3]].0.clone(),
    })
}

/// A `preprocess.*` metadata value that does not parse.
fn metadata(key: &'static str) -> impl Fn(ParseError) -> SignatureError {
    move |source| SignatureError::Metadata { key, source }
}

/// The preprocessing the model wants besides its input's size, layout and type: its
/// metadata, then the user's overrides, each value with its source.
fn preprocess_spec(
    session: &Session,
    o: &PreprocessOverrides,
) -> Result<(PreprocessSpec, SpecSources), SignatureError> {
    let meta = session.metadata().ok();
    let get = |k: &str| meta.as_ref().and_then(|m| m.custom(k));
    let mut spec = PreprocessSpec::default();
    let mut src = SpecSources {
        resize: Source::Default,
        mean: Source::Default,
        scale: Source::Default,
        channel_order: Source::Default,
    };
    if let Some(v) = get("preprocess.resize") {
        spec.mode = v.parse().map_err(metadata("preprocess.resize"))?;
        src.resize = Source::Metadata;
    }
    if let Some(v) = get("preprocess.mean") {
        spec.mean = parse_mean(&v).map_err(metadata("preprocess.mean"))?;
        src.mean = Source::Metadata;
    }
    if let Some(v) = get("preprocess.scale") {
        spec.scale = v
            .trim()
            .parse()
            .map_err(|_| ParseError::Malformed {
                what: "a number",
                value: v.clone(),
            })
            .map_err(metadata("preprocess.scale"))?;
        src.scale = Source::Metadata;
    }
    if let Some(v) = get("preprocess.channel_order") {
        spec.swap_rb = parse_channel_order(&v).map_err(metadata("preprocess.channel_order"))?;
        src.channel_order = Source::Metadata;
    }
    let flag = |s: &mut Source, set: bool| {
        if set {
            *s = Source::Flag;
        }
    };
    flag(&mut src.resize, o.mode.is_some());
    flag(&mut src.mean, o.mean.is_some());
    flag(&mut src.scale, o.scale.is_some());
    flag(&mut src.channel_order, o.swap_rb.is_some());
    spec.mode = o.mode.unwrap_or(spec.mode);
    spec.mean = o.mean.unwrap_or(spec.mean);
    spec.scale = o.scale.unwrap_or(spec.scale);
    spec.swap_rb = o.swap_rb.unwrap_or(spec.swap_rb);
    Ok((spec, src))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outs(v: &[(&str, &[i64])]) -> Vec<(String, Vec<i64>)> {
        v.iter().map(|(n, d)| (n.to_string(), d.to_vec())).collect()
    }

    #[test]
    fn raw_outputs_by_name_or_by_shape() {
        let o = raw_outputs(&outs(&[
            ("scores", &[-1, 1917, 91]),
            ("boxes", &[-1, 1917, 4]),
        ]));
        assert!(matches!(
            o,
            Some(Outputs::Raw {
                anchors: 1917,
                classes: 91,
                ..
            })
        ));
        let o = raw_outputs(&outs(&[("a", &[1, 10, 4]), ("b", &[1, 10, 3])]));
        assert!(matches!(o, Some(Outputs::Raw { ref boxes, .. }) if boxes == "a"));
        assert!(raw_outputs(&outs(&[("a", &[1, 10, 4]), ("b", &[1, 11, 3])])).is_none());
    }

    #[test]
    fn tfod_outputs_by_tf_api_names_tflite_names_and_shapes() {
        let tflite = outs(&[
            ("TFLite_Detection_PostProcess", &[1, 20, 4]),
            ("TFLite_Detection_PostProcess:1", &[1, 20]),
            ("TFLite_Detection_PostProcess:2", &[1, 20]),
            ("TFLite_Detection_PostProcess:3", &[1]),
        ]);
        let Some(Outputs::TfOd { scores, count, .. }) = tfod_outputs(&tflite) else {
            panic!("tflite names")
        };
        assert_eq!(
            (scores.as_str(), count.as_str()),
            (
                "TFLite_Detection_PostProcess:2",
                "TFLite_Detection_PostProcess:3"
            )
        );
        let api = outs(&[
            ("num_detections", &[-1]),
            ("detection_scores", &[-1, 100]),
            ("detection_classes", &[-1, 100]),
            ("detection_boxes", &[-1, 100, 4]),
        ]);
        let Some(Outputs::TfOd { classes, .. }) = tfod_outputs(&api) else {
            panic!("tf api names")
        };
        assert_eq!(classes, "detection_classes");
        let shapes = outs(&[
            ("b", &[1, 5, 4]),
            ("c", &[1, 5]),
            ("s", &[1, 5]),
            ("n", &[1]),
        ]);
        assert!(
            matches!(tfod_outputs(&shapes), Some(Outputs::TfOd { ref scores, .. }) if scores == "s")
        );
        assert!(tfod_outputs(&shapes[..3]).is_none());
    }
}
