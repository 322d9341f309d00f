//! Inference: loading ONNX Runtime, choosing the execution provider, running batches.
//!
//! [`Runtime`] loads the ONNX Runtime shared library once. [`Detector`] is one session on
//! one model, with the execution provider that actually registered recorded in
//! [`Detector::ep`]. Provider registration never falls back silently: a provider the user
//! named alone either registers or is an error naming the cause; providers tried before the
//! one that ran are recorded in [`Detector::fallbacks`] for the caller to report.

pub mod ep;
pub mod onnx_meta;
mod outputs;
mod precision;
mod shared;
mod signature;
pub mod yolo;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use ort::{
    environment::Environment,
    session::{
        builder::{GraphOptimizationLevel, SessionBuilder},
        Session,
    },
    value::TensorRef,
};

pub use ep::{EpChoice, EpKind, EpOptions};
pub use outputs::{
    BatchOutput, BoxInModel, ImageOutput, ModelDetection, RawDetections, Values, YoloAnchors,
};
pub use precision::Precision;
pub use signature::{ModelFormat, Outputs, PreprocessOverrides, Signature, Source, SpecSources};

use crate::{
    error::{EpFailure, Error, OrtError, Result},
    preprocess::{Layout, PreprocessSpec, Tensor},
};
use shared::SharedSession;

/// Which ONNX Runtime build (a folder under `.cache/onnxruntime/` made by `tools/setup --ep …`)
/// carries a provider: `gpu` (onnxruntime-gpu) for CUDA/TensorRT, `openvino` for OpenVINO.
fn lib_variant(ep: EpKind) -> Option<&'static str> {
    match ep {
        EpKind::Cuda | EpKind::TensorRt => Some("gpu"),
        EpKind::OpenVino => Some("openvino"),
        EpKind::Cpu => None,
    }
}

/// The folders vidinfer's own files may be in, in order: a release bundle's root (`bin/..`,
/// when it is one: its files are the ones it was packed with, wherever it runs from), the
/// working directory, then the folders above the executable — the source tree of a cargo
/// build (`target/<profile>/../..`).
pub fn install_roots() -> Vec<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf));
    let above: Vec<PathBuf> = exe_dir
        .iter()
        .flat_map(|d| d.ancestors().skip(1).take(3).map(Path::to_path_buf))
        .collect();
    let bundle = above
        .first()
        .filter(|root| root.join("lib/onnxruntime").is_dir())
        .cloned();
    let mut roots: Vec<PathBuf> = bundle.iter().cloned().collect();
    roots.push(PathBuf::new());
    roots.extend(above.into_iter().filter(|r| Some(r) != bundle.as_ref()));
    roots
}

/// The first of `relative` under [`install_roots`] that exists.
pub fn find_installed(relative: &Path) -> Option<PathBuf> {
    install_roots()
        .into_iter()
        .map(|r| r.join(relative))
        .find(|p| p.exists())
}

/// Where to load `libonnxruntime.so` from: `--ort-lib`, else `ORT_DYLIB_PATH`, else the build
/// for the preferred provider (`{gpu,openvino}/`), else the CPU build: in a release bundle's
/// `lib/onnxruntime/`, or `.cache/onnxruntime/` where `tools/setup` puts them (searched in
/// the [`install_roots`]); else the system library path.
pub fn resolve_ort_lib(explicit: Option<&Path>, eps: &EpChoice) -> PathBuf {
    if let Some(p) = explicit {
        return p.into();
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|s| !s.is_empty()) {
        return p.into();
    }
    let variants: Vec<&str> = match eps {
        EpChoice::Auto => vec!["gpu", "openvino"],
        EpChoice::Listed(l) => l
            .first()
            .copied()
            .and_then(lib_variant)
            .into_iter()
            .collect(),
    };
    variants
        .iter()
        .map(|v| format!("{v}/"))
        .chain([String::new()])
        .flat_map(|v| {
            [
                format!("lib/onnxruntime/{v}libonnxruntime.so"),
                format!(".cache/onnxruntime/{v}libonnxruntime.so"),
            ]
        })
        .find_map(|rel| find_installed(Path::new(&rel)))
        .unwrap_or_else(|| PathBuf::from("libonnxruntime.so"))
}

