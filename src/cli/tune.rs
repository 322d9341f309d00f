//! `vidinfer tune INPUT`: finds the fastest settings this machine runs whose detections agree
//! with fp32's, and writes them to `vidinfer.toml` for `detect` and `bench`.
//!
//! 1. fp32 on the CPU provider detects on the input's first frames: the reference.
//! 2. Every other provider × precision this machine can run (int8 on the CPU provider; fp32
//!    and, on CPUs with AVX-512 BF16 or AMX, bf16 through OpenVINO; the GPU providers when their
//!    build is installed) detects on the same frames; one that agrees with the reference below
//!    `--min-agreement` (same class, IoU >= 0.5, both directions) is left out, and said so.
//! 3. `vidinfer bench` sweeps workers × batch for each remaining one; the best end-to-end fps
//!    wins. Each provider runs in its own process: one process loads one ONNX Runtime build.

use std::{
    path::PathBuf,
    process::{Command, ExitCode},
};

use anyhow::{bail, Context as _};
use clap::Args;
use vidinfer::{
    bench::BenchPoint,
    infer::{resolve_ort_lib, EpChoice, EpKind, Precision},
    postprocess::{matched_pairs, Detection},
    sink::jsonl::read_frames,
    sys::{cores, CpuIsa},
};

use super::{
    config::{FileConfig, Tuned},
    plan::default_model,
};

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// The video to tune on (representative of what you will run).
    pub input: PathBuf,
    /// Frames per measurement (and for the agreement check).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u64).range(10..))]
    pub frames: u64,
    /// Minimum agreement with fp32's detections (same class, IoU >= 0.5, both directions).
    #[arg(long, default_value_t = 0.95)]
    pub min_agreement: f64,
    /// Where to write the winning settings.
    #[arg(long, default_value = "vidinfer.toml")]
    pub write: PathBuf,
    /// Work folder for the measurements' outputs.
    #[arg(long, default_value = "out/tune")]
    pub out: PathBuf,
}

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

/// What this machine can try: the providers whose ONNX Runtime build is installed, the int8
/// model if built, bf16 if the CPU has it.
fn candidates(isa: &CpuIsa) -> Vec<Candidate> {
    let c = |ep, precision| Candidate { ep, precision };
    let mut v = vec![c(EpKind::Cpu, Precision::Fp32)];
    if default_model(Precision::Int8).exists() {
        v.push(c(EpKind::Cpu, Precision::Int8));
    }
    let cpu_lib = resolve_ort_lib(None, &EpChoice::Listed(vec![EpKind::Cpu]));
    let has_build = |ep| {
        let lib = resolve_ort_lib(None, &EpChoice::Listed(vec![ep]));
        lib != cpu_lib && lib.exists()
    };
    if has_build(EpKind::OpenVino) {
        v.push(c(EpKind::OpenVino, Precision::Fp32));
        if isa.bf16() {
            v.push(c(EpKind::OpenVino, Precision::Bf16));
        }
    }
    if has_build(EpKind::Cuda) {
        v.extend([
            c(EpKind::Cuda, Precision::Fp32),
            c(EpKind::TensorRt, Precision::Fp32),
        ]);
    }
    v
}

/// Runs this binary with `args`, independent of any vidinfer.toml here; its stderr if it fails.
fn child(args: &[&str]) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the vidinfer executable")?;
    let o = Command::new(exe)
        .args(args)
        .args(["--config", "/dev/null", "--quiet"])
        .output()
        .context("cannot run vidinfer")?;
    if !o.status.success() {
        bail!("{}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(())
}

/// Detections of `cand` on the first frames of the input.
fn detections(a: &TuneArgs, cand: Candidate) -> anyhow::Result<Vec<(u64, Vec<Detection>)>> {
    let out = a.out.join(format!("{}-{}", cand.ep, cand.precision));
    let input = a.input.to_string_lossy();
    let frames = a.frames.to_string();
    let args = [
        "detect",
        &input,
        "--max-frames",
        &frames,
        "--outputs",
        "jsonl",
        "--force",
        "--no-progress",
        "--ep",
        cand.ep.name(),
        "--precision",
        cand.precision.name(),
        "--out",
    ];
    let mut all: Vec<&str> = args.to_vec();
    let out_s = out.to_string_lossy();
    all.push(&out_s);
    child(&all)?;
    let jsonl = std::fs::read_dir(&out)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .context("the detect run wrote no JSONL")?;
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

/// `vidinfer bench` over workers × batch for one candidate.
fn sweep(a: &TuneArgs, cand: Candidate) -> anyhow::Result<Vec<BenchPoint>> {
    let workers = match cand.ep {
        EpKind::Cpu | EpKind::OpenVino => {
            let mut w = vec![1, cores().clamp(1, 4)];
            w.dedup();
            w
        }
        EpKind::Cuda | EpKind::TensorRt => vec![1],
    };
    let workers: Vec<String> = workers.iter().map(|w| w.to_string()).collect();
    let json = a
        .out
        .join(format!("bench-{}-{}.json", cand.ep, cand.precision));
    let (input, frames) = (a.input.to_string_lossy(), a.frames.to_string());
    let (json_s, out_s) = (
        json.to_string_lossy(),
        a.out.join("bench").to_string_lossy().into_owned(),
    );
    let w = workers.join(",");
    child(&[
        "bench",
        &input,
        "--ep",
        cand.ep.name(),
        "--precision",
        cand.precision.name(),
        "--workers",
        &w,
        "--threads",
        "0",
        "--batch",
        "1,4",
        "--frames",
        &frames,
        "--repeat",
        "2",
        "--warmup",
        "5",
        "--outputs",
        "jsonl",
        "--json",
        &json_s,
        "--out",
        &out_s,
    ])?;
    let text = std::fs::read_to_string(&json)?;
    Ok(serde_json::from_str(&text)?)
}

fn describe(p: &BenchPoint) -> String {
    format!(
        "{} {}, {} worker(s) x {} thread(s), batch {}: {:.1} fps end to end ({:.1} model only)",
        p.ep, p.precision, p.workers, p.threads, p.batch, p.e2e_fps, p.model_fps
    )
}

/// Every candidate that agrees with fp32 enough, swept; each point with its agreement.
fn measure_all(a: &TuneArgs, isa: &CpuIsa) -> anyhow::Result<Vec<(BenchPoint, f64)>> {
    let reference = detections(a, candidates(isa)[0]).context("fp32 on the CPU provider")?;
    let mut scored = Vec::new();
    for cand in candidates(isa) {
        let agree = if cand.ep == EpKind::Cpu && cand.precision == Precision::Fp32 {
            1.0
        } else {
            match detections(a, cand) {
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
        match sweep(a, cand) {
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
    let mut scored = measure_all(&a, &isa)?;
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
        ep: Some(best.ep.clone()),
        precision: best.precision.parse().ok(),
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
