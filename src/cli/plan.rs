//! From parsed flags to what the library runs: one validated plan per command. Everything
//! that can be known before the first frame is decided here.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context as _;
use serde::Serialize;
use vidinfer::{
    bench::BenchConfig,
    decode::{
        source::{SourceKind, SourceOptions},
        DecodeOptions,
    },
    infer::{
        intra_threads_per_worker, resolve_ort_lib, EpChoice, EpKind, EpOptions, Precision,
        PreprocessOverrides, SessionConfig, Signature,
    },
    labels::Labels,
    output::{is_ambiguous_stem, DoneMarker, InputFiles, InputIdentity, OutputDir, Verdict},
    pipeline::{FrameSelection, LiveOptions, PipelineConfig},
    postprocess::PostprocessConfig,
    sink::{video::check_settings, SinkConfig, SinkKinds, VideoSettings},
    sys::cores,
    track::{CountLine, LineCounterConfig, TrackerConfig, TrackingConfig, Zone, ZoneConfig},
};

use super::{
    args::{
        value_name, BenchArgs, ChannelOrderArg, CudnnSearchArg, DetectArgs, EngineArgs, OnOff,
        OutputArg, RtspTransport, TrackArgs,
    },
    inputs::{collect_inputs, shard},
    settings::{file_layer, Chosen, Layer, Settings},
    zone::ZoneArg,
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
    /// `--metrics`, `--events`.
    pub telemetry: super::telemetry_args::TelemetryPlan,
    /// `--labels`, if given (else the labels are the file beside the model, or the model's own
    /// names once it is loaded: [`model_labels`]).
    pub labels_flag: Option<PathBuf>,
}

/// Everything `bench` needs, validated.
pub struct BenchPlan {
    pub cfg: BenchConfig,
    pub ort_lib: PathBuf,
    pub json: Option<PathBuf>,
    pub csv: Option<PathBuf>,
    pub plot: Option<PathBuf>,
}

/// The validated engine flags, as a pipeline/session template.
pub(super) struct Engine {
    pub pipeline: PipelineConfig,
    pub session: SessionConfig,
    pub model: PathBuf,
    /// `--ort-lib` if given; otherwise resolved once the provider list is known.
    pub ort_lib: Option<PathBuf>,
}

/// The outputs asked for; with tracking, `<name>.tracks.jsonl` beside any of them.
fn sink_kinds(list: &[OutputArg], track: bool) -> SinkKinds {
    let mut kinds = SinkKinds {
        jsonl: list.contains(&OutputArg::Jsonl),
        csv: list.contains(&OutputArg::Csv),
        video: list.contains(&OutputArg::Mp4),
        tracks: false,
        snapshots: false,
    };
    kinds.tracks = track && (kinds.jsonl || kinds.csv || kinds.video);
    kinds
}

/// The tracking settings: ByteTrack's defaults scaled to `--conf`, the times in seconds, the
/// count lines named (line1, line2, ... by position unless named) with unique names, the
/// zones with unique names and their classes found in `labels`.
fn tracking(t: &TrackArgs, conf: f32, labels: &Labels) -> anyhow::Result<TrackingConfig> {
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
    let mut zones: Vec<Zone> = Vec::new();
    for z in &t.zone {
        if zones.iter().any(|o| o.name() == z.name) {
            anyhow::bail!("two --zone are named '{}': give each its own name", z.name);
        }
        zones.push(zone(z, labels)?);
    }
    Ok(TrackingConfig {
        tracker: TrackerConfig {
            lost_s: t.track_lost_s,
            min_confirm_s: t.track_confirm_s,
            ..TrackerConfig::for_conf(conf)
        },
        lines,
        counter: LineCounterConfig {
            hand_over_s: t.track_lost_s,
            ..LineCounterConfig::default()
        },
        zones: ZoneConfig {
            zones,
            inertia_s: t.zone_inertia_s,
        },
    })
}

