//! `vidinfer bench`: sweeps batch size × execution provider × workers × threads × streams over
//! one input. For each point it measures the model alone (the ceiling: the same sessions
//! running preprocessed frames of the input back to back) and the whole pipeline end to end,
//! with per-stage times, latency percentiles and peak memory. End to end, the input can be
//! decoded several times over as that many inputs (`copies`), so that several streams have
//! inputs to decode side by side. Measurement only: [`BenchPoint`] is one flat
//! serde record, so one definition serves the JSON and CSV files; tables and plots are the
//! caller's.

use std::{
    path::{Path, PathBuf},
    sync::{atomic::AtomicBool, Arc},
    time::Instant,
};

use serde::{Deserialize, Serialize};

use crate::{
    decode::{DecodeOptions, Decoder},
    error::{Error, Result},
    infer::{Detector, EpChoice, EpKind, Precision, Runtime, SessionConfig},
    pipeline::{self, PipelineConfig, RunReport},
    preprocess::{frame::FramePreprocessor, Kernel, PreprocessSpec, Tensor},
    track::TrackingConfig,
};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub input: PathBuf,
    /// The precisions to sweep, each with the model it runs (an int8 precision needs the
    /// quantised model).
    pub precisions: Vec<(Precision, PathBuf)>,
    pub batches: Vec<usize>,
    /// The providers to sweep, each a session's choice (a single provider, a list in order of
    /// preference, or auto); the point records the one that ran.
    pub eps: Vec<EpChoice>,
    /// ORT intra-op thread counts to try (0 = ORT default).
    pub threads: Vec<usize>,
    /// Inference worker counts to try (sessions running batches side by side; 0: the
    /// provider's default, [`EpChoice::default_workers`]).
    pub workers: Vec<usize>,
    /// Frame strides to try end to end (1: every frame runs the model).
    pub strides: Vec<u64>,
    /// Inputs decoded side by side to try end to end (0: the provider's default,
    /// [`EpChoice::default_streams`]).
    pub streams: Vec<usize>,
    /// The end-to-end runs decode the input this many times over, as this many inputs (0: as
    /// many as the most streams tried).
    pub copies: usize,
    /// Tracking to try end to end (`None`: off), e.g. `[None, Some(..)]` for its cost.
    pub tracking: Vec<Option<TrackingConfig>>,
    /// Frames per input of an end-to-end run (and images per model-only run).
    pub frames: u64,
    /// Untimed model-only calls before timing.
    pub warmup_runs: usize,
    /// Model-only / end-to-end pairs per point; the medians are reported.
    pub repeats: usize,
    /// The pipeline template (sinks, decode threads, queues); inputs/batch/max_frames are set per point.
    pub pipeline: PipelineConfig,
    pub session: SessionConfig,
}

fn one() -> usize {
    1
}

/// An [`EpKind`] as its name (`cpu`, `openvino`, ...), the way `--ep` spells it.
mod ep_name {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    use crate::infer::EpKind;

