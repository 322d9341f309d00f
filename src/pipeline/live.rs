//! What the decode stage does differently for a live source: it never waits for a slow
//! consumer (the oldest frames not yet taken are dropped, counted, and reported as an event),
//! and a network source that drops is opened again with backoff.

use std::{collections::VecDeque, time::Duration};

use super::item::{Decoded, Item, Marker};
use crate::{
    channel::{TrySend, Tx},
    sink::StreamEvent,
};

/// Downstream stopped: nothing more can be sent.
pub(super) struct Stopped;

/// How live sources are kept going.
#[derive(Debug, Clone)]
pub struct LiveOptions {
    /// Reopen a network source that drops: `None` for live URLs only, `Some` to force.
    pub reconnect: Option<bool>,
    /// Give up on a source that stays away this long.
    pub reconnect_max: Duration,
}

impl Default for LiveOptions {
    fn default() -> Self {
        LiveOptions {
            reconnect: None,
            reconnect_max: Duration::from_secs(30),
        }
    }
}

/// Frames of a live source waiting for room downstream; the oldest go when more than
/// `capacity` wait, so latency stays bounded however slow inference is.
pub(super) struct LiveBuffer {
    input: usize,
    capacity: usize,
    waiting: VecDeque<Decoded>,
    /// Dropped since the last event: (count, first frame, last frame).
    dropped: Option<(u64, u64, u64)>,
    /// All dropped frames of the input.
    pub total_dropped: u64,
}

impl LiveBuffer {
    pub fn new(input: usize, capacity: usize) -> Self {
        LiveBuffer {
            input,
            capacity: capacity.max(1),
            waiting: VecDeque::new(),
            dropped: None,
            total_dropped: 0,
        }
    }

    /// Takes a decoded frame and sends what the queue has room for, without waiting.
    pub fn push(&mut self, frame: Decoded, tx: &Tx<Item<Decoded>>) -> Result<(), Stopped> {
        self.waiting.push_back(frame);
        self.send_ready(tx)?;
        while self.waiting.len() > self.capacity {
            if let Some(old) = self.waiting.pop_front() {
                let i = old.meta.index;
                let d = self.dropped.get_or_insert((0, i, i));
                (d.0, d.2) = (d.0 + 1, i);
                self.total_dropped += 1;
            }
        }
        Ok(())
    }

    fn send_ready(&mut self, tx: &Tx<Item<Decoded>>) -> Result<(), Stopped> {
        while let Some(f) = self.waiting.pop_front() {
            if let Some((frames, first_frame, last_frame)) = self.dropped {
                let event = StreamEvent::Dropped {
                    frames,
                    first_frame,
                    last_frame,
                };
                match tx.try_send(Item::Marker(Marker::Event {
                    input: self.input,
                    event,
                })) {
                    Ok(()) => self.dropped = None,
                    Err(TrySend::Full(_)) => {
                        self.waiting.push_front(f);
                        return Ok(());
                    }
                    Err(TrySend::Disconnected) => return Err(Stopped),
                }
            }
            match tx.try_send(Item::Frame(f)) {
                Ok(()) => {}
                Err(TrySend::Full(Item::Frame(f))) => {
                    self.waiting.push_front(f);
                    return Ok(());
                }
                Err(_) => return Err(Stopped),
            }
        }
        Ok(())
    }

    /// Sends everything still waiting, waiting for room (the input ended).
    pub fn drain(&mut self, tx: &Tx<Item<Decoded>>) -> Result<(), Stopped> {
        if let Some((frames, first_frame, last_frame)) = self.dropped.take() {
            let event = StreamEvent::Dropped {
                frames,
                first_frame,
                last_frame,
            };
            let marker = Marker::Event {
                input: self.input,
                event,
            };
            tx.send(Item::Marker(marker)).map_err(|_| Stopped)?;
        }
        for f in self.waiting.drain(..) {
            tx.send(Item::Frame(f)).map_err(|_| Stopped)?;
        }
        Ok(())
    }
}

/// Waits between attempts to reopen a source: 0.5 s, 1 s, then 2 s (a restarted camera is
/// picked up within 2 s of coming back).
pub(super) fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((500u64 << attempt.min(2)).min(2000))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{channel, pipeline::item::FrameMeta};
    use ffmpeg_next::frame;

    fn frame(index: u64) -> Decoded {
        Decoded {
            meta: FrameMeta {
                input: 0,
                index,
                pts: index as f64,
                width: 1,
                height: 1,
                decoded_at: std::time::Instant::now(),
                infer: true,
            },
            picture: frame::Video::empty(),
        }
    }

    #[test]
    fn a_slow_consumer_loses_the_oldest_frames_and_hears_of_it() {
        let (tx, rx, _) = channel::bounded("q", 2);
        let mut b = LiveBuffer::new(0, 3);
        for i in 0..10 {
            assert!(b.push(frame(i), &tx).is_ok());
        }
        // 2 went into the queue, 3 wait, 5 (frames 2..=6) were dropped.
        assert_eq!(b.total_dropped, 5);
        let mut seen = Vec::new();
        while let Ok(item) = rx.recv_timeout(Duration::from_millis(1)) {
            seen.push(item);
        }
        // The event and the 3 waiting frames do not fit in the queue: drain waits for room.
        std::thread::scope(|s| {
            let drained = s.spawn(|| b.drain(&tx));
            while seen.len() < 6 {
                match rx.recv_timeout(Duration::from_secs(5)) {
                    Ok(item) => seen.push(item),
                    Err(_) => break,
                }
            }
            assert!(drained.join().unwrap().is_ok());
        });
        let desc: Vec<String> = seen
            .iter()
            .map(|i| match i {
                Item::Frame(f) => format!("f{}", f.meta.index),
                Item::Marker(Marker::Event { event, .. }) => format!("{event:?}"),
                _ => "other".into(),
            })
            .collect();
        assert_eq!(desc[..2], ["f0", "f1"]);
        assert!(
            desc[2].contains("frames: 5, first_frame: 2, last_frame: 6"),
            "{desc:?}"
        );
        assert_eq!(desc[3..], ["f7", "f8", "f9"]);
    }

    #[test]
    fn backoff_doubles_to_two_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(9), Duration::from_secs(2));
    }
}
