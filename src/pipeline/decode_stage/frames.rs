//! An input's frames: decoded, selected (`--start`, `--duration`, `--stride`,
//! `--max-frames`), paced (`--realtime`) and sent.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use super::{reconnect::sleep_unless, DecodeStage, Feed, Out, Stop};
use crate::{
    decode::{DecodedFrame, Decoder},
    pipeline::{
        item::{Decoded, FrameMeta, InputEnd, Item, Marker},
        live::Stopped,
        stage::Jitter,
    },
    sink::StreamEvent,
};

impl DecodeStage<'_> {
    /// Decodes and sends frames until the input ends or fails, a limit is reached or Ctrl-C
    /// (noted in `end`).
    pub(super) fn frames(
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
            self.send_lost(dec, feed.input)?;
            let f = match next {
                Ok(Some(f)) => f,
                // Stopped while reading (a FIFO whose writer is silent): interrupted.
                Ok(None) if self.cancel.load(Ordering::SeqCst) => {
                    end.interrupted = true;
                    return Ok(Stop::Done);
                }
                Ok(None) if dec.read_to_end() => return Ok(Stop::Done),
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

    /// Tells the sinks of the packets that gave no frame, before the frame that follows them.
    fn send_lost(&mut self, dec: &mut Decoder, input: usize) -> Result<(), Stopped> {
        for s in dec.take_lost() {
            let event = StreamEvent::Undecodable {
                packets: s.packets,
                from_pts: round_ms(s.from_s),
                to_pts: round_ms(s.to_s),
            };
            self.send(Item::Marker(Marker::Event { input, event }))?;
        }
        Ok(())
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

fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// Releases frames no faster than their timestamps (`--realtime`, like `ffmpeg -re`).
#[derive(Default)]
pub(super) struct Pacer {
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
