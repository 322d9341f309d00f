//! JSONL sink: one line per frame:
//! `{"frame":0,"pts":0.0,"detections":[{"class_id":0,"label":"person","score":0.83,"x1":..,"y1":..,"x2":..,"y2":..}]}`
//! Coordinates are frame pixels, clamped to the frame. With tracking, every detection also
//! has `"track_id"` (a number, or `null` for a detection not on a confirmed track), and each
//! line crossing is an event line after its frame's line:
//! `{"event":"crossing","line":"door","direction":"in","track_id":3,...}`.
//! With zones, every detection also has `"zones"` (the names of the zones its feet are in),
//! the frame line ends with `"zones":{"door":2,...}` (each zone's occupancy: tracks that
//! entered and have not left), and each enter or exit is an event line after its frame's:
//! `{"event":"zone_exit","zone":"door","track_id":3,...,"dwell_s":4.2,"track_ended":false}`.
//! With `--snapshots`, each track that ends is a line naming its snapshot:
//! `{"event":"track_end","track_id":3,...,"snapshot":{"crop":"clip.snapshots/3.crop.jpg",...}}`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

use super::{FrameResult, Sink, Snapshot, StreamEvent};
use crate::{
    error::{Error, Result},
    labels::Labels,
    output::PartialWriter,
    postprocess::{BoxInFrame, Detection},
    track::{CrossingEvent, FrameZones, TrackDwell, TrackSummary, ZoneEvent, ZoneEventKind},
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
    /// With tracking only: `Some(None)` is written as `null` (no confirmed track).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub track_id: Option<Option<u64>>,
    /// With zones only: the zones its feet are in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zones: Option<Vec<Cow<'a, str>>>,
}

/// A field that is there, even as `null`, is `Some` (missing fields are `None` by default).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
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
    /// With zones only: each zone's occupancy, in the zones' order (written, not read).
    #[serde(default, skip_deserializing, skip_serializing_if = "Option::is_none")]
    pub zones: Option<ZoneCounts<'a>>,
}

/// Zone name → tracks inside, written as a JSON object in the zones' order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZoneCounts<'a>(pub Vec<(&'a str, u32)>);

impl Serialize for ZoneCounts<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (name, n) in &self.0 {
            m.serialize_entry(name, n)?;
        }
        m.end()
    }
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

/// How an event line starts (`{"event":"dropped",...}` of a live source, `{"event":"crossing",...}`
/// of a count line): not frames.
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

/// Seconds as written: to the microsecond.
fn micros(s: f64) -> f64 {
    (s * 1e6).round() / 1e6
}

/// Serialises one frame as a JSON line (no trailing newline); `zones` are the zones' names
/// when there are zones.
pub fn frame_line(frame: &FrameResult<'_>, labels: &Labels, zones: Option<&[String]>) -> String {
    let names: Vec<_> = frame
        .detections
        .iter()
        .map(|d| labels.name(d.class_id))
        .collect();
    let ids = frame.tracks.map(|t| &t.ids);
    let in_zones = zones.map(|z| (z, frame.tracks.and_then(|t| t.zones.as_ref())));
    let zones_of = |i: usize| {
        in_zones.map(|(names, fz)| {
            let inside = fz.and_then(|f| f.inside.get(i));
            let names = inside.into_iter().flatten().map(|&zi| names[zi].as_str());
            names.map(Cow::Borrowed).collect()
        })
    };
    let line = JsonFrame {
        frame: frame.index,
        pts: micros(frame.pts_seconds),
        detections: frame
            .detections
            .iter()
            .zip(&names)
            .enumerate()
            .map(|(i, (d, n))| JsonDetection {
                class_id: d.class_id,
                label: Cow::Borrowed(n),
                score: d.score,
                x1: d.box_in_frame.x1,
                y1: d.box_in_frame.y1,
                x2: d.box_in_frame.x2,
                y2: d.box_in_frame.y2,
                track_id: ids.map(|ids| ids.get(i).copied().flatten()),
                zones: zones_of(i),
            })
            .collect(),
        zones: in_zones.map(|(names, fz)| occupancy(names, fz)),
    };
    serde_json::to_string(&line)
        .unwrap_or_else(|e| unreachable!("plain structs always serialise: {e}"))
}

/// Each zone's occupancy on a frame (0 where the frame has none to say).
fn occupancy<'a>(names: &'a [String], fz: Option<&FrameZones>) -> ZoneCounts<'a> {
    let count = |zi: usize| fz.and_then(|f| f.occupancy.get(zi).copied()).unwrap_or(0);
    ZoneCounts(
        names
            .iter()
            .enumerate()
            .map(|(zi, n)| (n.as_str(), count(zi)))
            .collect(),
    )
}

/// A zone's enter or exit as its JSONL event.
pub fn zone_event(e: &ZoneEvent, labels: &Labels) -> StreamEvent {
    let (zone, label) = (e.zone.clone(), labels.name(e.class_id).into_owned());
    let (track_id, class_id, frame, pts) = (e.track_id, e.class_id, e.at.frame, micros(e.at.pts));
    match e.kind {
        ZoneEventKind::Enter => StreamEvent::ZoneEnter {
            zone,
            track_id,
            class_id,
            label,
            frame,
            pts,
        },
        ZoneEventKind::Exit {
            dwell_s,
            track_ended,
        } => StreamEvent::ZoneExit {
            zone,
            track_id,
            class_id,
            label,
            frame,
            pts,
            dwell_s: micros(dwell_s),
            track_ended,
        },
    }
}