/// One `--zone` with its class names found in the labels.
fn zone(z: &ZoneArg, labels: &Labels) -> anyhow::Result<Zone> {
    let mut classes = Vec::new();
    for c in &z.classes {
        let Some(id) = labels.id_of(c) else {
            anyhow::bail!(
                "--zone {}: no class is named '{c}' in the labels (names as the JSONL's \"label\" has them, e.g. person, car)",
                z.name
            );
        };
        classes.push(id);
    }
    Ok(Zone::new(&z.name, &z.points, classes)?)
}

/// The labels: `--labels`, else the class names an Ultralytics export carries (as `detect`
/// uses them once the model is loaded), else `coco_labels.txt` beside the model, else none
/// (classes named `class_<id>`).
pub(super) fn load_labels(e: &EngineArgs, model: &Path) -> anyhow::Result<Labels> {
    if let Some(path) = &e.labels {
        return Ok(Labels::load(path)?);
    }
    if let Some(own) =
        vidinfer::infer::yolo::names_in_file(model).and_then(|n| Labels::from_names(&n))
    {
        return Ok(own);
    }
    let path = model.with_file_name("coco_labels.txt");
    if path.exists() {
        return Ok(Labels::load(&path)?);
    }
    tracing::warn!(
        "no labels file at {}; classes will be named class_<id>",
        path.display()
    );
    Ok(Labels::default())
}

