//! What the Python keyword arguments mean to the library: the model, its session and the
//! post-processing, resolved with the command line's defaults (the default model and its
//! labels, one inference worker per core on the CPU, a quarter of the cores for decoding).

use std::path::{Path, PathBuf};

use pyo3::{exceptions::PyValueError, PyResult};
use vidinfer::{
    infer::{find_installed, intra_threads_per_worker, EpChoice, Precision, SessionConfig},
    labels::Labels,
    postprocess::PostprocessConfig,
    Error,
};

/// The model and how to run it.
pub(crate) struct ModelChoice {
    pub model: PathBuf,
    pub labels: Labels,
    pub session: SessionConfig,
    pub eps: EpChoice,
    pub workers: usize,
    pub post: PostprocessConfig,
}

/// The settings `detect` and `Detector` share, as given.
pub(crate) struct ModelArgs<'a> {
    pub model: Option<PathBuf>,
    pub labels: Option<PathBuf>,
    pub ep: &'a str,
    pub precision: &'a str,
    pub batch: usize,
    pub workers: usize,
    pub threads: usize,
    pub conf: f32,
    pub iou: f32,
    pub max_detections: usize,
}

fn bad_value(what: &str, e: impl std::fmt::Display) -> pyo3::PyErr {
    PyValueError::new_err(format!("{what}: {e}"))
}

/// The default model of a precision: in the package (the wheel ships them), else where the
/// command line looks (the working directory, the source tree).
fn default_model(precision: Precision, bundled: Option<&Path>) -> PathBuf {
    let name = match precision {
        Precision::Int8 => "ssd_mobilenet_v2_coco_int8.onnx",
        Precision::Fp32 | Precision::Bf16 => "ssd_mobilenet_v2_coco.onnx",
    };
    let rel = Path::new("models").join(name);
    bundled
        .map(|d| d.join(name))
        .filter(|p| p.exists())
        .or_else(|| find_installed(&rel))
        .unwrap_or(rel)
}

/// The labels beside the model (`coco_labels.txt`) unless given; none found: `class_<id>`.
fn labels(explicit: Option<&Path>, model: &Path) -> Result<Labels, Error> {
    match explicit {
        Some(p) => Labels::load(p),
        None => {
            let beside = model.with_file_name("coco_labels.txt");
            if beside.exists() {
                Labels::load(&beside)
            } else {
                Ok(Labels::default())
            }
        }
    }
}

impl ModelArgs<'_> {
    /// Checks the values and resolves the defaults; a bad value is a `ValueError`, a labels
    /// file that cannot be read the library's error.
    pub fn resolve(self, bundled_models: Option<&Path>) -> PyResult<ModelChoice> {
        let eps: EpChoice = self.ep.parse().map_err(|e| bad_value("ep", e))?;
        let precision: Precision = self
            .precision
            .parse()
            .map_err(|e| bad_value("precision", e))?;
        if self.batch == 0 {
            return Err(PyValueError::new_err("batch: must be at least 1"));
        }
        if !(0.0..=1.0).contains(&self.conf) || !(0.0..=1.0).contains(&self.iou) {
            return Err(PyValueError::new_err("conf and iou: must be within 0..1"));
        }
        let model = self
            .model
            .unwrap_or_else(|| default_model(precision, bundled_models));
        let labels = labels(self.labels.as_deref(), &model).map_err(|e| crate::py_err(&e))?;
        let workers = if self.workers > 0 {
            self.workers
        } else {
            eps.default_workers()
        };
        let session = SessionConfig {
            eps: eps.clone(),
            intra_threads: intra_threads_per_worker(self.threads, workers),
            precision,
            batch: Some(self.batch),
            ..SessionConfig::default()
        };
        Ok(ModelChoice {
            model,
            labels,
            session,
            eps,
            workers,
            post: PostprocessConfig {
                conf: self.conf,
                iou: self.iou,
                max_detections: self.max_detections,
                ..PostprocessConfig::default()
            },
        })
    }
}
