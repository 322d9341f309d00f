//! `Detector(model)(images)`: the model on numpy pictures, batched, with the pipeline's
//! preprocessing (the exact kernel: RGB in) and post-processing; the GIL is released while
//! it runs.

use std::{path::PathBuf, sync::Mutex};

use numpy::{PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::{exceptions::PyValueError, prelude::*};
use vidinfer::{
    infer::Detector as Session, labels::Labels, pipeline::ImageDetector, preprocess::RgbImage,
};

use crate::{options::ModelArgs, results::FrameResult};

#[pyclass(module = "vidinfer")]
pub struct Detector {
    inner: Mutex<ImageDetector>,
    labels: Labels,
    model: PathBuf,
}

/// The pictures of `images` as C-contiguous uint8 arrays: one (H, W, 3) array, an
/// (N, H, W, 3) array or a sequence of (H, W, 3) arrays.
fn pictures<'py>(images: &Bound<'py, PyAny>) -> PyResult<Vec<PyReadonlyArrayDyn<'py, u8>>> {
    let py = images.py();
    let np = py.import("numpy")?;
    let contiguous = |a: &Bound<'py, PyAny>| -> PyResult<PyReadonlyArrayDyn<'py, u8>> {
        let a = np.call_method1("ascontiguousarray", (a,))?;
        a.extract()
            .map_err(|_| PyValueError::new_err("images: uint8 arrays of shape (H, W, 3), RGB"))
    };
    let ndim: Option<usize> = images.getattr("ndim").ok().and_then(|n| n.extract().ok());
    let list: Vec<Bound<'py, PyAny>> =
        match ndim {
            Some(3) => vec![images.clone()],
            Some(4) => images.try_iter()?.collect::<PyResult<_>>()?,
            Some(_) => return Err(PyValueError::new_err(
                "images: an (H, W, 3) array, an (N, H, W, 3) array or a list of (H, W, 3) arrays",
            )),
            None => images.try_iter()?.collect::<PyResult<_>>()?,
        };
    list.iter().map(contiguous).collect()
}

#[pymethods]
impl Detector {
    #[new]
    #[pyo3(signature = (
        model=None, *, ep="cpu", precision="fp32", batch=8, threads=0, conf=0.5, iou=0.6,
        max_detections=100, labels=None, ort_lib=None
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        model: Option<PathBuf>,
        ep: &str,
        precision: &str,
        batch: usize,
        threads: usize,
        conf: f32,
        iou: f32,
        max_detections: usize,
        labels: Option<PathBuf>,
        ort_lib: Option<PathBuf>,
    ) -> PyResult<Self> {
        let choice = ModelArgs {
            model,
            labels,
            ep,
            precision,
            batch,
            workers: 1,
            threads,
            conf,
            iou,
            max_detections,
        }
        .resolve(crate::bundled_models().as_deref())?;
        let session = py
            .detach(|| {
                let rt = crate::runtime(ort_lib.as_deref(), &choice.eps)?;
                Session::load(&rt, &choice.model, &choice.session)
            })
            .map_err(|e| crate::py_err(&e))?;
        Ok(Detector {
            inner: Mutex::new(ImageDetector::new(session, choice.post, batch)),
            labels: choice.labels,
            model: choice.model,
        })
    }

    /// The model file in use.
    #[getter]
    fn model(&self) -> PathBuf {
        self.model.clone()
    }

    /// Detections for each image (RGB, uint8), in order.
    fn __call__(&self, py: Python<'_>, images: &Bound<'_, PyAny>) -> PyResult<Vec<FrameResult>> {
        let arrays = pictures(images)?;
        let mut views = Vec::with_capacity(arrays.len());
        for a in &arrays {
            let shape = a.shape();
            if shape.len() != 3 || shape[2] != 3 || shape[0] == 0 || shape[1] == 0 {
                return Err(PyValueError::new_err(format!(
                    "images: each must be (H, W, 3) uint8 RGB, got shape {shape:?}"
                )));
            }
            let (h, w) = (shape[0] as u32, shape[1] as u32);
            let data = a
                .as_slice()
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
            views.push(RgbImage {
                data,
                width: w,
                height: h,
                stride: 3 * w as usize,
            });
        }
        let inner = &self.inner;
        let found = py
            .detach(|| {
                inner
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .detect(&views)
            })
            .map_err(|e| crate::py_err(&e))?;
        (found.iter().zip(&views).enumerate())
            .map(|(i, (dets, v))| {
                let c = crate::results::columns(py, dets, &self.labels)?;
                Ok(FrameResult {
                    input: String::new(),
                    frame: i as u64,
                    pts: 0.0,
                    width: v.width,
                    height: v.height,
                    inferred: true,
                    boxes: c.boxes,
                    scores: c.scores,
                    class_ids: c.class_ids,
                    labels: c.labels,
                    track_ids: None,
                    image: None,
                })
            })
            .collect()
    }
}
