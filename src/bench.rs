//! `vidinfer bench`: sweeps batch size × execution provider × thread count over one input.
//! For each point it measures the model alone (the ceiling: the same session running
//! preprocessed frames of the input back to back) and the whole pipeline end to end, with
//! per-stage times and latency percentiles, then writes a table, JSON, CSV and an SVG plot.

use std::{
    path::{Path, PathBuf},
    sync::{atomic::AtomicBool, Arc},
    time::Instant,
};

use serde::Serialize;

use crate::{
    channel::StageReport,
    decode::{DecodeOptions, Decoder, RgbConverter},
    error::{Error, Result},
    infer::{Detector, EpChoice, EpKind, Runtime, SessionConfig},
    pipeline::{self, PipelineConfig},
    preprocess::{PreprocessSpec, Resizer, RgbImage},
};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    pub input: PathBuf,
    pub model: PathBuf,
    pub batches: Vec<usize>,
    pub eps: Vec<EpKind>,
    /// ORT intra-op thread counts to try (0 = ORT default).
    pub threads: Vec<usize>,
    /// Inference worker counts to try (sessions running batches side by side; 0: the
    /// provider's default, [`EpChoice::default_workers`]).
    pub workers: Vec<usize>,
    /// Frames per end-to-end run (and images per model-only run).
    pub frames: u64,
    /// Untimed model-only calls before timing.
    pub warmup_runs: usize,
    /// Model-only / end-to-end pairs per point; the medians are reported.
    pub repeats: usize,
    /// The pipeline template (sinks, decode threads, queues); inputs/batch/max_frames are set per point.
    pub pipeline: PipelineConfig,
    pub session: SessionConfig,
}

