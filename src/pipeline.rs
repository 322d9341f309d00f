//! The detect pipeline: `decode → preprocess → batch+infer → postprocess → sinks`, one
//! thread per stage, joined by bounded [`channel`](crate::channel)s. Each stage handles
//! items strictly in arrival order, so results leave in frame order per input and nothing
//! is dropped. Per-input `Begin`/`End` markers travel through the same queues as frames.

use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    thread,
    time::{Duration, Instant},
};

use ffmpeg_next::frame;

use crate::{
    channel::{self, QueueReport, Rx, StageReport, StageStats, Tx},
    decode::{DecodeIssues, DecodeOptions, Decoder, RgbConverter, VideoInfo},
    error::{Error, Result},
    infer::{BatchOutput, Detector, EpKind},
    postprocess::{Detection, FrameInModel, PostprocessConfig, Postprocessor},
    preprocess::{
        fused::{Chroma, FusedResizer, Matrix, Range, YuvImage},
        Kernel, PreprocessSpec, Resizer, RgbImage,
    },
    sink::{open_sinks, FrameResult, Sink, SinkConfig, SinkInput},
};

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub inputs: Vec<PathBuf>,
    /// Output file stem per input (same length as `inputs`); empty: derived with [`output_stems`].
    pub stems: Vec<String>,
    /// Images per inference call.
    pub batch: usize,
    /// Pad a short last batch with blank images so the session always sees one shape.
    pub pad_batches: bool,
    /// Flush a partial batch when no new frame arrived for this long.
    pub max_wait: Option<Duration>,
    pub decode: DecodeOptions,
    /// The preprocessing kernel.
    pub kernel: Kernel,
    /// Stop each input after this many frames.
    pub max_frames: Option<u64>,
    pub post: PostprocessConfig,
    pub sinks: SinkConfig,
    /// Capacity of each inter-stage queue.
    pub queue_capacity: usize,
    pub progress: bool,
    /// What produced the outputs (model, thresholds, preprocessing...), recorded in each
    /// `<name>.done` marker; a rerun skips an input only if its marker records the same.
    pub fingerprint: String,
    /// Testing aid: every stage sleeps a random 0..=jitter before handling each item, to
    /// shake out ordering and loss bugs. `None` in normal runs.
    pub jitter: Option<Duration>,
    /// Release decoded frames no faster than their timestamps (like `ffmpeg -re`): a file
    /// behaves like the live stream it was recorded from, e.g. to try `--max-wait-ms`.
    pub realtime: bool,
}

/// What happened to one input.
#[derive(Debug)]
pub struct InputReport {
    pub path: PathBuf,
    pub frames: u64,
    /// Frames the container says it holds (capped by `max_frames`), when it says.
    pub expected_frames: Option<u64>,
    pub detections: u64,
    pub outputs: Vec<PathBuf>,
    pub issues: DecodeIssues,
    pub interrupted: bool,
    pub error: Option<Error>,
}

#[derive(Debug)]
pub struct RunReport {
    pub inputs: Vec<InputReport>,
    pub ep: EpKind,
    /// Inference workers that ran.
    pub workers: usize,
    pub batch: usize,
    pub elapsed: Duration,
    pub queues: Vec<QueueReport>,
    pub stages: Vec<StageReport>,
    pub interrupted: bool,
    /// Per frame: milliseconds from the end of its decode to the end of its sinks.
    pub frame_latency_ms: Vec<f64>,
    /// Per inference call: milliseconds the session ran.
    pub batch_ms: Vec<f64>,
    /// CPU time all threads of the process used during the run, in seconds (if known).
    pub cpu_s: Option<f64>,
}

impl RunReport {
    pub fn frames(&self) -> u64 {
        self.inputs.iter().map(|i| i.frames).sum()
    }
    pub fn detections(&self) -> u64 {
        self.inputs.iter().map(|i| i.detections).sum()
    }
    pub fn fps(&self) -> f64 {
        self.frames() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    pub fn failed(&self) -> usize {
        self.inputs.iter().filter(|i| i.error.is_some()).count()
    }
    /// CPU milliseconds the whole process spent per frame (all stages and their helpers).
    pub fn cpu_ms_per_frame(&self) -> Option<f64> {
        self.cpu_s
            .filter(|_| self.frames() > 0)
            .map(|s| s * 1e3 / self.frames() as f64)
    }
}

#[derive(Debug, Clone, Copy)]
struct FrameMeta {
    input: usize,
    index: u64,
    pts: f64,
    width: u32,
    height: u32,
    decoded_at: Instant,
}

/// A tiny xorshift generator: enough randomness for test jitter without a dependency.
struct Jitter {
    max_us: u64,
    state: u64,
}

impl Jitter {
    fn new(max: Option<Duration>, seed: u64) -> Option<Self> {
        max.map(|m| Jitter {
            max_us: m.as_micros() as u64,
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        })
    }

