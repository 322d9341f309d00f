//! The sink stage's telemetry: as an input's frames and events reach the sinks, its counters
//! are updated and its events published (`--metrics`, `--events`). The events are the
//! JSONL's, made by the same functions, plus an input's and a track's start and end; an
//! input's events go out in the order its JSONL and tracks file have them.

use crate::{
    decode::VideoInfo,
    labels::Labels,
    sink::{
        jsonl::{crossing_event, zone_event},
        snapshot::Snapshot,
        tracks::TrackLine,
        StreamEvent,
    },
    telemetry::{InputMetrics, RunEvent, Telemetry},
    track::{FrameTracks, TrackDwell, TrackSummary, ZoneEventKind},
};

use super::super::item::Detected;

/// One open input's telemetry.
pub(super) struct InputTelemetry<'a> {
    t: &'a Telemetry,
    labels: &'a Labels,
    /// The zones' names (empty without zones).
    zones: Vec<String>,
    /// The input's name in metrics and events (its output stem).
    name: String,
    metrics: Option<InputMetrics>,
    /// Per event sink: this input's events it dropped (queue full).
    dropped: Vec<u64>,
    /// The highest track id seen: a higher one is a new track.
    last_track: u64,
}

impl<'a> InputTelemetry<'a> {
    pub fn begin(
        t: &'a Telemetry,
        (labels, zones): (&'a Labels, Vec<String>),
        name: &str,
        info: &VideoInfo,
        live: bool,
    ) -> Self {
        let mut me = InputTelemetry {
            t,
            labels,
            zones,
            name: name.to_string(),
            metrics: t.metrics.as_ref().map(|m| m.input(name)),
            dropped: vec![0; t.events.as_ref().map_or(0, |h| h.sink_names().count())],
            last_track: 0,
        };
        me.publish(&RunEvent::InputStart {
            width: info.width,
            height: info.height,
            live,
        });
        me
    }

    fn publish<E: serde::Serialize>(&mut self, event: &E) {
        if let Some(hub) = &self.t.events {
            hub.publish(&self.name, event, &mut self.dropped);
        }
    }

    /// A frame reached the sinks.
    pub fn frame(&mut self, d: &Detected) {
        if let (Some(m), Some(im)) = (&self.t.metrics, &self.metrics) {
            im.decoded.inc();
            if d.meta.infer {
                im.inferred.inc();
                for det in &d.detections {
                    m.detection(im, &self.labels.name(det.class_id));
                }
            }
            if let Some(tr) = &d.tracks {
                self.count_tracks(tr);
            }
        }
        if self.t.events.is_none() {
            return;
        }
        if let Some(tr) = &d.tracks {
            self.track_starts(d, tr);
            for c in &tr.crossings {
                self.publish(&crossing_event(c, self.labels));
            }
            for e in tr.zones.iter().flat_map(|z| &z.events) {
                self.publish(&zone_event(e, self.labels));
            }
        }
    }

    /// Line crossings, zone events and occupancy into the metrics.
    fn count_tracks(&self, tr: &FrameTracks) {
        let (Some(m), Some(im)) = (&self.t.metrics, &self.metrics) else {
            return;
        };
        for c in &tr.crossings {
            let dir = serde_json::to_value(c.direction).unwrap_or_default();
            m.crossing(im, &c.line, dir.as_str().unwrap_or(""));
        }
        if let Some(z) = &tr.zones {
            for e in &z.events {
                let kind = match e.kind {
                    ZoneEventKind::Enter => "enter",
                    ZoneEventKind::Exit { .. } => "exit",
                };
                m.zone_event(im, &e.zone, kind);
            }
            for (name, inside) in self.zones.iter().zip(&z.occupancy) {
                m.zone_occupancy(im, name, *inside);
            }
        }
    }

    /// A `track_start` for each id not seen before, lowest first.
    fn track_starts(&mut self, d: &Detected, tr: &FrameTracks) {
        let mut new: Vec<(u64, u32)> = (tr.ids.iter().zip(&d.detections))
            .filter_map(|(id, det)| {
                id.filter(|&id| id > self.last_track)
                    .map(|id| (id, det.class_id))
            })
            .collect();
        new.sort_unstable();
        for (track_id, class_id) in new {
            self.last_track = track_id;
            self.publish(&RunEvent::TrackStart {
                track_id,
                class_id,
                label: self.labels.name(class_id),
                frame: d.meta.index,
                pts: (d.meta.pts * 1e6).round() / 1e6,
            });
        }
    }

    /// A `track_end` per ended track: the tracks file's line, with its snapshot if one was
    /// taken (`snapshots`: one per track, or empty).
    pub fn track_ends(
        &mut self,
        ended: &[TrackSummary],
        dwell: &[TrackDwell],
        snapshots: &[Option<Snapshot>],
    ) {
        if self.t.events.is_none() {
            return;
        }
        let labels = self.labels;
        for (i, s) in ended.iter().enumerate() {
            let mut line = TrackLine::new(s, labels).with_snapshot(snapshots, i);
            if !self.zones.is_empty() {
                line = line.with_zones(dwell.iter().find(|d| d.track_id == s.track_id));
            }
            self.publish(&RunEvent::TrackEnd(line));
        }
    }

    /// An event of the stream (dropped frames, a reconnect, undecodable packets).
    pub fn event(&mut self, e: &StreamEvent) {
        if let Some(im) = &self.metrics {
            match e {
                StreamEvent::Dropped { frames, .. } => im.dropped.inc_by(*frames),
                StreamEvent::Reconnected { .. } => im.reconnects.inc(),
                _ => {}
            }
        }
        self.publish(e);
    }

    /// What this input's events lost to full queues, as JSONL events (none lost: none).
    fn drops(&self) -> Vec<StreamEvent> {
        let Some(hub) = &self.t.events else {
            return Vec::new();
        };
        (hub.sink_names().zip(&self.dropped))
            .filter(|(_, &n)| n > 0)
            .map(|(sink, &events)| StreamEvent::EventsDropped {
                sink: sink.to_string(),
                events,
            })
            .collect()
    }

    /// The input ends (before its outputs are committed): publishes its `input_end` with
    /// its frames and error, and returns the `events_dropped` lines its JSONL gets.
    pub fn close(&mut self, frames: u64, error: Option<String>) -> Vec<StreamEvent> {
        self.publish(&RunEvent::InputEnd {
            frames,
            ok: error.is_none(),
            error,
        });
        self.drops()
    }

    /// The input has ended: `corrupt` packets its decoder met; `ok`: without an error.
    pub fn ended(self, corrupt: u64, ok: bool, live: bool) {
        if let (Some(m), Some(im)) = (&self.t.metrics, &self.metrics) {
            m.input_ended(im, corrupt, ok, live);
        }
    }
}
