//! From parsed flags to what the library runs: one validated plan per command. Everything
//! that can be known before the first frame is decided here.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use vidinfer::{
    bench::BenchConfig,
    decode::{
        source::{SourceKind, SourceOptions},
        DecodeOptions,
    },
    infer::{
        find_installed, intra_threads_per_worker, resolve_ort_lib, EpChoice, EpKind, EpOptions,
        Precision, PreprocessOverrides, SessionConfig,
    },
    labels::Labels,
    output::{is_ambiguous_stem, DoneMarker, InputIdentity, OutputDir, Verdict},
    pipeline::{FrameSelection, LiveOptions, PipelineConfig},
    postprocess::PostprocessConfig,
    sink::{video::check_settings, SinkConfig, SinkKinds, VideoSettings},
    sys::cores,
    track::{CountLine, LineCounterConfig, TrackerConfig, TrackingConfig},
};

use super::{
    args::{
        value_name, BenchArgs, ChannelOrderArg, CudnnSearchArg, DetectArgs, EngineArgs, OnOff,
        OutputArg, RtspTransport, TrackArgs,
    },
    config::FileConfig,
    inputs::{collect_inputs, shard},
};

/// Everything `detect` needs, validated.
pub struct DetectPlan {
    /// Inference workers (sessions side by side).
    pub workers: usize,
    pub pipeline: PipelineConfig,
    pub session: SessionConfig,
    pub model: PathBuf,
    pub ort_lib: PathBuf,
    pub stats: bool,
    pub summary_json: Option<PathBuf>,
    pub progress: bool,
}