    fn sleep(this: &mut Option<Self>) {
        if let Some(j) = this {
            j.state ^= j.state << 13;
            j.state ^= j.state >> 7;
            j.state ^= j.state << 17;
            thread::sleep(Duration::from_micros(j.state % (j.max_us + 1)));
        }
    }
}

enum Item<T> {
    Begin {
        input: usize,
        info: VideoInfo,
    },
    Frame(T),
    End {
        input: usize,
        issues: DecodeIssues,
        interrupted: bool,
        error: Option<Error>,
    },
}

struct Decoded {
    meta: FrameMeta,
    picture: frame::Video,
}

/// A frame whose tensor has been written into its [`Batch`].
struct Prepared {
    meta: FrameMeta,
    picture: Option<frame::Video>,
}

struct Inferred {
    meta: FrameMeta,
    output: Arc<BatchOutput>,
    position: usize,
    picture: Option<frame::Video>,
}

/// One batch's results, numbered so that postprocessing can restore the order in which
/// several inference workers took the batches.
struct InferredBatch {
    seq: u64,
    items: Vec<Item<Inferred>>,
}

struct Detected {
    meta: FrameMeta,
    detections: Vec<Detection>,
    picture: Option<frame::Video>,
}

/// Output file stems for a list of inputs: the file stem, with `-2`, `-3`, ... for repeats, so
/// `a/x.mp4` and `b/x.mp4` do not overwrite each other. Computed over the whole (sorted)
/// manifest, the stems are the same in every shard.
pub fn output_stems(all: &[PathBuf]) -> Vec<String> {
    all.iter()
        .enumerate()
        .map(|(i, p)| stem_of(p, i, all))
        .collect()
}

/// The marker written once every output of an input is in place.
pub fn done_marker(out_dir: &std::path::Path, stem: &str) -> PathBuf {
    out_dir.join(format!("{stem}.done"))
}

/// True when `stem` was completed in `out_dir` by a run with the same `fingerprint`
/// (so its outputs are what this run would write).
pub fn is_done(out_dir: &std::path::Path, stem: &str, fingerprint: &str) -> bool {
    std::fs::read_to_string(done_marker(out_dir, stem))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|v| v["fingerprint"] == fingerprint)
}

fn stem_of(path: &std::path::Path, index: usize, all: &[PathBuf]) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("input{index}"));
    // Two inputs with the same stem (a/x.mp4, b/x.mp4) get distinct outputs.
    let clashes = all
        .iter()
        .take(index)
        .filter(|p| p.file_stem() == path.file_stem())
        .count();
    if clashes == 0 {
        stem
    } else {
        format!("{stem}-{}", clashes + 1)
    }
}

