//! Inference: loading ONNX Runtime, choosing the execution provider, running batches.
//!
//! [`Runtime`] loads the ONNX Runtime shared library once. [`Detector`] is one session on
//! one model, with the execution provider that actually registered recorded in
//! [`Detector::ep`]. Provider registration never falls back silently: a provider the user
//! named alone either registers or is an error naming the cause.

pub mod ep;

use std::path::{Path, PathBuf};

use ort::{
    environment::Environment,
    session::{builder::GraphOptimizationLevel, Session},
    value::TensorRef,
};

pub use ep::{EpChoice, EpKind, EpOptions};

use crate::{
    error::{Error, Result},
    postprocess::RawDetections,
    preprocess::{Layout, PreprocessSpec, ResizeMode},
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

/// Parses `r,g,b` (or one value for all three).
pub fn parse_mean(s: &str) -> std::result::Result<[f32; 3], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|p| {
            p.trim()
                .parse::<f32>()
                .map_err(|_| format!("'{s}' is not a mean (R,G,B)"))
        })
        .collect::<std::result::Result<_, _>>()?;
    match v.as_slice() {
        [a] => Ok([*a; 3]),
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(format!("'{s}' is not a mean (R,G,B)")),
    }
}

pub fn parse_resize(s: &str) -> std::result::Result<ResizeMode, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "stretch" => Ok(ResizeMode::Stretch),
        "letterbox" => Ok(ResizeMode::Letterbox),
        other => Err(format!(
            "unknown resize mode '{other}' (expected stretch or letterbox)"
        )),
    }
}

pub fn parse_channel_order(s: &str) -> std::result::Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "rgb" => Ok(true),
        "bgr" => Ok(false),
        other => Err(format!(
            "unknown channel order '{other}' (expected rgb or bgr)"
        )),
    }
}

/// Which ONNX Runtime build (a folder under `.cache/onnxruntime/` made by `tools/setup --ep …`)
/// carries a provider: `gpu` (onnxruntime-gpu) for CUDA/TensorRT, `openvino` for OpenVINO.
fn lib_variant(ep: EpKind) -> Option<&'static str> {
    match ep {
        EpKind::Cuda | EpKind::TensorRt => Some("gpu"),
        EpKind::OpenVino => Some("openvino"),
        EpKind::Cpu => None,
    }
}

/// Where to load `libonnxruntime.so` from: `--ort-lib`, else `ORT_DYLIB_PATH`, else the build
/// `tools/setup` fetched for the preferred provider (`.cache/onnxruntime/{gpu,openvino}`), else
/// the default CPU build (`.cache/onnxruntime/libonnxruntime.so`), searched next to the
/// binary's project (`target/<profile>/../..`) and in the current directory; else the system
/// library path.
pub fn resolve_ort_lib(explicit: Option<&Path>, eps: &EpChoice) -> PathBuf {
    if let Some(p) = explicit {
        return p.into();
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|s| !s.is_empty()) {
        return p.into();
    }
    let mut roots = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        roots.extend(dir.ancestors().skip(1).take(3).map(Path::to_path_buf));
    }
    roots.push(PathBuf::new());
    let variants: Vec<&str> = match eps {
        EpChoice::Auto => vec!["gpu", "openvino"],
        EpChoice::Listed(l) => l
            .first()
            .copied()
            .and_then(lib_variant)
            .into_iter()
            .collect(),
    };
    let mut candidates = Vec::new();
    for v in variants
        .iter()
        .map(|v| format!("{v}/"))
        .chain([String::new()])
    {
        for root in &roots {
            candidates.push(root.join(format!(".cache/onnxruntime/{v}libonnxruntime.so")));
        }
    }
    candidates
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("libonnxruntime.so"))
}

/// The loaded ONNX Runtime library and its environment. Create one per process.
pub struct Runtime {
    env: Environment,
    lib: PathBuf,
}

impl Runtime {
    pub fn load(lib: &Path) -> Result<Self> {
        if lib.components().count() > 1 && !lib.exists() {
            return Err(Error::OrtLibrary {
                path: lib.into(),
                reason: "file not found".into(),
            });
        }
        // ort resolves relative paths against the executable's directory; make ours absolute.
        let lib = &lib.canonicalize().unwrap_or_else(|_| lib.to_path_buf());
        let builder = ort::init_from(lib).map_err(|e| Error::OrtLibrary {
            path: lib.into(),
            reason: e.to_string(),
        })?;
        let env = builder
            .with_name("vidinfer")
            .build()
            .map_err(|e| Error::OrtLibrary {
                path: lib.into(),
                reason: e.to_string(),
            })?;
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
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            eps: EpChoice::Listed(vec![EpKind::Cpu]),
            ep_options: EpOptions::default(),
            intra_threads: 0,
            spinning: false,
            preprocess: PreprocessOverrides::default(),
        }
    }
}

