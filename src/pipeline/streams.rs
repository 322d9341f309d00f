//! Many inputs at once (`--streams K`): up to K decoders run side by side, each on its own
//! thread, each taking the next input of the list when its input ends. With files they fill
//! the batches themselves (`preprocess_stage::SharedBatcher`); otherwise each has its own queue
//! and the preprocess stage reads them through [`Merge`], round-robin: one item from each
//! stream that has one ready in turn, so no stream starves and a batch may mix inputs. Each
//! queue is read in order, so every input's `Begin`, frames and `End` stay in order; batches are
//! numbered after the merge, so everything downstream sees the same interleaving.

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use crossbeam_channel::Select;
use serde::Serialize;

use crate::channel::{QueueReport, QueueStats, Rx, StageReport, StageStats};

/// Capacity of each decoder's queue: all of `--queue` for one stream (as with one decoder);
/// shared out between several, at least 2 each, so the decoded frames waiting stay under
/// `max(queue, 2 × streams)` however many streams run.
pub(super) fn stream_capacity(queue: usize, streams: usize) -> usize {
    if streams <= 1 {
        queue.max(1)
    } else {
        queue.div_ceil(streams).max(2)
    }
}

/// What [`Merge::recv`] found.
pub(super) enum Recv<T> {
    Item(T),
    /// Nothing arrived within the timeout.
    TimedOut,
    /// Every stream has ended and its queue is empty.
    Closed,
}

/// The decoders' queues, read round-robin.
pub(super) struct Merge<T> {
    /// `None` once a stream has ended and its queue is empty.
    streams: Vec<Option<Rx<T>>>,
    /// The stream to look at first next time (the one after the last served).
    next: usize,
}

impl<T> Merge<T> {
    pub fn new(streams: Vec<Rx<T>>) -> Self {
        Merge {
            streams: streams.into_iter().map(Some).collect(),
            next: 0,
        }
    }

    /// The next item of the first stream, from `next` on, that has one ready.
    fn try_next(&mut self) -> Option<T> {
        let k = self.streams.len();
        for step in 0..k {
            let i = (self.next + step) % k;
            let Some(rx) = &self.streams[i] else { continue };
            match rx.try_recv() {
                Ok(Some(v)) => {
                    self.next = (i + 1) % k;
                    return Some(v);
                }
                Ok(None) => {}
                Err(_) => self.streams[i] = None,
            }
        }
        None
    }

    /// Waits for the next item (at most `timeout`, when given), taking streams in turn.
    pub fn recv(&mut self, timeout: Option<Duration>) -> Recv<T> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if let Some(v) = self.try_next() {
                return Recv::Item(v);
            }
            let open: Vec<&Rx<T>> = self.streams.iter().flatten().collect();
            if open.is_empty() {
                return Recv::Closed;
            }
            let t0 = Instant::now();
            let mut sel = Select::new();
            for rx in &open {
                sel.recv(rx.receiver());
            }
            let ready = match deadline {
                Some(d) => sel.ready_deadline(d).is_ok(),
                None => {
                    sel.ready();
                    true
                }
            };
            let waited = t0.elapsed();
            for rx in &open {
                rx.add_wait(waited);
            }
            if !ready {
                return Recv::TimedOut;
            }
        }
    }
}

/// What one decoder did (`--stats`, `--summary-json`).
#[derive(Debug, Clone, Serialize)]
pub struct StreamReport {
    pub stream: usize,
    /// Inputs this decoder took from the list.
    pub inputs: u64,
    /// Frames it decoded.
    pub frames: u64,
    /// Wall seconds it spent opening inputs and decoding frames.
    pub decode_s: f64,
    pub decode_ms_per_frame: f64,
    /// CPU milliseconds per frame of the decoder's own thread (FFmpeg's frame threads, if
    /// any, are not counted).
    pub cpu_ms_per_frame: f64,
    /// It preprocessed its own frames into the shared batch (several streams of files): it
    /// had no queue, and the queue fields are 0.
    pub fills_batches: bool,
    /// Its queue to the preprocess stage.
    pub queue_capacity: usize,
    pub mean_depth: f64,
    pub max_depth: u64,
    /// Seconds it waited for room in its queue, or for the shared batcher (its lock, and room
    /// in the queue to the inference workers): the stages after it were the bottleneck.
    pub blocked_s: f64,
}

