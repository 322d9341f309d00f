//! CSV sink: one row per detection, `frame,pts,class_id,label,score,x1,y1,x2,y2`
//! (frames without detections produce no row).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use super::{FrameResult, Sink};
use crate::{error::Result, labels::Labels, output::PartialWriter};

pub const HEADER: &str = "frame,pts,class_id,label,score,x1,y1,x2,y2";

/// Quotes a field if it contains a comma, quote or newline.
fn field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

pub fn frame_rows(frame: &FrameResult<'_>, labels: &Labels) -> String {
    let mut out = String::new();
    for d in frame.detections {
        let b = d.box_in_frame;
        out.push_str(&format!(
            "{},{:.6},{},{},{},{},{},{},{}\n",
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
    }
    out
}

pub struct CsvSink {
    out: PartialWriter,
    labels: Arc<Labels>,
}

impl CsvSink {
    pub fn create(path: &Path, labels: Arc<Labels>) -> Result<Self> {
        let mut out = PartialWriter::create(path)?;
        out.write_all(format!("{HEADER}\n").as_bytes())?;
        Ok(CsvSink { out, labels })
    }
}

impl Sink for CsvSink {
    fn write(&mut self, frame: &FrameResult<'_>) -> Result<()> {
        if !frame.inferred {
            return Ok(());
        }
        self.out
            .write_all(frame_rows(frame, &self.labels).as_bytes())
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
        };
        assert_eq!(
            frame_rows(&f, &labels),
            "3,0.300000,0,person,0.5,1,2,3,4\n3,0.300000,1,\"a, b\",0.25,0,0,1,1\n"
        );
    }
}
