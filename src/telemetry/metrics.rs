//! The run's counters, gauges and histograms ([`Metrics`]), updated by the stages as items
//! pass (atomic adds; a label lookup per input is done once, when the input begins) and read
//! by whoever renders them in the Prometheus text format ([`Metrics::render`]).

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    time::Duration,
};

use prometheus::{
    exponential_buckets, Counter, Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::channel::QueueStats;

/// Every metric of a run. Names start with `vidinfer_`, except the process' own
/// (`process_cpu_seconds_total`, `process_resident_memory_bytes`), named as Prometheus'
/// client libraries name them.
pub struct Metrics {
    registry: Registry,
    frames_decoded: IntCounterVec,
    frames_inferred: IntCounterVec,
    frames_dropped: IntCounterVec,
    packets_corrupt: IntCounterVec,
    reconnects: IntCounterVec,
    detections: IntCounterVec,
    crossings: IntCounterVec,
    zone_events: IntCounterVec,
    zone_occupancy: IntGaugeVec,
    inputs_open: IntGauge,
    inputs_done: IntCounterVec,
    batch_size: Histogram,
    inference_seconds: Histogram,
    queue_depth: IntGaugeVec,
    queue_capacity: IntGaugeVec,
    pub(super) events_published: IntCounterVec,
    pub(super) events_delivered: IntCounterVec,
    pub(super) events_dropped: IntCounterVec,
    pub(super) events_queued: IntGaugeVec,
    cpu_seconds: Counter,
    rss_bytes: IntGauge,
    /// The queues of the running pipeline, read when rendered.
    queues: Mutex<Vec<Arc<QueueStats>>>,
    running: AtomicBool,
    /// Live inputs that ended with an error (their source lost past its reconnect limit).
    live_failed: AtomicU64,
}

/// One input's counters, looked up once when it begins.
#[derive(Clone)]
pub struct InputMetrics {
    pub decoded: IntCounter,
    pub inferred: IntCounter,
    pub dropped: IntCounter,
    pub reconnects: IntCounter,
    name: String,
}

/// A metric's name and help text.
type Named = (&'static str, &'static str);

const FRAMES_DECODED: Named = (
    "vidinfer_frames_decoded_total",
    "Frames decoded and passed through every stage",
);
const FRAMES_INFERRED: Named = ("vidinfer_frames_inferred_total", "Frames the model ran on");
const FRAMES_DROPPED: Named = (
    "vidinfer_frames_dropped_total",
    "Frames of a live source dropped to keep up with it",
);
const PACKETS_CORRUPT: Named = (
    "vidinfer_packets_corrupt_total",
    "Packets that gave no frame or a damaged one (counted when the input ends)",
);
const RECONNECTS: Named = (
    "vidinfer_reconnects_total",
    "Times a live source was opened again after it dropped",
);
const DETECTIONS: Named = ("vidinfer_detections_total", "Detections written, by class");
const CROSSINGS: Named = (
    "vidinfer_line_crossings_total",
    "Line crossings, by line and direction",
);
const ZONE_EVENTS: Named = ("vidinfer_zone_events_total", "Zone enters and exits");
const ZONE_OCCUPANCY: Named = (
    "vidinfer_zone_occupancy",
    "Tracks inside each zone on the latest frame",
);
const INPUTS_DONE: Named = ("vidinfer_inputs_done_total", "Inputs ended, by outcome");
const BATCH_SIZE: Named = ("vidinfer_batch_size", "Frames per inference call");
const INFERENCE_SECONDS: Named = ("vidinfer_inference_seconds", "Time of one inference call");
const QUEUE_DEPTH: Named = (
    "vidinfer_queue_depth",
    "Items waiting in a queue between stages (at its latest send)",
);
const QUEUE_CAPACITY: Named = (
    "vidinfer_queue_capacity",
    "Capacity of a queue between stages",
);
const EVENTS_PUBLISHED: Named = (
    "vidinfer_events_published_total",
    "Events handed to an event sink",
);
const EVENTS_DELIVERED: Named = (
    "vidinfer_events_delivered_total",
    "Events an event sink delivered",
);
const EVENTS_DROPPED: Named = (
    "vidinfer_events_dropped_total",
    "Events an event sink dropped (queue full, or undelivered at the end)",
);
const EVENTS_QUEUED: Named = ("vidinfer_events_queued", "Events waiting to be delivered");

fn counter(r: &Registry, (name, help): Named, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("a valid metric name: {e}"));
    r.register(Box::new(c.clone()))
        .unwrap_or_else(|e| unreachable!("each metric registered once: {e}"));
    c
}

