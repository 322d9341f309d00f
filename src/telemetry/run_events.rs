//! The events only the event sinks get, beside the JSONL's [`StreamEvent`]s: an input's
//! start and end, a track's start and end (the end as the tracks file's line).

use std::borrow::Cow;

use serde::Serialize;

use crate::sink::tracks::TrackLine;
#[cfg(doc)]
use crate::sink::StreamEvent;

#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent<'a> {
    /// An input's outputs were opened.
    InputStart { width: u32, height: u32, live: bool },
    /// An input ended: its frames, and its error if it failed.
    InputEnd {
        frames: u64,
        ok: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// A track was confirmed: its first frame with an id.
    TrackStart {
        track_id: u64,
        class_id: u32,
        label: Cow<'a, str>,
        frame: u64,
        pts: f64,
    },
    /// A track ended: the line the tracks file has for it.
    TrackEnd(TrackLine<'a>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        labels::Labels, postprocess::BoxInFrame, telemetry::events::event_json, track::TrackSummary,
    };

    #[test]
    fn serialise_flat_with_the_input_first() {
        let e = RunEvent::InputStart {
            width: 640,
            height: 480,
            live: false,
        };
        assert_eq!(
            event_json("a", &e),
            r#"{"input":"a","event":"input_start","width":640,"height":480,"live":false}"#
        );
        let labels = Labels::parse("0 person\n").unwrap();
        let b = BoxInFrame {
            x1: 1.0,
            y1: 2.0,
            x2: 3.0,
            y2: 4.0,
        };
        let t = TrackSummary {
            track_id: 2,
            class_id: 0,
            first_frame: 1,
            last_frame: 5,
            first_pts: 0.1,
            last_pts: 0.5,
            frames_seen: 5,
            mean_score: 0.5,
            first_box: b,
            last_box: b,
        };
        let json = event_json("a", &RunEvent::TrackEnd(TrackLine::new(&t, &labels)));
        assert!(
            json.starts_with(r#"{"input":"a","event":"track_end","track_id":2,"class_id":0,"label":"person","first_frame":1"#),
            "{json}"
        );
    }
}