/// Runs detection over every input. Per-input failures are reported in the result;
/// an `Err` means the run as a whole failed (inference error, a stage died).
/// Runs the pipeline over `cfg.inputs` with one inference worker per detector (sessions of the
/// same model: batches go to whichever worker is free, and results are put back in order).
pub fn run(
    cfg: &PipelineConfig,
    detectors: Vec<Detector>,
    cancel: Arc<AtomicBool>,
) -> Result<RunReport> {
    let start = Instant::now();
    let cpu_start = crate::sys::process_cpu_time();
    let Some(first) = detectors.first() else {
        return Err(Error::Config(
            "the pipeline needs at least one detector".into(),
        ));
    };
    let spec = *first.spec();
    let ep = first.ep();
    let fixed_batch = first.fixed_batch();
    let workers = detectors.len();
    let batch = match fixed_batch {
        Some(n) if n != cfg.batch => {
            tracing::warn!(
                "the model has a fixed batch size of {n}; using batch {n} instead of {}",
                cfg.batch
            );
            n
        }
        _ => cfg.batch.max(1),
    };
    let cap = cfg.queue_capacity.max(1);
    let (dec_tx, dec_rx, q1) = channel::bounded::<Item<Decoded>>("decode→preprocess", cap);
    // Batches, not frames: each holds up to `batch` tensors, so a few keep the model fed.
    let batch_cap = cap.div_ceil(batch).max(2);
    let (pre_tx, pre_rx, q2) = channel::bounded::<Batch>("preprocess→infer (batches)", batch_cap);
    let (inf_tx, inf_rx, q3) =
        channel::bounded::<InferredBatch>("infer→postprocess (batches)", batch_cap.max(workers));
    let (post_tx, post_rx, q4) =
        channel::bounded::<Item<Detected>>("postprocess→sinks", cap.max(batch));
    // Batch tensors go back from inference to preprocessing for reuse.
    let (pool_tx, pool_rx) = crossbeam_channel::bounded::<Vec<f32>>(batch_cap + workers + 1);
    // Set by an inference worker that failed, so the others stop too.
    let abort = AtomicBool::new(false);
    // A worker takes a token before each batch and postprocessing returns it once the batch
    // is released in order: however unevenly the workers run, at most `in_flight` batches are
    // between the preprocess queue and the sinks' queue, so the re-ordering buffer is bounded.
    let in_flight = batch_cap + workers;
    let (token_tx, token_rx) = crossbeam_channel::bounded::<()>(in_flight);
    for _ in 0..in_flight {
        let _ = token_tx.try_send(());
    }
    let batching = Batching {
        size: batch,
        pad: cfg.pad_batches || fixed_batch.is_some(),
        max_wait: cfg.max_wait,
    };
    let stages = [
        StageStats::new("decode"),
        StageStats::new("preprocess"),
        StageStats::new("infer"),
        StageStats::new("postprocess"),
        StageStats::new("sinks"),
    ];

    let keep_pictures = cfg.sinks.kinds.needs_pictures();
    let progress = make_progress(cfg);

    thread::scope(|s| {
        let st = &stages;
        let decode = {
            let cancel = cancel.clone();
            thread::Builder::new()
                .name("decode".into())
                .spawn_scoped(s, move || {
                    let r = decode_stage(cfg, dec_tx, &cancel, &st[0]);
                    st[0].record_thread_cpu();
                    r
                })
                .map_err(|_| Error::StageDied("decode"))?
        };
        let pre = thread::Builder::new()
            .name("preprocess".into())
            .spawn_scoped(s, move || {
                let r = preprocess_stage(
                    cfg.kernel,
                    spec,
                    batching,
                    keep_pictures,
                    Jitter::new(cfg.jitter, 2),
                    dec_rx,
                    pre_tx,
                    pool_rx,
                    &st[1],
                );
                st[1].record_thread_cpu();
                r
            })
            .map_err(|_| Error::StageDied("preprocess"))?;
        let mut infer_workers = Vec::with_capacity(workers);
        for (i, detector) in detectors.into_iter().enumerate() {
            let links = WorkerLinks {
                rx: pre_rx.clone(),
                tx: inf_tx.clone(),
                pool: pool_tx.clone(),
                tokens: token_rx.clone(),
                abort: &abort,
            };
            let h = thread::Builder::new()
                .name(if workers == 1 {
                    "infer".into()
                } else {
                    format!("infer-{i}")
                })
                .spawn_scoped(s, move || {
                    let r = infer_stage(
                        detector,
                        links,
                        &st[2],
                        Jitter::new(cfg.jitter, 3 + 10 * i as u64),
                    );
                    st[2].record_thread_cpu();
                    r
                })
                .map_err(|_| Error::StageDied("infer"))?;
            infer_workers.push(h);
        }
        // The workers hold their own ends; the queues close when the last one stops.
        drop((pre_rx, inf_tx, pool_tx, token_rx));
        let post = thread::Builder::new()
            .name("postprocess".into())
            .spawn_scoped(s, move || {
                let r = postprocess_stage(
                    cfg.post,
                    spec,
                    Jitter::new(cfg.jitter, 4),
                    inf_rx,
                    post_tx,
                    token_tx,
                    &st[3],
                );
                st[3].record_thread_cpu();
                r
            })
            .map_err(|_| Error::StageDied("postprocess"))?;
        let progress = progress.as_ref();
        let sinks = thread::Builder::new()
            .name("sinks".into())
            .spawn_scoped(s, move || {
                let mut frame_latency_ms = Vec::new();
                let inputs = sink_stage(cfg, post_rx, progress, &st[4], &mut frame_latency_ms);
                st[4].record_thread_cpu();
                (inputs, frame_latency_ms)
            })
            .map_err(|_| Error::StageDied("sinks"))?;
        let (inputs, frame_latency_ms) = sinks.join().map_err(|_| Error::StageDied("sinks"))?;

        let join = |h: thread::ScopedJoinHandle<'_, Result<()>>, name: &'static str| {
            h.join().unwrap_or(Err(Error::StageDied(name)))
        };
        // The first error upstream explains the rest; report that one.
        let results = [join(decode, "decode"), join(pre, "preprocess")];
        let mut batch_ms = Ok(Vec::new());
        for h in infer_workers {
            let r = h.join().unwrap_or(Err(Error::StageDied("infer")));
            batch_ms = match (batch_ms, r) {
                (Ok(mut all), Ok(ms)) => {
                    all.extend(ms);
                    Ok(all)
                }
                (Err(e), _) | (Ok(_), Err(e)) => Err(e),
            };
        }
        let post_result = join(post, "postprocess");
        if let Some(p) = progress {
            p.finish_and_clear();
        }
        for r in results {
            r?;
        }
        let batch_ms = batch_ms?;
        post_result?;
        let interrupted = cancel.load(Ordering::SeqCst);
        Ok(RunReport {
            inputs,
            ep,
            workers,
            batch,
            elapsed: start.elapsed(),
            queues: [q1, q2, q3, q4].iter().map(|q| q.report()).collect(),
            stages: stages.iter().map(|s| s.report()).collect(),
            interrupted,
            frame_latency_ms,
            batch_ms,
            cpu_s: cpu_start
                .zip(crate::sys::process_cpu_time())
                .map(|(a, b)| (b - a).as_secs_f64()),
        })
    })
}