    pub fn serialize<S: Serializer>(ep: &EpKind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(ep.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<EpKind, D::Error> {
        String::deserialize(d)?.parse().map_err(D::Error::custom)
    }
}

/// Nearest-rank percentiles (p50, p95, p99) of `v`; zeros for an empty list.
pub fn percentiles(v: &[f64]) -> [f64; 3] {
    if v.is_empty() {
        return [0.0; 3];
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let at = |p: f64| s[(((p / 100.0) * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    [at(50.0), at(95.0), at(99.0)]
}

/// One grid point: medians of the alternated model-only and end-to-end runs. Flat, so the
/// same record is a JSON object and a CSV row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchPoint {
    /// The execution provider that ran (as `--ep` names it).
    #[serde(with = "ep_name")]
    pub ep: EpKind,
    /// The arithmetic that ran (fp32, bf16, int8).
    pub precision: Precision,
    /// Inference workers (sessions running side by side).
    pub workers: usize,
    /// ORT intra-op threads per worker.
    pub threads: usize,
    pub batch: usize,
    /// The model ran on every `stride`-th frame end to end; `e2e_fps` counts every frame.
    pub stride: u64,
    /// Inputs decoded side by side end to end.
    #[serde(default = "one")]
    pub streams: usize,
    /// Inputs of each end-to-end run (the input decoded this many times over).
    #[serde(default = "one")]
    pub inputs: usize,
    /// Tracking (and line counting, if lines were given) ran end to end.
    #[serde(default)]
    pub track: bool,
    pub model_fps: f64,
    pub e2e_fps: f64,
    pub e2e_vs_model: f64,
    /// Process CPU milliseconds per frame while the model ran alone (0 if unknown).
    pub model_cpu_ms: f64,
    /// Process CPU milliseconds per frame end to end, all stages (0 if unknown).
    pub e2e_cpu_ms: f64,
    /// Peak resident memory of the process during the end-to-end runs, the sessions included
    /// (MiB, the largest of the repeats; 0 if unknown).
    #[serde(default)]
    pub peak_rss_mib: f64,
    pub frames: u64,
    /// Milliseconds per inference call when the model runs alone.
    pub model_batch_p50_ms: f64,
    pub model_batch_p95_ms: f64,
    pub model_batch_p99_ms: f64,
    /// Milliseconds from a frame's decode to the end of its sinks, end to end.
    pub frame_p50_ms: f64,
    pub frame_p95_ms: f64,
    pub frame_p99_ms: f64,
    /// Milliseconds per inference call, end to end.
    pub batch_p50_ms: f64,
    pub batch_p95_ms: f64,
    pub batch_p99_ms: f64,
    /// Busy milliseconds per item of each stage, end to end.
    pub decode_ms: f64,
    pub preprocess_ms: f64,
    pub infer_ms: f64,
    pub postprocess_ms: f64,
    pub sinks_ms: f64,
    /// Model-only / end-to-end pairs measured; the point holds the medians.
    pub repeats: usize,
    /// The CPU's model and ISA extensions (AVX2, AVX-512, VNNI, BF16, AMX): fps depend on them.
    pub cpu: String,
}

/// Decodes and preprocesses the first `n` frames of `input` into one batch tensor
/// (repeating frames when the input is shorter).
pub fn preprocessed_frames(input: &Path, spec: PreprocessSpec, n: usize) -> Result<Tensor> {
    let mut dec = Decoder::open(input, &DecodeOptions::default())?;
    let mut pre = FramePreprocessor::new(Kernel::Exact, spec);
    let slot = spec.slot_len();
    let mut out = Tensor::new(spec.dtype);
    out.grow_to(n * slot);
    let mut got = 0;
    while got < n {
        let Some(f) = dec.next_frame()? else { break };
        pre.write(&f.picture, out.slot(got * slot..(got + 1) * slot))
            .map_err(|source| Error::Preprocess {
                path: input.into(),
                frame: f.index,
                source,
            })?;
        got += 1;
    }
    if got == 0 {
        return Err(Error::NoFrames {
            path: input.into(),
            corrupt: dec.issues().corrupt_packets,
            rejected: dec.issues().rejected_packets,
        });
    }
    for i in got..n {
        let from = (i % got) * slot..(i % got + 1) * slot;
        match &mut out {
            Tensor::F32(v) => v.copy_within(from, i * slot),
            Tensor::U8(v) => v.copy_within(from, i * slot),
        }
    }
    Ok(out)
}

/// One model-only measurement: fps, per-call milliseconds, CPU ms per frame.
struct ModelRun {
    fps: f64,
    batch_ms: Vec<f64>,
    cpu_ms: f64,
}

/// Times the model alone: every detector (one per inference worker) runs its share of the
/// batches on its own thread at the same time, as the workers do in the pipeline.
fn time_model(
    dets: &mut [Detector],
    input: &Tensor,
    batch: usize,
    (warmup_runs, frames): (usize, u64),
) -> Result<ModelRun> {
    for det in dets.iter_mut() {
        for _ in 0..warmup_runs {
            det.run(input, batch)?;
        }
    }
    let workers = dets.len().max(1);
    let runs = (frames as usize).div_ceil(batch).max(3).div_ceil(workers);
    let cpu0 = crate::sys::process_cpu_time();
    let t0 = Instant::now();
    let per_worker: Vec<Result<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = dets
            .iter_mut()
            .map(|det| {
                s.spawn(move || {
                    let mut ms = Vec::with_capacity(runs);
                    for _ in 0..runs {
                        let t = Instant::now();
                        det.run(input, batch)?;
                        ms.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    Ok(ms)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(Err(Error::StageDied("infer"))))
            .collect()
    });
    let wall = t0.elapsed().as_secs_f64();
    let mut batch_ms = Vec::new();
    for r in per_worker {
        batch_ms.extend(r?);
    }
    let images = batch_ms.len() * batch;
    let cpu_ms = cpu0
        .zip(crate::sys::process_cpu_time())
        .map_or(0.0, |(a, b)| (b - a).as_secs_f64() * 1e3 / images as f64);
    Ok(ModelRun {
        fps: images as f64 / wall,
        batch_ms,
        cpu_ms,
    })
}

/// Model-only frames per second of `model` in one session, batch 1, on a mid-grey image
/// (convolution time does not depend on the pixels): a quick measurement for `info`, where
/// there is no input to bench on. `frames` timed calls after 3 untimed ones.
pub fn model_only_fps(
    rt: &Runtime,
    model: &Path,
    session: &SessionConfig,
    frames: u64,
) -> Result<f64> {
    let mut det = Detector::load(rt, model, session)?;
    let spec = *det.spec();
    let mut input = Tensor::new(spec.dtype);
    input.grow_to(spec.slot_len());
    match &mut input {
        Tensor::F32(v) => v.fill(0.5),
        Tensor::U8(v) => v.fill(128),
    }
    let run = time_model(std::slice::from_mut(&mut det), &input, 1, (3, frames))?;
    Ok(run.fps)
}

/// The middle element by `key` (the upper one of an even count).
fn median_by<T>(mut v: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    v.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let mid = v.len() / 2;
    v.into_iter().nth(mid)
}

/// One point of the sweep.
#[derive(Debug, Clone)]
struct Point<'a> {
    ep: &'a EpChoice,
    precision: Precision,
    model: &'a Path,
    workers: usize,
    threads: usize,
    batch: usize,
    stride: u64,
    streams: usize,
    /// Inputs per end-to-end run.
    copies: usize,
    tracking: Option<&'a TrackingConfig>,
}

/// Output stems of the input decoded `copies` times over: one each (`<stem>-1`, ...), so the
/// copies never share outputs; none to claim for one copy.
fn copy_stems(input: &Path, copies: usize) -> Vec<String> {
    if copies <= 1 {
        return Vec::new();
    }
    let base = crate::output::base_stem(input);
    (1..=copies).map(|i| format!("{base}-{i}")).collect()
}

/// One grid point: `cfg.repeats` alternated model-only / end-to-end pairs, medians kept.
fn measure_point(rt: &Runtime, cfg: &BenchConfig, p: &Point<'_>) -> Result<BenchPoint> {
    let (workers, batch) = (p.workers, p.batch);
    let mut session = cfg.session.clone();
    session.eps = p.ep.clone();
    session.precision = p.precision;
    session.batch = Some(batch);
    let threads = crate::infer::intra_threads_per_worker(p.threads, workers);
    session.intra_threads = threads;
    let mut model_runs = Vec::new();
    let mut reports = Vec::new();
    let mut input: Option<Tensor> = None;
    let mut peak_rss_kib = Some(0);
    for _ in 0..cfg.repeats.max(1) {
        let mut dets = Detector::load_workers(rt, p.model, &session, workers)?;
        let batch = dets[0].fixed_batch().unwrap_or(batch);
        let input = match &input {
            Some(v) => v,
            None => input.insert(preprocessed_frames(&cfg.input, *dets[0].spec(), batch)?),
        };
        model_runs.push(time_model(
            &mut dets,
            input,
            batch,
            (cfg.warmup_runs, cfg.frames),
        )?);

        let mut pcfg = cfg.pipeline.clone();
        pcfg.inputs = vec![cfg.input.clone(); p.copies];
        pcfg.stems = copy_stems(&cfg.input, p.copies);
        pcfg.streams = p.streams;
        pcfg.batch = batch;
        pcfg.max_frames = Some(cfg.frames);
        pcfg.selection.stride = p.stride;
        pcfg.tracking = p.tracking.cloned();
        // Every repeat writes the same outputs again: a done marker must not skip them.
        pcfg.force = true;
        let cancel = Arc::new(AtomicBool::new(false));
        // The peak of this run alone, not of the runs before it (unknown if it cannot be reset).
        let reset = crate::sys::reset_peak_rss();
        let mut report = pipeline::run(&pcfg, dets, cancel, &pipeline::Quiet)?;
        peak_rss_kib = peak_rss_kib
            .zip(report.peak_rss_kib.filter(|_| reset))
            .map(|(a, b)| a.max(b));
        if let Some(e) = report.inputs.iter_mut().find_map(|i| i.error.take()) {
            return Err(e);
        }
        if report.frames == 0 {
            return Err(Error::NoFrames {
                path: cfg.input.clone(),
                corrupt: 0,
                rejected: 0,
            });
        }
        reports.push(report);
    }
    let (Some(model), Some(report)) = (
        median_by(model_runs, |m| m.fps),
        median_by(reports, |r| r.fps),
    ) else {
        return Err(Error::Config(
            "a benchmark needs at least one repetition".into(),
        ));
    };
    let mut point = point_from(
        &model,
        &report,
        workers,
        threads,
        (p.stride, cfg.repeats.max(1)),
    );
    point.streams = report.streams.len();
    point.inputs = p.copies;
    point.peak_rss_mib = peak_rss_kib.map_or(0.0, |k| k as f64 / 1024.0);
    point.track = p.tracking.is_some();
    Ok(point)
}

/// The flat record of one point from its median model-only and end-to-end runs.
fn point_from(
    model: &ModelRun,
    report: &RunReport,
    workers: usize,
    threads: usize,
    (stride, repeats): (u64, usize),
) -> BenchPoint {
    let [model_batch_p50_ms, model_batch_p95_ms, model_batch_p99_ms] = percentiles(&model.batch_ms);
    let [frame_p50_ms, frame_p95_ms, frame_p99_ms] = percentiles(&report.frame_latency_ms);
    let [batch_p50_ms, batch_p95_ms, batch_p99_ms] = percentiles(&report.batch_ms);
    let stage = |name: &str| {
        report
            .stages
            .iter()
            .find(|s| s.name == name)
            .map_or(0.0, |s| s.ms_per_item)
    };
    let isa = crate::sys::CpuIsa::detect();
    BenchPoint {
        ep: report.ep,
        precision: report.precision,
        workers,
        threads,
        batch: report.batch,
        stride,
        streams: 1,
        inputs: 1,
        track: false,
        model_fps: model.fps,
        e2e_fps: report.fps,
        e2e_vs_model: report.fps / model.fps,
        model_cpu_ms: model.cpu_ms,
        e2e_cpu_ms: report.cpu_ms_per_frame.unwrap_or(0.0),
        peak_rss_mib: 0.0,
        frames: report.frames,
        model_batch_p50_ms,
        model_batch_p95_ms,
        model_batch_p99_ms,
        frame_p50_ms,
        frame_p95_ms,
        frame_p99_ms,
        batch_p50_ms,
        batch_p95_ms,
        batch_p99_ms,
        decode_ms: stage("decode"),
        preprocess_ms: stage("preprocess"),
        infer_ms: stage("infer"),
        postprocess_ms: stage("postprocess"),
        sinks_ms: stage("sinks"),
        repeats,
        cpu: format!("{} ({})", isa.model, isa.summary()),
    }
}

/// Every point of the sweep, providers outermost, streams innermost.
fn grid(cfg: &BenchConfig) -> Vec<Point<'_>> {
    let mut v = grid_without_streams(cfg);
    v = v
        .into_iter()
        .flat_map(|p| {
            cfg.streams.iter().map(move |&s| Point {
                streams: match s {
                    0 => p.ep.default_streams(),
                    s => s,
                },
                ..p.clone()
            })
        })
        .collect();
    let copies = match cfg.copies {
        0 => v.iter().map(|p| p.streams).max().unwrap_or(1),
        c => c,
    };
    for p in &mut v {
        p.copies = copies;
    }
    v
}

/// The sweep's points with one stream each.
fn grid_without_streams(cfg: &BenchConfig) -> Vec<Point<'_>> {
    let mut v = Vec::new();
    for ep in &cfg.eps {
        for (precision, model) in &cfg.precisions {
            for &workers in &cfg.workers {
                let workers = match workers {
                    0 => ep.default_workers(),
                    w => w,
                };
                for &threads in &cfg.threads {
                    for &batch in &cfg.batches {
                        for &stride in &cfg.strides {
                            for tracking in &cfg.tracking {
                                v.push(Point {
                                    ep,
                                    precision: *precision,
                                    model,
                                    workers,
                                    threads,
                                    batch,
                                    stride,
                                    tracking: tracking.as_ref(),
                                    streams: 1,
                                    copies: 1,
                                });
                            }
                        }
                    }
                }
            }
        }
    }
    v
}

/// Runs the whole sweep. `progress` is called with a line per finished point.
///
/// Each point alternates a model-only run and an end-to-end run `cfg.repeats` times (a fresh
/// session each time) and reports the median of each, so a slow moment of a shared machine
/// does not decide the ratio.
pub fn run(
    rt: &Runtime,
    cfg: &BenchConfig,
    mut progress: impl FnMut(&BenchPoint),
) -> Result<Vec<BenchPoint>> {
    let mut points = Vec::new();
    for p in grid(cfg) {
        let point = measure_point(rt, cfg, &p)?;
        progress(&point);
        points.push(point);
    }
    Ok(points)
}

/// A reduced-precision point (int8, bf16) that ran slower end to end than fp32 with everything
/// else the same (provider, workers, threads, batch, stride, streams, inputs, tracking).
#[derive(Debug, Clone, PartialEq)]
pub struct SlowerThanFp32 {
    pub reduced: BenchPoint,
    pub fp32: BenchPoint,
}

/// The measured points where reduced precision does not pay on this machine: each reduced
/// point paired with the fp32 point of the same settings, where fp32 was faster end to end.
/// Points without an fp32 twin are not judged.
pub fn slower_than_fp32(points: &[BenchPoint]) -> Vec<SlowerThanFp32> {
    let same = |a: &BenchPoint, b: &BenchPoint| {
        (
            a.ep, a.workers, a.threads, a.batch, a.stride, a.streams, a.inputs, a.track,
        ) == (
            b.ep, b.workers, b.threads, b.batch, b.stride, b.streams, b.inputs, b.track,
        )
    };
    points
        .iter()
        .filter(|r| r.precision != Precision::Fp32)
        .filter_map(|r| {
            let f = points
                .iter()
                .find(|f| f.precision == Precision::Fp32 && same(r, f))?;
            (r.e2e_fps < f.e2e_fps).then(|| SlowerThanFp32 {
                reduced: r.clone(),
                fp32: f.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentiles(&v), [50.0, 95.0, 99.0]);
        assert_eq!(percentiles(&[7.0]), [7.0; 3]);
        assert_eq!(percentiles(&[]), [0.0; 3]);
    }

    /// A point as the JSON file holds it (openvino, bf16, 1 worker x 1 thread, batch 1).
    const POINT_JSON: &str = r#"{"ep":"openvino","precision":"bf16","workers":1,"threads":1,"batch":1,
            "stride":1,"model_fps":1,"e2e_fps":1,"e2e_vs_model":1,"model_cpu_ms":0,
            "e2e_cpu_ms":0,"frames":1,"model_batch_p50_ms":0,"model_batch_p95_ms":0,
            "model_batch_p99_ms":0,"frame_p50_ms":0,"frame_p95_ms":0,"frame_p99_ms":0,
            "batch_p50_ms":0,"batch_p95_ms":0,"batch_p99_ms":0,"decode_ms":0,
            "preprocess_ms":0,"infer_ms":0,"postprocess_ms":0,"sinks_ms":0,"repeats":1,
            "cpu":"x"}"#;

    #[test]
    fn points_name_their_provider_and_precision_as_the_flags_do() {
        let p: BenchPoint = serde_json::from_str(POINT_JSON).unwrap();
        assert_eq!((p.ep, p.precision), (EpKind::OpenVino, Precision::Bf16));
        let back = serde_json::to_value(&p).unwrap();
        assert_eq!(
            (back["ep"].as_str(), back["precision"].as_str()),
            (Some("openvino"), Some("bf16"))
        );
    }

    fn point(ep: EpKind, precision: Precision, batch: usize, e2e_fps: f64) -> BenchPoint {
        BenchPoint {
            ep,
            precision,
            batch,
            e2e_fps,
            ..serde_json::from_str(POINT_JSON).unwrap()
        }
    }

    #[test]
    fn reduced_precision_slower_than_its_fp32_twin_is_found() {
        let (cpu, ov) = (EpKind::Cpu, EpKind::OpenVino);
        let points = [
            point(cpu, Precision::Fp32, 1, 92.0),
            point(cpu, Precision::Int8, 1, 52.0),
            point(cpu, Precision::Int8, 4, 40.0), // no fp32 at batch 4: not judged
            point(ov, Precision::Fp32, 1, 100.0),
            point(ov, Precision::Int8, 1, 176.0),
            point(ov, Precision::Bf16, 1, 99.0),
        ];
        let slower: Vec<_> = slower_than_fp32(&points)
            .iter()
            .map(|s| (s.reduced.ep, s.reduced.precision, s.fp32.e2e_fps))
            .collect();
        assert_eq!(
            slower,
            [(cpu, Precision::Int8, 92.0), (ov, Precision::Bf16, 100.0)]
        );
    }

    #[test]
    fn medians_pick_the_middle_run() {
        assert_eq!(median_by(vec![3.0, 1.0, 2.0], |v| *v), Some(2.0));
        assert_eq!(median_by(vec![4.0, 1.0], |v| *v), Some(4.0));
        assert_eq!(median_by(Vec::<f64>::new(), |v| *v), None);
    }
}