/// Everything `bench` needs, validated.
pub struct BenchPlan {
    pub cfg: BenchConfig,
    pub ort_lib: PathBuf,
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

/// The validated shared settings, as a pipeline/session template.
struct Engine {
    pipeline: PipelineConfig,
    session: SessionConfig,
    model: PathBuf,
    /// `--ort-lib` if given; otherwise resolved once the provider list is known.
    ort_lib: Option<PathBuf>,
}

/// The outputs asked for; with tracking, `<name>.tracks.jsonl` beside any of them.
fn sink_kinds(list: &[OutputArg], track: bool) -> SinkKinds {
    let mut kinds = SinkKinds {
        jsonl: list.contains(&OutputArg::Jsonl),
        csv: list.contains(&OutputArg::Csv),
        video: list.contains(&OutputArg::Mp4),
        tracks: false,
    };
    kinds.tracks = track && (kinds.jsonl || kinds.csv || kinds.video);
    kinds
}

/// The tracking settings: ByteTrack's defaults scaled to `--conf`, the times in seconds, the
/// count lines named (line1, line2, ... by position unless named) with unique names.
fn tracking(t: &TrackArgs, conf: f32) -> anyhow::Result<TrackingConfig> {
    let mut lines: Vec<CountLine> = Vec::new();
    for (i, l) in t.count_line.iter().enumerate() {
        let name = l.name.clone().unwrap_or_else(|| format!("line{}", i + 1));
        if lines.iter().any(|o| o.name == name) {
            anyhow::bail!("two --count-line are named '{name}': name each one (X1,Y1,X2,Y2,NAME)");
        }
        lines.push(CountLine {
            name,
            a: l.a,
            b: l.b,
        });
    }
    Ok(TrackingConfig {
        tracker: TrackerConfig {
            lost_s: t.track_lost_s,
            min_confirm_s: t.track_confirm_s,
            ..TrackerConfig::for_conf(conf)
        },
        lines,
        counter: LineCounterConfig::default(),
    })
}

/// What tracking adds to the settings recorded in done markers (nothing without it, so
/// markers of runs without tracking stay valid).
fn tracking_settings(t: Option<&TrackingConfig>) -> String {
    let Some(t) = t else {
        return String::new();
    };
    let lines: Vec<String> = t
        .lines
        .iter()
        .map(|l| format!("{}:{},{},{},{}", l.name, l.a.0, l.a.1, l.b.0, l.b.1))
        .collect();
    format!(" track={:?}/{:?} lines={lines:?}", t.tracker, t.counter)
}

/// The default model for a precision (the quantised one for int8) here, else in vidinfer's
/// own folder (a bundle's, or the source tree's).
pub fn default_model(precision: Precision) -> PathBuf {
    let default = Path::new(match precision {
        Precision::Int8 => "models/ssd_mobilenet_v2_coco_int8.onnx",
        Precision::Fp32 | Precision::Bf16 => "models/ssd_mobilenet_v2_coco.onnx",
    });
    find_installed(default).unwrap_or_else(|| default.into())
}

/// The settings flags, the config file and the defaults decide together (flags first).
struct Choices {
    ep: EpChoice,
    precision: Precision,
    batch: usize,
    workers: Option<usize>,
    threads: usize,
    streams: usize,
    model: PathBuf,
}

impl Choices {
    fn new(a: &DetectArgs, file: &FileConfig) -> Choices {
        let precision = a.precision.or(file.precision).unwrap_or_default();
        let ep =
            a.ep.clone()
                .or_else(|| file.ep_choice())
                .unwrap_or(EpChoice::Listed(vec![EpKind::Cpu]));
        let streams = a
            .streams
            .or(file.streams)
            .map_or_else(|| ep.default_streams(), |s| s as usize);
        Choices {
            ep,
            precision,
            batch: a.batch.or(file.batch).unwrap_or(1) as usize,
            workers: a.workers.or(file.workers).map(|w| w as usize),
            threads: a.threads.or(file.threads).unwrap_or(0) as usize,
            streams,
            model: a
                .engine
                .model
                .clone()
                .or_else(|| file.model.clone())
                .unwrap_or_else(|| default_model(precision)),
        }
    }
}

/// The config file, said once when one is read that sets anything.
fn file_config(e: &EngineArgs, quiet: bool) -> anyhow::Result<FileConfig> {
    let (file, path) = FileConfig::load(e.config.as_deref())?;
    if let Some(p) = path.filter(|_| !quiet && !file.describe().is_empty()) {
        eprintln!(
            "settings from {}: {} (flags override them)",
            p.display(),
            file.describe()
        );
    }
    Ok(file)
}

fn load_labels(e: &EngineArgs, model: &Path) -> anyhow::Result<Labels> {
    let path = e
        .labels
        .clone()
        .unwrap_or_else(|| model.with_file_name("coco_labels.txt"));
    if path.exists() || e.labels.is_some() {
        return Ok(Labels::load(&path)?);
    }
    tracing::warn!(
        "no labels file at {}; classes will be named class_<id>",
        path.display()
    );
    Ok(Labels::default())
}

/// Provider options; the thread count and precision are the session's (set when it loads).
fn ep_options(e: &EngineArgs) -> EpOptions {
    EpOptions {
        cuda_device: e.cuda_device,
        cudnn_algo_search: match e.cudnn_algo_search {
            CudnnSearchArg::Heuristic => "heuristic",
            CudnnSearchArg::Exhaustive => "exhaustive",
            CudnnSearchArg::Default => "default",
        }
        .into(),
        trt_fp16: e.trt_fp16,
        trt_cache_dir: e.trt_cache_dir.clone(),
        openvino_device: e.openvino_device.clone(),
        ..EpOptions::default()
    }
}

fn video_settings(e: &EngineArgs) -> VideoSettings {
    let tune = value_name(&e.video_tune);
    VideoSettings {
        preset: value_name(&e.video_preset),
        tune: if tune == "none" { String::new() } else { tune },
        crf: e.crf,
        // On a small machine the model needs every core; encoder threads only add overhead.
        threads: e
            .video_threads
            .map_or(if cores() <= 4 { 1 } else { 0 }, |t| t as usize),
    }
}

fn engine(
    e: EngineArgs,
    kinds: SinkKinds,
    out_dir: PathBuf,
    (model, precision): (PathBuf, Precision),
) -> anyhow::Result<Engine> {
    let labels = load_labels(&e, &model)?;
    let preprocess = PreprocessOverrides {
        mode: e.resize.map(Into::into),
        mean: e.mean,
        scale: e.scale,
        swap_rb: e.channel_order.map(|c| matches!(c, ChannelOrderArg::Rgb)),
    };
    let ep_options = ep_options(&e);
    let video = video_settings(&e);
    Ok(Engine {
        pipeline: PipelineConfig {
            inputs: Vec::new(),
            stems: Vec::new(),
            settings: String::new(),
            force: false,
            batch: 1,
            pad_batches: !e.no_pad,
            max_wait: e.max_wait_ms.map(Duration::from_millis),
            streams: 1,
            share_decode_threads: e.decode_threads.is_none(),
            decode: decode_options(&e),
            kernel: e.preprocess.into(),
            max_frames: None,
            post: PostprocessConfig {
                conf: e.conf,
                iou: e.iou,
                max_detections: e.max_detections as usize,
            },
            sinks: SinkConfig {
                out_dir,
                kinds,
                labels: Arc::new(labels),
                video,
            },
            queue_capacity: e.queue as usize,
            jitter: None,
            realtime: false,
            selection: FrameSelection {
                stride: 1,
                start: e.start,
                duration: e.duration,
            },
            live: LiveOptions::default(),
            segment: None,
            tracking: None,
        },
        // The thread budget: ORT threads are shared out between the inference workers by
        // `detect` and `bench` (intra_threads_per_worker), spinning off so decode and
        // preprocessing get the cores back between runs; decode gets a quarter of the cores,
        // 1 to 4 frame threads.
        session: SessionConfig {
            eps: EpChoice::Listed(vec![EpKind::Cpu]),
            ep_options,
            intra_threads: 0,
            spinning: e.spin,
            preprocess,
            format: e.model_format.forced(),
            precision,
            batch: None,
        },
        model,
        ort_lib: e.ort_lib,
    })
}

/// Decoding: a quarter of the cores as frame threads (1 to 4, shared out between the
/// streams) unless told, and how network sources are opened.
fn decode_options(e: &EngineArgs) -> DecodeOptions {
    DecodeOptions {
        threads: e
            .decode_threads
            .map_or_else(|| (cores() / 4).clamp(1, 4), |t| t as usize),
        hwaccel: e.hwaccel.into(),
        source: SourceOptions {
            rtsp_transport: match e.rtsp_transport {
                RtspTransport::Tcp => "tcp",
                RtspTransport::Udp => "udp",
            }
            .into(),
            io_timeout: Duration::from_secs_f64(e.io_timeout_s.max(0.001)),
            extra: e.input_option.clone(),
        },
        interrupt: None,
    }
}

/// What decides the content of an input's outputs; recorded in `.done` markers.
fn settings(a: &DetectArgs, c: &Choices, tracking: Option<&TrackingConfig>) -> String {
    let e = &a.engine;
    let model_file = &c.model;
    let model = std::fs::metadata(model_file).ok();
    let model_stamp = model
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let outputs: Vec<String> = a.outputs.iter().map(value_name).collect();
    format!(
        "model={}@{model_stamp}/{} precision={} labels={:?} conf={} iou={} max={} outputs={} preprocess={} resize={:?} mean={:?} scale={:?} order={:?} max_frames={:?} stride={} start={:?} duration={:?} segment={:?} format={:?} video={}/{}/{}",
        model_file.display(),
        model.map_or(0, |m| m.len()),
        c.precision,
        e.labels,
        e.conf,
        e.iou,
        e.max_detections,
        outputs.join(","),
        value_name(&e.preprocess),
        e.resize.map(|r| value_name(&r)),
        e.mean,
        e.scale,
        e.channel_order.map(|c| value_name(&c)),
        a.max_frames,
        a.stride,
        e.start,
        e.duration,
        a.segment_s,
        e.model_format.forced(),
        value_name(&e.video_preset),
        value_name(&e.video_tune),
        e.crf
    ) + &tracking_settings(tracking)
}

/// A precision the named provider cannot run is a usage error, said before anything loads.
fn check_precision(eps: &EpChoice, precision: Precision) -> anyhow::Result<()> {
    if let EpChoice::Listed(l) = eps {
        if let [ep] = l.as_slice() {
            precision
                .check(*ep, &vidinfer::sys::CpuIsa::detect())
                .map_err(anyhow::Error::msg)?;
        }
    }
    Ok(())
}

/// Caps that keep the machine alive: thread counts beyond a few per core only thrash.
fn check_thread_budget(a: &DetectArgs, c: &Choices) -> anyhow::Result<()> {
    let cap = 4 * cores();
    let over = |flag: &str, n: u32| {
        anyhow::anyhow!(
            "{flag} {n} is more than 4 per core (at most {cap} on this {}-core machine)",
            cores()
        )
    };
    if c.threads > cap {
        return Err(over("--threads", c.threads as u32));
    }
    if let Some(w) = c.workers.filter(|&w| w > cap) {
        return Err(over("--workers", w as u32));
    }
    if let Some(d) = a.engine.decode_threads.filter(|&d| d as usize > cap) {
        return Err(over("--decode-threads", d));
    }
    Ok(())
}

/// This shard's inputs with their output stems, minus those a done marker says are finished
/// with these settings (each skip and each redo is said, with why).
fn plan_inputs(
    a: &DetectArgs,
    out: &OutputDir,
    settings: &str,
    quiet: bool,
) -> anyhow::Result<(Vec<PathBuf>, Vec<String>)> {
    let all = collect_inputs(&a.inputs, a.inputs_from.as_deref())?;
    let (shard_index, shard_count) = shard(a.shard_index, a.shard_count)?;
    let mine: Vec<PathBuf> = if shard_count > 1 {
        // Every shard sorts the same manifest, so the split is the same in each.
        let mut all = all;
        all.sort();
        all.dedup();
        all.into_iter()
            .enumerate()
            .filter(|(i, _)| i % shard_count == shard_index)
            .map(|(_, p)| p)
            .collect()
    } else {
        all
    };
    if a.name.is_some() && mine.len() != 1 {
        anyhow::bail!(
            "--name names the outputs of one input; {} are given",
            mine.len()
        );
    }
    if let Some(n) = a.name.as_deref().filter(|n| is_ambiguous_stem(n)) {
        anyhow::bail!(
            "--name {n}: its .jsonl would be the tracks file of '{}'",
            &n[..n.len() - 7]
        );
    }
    let (mut inputs, mut stems) = (Vec::new(), Vec::new());
    for p in mine {
        let stem = match &a.name {
            Some(n) => n.clone(),
            None => out.stem_for(&p)?,
        };
        let identity = (SourceKind::of(&p) == SourceKind::File)
            .then(|| InputIdentity::of(&p).ok())
            .flatten();
        match identity.map(|id| DoneMarker::check(out.root(), &stem, &id, settings)) {
            Some(Verdict::Done) if !a.force => {
                if !quiet {
                    eprintln!(
                        "{}: already done with these settings ({}), skipping; --force reprocesses it",
                        p.display(),
                        DoneMarker::path(out.root(), &stem).display()
                    );
                }
                continue;
            }
            Some(Verdict::Redo(why)) if !quiet => eprintln!("{}: redoing: {why}", p.display()),
            _ => {}
        }
        inputs.push(p);
        stems.push(stem);
    }
    Ok((inputs, stems))
}

impl DetectPlan {
    pub fn new(a: DetectArgs, quiet: bool) -> anyhow::Result<DetectPlan> {
        let c = Choices::new(&a, &file_config(&a.engine, quiet)?);
        check_thread_budget(&a, &c)?;
        check_precision(&c.ep, c.precision)?;
        let track = a
            .track
            .then(|| tracking(&a.tracking, a.engine.conf))
            .transpose()?;
        let settings = settings(&a, &c, track.as_ref());
        let out = OutputDir::prepare(&a.out)?;
        let (inputs, stems) = plan_inputs(&a, &out, &settings, quiet)?;
        let kinds = sink_kinds(&a.outputs, track.is_some());
        let mut engine = engine(a.engine, kinds, a.out, (c.model, c.precision))?;
        if kinds.video {
            check_settings(&engine.pipeline.sinks.video)?;
        }
        let p = &mut engine.pipeline;
        p.inputs = inputs;
        p.stems = stems;
        p.settings = settings;
        p.force = a.force;
        p.batch = c.batch;
        p.streams = c.streams;
        p.max_frames = a.max_frames;
        p.realtime = a.realtime;
        p.selection.stride = a.stride;
        p.live = LiveOptions {
            reconnect: (a.reconnect || a.no_reconnect).then_some(a.reconnect),
            reconnect_max: Duration::from_secs_f64(a.reconnect_max_s),
        };
        p.segment = a.segment_s.map(|s| Duration::from_secs_f64(s.max(0.001)));
        p.tracking = track;
        // The thread budget: `workers` sessions with the cores shared out between them,
        // unless --threads says otherwise.
        let workers = c.workers.unwrap_or_else(|| c.ep.default_workers());
        engine.session.intra_threads = intra_threads_per_worker(c.threads, workers);
        engine.session.eps = c.ep;
        engine.session.batch = Some(c.batch);
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
            progress: !a.no_progress && !quiet,
        })
    }
}

