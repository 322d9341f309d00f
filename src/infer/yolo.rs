//! Ultralytics exports: their ONNX metadata (class names, `imgsz`, `stride`, `task`, `batch`,
//! the head) and their output layouts, recognised by shape and metadata:
//!
//! - `yolo` (YOLOv8/v9/v11/v12 heads): one `[N, 4+C, A]` output, rows cx, cy, w, h (input
//!   pixels) then C class scores, no objectness;
//! - `yolov5` (the YOLOv5 repository's exports): `[N, A, 5+C]`, cx, cy, w, h, objectness, C
//!   class scores;
//! - `yolo-end2end` (YOLOv10 and `nms=True` exports): `[N, K, 6]` rows x1, y1, x2, y2 (input
//!   pixels), score, class, already selected by the model;
//! - `rtdetr`: `[N, Q, 4+C]` (normalised cx, cy, w, h, then C scores), or, as Ultralytics 8.4
//!   exports it, `[N, K, 6]` rows normalised cx, cy, w, h, score, class (its top-k done).

use super::{
    outputs::{BatchOutput, BoxInModel, ModelDetection, Values},
    signature::{ModelFormat, Outputs},
};

/// What an Ultralytics export says about itself in its ONNX metadata.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UltralyticsMeta {
    /// `task`: `detect`, `segment`, `pose`, `obb`, `classify`, ...
    pub task: Option<String>,
    /// `names`: class id → name.
    pub names: Vec<(u32, String)>,
    /// `imgsz`: (height, width) the model was exported for.
    pub imgsz: Option<(u32, u32)>,
    pub stride: Option<u32>,
    /// `batch`: the batch size of the export (dynamic exports still say one).
    pub batch: Option<usize>,
    /// `head`: the detection head's class (`Detect`, `v10Detect`, `RTDETRDecoder`, ...).
    pub head: Option<String>,
    pub description: Option<String>,
    pub version: Option<String>,
    /// `end2end` or `args.nms`: the model selects its detections itself.
    pub end2end: bool,
}

impl UltralyticsMeta {
    /// Reads the metadata through `get`; `None` unless it is an Ultralytics export
    /// (`author: Ultralytics`) or a YOLOv5 one (`names` and `stride`, no author).
    pub fn read(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let author = get("author").unwrap_or_default();
        let task = get("task");
        let names = get("names");
        let yolov5 = names.is_some() && get("stride").is_some();
        if !author.contains("Ultralytics") && !yolov5 {
            return None;
        }
        let args = get("args").unwrap_or_default();
        let truthy = |v: Option<String>| v.is_some_and(|v| v.trim() == "True");
        Some(UltralyticsMeta {
            task,
            names: names.as_deref().map(parse_names).unwrap_or_default(),
            imgsz: get("imgsz").as_deref().and_then(parse_imgsz),
            stride: get("stride").and_then(|s| s.trim().parse().ok()),
            batch: get("batch").and_then(|s| s.trim().parse().ok()),
            head: get("head"),
            description: get("description"),
            version: get("version"),
            end2end: truthy(get("end2end")) || args.contains("'nms': True"),
        })
    }

    /// Whether the head is RT-DETR's decoder.
    pub fn is_rtdetr(&self) -> bool {
        let says = |s: &Option<String>| {
            s.as_deref()
                .is_some_and(|s| s.contains("RTDETR") || s.contains("RT-DETR"))
        };
        says(&self.head) || says(&self.description)
    }

    pub fn is_detection(&self) -> bool {
        self.task.as_deref().is_none_or(|t| t == "detect")
    }
}