/// The outputs of one batch: `boxes [batch, anchors, 4]`, `scores [batch, anchors, classes]`.
#[derive(Debug, Clone)]
pub struct BatchOutput {
    pub batch: usize,
    pub anchors: usize,
    pub classes: usize,
    pub boxes: Vec<f32>,
    pub scores: Vec<f32>,
}

impl BatchOutput {
    /// The raw outputs of image `i` of the batch.
    pub fn image(&self, i: usize) -> RawDetections<'_> {
        let (a, c) = (self.anchors, self.classes);
        RawDetections {
            boxes: &self.boxes[i * a * 4..(i + 1) * a * 4],
            scores: &self.scores[i * a * c..(i + 1) * a * c],
            classes: c,
        }
    }
}

/// An SSD detector session: input `[N, 3, H, W]` f32, outputs `boxes` and `scores`.
pub struct Detector {
    session: Session,
    ep: EpKind,
    input_name: String,
    spec: PreprocessSpec,
    /// `Some(n)` when the model's batch dimension is fixed.
    fixed_batch: Option<usize>,
    anchors: usize,
    classes: usize,
    fallbacks: Vec<(EpKind, String)>,
}

fn dims(outlet: &ort::value::Outlet) -> Option<Vec<i64>> {
    outlet
        .dtype()
        .tensor_shape()
        .map(|s| s.iter().copied().collect())
}

