//! The event fan-out ([`EventHub`]): the sink stage publishes each event once; every event
//! sink has its own bounded queue and delivery thread. Publishing never waits: when a sink's
//! queue is full the event is dropped for that sink and counted (exactly: each `publish`
//! says how many sinks dropped it). A delivery thread retries with backoff until its
//! transport takes the events; when the run ends it is given a deadline, and what is still
//! undelivered then is dropped and counted too.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Mutex,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use serde::Serialize;

use super::{metrics::Metrics, target::EventTarget, transport};
use crate::error::Result;
#[cfg(any(doc, test))]
use crate::sink::StreamEvent;

/// How event sinks are run.
#[derive(Debug, Clone)]
pub struct EventOptions {
    /// Events waiting per sink before new ones are dropped.
    pub queue: usize,
    /// The longest one delivery attempt may take (connect, send, answer); also how long the
    /// end of the run waits for the queues to empty.
    pub timeout: Duration,
}

impl Default for EventOptions {
    fn default() -> Self {
        EventOptions {
            queue: 10_000,
            timeout: Duration::from_secs(5),
        }
    }
}

/// What became of one sink's events (`"events"` in `--summary-json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventSinkReport {
    /// The target, as given (a URL's password left out).
    pub sink: String,
    pub published: u64,
    pub delivered: u64,
    /// Dropped because the queue was full (also written in the JSONL of their input).
    pub dropped_queue_full: u64,
    /// Still queued when the run ended and its deadline passed.
    pub dropped_undelivered: u64,
    /// Delivery attempts that failed (each retried).
    pub failed_attempts: u64,
}

/// One event as it goes out: the JSONL event object with the input's name first.
#[derive(Serialize)]
struct Outgoing<'a, E: Serialize> {
    input: &'a str,
    #[serde(flatten)]
    event: &'a E,
}

/// Serialises an event (a [`StreamEvent`] or a [`super::RunEvent`]) for the sinks:
/// `{"input":"cam1","event":"crossing",...}`.
pub fn event_json<E: Serialize>(input: &str, event: &E) -> String {
    serde_json::to_string(&Outgoing { input, event })
        .unwrap_or_else(|e| unreachable!("a plain enum serialises: {e}"))
}

#[derive(Default)]
struct Counts {
    published: AtomicU64,
    delivered: AtomicU64,
    dropped_full: AtomicU64,
    dropped_undelivered: AtomicU64,
    failed: AtomicU64,
}

/// Whether, and by when, a delivery thread must stop.
pub(super) struct Closing {
    closed: AtomicBool,
    deadline: Mutex<Option<Instant>>,
}

impl Closing {
    /// Past the deadline after the run ended: give up what is undelivered.
    pub(super) fn give_up(&self) -> bool {
        self.closed.load(Relaxed)
            && self
                .deadline
                .lock()
                .map_or(true, |d| d.is_some_and(|d| Instant::now() >= d))
    }
}

struct SinkHandle {
    name: String,
    tx: Sender<Arc<str>>,
    counts: Arc<Counts>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// The event sinks of a run.
pub struct EventHub {
    sinks: Vec<SinkHandle>,
    closing: Arc<Closing>,
    metrics: Option<Arc<Metrics>>,
    timeout: Duration,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.sinks.iter().map(|s| &s.name).collect();
        f.debug_struct("EventHub").field("sinks", &names).finish()
    }
}

impl EventHub {
    /// Starts a delivery thread per target (nothing is connected before the first event).
    pub fn start(
        targets: &[EventTarget],
        opts: &EventOptions,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<EventHub> {
        let closing = Arc::new(Closing {
            closed: AtomicBool::new(false),
            deadline: Mutex::new(None),
        });
        let mut sinks = Vec::new();
        for t in targets {
            let transport = transport::open(t, opts.timeout)?;
            let (tx, rx) = crossbeam_channel::bounded(opts.queue.max(1));
            let counts = Arc::new(Counts::default());
            let worker = Worker {
                rx,
                counts: counts.clone(),
                closing: closing.clone(),
                transport,
                name: t.to_string(),
                metrics: metrics.clone(),
            };
            let thread = std::thread::Builder::new()
                .name("events".into())
                .spawn(move || worker.run())
                .map_err(|e| crate::error::Error::Config(format!("cannot start a thread: {e}")))?;
            sinks.push(SinkHandle {
                name: t.to_string(),
                tx,
                counts,
                thread: Mutex::new(Some(thread)),
            });
        }
        Ok(EventHub {
            sinks,
            closing,
            metrics,
            timeout: opts.timeout,
        })
    }

    pub fn sink_names(&self) -> impl Iterator<Item = &str> {
        self.sinks.iter().map(|s| s.name.as_str())
    }

    /// Hands an event to every sink without waiting; adds 1 to `dropped[i]` for each sink
    /// `i` whose queue was full.
    pub fn publish<E: Serialize>(&self, input: &str, event: &E, dropped: &mut [u64]) {
        if self.sinks.is_empty() {
            return;
        }
        let json: Arc<str> = event_json(input, event).into();
        for (i, s) in self.sinks.iter().enumerate() {
            s.counts.published.fetch_add(1, Relaxed);
            let m = self.metrics.as_deref();
            m.inspect(|m| m.events_published.with_label_values(&[&s.name]).inc());
            match s.tx.try_send(json.clone()) {
                Ok(()) => {
                    m.inspect(|m| m.events_queued.with_label_values(&[&s.name]).inc());
                }
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    s.counts.dropped_full.fetch_add(1, Relaxed);
                    m.inspect(|m| m.events_dropped.with_label_values(&[&s.name]).inc());
                    if let Some(d) = dropped.get_mut(i) {
                        *d += 1;
                    }
                }
            }
        }
    }