/// A line crossing as its JSONL event.
pub fn crossing_event(c: &CrossingEvent, labels: &Labels) -> StreamEvent {
    StreamEvent::Crossing {
        line: c.line.clone(),
        direction: c.direction,
        track_id: c.track_id,
        class_id: c.class_id,
        label: labels.name(c.class_id).into_owned(),
        frame: c.frame,
        pts: micros(c.pts),
        x: c.x,
        y: c.y,
    }
}

/// One event as a JSON line, with its newline.
fn event_line(event: &StreamEvent) -> String {
    let mut line = serde_json::to_string(event).expect("a plain enum serialises");
    line.push('\n');
    line
}

pub struct JsonlSink {
    out: PartialWriter,
    labels: Arc<Labels>,
    /// The zones' names, with zones.
    zones: Option<Vec<String>>,
}

impl JsonlSink {
    pub fn create(path: &Path, labels: Arc<Labels>, zones: Option<Vec<String>>) -> Result<Self> {
        Ok(JsonlSink {
            out: PartialWriter::create(path)?,
            labels,
            zones,
        })
    }
}

impl Sink for JsonlSink {
    fn write(&mut self, frame: &FrameResult<'_>) -> Result<()> {
        if !frame.inferred {
            return Ok(());
        }
        let mut line = frame_line(frame, &self.labels, self.zones.as_deref());
        line.push('\n');
        for c in frame.tracks.iter().flat_map(|t| &t.crossings) {
            line.push_str(&event_line(&crossing_event(c, &self.labels)));
        }
        let zones = frame.tracks.and_then(|t| t.zones.as_ref());
        for e in zones.iter().flat_map(|z| &z.events) {
            line.push_str(&event_line(&zone_event(e, &self.labels)));
        }
        self.out.write_all(line.as_bytes())?;
        // Each line reaches the file as it is written: `tail -f` on a live run works.
        self.out.flush()
    }

    fn event(&mut self, event: &StreamEvent) -> Result<()> {
        self.out.write_all(event_line(event).as_bytes())?;
        self.out.flush()
    }

    /// With `--snapshots` (`snapshots` not empty): a `track_end` line per track, naming its
    /// snapshot.
    fn tracks_ended(
        &mut self,
        tracks: &[TrackSummary],
        _dwell: &[TrackDwell],
        snapshots: &[Option<Snapshot>],
    ) -> Result<()> {
        if snapshots.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for (t, snap) in tracks.iter().zip(snapshots) {
            text.push_str(&event_line(&StreamEvent::TrackEnd {
                track_id: t.track_id,
                class_id: t.class_id,
                label: self.labels.name(t.class_id).into_owned(),
                last_frame: t.last_frame,
                last_pts: (t.last_pts * 1e6).round() / 1e6,
                snapshot: snap.clone(),
            }));
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
            tracks: None,
        };
        let v: serde_json::Value = serde_json::from_str(&frame_line(&f, &labels, None)).unwrap();
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
            tracks: None,
        };
        assert_eq!(
            frame_line(&f, &labels, None),
            r#"{"frame":0,"pts":0.0,"detections":[]}"#
        );
    }

    #[test]
    fn tracking_adds_ids_and_crossing_events() {
        let labels = Labels::parse("0 person\n").unwrap();
        let b = BoxInFrame {
            x1: 1.0,
            y1: 2.0,
            x2: 3.0,
            y2: 4.0,
        };
        let d = |score| Detection {
            class_id: 0,
            score,
            box_in_frame: b,
        };
        let dets = [d(0.75), d(0.5)];
        let tracks = crate::track::FrameTracks {
            ids: vec![Some(4), None],
            ..Default::default()
        };
        let f = FrameResult {
            index: 2,
            pts_seconds: 0.2,
            width: 64,
            height: 48,
            detections: &dets,
            inferred: true,
            picture: None,
            tracks: Some(&tracks),
        };
        let line = frame_line(&f, &labels, None);
        assert!(
            line.ends_with(r#""track_id":4},{"class_id":0,"label":"person","score":0.5,"x1":1.0,"y1":2.0,"x2":3.0,"y2":4.0,"track_id":null}]}"#),
            "{line}"
        );
        // Read back: the ids are there, `null` included.
        let back: JsonFrame<'_> = serde_json::from_str(&line).unwrap();
        let ids: Vec<_> = back.detections.iter().map(|d| d.track_id).collect();
        assert_eq!(ids, vec![Some(Some(4)), Some(None)]);
        let c = CrossingEvent {
            track_id: 4,
            class_id: 0,
            line: "door".into(),
            direction: crate::track::Direction::Out,
            frame: 2,
            pts: 0.2000000001,
            x: 10.0,
            y: 20.5,
        };
        assert_eq!(
            event_line(&crossing_event(&c, &labels)),
            "{\"event\":\"crossing\",\"line\":\"door\",\"direction\":\"out\",\"track_id\":4,\"class_id\":0,\"label\":\"person\",\"frame\":2,\"pts\":0.2,\"x\":10.0,\"y\":20.5}\n"
        );
    }
}
