//! `vidinfer._native`: the Python module over the vidinfer library. `detect` runs the
//! pipeline on its own threads and hands its results to a Python iterator through a bounded
//! channel (the GIL released while it waits); `Detector` runs the same model on numpy
//! images. The Python package (`vidinfer/__init__.py`) re-exports both; the stubs are in
//! `vidinfer/_native.pyi`.

mod detect;
mod detector;
mod options;
mod results;

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use pyo3::{create_exception, exceptions::PyException, prelude::*};
use vidinfer::{
    infer::{resolve_ort_lib, EpChoice, Runtime},
    Error,
};

create_exception!(
    _native,
    VidinferError,
    PyException,
    "Base class of vidinfer's errors; the message is the library's, with its causes."
);
create_exception!(
    _native,
    InputError,
    VidinferError,
    "An input could not be opened or decoded (its frames before the failure were yielded)."
);
create_exception!(
    _native,
    ModelError,
    VidinferError,
    "The model could not be found, loaded or run as asked."
);

/// The library's error as the Python exception of its kind, with the library's message.
pub(crate) fn py_err(e: &Error) -> PyErr {
    let message = vidinfer::error::chain(e);
    match e {
        Error::ModelNotFound(_)
        | Error::ModelLoad { .. }
        | Error::ModelIsDirectory(_)
        | Error::ModelSignature { .. }
        | Error::ModelPrecision { .. }
        | Error::ProviderPrecision { .. }
        | Error::ExecutionProvider { .. }
        | Error::Labels { .. } => ModelError::new_err(message),
        Error::InputNotFound(_)
        | Error::InputIsDirectory(_)
        | Error::BadInput { .. }
        | Error::OpenInput { .. }
        | Error::NoVideoStream(_)
        | Error::Decode { .. }
        | Error::NoFrames { .. } => InputError::new_err(message),
        _ => VidinferError::new_err(message),
    }
}

/// ONNX Runtime is loaded once per process (ort binds one library for good); the first
/// call's library is the one every later call uses.
static RUNTIME: Mutex<Option<Arc<Runtime>>> = Mutex::new(None);

/// The bundled library set by the package (`_set_bundled`), if any.
static BUNDLED_ORT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// The folder of the models shipped in the wheel (`_set_bundled`), if any.
static BUNDLED_MODELS: Mutex<Option<PathBuf>> = Mutex::new(None);

pub(crate) fn bundled_models() -> Option<PathBuf> {
    BUNDLED_MODELS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
}

pub(crate) fn runtime(explicit: Option<&Path>, eps: &EpChoice) -> Result<Arc<Runtime>, Error> {
    let mut held = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = held.as_ref() {
        return Ok(rt.clone());
    }
    let bundled = BUNDLED_ORT
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let env_set = std::env::var_os("ORT_DYLIB_PATH").is_some_and(|s| !s.is_empty());
    let lib = match (explicit, bundled) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(b)) if !env_set => b,
        _ => resolve_ort_lib(None, eps),
    };
    let rt = Arc::new(Runtime::load(&lib)?);
    *held = Some(rt.clone());
    Ok(rt)
}

/// Called by the package at import: the ONNX Runtime library shipped in the wheel (used
/// unless `ORT_DYLIB_PATH` or an explicit `ort_lib` says otherwise) and the folder of its
/// default models (used when no `model` is given).
#[pyfunction]
#[pyo3(signature = (ort_lib, models))]
fn _set_bundled(ort_lib: Option<PathBuf>, models: Option<PathBuf>) {
    *BUNDLED_ORT.lock().unwrap_or_else(|p| p.into_inner()) = ort_lib;
    *BUNDLED_MODELS.lock().unwrap_or_else(|p| p.into_inner()) = models;
}

/// The ONNX Runtime library in use, once one has been loaded.
#[pyfunction]
fn ort_library() -> Option<PathBuf> {
    let held = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    held.as_ref().map(|rt| rt.library().to_path_buf())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // FFmpeg's own log stays quiet: what goes wrong reaches Python as an exception.
    vidinfer::decode::init_ffmpeg(false);
    let py = m.py();
    // NumPy's C API, loaded now: loaded lazily by the first frame, a Ctrl-C landing during
    // NumPy's import made rust-numpy panic (PanicException) instead of KeyboardInterrupt.
    py.import("numpy")?;
    let _ = numpy::PyArray1::<f32>::zeros(py, 0, false);
    m.add("VidinferError", py.get_type::<VidinferError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add_class::<results::FrameResult>()?;
    m.add_class::<detect::DetectIter>()?;
    m.add_class::<detector::Detector>()?;
    m.add_function(wrap_pyfunction!(detect::detect, m)?)?;
    m.add_function(wrap_pyfunction!(_set_bundled, m)?)?;
    m.add_function(wrap_pyfunction!(ort_library, m)?)?;
    Ok(())
}
