//! The `vidinfer` command line: parses flags once into validated configs and hands them
//! to the library. Errors are printed once here, with a non-zero exit code.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use vidinfer::{
    bench::BenchConfig,
    decode::{hw::HwAccel, init_ffmpeg, DecodeOptions},
    infer::{
        intra_threads_per_worker, parse_channel_order, parse_mean, parse_resize, resolve_ort_lib,
        Detector, EpChoice, EpKind, EpOptions, PreprocessOverrides, Runtime, SessionConfig,
    },
    labels::Labels,
    pipeline::{self, PipelineConfig, RunReport},
    postprocess::PostprocessConfig,
    preprocess::Kernel,
    sink::{SinkConfig, SinkKinds},
    sys::cores,
};

#[derive(Parser)]
#[command(
    name = "vidinfer",
    version,
    about = "Run SSD object detection over video files, fast."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    quiet: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Detect objects in one or more videos; writes DIR/<name>.jsonl and DIR/<name>.annotated.mp4.
    Detect(DetectArgs),
    /// Sweep batch sizes, execution providers and thread counts over one input; report fps,
    /// latency percentiles, per-stage times and the model-only ceiling.
    Bench(BenchArgs),
}

/// Settings shared by `detect` and `bench`.
#[derive(Args)]
struct EngineArgs {
    /// ONNX model: input [N,3,H,W] f32 in [0,1]; outputs boxes [N,A,4] and scores [N,A,C].
    #[arg(long, default_value = "models/ssd_mobilenet_v2_coco.onnx")]
    model: PathBuf,
    /// Labels file (`<id> <name>` per line). Default: coco_labels.txt next to the model.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Keep detections with a score above this.
    #[arg(long, default_value_t = 0.5)]
    conf: f32,
    /// Per-class NMS IoU threshold.
    #[arg(long, default_value_t = 0.6)]
    iou: f32,
    /// At most this many detections per frame.
    #[arg(long, default_value_t = 100)]
    max_detections: usize,
    /// Flush a partial batch after waiting this long for frames (for live streams).
    #[arg(long, value_name = "MS")]
    max_wait_ms: Option<u64>,
    /// Run a short last batch as is instead of padding it to --batch.
    #[arg(long)]
    no_pad: bool,
    /// Path to libonnxruntime.so (default: ORT_DYLIB_PATH, then .cache/onnxruntime from tools/setup).
    #[arg(long, value_name = "PATH")]
    ort_lib: Option<PathBuf>,
    /// Let ONNX Runtime threads spin while idle (faster only when cores are otherwise free).
    #[arg(long)]
    spin: bool,
    /// Preprocessing kernel: fused (YUV straight to the tensor) or exact (OpenCV-identical).
    /// Specs the fused kernel does not cover (letterbox, mean, BGR, NHWC) use the exact one.
    #[arg(long, default_value = "fused")]
    preprocess: String,
    /// Fit frames by stretching (blobFromImage crop=False) or letterboxing. Default: the
    /// model's `preprocess.resize` metadata, else stretch.
    #[arg(long)]
    resize: Option<String>,
    /// Per-channel mean subtracted before scaling, "R,G,B" in 0..255 units. Default: model metadata, else 0.
    #[arg(long)]
    mean: Option<String>,
    /// Scale applied after the mean. Default: model metadata, else 1/255.
    #[arg(long)]
    scale: Option<f32>,
    /// Channel order the model wants: rgb or bgr. Default: model metadata, else rgb.
    #[arg(long)]
    channel_order: Option<String>,
    /// Hardware decoding: auto, none, cuda, vaapi, qsv or vdpau. Falls back to software (logged once).
    #[arg(long, default_value = "none")]
    hwaccel: String,
    /// FFmpeg decoder threads (frame threading). Default: a quarter of the cores, 1 to 4 (on a
    /// small machine the model needs the cores, and frame threads only add overhead).
    #[arg(long)]
    decode_threads: Option<usize>,
    /// Capacity of each queue between stages.
    #[arg(long, default_value_t = 8)]
    queue: usize,
    /// x264 preset of the annotated video (ultrafast keeps encoding from starving inference).
    #[arg(long, default_value = "ultrafast")]
    video_preset: String,
    /// x264 tune of the annotated video ("" for none).
    #[arg(long, default_value = "zerolatency")]
    video_tune: String,
    /// x264 CRF of the annotated video.
    #[arg(long, default_value_t = 23)]
    crf: u32,
    /// x264 threads for the annotated video (0: x264's choice). Default: 1 on machines with
    /// up to 4 cores, where the model needs every core and encoder threads only add overhead;
    /// x264's choice above that.
    #[arg(long)]
    video_threads: Option<usize>,
    /// CUDA device id (cuda, tensorrt).
    #[arg(long, default_value_t = 0)]
    cuda_device: i32,
    /// cuDNN convolution algorithm search: heuristic, exhaustive or default.
    #[arg(long, default_value = "heuristic")]
    cudnn_algo_search: String,
    /// TensorRT fp16 kernels.
    #[arg(long)]
    trt_fp16: bool,
    /// TensorRT engine cache directory.
    #[arg(long)]
    trt_cache_dir: Option<String>,
    /// OpenVINO device type (CPU, GPU, ...).
    #[arg(long, default_value = "CPU")]
    openvino_device: String,
}

