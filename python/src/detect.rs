//! `detect(...)`: the pipeline over files or streams on its own threads, its results read by
//! a Python iterator from a bounded channel. The GIL is released while the iterator waits,
//! and it wakes every 50 ms to let Python run its signal handlers (Ctrl-C raises
//! `KeyboardInterrupt` and stops the run). Closing the iterator, or dropping it (breaking
//! out of a `for` loop), cancels the run and joins its threads before returning.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::Duration,
};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use pyo3::{exceptions::PyValueError, prelude::*};
use vidinfer::{
    decode::DecodeOptions,
    infer::Detector as Session,
    labels::Labels,
    pipeline::{self, FrameSelection, PipelineConfig, Quiet, RunReport},
    preprocess::Kernel,
    sink::{result_channel, ResultEvent, SinkConfig, SinkKinds},
    track::{CountLine, LineCounterConfig, TrackerConfig, TrackingConfig, Zone, ZoneConfig},
    Error,
};

use crate::{options::ModelArgs, results::frame_result, InputError};

/// A run in progress: its results, its cancel flag, its thread.
struct Running {
    rx: Receiver<ResultEvent>,
    cancel: Arc<AtomicBool>,
    thread: JoinHandle<Result<RunReport, Error>>,
}

impl Running {
    /// Cancels the run, stops reading its results (a sink waiting to send gives up at once)
    /// and waits for every thread of it to end.
    fn stop(self) {
        self.cancel.store(true, Ordering::SeqCst);
        drop(self.rx);
        let _ = self.thread.join();
    }
}

/// The iterator `detect` returns: a `FrameResult` per frame, in frame order per input.
#[pyclass(module = "vidinfer")]
pub struct DetectIter {
    run: Mutex<Option<Running>>,
    inputs: Vec<String>,
    labels: Arc<Labels>,
}

impl DetectIter {
    fn take(&self) -> Option<Running> {
        self.run.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    fn receiver(&self) -> Option<Receiver<ResultEvent>> {
        let held = self.run.lock().unwrap_or_else(|p| p.into_inner());
        held.as_ref().map(|r| r.rx.clone())
    }

    /// The run has sent everything: its own error (inference failed, a stage died), if any.
    fn finish(&self, py: Python<'_>) -> PyResult<()> {
        let Some(run) = self.take() else {
            return Ok(());
        };
        let done = py.detach(|| run.thread.join());
        match done {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(crate::py_err(&e)),
            Err(_) => Err(crate::VidinferError::new_err(
                "the pipeline thread panicked",
            )),
        }
    }
}

#[pymethods]
impl DetectIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<crate::results::FrameResult>> {
        loop {
            let Some(rx) = self.receiver() else {
                return Ok(None);
            };
            match py.detach(|| rx.recv_timeout(Duration::from_millis(50))) {
                Ok(ResultEvent::Frame(f)) => {
                    let name = self.inputs[f.input].clone();
                    return frame_result(py, name, *f, &self.labels).map(Some);
                }
                Ok(ResultEvent::InputEnded {
                    error: Some(fail), ..
                }) => return Err(InputError::new_err(fail.message)),
                Ok(ResultEvent::InputEnded { .. }) => {}
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        self.close(py);
                        return Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.finish(py)?;
                    return Ok(None);
                }
            }
        }
    }

    /// Stops the run and frees its threads (also done when the iterator is dropped).
    fn close(&self, py: Python<'_>) {
        if let Some(run) = self.take() {
            py.detach(|| run.stop());
        }
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<Bound<'_, PyAny>>,
        _v: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> bool {
        self.close(py);
        false
    }
}

impl Drop for DetectIter {
    fn drop(&mut self) {
        if let Some(run) = self.take() {
            run.stop();
        }
    }
}

/// `str`, `os.PathLike` or a sequence of them.
fn input_list(inputs: &Bound<'_, PyAny>) -> PyResult<Vec<PathBuf>> {
    if let Ok(one) = inputs.extract::<PathBuf>() {
        return Ok(vec![one]);
    }
    let many: Vec<PathBuf> = inputs.extract().map_err(|_| {
        PyValueError::new_err("inputs: a path (str or os.PathLike) or a list of paths")
    })?;
    if many.is_empty() {
        return Err(PyValueError::new_err("inputs: no input given"));
    }
    Ok(many)
}

