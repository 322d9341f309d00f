//! The decode stage: opens each input in turn, sends its `Begin` marker, its frames and its
//! `End` marker (with what could not be decoded and why it stopped). An input that cannot be
//! opened is only an `End` with the error; the next input follows.
//!
//! With `--streams K` this runs on K threads, one per stream, each with its own decoder and
//! queue; each takes the next input no other stream has taken when its input ends. Several
//! streams of files skip the queue: each thread preprocesses its frames into the shared batch
//! itself ([`Out::Batch`], see `preprocess_stage`).
//!
//! Frames are selected here (`--start`, `--duration`, `--stride`, `--max-frames`). A live
//! source goes through a [`LiveBuffer`] (it never waits for inference: the oldest frames are
//! dropped instead), and a network source that drops is opened again.

use std::{
    sync::{
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

mod frames;
mod reconnect;

use frames::Pacer;

use super::{
    config::PipelineConfig,
    item::{Decoded, InputEnd, InputStart, Item, Marker},
    live::{LiveBuffer, Stopped},
    preprocess_stage::SharedBatcher,
    report::Skip,
    stage::Jitter,
};
use crate::{
    channel::{StageStats, Tx},
    decode::{source::SourceKind, DecodeOptions, Decoder},
    error::{Error, Result},
    output::{DoneMarker, InputIdentity, Lock, OutputDir, StemLock, Verdict},
    preprocess::frame::FramePreprocessor,
};

struct DecodeStage<'a> {
    cfg: &'a PipelineConfig,
    out: &'a OutputDir,
    stems: &'a [String],
    out_to: Out<'a>,
    /// This stream's kernel, when it fills the shared batch (made on first use, on this
    /// thread: FFmpeg's converter inside it stays on the thread that made it).
    kernel: Option<FramePreprocessor>,
    cancel: &'a AtomicBool,
    decode: DecodeOptions,
    stats: DecodeStats<'a>,
    jitter: Option<Jitter>,
}

/// Where a stream's items go.
pub(super) enum Out<'a> {
    /// Its queue to the preprocess thread.
    Queue(Tx<Item<Decoded>>),
    /// Into the batch being filled, each frame preprocessed on this thread with its kernel.
    Batch(&'a SharedBatcher),
}

/// Tells the shared batcher that the stream has ended, however its thread leaves.
struct Ended<'a>(Option<&'a SharedBatcher>);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared.stream_ended();
        }
    }
}

/// One stream of the decode stage: which one, where it takes its inputs from, its statistics.
pub(super) struct Stream<'a> {
    pub index: usize,
    /// The next input no stream has taken yet (shared by every stream).
    pub next_input: &'a AtomicUsize,
    /// The decode stage's statistics (every stream's together).
    pub stage: &'a StageStats,
    /// This stream's own.
    pub own: &'a StageStats,
    /// Nanoseconds it waited for the shared batcher (its lock, room downstream).
    pub waited_ns: &'a AtomicU64,
}

/// Busy time is recorded for the stage and for the stream.
struct DecodeStats<'a> {
    stage: &'a StageStats,
    own: &'a StageStats,
    waited_ns: &'a AtomicU64,
}

impl DecodeStats<'_> {
    fn record(&self, items: u64, busy: Duration) {
        self.stage.record(items, busy);
        self.own.record(items, busy);
    }
}

/// Why an input's frames stopped coming.
enum Stop {
    /// The source ended (or `--duration`, `--max-frames` was reached).
    Done,
    /// The source ended or failed; for a source that can be reopened, worth another try.
    Lost(String),
}

/// One input's frames as they go out: what is selected, and the live buffer.
struct Feed {
    input: usize,
    live: Option<LiveBuffer>,
    /// Frames decoded (counting those `--stride` leaves out).
    decoded: u64,
    /// Timestamp of the latest frame sent.
    last: Option<f64>,
    pacer: Option<Pacer>,
}

impl Feed {
    fn last_pts(&self) -> f64 {
        self.last.unwrap_or(0.0)
    }
}