#[derive(Args)]
struct DetectArgs {
    /// Video files to process; quoted glob patterns ("clips/*.mp4") are expanded.
    #[arg(value_name = "INPUT", required_unless_present = "inputs_from")]
    inputs: Vec<PathBuf>,
    /// Read more inputs from this file, one path per line ('#' starts a comment).
    #[arg(long, value_name = "FILE")]
    inputs_from: Option<PathBuf>,
    /// This process's shard (0-based) of the sorted input list. Default: JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID, else 0.
    #[arg(long)]
    shard_index: Option<usize>,
    /// Number of shards. Default: SLURM_ARRAY_TASK_COUNT when SLURM_ARRAY_TASK_ID is used, else 1.
    #[arg(long)]
    shard_count: Option<usize>,
    /// Reprocess inputs whose outputs are already complete (a `<name>.done` marker exists).
    #[arg(long)]
    force: bool,
    /// Frames per inference call.
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Process at most this many frames of each input.
    #[arg(long, value_name = "N")]
    max_frames: Option<u64>,
    /// Output directory.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Outputs per input, comma separated: jsonl, mp4 (annotated video), csv.
    #[arg(long, default_value = "jsonl,mp4", value_delimiter = ',')]
    outputs: Vec<String>,
    /// Execution providers in order of preference (cpu, cuda, tensorrt, openvino) or `auto`.
    #[arg(long, default_value = "cpu")]
    ep: String,
    /// ONNX Runtime intra-op threads per inference worker (0: the cores shared out between
    /// the workers).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Release frames no faster than their timestamps, like a live stream (`ffmpeg -re`).
    #[arg(long)]
    realtime: bool,
    /// Inference workers: sessions that run batches side by side (results stay in order).
    /// Default: one per core up to 4 with the CPU provider, 1 with any other.
    #[arg(long)]
    workers: Option<usize>,
    /// Print per-stage times and queue depths.
    #[arg(long)]
    stats: bool,
    /// Also write the run's summary (provider that ran, fps, per-input results, stages, queues) as JSON.
    #[arg(long, value_name = "FILE")]
    summary_json: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Args)]