/// What `vidinfer --version` tells about the ONNX Runtime it loaded.
#[derive(Debug, Clone)]
pub struct RuntimeInfo {
    pub library: PathBuf,
    /// The release, e.g. `1.31.1` (from the build info), if it says.
    pub version: Option<String>,
    /// ORT's own build line.
    pub build: String,
    /// The providers compiled into this build (registering may still need a device).
    pub providers: Vec<EpKind>,
}

impl Runtime {
    pub fn info(&self) -> RuntimeInfo {
        let build = ort::info().to_string();
        // The wheel's file name carries the release (libonnxruntime.so.1.31.1); some builds'
        // info line does too (git-branch=rel-1.24.1).
        let from_name = self
            .lib
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.split_once(".so."))
            .map(|(_, v)| v.to_string());
        let version = from_name.or_else(|| {
            build
                .split(['=', ',', ' '])
                .find_map(|w| w.strip_prefix("rel-"))
                .map(str::to_string)
        });
        RuntimeInfo {
            library: self.lib.clone(),
            version,
            build,
            providers: EpKind::all()
                .into_iter()
                .filter(|k| k.compiled_in())
                .collect(),
        }
    }
}

/// The loaded ONNX Runtime library and its environment. Create one per process.
pub struct Runtime {
    env: Environment,
    lib: PathBuf,
}

impl Runtime {
    pub fn load(lib: &Path) -> Result<Self> {
        let lib_err = |lib: &Path, e: Box<dyn std::error::Error + Send + Sync>| Error::OrtLibrary {
            path: lib.into(),
            source: e,
        };
        if lib.components().count() > 1 && !lib.exists() {
            return Err(lib_err(lib, "file not found".into()));
        }
        // ort resolves relative paths against the executable's directory; make ours absolute.
        let lib = &lib.canonicalize().unwrap_or_else(|_| lib.to_path_buf());
        let builder = ort::init_from(lib).map_err(|e| lib_err(lib, Box::new(e)))?;
        let env = builder
            .with_name("vidinfer")
            .build()
            .map_err(|e| lib_err(lib, Box::new(OrtError(e))))?;
        Ok(Runtime {
            env,
            lib: lib.into(),
        })
    }

    pub fn library(&self) -> &Path {
        &self.lib
    }
}

/// ORT intra-op threads for each of `workers` sessions: `requested`, or for 0 the cores
/// shared out between the workers (at least one each).
pub fn intra_threads_per_worker(requested: usize, workers: usize) -> usize {
    if requested > 0 {
        requested
    } else {
        (crate::sys::cores() / workers.max(1)).max(1)
    }
}

/// Session settings chosen from the thread budget and the user's flags.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub eps: EpChoice,
    pub ep_options: EpOptions,
    /// ORT intra-op threads (0: ORT's default, one per core).
    pub intra_threads: usize,
    /// Let ORT's worker threads spin between runs (costs CPU that decode/preprocess need).
    pub spinning: bool,
    pub preprocess: PreprocessOverrides,
    /// Read the outputs as this layout instead of recognising it.
    pub format: Option<ModelFormat>,
    /// The arithmetic to run in.
    pub precision: Precision,
    /// The batch size the run feeds. With OpenVINO a symbolic batch dimension is fixed to it
    /// (a static shape compiles to faster kernels, and the provider then writes the outputs in
    /// place): bf16 model-only 443-457 vs 382-392 fps on the Intel Xeon here. ORT's CPU
    /// provider ran the static shape 3% slower, so it keeps the dynamic one.
    pub batch: Option<usize>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            eps: EpChoice::Listed(vec![EpKind::Cpu]),
            ep_options: EpOptions::default(),
            intra_threads: 0,
            spinning: false,
            preprocess: PreprocessOverrides::default(),
            format: None,
            precision: Precision::Fp32,
            batch: None,
        }
    }
}

/// One output tensor of a run: its shape and its values as f32 (left where ORT wrote them).
type OutputTensor = (Vec<i64>, Values);

/// One session of an SSD-family detector: an image batch in (f32 or u8, NCHW or NHWC), one
/// of the [`ModelFormat`] output layouts out.
pub struct Detector {
    session: SessionHandle,
    ep: EpKind,
    sig: Signature,
    fallbacks: Vec<EpFailure>,
    precision: Precision,
}

