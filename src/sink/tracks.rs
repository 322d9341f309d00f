//! Tracks sink (`<name>.tracks.jsonl`, with tracking): one line per confirmed track,
//! written when the track ends — lost for longer than `--track-lost-s`, or alive when the
//! input ends (those last, by id):
//! `{"track_id":1,"class_id":0,"label":"person","first_frame":0,"last_frame":63,"first_pts":0.0,"last_pts":6.3,"frames_seen":61,"mean_score":0.81,"first_box":{..},"last_box":{..}}`
//! Frames, timestamps and boxes are those of the detections matched to the track. With zones,
//! each line ends with the zones the track entered, its visits and seconds inside
//! (`"zones":[{"zone":"door","visits":1,"dwell_s":4.2}]`; `[]` for none).
//!
//! With `--segment-s`, a segment's file lists the tracks that ended while it was open,
//! with their whole history (a track may have begun in an earlier segment).

use std::{
    borrow::Cow,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Serialize;

use super::{FrameResult, Sink, Snapshot};
use crate::{
    error::Result,
    labels::Labels,
    output::PartialWriter,
    postprocess::BoxInFrame,
    track::{TrackDwell, TrackSummary, ZoneDwell},
};

/// One line of the file.
#[derive(Debug, Serialize)]
pub struct TrackLine<'a> {
    pub track_id: u64,
    pub class_id: u32,
    pub label: Cow<'a, str>,
    pub first_frame: u64,
    pub last_frame: u64,
    pub first_pts: f64,
    pub last_pts: f64,
    pub frames_seen: u64,
    pub mean_score: f32,
    pub first_box: BoxInFrame,
    pub last_box: BoxInFrame,
    /// With zones only: the zones it entered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<ZoneDwell>>,
    /// With `--snapshots` only: its snapshot (`null`: none was taken).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Option<Snapshot>>,
}

fn micros(s: f64) -> f64 {
    (s * 1e6).round() / 1e6
}

impl<'a> TrackLine<'a> {
    pub fn new(t: &TrackSummary, labels: &'a Labels) -> Self {
        TrackLine {
            track_id: t.track_id,
            class_id: t.class_id,
            label: labels.name(t.class_id),
            first_frame: t.first_frame,
            last_frame: t.last_frame,
            first_pts: micros(t.first_pts),
            last_pts: micros(t.last_pts),
            frames_seen: t.frames_seen,
            mean_score: t.mean_score,
            first_box: t.first_box,
            last_box: t.last_box,
            zones: None,
            snapshot: None,
        }
    }

    /// With zones: the track's time in them (`None`: it entered none).
    /// The `i`-th track's snapshot of `snapshots` (one per track, as `Snapshots::save` gives
    /// them); none when `snapshots` is empty (no `--snapshots`).
    pub fn with_snapshot(mut self, snapshots: &[Option<Snapshot>], i: usize) -> Self {
        self.snapshot = (!snapshots.is_empty()).then(|| snapshots.get(i).cloned().flatten());
        self
    }

    pub fn with_zones(self, dwell: Option<&TrackDwell>) -> Self {
        let zones = dwell
            .map_or(&[][..], |d| &d.zones)
            .iter()
            .map(|z| ZoneDwell {
                dwell_s: micros(z.dwell_s),
                ..z.clone()
            });
        TrackLine {
            zones: Some(zones.collect()),
            ..self
        }
    }
}

pub struct TracksSink {
    out: PartialWriter,
    labels: Arc<Labels>,
    /// The run has zones: every line lists the track's.
    zones: bool,
}

impl TracksSink {
    pub fn create(path: &Path, labels: Arc<Labels>, zones: bool) -> Result<Self> {
        Ok(TracksSink {
            out: PartialWriter::create(path)?,
            labels,
            zones,
        })
    }
}

impl Sink for TracksSink {
    fn write(&mut self, _frame: &FrameResult<'_>) -> Result<()> {
        Ok(())
    }

    fn tracks_ended(
        &mut self,
        tracks: &[TrackSummary],
        dwell: &[TrackDwell],
        snapshots: &[Option<Snapshot>],
    ) -> Result<()> {
        let mut text = String::new();
        for (i, t) in tracks.iter().enumerate() {
            let mut line = TrackLine::new(t, &self.labels).with_snapshot(snapshots, i);
            if self.zones {
                line = line.with_zones(dwell.iter().find(|d| d.track_id == t.track_id));
            }
            let line = serde_json::to_string(&line)
                .unwrap_or_else(|e| unreachable!("plain structs always serialise: {e}"));
            text.push_str(&line);
            text.push('\n');
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>> {
        Ok(vec![self.out.finish()?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_schema() {
        let labels = Labels::parse("0 person\n").unwrap();
        let b = BoxInFrame {
            x1: 1.0,
            y1: 2.0,
            x2: 3.0,
            y2: 4.5,
        };
        let t = TrackSummary {
            track_id: 3,
            class_id: 0,
            first_frame: 10,
            last_frame: 20,
            first_pts: 1.0000000001,
            last_pts: 2.0,
            frames_seen: 9,
            mean_score: 0.75,
            first_box: b,
            last_box: b,
        };
        let json = serde_json::to_string(&TrackLine::new(&t, &labels)).unwrap();
        let plain = r#"{"track_id":3,"class_id":0,"label":"person","first_frame":10,"last_frame":20,"first_pts":1.0,"last_pts":2.0,"frames_seen":9,"mean_score":0.75,"first_box":{"x1":1.0,"y1":2.0,"x2":3.0,"y2":4.5},"last_box":{"x1":1.0,"y1":2.0,"x2":3.0,"y2":4.5}"#;
        assert_eq!(json, format!("{plain}}}"));
        // With zones: the zones it entered, or an empty list.
        let dwell = TrackDwell {
            track_id: 3,
            zones: vec![ZoneDwell {
                zone: "door".into(),
                visits: 2,
                dwell_s: 4.2000000001,
            }],
        };
        let line = TrackLine::new(&t, &labels).with_zones(Some(&dwell));
        assert_eq!(
            serde_json::to_string(&line).unwrap(),
            format!(r#"{plain},"zones":[{{"zone":"door","visits":2,"dwell_s":4.2}}]}}"#)
        );
        let none = TrackLine::new(&t, &labels).with_zones(None);
        let json = serde_json::to_string(&none).unwrap();
        assert_eq!(json, format!(r#"{plain},"zones":[]}}"#));
    }
}