/// A sweep list: the flag's values, else the config file's one value, else the default.
fn sweep<T: Clone>(flag: &[T], file: Option<T>, default: &[T]) -> Vec<T> {
    if !flag.is_empty() {
        flag.to_vec()
    } else if let Some(v) = file {
        vec![v]
    } else {
        default.to_vec()
    }
}

/// `bench --track off,on`: the tracking settings per value (`None`: off).
fn bench_tracking(a: &BenchArgs) -> anyhow::Result<Vec<Option<TrackingConfig>>> {
    let on = tracking(&a.tracking, a.engine.conf)?;
    Ok(a.track
        .iter()
        .map(|t| (*t == OnOff::On).then(|| on.clone()))
        .collect())
}

impl BenchPlan {
    pub fn new(a: BenchArgs, quiet: bool) -> anyhow::Result<BenchPlan> {
        let file = file_config(&a.engine, quiet)?;
        let file_eps = match file.ep_choice() {
            Some(EpChoice::Listed(l)) => l,
            _ => vec![EpKind::Cpu],
        };
        let eps = if a.ep.is_empty() {
            file_eps
        } else {
            a.ep.clone()
        };
        let precisions = sweep(&a.precision, file.precision, &[Precision::Fp32]);
        for (&ep, &p) in eps
            .iter()
            .flat_map(|e| precisions.iter().map(move |p| (e, p)))
        {
            check_precision(&EpChoice::Listed(vec![ep]), p)?;
        }
        let model_of = |p: Precision| {
            a.engine
                .model
                .clone()
                .or_else(|| file.model.clone())
                .unwrap_or_else(|| default_model(p))
        };
        let precisions: Vec<(Precision, PathBuf)> =
            precisions.iter().map(|&p| (p, model_of(p))).collect();
        let first_model = precisions[0].clone();
        let usizes = |v: Vec<u32>| v.into_iter().map(|x| x as usize).collect::<Vec<_>>();
        let batches = usizes(sweep(&a.batch, file.batch, &[1, 2, 4, 8, 16]));
        let threads = usizes(sweep(&a.threads, file.threads, &[0]));
        let workers = usizes(sweep(&a.workers, file.workers, &[0]));
        let streams = usizes(sweep(&a.streams, file.streams, &[0]));
        let tracking = bench_tracking(&a)?;
        let engine = engine(
            a.engine,
            sink_kinds(&a.outputs, tracking.iter().any(Option::is_some)),
            a.out,
            (first_model.1, first_model.0),
        )
        .context("invalid bench settings")?;
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
                precisions,
                batches,
                eps,
                threads,
                workers,
                strides: a.stride,
                streams,
                copies: a.copies.unwrap_or(0) as usize,
                tracking,
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
}
