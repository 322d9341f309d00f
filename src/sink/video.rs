//! Annotated video sink: the input's frames with green 2-px boxes and "label score"
//! captions, encoded as H.264 (libx264) in MP4 at the input's frame rate, one output
//! frame per input frame. With tracking, a box takes its track's colour and its caption
//! starts with the id (`#3 person 0.87`; grey without an id), and the count lines are drawn
//! with their running counts in the top-left corner; zones are drawn as magenta outlines
//! labelled with their name and how many tracks are inside, with their totals below the
//! lines' in the corner.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use ffmpeg::{codec, format::Pixel, frame, software::scaling, Dictionary, Rational};
use ffmpeg_next as ffmpeg;

use super::{
    draw::{caption_scale, track_colour, Planes, BLACK, GREEN, GREY, MAGENTA, YELLOW},
    FrameResult, Sink, SinkConfig, SinkInput,
};
use crate::{
    av::{open_output, Scaler},
    error::{AvError, Error, Result},
    labels::Labels,
    output::PartialFile,
    track::{CountLine, CrossingEvent, Direction, FrameZones, TrackingConfig, Zone, ZoneEventKind},
};

pub struct AnnotatedVideoSink {
    file: PartialFile,
    octx: ffmpeg::format::context::Output,
    encoder: ffmpeg::encoder::Video,
    enc_time_base: Rational,
    stream_time_base: Rational,
    scaler: Scaler,
    canvas: frame::Video,
    frames: i64,
    labels: std::sync::Arc<Labels>,
    /// The detections of the latest inferred frame, drawn on frames `--stride` skips.
    latest: Vec<crate::postprocess::Detection>,
    /// With tracking: the ids of `latest`, and the count lines with their running totals.
    tracking: Option<(Vec<Option<u64>>, CountOverlay)>,
}

/// Count lines and their running totals, zones and their occupancy, drawn on every frame.
struct CountOverlay {
    lines: Vec<CountLine>,
    /// (line, class) → [in, out].
    totals: BTreeMap<(usize, u32), [u64; 2]>,
    zones: Vec<Zone>,
    /// Per zone: tracks inside on the latest inferred frame.
    occupancy: Vec<u32>,
    /// Per zone: [entered, exited] so far.
    zone_totals: Vec<[u64; 2]>,
}

impl CountOverlay {
    fn add(&mut self, crossings: &[CrossingEvent]) {
        for c in crossings {
            if let Some(li) = self.lines.iter().position(|l| l.name == c.line) {
                let dir = match c.direction {
                    Direction::In => 0,
                    Direction::Out => 1,
                };
                self.totals.entry((li, c.class_id)).or_default()[dir] += 1;
            }
        }
    }

    /// The latest inferred frame's occupancy and events.
    fn add_zones(&mut self, z: &FrameZones) {
        self.occupancy.clone_from(&z.occupancy);
        for e in &z.events {
            if let Some(zi) = self.zones.iter().position(|zone| zone.name() == e.zone) {
                let i = usize::from(matches!(e.kind, ZoneEventKind::Exit { .. }));
                self.zone_totals[zi][i] += 1;
            }
        }
    }

    /// The zones (scaled by `s` to the canvas): the outline, and the name and the tracks
    /// inside above the polygon's top vertex. Drawn first: boxes go over them.
    fn draw_zones(&self, planes: &mut Planes<'_>, s: (f32, f32), scale: i64) {
        for (zi, z) in self.zones.iter().enumerate() {
            let p: Vec<(f32, f32)> = z
                .points()
                .iter()
                .map(|&(x, y)| (x * s.0, y * s.1))
                .collect();
            for (i, &a) in p.iter().enumerate() {
                planes.line(a, p[(i + 1) % p.len()], 2, MAGENTA);
            }
            let inside = self.occupancy.get(zi).copied().unwrap_or(0);
            let top = p.iter().fold(p[0], |t, &q| if q.1 < t.1 { q } else { t });
            let text = format!("{}: {inside}", z.name());
            let y = top.1 as i64 - 10 * scale - 2;
            planes.caption(&text, top.0 as i64, y, scale, MAGENTA, BLACK);
        }
    }

