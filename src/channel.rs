//! Bounded channels between pipeline stages that measure themselves: queue depth at each
//! send, time producers spent blocked (downstream is the bottleneck) and time consumers
//! spent waiting (upstream is the bottleneck).

use std::{
    sync::{
        atomic::{AtomicU64, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

#[derive(Debug)]
pub struct QueueStats {
    pub name: String,
    pub capacity: usize,
    sends: AtomicU64,
    depth_sum: AtomicU64,
    depth_max: AtomicU64,
    /// The depth at the latest send (what a metrics scrape shows).
    depth_now: AtomicU64,
    send_blocked_ns: AtomicU64,
    recv_waited_ns: AtomicU64,
}

/// A snapshot of [`QueueStats`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueueReport {
    pub name: String,
    pub capacity: usize,
    pub items: u64,
    pub mean_depth: f64,
    pub max_depth: u64,
    pub producer_blocked_s: f64,
    pub consumer_waited_s: f64,
}

impl QueueStats {
    /// Items waiting at the latest send.
    pub fn depth(&self) -> u64 {
        self.depth_now.load(Relaxed)
    }

    pub fn report(&self) -> QueueReport {
        let items = self.sends.load(Relaxed);
        QueueReport {
            name: self.name.clone(),
            capacity: self.capacity,
            items,
            mean_depth: if items == 0 {
                0.0
            } else {
                self.depth_sum.load(Relaxed) as f64 / items as f64
            },
            max_depth: self.depth_max.load(Relaxed),
            producer_blocked_s: self.send_blocked_ns.load(Relaxed) as f64 * 1e-9,
            consumer_waited_s: self.recv_waited_ns.load(Relaxed) as f64 * 1e-9,
        }
    }
}

pub struct Tx<T> {
    inner: Sender<T>,
    stats: Arc<QueueStats>,
}

pub struct Rx<T> {
    inner: Receiver<T>,
    stats: Arc<QueueStats>,
}

// Several workers may share one end (the inference workers take batches from one queue and
// all feed the next); clones share the queue's statistics.
impl<T> Clone for Tx<T> {
    fn clone(&self) -> Self {
        Tx {
            inner: self.inner.clone(),
            stats: self.stats.clone(),
        }
    }
}

impl<T> Clone for Rx<T> {
    fn clone(&self) -> Self {
        Rx {
            inner: self.inner.clone(),
            stats: self.stats.clone(),
        }
    }
}

/// The receiving side hung up: the downstream stage stopped.
#[derive(Debug)]
pub struct Disconnected;

pub fn bounded<T>(name: impl Into<String>, capacity: usize) -> (Tx<T>, Rx<T>, Arc<QueueStats>) {
    let (s, r) = crossbeam_channel::bounded(capacity);
    let stats = Arc::new(QueueStats {
        name: name.into(),
        capacity,
        sends: AtomicU64::new(0),
        depth_sum: AtomicU64::new(0),
        depth_max: AtomicU64::new(0),
        depth_now: AtomicU64::new(0),
        send_blocked_ns: AtomicU64::new(0),
        recv_waited_ns: AtomicU64::new(0),
    });
    (
        Tx {
            inner: s,
            stats: stats.clone(),
        },
        Rx {
            inner: r,
            stats: stats.clone(),
        },
        stats,
    )
}

/// Why [`Tx::try_send`] did not send.
#[derive(Debug)]
pub enum TrySend<T> {
    /// The queue is full; the value comes back.
    Full(T),
    Disconnected,
}

impl<T> Tx<T> {
    pub fn send(&self, value: T) -> Result<(), Disconnected> {
        let t0 = Instant::now();
        self.inner.send(value).map_err(|_| Disconnected)?;
        self.stats
            .send_blocked_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Relaxed);
        self.sent();
        Ok(())
    }

    /// Sends without waiting (a live source must not wait for a slow consumer).
    pub fn try_send(&self, value: T) -> Result<(), TrySend<T>> {
        match self.inner.try_send(value) {
            Ok(()) => {
                self.sent();
                Ok(())
            }
            Err(crossbeam_channel::TrySendError::Full(v)) => Err(TrySend::Full(v)),
            Err(crossbeam_channel::TrySendError::Disconnected(_)) => Err(TrySend::Disconnected),
        }
    }

    fn sent(&self) {
        let s = &self.stats;
        let depth = self.inner.len() as u64;
        s.sends.fetch_add(1, Relaxed);
        s.depth_sum.fetch_add(depth, Relaxed);
        s.depth_max.fetch_max(depth, Relaxed);
        s.depth_now.store(depth, Relaxed);
    }
}

impl<T> Rx<T> {
    /// Blocks for the next item; `None` when every sender is gone and the queue is empty.
    pub fn recv(&self) -> Option<T> {
        let t0 = Instant::now();
        let v = self.inner.recv().ok();
        self.stats
            .recv_waited_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Relaxed);
        v
    }

    /// Like [`Rx::recv`] but gives up after `timeout`: `Err(true)` on timeout, `Err(false)` when closed.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, bool> {
        let t0 = Instant::now();
        let r = self.inner.recv_timeout(timeout);
        self.stats
            .recv_waited_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Relaxed);
        r.map_err(|e| matches!(e, RecvTimeoutError::Timeout))
    }

    /// The next item if one is waiting: `Ok(None)` when the queue is empty, `Err` when it is
    /// empty and every sender is gone.
    pub fn try_recv(&self) -> Result<Option<T>, Disconnected> {
        match self.inner.try_recv() {
            Ok(v) => Ok(Some(v)),
            Err(crossbeam_channel::TryRecvError::Empty) => Ok(None),
            Err(crossbeam_channel::TryRecvError::Disconnected) => Err(Disconnected),
        }
    }

    /// The receiving end, to wait on several queues at once (`crossbeam_channel::Select`).
    pub(crate) fn receiver(&self) -> &Receiver<T> {
        &self.inner
    }

    /// Counts time the consumer spent waiting on this queue among others.
    pub(crate) fn add_wait(&self, waited: Duration) {
        self.stats
            .recv_waited_ns
            .fetch_add(waited.as_nanos() as u64, Relaxed);
    }

    pub fn len(&self) -> usize {
        self.inner.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// Time a stage spent working (not waiting on its queues), and how many items it handled.
#[derive(Debug, Default)]
pub struct StageStats {
    pub name: &'static str,
    items: AtomicU64,
    busy_ns: AtomicU64,
    cpu_ns: AtomicU64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StageReport {
    pub name: &'static str,
    pub items: u64,
    pub busy_s: f64,
    pub ms_per_item: f64,
    /// CPU time of the stage's own thread per item (not of helper threads it started, such as
    /// FFmpeg's decoder threads or ONNX Runtime's pool); 0 if unknown.
    pub cpu_ms_per_item: f64,
}

impl StageStats {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(StageStats {
            name,
            ..Default::default()
        })
    }

    pub fn record(&self, items: u64, busy: Duration) {
        self.items.fetch_add(items, Relaxed);
        self.busy_ns.fetch_add(busy.as_nanos() as u64, Relaxed);
    }

    /// Adds the calling thread's CPU time so far; call it once, as the stage's thread ends.
    pub fn record_thread_cpu(&self) {
        if let Some(t) = crate::sys::thread_cpu_time() {
            self.cpu_ns.fetch_add(t.as_nanos() as u64, Relaxed);
        }
    }

    pub fn report(&self) -> StageReport {
        let items = self.items.load(Relaxed);
        let busy_s = self.busy_ns.load(Relaxed) as f64 * 1e-9;
        let per_item = |s: f64| {
            if items == 0 {
                0.0
            } else {
                s * 1e3 / items as f64
            }
        };
        StageReport {
            name: self.name,
            items,
            busy_s,
            ms_per_item: per_item(busy_s),
            cpu_ms_per_item: per_item(self.cpu_ns.load(Relaxed) as f64 * 1e-9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_depth_and_items() {
        let (tx, rx, stats) = bounded::<u32>("q", 4);
        for i in 0..3 {
            tx.send(i).unwrap();
        }
        let r = stats.report();
        assert_eq!((r.items, r.max_depth, r.capacity), (3, 3, 4));
        assert!((r.mean_depth - 2.0).abs() < 1e-9);
        assert_eq!(rx.len(), 3);
        assert_eq!(
            (rx.recv(), rx.recv(), rx.recv()),
            (Some(0), Some(1), Some(2))
        );
        assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(true));
        drop(tx);
        assert_eq!(rx.recv(), None);
        assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(false));
    }

    #[test]
    fn send_to_closed_queue_fails() {
        let (tx, rx, _) = bounded::<u32>("q", 1);
        drop(rx);
        assert!(tx.send(1).is_err());
    }
}