struct BenchArgs {
    /// The video to benchmark on.
    input: PathBuf,
    /// Batch sizes to sweep.
    #[arg(long, default_value = "1,2,4,8,16", value_delimiter = ',')]
    batch: Vec<usize>,
    /// Execution providers to sweep (each must register).
    #[arg(long, default_value = "cpu", value_delimiter = ',')]
    ep: Vec<String>,
    /// ORT intra-op thread counts per worker to sweep (0: the cores shared out between the workers).
    #[arg(long, default_value = "0", value_delimiter = ',')]
    threads: Vec<usize>,
    /// Inference worker counts to sweep (0: the provider's default, as in detect).
    #[arg(long, default_value = "0", value_delimiter = ',')]
    workers: Vec<usize>,
    /// Frames per timed run.
    #[arg(long, default_value_t = 200)]
    frames: u64,
    /// Untimed model-only runs before timing.
    #[arg(long, default_value_t = 10)]
    warmup: usize,
    /// Model-only / end-to-end pairs per point, alternated; medians are reported.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    repeat: u32,
    /// Outputs the end-to-end runs write (jsonl, mp4, csv, or none).
    #[arg(long, default_value = "jsonl", value_delimiter = ',')]
    outputs: Vec<String>,
    /// Where the end-to-end runs write their outputs.
    #[arg(long, default_value = "out/bench")]
    out: PathBuf,
    /// Write the results as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the results as CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Write an SVG plot of fps vs batch size per EP.
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Everything `detect` needs, validated.
struct DetectPlan {
    /// Inference workers (sessions side by side).
    workers: usize,
    pipeline: PipelineConfig,
    session: SessionConfig,
    model: PathBuf,
    ort_lib: PathBuf,
    stats: bool,
    summary_json: Option<PathBuf>,
}

/// The validated shared settings, as a pipeline/session template.
struct Engine {
    pipeline: PipelineConfig,
    session: SessionConfig,
    model: PathBuf,
    /// `--ort-lib` if given; otherwise resolved once the provider list is known.
    ort_lib: Option<PathBuf>,
}

fn parse_outputs(list: &[String]) -> anyhow::Result<SinkKinds> {
    let mut kinds = SinkKinds::default();
    for o in list {
        match o.trim() {
            "jsonl" => kinds.jsonl = true,
            "csv" => kinds.csv = true,
            "mp4" | "video" => kinds.video = true,
            "none" => {}
            other => {
                bail!("unknown output '{other}' in --outputs (expected jsonl, mp4, csv or none)")
            }
        }
    }
    Ok(kinds)
}

fn validate_engine(
    e: EngineArgs,
    kinds: SinkKinds,
    out_dir: PathBuf,
    threads: usize,
) -> anyhow::Result<Engine> {
    if !(0.0..=1.0).contains(&e.conf) {
        bail!("--conf must be between 0 and 1, got {}", e.conf);
    }
    if !(0.0..=1.0).contains(&e.iou) {
        bail!("--iou must be between 0 and 1, got {}", e.iou);
    }
    if e.queue == 0 {
        bail!("--queue must be at least 1");
    }
    if !["heuristic", "exhaustive", "default"].contains(&e.cudnn_algo_search.as_str()) {
        bail!("--cudnn-algo-search must be heuristic, exhaustive or default");
    }
    let kernel: Kernel = e.preprocess.parse().map_err(anyhow::Error::msg)?;
    let hwaccel: HwAccel = e.hwaccel.parse().map_err(anyhow::Error::msg)?;
    let preprocess = PreprocessOverrides {
        mode: e
            .resize
            .as_deref()
            .map(parse_resize)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        mean: e
            .mean
            .as_deref()
            .map(parse_mean)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        scale: e.scale,
        swap_rb: e
            .channel_order
            .as_deref()
            .map(parse_channel_order)
            .transpose()
            .map_err(anyhow::Error::msg)?,
    };
    if e.scale.is_some_and(|s| !s.is_finite() || s == 0.0) {
        bail!("--scale must be a non-zero number");
    }
    let labels_path = e
        .labels
        .clone()
        .unwrap_or_else(|| e.model.with_file_name("coco_labels.txt"));
    let labels = if labels_path.exists() || e.labels.is_some() {
        Labels::load(&labels_path)?
    } else {
        tracing::warn!(
            "no labels file at {}; classes will be named class_<id>",
            labels_path.display()
        );
        Labels::default()
    };
    let ep_options = EpOptions {
        cuda_device: e.cuda_device,
        cudnn_algo_search: e.cudnn_algo_search.clone(),
        trt_fp16: e.trt_fp16,
        trt_cache_dir: e.trt_cache_dir.clone(),
        openvino_device: e.openvino_device.clone(),
        intra_threads: threads,
    };
    Ok(Engine {
        pipeline: PipelineConfig {
            inputs: Vec::new(),
            stems: Vec::new(),
            fingerprint: String::new(),
            batch: 1,
            pad_batches: !e.no_pad,
            max_wait: e.max_wait_ms.map(Duration::from_millis),
            decode: DecodeOptions {
                threads: e
                    .decode_threads
                    .unwrap_or_else(|| (cores() / 4).clamp(1, 4)),
                hwaccel,
            },
            kernel,
            max_frames: None,
            post: PostprocessConfig {
                conf: e.conf,
                iou: e.iou,
                max_detections: e.max_detections,
            },
            sinks: SinkConfig {
                out_dir,
                kinds,
                labels: Arc::new(labels),
                video_preset: e.video_preset,
                video_tune: e.video_tune,
                video_crf: e.crf,
                video_threads: e.video_threads.unwrap_or(if cores() <= 4 { 1 } else { 0 }),
            },
            queue_capacity: e.queue,
            progress: false,
            jitter: None,
            realtime: false,
        },
        // The thread budget: ORT threads are shared out between the inference workers by
        // `detect` and `bench` (intra_threads_per_worker), spinning off so decode and
        // preprocessing get the cores back between runs; decode gets a quarter of the cores,
        // 1 to 4 frame threads.
        session: SessionConfig {
            eps: EpChoice::Listed(vec![EpKind::Cpu]),
            ep_options,
            intra_threads: threads,
            spinning: e.spin,
            preprocess,
        },
        model: e.model,
        ort_lib: e.ort_lib,
    })
}

/// Expands glob patterns and `--inputs-from`. Plain paths are kept as given (a missing one is
/// reported per input later, so the other inputs still run).
fn collect_inputs(
    args: &[PathBuf],
    from: Option<&std::path::Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut raw: Vec<PathBuf> = args.to_vec();
    if let Some(list) = from {
        let text = std::fs::read_to_string(list)
            .with_context(|| format!("cannot read --inputs-from {}", list.display()))?;
        let base = list.parent().unwrap_or(std::path::Path::new(""));
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let p = PathBuf::from(line);
            raw.push(if p.is_relative() && !p.exists() {
                base.join(p)
            } else {
                p
            });
        }
    }
    let mut out = Vec::new();
    for p in raw {
        let s = p.to_string_lossy();
        if !p.exists() && s.contains(['*', '?', '[']) {
            let mut matches: Vec<PathBuf> = glob::glob(&s)
                .with_context(|| format!("bad glob pattern '{s}'"))?
                .flatten()
                .filter(|m| m.is_file())
                .collect();
            if matches.is_empty() {
                bail!("no file matches '{s}'");
            }
            matches.sort();
            out.extend(matches);
        } else {
            out.push(p);
        }
    }
    if out.is_empty() {
        bail!("no inputs given");
    }
    Ok(out)
}

