//! A network source that drops is opened again, with backoff, for up to
//! `--reconnect-max-s`; its frames go on where they stopped.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use super::{DecodeStage, Feed, Stop};
use crate::{
    decode::{source::SourceKind, Decoder},
    error::{Error, Result},
    pipeline::{
        item::{InputEnd, Item, Marker},
        live::{backoff, Stopped},
    },
    sink::StreamEvent,
};

impl DecodeStage<'_> {
    /// Frames until the input is done; a network source that drops is reopened (with backoff,
    /// for up to `--reconnect-max-s`) and its frames go on where they stopped.
    pub(super) fn run_input(
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
}

/// Sleeps `d` unless cancelled meanwhile (then false).
pub(super) fn sleep_unless(d: Duration, cancel: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    while Instant::now() < until {
        if cancel.load(Ordering::SeqCst) {
            return false;
        }
        thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
    }
    true
}
