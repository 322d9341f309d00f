//! The decode stage: opens each input in turn, sends its `Begin` marker, its frames and its
//! `End` marker (with what could not be decoded and why it stopped). An input that cannot be
//! opened is only an `End` with the error; the next input follows.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use super::{
    item::{Decoded, FrameMeta, InputEnd, Item, Marker},
    stage::Jitter,
    PipelineConfig,
};
use crate::{
    channel::{StageStats, Tx},
    decode::Decoder,
    error::{Error, Result},
};

/// Downstream stopped: nothing more can be sent.
struct Stopped;

pub(super) fn decode_stage(
    cfg: &PipelineConfig,
    tx: Tx<Item<Decoded>>,
    cancel: &AtomicBool,
    stats: &StageStats,
) -> Result<()> {
    let mut jitter = Jitter::new(cfg.jitter, 1);
    let send = |item| tx.send(item).map_err(|_| Stopped);
    for input in 0..cfg.inputs.len() {
        if cancel.load(Ordering::SeqCst) {
            break;
        }
        if decode_input(cfg, input, &send, cancel, stats, &mut jitter).is_err() {
            break;
        }
    }
    Ok(())
}

fn decode_input(
    cfg: &PipelineConfig,
    input: usize,
    send: &impl Fn(Item<Decoded>) -> Result<(), Stopped>,
    cancel: &AtomicBool,
    stats: &StageStats,
    jitter: &mut Option<Jitter>,
) -> Result<(), Stopped> {
    let path = &cfg.inputs[input];
    let t0 = Instant::now();
    let opened = Decoder::open(path, &cfg.decode);
    stats.record(0, t0.elapsed());
    let mut dec = match opened {
        Ok(d) => d,
        Err(e) => {
            let end = InputEnd {
                input,
                issues: Default::default(),
                interrupted: false,
                error: Some(e),
            };
            return send(Item::Marker(Marker::End(end)));
        }
    };
    let info = dec.info().clone();
    send(Item::Marker(Marker::Begin { input, info }))?;
    let mut end = InputEnd {
        input,
        issues: Default::default(),
        interrupted: false,
        error: None,
    };
    let mut frames = 0u64;
    let mut pacer = cfg.realtime.then(Pacer::default);
    loop {
        if cancel.load(Ordering::SeqCst) {
            end.interrupted = true;
            break;
        }
        if cfg.max_frames.is_some_and(|m| frames >= m) {
            break;
        }
        let t0 = Instant::now();
        let next = dec.next_frame();
        stats.record(1, t0.elapsed());
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
            .is_some_and(|p| !p.wait_for(f.pts_seconds, cancel))
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
        Jitter::sleep(jitter);
        send(Item::Frame(Decoded {
            meta,
            picture: f.picture,
        }))?;
    }
    end.issues = dec.issues().clone();
    if frames == 0 && end.error.is_none() && !end.interrupted {
        end.error = Some(Error::NoFrames {
            path: path.clone(),
            corrupt: end.issues.corrupt_packets,
            rejected: end.issues.rejected_packets,
        });
    }
    send(Item::Marker(Marker::End(end)))
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