fn validate_batch(b: usize) -> anyhow::Result<()> {
    if b == 0 || b > 1024 {
        bail!("--batch must be between 1 and 1024, got {b}");
    }
    Ok(())
}

/// Resolves --shard-index/--shard-count, defaulting from the batch schedulers' variables.
fn shard(index: Option<usize>, count: Option<usize>) -> anyhow::Result<(usize, usize)> {
    let env = |k: &str| -> anyhow::Result<Option<usize>> {
        match std::env::var(k) {
            Ok(v) if !v.trim().is_empty() => Ok(Some(
                v.trim()
                    .parse()
                    .with_context(|| format!("{k}={v} is not a number"))?,
            )),
            _ => Ok(None),
        }
    };
    let (index, count) = match (index, count) {
        (Some(i), c) => (i, c.or(env("SLURM_ARRAY_TASK_COUNT")?).unwrap_or(1)),
        (None, c) => {
            if let Some(i) = env("JOB_COMPLETION_INDEX")? {
                (i, c.unwrap_or(1))
            } else if let Some(i) = env("SLURM_ARRAY_TASK_ID")? {
                let min = env("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                (
                    i.saturating_sub(min),
                    c.or(env("SLURM_ARRAY_TASK_COUNT")?).unwrap_or(1),
                )
            } else {
                (0, c.unwrap_or(1))
            }
        }
    };
    if count == 0 || index >= count {
        bail!("shard index {index} is not below shard count {count}");
    }
    Ok((index, count))
}

