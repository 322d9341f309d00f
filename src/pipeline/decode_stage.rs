//! The decode stage: opens each input in turn, sends its `Begin` marker, its frames and its
//! `End` marker (with what could not be decoded and why it stopped). An input that cannot be
//! opened is only an `End` with the error; the next input follows.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use super::{
    item::{Decoded, FrameMeta, InputEnd, InputStart, Item, Marker},
    report::Skip,
    stage::Jitter,
    PipelineConfig,
};
use crate::{
    channel::{StageStats, Tx},
    decode::Decoder,
    error::{Error, Result},
    output::{DoneMarker, InputIdentity, Lock, OutputDir, StemLock, Verdict},
};

/// Downstream stopped: nothing more can be sent.
struct Stopped;

struct DecodeStage<'a> {
    cfg: &'a PipelineConfig,
    out: &'a OutputDir,
    stems: &'a [String],
    tx: Tx<Item<Decoded>>,
    cancel: &'a AtomicBool,
    stats: &'a StageStats,
    jitter: Option<Jitter>,
}

pub(super) fn decode_stage(
    cfg: &PipelineConfig,
    (out, stems): (&OutputDir, &[String]),
    tx: Tx<Item<Decoded>>,
    cancel: &AtomicBool,
    stats: &StageStats,
) -> Result<()> {
    let mut stage = DecodeStage {
        cfg,
        out,
        stems,
        tx,
        cancel,
        stats,
        jitter: Jitter::new(cfg.jitter, 1),
    };
    for input in 0..cfg.inputs.len() {
        if cancel.load(Ordering::SeqCst) || stage.input(input).is_err() {
            break;
        }
    }
    Ok(())
}

impl DecodeStage<'_> {
    fn send(&self, item: Item<Decoded>) -> Result<(), Stopped> {
        self.tx.send(item).map_err(|_| Stopped)
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
            if let Ok(id) = InputIdentity::of(&self.cfg.inputs[input]) {
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

    fn input(&mut self, input: usize) -> Result<(), Stopped> {
        let path = &self.cfg.inputs[input];
        let lock = match self.lock(input) {
            Ok(l) => l,
            Err(end) => return self.send(Item::Marker(Marker::End(*end))),
        };
        let mut end = InputEnd::new(input);
        let identity = InputIdentity::of(path).ok();
        let t0 = Instant::now();
        let opened = Decoder::open(path, &self.cfg.decode);
        self.stats.record(0, t0.elapsed());
        let mut dec = match opened {
            Ok(d) => d,
            Err(e) => {
                end.error = Some(e);
                return self.send(Item::Marker(Marker::End(end)));
            }
        };
        let start = InputStart {
            input,
            info: dec.info().clone(),
            lock,
            identity,
        };
        self.send(Item::Marker(Marker::Begin(Box::new(start))))?;
        let frames = self.frames(input, &mut dec, &mut end)?;
        end.issues = dec.issues().clone();
        if frames == 0 && end.error.is_none() && !end.interrupted {
            end.error = Some(Error::NoFrames {
                path: path.clone(),
                corrupt: end.issues.corrupt_packets,
                rejected: end.issues.rejected_packets,
            });
        }
        self.send(Item::Marker(Marker::End(end)))
    }

    /// Decodes and sends the input's frames until its end, an error, `--max-frames` or
    /// Ctrl-C (noted in `end`). Returns how many frames were sent.
    fn frames(
        &mut self,
        input: usize,
        dec: &mut Decoder,
        end: &mut InputEnd,
    ) -> Result<u64, Stopped> {
        let mut frames = 0u64;
        let mut pacer = self.cfg.realtime.then(Pacer::default);
        loop {
            if self.cancel.load(Ordering::SeqCst) {
                end.interrupted = true;
                break;
            }
            if self.cfg.max_frames.is_some_and(|m| frames >= m) {
                break;
            }
            let t0 = Instant::now();
            let next = dec.next_frame();
            self.stats.record(1, t0.elapsed());
            let f = match next {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    end.error = Some(e);
                    break;
                }
            };
            frames += 1;
            if pacer
                .as_mut()
                .is_some_and(|p| !p.wait_for(f.pts_seconds, self.cancel))
            {
                end.interrupted = true;
                break;
            }
            let meta = FrameMeta {
                input,
                index: f.index,
                pts: f.pts_seconds,
                width: f.picture.width(),
                height: f.picture.height(),
                decoded_at: Instant::now(),
            };
            Jitter::sleep(&mut self.jitter);
            self.send(Item::Frame(Decoded {
                meta,
                picture: f.picture,
            }))?;
        }
        Ok(frames)
    }
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
        let mut left = due - now;
        while left > 0.0 {
            if cancel.load(Ordering::SeqCst) {
                return false;
            }
            thread::sleep(Duration::from_secs_f64(left.min(0.05)));
            left = due - start.elapsed().as_secs_f64();
        }
        true
    }
}
