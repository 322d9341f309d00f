//! Annotated video sink: the input's frames with green 2-px boxes and "label score"
//! captions, encoded as H.264 (libx264) in MP4 at the input's frame rate, one output
//! frame per input frame.

use std::path::{Path, PathBuf};

use ffmpeg::{codec, format::Pixel, frame, software::scaling, Dictionary, Rational};
use ffmpeg_next as ffmpeg;

use super::{
    draw::{caption_scale, Planes, BLACK, GREEN},
    FrameResult, PartialFile, Sink, SinkConfig, SinkInput,
};
use crate::{
    decode::describe,
    error::{Error, Result},
    labels::Labels,
};

pub struct AnnotatedVideoSink {
    file: PartialFile,
    octx: ffmpeg::format::context::Output,
    encoder: ffmpeg::encoder::Video,
    enc_time_base: Rational,
    stream_time_base: Rational,
    scaler: Option<(scaling::Context, Pixel, u32, u32)>,
    canvas: frame::Video,
    width: u32,
    height: u32,
    frames: i64,
    labels: std::sync::Arc<Labels>,
}

fn even(v: u32) -> u32 {
    (v + 1) & !1
}

impl AnnotatedVideoSink {
    pub fn create(path: &Path, input: &SinkInput, cfg: &SinkConfig) -> Result<Self> {
        let file = PartialFile::new(path);
        let enc_err = |reason: String| Error::Encode {
            path: path.into(),
            reason,
        };
        let mut octx = ffmpeg::format::output_as(file.partial_path(), "mp4")
            .map_err(|e| enc_err(describe(&e)))?;
        let codec = ffmpeg::encoder::find_by_name("libx264")
            .or_else(|| ffmpeg::encoder::find(codec::Id::H264))
            .ok_or_else(|| enc_err("no H.264 encoder in this FFmpeg build".into()))?;
        // x264 needs even dimensions for 4:2:0; odd sizes are scaled up by one pixel.
        let (w, h) = (even(input.width), even(input.height));
        let (num, den) = input.frame_rate;
        let enc_time_base = Rational::new(den, num);
        let global_header = octx
            .format()
            .flags()
            .contains(ffmpeg::format::Flags::GLOBAL_HEADER);
        let mut ost = octx.add_stream(codec).map_err(|e| enc_err(describe(&e)))?;
        let mut enc = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| enc_err(describe(&e)))?;
        enc.set_width(w);
        enc.set_height(h);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base(enc_time_base);
        enc.set_frame_rate(Some(Rational::new(num, den)));
        if global_header {
            enc.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let mut opts = Dictionary::new();
        opts.set("preset", &cfg.video_preset);
        if !cfg.video_tune.is_empty() {
            opts.set("tune", &cfg.video_tune);
        }
        opts.set("crf", &cfg.video_crf.to_string());
        if cfg.video_threads > 0 {
            opts.set("threads", &cfg.video_threads.to_string());
        }
        let encoder = enc
            .open_with(opts)
            .map_err(|e| enc_err(format!("cannot open the H.264 encoder: {}", describe(&e))))?;
        ost.set_parameters(&encoder);
        ost.set_time_base(enc_time_base);
        ost.set_avg_frame_rate(Rational::new(num, den));
        octx.write_header().map_err(|e| enc_err(describe(&e)))?;
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
            scaler: None,
            canvas: frame::Video::new(Pixel::YUV420P, w, h),
            width: w,
            height: h,
            frames: 0,
            labels: cfg.labels.clone(),
        })
    }

    fn err(&self, reason: String) -> Error {
        Error::Encode {
            path: self.file.target().into(),
            reason,
        }
    }

    /// Copies (converting and resizing if needed) the picture into the YUV420P canvas.
    fn load_canvas(&mut self, picture: &frame::Video) -> Result<()> {
        let key = (picture.format(), picture.width(), picture.height());
        let stale = !matches!(&self.scaler, Some((_, f, w, h)) if (*f, *w, *h) == key);
        if stale {
            let ctx = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                Pixel::YUV420P,
                self.width,
                self.height,
                scaling::Flags::BILINEAR,
            )
            .map_err(|e| {
                self.err(format!(
                    "cannot convert {:?} for encoding: {}",
                    key.0,
                    describe(&e)
                ))
            })?;
            self.scaler = Some((ctx, key.0, key.1, key.2));
        }
        let (ctx, ..) = self.scaler.as_mut().expect("set above");
        ctx.run(picture, &mut self.canvas)
            .map_err(|e| Error::Encode {
                path: self.file.target().into(),
                reason: describe(&e),
            })
    }

    fn drain(&mut self) -> Result<()> {
        let mut packet = ffmpeg::Packet::empty();
        while self.encoder.receive_packet(&mut packet).is_ok() {
            packet.set_stream(0);
            packet.rescale_ts(self.enc_time_base, self.stream_time_base);
            packet
                .write_interleaved(&mut self.octx)
                .map_err(|e| Error::Encode {
                    path: self.file.target().into(),
                    reason: describe(&e),
                })?;
        }
        Ok(())
    }
}