    /// A row per zone from `row` on: the tracks inside and the zone's totals.
    fn zone_rows(&self, planes: &mut Planes<'_>, scale: i64, mut row: i64) {
        let row_h = 10 * scale + 2;
        for (zi, z) in self.zones.iter().enumerate() {
            let inside = self.occupancy.get(zi).copied().unwrap_or(0);
            let [entered, exited] = self.zone_totals[zi];
            let text = format!("{}: {inside} inside, in {entered} out {exited}", z.name());
            planes.caption(&text, 4, 4 + row * row_h, scale, MAGENTA, BLACK);
            row += 1;
        }
    }

    /// The lines (scaled by `s` to the canvas), an "in" tick on each pointing to the side a
    /// crossing into counts as "in", and a row per line with its totals (and per class when
    /// more than one class crossed it); then the zones' rows.
    fn draw(&self, planes: &mut Planes<'_>, s: (f32, f32), scale: i64, labels: &Labels) {
        let row_h = 10 * scale + 2;
        let mut row = 0;
        for (li, l) in self.lines.iter().enumerate() {
            let (a, b) = ((l.a.0 * s.0, l.a.1 * s.1), (l.b.0 * s.0, l.b.1 * s.1));
            planes.line(a, b, 2, YELLOW);
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len = (dx * dx + dy * dy).sqrt().max(1e-3);
            let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
            let tip = (mid.0 - 16.0 * dy / len, mid.1 + 16.0 * dx / len);
            planes.line(mid, tip, 2, YELLOW);
            planes.caption(
                "in",
                tip.0 as i64 - 4,
                tip.1 as i64 - 4,
                scale,
                YELLOW,
                BLACK,
            );
            planes.caption(&l.name, a.0 as i64, a.1 as i64 + 4, scale, YELLOW, BLACK);
            let classes: Vec<_> = self.totals.range((li, 0)..=(li, u32::MAX)).collect();
            let sum = classes
                .iter()
                .fold([0, 0], |t, (_, c)| [t[0] + c[0], t[1] + c[1]]);
            let mut rows = vec![format!("{}: in {} out {}", l.name, sum[0], sum[1])];
            if classes.len() > 1 {
                rows.extend(classes.iter().map(|((_, class), c)| {
                    format!("  {}: in {} out {}", labels.name(*class), c[0], c[1])
                }));
            }
            for text in rows {
                planes.caption(&text, 4, 4 + row * row_h, scale, YELLOW, BLACK);
                row += 1;
            }
        }
        self.zone_rows(planes, scale, row);
    }
}

fn even(v: u32) -> u32 {
    (v + 1) & !1
}

/// The longest side, in pixels, x264 encodes (it refuses 16385).
pub const MAX_SIDE: u32 = 16384;

/// The size a `w`×`h` input's annotated video is encoded at: even sides (x264's 4:2:0 needs
/// them: an odd side is scaled up by one pixel), and where a side is longer than
/// [`MAX_SIDE`], the picture scaled down to fit, keeping its aspect ratio.
pub fn encoded_size(w: u32, h: u32) -> (u32, u32) {
    let f = (f64::from(MAX_SIDE) / f64::from(w.max(h).max(1))).min(1.0);
    let side = |v: u32| even(((f64::from(v) * f).round() as u32).max(1)).min(MAX_SIDE);
    (side(w), side(h))
}

/// True when [`encoded_size`] scales the picture down (more than the rounding to even sides).
pub fn scaled_down(w: u32, h: u32) -> bool {
    encoded_size(w, h) != (even(w), even(h))
}

/// x264 settings of the annotated video.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoSettings {
    /// x264 preset.
    pub preset: String,
    /// x264 tune (empty: none).
    pub tune: String,
    pub crf: u32,
    /// x264 threads (0: x264 picks, about 1.5 per core).
    pub threads: usize,
}

