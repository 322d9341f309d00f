//! The `vidinfer` command line: flags ([`args`]) layered over `vidinfer.toml` ([`config`]) into
//! one set of settings ([`settings`]) → a validated plan ([`plan`]) → the library
//! → what is printed ([`report`], [`bench_out`], [`progress`]). Errors are printed once, in
//! `main`, with the exit code.

mod arg_values;
pub mod args;
mod bench_out;
mod config;
// docs/cli.md from the clap definitions, and the test that keeps it current.
#[cfg(test)]
mod docs;
pub mod hints;
mod info;
mod inputs;
pub mod plan;
mod progress;
mod ranges;
mod report;
mod settings;
mod signals;
mod snapshot_args;
mod telemetry_args;
mod track_args;
mod tune;
mod zone;

use std::process::ExitCode;

use anyhow::Context as _;
use vidinfer::{
    infer::{resolve_ort_lib, Detector, EpChoice, EpKind, Runtime},
    output::write_atomic,
    pipeline::{self, Quiet},
};

pub use info::info;
use plan::{BenchPlan, DetectPlan};
pub use tune::tune;

/// Logs the providers that were tried and failed before the one that ran, once per run.
fn log_fallbacks(detector: &Detector, eps: &EpChoice) {
    let listed = matches!(eps, EpChoice::Listed(l) if l.len() > 1);
    for f in detector.fallbacks() {
        let hint = match hints::ep_hint(f.ep) {
            "" => String::new(),
            h => format!(" ({} {h})", f.ep),
        };
        if listed {
            tracing::warn!(
                "execution provider {} unavailable, trying the next one: {f}{hint}",
                f.ep
            );
        } else {
            tracing::info!("execution provider {} unavailable: {f}{hint}", f.ep);
        }
    }
    if matches!(eps, EpChoice::Auto) {
        tracing::info!("execution provider auto-selected: {}", detector.ep());
    }
}

pub fn detect(mut plan: DetectPlan, quiet: bool) -> anyhow::Result<ExitCode> {
    if plan.pipeline.inputs.is_empty() {
        if !quiet {
            eprintln!("nothing to do: the outputs of every input are complete");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let stop = signals::Stop::install()?;
    let rt = Runtime::load(&plan.ort_lib)?;
    let running = telemetry_args::start(&plan.telemetry)?;
    plan.pipeline.telemetry = running.telemetry.clone();
    let detectors = Detector::load_workers(&rt, &plan.model, &plan.session, plan.workers)?;
    log_fallbacks(&detectors[0], &plan.session.eps);
    let sig = detectors[0].signature();
    let planned = &plan.pipeline.sinks.labels;
    if let Some(own) = plan::model_labels(plan.labels_flag.as_deref(), planned, sig)? {
        plan.pipeline.sinks.labels = std::sync::Arc::new(own);
    }
    let bar = plan.progress.then(progress::Progress::new).flatten();
    let observer: &dyn pipeline::Observer = match &bar {
        Some(b) => b,
        None => &Quiet,
    };
    let result = pipeline::run(&plan.pipeline, detectors, stop.cancel.clone(), observer);
    if let Some(b) = &bar {
        b.finish();
    }
    let events = running.finish();
    let mut report = result.context("detection failed")?;
    report.events = events;
    report::print_run(&report, quiet);
    telemetry_args::print_events(&report.events, quiet);
    if plan.stats {
        report::print_stats(&report);
    }
    if let Some(path) = &plan.summary_json {
        write_atomic(
            path,
            format!("{:#}\n", serde_json::to_value(&report)?).as_bytes(),
        )?;
    }
    running.linger(&stop.cancel);
    Ok(if report.interrupted {
        ExitCode::from(stop.exit_code())
    } else if report.failed() > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `vidinfer --version`: what a bundle that misbehaves is asked first.
pub fn version() -> anyhow::Result<ExitCode> {
    println!("vidinfer {}", env!("CARGO_PKG_VERSION"));
    let (release, libs) = vidinfer::decode::ffmpeg_versions();
    println!("FFmpeg {release} ({libs})");
    let lib = resolve_ort_lib(None, &EpChoice::Listed(vec![EpKind::Cpu]));
    for ep in [EpKind::OpenVino, EpKind::Cuda] {
        let other = resolve_ort_lib(None, &EpChoice::Listed(vec![ep]));
        if other != lib {
            println!("--ep {ep} loads {}", other.display());
        }
    }
    match Runtime::load(&lib) {
        Ok(rt) => {
            let info = rt.info();
            let eps: Vec<&str> = info.providers.iter().map(|k| k.name()).collect();
            println!(
                "ONNX Runtime {} ({})",
                info.version.as_deref().unwrap_or("unknown version"),
                info.library.display()
            );
            println!("execution providers in this build: {}", eps.join(", "));
        }
        Err(e) => println!("ONNX Runtime: not loaded: {}", vidinfer::error::chain(&e)),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn bench(plan: BenchPlan, quiet: bool) -> anyhow::Result<ExitCode> {
    let rt = Runtime::load(&plan.ort_lib)?;
    if !quiet {
        let isa = vidinfer::sys::CpuIsa::detect();
        eprintln!(
            "benchmarking {} ({} frames per run) on {} ({}), {} cores ...",
            plan.cfg.input.display(),
            plan.cfg.frames,
            isa.model,
            isa.summary(),
            vidinfer::sys::cores()
        );
    }
    let points = vidinfer::bench::run(&rt, &plan.cfg, |p| {
        if !quiet {
            eprintln!(
                "  {} {} workers={} threads={} batch={} stride={} streams={} track={}: model {:.1} fps, end-to-end {:.1} fps",
                p.ep,
                p.precision,
                p.workers,
                p.threads,
                p.batch,
                p.stride,
                p.streams,
                if p.track { "on" } else { "off" },
                p.model_fps,
                p.e2e_fps
            );
        }
    })?;
    print!("{}", bench_out::table(&points));
    for note in bench_out::slower_notes(&points) {
        println!("{note}");
    }
    if let Some(p) = &plan.json {
        bench_out::write_json(&points, p)?;
    }
    if let Some(p) = &plan.csv {
        bench_out::write_csv(&points, p)?;
    }
    if let Some(p) = &plan.plot {
        bench_out::write_plot(&points, p)?;
    }
    Ok(ExitCode::SUCCESS)
}