/// A worker's session: its own, or one OpenVINO session shared with the other workers.
enum SessionHandle {
    /// Run through `ort` (`Session::run(&mut self)`).
    Own(Session),
    /// Run concurrently by every worker holding it ([`Detector::load_workers`]).
    Shared(Arc<SharedSession>),
}

/// The name of the model input's batch dimension if it is symbolic (`N` in `[N,3,300,300]`),
/// read from a session that only loads the graph (no provider, no optimisation).
fn batch_symbol(rt: &Runtime, model: &Path) -> std::result::Result<Option<String>, ort::Error> {
    let session = Session::builder(&rt.env)?
        .with_optimization_level(GraphOptimizationLevel::Disable)?
        .with_intra_threads(1)?
        .commit_from_file(model)?;
    let Some(input) = session.inputs().first() else {
        return Ok(None);
    };
    Ok(match input.dtype() {
        ort::value::ValueType::Tensor {
            shape,
            dimension_symbols,
            ..
        } => shape
            .first()
            .filter(|&&d| d < 0)
            .and(dimension_symbols.first())
            .filter(|s| !s.is_empty())
            .cloned(),
        _ => None,
    })
}

/// A session builder with the thread budget and spinning settings.
fn session_builder(
    rt: &Runtime,
    cfg: &SessionConfig,
) -> std::result::Result<SessionBuilder, ort::Error> {
    let spin = if cfg.spinning { "1" } else { "0" };
    let mut builder = Session::builder(&rt.env)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_inter_threads(1)?
        .with_config_entry("session.intra_op.allow_spinning", spin)?
        .with_config_entry("session.inter_op.allow_spinning", spin)?;
    if cfg.intra_threads > 0 {
        builder = builder.with_intra_threads(cfg.intra_threads)?;
    }
    // Without VNNI, ORT's fast u8 x s8 products can overflow: the exact u8 x u8 path instead.
    if cfg.precision == Precision::Int8 && !crate::sys::CpuIsa::detect().vnni {
        builder = builder.with_config_entry("session.x64quantprecision", "1")?;
    }
    // bf16 only means something if every node runs in OpenVINO: no quiet CPU fallback.
    if cfg.precision == Precision::Bf16 {
        builder = builder.with_config_entry("session.disable_cpu_ep_fallback", "1")?;
    }
    Ok(builder)
}

/// Registers the first provider of the user's list that works; the ones tried before it are
/// returned with their causes. None working is an error listing every cause.
fn register_provider(
    builder: &mut SessionBuilder,
    rt: &Runtime,
    cfg: &SessionConfig,
) -> Result<(EpKind, Vec<EpFailure>)> {
    let order = match &cfg.eps {
        EpChoice::Auto => EpKind::auto_order(),
        EpChoice::Listed(l) => l.clone(),
    };
    // `tools/setup --ep gpu` puts the CUDA/cuDNN runtime next to the GPU build; load it
    // first so the CUDA provider finds it without LD_LIBRARY_PATH.
    if order
        .iter()
        .any(|k| matches!(k, EpKind::Cuda | EpKind::TensorRt))
    {
        if let Some(dir) = rt
            .lib
            .parent()
            .map(|d| d.join("cuda"))
            .filter(|d| d.is_dir())
        {
            if let Err(e) = ort::ep::cuda::preload_dylibs(Some(&dir), Some(&dir)) {
                tracing::warn!(
                    "could not preload the CUDA libraries from {}: {e}",
                    dir.display()
                );
            }
        }
    }
    let mut opts = cfg.ep_options.clone();
    (opts.intra_threads, opts.precision) = (cfg.intra_threads, cfg.precision);
    let mut tried = Vec::new();
    for kind in &order {
        match kind.dispatch(&opts).register(builder) {
            Ok(()) => return Ok((*kind, tried)),
            Err(e) => tried.push(EpFailure {
                ep: kind.name(),
                source: OrtError(e),
            }),
        }
    }
    let requested = match &cfg.eps {
        EpChoice::Auto => "auto".to_string(),
        EpChoice::Listed(l) => l.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
    };
    Err(Error::ExecutionProvider { requested, tried })
}