/// The class names an Ultralytics export carries, read from the file before any session
/// loads (see [`super::onnx_meta`]); `None` for other models or an unreadable file.
pub fn names_in_file(model: &std::path::Path) -> Option<Vec<(u32, String)>> {
    let meta = super::onnx_meta::read_metadata(model)?;
    let get = |k: &str| {
        meta.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    UltralyticsMeta::read(get)
        .map(|m| m.names)
        .filter(|n| !n.is_empty())
}

/// Python's repr of a dict of ints to strings: `{0: 'person', 1: "it's"}`.
pub fn parse_names(s: &str) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim().trim_start_matches('{');
    while let Some((key, after)) = rest.split_once(':') {
        let Ok(id) = key.trim().trim_start_matches(',').trim().parse::<u32>() else {
            break;
        };
        let after = after.trim_start();
        let Some(q) = after.chars().next().filter(|c| *c == '\'' || *c == '"') else {
            break;
        };
        let body = &after[1..];
        // The closing quote: the first one not escaped by a backslash.
        let mut end = None;
        let mut escaped = false;
        for (i, c) in body.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                c if c == q && !escaped => {
                    end = Some(i);
                    break;
                }
                _ => escaped = false,
            }
        }
        let Some(end) = end else { break };
        out.push((id, body[..end].replace("\\'", "'").replace("\\\"", "\"")));
        rest = &body[end + 1..];
    }
    out
}

/// `[640, 640]`, `(480, 640)` or `640` → (height, width).
pub fn parse_imgsz(s: &str) -> Option<(u32, u32)> {
    let v: Vec<u32> = s
        .trim()
        .trim_matches(['[', ']', '(', ')'])
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    match v.as_slice() {
        [n] if *n > 0 => Some((*n, *n)),
        [h, w] if *h > 0 && *w > 0 => Some((*h, *w)),
        _ => None,
    }
}

/// One run's output of an Ultralytics layout, for a `width × height` input; `Err` with the
/// number of values expected if its shape does not fit the layout.
pub(super) fn batch_output(
    outputs: &Outputs,
    shape: &[i64],
    data: Values,
    batch: usize,
    (width, height): (u32, u32),
) -> Result<BatchOutput, usize> {
    Ok(match outputs {
        Outputs::Yolo { classes, .. } | Outputs::YoloV5 { classes, .. } => {
            let v5 = matches!(outputs, Outputs::YoloV5 { .. });
            // The anchors are the last axis (yolo) or the middle one (yolov5).
            let row = classes + 4 + usize::from(v5);
            let anchors = data.len().checked_div(batch * row).unwrap_or(0);
            let expected = if v5 {
                [batch, anchors, row]
            } else {
                [batch, row, anchors]
            };
            if anchors == 0 || shape.iter().map(|&d| d.max(0) as usize).ne(expected) {
                return Err(batch * row * anchors.max(1));
            }
            BatchOutput::Yolo {
                batch,
                anchors,
                classes: *classes,
                v5,
                data,
            }
        }
        Outputs::YoloEnd2End { .. } => {
            BatchOutput::Selected(decode_end2end(&data, batch, width, height))
        }
        Outputs::RtDetr { classes, .. } => BatchOutput::Selected(match classes {
            Some(c) => decode_rtdetr_queries(&data, batch, *c),
            None => decode_rtdetr_topk(&data, batch),
        }),
        _ => return Err(0),
    })
}

/// `[N, K, 6]` rows (x1, y1, x2, y2 in input pixels, score, class): per image, the rows in
/// the model's order, boxes made relative to the `width × height` input.
pub(super) fn decode_end2end(
    data: &[f32],
    batch: usize,
    width: u32,
    height: u32,
) -> Vec<Vec<ModelDetection>> {
    let (w, h) = (width as f32, height as f32);
    per_image(data, batch, 6, |r| {
        let b = BoxInModel::from_xyxy(&[r[0] / w, r[1] / h, r[2] / w, r[3] / h]);
        (r[5], r[4], b)
    })
}