#[derive(Debug, Clone, Copy, Serialize, Default)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `v` (empty → zeros).
    pub fn of(v: &[f64]) -> Self {
        if v.is_empty() {
            return Percentiles::default();
        }
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        let at = |p: f64| s[(((p / 100.0) * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Percentiles {
            p50: at(50.0),
            p95: at(95.0),
            p99: at(99.0),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchPoint {
    pub ep: String,
    /// Inference workers (sessions running side by side).
    pub workers: usize,
    /// ORT intra-op threads per worker.
    pub threads: usize,
    pub batch: usize,
    pub model_fps: f64,
    pub model_batch_ms: Percentiles,
    pub e2e_fps: f64,
    pub e2e_vs_model: f64,
    /// Process CPU milliseconds per frame while the model ran alone (0 if unknown).
    pub model_cpu_ms: f64,
    /// Process CPU milliseconds per frame end to end, all stages (0 if unknown).
    pub e2e_cpu_ms: f64,
    pub frames: u64,
    pub frame_latency_ms: Percentiles,
    pub batch_ms: Percentiles,
    pub stages: Vec<StageReport>,
    /// Model-only / end-to-end pairs measured; the point holds the medians.
    pub repeats: usize,
}

/// Decodes and preprocesses the first `n` frames of `input` into one NCHW buffer
/// (repeating frames when the input is shorter).
pub fn preprocessed_frames(input: &Path, spec: PreprocessSpec, n: usize) -> Result<Vec<f32>> {
    let mut dec = Decoder::open(input, &DecodeOptions::default())?;
    let mut rgb = RgbConverter::default();
    let mut out = vec![0f32; n * spec.slot_len()];
    let mut got = 0;
    while got < n {
        let Some(f) = dec.next_frame()? else { break };
        let (w, h) = (f.picture.width(), f.picture.height());
        let (data, stride) = rgb.convert(&f.picture)?;
        Resizer::new(spec, w, h).run(
            &RgbImage {
                data,
                width: w,
                height: h,
                stride,
            },
            &mut out[got * spec.slot_len()..(got + 1) * spec.slot_len()],
        );
        got += 1;
    }
    if got == 0 {
        return Err(Error::NoFrames {
            path: input.into(),
            detail: String::new(),
        });
    }
    for i in got..n {
        out.copy_within(
            (i % got) * spec.slot_len()..(i % got + 1) * spec.slot_len(),
            i * spec.slot_len(),
        );
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
    input: &[f32],
    batch: usize,
    cfg: &BenchConfig,
) -> Result<ModelRun> {
    for det in dets.iter_mut() {
        for _ in 0..cfg.warmup_runs {
            det.run(input, batch)?;
        }
    }
    let workers = dets.len().max(1);
    let runs = (cfg.frames as usize)
        .div_ceil(batch)
        .max(3)
        .div_ceil(workers);
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

/// The middle element by `key` (the upper one of an even count).
fn median_by<T>(mut v: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    v.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let mid = v.len() / 2;
    v.into_iter().nth(mid)
}

/// One grid point: `cfg.repeats` alternated model-only / end-to-end pairs, medians kept.
fn measure_point(
    rt: &Runtime,
    cfg: &BenchConfig,
    ep: EpKind,
    workers: usize,
    threads: usize,
    batch: usize,
) -> Result<BenchPoint> {
    let mut session = cfg.session.clone();
    session.eps = EpChoice::Listed(vec![ep]);
    let threads = crate::infer::intra_threads_per_worker(threads, workers);
    session.intra_threads = threads;
    session.ep_options.intra_threads = threads;
    let mut model_runs = Vec::new();
    let mut reports = Vec::new();
    let mut input: Option<Vec<f32>> = None;
    for _ in 0..cfg.repeats.max(1) {
        let mut dets = (0..workers)
            .map(|_| Detector::load(rt, &cfg.model, &session))
            .collect::<Result<Vec<_>>>()?;
        let batch = dets[0].fixed_batch().unwrap_or(batch);
        let input = match &input {
            Some(v) => v,
            None => input.insert(preprocessed_frames(&cfg.input, *dets[0].spec(), batch)?),
        };
        model_runs.push(time_model(&mut dets, input, batch, cfg)?);

        let mut pcfg = cfg.pipeline.clone();
        pcfg.inputs = vec![cfg.input.clone()];
        pcfg.stems = Vec::new();
        pcfg.batch = batch;
        pcfg.max_frames = Some(cfg.frames);
        pcfg.progress = false;
        let report = pipeline::run(&pcfg, dets, Arc::new(AtomicBool::new(false)))?;
        if let Some(e) = report.inputs.iter().find_map(|i| i.error.as_ref()) {
            return Err(Error::Config(format!("bench input failed: {e}")));
        }
        reports.push(report);
    }
    let (Some(model), Some(report)) = (
        median_by(model_runs, |m| m.fps),
        median_by(reports, |r| r.fps()),
    ) else {
        return Err(Error::Config("no bench runs".into()));
    };
    let e2e_fps = report.fps();
    Ok(BenchPoint {
        ep: report.ep.to_string(),
        workers,
        threads,
        batch: report.batch,
        model_fps: model.fps,
        model_batch_ms: Percentiles::of(&model.batch_ms),
        e2e_fps,
        e2e_vs_model: e2e_fps / model.fps,
        model_cpu_ms: model.cpu_ms,
        e2e_cpu_ms: report.cpu_ms_per_frame().unwrap_or(0.0),
        frames: report.frames(),
        frame_latency_ms: Percentiles::of(&report.frame_latency_ms),
        batch_ms: Percentiles::of(&report.batch_ms),
        stages: report.stages.clone(),
        repeats: cfg.repeats.max(1),
    })
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
    for &ep in &cfg.eps {
        for &workers in &cfg.workers {
            for &threads in &cfg.threads {
                for &batch in &cfg.batches {
                    let workers = if workers == 0 {
                        EpChoice::Listed(vec![ep]).default_workers()
                    } else {
                        workers
                    };
                    let point = measure_point(rt, cfg, ep, workers, threads, batch)?;
                    progress(&point);
                    points.push(point);
                }
            }
        }
    }
    Ok(points)
}

impl BenchPoint {
    /// Busy milliseconds per frame of the named stage (0 if absent).
    pub fn stage_ms(&self, name: &str) -> f64 {
        self.stages
            .iter()
            .find(|s| s.name == name)
            .map_or(0.0, |s| s.ms_per_item)
    }
}

pub fn table(points: &[BenchPoint]) -> String {
    let mut s = String::from(
        "ep        wk thr batch  model fps  e2e fps  e2e/model  CPU ms/frame model/e2e  frame lat p50/p95/p99 ms  batch ms p50/p95/p99  decode  prep  infer  post  sink (ms/frame)\n",
    );
    for p in points {
        let st = |n: &str| p.stage_ms(n);
        s.push_str(&format!(
            "{:<9} {:>2} {:>3} {:>5} {:>10.1} {:>8.1} {:>10.3}  {:>11.2}/{:<11.2}  {:>7.1}/{:>6.1}/{:>6.1}       {:>6.1}/{:>6.1}/{:>6.1}  {:>6.2} {:>5.2} {:>6.2} {:>5.2} {:>5.2}\n",
            p.ep,
            p.workers,
            p.threads,
            p.batch,
            p.model_fps,
            p.e2e_fps,
            p.e2e_vs_model,
            p.model_cpu_ms,
            p.e2e_cpu_ms,
            p.frame_latency_ms.p50,
            p.frame_latency_ms.p95,
            p.frame_latency_ms.p99,
            p.batch_ms.p50,
            p.batch_ms.p95,
            p.batch_ms.p99,
            st("decode"),
            st("preprocess"),
            st("infer"),
            st("postprocess"),
            st("sinks")
        ));
    }
    s
}

pub fn csv(points: &[BenchPoint]) -> String {
    let mut s = String::from("ep,workers,threads,batch,model_fps,e2e_fps,e2e_vs_model,model_cpu_ms,e2e_cpu_ms,frames,frame_p50_ms,frame_p95_ms,frame_p99_ms,batch_p50_ms,batch_p95_ms,batch_p99_ms,decode_ms,preprocess_ms,infer_ms,postprocess_ms,sinks_ms\n");
    for p in points {
        let st = |n: &str| p.stage_ms(n);
        s.push_str(&format!(
            "{},{},{},{},{:.2},{:.2},{:.4},{:.3},{:.3},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}\n",
            p.ep,
            p.workers,
            p.threads,
            p.batch,
            p.model_fps,
            p.e2e_fps,
            p.e2e_vs_model,
            p.model_cpu_ms,
            p.e2e_cpu_ms,
            p.frames,
            p.frame_latency_ms.p50,
            p.frame_latency_ms.p95,
            p.frame_latency_ms.p99,
            p.batch_ms.p50,
            p.batch_ms.p95,
            p.batch_ms.p99,
            st("decode"),
            st("preprocess"),
            st("infer"),
            st("postprocess"),
            st("sinks")
        ));
    }
    s
}

/// SVG plot of fps against batch size: one end-to-end and one model-only line per EP and thread count.
pub fn plot_svg(points: &[BenchPoint], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let err = |e: String| Error::Io {
        path: path.into(),
        source: std::io::Error::other(e),
    };
    let max_fps = points
        .iter()
        .map(|p| p.model_fps.max(p.e2e_fps))
        .fold(1.0, f64::max)
        * 1.15;
    let max_batch = points.iter().map(|p| p.batch).max().unwrap_or(1) as f64;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "vidinfer bench: frames per second vs batch size",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((0.5f64..max_batch * 1.5).log_scale(), 0f64..max_fps)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("batch size")
        .y_desc("frames / s")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let mut keys: Vec<(String, usize, usize)> = points
        .iter()
        .map(|p| (p.ep.clone(), p.workers, p.threads))
        .collect();
    keys.dedup();
    for (i, (ep, workers, threads)) in keys.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        let series: Vec<&BenchPoint> = points
            .iter()
            .filter(|p| &p.ep == ep && p.workers == *workers && p.threads == *threads)
            .collect();
        let e2e: Vec<(f64, f64)> = series.iter().map(|p| (p.batch as f64, p.e2e_fps)).collect();
        let model: Vec<(f64, f64)> = series
            .iter()
            .map(|p| (p.batch as f64, p.model_fps))
            .collect();
        let t = format!("{workers}x{threads}");
        chart
            .draw_series(LineSeries::new(e2e.clone(), colour.stroke_width(2)))
            .map_err(|e| err(e.to_string()))?
            .label(format!("{ep} workers x threads={t} end-to-end"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(e2e.iter().map(|&p| Circle::new(p, 4, colour.filled())))
            .map_err(|e| err(e.to_string()))?;
        let dashed = colour.mix(0.5);
        chart
            .draw_series(LineSeries::new(model.clone(), dashed.stroke_width(1)))
            .map_err(|e| err(e.to_string()))?
            .label(format!("{ep} workers x threads={t} model only"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], dashed.stroke_width(1))
            });
        chart
            .draw_series(
                model
                    .iter()
                    .map(|&p| TriangleMarker::new(p, 4, dashed.filled())),
            )
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        let p = Percentiles::of(&v);
        assert_eq!((p.p50, p.p95, p.p99), (50.0, 95.0, 99.0));
        let one = Percentiles::of(&[7.0]);
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        assert_eq!(Percentiles::of(&[]).p50, 0.0);
    }

    #[test]
    fn csv_has_one_row_per_point() {
        let p = BenchPoint {
            ep: "cpu".into(),
            workers: 1,
            threads: 2,
            batch: 4,
            model_fps: 100.0,
            model_batch_ms: Percentiles::default(),
            e2e_fps: 96.0,
            e2e_vs_model: 0.96,
            model_cpu_ms: 10.0,
            e2e_cpu_ms: 10.5,
            frames: 200,
            frame_latency_ms: Percentiles::default(),
            batch_ms: Percentiles::default(),
            stages: vec![],
            repeats: 1,
        };
        let c = csv(&[p.clone(), p]);
        assert_eq!(c.lines().count(), 3);
        assert!(c
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("cpu,1,2,4,100.00,96.00,0.9600,10.000,10.500,200,"));
    }
}