impl Detector {
    pub fn load(rt: &Runtime, model: &Path, cfg: &SessionConfig) -> Result<Self> {
        if !model.exists() {
            return Err(Error::ModelNotFound(model.into()));
        }
        if model.is_dir() {
            return Err(Error::ModelLoad {
                path: model.into(),
                reason: "is a directory".into(),
            });
        }
        let load_err = |reason: String| Error::ModelLoad {
            path: model.into(),
            reason,
        };
        let mut builder = Session::builder(&rt.env)
            .map_err(|e| load_err(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| load_err(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| load_err(e.to_string()))?
            .with_config_entry(
                "session.intra_op.allow_spinning",
                if cfg.spinning { "1" } else { "0" },
            )
            .map_err(|e| load_err(e.to_string()))?
            .with_config_entry(
                "session.inter_op.allow_spinning",
                if cfg.spinning { "1" } else { "0" },
            )
            .map_err(|e| load_err(e.to_string()))?;
        if cfg.intra_threads > 0 {
            builder = builder
                .with_intra_threads(cfg.intra_threads)
                .map_err(|e| load_err(e.to_string()))?;
        }

        let (order, explicit) = match &cfg.eps {
            EpChoice::Auto => (EpKind::auto_order(), false),
            EpChoice::Listed(l) => (l.clone(), true),
        };
        let mut fallbacks = Vec::new();
        let mut chosen = None;
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
        for kind in &order {
            match kind.dispatch(&cfg.ep_options).register(&mut builder) {
                Ok(()) => {
                    chosen = Some(*kind);
                    break;
                }
                Err(e) => {
                    let reason = format!("{}{}", first_line(&e.to_string()), kind.setup_hint());
                    if explicit && order.len() > 1 {
                        tracing::warn!(
                            "execution provider {kind} unavailable, trying the next one: {reason}"
                        );
                    } else {
                        tracing::info!("execution provider {kind} unavailable: {reason}");
                    }
                    fallbacks.push((*kind, reason));
                }
            }
        }
        let ep = match chosen {
            Some(k) => k,
            None => {
                let reason = fallbacks
                    .iter()
                    .map(|(k, r)| format!("{k}: {r}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let names = order.iter().map(|k| k.name()).collect::<Vec<_>>().join(",");
                return Err(Error::ExecutionProvider { ep: names, reason });
            }
        };
        if !explicit {
            tracing::info!("execution provider auto-selected: {ep}");
        }

        let session = builder
            .commit_from_file(model)
            .map_err(|e| load_err(first_line(&e.to_string())))?;
        let sig_err = |reason: String| Error::ModelSignature {
            path: model.into(),
            reason,
        };

        let [input] = session.inputs() else {
            return Err(sig_err(format!(
                "expected exactly one input, found {}",
                session.inputs().len()
            )));
        };
        let input_name = input.name().to_string();
        let in_dims = dims(input).ok_or_else(|| sig_err("the input is not a tensor".into()))?;
        if input.dtype().tensor_type() != Some(ort::value::TensorElementType::Float32) {
            return Err(sig_err(format!("input '{input_name}' must be float32")));
        }
        let batch_of = |n: i64| if n > 0 { Some(n as usize) } else { None };
        let (fixed_batch, h, w, layout) = match in_dims.as_slice() {
            [n, 3, h, w] if *h > 0 && *w > 0 => (batch_of(*n), *h as u32, *w as u32, Layout::Nchw),
            [n, h, w, 3] if *h > 0 && *w > 0 => (batch_of(*n), *h as u32, *w as u32, Layout::Nhwc),
            other => return Err(sig_err(format!("input '{input_name}' has shape {other:?}; expected [N, 3, H, W] or [N, H, W, 3] with fixed H and W"))),
        };
        let find = |name: &str| session.outputs().iter().find(|o| o.name() == name);
        let names: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        let (Some(boxes), Some(scores)) = (find("boxes"), find("scores")) else {
            return Err(sig_err(format!("outputs are {names:?}; expected 'boxes' [N, anchors, 4] and 'scores' [N, anchors, classes]")));
        };
        let (bd, sd) = (
            dims(boxes).unwrap_or_default(),
            dims(scores).unwrap_or_default(),
        );
        let (anchors, classes) = match (bd.as_slice(), sd.as_slice()) {
            ([_, a, 4], [_, a2, c]) if a == a2 && *a > 0 && *c > 1 => (*a as usize, *c as usize),
            _ => return Err(sig_err(format!("output shapes boxes {bd:?} and scores {sd:?} do not fit [N, anchors, 4] and [N, anchors, classes]"))),
        };
        let spec = preprocess_spec(&session, w, h, layout, &cfg.preprocess).map_err(sig_err)?;
        Ok(Detector {
            session,
            ep,
            input_name,
            spec,
            fixed_batch,
            anchors,
            classes,
            fallbacks,
        })
    }

    /// The execution provider that registered and runs this session.
    pub fn ep(&self) -> EpKind {
        self.ep
    }

    /// Providers tried before [`Detector::ep`] and why each failed.
    pub fn fallbacks(&self) -> &[(EpKind, String)] {
        &self.fallbacks
    }

    pub fn spec(&self) -> &PreprocessSpec {
        &self.spec
    }

    pub fn fixed_batch(&self) -> Option<usize> {
        self.fixed_batch
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Runs `batch` images held in `input` (`batch * spec.slot_len()` values, in the spec's layout).
    pub fn run(&mut self, input: &[f32], batch: usize) -> Result<BatchOutput> {
        let (h, w) = (self.spec.height as usize, self.spec.width as usize);
        let need = batch * self.spec.slot_len();
        if input.len() < need || batch == 0 {
            return Err(Error::Inference(format!(
                "batch of {batch} needs {need} input values, got {}",
                input.len()
            )));
        }
        let shape = match self.spec.layout {
            Layout::Nchw => [batch, 3, h, w],
            Layout::Nhwc => [batch, h, w, 3],
        };
        let tensor = TensorRef::from_array_view((shape, &input[..need]))
            .map_err(|e| Error::Inference(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| Error::Inference(e.to_string()))?;
        let take = |name: &str, per: usize| -> Result<Vec<f32>> {
            let (shape, data) = outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(|e| Error::Inference(e.to_string()))?;
            if data.len() != batch * per {
                return Err(Error::Inference(format!(
                    "output '{name}' has shape {shape:?}, expected {batch} × {per} values"
                )));
            }
            Ok(data.to_vec())
        };
        let boxes = take("boxes", self.anchors * 4)?;
        let scores = take("scores", self.anchors * self.classes)?;
        Ok(BatchOutput {
            batch,
            anchors: self.anchors,
            classes: self.classes,
            boxes,
            scores,
        })
    }
}

/// The preprocessing the model wants: size and layout from its input, the rest from its
/// metadata, then the user's overrides.
fn preprocess_spec(
    session: &Session,
    w: u32,
    h: u32,
    layout: Layout,
    o: &PreprocessOverrides,
) -> std::result::Result<PreprocessSpec, String> {
    let meta = session.metadata().ok();
    let get = |k: &str| meta.as_ref().and_then(|m| m.custom(k));
    let mut spec = PreprocessSpec {
        width: w,
        height: h,
        layout,
        ..PreprocessSpec::default()
    };
    if let Some(v) = get("preprocess.resize") {
        spec.mode = parse_resize(&v).map_err(|e| format!("metadata preprocess.resize: {e}"))?;
    }
    if let Some(v) = get("preprocess.mean") {
        spec.mean = parse_mean(&v).map_err(|e| format!("metadata preprocess.mean: {e}"))?;
    }
    if let Some(v) = get("preprocess.scale") {
        spec.scale = v
            .trim()
            .parse()
            .map_err(|_| format!("metadata preprocess.scale: '{v}' is not a number"))?;
    }
    if let Some(v) = get("preprocess.channel_order") {
        spec.swap_rb = parse_channel_order(&v)
            .map_err(|e| format!("metadata preprocess.channel_order: {e}"))?;
    }
    spec.mode = o.mode.unwrap_or(spec.mode);
    spec.mean = o.mean.unwrap_or(spec.mean);
    spec.scale = o.scale.unwrap_or(spec.scale);
    spec.swap_rb = o.swap_rb.unwrap_or(spec.swap_rb);
    Ok(spec)
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}