/// What decides the content of an input's outputs; recorded in `.done` markers.
fn fingerprint(a: &DetectArgs) -> String {
    let e = &a.engine;
    let model_stamp = std::fs::metadata(&e.model)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    format!(
        "model={}@{model_stamp} labels={:?} conf={} iou={} max={} outputs={} preprocess={} resize={:?} mean={:?} scale={:?} order={:?} max_frames={:?} video={}/{}/{}",
        e.model.display(),
        e.labels,
        e.conf,
        e.iou,
        e.max_detections,
        a.outputs.join(","),
        e.preprocess,
        e.resize,
        e.mean,
        e.scale,
        e.channel_order,
        a.max_frames,
        e.video_preset,
        e.video_tune,
        e.crf
    )
}

fn validate(a: DetectArgs, quiet: bool) -> anyhow::Result<DetectPlan> {
    let fingerprint = fingerprint(&a);
    let mut all = collect_inputs(&a.inputs, a.inputs_from.as_deref())?;
    let (shard_index, shard_count) = shard(a.shard_index, a.shard_count)?;
    if shard_count > 1 {
        // Every shard sorts the same manifest, so the split is the same in each.
        all.sort();
        all.dedup();
    }
    let all_stems = vidinfer::pipeline::output_stems(&all);
    let mut inputs = Vec::new();
    let mut stems = Vec::new();
    for (i, (p, s)) in all.into_iter().zip(all_stems).enumerate() {
        if i % shard_count != shard_index {
            continue;
        }
        if !a.force && vidinfer::pipeline::is_done(&a.out, &s, &fingerprint) {
            if !quiet {
                eprintln!(
                    "{}: already done with these settings ({}), skipping; --force reprocesses it",
                    p.display(),
                    vidinfer::pipeline::done_marker(&a.out, &s).display()
                );
            }
            continue;
        }
        inputs.push(p);
        stems.push(s);
    }
    validate_batch(a.batch)?;
    let eps: EpChoice = a.ep.parse().map_err(anyhow::Error::msg)?;
    let kinds = parse_outputs(&a.outputs)?;
    let mut engine = validate_engine(a.engine, kinds, a.out, a.threads)?;
    engine.pipeline.inputs = inputs;
    engine.pipeline.stems = stems;
    engine.pipeline.fingerprint = fingerprint;
    engine.pipeline.batch = a.batch;
    engine.pipeline.max_frames = a.max_frames;
    engine.pipeline.realtime = a.realtime;
    engine.pipeline.progress = !a.no_progress && !quiet;
    // The thread budget: `workers` sessions with the cores shared out between them, unless
    // --threads says otherwise.
    let workers = a.workers.unwrap_or_else(|| eps.default_workers());
    if !(1..=64).contains(&workers) {
        bail!("--workers must be between 1 and 64, got {workers}");
    }
    engine.session.intra_threads = intra_threads_per_worker(a.threads, workers);
    engine.session.eps = eps;
    let ort_lib = engine
        .ort_lib
        .unwrap_or_else(|| resolve_ort_lib(None, &engine.session.eps));
    Ok(DetectPlan {
        workers,
        pipeline: engine.pipeline,
        session: engine.session,
        model: engine.model,
        ort_lib,
        stats: a.stats,
        summary_json: a.summary_json,
    })
}

struct BenchPlan {
    cfg: BenchConfig,
    ort_lib: PathBuf,
    json: Option<PathBuf>,
    csv: Option<PathBuf>,
    plot: Option<PathBuf>,
}

