//! The library's one error type. Every fallible public function returns [`Result`].
//! Messages are written for the person running the CLI: they name the file and the cause.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("input not found: {0}")]
    InputNotFound(PathBuf),
    #[error("input is a directory, not a video file: {0}")]
    InputIsDirectory(PathBuf),
    #[error("cannot open {path} as a video: {reason}")]
    OpenInput { path: PathBuf, reason: String },
    #[error("{0} has no video stream")]
    NoVideoStream(PathBuf),
    #[error("cannot decode {path}: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{path}: no frame could be decoded{detail}")]
    NoFrames { path: PathBuf, detail: String },

    #[error("model file not found: {0} (run tools/setup to build it, or pass --model)")]
    ModelNotFound(PathBuf),
    #[error("cannot load model {path}: {reason}")]
    ModelLoad { path: PathBuf, reason: String },
    #[error("model {path} is not a supported SSD detector: {reason}")]
    ModelSignature { path: PathBuf, reason: String },
    #[error("cannot load the ONNX Runtime library {path}: {reason} (run tools/setup, or pass --ort-lib / set ORT_DYLIB_PATH)")]
    OrtLibrary { path: PathBuf, reason: String },
    #[error("execution provider '{ep}' is unavailable: {reason}")]
    ExecutionProvider { ep: String, reason: String },
    #[error("inference failed: {0}")]
    Inference(String),

    #[error("labels file {path}: {reason}")]
    Labels { path: PathBuf, reason: String },
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode {path}: {reason}")]
    Encode { path: PathBuf, reason: String },
    #[error("invalid option: {0}")]
    Config(String),
    #[error("pipeline stage '{0}' stopped unexpectedly")]
    StageDied(&'static str),
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
