//! CSV sink: one row per detection, `frame,pts,class_id,label,score,x1,y1,x2,y2`
//! (frames without detections produce no row); with tracking, a `track_id` column (empty for
//! a detection not on a confirmed track); with zones, a last `zones` column: the zones its
//! feet are in, separated by `;`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{FrameResult, Sink};
use crate::{error::Result, labels::Labels, output::PartialWriter};

pub const HEADER: &str = "frame,pts,class_id,label,score,x1,y1,x2,y2";
/// The header with tracking.
pub const TRACK_HEADER: &str = "frame,pts,class_id,label,score,x1,y1,x2,y2,track_id";
/// The header with zones.
pub const ZONES_HEADER: &str = "frame,pts,class_id,label,score,x1,y1,x2,y2,track_id,zones";

/// Quotes a field if it contains a comma, quote or newline.
fn field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// The rows of one frame; `track` adds the `track_id` column, `zones` (the zones' names)
/// the `zones` column.
pub fn frame_rows(
    frame: &FrameResult<'_>,
    labels: &Labels,
    track: bool,
    zones: Option<&[String]>,
) -> String {
    let mut out = String::new();
    for (i, d) in frame.detections.iter().enumerate() {
        let b = d.box_in_frame;
        out.push_str(&format!(
            "{},{:.6},{},{},{},{},{},{},{}",
            frame.index,
            frame.pts_seconds,
            d.class_id,
            field(&labels.name(d.class_id)),
            d.score,
            b.x1,
            b.y1,
            b.x2,
            b.y2
        ));
        if track {
            out.push(',');
            let id = frame.tracks.and_then(|t| t.ids.get(i).copied().flatten());
            if let Some(id) = id {
                out.push_str(&id.to_string());
            }
        }
        if let Some(names) = zones {
            let fz = frame.tracks.and_then(|t| t.zones.as_ref());
            let inside = fz.and_then(|z| z.inside.get(i)).into_iter().flatten();
            let list: Vec<&str> = inside.map(|&zi| names[zi].as_str()).collect();
            out.push(',');
            out.push_str(&field(&list.join(";")));
        }
        out.push('\n');
    }
    out
}

pub struct CsvSink {
    out: PartialWriter,
    labels: Arc<Labels>,
    track: bool,
    zones: Option<Vec<String>>,
}

impl CsvSink {
    /// `track`: the run tracks objects (a `track_id` column); `zones`: the zones' names, when
    /// there are zones (a `zones` column).
    pub fn create(
        path: &Path,
        labels: Arc<Labels>,
        track: bool,
        zones: Option<Vec<String>>,
    ) -> Result<Self> {
        let mut out = PartialWriter::create(path)?;
        let header = match (track, &zones) {
            (true, Some(_)) => ZONES_HEADER,
            (true, None) => TRACK_HEADER,
            (false, _) => HEADER,
        };
        out.write_all(format!("{header}\n").as_bytes())?;
        Ok(CsvSink {
            out,
            labels,
            track,
            zones: zones.filter(|_| track),
        })
    }
}

impl Sink for CsvSink {
    fn write(&mut self, frame: &FrameResult<'_>) -> Result<()> {
        if !frame.inferred {
            return Ok(());
        }
        self.out.write_all(
            frame_rows(frame, &self.labels, self.track, self.zones.as_deref()).as_bytes(),
        )
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
    fn rows_quote_labels_with_commas() {
        let labels = Labels::parse("0 person\n1 a, b\n").unwrap();
        let dets = [
            Detection {
                class_id: 0,
                score: 0.5,
                box_in_frame: BoxInFrame {
                    x1: 1.0,
                    y1: 2.0,
                    x2: 3.0,
                    y2: 4.0,
                },
            },
            Detection {
                class_id: 1,
                score: 0.25,
                box_in_frame: BoxInFrame {
                    x1: 0.0,
                    y1: 0.0,
                    x2: 1.0,
                    y2: 1.0,
                },
            },
        ];
        let f = FrameResult {
            index: 3,
            pts_seconds: 0.3,
            width: 10,
            height: 10,
            detections: &dets,
            inferred: true,
            picture: None,
            tracks: None,
        };
        assert_eq!(
            frame_rows(&f, &labels, false, None),
            "3,0.300000,0,person,0.5,1,2,3,4\n3,0.300000,1,\"a, b\",0.25,0,0,1,1\n"
        );
        let tracks = crate::track::FrameTracks {
            ids: vec![None, Some(7)],
            ..Default::default()
        };
        let f = FrameResult {
            tracks: Some(&tracks),
            ..f
        };
        assert_eq!(
            frame_rows(&f, &labels, true, None),
            "3,0.300000,0,person,0.5,1,2,3,4,\n3,0.300000,1,\"a, b\",0.25,0,0,1,1,7\n"
        );
    }
}