fn make_progress(cfg: &PipelineConfig) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !cfg.progress || !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(0);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} frames ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    Some(pb)
}

fn decode_stage(
    cfg: &PipelineConfig,
    tx: Tx<Item<Decoded>>,
    cancel: &AtomicBool,
    stats: &StageStats,
) -> Result<()> {
    let mut jitter = Jitter::new(cfg.jitter, 1);
    for (input, path) in cfg.inputs.iter().enumerate() {
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        let t0 = Instant::now();
        let mut dec = match Decoder::open(path, &cfg.decode) {
            Ok(d) => d,
            Err(e) => {
                stats.record(0, t0.elapsed());
                if tx
                    .send(Item::End {
                        input,
                        issues: DecodeIssues::default(),
                        interrupted: false,
                        error: Some(e),
                    })
                    .is_err()
                {
                    return Ok(());
                }
                continue;
            }
        };
        let info = dec.info().clone();
        stats.record(0, t0.elapsed());
        if tx
            .send(Item::Begin {
                input,
                info: info.clone(),
            })
            .is_err()
        {
            return Ok(());
        }
        let mut error = None;
        let mut interrupted = false;
        let mut frames = 0u64;
        // (wall clock, timestamp) of the first frame, when pacing to the timestamps.
        let mut clock: Option<(Instant, f64)> = None;
        loop {
            if cancel.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            if cfg.max_frames.is_some_and(|m| frames >= m) {
                break;
            }
            let t0 = Instant::now();
            let next = dec.next_frame();
            stats.record(1, t0.elapsed());
            match next {
                Ok(Some(f)) => {
                    frames += 1;
                    if cfg.realtime && !wait_for_timestamp(&mut clock, f.pts_seconds, cancel) {
                        interrupted = true;
                        break;
                    }
                    let meta = FrameMeta {
                        input,
                        index: f.index,
                        pts: f.pts_seconds,
                        width: f.picture.width(),
                        height: f.picture.height(),
                        decoded_at: Instant::now(),
                    };
                    Jitter::sleep(&mut jitter);
                    if tx
                        .send(Item::Frame(Decoded {
                            meta,
                            picture: f.picture,
                        }))
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        if frames == 0 && error.is_none() && !interrupted {
            let issues = dec.issues();
            let detail = if issues.corrupt_packets + issues.rejected_packets > 0 {
                format!(
                    " ({} corrupt and {} rejected packets)",
                    issues.corrupt_packets, issues.rejected_packets
                )
            } else {
                String::new()
            };
            error = Some(Error::NoFrames {
                path: path.clone(),
                detail,
            });
        }
        if tx
            .send(Item::End {
                input,
                issues: dec.issues().clone(),
                interrupted,
                error,
            })
            .is_err()
        {
            return Ok(());
        }
    }
    Ok(())
}

/// Sleeps until `pts` is due on the clock anchored at the first frame; false if cancelled
/// meanwhile. A jump of more than a second (a timestamp gap or reset) re-anchors the clock
/// instead of stalling the stream.
fn wait_for_timestamp(clock: &mut Option<(Instant, f64)>, pts: f64, cancel: &AtomicBool) -> bool {
    let (start, first) = *clock.get_or_insert((Instant::now(), pts));
    let due = pts - first;
    let now = start.elapsed().as_secs_f64();
    if !due.is_finite() || due - now > 1.0 || due < now - 1.0 {
        *clock = Some((Instant::now(), pts));
        return true;
    }
    let mut left = due - now;
    while left > 0.0 {
        if cancel.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(Duration::from_secs_f64(left.min(0.05)));
        left = due - start.elapsed().as_secs_f64();
    }
    true
}

/// A view of a decoded picture the fused kernel can read, if its format is 8-bit 4:2:0.
pub fn yuv_image(picture: &frame::Video) -> Option<YuvImage<'_>> {
    use ffmpeg_next::{color, format::Pixel};
    let (chroma, full) = match picture.format() {
        Pixel::YUV420P | Pixel::YUVJ420P => (
            Chroma::Planar {
                u: picture.data(1),
                v: picture.data(2),
                stride: picture.stride(1),
            },
            picture.format() == Pixel::YUVJ420P,
        ),
        Pixel::NV12 => (
            Chroma::Interleaved {
                uv: picture.data(1),
                stride: picture.stride(1),
            },
            false,
        ),
        _ => return None,
    };
    let range = if full || picture.color_range() == color::Range::JPEG {
        Range::Full
    } else {
        Range::Limited
    };
    let matrix = if picture.color_space() == color::Space::BT709 {
        Matrix::Bt709
    } else {
        Matrix::Bt601
    };
    Some(YuvImage {
        y: picture.data(0),
        y_stride: picture.stride(0),
        chroma,
        width: picture.width(),
        height: picture.height(),
        matrix,
        range,
    })
}

/// How the preprocess stage groups frames into model inputs.
#[derive(Debug, Clone, Copy)]
struct Batching {
    /// Images per inference call.
    size: usize,
    /// Fill a short batch with blank images up to `size`.
    pad: bool,
    /// Send a partial batch when no frame arrived for this long.
    max_wait: Option<Duration>,
}

/// One model input being filled: the tensor for `size` images and the frames (with the
/// markers between them, in arrival order) whose pixels are in it.
struct Batch {
    /// Position in the stream of batches (markers-only batches included).
    seq: u64,
    items: Vec<Item<Prepared>>,
    /// `run_n × slot_len` values once sent; empty for a batch of markers only.
    input: Vec<f32>,
    frames: usize,
    /// Images the model runs on: `frames`, or `size` when padding.
    run_n: usize,
}

#[allow(clippy::too_many_arguments)]
fn preprocess_stage(
    kernel: Kernel,
    spec: PreprocessSpec,
    batching: Batching,
    keep_pictures: bool,
    mut jitter: Option<Jitter>,
    rx: Rx<Item<Decoded>>,
    tx: Tx<Batch>,
    pool: crossbeam_channel::Receiver<Vec<f32>>,
    stats: &StageStats,
) -> Result<()> {
    let slot_len = spec.slot_len();
    let mut rgb = RgbConverter::default();
    let mut resizer: Option<Resizer> = None;
    let mut fused: Option<FusedResizer> = None;
    let empty = || Batch {
        seq: 0,
        items: Vec::new(),
        input: Vec::new(),
        frames: 0,
        run_n: 0,
    };
    let mut open = empty();
    let mut next_seq = 0u64;

    // Sends the open batch (padding it if asked); false when downstream has stopped.
    let mut send = |open: &mut Batch| -> bool {
        if open.items.is_empty() {
            return true;
        }
        let mut b = std::mem::replace(open, empty());
        b.seq = next_seq;
        next_seq += 1;
        if b.frames > 0 {
            b.run_n = if batching.pad {
                batching.size
            } else {
                b.frames
            };
            b.input[b.frames * slot_len..b.run_n * slot_len].fill(0.0);
            b.input.truncate(b.run_n * slot_len);
        }
        tx.send(b).is_ok()
    };

    loop {
        let next = match (batching.max_wait, open.frames > 0) {
            (Some(wait), true) => match rx.recv_timeout(wait) {
                Ok(v) => Some(v),
                // Nothing new within the wait: send what there is (live streams).
                Err(true) => {
                    if !send(&mut open) {
                        return Ok(());
                    }
                    continue;
                }
                Err(false) => None,
            },
            _ => rx.recv(),
        };
        let Some(item) = next else { break };
        Jitter::sleep(&mut jitter);
        match item {
            Item::Frame(d) => {
                let t0 = Instant::now();
                if open.frames == 0 {
                    // Each buffer comes back from inference; a new one only while the pool fills.
                    open.input = pool.try_recv().unwrap_or_default();
                    open.input.resize(batching.size * slot_len, 0.0);
                }
                let slot = &mut open.input[open.frames * slot_len..(open.frames + 1) * slot_len];
                let (w, h) = (d.meta.width, d.meta.height);
                match (kernel, yuv_image(&d.picture)) {
                    (Kernel::Fused, Some(yuv)) if spec.fused_supported() => {
                        let f = match &mut fused {
                            Some(f) if f.source_size() == (w, h) => f,
                            _ => fused.insert(FusedResizer::new(spec, w, h)),
                        };
                        f.run(&yuv, slot);
                    }
                    _ => {
                        let (data, stride) = rgb.convert(&d.picture)?;
                        let r = match &mut resizer {
                            Some(r) if r.source_size() == (w, h) => r,
                            _ => resizer.insert(Resizer::new(spec, w, h)),
                        };
                        r.run(
                            &RgbImage {
                                data,
                                width: w,
                                height: h,
                                stride,
                            },
                            slot,
                        );
                    }
                }
                open.items.push(Item::Frame(Prepared {
                    meta: d.meta,
                    picture: keep_pictures.then_some(d.picture),
                }));
                open.frames += 1;
                stats.record(1, t0.elapsed());
                if open.frames == batching.size && !send(&mut open) {
                    return Ok(());
                }
            }
            marker => {
                open.items.push(relabel(marker));
                // A marker with no frames waiting goes on at once (an input that failed to open
                // is reported without waiting for the next batch to fill).
                if open.frames == 0 && !send(&mut open) {
                    return Ok(());
                }
            }
        }
    }
    send(&mut open);
    Ok(())
}

/// What an inference worker shares with the other workers.
struct WorkerLinks<'a> {
    rx: Rx<Batch>,
    tx: Tx<InferredBatch>,
    /// Batch tensors back to preprocessing.
    pool: crossbeam_channel::Sender<Vec<f32>>,
    /// One per batch allowed in flight (see `run`).
    tokens: crossbeam_channel::Receiver<()>,
    /// Set by a worker that failed.
    abort: &'a AtomicBool,
}

/// One inference worker: takes the next batch from the shared queue, runs its own session,
/// and sends the batch's results on, numbered as the batch was.
fn infer_stage(
    mut detector: Detector,
    links: WorkerLinks<'_>,
    stats: &StageStats,
    mut jitter: Option<Jitter>,
) -> Result<Vec<f64>> {
    let WorkerLinks {
        rx,
        tx,
        pool,
        tokens,
        abort,
    } = links;
    let mut batch_ms = Vec::new();
    loop {
        // No token: postprocessing has stopped.
        if tokens.recv().is_err() {
            break;
        }
        let Some(b) = rx.recv() else { break };
        if abort.load(Ordering::SeqCst) {
            break;
        }
        Jitter::sleep(&mut jitter);
        let output = if b.frames > 0 {
            let t0 = Instant::now();
            let output = match detector.run(&b.input, b.run_n) {
                Ok(o) => Arc::new(o),
                Err(e) => {
                    abort.store(true, Ordering::SeqCst);
                    return Err(e);
                }
            };
            let took = t0.elapsed();
            batch_ms.push(took.as_secs_f64() * 1e3);
            stats.record(b.frames as u64, took);
            let _ = pool.try_send(b.input);
            Some(output)
        } else {
            None
        };
        let mut position = 0;
        let items = b
            .items
            .into_iter()
            .map(|it| match (it, &output) {
                (Item::Frame(p), Some(output)) => {
                    position += 1;
                    Item::Frame(Inferred {
                        meta: p.meta,
                        output: output.clone(),
                        position: position - 1,
                        picture: p.picture,
                    })
                }
                (Item::Frame(_), None) => unreachable!("a batch with frames has an output"),
                (other, _) => relabel(other),
            })
            .collect();
        if tx.send(InferredBatch { seq: b.seq, items }).is_err() {
            break;
        }
    }
    Ok(batch_ms)
}

/// Passes a marker through a stage whose frame type changes.
fn relabel<A, B>(item: Item<A>) -> Item<B> {
    match item {
        Item::Begin { input, info } => Item::Begin { input, info },
        Item::End {
            input,
            issues,
            interrupted,
            error,
        } => Item::End {
            input,
            issues,
            interrupted,
            error,
        },
        Item::Frame(_) => unreachable!("relabel is only called on markers"),
    }
}

fn postprocess_stage(
    cfg: PostprocessConfig,
    spec: PreprocessSpec,
    mut jitter: Option<Jitter>,
    rx: Rx<InferredBatch>,
    tx: Tx<Item<Detected>>,
    tokens: crossbeam_channel::Sender<()>,
    stats: &StageStats,
) -> Result<()> {
    let mut pp = Postprocessor::new(cfg);
    // Batches that overtook an earlier one (another worker finished first) wait here; the
    // tokens bound them to the batches allowed in flight.
    let mut waiting: std::collections::BTreeMap<u64, Vec<Item<Inferred>>> = Default::default();
    let mut next = 0u64;
    while let Some(b) = rx.recv() {
        waiting.insert(b.seq, b.items);
        while let Some(items) = waiting.remove(&next) {
            next += 1;
            // The batch is released: a worker may take another.
            let _ = tokens.try_send(());
            for item in items {
                Jitter::sleep(&mut jitter);
                let out = match item {
                    Item::Frame(f) => {
                        let t0 = Instant::now();
                        let detections = detect_in_frame(&mut pp, &spec, &f);
                        stats.record(1, t0.elapsed());
                        Item::Frame(Detected {
                            meta: f.meta,
                            detections,
                            picture: f.picture,
                        })
                    }
                    other => relabel(other),
                };
                if tx.send(out).is_err() {
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// Filter + NMS for one frame, with boxes mapped back through where the frame sat in the input.
fn detect_in_frame(pp: &mut Postprocessor, spec: &PreprocessSpec, f: &Inferred) -> Vec<Detection> {
    let p = spec.placement(f.meta.width, f.meta.height);
    let (sw, sh) = (spec.width as f32, spec.height as f32);
    let region = FrameInModel {
        x: p.x as f32 / sw,
        y: p.y as f32 / sh,
        width: p.width as f32 / sw,
        height: p.height as f32 / sh,
    };
    pp.run_in(
        f.output.image(f.position),
        f.meta.width,
        f.meta.height,
        &region,
    )
}

struct OpenInput {
    sinks: Vec<Box<dyn Sink>>,
    report: InputReport,
}

fn sink_stage(
    cfg: &PipelineConfig,
    rx: Rx<Item<Detected>>,
    progress: Option<&indicatif::ProgressBar>,
    stats: &StageStats,
    latency_ms: &mut Vec<f64>,
) -> Vec<InputReport> {
    let mut jitter = Jitter::new(cfg.jitter, 5);
    let mut reports: Vec<Option<InputReport>> = (0..cfg.inputs.len()).map(|_| None).collect();
    let mut current: Option<(usize, OpenInput)> = None;
    let blank = |i: usize| InputReport {
        path: cfg.inputs[i].clone(),
        frames: 0,
        expected_frames: None,
        detections: 0,
        outputs: Vec::new(),
        issues: DecodeIssues::default(),
        interrupted: false,
        error: None,
    };
    while let Some(item) = rx.recv() {
        Jitter::sleep(&mut jitter);
        let t0 = Instant::now();
        match item {
            Item::Begin { input, info } => {
                let stem = cfg
                    .stems
                    .get(input)
                    .cloned()
                    .unwrap_or_else(|| stem_of(&cfg.inputs[input], input, &cfg.inputs));
                let si = SinkInput {
                    stem,
                    width: info.width,
                    height: info.height,
                    frame_rate: info.frame_rate,
                };
                let mut report = blank(input);
                report.expected_frames = info
                    .frames_hint
                    .map(|h| cfg.max_frames.map_or(h, |m| h.min(m)));
                if let Some(p) = progress {
                    p.set_message(
                        cfg.inputs[input]
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    );
                    p.inc_length(
                        info.frames_hint
                            .map(|h| cfg.max_frames.map_or(h, |m| h.min(m)))
                            .unwrap_or(0),
                    );
                }
                let sinks = match open_sinks(&cfg.sinks, &si) {
                    Ok(s) => s,
                    Err(e) => {
                        report.error = Some(e);
                        Vec::new()
                    }
                };
                current = Some((input, OpenInput { sinks, report }));
            }
            Item::Frame(d) => {
                if let Some((id, open)) = current.as_mut().filter(|(id, _)| *id == d.meta.input) {
                    debug_assert_eq!(*id, d.meta.input);
                    if open.report.error.is_none() {
                        let fr = FrameResult {
                            index: d.meta.index,
                            pts_seconds: d.meta.pts,
                            width: d.meta.width,
                            height: d.meta.height,
                            detections: &d.detections,
                            picture: d.picture.as_ref(),
                        };
                        for s in open.sinks.iter_mut() {
                            if let Err(e) = s.write(&fr) {
                                open.report.error = Some(e);
                                break;
                            }
                        }
                    }
                    open.report.frames += 1;
                    open.report.detections += d.detections.len() as u64;
                }
                latency_ms.push(d.meta.decoded_at.elapsed().as_secs_f64() * 1e3);
                if let Some(p) = progress {
                    p.inc(1);
                }
            }
            Item::End {
                input,
                issues,
                interrupted,
                error,
            } => {
                let mut report = match current.take() {
                    Some((id, open)) if id == input => {
                        let mut report = open.report;
                        if report.error.is_none() && error.is_none() {
                            for s in open.sinks {
                                match s.finish() {
                                    Ok(paths) => report.outputs.extend(paths),
                                    Err(e) => {
                                        report.error = Some(e);
                                        break;
                                    }
                                }
                            }
                        }
                        // Sinks not finished are dropped here, removing their partial files.
                        if report.error.is_none() && error.is_none() && !interrupted {
                            let stem =
                                cfg.stems.get(input).cloned().unwrap_or_else(|| {
                                    stem_of(&cfg.inputs[input], input, &cfg.inputs)
                                });
                            if let Err(e) = write_done_marker(
                                &cfg.sinks.out_dir,
                                &stem,
                                &cfg.fingerprint,
                                &report,
                            ) {
                                report.error = Some(e);
                            }
                        }
                        report
                    }
                    other => {
                        current = other;
                        blank(input)
                    }
                };
                report.issues = issues;
                report.interrupted = interrupted;
                if report.error.is_none() {
                    report.error = error;
                }
                reports[input] = Some(report);
            }
        }
        stats.record(1, t0.elapsed());
    }
    // Inputs never reached (interrupted before they started) are reported as such.
    reports
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.unwrap_or_else(|| {
                let mut b = blank(i);
                b.interrupted = true;
                b.error = Some(Error::Interrupted);
                b
            })
        })
        .collect()
}

fn write_done_marker(
    out_dir: &std::path::Path,
    stem: &str,
    fingerprint: &str,
    r: &InputReport,
) -> Result<()> {
    let path = done_marker(out_dir, stem);
    let body = serde_json::json!({
        "input": r.path.to_string_lossy(),
        "fingerprint": fingerprint,
        "frames": r.frames,
        "detections": r.detections,
        "outputs": r.outputs.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>(),
        "corrupt_packets": r.issues.corrupt_packets,
    });
    let tmp = path.with_extension("done.partial");
    std::fs::write(&tmp, format!("{body}\n")).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_unique() {
        let all: Vec<PathBuf> = ["a/x.mp4", "b/x.mp4", "c/y.avi", "x.mkv"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let stems = output_stems(&all);
        assert_eq!(stems, vec!["x", "x-2", "y", "x-3"]);
    }
}