impl Detector {
    pub fn load(rt: &Runtime, model: &Path, cfg: &SessionConfig) -> Result<Self> {
        if !model.exists() {
            return Err(Error::ModelNotFound(model.into()));
        }
        if model.is_dir() {
            return Err(Error::ModelIsDirectory(model.into()));
        }
        let load_err = |e: ort::Error| Error::ModelLoad {
            path: model.into(),
            source: OrtError(e),
        };
        let mut builder = session_builder(rt, cfg).map_err(load_err)?;
        let (ep, fallbacks) = register_provider(&mut builder, rt, cfg)?;
        cfg.precision
            .check(ep, &crate::sys::CpuIsa::detect())
            .map_err(|source| Error::ProviderPrecision {
                ep: ep.name(),
                precision: cfg.precision.name(),
                source,
            })?;
        if let (EpKind::OpenVino, Some(batch)) = (ep, cfg.batch) {
            if let Some(symbol) = batch_symbol(rt, model).map_err(load_err)? {
                builder = builder
                    .with_dimension_override(symbol, batch as i64)
                    .map_err(|e| load_err(e.into()))?;
            }
        }
        let session = builder.commit_from_file(model).map_err(load_err)?;
        let sig_err = |source| Error::ModelSignature {
            path: model.into(),
            source: Box::new(source),
        };
        let sig =
            signature::read_signature(&session, &cfg.preprocess, cfg.format).map_err(sig_err)?;
        let precision =
            cfg.precision
                .ran_with(sig.precision)
                .map_err(|source| Error::ModelPrecision {
                    path: model.into(),
                    source,
                })?;
        Ok(Detector {
            session: SessionHandle::Own(session),
            ep,
            sig,
            fallbacks,
            precision,
        })
    }

    /// `workers` detectors for the inference workers. With the OpenVINO provider (named first)
    /// they share one session compiled for `workers` throughput streams and all the workers'
    /// threads, run concurrently (see `shared.rs`); otherwise each worker has its own session.
    pub fn load_workers(
        rt: &Runtime,
        model: &Path,
        cfg: &SessionConfig,
        workers: usize,
    ) -> Result<Vec<Self>> {
        let workers = workers.max(1);
        let openvino_first =
            matches!(&cfg.eps, EpChoice::Listed(l) if l.first() == Some(&EpKind::OpenVino));
        if workers > 1 && openvino_first {
            let mut shared = cfg.clone();
            shared.ep_options.streams = workers;
            shared.intra_threads = cfg.intra_threads * workers;
            // Another provider may have registered (OpenVINO was not the only one listed).
            if let (first, Some(session)) = Detector::load(rt, model, &shared)?.into_shared() {
                let mut v: Vec<Self> = (1..workers).map(|_| first.share(&session)).collect();
                v.insert(0, first);
                return Ok(v);
            }
        }
        (0..workers)
            .map(|_| Detector::load(rt, model, cfg))
            .collect()
    }

    /// This detector with its session shared ([`SharedSession`]), and the session, if its
    /// provider runs concurrent calls of one session; otherwise as it was, and `None`.
    fn into_shared(self) -> (Self, Option<Arc<SharedSession>>) {
        let Detector {
            session,
            ep,
            sig,
            fallbacks,
            precision,
        } = self;
        let (shared, session) = match session {
            SessionHandle::Own(s) => match SharedSession::new(s, ep) {
                Ok(s) => {
                    let s = Arc::new(s);
                    (Some(Arc::clone(&s)), SessionHandle::Shared(s))
                }
                Err(s) => (None, SessionHandle::Own(s)),
            },
            SessionHandle::Shared(s) => (Some(Arc::clone(&s)), SessionHandle::Shared(s)),
        };
        let d = Detector {
            session,
            ep,
            sig,
            fallbacks,
            precision,
        };
        (d, shared)
    }

    /// Another worker's detector on this detector's `session`, run concurrently.
    fn share(&self, session: &Arc<SharedSession>) -> Self {
        Detector {
            session: SessionHandle::Shared(Arc::clone(session)),
            ep: self.ep,
            sig: self.sig.clone(),
            fallbacks: Vec::new(),
            precision: self.precision,
        }
    }

    /// The arithmetic this session runs in (an int8 model runs int8 whatever was asked).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The execution provider that registered and runs this session.
    pub fn ep(&self) -> EpKind {
        self.ep
    }

    /// Providers tried before [`Detector::ep`] and why each failed.
    pub fn fallbacks(&self) -> &[EpFailure] {
        &self.fallbacks
    }

    pub fn spec(&self) -> &PreprocessSpec {
        &self.sig.spec
    }

