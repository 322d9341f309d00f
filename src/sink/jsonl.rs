//! JSONL sink: one line per frame:
//! `{"frame":0,"pts":0.0,"detections":[{"class_id":0,"label":"person","score":0.83,"x1":..,"y1":..,"x2":..,"y2":..}]}`
//! Coordinates are frame pixels, clamped to the frame.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{FrameResult, Sink, StreamEvent};
use crate::{
    error::{Error, Result},
    labels::Labels,
    output::PartialWriter,
    postprocess::{BoxInFrame, Detection},
};

/// One detection of a JSONL line; written with borrowed labels, read back with owned ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonDetection<'a> {
    pub class_id: u32,
    #[serde(borrow)]
    pub label: Cow<'a, str>,
    pub score: f32,
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

/// One JSONL line: a frame and its detections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonFrame<'a> {
    pub frame: u64,
    /// Presentation time in seconds (reference files from other tools may leave it out).
    #[serde(default)]
    pub pts: f64,
    #[serde(borrow)]
    pub detections: Vec<JsonDetection<'a>>,
}

impl JsonDetection<'_> {
    pub fn detection(&self) -> Detection {
        Detection {
            class_id: self.class_id,
            score: self.score,
            box_in_frame: BoxInFrame {
                x1: self.x1,
                y1: self.y1,
                x2: self.x2,
                y2: self.y2,
            },
        }
    }
}

/// How a live source's event lines start (`{"event":"dropped",...}`): not frames.
const EVENT_LINE: &str = "{\"event\"";

/// The frames of a JSONL file written by vidinfer, as detections per frame, in order (event
/// lines are left out).
pub fn read_frames(path: &Path) -> Result<Vec<(u64, Vec<Detection>)>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with(EVENT_LINE))
        .map(|l| {
            let f: JsonFrame<'_> =
                serde_json::from_str(l).map_err(|e| Error::read(path, std::io::Error::other(e)))?;
            Ok((
                f.frame,
                f.detections.iter().map(|d| d.detection()).collect(),
            ))
        })
        .collect()
}

/// Serialises one frame as a JSON line (no trailing newline).
pub fn frame_line(frame: &FrameResult<'_>, labels: &Labels) -> String {
    let names: Vec<_> = frame
        .detections
        .iter()
        .map(|d| labels.name(d.class_id))
        .collect();
    let line = JsonFrame {
        frame: frame.index,
        pts: (frame.pts_seconds * 1e6).round() / 1e6,
        detections: frame
            .detections
            .iter()
            .zip(&names)
            .map(|(d, n)| JsonDetection {
                class_id: d.class_id,
                label: Cow::Borrowed(n),
                score: d.score,
                x1: d.box_in_frame.x1,
                y1: d.box_in_frame.y1,
                x2: d.box_in_frame.x2,
                y2: d.box_in_frame.y2,
            })
            .collect(),
    };
    serde_json::to_string(&line)
        .unwrap_or_else(|e| unreachable!("plain structs always serialise: {e}"))
}

pub struct JsonlSink {
    out: PartialWriter,
    labels: Arc<Labels>,
}

impl JsonlSink {
    pub fn create(path: &Path, labels: Arc<Labels>) -> Result<Self> {
        Ok(JsonlSink {
            out: PartialWriter::create(path)?,
            labels,
        })
    }
}

impl Sink for JsonlSink {
    fn write(&mut self, frame: &FrameResult<'_>) -> Result<()> {
        if !frame.inferred {
            return Ok(());
        }
        let mut line = frame_line(frame, &self.labels);
        line.push('\n');
        self.out.write_all(line.as_bytes())?;
        // Each line reaches the file as it is written: `tail -f` on a live run works.
        self.out.flush()
    }

    fn event(&mut self, event: &StreamEvent) -> Result<()> {
        let mut line = serde_json::to_string(event).expect("a plain enum serialises");
        line.push('\n');
        self.out.write_all(line.as_bytes())?;
        self.out.flush()
    }

    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>> {
        Ok(vec![self.out.finish()?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postprocess::{BoxInFrame, Detection};

    #[test]
    fn line_schema() {
        let labels = Labels::parse("0 person\n2 car\n").unwrap();
        let dets = [Detection {
            class_id: 0,
            score: 0.75,
            box_in_frame: BoxInFrame {
                x1: 1.5,
                y1: 2.0,
                x2: 30.0,
                y2: 40.25,
            },
        }];
        let f = FrameResult {
            index: 7,
            pts_seconds: 0.7000000001,
            width: 64,
            height: 48,
            detections: &dets,
            inferred: true,
            picture: None,
        };
        let v: serde_json::Value = serde_json::from_str(&frame_line(&f, &labels)).unwrap();
        assert_eq!(v["frame"], 7);
        assert_eq!(v["pts"], 0.7);
        let d = &v["detections"][0];
        assert_eq!(d["class_id"], 0);
        assert_eq!(d["label"], "person");
        assert_eq!(d["score"], 0.75);
        assert_eq!(
            (
                d["x1"].as_f64(),
                d["y1"].as_f64(),
                d["x2"].as_f64(),
                d["y2"].as_f64()
            ),
            (Some(1.5), Some(2.0), Some(30.0), Some(40.25))
        );
        assert_eq!(v.as_object().unwrap().len(), 3);
        assert_eq!(d.as_object().unwrap().len(), 7);
    }

    #[test]
    fn empty_frame_has_empty_list() {
        let labels = Labels::parse("0 person\n").unwrap();
        let f = FrameResult {
            index: 0,
            pts_seconds: 0.0,
            width: 1,
            height: 1,
            detections: &[],
            inferred: true,
            picture: None,
        };
        assert_eq!(
            frame_line(&f, &labels),
            r#"{"frame":0,"pts":0.0,"detections":[]}"#
        );
    }
}