    /// Ends the run's events: each sink gets the timeout to deliver what it holds, then
    /// drops (and counts) the rest. Returns what became of every sink's events.
    pub fn close(&self) -> Vec<EventSinkReport> {
        if let Ok(mut d) = self.closing.deadline.lock() {
            *d = Some(Instant::now() + self.timeout);
        }
        self.closing.closed.store(true, Relaxed);
        for s in &self.sinks {
            let t = s.thread.lock().ok().and_then(|mut t| t.take());
            if let Some(t) = t {
                let _ = t.join();
            }
        }
        self.sinks
            .iter()
            .map(|s| {
                let c = &s.counts;
                EventSinkReport {
                    sink: s.name.clone(),
                    published: c.published.load(Relaxed),
                    delivered: c.delivered.load(Relaxed),
                    dropped_queue_full: c.dropped_full.load(Relaxed),
                    dropped_undelivered: c.dropped_undelivered.load(Relaxed),
                    failed_attempts: c.failed.load(Relaxed),
                }
            })
            .collect()
    }
}

/// One sink's delivery thread.
struct Worker {
    rx: Receiver<Arc<str>>,
    counts: Arc<Counts>,
    closing: Arc<Closing>,
    transport: Box<dyn transport::Transport>,
    name: String,
    metrics: Option<Arc<Metrics>>,
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

impl Worker {
    fn run(mut self) {
        let mut pending: Vec<Arc<str>> = Vec::new();
        let mut backoff = BACKOFF_MIN;
        loop {
            if pending.is_empty() && !self.take(&mut pending) {
                return;
            }
            if self.closing.give_up() {
                self.drop_all(&mut pending);
                return;
            }
            let closing = self.closing.clone();
            match self.transport.deliver(&pending, &|| closing.give_up()) {
                Ok(()) => {
                    self.done(pending.len(), |m| &m.events_delivered);
                    self.counts
                        .delivered
                        .fetch_add(pending.len() as u64, Relaxed);
                    pending.clear();
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    let n = self.counts.failed.fetch_add(1, Relaxed);
                    if self.closing.give_up() {
                        continue;
                    }
                    if n == 0 || backoff == BACKOFF_MAX {
                        tracing::warn!("event sink {}: {e}; retrying", self.name);
                    }
                    self.sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    /// Waits for the next events (up to the transport's batch); false once the run has
    /// ended and nothing is left.
    fn take(&self, pending: &mut Vec<Arc<str>>) -> bool {
        loop {
            match self.rx.recv_timeout(Duration::from_millis(50)) {
                Ok(e) => {
                    pending.push(e);
                    let max = self.transport.max_batch();
                    while pending.len() < max {
                        match self.rx.try_recv() {
                            Ok(e) => pending.push(e),
                            Err(_) => break,
                        }
                    }
                    return true;
                }
                Err(RecvTimeoutError::Timeout) if !self.closing.closed.load(Relaxed) => {}
                Err(_) => return false,
            }
        }
    }

    /// Takes `n` events off the queue gauge and adds them to `counter`.
    fn done(&self, n: usize, counter: impl Fn(&Metrics) -> &prometheus::IntCounterVec) {
        if let Some(m) = &self.metrics {
            counter(m).with_label_values(&[&self.name]).inc_by(n as u64);
            m.events_queued
                .with_label_values(&[&self.name])
                .sub(n as i64);
        }
    }

    /// The deadline has passed: what is held and queued is dropped, and counted.
    fn drop_all(&self, pending: &mut Vec<Arc<str>>) {
        let n = pending.len() + self.rx.try_iter().count();
        pending.clear();
        self.counts.dropped_undelivered.fetch_add(n as u64, Relaxed);
        self.done(n, |m| &m.events_dropped);
        if n > 0 {
            tracing::warn!(
                "event sink {}: {n} events undelivered when the run ended",
                self.name
            );
        }
    }

    /// Sleeps, but wakes for the end of the run's deadline.
    fn sleep(&self, d: Duration) {
        let until = Instant::now() + d;
        while Instant::now() < until && !self.closing.give_up() {
            std::thread::sleep(
                Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_goes_out_with_its_input_first() {
        let e = StreamEvent::Dropped {
            frames: 3,
            first_frame: 10,
            last_frame: 12,
        };
        assert_eq!(
            event_json("cam1", &e),
            r#"{"input":"cam1","event":"dropped","frames":3,"first_frame":10,"last_frame":12}"#
        );
    }
}