    pub fn fixed_batch(&self) -> Option<usize> {
        self.sig.fixed_batch
    }

    /// The model's interface as checked at load.
    pub fn signature(&self) -> &Signature {
        &self.sig
    }

    /// Runs `batch` images held in `input` (`batch * spec.slot_len()` values, in the spec's
    /// layout and element type).
    pub fn run(&mut self, input: &Tensor, batch: usize) -> Result<BatchOutput> {
        let spec = self.sig.spec;
        let (h, w) = (spec.height as usize, spec.width as usize);
        let need = batch * spec.slot_len();
        if input.len() < need || batch == 0 || input.dtype() != spec.dtype {
            return Err(Error::InputTensor {
                dtype: input.dtype().name(),
                len: input.len(),
                batch,
                expected: need.max(spec.slot_len()),
                wanted: spec.dtype.name(),
            });
        }
        let shape = match spec.layout {
            Layout::Nchw => [batch, 3, h, w],
            Layout::Nhwc => [batch, h, w, 3],
        };
        let inference = |e: ort::Error| Error::Inference {
            source: OrtError(e),
        };
        let tensors = match input {
            Tensor::F32(v) => {
                let t = TensorRef::from_array_view((shape, &v[..need])).map_err(inference)?;
                self.run_one(t)
            }
            Tensor::U8(v) => {
                let t = TensorRef::from_array_view((shape, &v[..need])).map_err(inference)?;
                self.run_one(t)
            }
        }
        .map_err(inference)?;
        let names = self.sig.outputs.names();
        // Each output is taken once: moved out, not copied (the scores are ~0.7 MB a frame).
        let mut tensors = tensors;
        let mut take = |i: usize, per: usize| -> Result<OutputTensor> {
            let (shape, data) = std::mem::take(&mut tensors[i]);
            if data.len() != batch * per && per != 0 {
                return Err(Error::OutputShape {
                    name: names[i].clone(),
                    shape,
                    expected: batch * per,
                });
            }
            Ok((shape, data))
        };
        Ok(match &self.sig.outputs {
            Outputs::Raw {
                anchors, classes, ..
            } => BatchOutput::Raw {
                batch,
                anchors: *anchors,
                classes: *classes,
                boxes: take(0, anchors * 4)?.1,
                scores: take(1, anchors * classes)?.1,
            },
            Outputs::DetectionOutput { .. } => {
                let (shape, data) = take(0, 0)?;
                BatchOutput::Selected(outputs::decode_detection_output(&shape, &data, batch))
            }
            Outputs::TfOd { .. } => BatchOutput::Selected(outputs::decode_tfod(
                &take(0, 0)?.1,
                &take(1, 0)?.1,
                &take(2, 0)?.1,
                &take(3, 1)?.1,
                batch,
            )),
            // Ultralytics' layouts: one output.
            o => {
                let (shape, data) = take(0, 0)?;
                let size = (spec.width, spec.height);
                let fit = yolo::batch_output(o, &shape, data, batch, size);
                fit.map_err(|expected| Error::OutputShape {
                    name: names[0].clone(),
                    shape,
                    expected,
                })?
            }
        })
    }

    /// Runs the session on one input and takes the model's outputs (f32 tensors, left in the
    /// buffers ONNX Runtime allocated, in the order of [`Outputs::names`]). A session shared
    /// between workers (OpenVINO) is run through [`SharedSession::run`]; a session of its own
    /// through `ort`.
    fn run_one<T>(
        &mut self,
        t: TensorRef<'_, T>,
    ) -> std::result::Result<Vec<OutputTensor>, ort::Error>
    where
        T: ort::value::PrimitiveTensorElementType + std::fmt::Debug,
    {
        let names = self.sig.outputs.names();
        let input = self.sig.input_name.as_str();
        match &mut self.session {
            SessionHandle::Own(session) => {
                let mut out = session.run(ort::inputs![input => t])?;
                names
                    .iter()
                    .map(|n| {
                        let v = out.remove(n.as_str()).ok_or_else(|| {
                            ort::Error::new(format!("the run returned no output {n:?}"))
                        })?;
                        Values::from_ort(v)
                    })
                    .collect()
            }
            SessionHandle::Shared(session) => session
                .run(input, &*t, &names)?
                .into_iter()
                .map(Values::from_ort)
                .collect(),
        }
    }
}