/// `(x1, y1, x2, y2)` or `(x1, y1, x2, y2, name)` in frame pixels.
fn count_line(i: usize, l: &Bound<'_, PyAny>) -> PyResult<CountLine> {
    let bad =
        || PyValueError::new_err("count_lines: each is (x1, y1, x2, y2) or (x1, y1, x2, y2, name)");
    let (a, b, name) = if let Ok((x1, y1, x2, y2)) = l.extract::<(f32, f32, f32, f32)>() {
        ((x1, y1), (x2, y2), format!("line{}", i + 1))
    } else {
        let (x1, y1, x2, y2, n) = l
            .extract::<(f32, f32, f32, f32, String)>()
            .map_err(|_| bad())?;
        ((x1, y1), (x2, y2), n)
    };
    Ok(CountLine { name, a, b })
}

/// Tracking as the command line's `--track` sets it by default (tracks lost after 1 s, zones'
/// inertia 0.3 s), with these lines and zones (zones count every class).
fn tracking(
    conf: f32,
    lines: &[Bound<'_, PyAny>],
    zones: HashMap<String, Vec<(f32, f32)>>,
) -> PyResult<TrackingConfig> {
    let lines = (lines.iter().enumerate())
        .map(|(i, l)| count_line(i, l))
        .collect::<PyResult<Vec<_>>>()?;
    let mut names: Vec<&String> = zones.keys().collect();
    names.sort();
    let zones = (names.into_iter())
        .map(|n| Zone::new(n, &zones[n], Vec::new()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PyValueError::new_err(format!("zones: {e}")))?;
    Ok(TrackingConfig {
        tracker: TrackerConfig {
            lost_s: 1.0,
            min_confirm_s: 0.0,
            ..TrackerConfig::for_conf(conf)
        },
        lines,
        counter: LineCounterConfig {
            hand_over_s: 1.0,
            ..LineCounterConfig::default()
        },
        zones: ZoneConfig {
            zones,
            inertia_s: 0.3,
        },
    })
}

/// The run's own settings (the model's are resolved by `ModelArgs`).
struct RunSettings {
    batch: usize,
    streams: usize,
    kernel: Kernel,
    stride: u64,
    max_frames: Option<u64>,
    queue: usize,
}

impl RunSettings {
    /// The pipeline as the CLI sets it up, its results sent to `results` and no file written
    /// (`out_dir` only holds the pipeline's bookkeeping); decoding stops when `cancel` is set.
    fn config(
        &self,
        out_dir: &std::path::Path,
        (labels, results): (Arc<Labels>, vidinfer::sink::ResultSender),
        cancel: &Arc<AtomicBool>,
    ) -> PipelineConfig {
        let defaults = PipelineConfig::default();
        PipelineConfig {
            batch: self.batch,
            streams: self.streams,
            decode: DecodeOptions {
                threads: (vidinfer::sys::cores() / 4).clamp(1, 4),
                interrupt: Some(cancel.clone()),
                ..DecodeOptions::default()
            },
            kernel: self.kernel,
            sinks: SinkConfig {
                out_dir: out_dir.to_path_buf(),
                kinds: SinkKinds::default(),
                labels,
                results: Some(results),
                ..defaults.sinks.clone()
            },
            queue_capacity: self.queue,
            force: true,
            max_frames: self.max_frames,
            selection: FrameSelection {
                stride: self.stride,
                ..FrameSelection::default()
            },
            ..defaults
        }
    }
}

/// Runs the pipeline on its own thread; its scratch folder is removed when it ends.
fn start(
    cfg: PipelineConfig,
    detectors: Vec<Session>,
    cancel: Arc<AtomicBool>,
    out_dir: PathBuf,
) -> PyResult<JoinHandle<Result<RunReport, Error>>> {
    std::thread::Builder::new()
        .name("vidinfer-run".into())
        .spawn(move || {
            let report = pipeline::run(&cfg, detectors, cancel, &Quiet);
            let _ = std::fs::remove_dir_all(&out_dir);
            report
        })
        .map_err(|e| crate::VidinferError::new_err(format!("cannot start the pipeline: {e}")))
}

/// A private folder for the pipeline's bookkeeping (it writes no output file here).
fn scratch_dir() -> PathBuf {
    static RUNS: AtomicU64 = AtomicU64::new(0);
    let n = RUNS.fetch_add(1, Ordering::SeqCst);
    std::env::temp_dir().join(format!("vidinfer-python-{}-{n}", std::process::id()))
}

/// The preprocessing kernel named by `preprocess`, once the values `detect` cannot run with
/// are refused.
fn checked(
    preprocess: &str,
    stride: u64,
    queue: usize,
    track: bool,
    counting: bool,
) -> PyResult<Kernel> {
    let kernel: Kernel = preprocess
        .parse()
        .map_err(|e| PyValueError::new_err(format!("preprocess: {e}")))?;
    if stride == 0 || queue == 0 {
        return Err(PyValueError::new_err("stride and queue: at least 1"));
    }
    if counting && !track {
        return Err(PyValueError::new_err(
            "count_lines and zones need track=True",
        ));
    }
    Ok(kernel)
}

#[pyfunction]
#[pyo3(signature = (
    inputs, *, model=None, ep="cpu", precision="fp32", batch=1, workers=0, threads=0,
    streams=0, conf=0.5, iou=0.6, max_detections=100, stride=1, max_frames=None, track=false,
    count_lines=Vec::new(), zones=HashMap::new(), frames=false, preprocess="fused", queue=8,
    labels=None, ort_lib=None
))]
#[allow(clippy::too_many_arguments)]
pub fn detect(
    py: Python<'_>,
    inputs: &Bound<'_, PyAny>,
    model: Option<PathBuf>,
    ep: &str,
    precision: &str,
    batch: usize,
    workers: usize,
    threads: usize,
    streams: usize,
    conf: f32,
    iou: f32,
    max_detections: usize,
    stride: u64,
    max_frames: Option<u64>,
    track: bool,
    count_lines: Vec<Bound<'_, PyAny>>,
    zones: HashMap<String, Vec<(f32, f32)>>,
    frames: bool,
    preprocess: &str,
    queue: usize,
    labels: Option<PathBuf>,
    ort_lib: Option<PathBuf>,
) -> PyResult<DetectIter> {
    let inputs = input_list(inputs)?;
    let counting = !count_lines.is_empty() || !zones.is_empty();
    let kernel = checked(preprocess, stride, queue, track, counting)?;
    let choice = ModelArgs {
        model,
        labels,
        ep,
        precision,
        batch,
        workers,
        threads,
        conf,
        iou,
        max_detections,
    }
    .resolve(crate::bundled_models().as_deref())?;
    let tracking = track
        .then(|| tracking(conf, &count_lines, zones))
        .transpose()?;
    let detectors = py
        .detach(|| {
            let rt = crate::runtime(ort_lib.as_deref(), &choice.eps)?;
            Session::load_workers(&rt, &choice.model, &choice.session, choice.workers)
        })
        .map_err(|e| crate::py_err(&e))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let labels = Arc::new(choice.labels);
    let (tx, rx) = result_channel(queue, frames);
    let out_dir = scratch_dir();
    let run = RunSettings {
        batch,
        streams: if streams > 0 {
            streams
        } else {
            choice.eps.default_streams()
        },
        kernel,
        stride,
        max_frames,
        queue,
    };
    let cfg = PipelineConfig {
        inputs: inputs.clone(),
        post: choice.post,
        tracking,
        ..run.config(&out_dir, (labels.clone(), tx), &cancel)
    };
    let thread = start(cfg, detectors, cancel.clone(), out_dir)?;
    Ok(DetectIter {
        run: Mutex::new(Some(Running { rx, cancel, thread })),
        inputs: inputs.iter().map(|p| p.display().to_string()).collect(),
        labels,
    })
}