fn gauge(r: &Registry, (name, help): Named, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("a valid metric name: {e}"));
    r.register(Box::new(g.clone()))
        .unwrap_or_else(|e| unreachable!("each metric registered once: {e}"));
    g
}

fn histogram(r: &Registry, (name, help): Named, buckets: Vec<f64>) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        .unwrap_or_else(|e| unreachable!("valid buckets: {e}"));
    r.register(Box::new(h.clone()))
        .unwrap_or_else(|e| unreachable!("each metric registered once: {e}"));
    h
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let r = Registry::new();
        let (input, sink) = (&["input"][..], &["sink"][..]);
        let one = |c: Box<dyn prometheus::core::Collector>| {
            r.register(c).unwrap_or_else(|e| unreachable!("{e}"));
        };
        let cpu = Counter::new("process_cpu_seconds_total", "CPU time the process used")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let rss = IntGauge::new("process_resident_memory_bytes", "Resident memory size")
            .unwrap_or_else(|e| unreachable!("{e}"));
        let inputs_open = IntGauge::new("vidinfer_inputs_open", "Inputs being processed now")
            .unwrap_or_else(|e| unreachable!("{e}"));
        one(Box::new(cpu.clone()));
        one(Box::new(rss.clone()));
        one(Box::new(inputs_open.clone()));
        let (batches, seconds) = (
            exponential_buckets(1.0, 2.0, 8),
            exponential_buckets(0.001, 2.0, 14),
        );
        Metrics {
            frames_decoded: counter(&r, FRAMES_DECODED, input),
            frames_inferred: counter(&r, FRAMES_INFERRED, input),
            frames_dropped: counter(&r, FRAMES_DROPPED, input),
            packets_corrupt: counter(&r, PACKETS_CORRUPT, input),
            reconnects: counter(&r, RECONNECTS, input),
            detections: counter(&r, DETECTIONS, &["input", "label"]),
            crossings: counter(&r, CROSSINGS, &["input", "line", "direction"]),
            zone_events: counter(&r, ZONE_EVENTS, &["input", "zone", "kind"]),
            zone_occupancy: gauge(&r, ZONE_OCCUPANCY, &["input", "zone"]),
            inputs_done: counter(&r, INPUTS_DONE, &["outcome"]),
            batch_size: histogram(&r, BATCH_SIZE, batches.unwrap_or_default()),
            inference_seconds: histogram(&r, INFERENCE_SECONDS, seconds.unwrap_or_default()),
            queue_depth: gauge(&r, QUEUE_DEPTH, &["queue"]),
            queue_capacity: gauge(&r, QUEUE_CAPACITY, &["queue"]),
            events_published: counter(&r, EVENTS_PUBLISHED, sink),
            events_delivered: counter(&r, EVENTS_DELIVERED, sink),
            events_dropped: counter(&r, EVENTS_DROPPED, sink),
            events_queued: gauge(&r, EVENTS_QUEUED, sink),
            inputs_open,
            cpu_seconds: cpu,
            rss_bytes: rss,
            registry: r,
            queues: Mutex::new(Vec::new()),
            running: AtomicBool::new(false),
            live_failed: AtomicU64::new(0),
        }
    }

    /// The counters of one input (its output name as the `input` label).
    pub fn input(&self, name: &str) -> InputMetrics {
        let l = &[name];
        self.inputs_open.inc();
        InputMetrics {
            decoded: self.frames_decoded.with_label_values(l),
            inferred: self.frames_inferred.with_label_values(l),
            dropped: self.frames_dropped.with_label_values(l),
            reconnects: self.reconnects.with_label_values(l),
            name: name.to_string(),
        }
    }

    /// An input ended: `corrupt` packets its decoder met; `ok`: without an error; `live`: a
    /// live source (one that failed makes the run not ready).
    pub fn input_ended(&self, input: &InputMetrics, corrupt: u64, ok: bool, live: bool) {
        self.inputs_open.dec();
        self.packets_corrupt
            .with_label_values(&[input.name.as_str()])
            .inc_by(corrupt);
        let outcome = if ok { "complete" } else { "failed" };
        self.inputs_done.with_label_values(&[outcome]).inc();
        if live && !ok {
            self.live_failed.fetch_add(1, Relaxed);
        }
    }

    pub fn detection(&self, input: &InputMetrics, label: &str) {
        self.detections
            .with_label_values(&[input.name.as_str(), label])
            .inc();
    }

    pub fn crossing(&self, input: &InputMetrics, line: &str, direction: &str) {
        self.crossings
            .with_label_values(&[input.name.as_str(), line, direction])
            .inc();
    }

    /// A zone event (`kind`: `enter` or `exit`).
    pub fn zone_event(&self, input: &InputMetrics, zone: &str, kind: &str) {
        self.zone_events
            .with_label_values(&[input.name.as_str(), zone, kind])
            .inc();
    }

    pub fn zone_occupancy(&self, input: &InputMetrics, zone: &str, inside: u32) {
        self.zone_occupancy
            .with_label_values(&[input.name.as_str(), zone])
            .set(i64::from(inside));
    }

    /// One inference call: `frames` in the batch, how long the session ran.
    pub fn batch(&self, frames: usize, took: Duration) {
        self.batch_size.observe(frames as f64);
        self.inference_seconds.observe(took.as_secs_f64());
    }

    /// The pipeline's queues, read when the metrics are rendered; the run is running.
    pub fn set_queues(&self, queues: Vec<Arc<QueueStats>>) {
        if let Ok(mut q) = self.queues.lock() {
            *q = queues;
        }
        self.running.store(true, Relaxed);
    }

    /// The run has ended (not ready any more; no queues).
    pub fn stopped(&self) {
        self.running.store(false, Relaxed);
        if let Ok(mut q) = self.queues.lock() {
            q.clear();
        }
        self.queue_depth.reset();
        self.queue_capacity.reset();
    }

    /// Alive: always, while the process serves.
    /// Ready: the pipeline is running and no live source has been lost past its limit
    /// (one reconnecting within it is still ready).
    pub fn ready(&self) -> bool {
        self.running.load(Relaxed) && self.live_failed.load(Relaxed) == 0
    }

    /// Everything, in the Prometheus text format (version 0.0.4).
    pub fn render(&self) -> String {
        if let Ok(queues) = self.queues.lock() {
            for q in queues.iter() {
                let r = q.report();
                self.queue_depth
                    .with_label_values(&[r.name.as_str()])
                    .set(q.depth() as i64);
                self.queue_capacity
                    .with_label_values(&[r.name.as_str()])
                    .set(r.capacity as i64);
            }
        }
        if let Some(cpu) = crate::sys::process_cpu_time() {
            let grown = cpu.as_secs_f64() - self.cpu_seconds.get();
            if grown > 0.0 {
                self.cpu_seconds.inc_by(grown);
            }
        }
        if let Some(rss) = crate::sys::rss_bytes() {
            self.rss_bytes.set(rss as i64);
        }
        let mut out = Vec::new();
        let families = self.registry.gather();
        if TextEncoder::new().encode(&families, &mut out).is_err() {
            return String::new();
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("ready", &self.ready())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_input_and_histograms() {
        let m = Metrics::new();
        let a = m.input("cam1");
        a.decoded.inc_by(3);
        a.inferred.inc_by(2);
        m.detection(&a, "person");
        m.batch(4, Duration::from_millis(12));
        let text = m.render();
        assert!(
            text.contains("vidinfer_frames_decoded_total{input=\"cam1\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("vidinfer_frames_inferred_total{input=\"cam1\"} 2\n"));
        assert!(text.contains("vidinfer_detections_total{input=\"cam1\",label=\"person\"} 1\n"));
        assert!(
            text.contains("vidinfer_batch_size_bucket{le=\"4\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("vidinfer_inference_seconds_count 1\n"));
        assert!(text.contains("# TYPE process_cpu_seconds_total counter\n"));
        assert!(text.contains("vidinfer_inputs_open 1\n"));
    }

    #[test]
    fn ready_while_running_until_a_live_source_is_lost() {
        let m = Metrics::new();
        assert!(!m.ready(), "not before the pipeline runs");
        m.set_queues(Vec::new());
        assert!(m.ready());
        let file = m.input("a");
        m.input_ended(&file, 0, false, false);
        assert!(m.ready(), "a file that fails leaves the run ready");
        let cam = m.input("cam");
        m.input_ended(&cam, 0, false, true);
        assert!(!m.ready());
    }
}