fn validate_bench(a: BenchArgs) -> anyhow::Result<BenchPlan> {
    for &b in &a.batch {
        validate_batch(b)?;
    }
    if a.batch.is_empty() || a.ep.is_empty() || a.threads.is_empty() || a.workers.is_empty() {
        bail!("--batch, --ep, --threads and --workers each need at least one value");
    }
    if a.workers.iter().any(|&w| w > 64) {
        bail!("--workers must be at most 64");
    }
    if a.frames == 0 {
        bail!("--frames must be at least 1");
    }
    let eps =
        a.ep.iter()
            .map(|e| e.parse::<EpKind>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::msg)?;
    let kinds = parse_outputs(&a.outputs)?;
    let engine = validate_engine(a.engine, kinds, a.out, 0)?;
    // One library serves the whole sweep: the one for the most specific provider listed.
    let pick = eps
        .iter()
        .copied()
        .find(|e| *e != EpKind::Cpu)
        .unwrap_or(EpKind::Cpu);
    let ort_lib = engine
        .ort_lib
        .clone()
        .unwrap_or_else(|| resolve_ort_lib(None, &EpChoice::Listed(vec![pick])));
    Ok(BenchPlan {
        cfg: BenchConfig {
            input: a.input,
            model: engine.model,
            batches: a.batch,
            eps,
            threads: a.threads,
            workers: a.workers,
            frames: a.frames,
            warmup_runs: a.warmup,
            repeats: a.repeat as usize,
            pipeline: engine.pipeline,
            session: engine.session,
        },
        ort_lib,
        json: a.json,
        csv: a.csv,
        plot: a.plot,
    })
}

