//! `vidinfer`: a thin binary over the library. Parses the flags once (clap), builds a plan,
//! runs it, and prints any error exactly once with the exit code: 0 all inputs succeeded,
//! 1 an input or the run failed, 2 usage error, 130 interrupted.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use cli::{
    args::{Cli, Command},
    plan::{BenchPlan, DetectPlan},
};

fn init_logging(cli: &Cli) {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    // Before planning: the plan already opens FFmpeg (the encoder check).
    vidinfer::decode::init_ffmpeg(cli.verbose > 1);
    let quiet = cli.quiet;
    // A plan that does not validate is a usage error (exit 2), like clap's own.
    let result = match cli.command {
        _ if cli.version => cli::version(),
        None => return usage_error(anyhow::anyhow!("a command is needed (see --help)")),
        Some(Command::Detect(a)) => match DetectPlan::new(a, quiet) {
            Ok(plan) => cli::detect(plan, quiet),
            Err(e) => return usage_error(e),
        },
        Some(Command::Bench(a)) => match BenchPlan::new(a, quiet) {
            Ok(plan) => cli::bench(plan, quiet),
            Err(e) => return usage_error(e),
        },
        Some(Command::Info(a)) => cli::info(a),
        Some(Command::Tune(a)) => cli::tune(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}{}", cli::hints::hints(&e));
            ExitCode::from(1)
        }
    }
}

fn usage_error(e: anyhow::Error) -> ExitCode {
    eprintln!("error: {e:#}{}", cli::hints::hints(&e));
    ExitCode::from(2)
}
