//! A batch's outputs, read in the model's layout: raw anchors for vidinfer's own filter and
//! NMS, or detections the model already selected (DetectionOutput, TF-OD), decoded per image.

use ort::value::DynValue;

/// One output tensor's f32 values, read in place from the buffer ONNX Runtime wrote them to,
/// or owned. The raw layout's scores are ~0.7 MB a frame; copying them out of every run cost
/// more CPU than post-processing them.
pub struct Values(Repr);

enum Repr {
    Owned(Vec<f32>),
    /// An f32 tensor (checked by [`Values::from_ort`]); ONNX Runtime frees it on drop.
    Ort(DynValue),
}

impl Values {
    /// Keeps `value` and returns its shape, or an error if it is not an f32 tensor.
    pub(super) fn from_ort(value: DynValue) -> Result<(Vec<i64>, Values), ort::Error> {
        let shape = value.try_extract_tensor::<f32>()?.0.to_vec();
        Ok((shape, Values(Repr::Ort(value))))
    }
}

impl std::ops::Deref for Values {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &self.0 {
            Repr::Owned(v) => v,
            // `from_ort` checked that this value is an f32 tensor, so this cannot fail.
            Repr::Ort(v) => v.try_extract_tensor::<f32>().map_or(&[], |(_, d)| d),
        }
    }
}

impl From<Vec<f32>> for Values {
    fn from(v: Vec<f32>) -> Self {
        Values(Repr::Owned(v))
    }
}

impl Default for Values {
    fn default() -> Self {
        Vec::new().into()
    }
}

impl std::fmt::Debug for Values {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Values({} f32)", self.len())
    }
}

/// An axis-aligned box in normalised model coordinates (0..1 on both axes).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxInModel {
    pub xmin: f32,
    pub ymin: f32,
    pub xmax: f32,
    pub ymax: f32,
}

impl BoxInModel {
    /// Builds a box from the model's (ymin, xmin, ymax, xmax) quadruple, ordering the corners.
    pub fn from_yxyx(v: &[f32]) -> Self {
        let (y0, x0, y1, x1) = (v[0], v[1], v[2], v[3]);
        BoxInModel {
            xmin: x0.min(x1),
            ymin: y0.min(y1),
            xmax: x0.max(x1),
            ymax: y0.max(y1),
        }
    }

    /// Builds a box from (xmin, ymin, xmax, ymax), ordering the corners.
    pub fn from_xyxy(v: &[f32]) -> Self {
        Self::from_yxyx(&[v[1], v[0], v[3], v[2]])
    }

    pub fn area(&self) -> f32 {
        (self.xmax - self.xmin).max(0.0) * (self.ymax - self.ymin).max(0.0)
    }

    pub fn iou(&self, other: &BoxInModel) -> f32 {
        let iw = (self.xmax.min(other.xmax) - self.xmin.max(other.xmin)).max(0.0);
        let ih = (self.ymax.min(other.ymax) - self.ymin.max(other.ymin)).max(0.0);
        let inter = iw * ih;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

/// A detection the model itself selected (its NMS done), in model space.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelDetection {
    /// Label id as in the labels file.
    pub class_id: u32,
    pub score: f32,
    pub bbox: BoxInModel,
}

/// Raw outputs of one image, borrowed from the batch output tensors.
#[derive(Debug, Clone, Copy)]
pub struct RawDetections<'a> {
    /// `[anchors * 4]`, (ymin, xmin, ymax, xmax) per anchor.
    pub boxes: &'a [f32],
    /// `[anchors * classes]`, column 0 is background.
    pub scores: &'a [f32],
    pub classes: usize,
}

/// The outputs of one batch.
#[derive(Debug)]
pub enum BatchOutput {
    /// `boxes [batch, anchors, 4]`, `scores [batch, anchors, classes]`.
    Raw {
        batch: usize,
        anchors: usize,
        classes: usize,
        boxes: Values,
        scores: Values,
    },
    /// What the model selected (after its own NMS), per image of the batch.
    Selected(Vec<Vec<ModelDetection>>),
    /// Ultralytics' anchor layouts (`yolo` `[batch, 4+C, A]`, `yolov5` `[batch, A, 5+C]`).
    Yolo {
        batch: usize,
        anchors: usize,
        classes: usize,
        v5: bool,
        data: Values,
    },
}

/// One image's Ultralytics anchors: `yolo` rows `[4+C][A]` (cx, cy, w, h, then the scores,
/// each row over all anchors), or `yolov5` anchors `[A][5+C]` (cx, cy, w, h, objectness,
/// scores); boxes in input pixels.
#[derive(Debug, Clone, Copy)]
pub struct YoloAnchors<'a> {
    pub data: &'a [f32],
    pub anchors: usize,
    pub classes: usize,
    pub v5: bool,
}

