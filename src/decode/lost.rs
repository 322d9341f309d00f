//! Packets that gave no frame: the P-frames before the first keyframe of a file cut in the
//! middle of a GOP, slices whose references are missing, corrupt data the decoder dropped.
//!
//! Each packet the decoder accepts is remembered by its timestamp until a frame with that
//! timestamp comes out. Frames leave the decoder in presentation order, so when a frame at
//! `t` comes out, every packet still waiting with a timestamp before `t` gave no frame. What is
//! still waiting when the decoder is drained gave none either. Packets without a timestamp,
//! and those the container marks to be decoded but not shown (an edit list's trimmed
//! frames), are not counted.

use std::collections::BTreeSet;

/// A run of consecutive packets that gave no frame, as timestamps in the stream's time base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawSpan {
    pub packets: u64,
    pub first: i64,
    pub last: i64,
    /// Before the first frame that came out.
    pub leading: bool,
}

#[derive(Debug, Default)]
pub(crate) struct LostPackets {
    waiting: BTreeSet<i64>,
    spans: Vec<RawSpan>,
    frames: u64,
    /// Packets found lost in all, and of them before the first frame.
    pub total: u64,
    pub leading: u64,
}

impl LostPackets {
    /// The decoder accepted a packet with this timestamp.
    pub fn sent(&mut self, pts: Option<i64>) {
        if let Some(p) = pts {
            self.waiting.insert(p);
        }
    }

    /// A frame came out with this timestamp: the packets waiting before it gave none.
    pub fn frame(&mut self, pts: Option<i64>) {
        match pts {
            Some(p) => {
                let later = self.waiting.split_off(&p);
                let lost = std::mem::replace(&mut self.waiting, later);
                self.waiting.remove(&p);
                self.record(&lost);
            }
            None => {
                self.waiting.pop_first();
            }
        }
        self.frames += 1;
    }

    /// The decoder is drained: whatever still waits gave no frame.
    pub fn end(&mut self) {
        let lost = std::mem::take(&mut self.waiting);
        self.record(&lost);
    }

    fn record(&mut self, lost: &BTreeSet<i64>) {
        if let (Some(&first), Some(&last)) = (lost.first(), lost.last()) {
            let n = lost.len() as u64;
            self.total += n;
            if self.frames == 0 {
                self.leading += n;
            }
            self.spans.push(RawSpan {
                packets: lost.len() as u64,
                first,
                last,
                leading: self.frames == 0,
            });
        }
    }

    /// The spans found since the last call.
    pub fn take(&mut self) -> Vec<RawSpan> {
        std::mem::take(&mut self.spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_before_a_frame_and_after_the_last_are_lost() {
        let mut l = LostPackets::default();
        for p in 0..5 {
            l.sent(Some(p));
        }
        // 0..3 gave nothing; 3 is the first frame.
        l.frame(Some(3));
        l.frame(Some(4));
        assert_eq!(
            l.take(),
            [RawSpan {
                packets: 3,
                first: 0,
                last: 2,
                leading: true
            }]
        );
        assert_eq!((l.total, l.leading), (3, 3));
        for p in 5..9 {
            l.sent(Some(p));
        }
        l.sent(None);
        l.frame(Some(5));
        l.frame(Some(7));
        l.end();
        let spans = l.take();
        assert_eq!(
            spans,
            [
                RawSpan {
                    packets: 1,
                    first: 6,
                    last: 6,
                    leading: false
                },
                RawSpan {
                    packets: 1,
                    first: 8,
                    last: 8,
                    leading: false
                }
            ]
        );
        assert!(l.take().is_empty());
        assert_eq!((l.total, l.leading), (5, 3));
    }

    #[test]
    fn reordered_frames_lose_nothing() {
        let mut l = LostPackets::default();
        // Decode order I P B B, presentation order I B B P.
        for p in [0, 3, 1, 2] {
            l.sent(Some(p));
        }
        for p in [0, 1, 2, 3] {
            l.frame(Some(p));
        }
        l.end();
        assert!(l.take().is_empty());
    }
}
