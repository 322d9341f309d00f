//! Annotated video sink: the input's frames with green 2-px boxes and "label score"
//! captions, encoded as H.264 (libx264) in MP4 at the input's frame rate, one output
//! frame per input frame.

use std::path::{Path, PathBuf};

use ffmpeg::{codec, format::Pixel, frame, software::scaling, Dictionary, Rational};
use ffmpeg_next as ffmpeg;

use super::{
    draw::{caption_scale, Planes, GREEN},
    FrameResult, Sink, SinkConfig, SinkInput,
};
use crate::{
    av::{open_output, Scaler},
    error::{AvError, Error, Result},
    labels::Labels,
    output::PartialFile,
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
}

fn even(v: u32) -> u32 {
    (v + 1) & !1
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
pub fn check_settings(settings: &VideoSettings) -> std::result::Result<(), String> {
    let codec = h264().ok_or("no H.264 encoder in this FFmpeg build")?;
    open_encoder(codec, 64, 64, (25, 1), false, settings)
        .map(drop)
        .map_err(|e| format!("the H.264 encoder refuses these settings ({})", AvError(e)))
}

impl AnnotatedVideoSink {
    pub fn create(path: &Path, input: &SinkInput, cfg: &SinkConfig) -> Result<Self> {
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
        // x264 needs even dimensions for 4:2:0; odd sizes are scaled up by one pixel.
        let (w, h) = (even(input.width), even(input.height));
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
    /// ones — on the canvas (which holds the frame at the output size).
    fn draw(&mut self, f: &FrameResult<'_>) {
        if f.inferred {
            self.latest.clear();
            self.latest.extend_from_slice(f.detections);
        }
        let (sx, sy) = (
            self.canvas.width() as f32 / f.width.max(1) as f32,
            self.canvas.height() as f32 / f.height.max(1) as f32,
        );
        let scale = caption_scale(self.canvas.height());
        let labels = self.labels.clone();
        let mut planes = Planes::of(&mut self.canvas);
        for d in &self.latest {
            let b = d.box_in_frame;
            let text = format!("{} {:.2}", labels.name(d.class_id), d.score);
            planes.labelled_box(
                [b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy],
                &text,
                scale,
                GREEN,
            );
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