impl VideoSettings {
    fn options(&self) -> Dictionary<'_> {
        let mut opts = Dictionary::new();
        opts.set("preset", &self.preset);
        if !self.tune.is_empty() {
            opts.set("tune", &self.tune);
        }
        opts.set("crf", &self.crf.to_string());
        if self.threads > 0 {
            opts.set("threads", &self.threads.to_string());
        }
        opts
    }
}

/// Opens the H.264 encoder for `w`×`h` at `rate` with the user's settings.
fn open_encoder(
    codec: ffmpeg::Codec,
    w: u32,
    h: u32,
    rate: (i32, i32),
    global_header: bool,
    settings: &VideoSettings,
) -> std::result::Result<ffmpeg::encoder::Video, ffmpeg::Error> {
    let mut enc = codec::context::Context::new_with_codec(codec)
        .encoder()
        .video()?;
    enc.set_width(w);
    enc.set_height(h);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base(Rational::new(rate.1, rate.0));
    enc.set_frame_rate(Some(Rational::new(rate.0, rate.1)));
    if global_header {
        enc.set_flags(codec::Flags::GLOBAL_HEADER);
    }
    enc.open_with(settings.options())
}

fn h264() -> Option<ffmpeg::Codec> {
    ffmpeg::encoder::find_by_name("libx264").or_else(|| ffmpeg::encoder::find(codec::Id::H264))
}

/// Opens the encoder once with `settings` on a tiny picture, so a bad preset or tune is
/// reported before any input is decoded.
pub fn check_settings(settings: &VideoSettings) -> Result<()> {
    let codec = h264().ok_or(Error::NoH264Encoder)?;
    open_encoder(codec, 64, 64, (25, 1), false, settings)
        .map(drop)
        .map_err(|e| Error::EncoderSettings { source: AvError(e) })
}

impl AnnotatedVideoSink {
    pub fn create(
        path: &Path,
        input: &SinkInput,
        cfg: &SinkConfig,
        tracking: Option<&TrackingConfig>,
    ) -> Result<Self> {
        let file = PartialFile::new(path);
        let err = |step, e| Error::Encode {
            path: path.into(),
            step,
            source: AvError(e),
        };
        let mut octx =
            open_output(file.partial_path(), "mp4").map_err(|e| err("creating the file", e))?;
        let codec = h264()
            .ok_or_else(|| err("finding an H.264 encoder", ffmpeg::Error::EncoderNotFound))?;
        // Even sides, and no side over x264's limit (a panorama is scaled down to fit).
        let (w, h) = encoded_size(input.width, input.height);
        let (num, den) = input.frame_rate;
        let enc_time_base = Rational::new(den, num);
        let global_header = octx
            .format()
            .flags()
            .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
        let mut ost = octx
            .add_stream(codec)
            .map_err(|e| err("adding the video stream", e))?;
        let encoder = open_encoder(codec, w, h, input.frame_rate, global_header, &cfg.video)
            .map_err(|e| err("opening the H.264 encoder", e))?;
        ost.set_parameters(&encoder);
        ost.set_time_base(enc_time_base);
        ost.set_avg_frame_rate(Rational::new(num, den));
        octx.write_header()
            .map_err(|e| err("writing the header", e))?;
        let stream_time_base = octx
            .stream(0)
            .map(|s| s.time_base())
            .unwrap_or(enc_time_base);
        Ok(AnnotatedVideoSink {
            file,
            octx,
            encoder,
            enc_time_base,
            stream_time_base,
            scaler: Scaler::new(Pixel::YUV420P, Some((w, h)), scaling::Flags::BILINEAR),
            canvas: frame::Video::new(Pixel::YUV420P, w, h),
            frames: 0,
            labels: cfg.labels.clone(),
            latest: Vec::new(),
            tracking: tracking.map(|t| {
                let zones = t.zones.zones.clone();
                let overlay = CountOverlay {
                    lines: t.lines.clone(),
                    totals: BTreeMap::new(),
                    occupancy: vec![0; zones.len()],
                    zone_totals: vec![[0, 0]; zones.len()],
                    zones,
                };
                (Vec::new(), overlay)
            }),
        })
    }