impl Sink for AnnotatedVideoSink {
    fn write(&mut self, f: &FrameResult<'_>) -> Result<()> {
        let picture = f
            .picture
            .ok_or_else(|| self.err("no picture was kept for this frame".into()))?;
        self.load_canvas(picture)?;
        let (sx, sy) = (
            self.width as f32 / f.width.max(1) as f32,
            self.height as f32 / f.height.max(1) as f32,
        );
        let scale = caption_scale(self.height);
        {
            let (w, h) = (self.width, self.height);
            let (y_stride, uv_stride) = (self.canvas.stride(0), self.canvas.stride(1));
            // The three planes are separate buffers: take each as its own mutable slice.
            let mut plane = |i: usize| {
                let s = self.canvas.data_mut(i);
                (s.as_mut_ptr(), s.len())
            };
            let ((py, ly), (pu, lu), (pv, lv)) = (plane(0), plane(1), plane(2));
            // SAFETY: each pointer/length pair comes from `data_mut` of a distinct plane of
            // `self.canvas`, which is not otherwise touched while `planes` is alive.
            let (y, u, v) = unsafe {
                (
                    std::slice::from_raw_parts_mut(py, ly),
                    std::slice::from_raw_parts_mut(pu, lu),
                    std::slice::from_raw_parts_mut(pv, lv),
                )
            };
            let mut planes = Planes {
                y,
                y_stride,
                u,
                v,
                uv_stride,
                width: w,
                height: h,
            };
            for d in f.detections {
                let b = d.box_in_frame;
                let (x1, y1, x2, y2) = (b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy);
                planes.rect(x1, y1, x2, y2, 2, GREEN);
                let text = format!("{} {:.2}", self.labels.name(d.class_id), d.score);
                let cap_h = 8 * scale + 2 * scale;
                let cy = if y1 as i64 >= cap_h {
                    y1 as i64 - cap_h
                } else {
                    y1 as i64
                };
                planes.caption(&text, x1 as i64, cy, scale, GREEN, BLACK);
            }
        }
        self.canvas.set_pts(Some(self.frames));
        self.frames += 1;
        self.encoder
            .send_frame(&self.canvas)
            .map_err(|e| Error::Encode {
                path: self.file.target().into(),
                reason: describe(&e),
            })?;
        self.drain()
    }

    fn finish(mut self: Box<Self>) -> Result<Vec<PathBuf>> {
        self.encoder
            .send_eof()
            .map_err(|e| self.err(describe(&e)))?;
        self.drain()?;
        self.octx
            .write_trailer()
            .map_err(|e| self.err(describe(&e)))?;
        let AnnotatedVideoSink { file, octx, .. } = *self;
        drop(octx);
        Ok(vec![file.commit()?])
    }
}
