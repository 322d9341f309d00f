//! `vidinfer tune INPUT`: finds the fastest settings this machine runs whose detections agree
//! with fp32's, and writes them to `vidinfer.toml` for `detect` and `bench`.
//!
//! 1. fp32 on the CPU provider detects on the input's first frames: the reference.
//! 2. Every other provider × precision this machine can run (int8 on the CPU provider; fp32,
//!    int8 and, on CPUs with AVX-512 BF16 or AMX, bf16 through OpenVINO; the GPU providers when their
//!    build is installed) detects on the same frames; one that agrees with the reference below
//!    `--min-agreement` (same class, IoU >= 0.5, both directions) is left out, and said so.
//! 3. The bench API ([`vidinfer::bench`]) sweeps workers × batch for each remaining one; the
//!    best end-to-end fps wins. All in this process, with one ONNX Runtime: the build with the
//!    most providers installed (GPU, else OpenVINO, else CPU), as `--ep auto` loads it.

use std::{
    path::PathBuf,
    process::ExitCode,
    sync::{atomic::AtomicBool, Arc},
};

use anyhow::{bail, Context as _};
use vidinfer::{
    bench::{BenchConfig, BenchPoint},
    infer::{
        intra_threads_per_worker, resolve_ort_lib, Detector, EpChoice, EpKind, Precision, Runtime,
        SessionConfig,
    },
    pipeline::{self, PipelineConfig, Quiet},
    postprocess::{matched_pairs, Detection},
    sink::{jsonl::read_frames, SinkKinds},
    sys::{cores, CpuIsa},
};

use super::{
    args::{EngineArgs, TuneArgs},
    config::{FileConfig, Tuned},
    plan::{engine, load_labels, Engine},
    settings::default_model,
};

/// A provider × precision to try.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    ep: EpKind,
    precision: Precision,
}

impl Candidate {
    fn label(&self) -> String {
        format!("{} {}", self.ep, self.precision)
    }
}

/// What this machine can try with the ONNX Runtime loaded: the providers compiled into it,
/// the int8 model if built, bf16 if the CPU has it. A provider whose build is installed but
/// is not the one loaded (one process loads one build) is left out, and said so.
fn candidates(isa: &CpuIsa) -> Vec<Candidate> {
    let c = |ep, precision| Candidate { ep, precision };
    let mut v = vec![c(EpKind::Cpu, Precision::Fp32)];
    if default_model(Precision::Int8).exists() {
        v.push(c(EpKind::Cpu, Precision::Int8));
    }
    if EpKind::OpenVino.compiled_in() {
        v.push(c(EpKind::OpenVino, Precision::Fp32));
        if isa.bf16() {
            v.push(c(EpKind::OpenVino, Precision::Bf16));
        }
        // The calibrated int8 model is made for OpenVINO's int8 kernels (VNNI, AMX).
        if default_model(Precision::Int8).exists() {
            v.push(c(EpKind::OpenVino, Precision::Int8));
        }
    }
    if EpKind::Cuda.compiled_in() {
        v.extend([
            c(EpKind::Cuda, Precision::Fp32),
            c(EpKind::TensorRt, Precision::Fp32),
        ]);
    }
    v
}

/// Says which installed providers the loaded build cannot try.
fn left_out_builds(rt: &Runtime) {
    let cpu_lib = resolve_ort_lib(None, &EpChoice::Listed(vec![EpKind::Cpu]));
    for ep in [EpKind::OpenVino, EpKind::Cuda] {
        let lib = resolve_ort_lib(None, &EpChoice::Listed(vec![ep]));
        if lib != cpu_lib && lib.exists() && !ep.compiled_in() {
            eprintln!(
                "  {ep}: not in the ONNX Runtime build loaded ({}), left out",
                rt.library().display()
            );
        }
    }
}

/// What every measurement shares: the engine flags' defaults as pipeline and session
/// templates (no vidinfer.toml: tune measures from scratch), in the work folder `out`.
fn engine_for(cand: Candidate, out: PathBuf) -> anyhow::Result<Engine> {
    let kinds = SinkKinds {
        jsonl: true,
        ..SinkKinds::default()
    };
    let model = default_model(cand.precision);
    let labels = load_labels(&EngineArgs::defaults(), &model)?;
    engine(
        EngineArgs::defaults(),
        (kinds, labels),
        out,
        (model, cand.precision),
    )
}

/// Detections of `cand` on the first frames of the input.
fn detections(
    a: &TuneArgs,
    rt: &Runtime,
    cand: Candidate,
) -> anyhow::Result<Vec<(u64, Vec<Detection>)>> {
    let out = a.out.join(format!("{}-{}", cand.ep, cand.precision));
    let engine = engine_for(cand, out.clone())?;
    let eps = EpChoice::Listed(vec![cand.ep]);
    let workers = eps.default_workers();
    let session = SessionConfig {
        intra_threads: intra_threads_per_worker(0, workers),
        batch: Some(1),
        eps,
        ..engine.session
    };
    let cfg = PipelineConfig {
        inputs: vec![a.input.clone()],
        max_frames: Some(a.frames),
        force: true,
        ..engine.pipeline
    };
    let detectors = Detector::load_workers(rt, &engine.model, &session, workers)?;
    let mut report = pipeline::run(&cfg, detectors, Arc::new(AtomicBool::new(false)), &Quiet)?;
    if let Some(e) = report.inputs.iter_mut().find_map(|i| i.error.take()) {
        return Err(e.into());
    }
    let jsonl = std::fs::read_dir(&out)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .context("the detection run wrote no JSONL")?;
    Ok(read_frames(&jsonl)?)
}

