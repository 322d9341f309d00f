//! One frame's results as Python sees them: numpy arrays for the boxes, scores and classes
//! (and the picture, when asked), plain lists for labels and track ids.

use numpy::{PyArray1, PyArrayMethods};
use pyo3::prelude::*;
use vidinfer::{labels::Labels, postprocess::Detection, sink::FrameResults};

/// A frame's detections, in frame pixels.
#[pyclass(frozen, get_all, module = "vidinfer")]
pub struct FrameResult {
    /// The input as given to `detect` (a `Detector` call: "").
    pub input: String,
    /// 0-based frame index in the input (a `Detector` call: the image's position).
    pub frame: u64,
    /// Presentation time in seconds (a `Detector` call: 0.0).
    pub pts: f64,
    pub width: u32,
    pub height: u32,
    /// False for a frame `stride` left out of inference (no detections of its own).
    pub inferred: bool,
    /// (N, 4) float32: x1, y1, x2, y2.
    pub boxes: Py<PyAny>,
    /// (N,) float32.
    pub scores: Py<PyAny>,
    /// (N,) int64.
    pub class_ids: Py<PyAny>,
    pub labels: Vec<String>,
    /// With `track=True`: a track id per detection (None: not on a confirmed track).
    pub track_ids: Option<Vec<Option<u64>>>,
    /// With `frames=True`: the decoded picture, (H, W, 3) uint8 RGB.
    pub image: Option<Py<PyAny>>,
}

#[pymethods]
impl FrameResult {
    fn __len__(&self) -> usize {
        self.labels.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "FrameResult(input={:?}, frame={}, pts={:.6}, detections={})",
            self.input,
            self.frame,
            self.pts,
            self.labels.len()
        )
    }
}

/// The detections' columns.
pub(crate) struct Columns {
    pub boxes: Py<PyAny>,
    pub scores: Py<PyAny>,
    pub class_ids: Py<PyAny>,
    pub labels: Vec<String>,
}

pub(crate) fn columns(py: Python<'_>, dets: &[Detection], labels: &Labels) -> PyResult<Columns> {
    let n = dets.len();
    let mut boxes = Vec::with_capacity(4 * n);
    for d in dets {
        let b = &d.box_in_frame;
        boxes.extend_from_slice(&[b.x1, b.y1, b.x2, b.y2]);
    }
    let boxes = PyArray1::from_vec(py, boxes).reshape([n, 4])?;
    let scores = PyArray1::from_vec(py, dets.iter().map(|d| d.score).collect());
    let ids: Vec<i64> = dets.iter().map(|d| i64::from(d.class_id)).collect();
    Ok(Columns {
        boxes: boxes.into_any().unbind(),
        scores: scores.into_any().unbind(),
        class_ids: PyArray1::from_vec(py, ids).into_any().unbind(),
        labels: dets
            .iter()
            .map(|d| labels.name(d.class_id).into_owned())
            .collect(),
    })
}

pub(crate) fn frame_result(
    py: Python<'_>,
    input: String,
    f: FrameResults,
    labels: &Labels,
) -> PyResult<FrameResult> {
    let c = columns(py, &f.detections, labels)?;
    let image = match f.picture {
        Some(p) => {
            let (h, w) = (p.height as usize, p.width as usize);
            Some(
                PyArray1::from_vec(py, p.data)
                    .reshape([h, w, 3])?
                    .into_any()
                    .unbind(),
            )
        }
        None => None,
    };
    Ok(FrameResult {
        input,
        frame: f.index,
        pts: f.pts,
        width: f.width,
        height: f.height,
        inferred: f.inferred,
        boxes: c.boxes,
        scores: c.scores,
        class_ids: c.class_ids,
        labels: c.labels,
        track_ids: f.track_ids,
        image,
    })
}