/// Writes `contents` to `path` through a temporary file, so a failure leaves no partial file.
fn write_atomic(path: &std::path::Path, contents: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

fn bench(plan: BenchPlan, quiet: bool) -> anyhow::Result<ExitCode> {
    init_ffmpeg(false);
    let rt = Runtime::load(&plan.ort_lib)?;
    if !quiet {
        eprintln!(
            "benchmarking {} ({} frames per run) ...",
            plan.cfg.input.display(),
            plan.cfg.frames
        );
    }
    let points = vidinfer::bench::run(&rt, &plan.cfg, |p| {
        if !quiet {
            eprintln!(
                "  {} threads={} batch={}: model {:.1} fps, end-to-end {:.1} fps",
                p.ep, p.threads, p.batch, p.model_fps, p.e2e_fps
            );
        }
    })?;
    print!("{}", vidinfer::bench::table(&points));
    if let Some(p) = &plan.json {
        write_atomic(p, serde_json::to_string_pretty(&points)?.as_bytes())?;
    }
    if let Some(p) = &plan.csv {
        write_atomic(p, vidinfer::bench::csv(&points).as_bytes())?;
    }
    if let Some(p) = &plan.plot {
        let tmp = p.with_extension("partial.svg");
        vidinfer::bench::plot_svg(&points, &tmp)?;
        std::fs::rename(&tmp, p).with_context(|| format!("cannot write {}", p.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn print_report(r: &RunReport, stats: bool, quiet: bool) {
    for i in &r.inputs {
        let name = i.path.display();
        let mut notes = Vec::new();
        if i.issues.corrupt_packets + i.issues.rejected_packets > 0 {
            notes.push(format!(
                "skipped {} corrupt and {} undecodable packets",
                i.issues.corrupt_packets, i.issues.rejected_packets
            ));
        }
        if i.issues.damaged_frames > 0 {
            notes.push(format!(
                "{} frames decoded with errors concealed",
                i.issues.damaged_frames
            ));
        }
        if let Some(n) = i
            .expected_frames
            .filter(|&n| i.frames < n && !i.interrupted && i.error.is_none())
        {
            notes.push(format!(
                "decoded {} of {n} frames the container lists",
                i.frames
            ));
        }
        if let Some(e) = &i.issues.read_error {
            notes.push(format!("reading stopped early: {e}"));
        }
        if i.interrupted {
            notes.push("interrupted".into());
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        };
        match &i.error {
            // Input errors name their file already.
            Some(e) if e.to_string().contains(&name.to_string()) => eprintln!("error: {e}{notes}"),
            Some(e) => eprintln!("error: {name}: {e}{notes}"),
            None if !quiet => {
                let outs = i
                    .outputs
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ");
                eprintln!(
                    "{name}: {} frames, {} detections → {outs}{notes}",
                    i.frames, i.detections
                );
            }
            None => {}
        }
    }
    if !quiet {
        eprintln!(
            "done: {} frames in {:.2} s ({:.1} fps), {} detections, {} of {} inputs ok, EP {}, batch {}, {} inference worker{}",
            r.frames(),
            r.elapsed.as_secs_f64(),
            r.fps(),
            r.detections(),
            r.inputs.len() - r.failed(),
            r.inputs.len(),
            r.ep,
            r.batch,
            r.workers,
            if r.workers == 1 { "" } else { "s" }
        );
    }
    if stats {
        if let Some(kib) = vidinfer::peak_rss_kib() {
            eprintln!("peak RSS: {:.1} MiB", kib as f64 / 1024.0);
        }
        if let (Some(ms), Some(s)) = (r.cpu_ms_per_frame(), r.cpu_s) {
            eprintln!(
                "CPU: {ms:.2} ms per frame, {:.2} cores busy on average of {}",
                s / r.elapsed.as_secs_f64().max(1e-9),
                cores()
            );
        }
        eprintln!("stage        items   busy s   ms/item   thread CPU ms/item");
        for s in &r.stages {
            eprintln!(
                "{:<12} {:>6} {:>8.2} {:>9.3} {:>20.3}",
                s.name, s.items, s.busy_s, s.ms_per_item, s.cpu_ms_per_item
            );
        }
        eprintln!("queue                 cap  items  mean depth  max  producer blocked s  consumer waited s");
        for q in &r.queues {
            eprintln!(
                "{:<20} {:>4} {:>6} {:>11.2} {:>4} {:>19.2} {:>18.2}",
                q.name,
                q.capacity,
                q.items,
                q.mean_depth,
                q.max_depth,
                q.producer_blocked_s,
                q.consumer_waited_s
            );
        }
    }
}

fn summary_json(r: &RunReport) -> serde_json::Value {
    serde_json::json!({
        "ep": r.ep.name(),
        "batch": r.batch,
        "workers": r.workers,
        "frames": r.frames(),
        "detections": r.detections(),
        "seconds": r.elapsed.as_secs_f64(),
        "fps": r.fps(),
        "cpu_ms_per_frame": r.cpu_ms_per_frame(),
        "interrupted": r.interrupted,
        "peak_rss_kib": vidinfer::peak_rss_kib(),
        "inputs": r.inputs.iter().map(|i| serde_json::json!({
            "path": i.path.to_string_lossy(),
            "ok": i.error.is_none(),
            "error": i.error.as_ref().map(|e| e.to_string()),
            "frames": i.frames,
            "expected_frames": i.expected_frames,
            "detections": i.detections,
            "outputs": i.outputs.iter().map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>(),
            "corrupt_packets": i.issues.corrupt_packets,
            "damaged_frames": i.issues.damaged_frames,
            "interrupted": i.interrupted,
        })).collect::<Vec<_>>(),
        "stages": r.stages,
        "queues": r.queues,
    })
}

fn detect(plan: DetectPlan, quiet: bool) -> anyhow::Result<ExitCode> {
    init_ffmpeg(tracing::enabled!(tracing::Level::DEBUG));
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: finishing the frames in flight (Ctrl-C again to abort)");
        });
    }
    let rt = Runtime::load(&plan.ort_lib)?;
    let detectors = (0..plan.workers)
        .map(|_| Detector::load(&rt, &plan.model, &plan.session))
        .collect::<Result<Vec<_>, _>>()?;
    for (ep, why) in detectors[0].fallbacks() {
        tracing::info!("{ep} was not used: {why}");
    }
    let report = pipeline::run(&plan.pipeline, detectors, cancel).context("detection failed")?;
    print_report(&report, plan.stats, quiet);
    if let Some(path) = &plan.summary_json {
        write_atomic(path, format!("{:#}\n", summary_json(&report)).as_bytes())?;
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if report.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = if cli.quiet {
        "error"
    } else {
        match cli.verbose {
            0 => "warn",
            1 => "info",
            _ => "debug",
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "vidinfer={level},ort={}",
            if cli.verbose > 1 { "info" } else { "error" }
        ))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    // A flag that does not validate is a usage error (exit 2), like clap's own.
    let result = match cli.command {
        Command::Detect(a) => match validate(a, cli.quiet) {
            Ok(plan) => detect(plan, cli.quiet),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Bench(a) => match validate_bench(a) {
            Ok(plan) => bench(plan, cli.quiet),
            Err(e) => {
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        },
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