/// One stream's loop: takes the next input of the list until none is left (or Ctrl-C, or
/// the stages after it stopped). `decode` are its decoder's options. Returns how many inputs
/// it took.
pub(super) fn decode_stage(
    cfg: &PipelineConfig,
    (out, stems): (&OutputDir, &[String]),
    (out_to, decode): (Out<'_>, DecodeOptions),
    cancel: &Arc<AtomicBool>,
    stream: Stream<'_>,
) -> Result<u64> {
    let shared = match &out_to {
        Out::Batch(shared) => Some(*shared),
        Out::Queue(_) => None,
    };
    let _ended = Ended(shared);
    let mut decode = decode;
    decode.interrupt = Some(cancel.clone());
    let mut stage = DecodeStage {
        cfg,
        out,
        stems,
        out_to,
        kernel: None,
        cancel,
        decode,
        stats: DecodeStats {
            stage: stream.stage,
            own: stream.own,
            waited_ns: stream.waited_ns,
        },
        jitter: Jitter::new(cfg.jitter, 1 + 100 * stream.index as u64),
    };
    let mut taken = 0;
    while !cancel.load(Ordering::SeqCst) {
        let input = stream.next_input.fetch_add(1, Ordering::SeqCst);
        if input >= cfg.inputs.len() {
            break;
        }
        taken += 1;
        if stage.input(input).is_err() {
            break;
        }
    }
    Ok(taken)
}

impl DecodeStage<'_> {
    fn send(&mut self, item: Item<Decoded>) -> Result<(), Stopped> {
        match &self.out_to {
            Out::Queue(tx) => tx.send(item).map_err(|_| Stopped),
            Out::Batch(shared) => {
                let kernel = self.kernel.get_or_insert_with(|| shared.kernel());
                let waited = shared.push(kernel, item)?;
                let ns = waited.as_nanos() as u64;
                self.stats.waited_ns.fetch_add(ns, Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Takes the lock on the input's outputs; `Err` is how the input ends without being
    /// decoded (busy elsewhere, or finished meanwhile).
    fn lock(&self, input: usize) -> std::result::Result<StemLock, Box<InputEnd>> {
        let stem = &self.stems[input];
        let mut end = Box::new(InputEnd::new(input));
        let lock = match self.out.lock(stem) {
            Ok(Lock::Held(l)) => l,
            Ok(Lock::Busy { pid }) => {
                end.skipped = Some(Skip::Busy { pid });
                return Err(end);
            }
            Err(e) => {
                end.error = Some(e);
                return Err(end);
            }
        };
        // Planned before the lock was ours: another process may have finished it since.
        if !self.cfg.force {
            if let Some(id) = file_identity(&self.cfg.inputs[input]) {
                let verdict = DoneMarker::check(self.out.root(), stem, &id, &self.cfg.settings);
                if verdict == Verdict::Done {
                    end.skipped = Some(Skip::DoneMeanwhile);
                    return Err(end);
                }
            }
        }
        self.out.remove_stale_partials(stem);
        Ok(lock)
    }

    fn open(&self, input: usize) -> Result<Decoder> {
        let t0 = Instant::now();
        let opened = Decoder::open(&self.cfg.inputs[input], &self.decode);
        self.stats.record(0, t0.elapsed());
        let mut dec = opened?;
        if let Some(t) = &self.cfg.tracking {
            let (w, h) = (dec.info().width, dec.info().height);
            t.check_frame(w, h).map_err(|source| Error::CountLine {
                path: self.cfg.inputs[input].clone(),
                source: Box::new(source),
            })?;
            t.check_zones(w, h).map_err(|source| Error::Zone {
                path: self.cfg.inputs[input].clone(),
                source: Box::new(source),
            })?;
        }
        if let Some(start) = self.cfg.selection.start {
            dec.seek(start)?;
        }
        Ok(dec)
    }

    fn input(&mut self, input: usize) -> Result<(), Stopped> {
        let lock = match self.lock(input) {
            Ok(l) => l,
            Err(end) => return self.send(Item::Marker(Marker::End(end))),
        };
        let mut end = InputEnd::new(input);
        let mut dec = match self.open(input) {
            Ok(d) => d,
            // Stopped while waiting for the source (a FIFO with no writer yet).
            Err(_) if self.cancel.load(Ordering::SeqCst) => {
                end.interrupted = true;
                return self.send(Item::Marker(Marker::End(Box::new(end))));
            }
            Err(e) => {
                end.error = Some(e);
                return self.send(Item::Marker(Marker::End(Box::new(end))));
            }
        };
        let live = dec.is_live();
        // Only a queue can drop frames for a live source: the shared batcher is used for
        // files alone (`pipeline::run`).
        let buffered = live && matches!(self.out_to, Out::Queue(_));
        let start = InputStart {
            input,
            info: dec.info().clone(),
            lock,
            identity: file_identity(&self.cfg.inputs[input]),
            live,
        };
        self.send(Item::Marker(Marker::Begin(Box::new(start))))?;
        let mut feed = Feed {
            input,
            // Room for a burst (a stream starting, a reconnect) of about a second of frames.
            live: buffered.then(|| LiveBuffer::new(input, self.cfg.queue_capacity.max(30))),
            decoded: 0,
            last: None,
            pacer: self.cfg.realtime.then(Pacer::default),
        };
        self.run_input(&mut dec, &mut feed, &mut end)?;
        if let (Some(buffer), Out::Queue(tx)) = (&mut feed.live, &self.out_to) {
            buffer.drain(tx)?;
            end.dropped = buffer.total_dropped;
        }
        end.issues = dec.issues().clone();
        if feed.decoded == 0 && end.error.is_none() && !end.interrupted {
            end.error = Some(Error::NoFrames {
                path: self.cfg.inputs[input].clone(),
                corrupt: end.issues.corrupt_packets,
                rejected: end.issues.rejected_packets,
            });
        }
        self.send(Item::Marker(Marker::End(Box::new(end))))
    }
}

/// The identity done markers record: only files have one.
fn file_identity(path: &std::path::Path) -> Option<InputIdentity> {
    (SourceKind::of(path) == SourceKind::File)
        .then(|| InputIdentity::of(path).ok())
        .flatten()
}
