//! `--metrics` and `--events`: what a run tells the outside world while it runs, and how it
//! is started around the pipeline and ended after it.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use clap::Args;
use vidinfer::telemetry::{
    EventHub, EventOptions, EventSinkReport, EventTarget, Metrics, MetricsServer, Telemetry,
};

/// Metrics and event flags of `detect`.
#[derive(Args, Debug, Clone)]
pub struct TelemetryArgs {
    /// Serve Prometheus metrics while running: /metrics (frames, drops, reconnects, queues,
    /// batch and latency histograms, detections, crossings, zones, CPU and memory), /healthz
    /// and /readyz, on ADDR (e.g. 127.0.0.1:9464; port 0 picks a free one and prints it).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// Keep serving --metrics this many seconds after the run has ended (/readyz then says
    /// not ready), so that a scraper gets the final counts.
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, value_parser = seconds, requires = "metrics")]
    pub metrics_linger_s: f64,
    /// Send events (crossings, zone enter/exit, track and input start/end, reconnects, dropped
    /// frames) as they happen: http(s)://... gets JSON POSTs (batched),
    /// mqtt(s)://HOST[:PORT]/TOPIC one message per event (QoS 1). Repeatable. Never slows the
    /// run: a target that is down gets its events queued (--events-queue), then dropped and
    /// counted in the summary, the metrics and the JSONL.
    #[arg(long = "events", value_name = "URL")]
    pub events: Vec<String>,
    /// Seconds one delivery of events may take; also how long the end of the run waits for
    /// events not yet delivered.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = positive_seconds)]
    pub events_timeout_s: f64,
    /// Events waiting per --events target before new ones are dropped.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub events_queue: u64,
}

fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds")),
    }
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a positive number of seconds")),
    }
}

/// The validated flags.
#[derive(Debug, Clone, Default)]
pub struct TelemetryPlan {
    pub metrics: Option<String>,
    pub linger: Duration,
    pub targets: Vec<EventTarget>,
    pub events: EventOptions,
}

impl TelemetryPlan {
    pub fn new(a: &TelemetryArgs) -> anyhow::Result<Self> {
        let targets = a
            .events
            .iter()
            .map(|u| EventTarget::parse(u))
            .collect::<Result<_, _>>()?;
        Ok(TelemetryPlan {
            metrics: a.metrics.clone(),
            linger: Duration::from_secs_f64(a.metrics_linger_s),
            targets,
            events: EventOptions {
                queue: usize::try_from(a.events_queue).unwrap_or(usize::MAX),
                timeout: Duration::from_secs_f64(a.events_timeout_s),
            },
        })
    }
}

/// The running services; ended by [`Running::finish`].
pub struct Running {
    pub telemetry: Telemetry,
    server: Option<MetricsServer>,
    linger: Duration,
}

/// Starts the metrics server (printing where it listens) and the event sinks.
pub fn start(plan: &TelemetryPlan) -> anyhow::Result<Running> {
    let metrics =
        (plan.metrics.is_some() || !plan.targets.is_empty()).then(|| Arc::new(Metrics::new()));
    let server = match (&plan.metrics, &metrics) {
        (Some(addr), Some(m)) => {
            let server = MetricsServer::start(addr, m.clone())?;
            eprintln!("metrics: http://{}/metrics", server.addr());
            Some(server)
        }
        _ => None,
    };
    let events = (!plan.targets.is_empty())
        .then(|| EventHub::start(&plan.targets, &plan.events, metrics.clone()))
        .transpose()?
        .map(Arc::new);
    Ok(Running {
        telemetry: Telemetry { metrics, events },
        server,
        linger: plan.linger,
    })
}

impl Running {
    /// Waits (up to the timeout) for the events to go out; what became of them.
    pub fn finish(&self) -> Vec<EventSinkReport> {
        self.telemetry
            .events
            .as_ref()
            .map_or_else(Vec::new, |h| h.close())
    }
}

impl Running {
    /// Serves the metrics on for `--metrics-linger-s` (a stop signal ends it sooner).
    pub fn linger(&self, cancel: &AtomicBool) {
        if self.server.is_none() {
            return;
        }
        let until = Instant::now() + self.linger;
        while Instant::now() < until && !cancel.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One line per event target that did not deliver everything (every target, unless quiet).
pub fn print_events(reports: &[EventSinkReport], quiet: bool) {
    for r in reports {
        let lost = r.dropped_queue_full + r.dropped_undelivered;
        if lost > 0 {
            eprintln!(
                "warning: events to {}: {} of {} delivered; {} dropped (queue full), {} undelivered at the end",
                r.sink, r.delivered, r.published, r.dropped_queue_full, r.dropped_undelivered
            );
        } else if !quiet {
            eprintln!("events to {}: {} delivered", r.sink, r.delivered);
        }
    }
}