/// RT-DETR as Ultralytics 8.4 exports it: `[N, K, 6]` rows (normalised cx, cy, w, h, score,
/// class), its top-k done.
pub(super) fn decode_rtdetr_topk(data: &[f32], batch: usize) -> Vec<Vec<ModelDetection>> {
    per_image(data, batch, 6, |r| (r[5], r[4], cxcywh(&r[..4])))
}

/// RT-DETR's queries `[N, Q, 4+C]` (normalised cx, cy, w, h, then C scores): each query's best
/// class, as Ultralytics' RT-DETR post-processing takes it.
pub(super) fn decode_rtdetr_queries(
    data: &[f32],
    batch: usize,
    classes: usize,
) -> Vec<Vec<ModelDetection>> {
    per_image(data, batch, 4 + classes, |r| {
        let (c, s) = best_class(&r[4..]);
        (c as f32, s, cxcywh(&r[..4]))
    })
}

/// Normalised (cx, cy, w, h) → a box, with Ultralytics' arithmetic (xywh2xyxy).
fn cxcywh(v: &[f32]) -> BoxInModel {
    let (dw, dh) = (v[2] / 2.0, v[3] / 2.0);
    BoxInModel::from_xyxy(&[v[0] - dw, v[1] - dh, v[0] + dw, v[1] + dh])
}

/// The highest score and its class (the first of equal ones, as `torch.max` takes it).
pub fn best_class(scores: &[f32]) -> (usize, f32) {
    let mut best = (0, f32::NEG_INFINITY);
    for (c, &s) in scores.iter().enumerate() {
        if s > best.1 {
            best = (c, s);
        }
    }
    best
}

/// Splits `data` into `batch` images of rows of `width` values, each row made a detection by
/// `row` → (class, score, box); rows with a non-finite or negative class or score are skipped.
fn per_image(
    data: &[f32],
    batch: usize,
    width: usize,
    row: impl Fn(&[f32]) -> (f32, f32, BoxInModel),
) -> Vec<Vec<ModelDetection>> {
    let per = data.len().checked_div(batch).unwrap_or(0);
    (0..batch)
        .map(|i| {
            data[i * per..(i + 1) * per]
                .chunks_exact(width)
                .filter_map(|r| {
                    let (class, score, bbox) = row(r);
                    (class.is_finite() && class >= 0.0 && score.is_finite()).then(|| {
                        ModelDetection {
                            class_id: class.round() as u32,
                            score,
                            bbox,
                        }
                    })
                })
                .collect()
        })
        .collect()
}

/// The one output of an Ultralytics layout `f` (one of `yolo`, `yolov5`, `yolo-end2end`,
/// `rtdetr`), or `None` if the outputs do not fit it. `meta` tells the class count (its names)
/// and which head made an `[N, K, 6]` output.
pub(super) fn outputs_as(
    outs: &[(String, Vec<i64>)],
    f: ModelFormat,
    meta: Option<&UltralyticsMeta>,
) -> Option<Outputs> {
    let [(name, d)] = outs else { return None };
    let [_, a, b] = d.as_slice() else { return None };
    let (a, b) = (*a, *b);
    let name = name.clone();
    let named = meta.map(|m| m.names.len()).filter(|&n| n > 0);
    match f {
        ModelFormat::Yolo => {
            let classes = usize::try_from(a - 4).ok().filter(|&c| c > 0)?;
            (named.is_none_or(|n| n == classes) && (b < 0 || b > a))
                .then_some(Outputs::Yolo { name, classes })
        }
        ModelFormat::YoloV5 => {
            let classes = usize::try_from(b - 5).ok().filter(|&c| c > 0)?;
            (named.is_none_or(|n| n == classes) && (a < 0 || a > b))
                .then_some(Outputs::YoloV5 { name, classes })
        }
        ModelFormat::YoloEnd2End => (b == 6).then_some(Outputs::YoloEnd2End { name }),
        ModelFormat::RtDetr => {
            if b == 6 && named.is_none_or(|n| n != 2) {
                return Some(Outputs::RtDetr {
                    name,
                    classes: None,
                });
            }
            let classes = usize::try_from(b - 4).ok().filter(|&c| c > 0)?;
            named
                .is_none_or(|n| n == classes)
                .then_some(Outputs::RtDetr {
                    name,
                    classes: Some(classes),
                })
        }
        _ => None,
    }
}