/// The smaller of the two directions' agreement (same class, IoU >= 0.5).
fn agreement(reference: &[(u64, Vec<Detection>)], other: &[(u64, Vec<Detection>)]) -> f64 {
    let (mut m, mut r, mut o) = (0usize, 0usize, 0usize);
    for ((_, a), (_, b)) in reference.iter().zip(other) {
        m += matched_pairs(a, b, 0.5);
        r += a.len();
        o += b.len();
    }
    if reference.len() != other.len() {
        return 0.0;
    }
    (m as f64 / r.max(1) as f64).min(m as f64 / o.max(1) as f64)
}

/// The bench sweep of workers × batch for one candidate.
fn sweep(a: &TuneArgs, rt: &Runtime, cand: Candidate) -> anyhow::Result<Vec<BenchPoint>> {
    let workers = match cand.ep {
        EpKind::Cpu | EpKind::OpenVino => {
            let mut w = vec![1, cores().clamp(1, 4)];
            w.dedup();
            w
        }
        EpKind::Cuda | EpKind::TensorRt => vec![1],
    };
    let engine = engine_for(cand, a.out.join("bench"))?;
    let cfg = BenchConfig {
        input: a.input.clone(),
        precisions: vec![(cand.precision, engine.model)],
        batches: vec![1, 4],
        eps: vec![EpChoice::Listed(vec![cand.ep])],
        threads: vec![0],
        workers,
        strides: vec![1],
        streams: vec![0],
        copies: 0,
        tracking: vec![None],
        frames: a.frames,
        warmup_runs: 5,
        repeats: 2,
        pipeline: engine.pipeline,
        session: engine.session,
    };
    Ok(vidinfer::bench::run(rt, &cfg, |_| {})?)
}

fn describe(p: &BenchPoint) -> String {
    format!(
        "{} {}, {} worker(s) x {} thread(s), batch {}: {:.1} fps end to end ({:.1} model only)",
        p.ep, p.precision, p.workers, p.threads, p.batch, p.e2e_fps, p.model_fps
    )
}

/// Every candidate that agrees with fp32 enough, swept; each point with its agreement.
fn measure_all(a: &TuneArgs, rt: &Runtime, isa: &CpuIsa) -> anyhow::Result<Vec<(BenchPoint, f64)>> {
    let cands = candidates(isa);
    let reference = detections(a, rt, cands[0]).context("fp32 on the CPU provider")?;
    let mut scored = Vec::new();
    for cand in cands {
        let agree = if cand.ep == EpKind::Cpu && cand.precision == Precision::Fp32 {
            1.0
        } else {
            match detections(a, rt, cand) {
                Ok(d) => agreement(&reference, &d),
                Err(e) => {
                    eprintln!("  {}: cannot run here, left out: {e:#}", cand.label());
                    continue;
                }
            }
        };
        let pct = |x: f64| x * 100.0;
        if agree < a.min_agreement {
            eprintln!(
                "  {}: agrees with fp32 on {:.1}% of detections, below {:.1}%: left out",
                cand.label(),
                pct(agree),
                pct(a.min_agreement)
            );
            continue;
        }
        eprintln!(
            "  {}: agrees with fp32 on {:.1}%; sweeping workers x batch ...",
            cand.label(),
            pct(agree)
        );
        match sweep(a, rt, cand) {
            Ok(points) => {
                for p in points {
                    eprintln!("    {}", describe(&p));
                    scored.push((p, agree));
                }
            }
            Err(e) => eprintln!("  {}: the sweep failed, left out: {e:#}", cand.label()),
        }
    }
    Ok(scored)
}

pub fn tune(a: TuneArgs) -> anyhow::Result<ExitCode> {
    let isa = CpuIsa::detect();
    eprintln!(
        "tuning on {} ({}), {} cores",
        isa.model,
        isa.summary(),
        cores()
    );
    let rt = Runtime::load(&resolve_ort_lib(None, &EpChoice::Auto))?;
    left_out_builds(&rt);
    let mut scored = measure_all(&a, &rt, &isa)?;
    let points: Vec<BenchPoint> = scored.iter().map(|(p, _)| p.clone()).collect();
    for note in super::bench_out::slower_notes(&points) {
        eprintln!("  {note}");
    }
    scored.sort_by(|x, y| y.0.e2e_fps.total_cmp(&x.0.e2e_fps));
    let Some((best, agree)) = scored.first() else {
        bail!("no setting could be measured");
    };
    let runner_up = scored
        .get(1)
        .map(|(p, _)| describe(p))
        .unwrap_or_else(|| "none".into());
    println!(
        "best:      {} (agrees with fp32 on {:.1}%)",
        describe(best),
        agree * 100.0
    );
    println!("runner-up: {runner_up}");
    let cfg = FileConfig {
        ep: Some(EpChoice::Listed(vec![best.ep])),
        precision: Some(best.precision),
        batch: Some(best.batch as u32),
        workers: Some(best.workers as u32),
        threads: Some(best.threads as u32),
        streams: None,
        model: None,
        tuned: Some(Tuned {
            cpu: format!("{} ({})", isa.model, isa.summary()),
            input: a.input.to_string_lossy().into_owned(),
            // Rounded as printed: the file is read by people too.
            fps: (best.e2e_fps * 10.0).round() / 10.0,
            agreement: (*agree * 1000.0).round() / 1000.0,
            runner_up,
        }),
    };
    cfg.write(&a.write)?;
    println!(
        "wrote {}: detect and bench use these settings unless their flags say otherwise",
        a.write.display()
    );
    Ok(ExitCode::SUCCESS)
}