/// One image's outputs.
#[derive(Debug, Clone, Copy)]
pub enum ImageOutput<'a> {
    Raw(RawDetections<'a>),
    Selected(&'a [ModelDetection]),
    Yolo(YoloAnchors<'a>),
}

impl BatchOutput {
    /// The outputs of image `i` of the batch (nothing for an index past the batch).
    pub fn image(&self, i: usize) -> ImageOutput<'_> {
        match self {
            BatchOutput::Raw {
                batch,
                anchors,
                classes,
                boxes,
                scores,
            } => {
                let (a, c) = (*anchors, *classes);
                let i = i.min(*batch);
                ImageOutput::Raw(RawDetections {
                    boxes: boxes.get(i * a * 4..(i + 1) * a * 4).unwrap_or(&[]),
                    scores: scores.get(i * a * c..(i + 1) * a * c).unwrap_or(&[]),
                    classes: c,
                })
            }
            BatchOutput::Selected(images) => {
                ImageOutput::Selected(images.get(i).map_or(&[][..], |v| v.as_slice()))
            }
            BatchOutput::Yolo {
                batch,
                anchors,
                classes,
                v5,
                data,
            } => {
                let per = anchors * (classes + 4 + usize::from(*v5));
                let i = i.min(*batch);
                ImageOutput::Yolo(YoloAnchors {
                    data: data.get(i * per..(i + 1) * per).unwrap_or(&[]),
                    anchors: *anchors,
                    classes: *classes,
                    v5: *v5,
                })
            }
        }
    }
}

/// OpenCV DetectionOutput rows `(image_id, class_id, score, x1, y1, x2, y2)`, normalised
/// corners; class_id is the label id + 1 (0 is background, skipped). A `[N,1,K,7]` tensor
/// with N = batch holds image n's rows in slice n; a `[1,1,M,7]` one says each row's image
/// in its image_id column.
pub(super) fn decode_detection_output(
    shape: &[i64],
    data: &[f32],
    batch: usize,
) -> Vec<Vec<ModelDetection>> {
    let mut images = vec![Vec::new(); batch];
    let per_slice =
        (batch > 1 && shape.first() == Some(&(batch as i64))).then(|| data.len() / batch);
    for (r, row) in data.chunks_exact(7).enumerate() {
        let image = match per_slice {
            Some(n) if n > 0 => r * 7 / n,
            _ => {
                if !(row[0] >= 0.0 && row[0] < batch as f32) {
                    continue;
                }
                row[0] as usize
            }
        };
        let (class, score) = (row[1], row[2]);
        if image >= batch || !class.is_finite() || class < 1.0 || !score.is_finite() {
            continue;
        }
        images[image].push(ModelDetection {
            class_id: class.round() as u32 - 1,
            score,
            bbox: BoxInModel::from_xyxy(&row[3..7]),
        });
    }
    images
}

/// TF-OD outputs: boxes `[N,K,4]` (ymin, xmin, ymax, xmax), classes `[N,K]` (label ids),
/// scores `[N,K]`, count `[N]`; the first `count` rows of each image are its detections.
pub(super) fn decode_tfod(
    boxes: &[f32],
    classes: &[f32],
    scores: &[f32],
    count: &[f32],
    batch: usize,
) -> Vec<Vec<ModelDetection>> {
    let k = scores.len().checked_div(batch).unwrap_or(0);
    (0..batch)
        .map(|i| {
            let n = count.get(i).copied().unwrap_or(0.0);
            let n = if n.is_finite() {
                (n.max(0.0) as usize).min(k)
            } else {
                0
            };
            (i * k..i * k + n)
                .filter_map(|j| {
                    let (c, s) = (*classes.get(j)?, *scores.get(j)?);
                    let b = boxes.get(j * 4..j * 4 + 4)?;
                    (c.is_finite() && c >= 0.0 && s.is_finite()).then(|| ModelDetection {
                        class_id: c.round() as u32,
                        score: s,
                        bbox: BoxInModel::from_yxyx(b),
                    })
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_output_ids_are_label_plus_one_and_images_are_grouped() {
        // image 0: a person (class 1 → label 0); background row skipped; image 1: a car (3 → 2).
        let rows = [
            [0.0, 1.0, 0.9, 0.1, 0.2, 0.3, 0.4],
            [0.0, 0.0, 0.8, 0.1, 0.2, 0.3, 0.4],
            [1.0, 3.0, 0.7, 0.5, 0.5, 0.6, 0.7],
            [-1.0, 1.0, 0.9, 0.0, 0.0, 1.0, 1.0],
        ];
        let data: Vec<f32> = rows.concat();
        let d = decode_detection_output(&[1, 1, 4, 7], &data, 2);
        assert_eq!((d[0].len(), d[1].len()), (1, 1));
        assert_eq!((d[0][0].class_id, d[1][0].class_id), (0, 2));
        assert_eq!(d[0][0].bbox.xmin, 0.1);
        assert_eq!(d[0][0].bbox.ymax, 0.4);
        // [N,1,K,7]: slice n is image n whatever its image_id column says.
        let per = [
            [0.0, 1.0, 0.9, 0.1, 0.1, 0.2, 0.2],
            [0.0, 2.0, 0.6, 0.3, 0.3, 0.4, 0.4],
        ]
        .concat();
        let d = decode_detection_output(&[2, 1, 1, 7], &per, 2);
        assert_eq!((d[0][0].class_id, d[1][0].class_id), (0, 1));
    }

    #[test]
    fn tfod_takes_the_first_count_rows() {
        let boxes = [0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.6, 0.6, 0.0, 0.0, 0.0, 0.0];
        let d = decode_tfod(&boxes, &[0.0, 2.0, 0.0], &[0.9, 0.6, 0.0], &[2.0], 1);
        assert_eq!(d[0].len(), 2);
        assert_eq!((d[0][0].class_id, d[0][1].class_id), (0, 2));
        assert_eq!((d[0][0].bbox.ymin, d[0][0].bbox.xmin), (0.1, 0.2));
        let none = decode_tfod(&boxes, &[0.0; 3], &[0.9; 3], &[f32::NAN], 1);
        assert!(none[0].is_empty());
        let clipped = decode_tfod(&boxes, &[0.0; 3], &[0.9; 3], &[1e9], 1);
        assert_eq!(clipped[0].len(), 3);
    }
}