/// The Ultralytics layout of one output, recognised: RT-DETR's head by the metadata; an
/// `[N, K, 6]` output as end-to-end rows; `[N, 4+C, A]` (fewer rows than anchors) as `yolo`;
/// `[N, A, 5+C]` as `yolov5`.
pub(super) fn recognise(
    outs: &[(String, Vec<i64>)],
    meta: Option<&UltralyticsMeta>,
) -> Option<Outputs> {
    let order: &[ModelFormat] = if meta.is_some_and(UltralyticsMeta::is_rtdetr) {
        &[ModelFormat::RtDetr]
    } else {
        &[
            ModelFormat::YoloEnd2End,
            ModelFormat::Yolo,
            ModelFormat::YoloV5,
        ]
    };
    order.iter().find_map(|&f| outputs_as(outs, f, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_imgsz_from_python_reprs() {
        let n = parse_names("{0: 'person', 1: 'bicycle', 2: \"it's\", 3: 'a, b'}");
        assert_eq!(
            n,
            vec![
                (0, "person".into()),
                (1, "bicycle".into()),
                (2, "it's".into()),
                (3, "a, b".into())
            ]
        );
        assert!(parse_names("not a dict").is_empty());
        assert_eq!(parse_imgsz("[320, 480]"), Some((320, 480)));
        assert_eq!(parse_imgsz("640"), Some((640, 640)));
        assert_eq!(parse_imgsz("[0, 1]"), None);
    }

    #[test]
    fn metadata_of_an_export() {
        let kv = [
            ("author", "Ultralytics"),
            ("task", "detect"),
            ("names", "{0: 'person'}"),
            ("imgsz", "[320, 320]"),
            ("stride", "32"),
            ("batch", "4"),
            ("head", "RTDETRDecoder"),
            ("args", "{'nms': True}"),
        ];
        let get = |k: &str| kv.iter().find(|(a, _)| *a == k).map(|(_, v)| v.to_string());
        let m = UltralyticsMeta::read(get).unwrap();
        assert_eq!(
            (m.imgsz, m.stride, m.batch),
            (Some((320, 320)), Some(32), Some(4))
        );
        assert!(m.is_rtdetr() && m.is_detection() && m.end2end);
        assert!(UltralyticsMeta::read(|_| None).is_none());
    }

    #[test]
    fn end2end_rows_are_normalised_and_rtdetr_queries_take_their_best_class() {
        let rows = [
            10.0,
            20.0,
            30.0,
            60.0,
            0.9,
            2.0,
            0.0,
            0.0,
            0.0,
            0.0,
            f32::NAN,
            0.0,
        ];
        let d = decode_end2end(&rows, 1, 100, 200);
        assert_eq!(d[0].len(), 1);
        assert_eq!(
            (d[0][0].class_id, d[0][0].bbox.xmax, d[0][0].bbox.ymax),
            (2, 0.3, 0.3)
        );
        let q = [0.5, 0.5, 0.2, 0.4, 0.1, 0.7, 0.7];
        let d = decode_rtdetr_queries(&q, 1, 3);
        assert_eq!((d[0][0].class_id, d[0][0].score), (1, 0.7));
        assert!((d[0][0].bbox.xmin - 0.4).abs() < 1e-6 && (d[0][0].bbox.ymax - 0.7).abs() < 1e-6);
        let t = decode_rtdetr_topk(&[0.5, 0.5, 0.2, 0.4, 0.8, 1.0], 1);
        assert_eq!((t[0][0].class_id, t[0][0].score), (1, 0.8));
    }
}
