//! Results handed to the caller instead of written to files: each frame's detections (and,
//! when asked, its decoded picture as packed RGB) go into a bounded channel that the caller
//! reads, in frame order per input, followed by an [`ResultEvent::InputEnded`] for every
//! input. A language binding or an embedding program reads it; nothing is written.
//!
//! The channel is bounded: a slow reader slows the pipeline (back-pressure through every
//! queue), it never loses a frame. A reader that goes away (drops its receiver) makes every
//! later send fail at once, so the sink stage never blocks on a reader that is gone; stopping
//! the run is the caller's business (its cancel flag).

use crossbeam_channel::{Receiver, Sender};
use ffmpeg_next::frame;

use crate::{
    av::RgbConverter,
    error::{Error, FrameError},
    postprocess::Detection,
};

/// A decoded picture as packed RGB24, rows without padding (`data.len() == 3 * width * height`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbPicture {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

/// One frame's results.
#[derive(Debug, Clone)]
pub struct FrameResults {
    /// Index of the input in the run's list.
    pub input: usize,
    /// 0-based frame index in the input.
    pub index: u64,
    /// Presentation time in seconds.
    pub pts: f64,
    pub width: u32,
    pub height: u32,
    /// False for a frame left out of inference by the frame selection's stride (no
    /// detections of its own).
    pub inferred: bool,
    /// Boxes in frame pixels, clamped to the frame.
    pub detections: Vec<Detection>,
    /// With tracking, a track id per detection (`None`: not on a confirmed track).
    pub track_ids: Option<Vec<Option<u64>>>,
    /// The decoded picture, when the caller asked for pictures.
    pub picture: Option<RgbPicture>,
}

/// Why an input ended without all of its frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFailure {
    /// The library's message with its causes (see [`crate::error::chain`]).
    pub message: String,
    /// The input does not exist (as opposed to existing and failing to open or decode).
    pub not_found: bool,
}

impl InputFailure {
    pub fn of(e: &Error) -> Self {
        InputFailure {
            message: crate::error::chain(e),
            not_found: matches!(e, Error::InputNotFound(_)),
        }
    }
}

/// What the caller receives.
#[derive(Debug, Clone)]
pub enum ResultEvent {
    Frame(Box<FrameResults>),
    /// Every frame of the input has been sent before this; `error` if it failed.
    InputEnded {
        input: usize,
        error: Option<InputFailure>,
        /// Stopped by the run's cancel flag before its end.
        interrupted: bool,
    },
}

/// The sending end, set in [`super::SinkConfig::results`].
#[derive(Debug, Clone)]
pub struct ResultSender {
    tx: Sender<ResultEvent>,
    /// Send each frame's decoded picture with it.
    pub pictures: bool,
}

/// A channel of `capacity` results (at least 1): the sender for the run's configuration,
/// the receiver for the caller.
pub fn result_channel(capacity: usize, pictures: bool) -> (ResultSender, Receiver<ResultEvent>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (ResultSender { tx, pictures }, rx)
}

/// The sink stage's side: converts pictures and sends (one per run, on the sink thread).
pub struct ResultDelivery {
    sender: ResultSender,
    rgb: RgbConverter,
}

impl ResultDelivery {
    pub fn new(sender: ResultSender) -> Self {
        ResultDelivery {
            sender,
            rgb: RgbConverter::default(),
        }
    }

    /// Sends a frame's results, converting its picture when pictures were asked for (a
    /// picture FFmpeg cannot convert is an error of the input). A reader that is gone is not
    /// an error: its results are dropped.
    pub fn frame(
        &mut self,
        mut results: FrameResults,
        picture: Option<&frame::Video>,
    ) -> Result<(), FrameError> {
        if self.sender.pictures {
            if let Some(p) = picture {
                results.picture = Some(self.picture(p)?);
            }
        }
        let _ = self.sender.tx.send(ResultEvent::Frame(Box::new(results)));
        Ok(())
    }

    fn picture(&mut self, p: &frame::Video) -> Result<RgbPicture, FrameError> {
        let (w, h) = (p.width(), p.height());
        let (data, stride) = self.rgb.convert(p).map_err(FrameError::Convert)?;
        let row = 3 * w as usize;
        let mut out = Vec::with_capacity(row * h as usize);
        for y in 0..h as usize {
            out.extend_from_slice(&data[y * stride..y * stride + row]);
        }
        Ok(RgbPicture {
            width: w,
            height: h,
            data: out,
        })
    }

    /// Tells the reader an input has ended.
    pub fn input_ended(&self, input: usize, error: Option<&Error>, interrupted: bool) {
        let event = ResultEvent::InputEnded {
            input,
            error: error.map(InputFailure::of),
            interrupted,
        };
        let _ = self.sender.tx.send(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gone_reader_does_not_block_or_fail_the_sender() {
        let (tx, rx) = result_channel(1, false);
        let mut d = ResultDelivery::new(tx);
        drop(rx);
        let f = FrameResults {
            input: 0,
            index: 0,
            pts: 0.0,
            width: 2,
            height: 2,
            inferred: true,
            detections: Vec::new(),
            track_ids: None,
            picture: None,
        };
        // The channel holds one: without a reader, sends must neither block nor fail.
        for _ in 0..3 {
            assert!(d.frame(f.clone(), None).is_ok());
        }
        d.input_ended(0, None, false);
    }

    #[test]
    fn a_missing_input_is_told_apart() {
        let missing = InputFailure::of(&Error::InputNotFound("/no/such.mp4".into()));
        assert!(missing.not_found);
        assert!(missing.message.contains("/no/such.mp4"));
        let other = InputFailure::of(&Error::NoVideoStream("a.mp4".into()));
        assert!(!other.not_found);
    }
}