/// For a model that knows its classes (Ultralytics' layouts): its own class names (metadata
/// `names`) unless `--labels` was given, and a `--labels` file that names exactly its classes.
/// `None`: keep the labels as planned.
pub(super) fn model_labels(
    flag: Option<&Path>,
    planned: &Labels,
    sig: &Signature,
) -> anyhow::Result<Option<Labels>> {
    let Some(classes) = sig.model_classes() else {
        return Ok(None);
    };
    if let Some(path) = flag {
        planned.check_count(classes, path)?;
        return Ok(None);
    }
    let own = sig.ultralytics.as_ref();
    Ok(own.and_then(|m| Labels::from_names(&m.names)))
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

/// The pipeline and session templates of the engine flags; what varies per run (inputs,
/// batch, streams, providers, threads) is set by the plan.
pub(super) fn engine(
    e: EngineArgs,
    (kinds, labels): (SinkKinds, Labels),
    out_dir: PathBuf,
    (model, precision): (PathBuf, Precision),
) -> anyhow::Result<Engine> {
    let preprocess = PreprocessOverrides {
        mode: e.resize.map(Into::into),
        mean: e.mean,
        scale: e.scale,
        swap_rb: e.channel_order.map(|c| matches!(c, ChannelOrderArg::Rgb)),
    };
    Ok(Engine {
        pipeline: PipelineConfig {
            pad_batches: !e.no_pad,
            max_wait: e.max_wait_ms.map(Duration::from_millis),
            share_decode_threads: e.decode_threads.is_none(),
            decode: decode_options(&e),
            kernel: e.preprocess.into(),
            post: PostprocessConfig {
                conf: e.conf,
                iou: e.iou,
                max_detections: e.max_detections as usize,
                agnostic: e.agnostic_nms,
            },
            sinks: SinkConfig {
                out_dir,
                kinds,
                labels: Arc::new(labels),
                video: video_settings(&e),
                results: None,
            },
            queue_capacity: e.queue as usize,
            selection: FrameSelection {
                stride: 1,
                start: e.start,
                duration: e.duration,
            },
            ..PipelineConfig::default()
        },
        // The thread budget: ORT threads are shared out between the inference workers by
        // `detect` and `bench` (intra_threads_per_worker), spinning off so decode and
        // preprocessing get the cores back between runs; decode gets a quarter of the cores,
        // 1 to 4 frame threads.
        session: SessionConfig {
            eps: EpChoice::Listed(vec![EpKind::Cpu]),
            ep_options: ep_options(&e),
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

/// What decides the content of an input's outputs, recorded in `.done` markers: a rerun
/// skips an input only if its marker holds the same (serialised, so a field added here
/// cannot be forgotten in the comparison).
#[derive(Serialize)]
struct Fingerprint<'a> {
    model: &'a Path,
    /// Nanoseconds since the epoch of the model file's modification (0 if unknown).
    model_modified_ns: u64,
    model_len: u64,
    precision: Precision,
    labels: Option<&'a Path>,
    conf: f32,
    iou: f32,
    max_detections: u32,
    outputs: Vec<String>,
    preprocess: String,
    resize: Option<String>,
    mean: Option<[f32; 3]>,
    scale: Option<f32>,
    channel_order: Option<String>,
    model_format: Option<String>,
    max_frames: Option<u64>,
    stride: u64,
    start: Option<f64>,
    duration: Option<f64>,
    segment_s: Option<f64>,
    video: [String; 3],
    /// Absent without tracking.
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking: Option<TrackingFingerprint<'a>>,
    /// Absent without `--snapshots` (the fingerprint of a run without them is as it was).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    snapshots: bool,
}

#[derive(Serialize)]
struct TrackingFingerprint<'a> {
    tracker: &'a TrackerConfig,
    counter: &'a LineCounterConfig,
    lines: &'a [CountLine],
    /// Absent without zones (the fingerprint of a run without them is as it was).
    #[serde(skip_serializing_if = "ZoneConfig::is_empty")]
    zones: &'a ZoneConfig,
}

fn fingerprint(a: &DetectArgs, c: &Chosen, tracking: Option<&TrackingConfig>) -> String {
    let e = &a.engine;
    let meta = std::fs::metadata(&c.model).ok();
    let modified = meta.as_ref().and_then(|m| m.modified().ok());
    let since_epoch = modified.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    let f = Fingerprint {
        model: &c.model,
        model_modified_ns: since_epoch.map_or(0, |d| d.as_nanos() as u64),
        model_len: meta.map_or(0, |m| m.len()),
        precision: c.precision,
        labels: e.labels.as_deref(),
        conf: e.conf,
        iou: e.iou,
        max_detections: e.max_detections,
        outputs: a.outputs.iter().map(value_name).collect(),
        preprocess: value_name(&e.preprocess),
        resize: e.resize.map(|r| value_name(&r)),
        mean: e.mean,
        scale: e.scale,
        channel_order: e.channel_order.map(|c| value_name(&c)),
        model_format: e.model_format.forced().map(|f| format!("{f:?}")),
        max_frames: a.max_frames,
        stride: a.stride,
        start: e.start,
        duration: e.duration,
        segment_s: a.segment_s,
        video: [
            value_name(&e.video_preset),
            value_name(&e.video_tune),
            e.crf.to_string(),
        ],
        tracking: tracking.map(|t| TrackingFingerprint {
            tracker: &t.tracker,
            counter: &t.counter,
            lines: &t.lines,
            zones: &t.zones,
        }),
        snapshots: a.snapshots.snapshots && tracking.is_some(),
    };
    // Plain data: serialising it cannot fail.
    serde_json::to_string(&f).unwrap_or_default()
}

/// Caps that keep the machine alive: thread counts beyond a few per core only thrash.
fn check_thread_budget(a: &DetectArgs, c: &Chosen) -> anyhow::Result<()> {
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
    if c.workers_asked && c.workers > cap {
        return Err(over("--workers", c.workers as u32));
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
    // Names are chosen so that no output is written over any input of the list (every
    // shard sees the same list, so gives the same names).
    let protected = out.protect(&all);
    if let Some(summary) = &a.summary_json {
        if InputFiles::of(&all).contains(summary) {
            anyhow::bail!(
                "--summary-json {} would replace an input of this run",
                summary.display()
            );
        }
    }
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
            Some(n) => {
                out.check_stem(&p, n, &protected)?;
                n.clone()
            }
            None => out.stem_for(&p, &protected)?,
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
        let telemetry = super::telemetry_args::TelemetryPlan::new(&a.telemetry)?;
        let file = file_layer(a.engine.config.as_deref(), quiet)?;
        let settings = Settings::layered(&Layer::of_detect(&a), &file, &Layer::detect_defaults());
        let c = settings.one();
        check_thread_budget(&a, &c)?;
        settings.check_precisions()?;
        let labels = load_labels(&a.engine, &c.model)?;
        let labels_flag = a.engine.labels.clone();
        let track = a
            .track
            .then(|| tracking(&a.tracking, a.engine.conf, &labels))
            .transpose()?;
        let fingerprint = fingerprint(&a, &c, track.as_ref());
        let out = OutputDir::prepare(&a.out)?;
        let (inputs, stems) = plan_inputs(&a, &out, &fingerprint, quiet)?;
        let mut kinds = sink_kinds(&a.outputs, track.is_some());
        kinds.snapshots = a.snapshots.snapshots && track.is_some();
        let engine = engine(a.engine, (kinds, labels), a.out, (c.model, c.precision))?;
        if kinds.video {
            check_settings(&engine.pipeline.sinks.video)?;
        }
        let pipeline = PipelineConfig {
            inputs,
            stems,
            settings: fingerprint,
            force: a.force,
            batch: c.batch,
            streams: c.streams,
            max_frames: a.max_frames,
            realtime: a.realtime,
            selection: FrameSelection {
                stride: a.stride,
                ..engine.pipeline.selection
            },
            live: LiveOptions {
                reconnect: (a.reconnect || a.no_reconnect).then_some(a.reconnect),
                reconnect_max: Duration::from_secs_f64(a.reconnect_max_s),
            },
            segment: a.segment_s.map(|s| Duration::from_secs_f64(s.max(0.001))),
            tracking: track,
            ..engine.pipeline
        };
        // The thread budget: `workers` sessions with the cores shared out between them,
        // unless --threads says otherwise.
        let session = SessionConfig {
            intra_threads: intra_threads_per_worker(c.threads, c.workers),
            batch: Some(c.batch),
            eps: c.ep,
            ..engine.session
        };
        let ort_lib = engine
            .ort_lib
            .unwrap_or_else(|| resolve_ort_lib(None, &session.eps));
        Ok(DetectPlan {
            labels_flag,
            workers: c.workers,
            pipeline,
            session,
            model: engine.model,
            ort_lib,
            stats: a.stats,
            summary_json: a.summary_json,
            progress: !a.no_progress && !quiet,
            telemetry,
        })
    }
}

/// `bench --track off,on`: the tracking settings per value (`None`: off).
fn bench_tracking(a: &BenchArgs, labels: &Labels) -> anyhow::Result<Vec<Option<TrackingConfig>>> {
    let on = tracking(&a.tracking, a.engine.conf, labels)?;
    Ok(a.track
        .iter()
        .map(|t| (*t == OnOff::On).then(|| on.clone()))
        .collect())
}

/// The ONNX Runtime build a sweep loads (one serves the whole sweep): `--ort-lib`, else the
/// one for the most specific provider listed.
pub(super) fn sweep_ort_lib(explicit: Option<PathBuf>, eps: &[EpChoice]) -> PathBuf {
    let cpu = EpChoice::Listed(vec![EpKind::Cpu]);
    let pick = eps.iter().find(|e| **e != cpu).unwrap_or(&cpu);
    explicit.unwrap_or_else(|| resolve_ort_lib(None, pick))
}

impl BenchPlan {
    pub fn new(a: BenchArgs, quiet: bool) -> anyhow::Result<BenchPlan> {
        let file = file_layer(a.engine.config.as_deref(), quiet)?;
        let s = Settings::layered(&Layer::of_bench(&a), &file, &Layer::bench_defaults());
        s.check_precisions()?;
        let precisions: Vec<(Precision, PathBuf)> =
            s.precisions.iter().map(|&p| (p, s.model_for(p))).collect();
        let labels = load_labels(&a.engine, &precisions[0].1)?;
        let tracking = bench_tracking(&a, &labels)?;
        let engine = engine(
            a.engine,
            (
                sink_kinds(&a.outputs, tracking.iter().any(Option::is_some)),
                labels,
            ),
            a.out,
            (precisions[0].1.clone(), precisions[0].0),
        )
        .context("invalid bench settings")?;
        let ort_lib = sweep_ort_lib(engine.ort_lib, &s.eps);
        Ok(BenchPlan {
            cfg: BenchConfig {
                input: a.input,
                precisions,
                batches: s.batches,
                eps: s.eps,
                threads: s.threads,
                workers: s.workers,
                strides: a.stride,
                streams: s.streams,
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

#[cfg(test)]
mod tests;