impl StreamReport {
    fn new(stream: usize, inputs: u64, stage: &StageReport, queue: Option<&QueueReport>) -> Self {
        StreamReport {
            stream,
            inputs,
            frames: stage.items,
            decode_s: stage.busy_s,
            decode_ms_per_frame: stage.ms_per_item,
            cpu_ms_per_frame: stage.cpu_ms_per_item,
            fills_batches: queue.is_none(),
            queue_capacity: queue.map_or(0, |q| q.capacity),
            mean_depth: queue.map_or(0.0, |q| q.mean_depth),
            max_depth: queue.map_or(0, |q| q.max_depth),
            blocked_s: queue.map_or(0.0, |q| q.producer_blocked_s),
        }
    }
}

/// One decoder's statistics while it runs.
pub(super) struct StreamStats {
    pub decode: Arc<StageStats>,
    /// `None` when the decoder fills the shared batch itself.
    pub queue: Option<Arc<QueueStats>>,
    /// Nanoseconds it waited for the shared batcher.
    pub waited_ns: AtomicU64,
}

impl StreamStats {
    pub fn report(&self, stream: usize, inputs: u64) -> StreamReport {
        let queue = self.queue.as_ref().map(|q| q.report());
        let mut r = StreamReport::new(stream, inputs, &self.decode.report(), queue.as_ref());
        r.blocked_s += self.waited_ns.load(Ordering::Relaxed) as f64 * 1e-9;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel;

    #[test]
    fn streams_are_served_in_turn_each_in_its_own_order() {
        let (mut txs, mut rxs) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            let (tx, rx, _) = channel::bounded::<(usize, u32)>("q", 8);
            txs.push(tx);
            rxs.push(rx);
        }
        // Stream 0 has much more ready than the others: it must not starve them.
        for i in 0..6 {
            txs[0].send((0, i)).unwrap();
        }
        for (s, tx) in txs.iter().enumerate().skip(1) {
            for i in 0..2 {
                tx.send((s, i)).unwrap();
            }
        }
        drop(txs);
        let mut m = Merge::new(rxs);
        let mut got = Vec::new();
        while let Recv::Item(v) = m.recv(None) {
            got.push(v);
        }
        assert_eq!(
            got,
            [
                (0, 0),
                (1, 0),
                (2, 0),
                (0, 1),
                (1, 1),
                (2, 1),
                (0, 2),
                (0, 3),
                (0, 4),
                (0, 5)
            ]
        );
        assert!(matches!(m.recv(None), Recv::Closed));
    }

    #[test]
    fn waits_for_whichever_stream_delivers_and_times_out_when_none_does() {
        let (tx0, rx0, _) = channel::bounded::<u32>("a", 2);
        let (tx1, rx1, _) = channel::bounded::<u32>("b", 2);
        let mut m = Merge::new(vec![rx0, rx1]);
        assert!(matches!(
            m.recv(Some(Duration::from_millis(5))),
            Recv::TimedOut
        ));
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                tx1.send(7).unwrap();
            });
            assert!(matches!(m.recv(None), Recv::Item(7)));
        });
        drop(tx1);
        tx0.send(1).unwrap();
        assert!(matches!(m.recv(None), Recv::Item(1)));
        drop(tx0);
        assert!(matches!(m.recv(Some(Duration::from_secs(5))), Recv::Closed));
    }

    #[test]
    fn stream_queues_share_the_queue_budget() {
        assert_eq!(stream_capacity(8, 1), 8);
        assert_eq!(stream_capacity(8, 2), 4);
        assert_eq!(stream_capacity(8, 4), 2);
        assert_eq!(stream_capacity(8, 16), 2);
        assert_eq!(stream_capacity(1, 1), 1);
    }
}
