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
    thread,
    time::{Duration, Instant},
};

use super::{
    item::{Decoded, FrameMeta, InputEnd, InputStart, Item, Marker},
    live::{backoff, LiveBuffer, Stopped},
    preprocess_stage::SharedBatcher,
    report::Skip,
    stage::Jitter,
    PipelineConfig,
};
use crate::{
    channel::{StageStats, Tx},
    decode::{source::SourceKind, DecodeOptions, DecodedFrame, Decoder},
    error::{Error, Result},
    output::{DoneMarker, InputIdentity, Lock, OutputDir, StemLock, Verdict},
    preprocess::frame::FramePreprocessor,
    sink::StreamEvent,
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
        }
        if let Some(start) = self.cfg.selection.start {
            dec.seek(start)?;
        }
        Ok(dec)
    }

    fn input(&mut self, input: usize) -> Result<(), Stopped> {
        let lock = match self.lock(input) {
            Ok(l) => l,
            Err(end) => return self.send(Item::Marker(Marker::End(*end))),
        };
        let mut end = InputEnd::new(input);
        let mut dec = match self.open(input) {
            Ok(d) => d,
            Err(e) => {
                end.error = Some(e);
                return self.send(Item::Marker(Marker::End(end)));
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
        self.send(Item::Marker(Marker::End(end)))
    }

    /// Frames until the input is done; a network source that drops is reopened (with backoff,
    /// for up to `--reconnect-max-s`) and its frames go on where they stopped.
    fn run_input(
        &mut self,
        dec: &mut Decoder,
        feed: &mut Feed,
        end: &mut InputEnd,
    ) -> Result<(), Stopped> {
        let path = &self.cfg.inputs[feed.input];
        let reconnect = self.cfg.live.reconnect.unwrap_or(dec.is_live())
            && SourceKind::of(path).can_reconnect();
        loop {
            let why = match self.frames(dec, feed, end)? {
                Stop::Done => return Ok(()),
                Stop::Lost(why) => why,
            };
            if !reconnect || self.cancel.load(Ordering::SeqCst) {
                return Ok(());
            }
            let after_frame = dec.next_index().checked_sub(1);
            let last_pts = feed.last_pts();
            match self.reopen(feed.input, &why) {
                Ok((mut new, gap)) => {
                    new.continue_from(dec.next_index(), last_pts + gap.as_secs_f64());
                    *dec = new;
                    end.error = None;
                    end.reconnects += 1;
                    let event = StreamEvent::Reconnected {
                        after_frame,
                        gap_s: (gap.as_secs_f64() * 1000.0).round() / 1000.0,
                        reason: why,
                    };
                    self.send(Item::Marker(Marker::Event {
                        input: feed.input,
                        event,
                    }))?;
                }
                Err(e) => {
                    end.error = Some(e);
                    return Ok(());
                }
            }
        }
    }

    /// Tries to open the input again until `--reconnect-max-s` has passed; the new decoder and
    /// how long the source was away.
    fn reopen(&self, input: usize, why: &str) -> Result<(Decoder, Duration)> {
        let path = &self.cfg.inputs[input];
        let lost_at = Instant::now();
        tracing::warn!(
            "{}: lost ({why}); reconnecting for up to {:.0} s",
            path.display(),
            self.cfg.live.reconnect_max.as_secs_f64()
        );
        let mut last = why.to_string();
        for attempt in 0.. {
            let wait = backoff(attempt);
            if lost_at.elapsed() + wait > self.cfg.live.reconnect_max {
                break;
            }
            if !sleep_unless(wait, self.cancel) {
                last = "interrupted".into();
                break;
            }
            match Decoder::open(path, &self.decode) {
                Ok(dec) => {
                    tracing::warn!(
                        "{}: reconnected after {:.1} s",
                        path.display(),
                        lost_at.elapsed().as_secs_f64()
                    );
                    return Ok((dec, lost_at.elapsed()));
                }
                Err(e) => last = crate::error::chain(&e),
            }
        }
        Err(Error::SourceLost {
            path: path.clone(),
            waited_s: lost_at.elapsed().as_secs_f64().round() as u64,
            last,
        })
    }

    /// Decodes and sends frames until the input ends or fails, a limit is reached or Ctrl-C
    /// (noted in `end`).
    fn frames(
        &mut self,
        dec: &mut Decoder,
        feed: &mut Feed,
        end: &mut InputEnd,
    ) -> Result<Stop, Stopped> {
        let sel = &self.cfg.selection;
        loop {
            if self.cancel.load(Ordering::SeqCst) {
                end.interrupted = true;
                return Ok(Stop::Done);
            }
            if self.cfg.max_frames.is_some_and(|m| feed.decoded >= m) {
                return Ok(Stop::Done);
            }
            let t0 = Instant::now();
            let next = dec.next_frame();
            // Counted as a frame only if it is one (not the end of the input).
            self.stats
                .record(u64::from(matches!(next, Ok(Some(_)))), t0.elapsed());
            let f = match next {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(Stop::Lost("the stream ended".into())),
                Err(e) => {
                    let why = crate::error::chain(&e);
                    end.error = Some(e);
                    return Ok(Stop::Lost(why));
                }
            };
            if sel.start.is_some_and(|s| f.pts_seconds < s) {
                continue;
            }
            if sel
                .duration
                .is_some_and(|d| f.pts_seconds >= sel.start.unwrap_or(0.0) + d)
            {
                return Ok(Stop::Done);
            }
            feed.decoded += 1;
            let infer = f.index % sel.stride.max(1) == 0;
            if feed
                .pacer
                .as_mut()
                .is_some_and(|p| !p.wait_for(f.pts_seconds, self.cancel))
            {
                end.interrupted = true;
                return Ok(Stop::Done);
            }
            let frame = self.decoded(feed.input, f, infer);
            feed.last = Some(frame.meta.pts);
            Jitter::sleep(&mut self.jitter);
            match (&mut feed.live, &self.out_to) {
                (Some(buffer), Out::Queue(tx)) => buffer.push(frame, tx)?,
                _ => self.send(Item::Frame(frame))?,
            }
        }
    }

    fn decoded(&self, input: usize, f: DecodedFrame, infer: bool) -> Decoded {
        let meta = FrameMeta {
            input,
            index: f.index,
            pts: f.pts_seconds,
            width: f.picture.width(),
            height: f.picture.height(),
            decoded_at: Instant::now(),
            infer,
        };
        Decoded {
            meta,
            picture: f.picture,
        }
    }
}

/// The identity done markers record: only files have one.
fn file_identity(path: &std::path::Path) -> Option<InputIdentity> {
    (SourceKind::of(path) == SourceKind::File)
        .then(|| InputIdentity::of(path).ok())
        .flatten()
}

/// Sleeps `d` unless cancelled meanwhile (then false).
fn sleep_unless(d: Duration, cancel: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if cancel.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    true
}

/// Releases frames no faster than their timestamps (`--realtime`, like `ffmpeg -re`).
#[derive(Default)]
struct Pacer {
    /// (wall clock, timestamp) of the frame the clock is anchored at.
    clock: Option<(Instant, f64)>,
}

impl Pacer {
    /// Sleeps until `pts` is due; false if cancelled meanwhile. A jump of more than a second
    /// (a timestamp gap or reset) re-anchors the clock instead of stalling the stream.
    fn wait_for(&mut self, pts: f64, cancel: &AtomicBool) -> bool {
        let (start, first) = *self.clock.get_or_insert((Instant::now(), pts));
        let due = pts - first;
        let now = start.elapsed().as_secs_f64();
        if !due.is_finite() || due - now > 1.0 || due < now - 1.0 {
            self.clock = Some((Instant::now(), pts));
            return true;
        }
        sleep_unless(Duration::from_secs_f64((due - now).max(0.0)), cancel)
    }
}