    fn err(&self, step: &'static str, e: ffmpeg::Error) -> Error {
        Error::Encode {
            path: self.file.target().into(),
            step,
            source: AvError(e),
        }
    }

    fn drain(&mut self) -> Result<()> {
        let mut packet = ffmpeg::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            packet.rescale_ts(self.enc_time_base, self.stream_time_base);
            packet
                .write_interleaved(&mut self.octx)
                .map_err(|e| self.err("writing a packet", e))?;
        }
        Ok(())
    }

    /// Draws the frame's detections — or, for a frame that skipped inference, the latest
    /// ones — on the canvas (which holds the frame at the output size), and with tracking
    /// the count lines and totals.
    fn draw(&mut self, f: &FrameResult<'_>) {
        if f.inferred {
            self.latest.clear();
            self.latest.extend_from_slice(f.detections);
            if let (Some((ids, overlay)), Some(t)) = (&mut self.tracking, f.tracks) {
                ids.clear();
                ids.extend_from_slice(&t.ids);
                overlay.add(&t.crossings);
                if let Some(z) = &t.zones {
                    overlay.add_zones(z);
                }
            }
        }
        let (sx, sy) = (
            self.canvas.width() as f32 / f.width.max(1) as f32,
            self.canvas.height() as f32 / f.height.max(1) as f32,
        );
        let scale = caption_scale(self.canvas.height());
        let labels = self.labels.clone();
        let mut planes = Planes::of(&mut self.canvas);
        if let Some((_, overlay)) = &self.tracking {
            overlay.draw_zones(&mut planes, (sx, sy), scale);
        }
        for (i, d) in self.latest.iter().enumerate() {
            let b = d.box_in_frame;
            let name = labels.name(d.class_id);
            let (text, colour) = match &self.tracking {
                None => (format!("{name} {:.2}", d.score), GREEN),
                Some((ids, _)) => match ids.get(i).copied().flatten() {
                    Some(id) => (format!("#{id} {name} {:.2}", d.score), track_colour(id)),
                    None => (format!("{name} {:.2}", d.score), GREY),
                },
            };
            let corners = [b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy];
            planes.labelled_box(corners, &text, scale, colour);
        }
        if let Some((_, overlay)) = &self.tracking {
            overlay.draw(&mut planes, (sx, sy), scale, &labels);
        }
    }
}

impl Sink for AnnotatedVideoSink {
    fn write(&mut self, f: &FrameResult<'_>) -> Result<()> {
        let Some(picture) = f.picture else {
            return Err(Error::Encode {
                path: self.file.target().into(),
                step: "no picture was kept for this frame",
                source: AvError(ffmpeg::Error::Bug),
            });
        };
        self.scaler
            .run(picture, &mut self.canvas)
            .map_err(|e| self.err("converting the picture for encoding", e))?;
        self.draw(f);
        self.canvas.set_pts(Some(self.frames));
        self.frames += 1;
        self.encoder
            .send_frame(&self.canvas)
            .map_err(|e| self.err("encoding a frame", e))?;
        self.drain()
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<PathBuf>> {
        self.encoder
            .send_eof()
            .map_err(|e| self.err("flushing the encoder", e))?;
        self.drain()?;
        self.octx
            .write_trailer()
            .map_err(|e| self.err("writing the trailer", e))?;
        let AnnotatedVideoSink { file, octx, .. } = *self;
        drop(octx);
        Ok(vec![file.commit()?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_x264_refuses_are_scaled_down_keeping_the_aspect_ratio() {
        assert_eq!(encoded_size(768, 576), (768, 576));
        assert_eq!(encoded_size(641, 359), (642, 360));
        assert_eq!(encoded_size(1, 1), (2, 2));
        assert_eq!(encoded_size(16384, 16384), (16384, 16384));
        assert!(!scaled_down(16383, 20));
        assert_eq!(encoded_size(17000, 64), (16384, 62));
        assert_eq!(encoded_size(64, 40000), (26, 16384));
        assert!(scaled_down(17000, 64));
    }
}
