//! Decode: FFmpeg demux + decode of one input, frame by frame, with frame threading and
//! optional hardware decoding ([`hw`]).
//!
//! A corrupt packet is counted and skipped rather than ending the input; the counts are
//! reported in the per-input summary so nothing is lost silently. Hardware decoding falls back
//! to software both when the device cannot be opened and when the hardware decoder fails on
//! the first packets (the input is then rewound and decoded again in software).

pub mod hw;
mod lost;
mod open;
pub mod pipe;
pub mod rotate;
pub mod source;

use rotate::{Rotation, Rotator};

/// Hardware-decoding fallbacks are logged once per process, not once per input.
static HW_FALLBACK_LOGGED: AtomicBool = AtomicBool::new(false);

fn log_hw_fallback(msg: std::fmt::Arguments<'_>) {
    if !HW_FALLBACK_LOGGED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        tracing::warn!("{msg}");
    }
}

use hw::{HwAccel, HwDevice};
use lost::LostPackets;
use open::{best_video_stream, choose_decoder, open_container, open_decoder};
use pipe::Fifo;
use source::{SourceKind, SourceOptions};

use std::{
    path::{Path, PathBuf},
    sync::{atomic::AtomicBool, Arc},
};

use ffmpeg::{codec, frame, software::scaling, Rational};
use ffmpeg_next as ffmpeg;

pub use crate::av::RgbConverter;
use crate::error::{AvError, Error, Result};

static INIT: std::sync::Once = std::sync::Once::new();

/// Initialises FFmpeg once per process; its own log output is silenced unless `verbose`.
pub fn init_ffmpeg(verbose: bool) {
    INIT.call_once(|| {
        let _ = ffmpeg::init();
        ffmpeg::util::log::set_level(if verbose {
            ffmpeg::util::log::Level::Warning
        } else {
            ffmpeg::util::log::Level::Fatal
        });
    });
}

/// The FFmpeg release the process runs with, e.g. `5.1.6-0+deb12u1`, and its libraries'
/// versions (`avformat 59.27.100, avcodec 59.37.100, ...`).
pub fn ffmpeg_versions() -> (String, String) {
    // SAFETY: av_version_info returns a static NUL-terminated string.
    let release = unsafe { std::ffi::CStr::from_ptr(ffmpeg::ffi::av_version_info()) }
        .to_string_lossy()
        .into_owned();
    let v = |n: u32| format!("{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
    let libs = format!(
        "avformat {}, avcodec {}, avutil {}, swscale {}",
        v(ffmpeg::format::version()),
        v(codec::version()),
        v(ffmpeg::util::version()),
        v(scaling::version())
    );
    (release, libs)
}

#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// Decoder threads (FFmpeg frame threading); 0 lets FFmpeg choose.
    pub threads: usize,
    /// Hardware decoding to try first.
    pub hwaccel: HwAccel,
    /// How network inputs are opened.
    pub source: SourceOptions,
    /// While set, blocking reads of a source give up (Ctrl-C while a stream is silent).
    pub interrupt: Option<Arc<AtomicBool>>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            threads: 2,
            hwaccel: HwAccel::None,
            source: SourceOptions::default(),
            interrupt: None,
        }
    }
}

/// What we know about an input before decoding it.
#[derive(Debug, Clone)]
pub struct VideoInfo {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Frames per second as a rational (num, den); falls back to 25/1 when the file has none.
    pub frame_rate: (i32, i32),
    /// The container's frame count, when it states one.
    pub frames_hint: Option<u64>,
    pub codec: String,
    /// Turn applied to every frame so it is upright as displayed; `width`/`height` are the
    /// displayed size.
    pub rotation: Rotation,
}

impl VideoInfo {
    pub fn fps(&self) -> f64 {
        self.frame_rate.0 as f64 / self.frame_rate.1 as f64
    }
}

/// One decoded picture with its position in the input.
pub struct DecodedFrame {
    /// 0-based index in decode (presentation) order.
    pub index: u64,
    /// Presentation time in seconds from the start of the stream.
    pub pts_seconds: f64,
    pub picture: frame::Video,
}

/// Counts of what could not be decoded; reported, never hidden.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodeIssues {
    pub corrupt_packets: u64,
    /// Packets that gave no frame (undecodable without the frames they refer to, or corrupt),
    /// and of them, those before the first frame (a file cut in the middle of a GOP).
    pub undecodable_packets: u64,
    pub undecodable_leading: u64,
    /// Frames the decoder flagged as damaged (errors concealed, references missing).
    pub damaged_frames: u64,
    pub rejected_packets: u64,
    pub read_error: Option<String>,
}

/// A run of consecutive packets that gave no frame: how many, and the presentation times of
/// the first and last, in seconds from the stream's start (as the frames' are).
#[derive(Debug, Clone, PartialEq)]
pub struct LostSpan {
    pub packets: u64,
    pub from_s: f64,
    pub to_s: f64,
}

pub struct Decoder {
    info: VideoInfo,
    threads: usize,
    /// The device in use; `None` once decoding is in software.
    hw: Option<HwDevice>,
    /// Why hardware decoding was given up, if it was.
    hw_fallback: Option<String>,
    input: ffmpeg::format::context::Input,
    /// Kept alive as long as `input`, whose interrupt callback reads it (dropped after it).
    _interrupt: Option<Arc<AtomicBool>>,
    /// The FIFO `input` reads, when the input is one (closed after it).
    _fifo: Option<Fifo>,
    kind: SourceKind,
    /// Not a regular file or a URL FFmpeg can seek in: read once, never seeked.
    streamed: bool,
    decoder: ffmpeg::decoder::Video,
    stream_index: usize,
    rotator: Rotator,
    time_base: Rational,
    /// Where the stream starts (its `start_time`: what ffprobe reports), when the container
    /// says and the source is not live; frames are timed from there.
    stream_start: Option<i64>,
    /// The timestamp times count from (fixed by the first frame).
    start_pts: Option<i64>,
    /// The last frame's time from `start_pts`, in seconds (before `pts_offset`).
    last_rel: Option<f64>,
    /// Seconds added to every timestamp: where a reconnected stream goes on from.
    pts_offset: f64,
    next_index: u64,
    draining: bool,
    finished: bool,
    issues: DecodeIssues,
    lost: LostPackets,
}

impl Decoder {
    pub fn open(path: &Path, opts: &DecodeOptions) -> Result<Self> {
        let (input, fifo) = open_container(path, opts)?;
        // FFmpeg renders plain text as "video" (the tty demuxer): not what anyone means to detect on.
        if input.format().name() == "tty" {
            return Err(Error::BadInput {
                path: path.into(),
                problem: "this is a text file, not a video",
            });
        }
        let facts = best_video_stream(path, &input)?;
        let (decoder, hw, hw_fallback) = choose_decoder(path, &facts.params, opts)?;
        if decoder.width() == 0 || decoder.height() == 0 {
            return Err(Error::BadInput {
                path: path.into(),
                problem: "the video stream has no picture size",
            });
        }
        let codec_name = decoder
            .codec()
            .map(|c| c.name().to_string())
            .unwrap_or_else(|| "unknown".into());
        let (width, height) = facts
            .rotation
            .display_size(decoder.width(), decoder.height());
        let info = VideoInfo {
            path: path.into(),
            width,
            height,
            rotation: facts.rotation,
            frame_rate: (facts.rate.numerator(), facts.rate.denominator()),
            frames_hint: facts.frames_hint,
            codec: codec_name,
        };
        let kind = SourceKind::of(path);
        let streamed = match kind {
            SourceKind::File => pipe::is_stream_file(path),
            _ => !crate::av::seekable(&input),
        };
        Ok(Decoder {
            info,
            threads: opts.threads,
            hw,
            hw_fallback,
            input,
            _interrupt: opts.interrupt.clone(),
            _fifo: fifo,
            stream_start: facts.start.filter(|_| !kind.is_live()),
            kind,
            streamed,
            decoder,
            stream_index: facts.index,
            rotator: Rotator::default(),
            time_base: facts.time_base,
            start_pts: None,
            last_rel: None,
            pts_offset: 0.0,
            next_index: 0,
            draining: false,
            finished: false,
            issues: DecodeIssues::default(),
            lost: LostPackets::default(),
        })
    }

    /// The hardware decoder in use, if any.
    pub fn hwaccel(&self) -> Option<HwAccel> {
        self.hw.as_ref().map(HwDevice::kind)
    }

    /// Why hardware decoding was not used or was abandoned, if it was asked for.
    pub fn hw_fallback(&self) -> Option<&str> {
        self.hw_fallback.as_deref()
    }

    /// Abandons hardware decoding before any frame came out: rewinds the input and starts over
    /// with a software decoder. Returns false if that is not possible (already software, or
    /// frames were already delivered).
    fn fall_back_to_software(&mut self, reason: String) -> Result<bool> {
        let Some(dev) = self.hw.take() else {
            return Ok(false);
        };
        if self.next_index > 0 {
            self.hw = Some(dev);
            return Ok(false);
        }
        log_hw_fallback(format_args!(
            "hardware decoding with {} failed on {} ({reason}); decoding in software",
            dev.kind(),
            self.info.path.display()
        ));
        self.hw_fallback = Some(format!("{}: {reason}", dev.kind()));
        let params = self
            .input
            .stream(self.stream_index)
            .map(|s| s.parameters())
            .ok_or_else(|| self.error("reopening the stream", ffmpeg::Error::StreamNotFound))?;
        self.decoder = open_decoder(params, self.threads, None)
            .map_err(|e| self.error("opening a software decoder", e))?;
        self.input
            .seek(i64::MIN + 1, ..)
            .map_err(|e| self.error("rewinding for software decoding", e))?;
        self.draining = false;
        self.finished = false;
        self.start_pts = None;
        self.last_rel = None;
        self.issues = DecodeIssues::default();
        self.lost = LostPackets::default();
        drop(dev);
        Ok(true)
    }

    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// Numbers this decoder's frames on from another's: a reconnected stream's first frame is
    /// frame `next_index` at `pts` seconds.
    pub fn continue_from(&mut self, next_index: u64, pts: f64) {
        self.next_index = next_index;
        self.pts_offset = pts;
    }

    /// The index the next frame gets.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Seeks to `seconds` from the start of the stream (to the keyframe before it); the
    /// timestamps of what follows count from the stream's start, so frames before `seconds`
    /// can be told apart and skipped.
    ///
    /// A stream (a FIFO, standard input, an unseekable URL) is not seeked: it is read from
    /// where it is, and the frames before `seconds` are skipped as they come.
    pub fn seek(&mut self, seconds: f64) -> Result<()> {
        self.start_pts = Some(self.stream_start.unwrap_or(0).max(0));
        if self.streamed {
            return Ok(());
        }
        let ts = (seconds * 1_000_000.0) as i64;
        self.input
            .seek(ts, ..ts)
            .map_err(|e| self.error("seeking to the start time", e))?;
        Ok(())
    }

    /// True for a stream with no end of its own: a live URL, a camera, or an HTTP(S) stream
    /// with neither a duration nor a length (HLS live, an endless MPEG-TS). A response whose
    /// length the server said is a file, not a live stream.
    pub fn is_live(&self) -> bool {
        self.kind.is_live()
            || (self.is_http()
                && self.input.duration() <= 0
                && crate::av::size(&self.input).is_none())
    }

    fn is_http(&self) -> bool {
        matches!(&self.kind, SourceKind::Url(s) if s.starts_with("http"))
    }

    /// True once a source of known length has been read to its end: it ended, it was not
    /// lost (a file; a network response whose length the server gave, read whole).
    pub fn read_to_end(&self) -> bool {
        match self.kind {
            SourceKind::File => self.finished,
            SourceKind::Url(_) => {
                self.finished
                    && self.issues.read_error.is_none()
                    && crate::av::size(&self.input)
                        .is_some_and(|n| crate::av::position(&self.input) >= n)
            }
            SourceKind::Stdin | SourceKind::Camera => false,
        }
    }

    /// The runs of packets that gave no frame found since the last call.
    pub fn take_lost(&mut self) -> Vec<LostSpan> {
        let tb = f64::from(self.time_base);
        let spans = self.lost.take();
        let start = self
            .start_pts
            .or(self.stream_start)
            .or(spans.first().map(|s| s.first));
        spans
            .into_iter()
            .map(|s| {
                let t = |ts: i64| self.pts_offset + (ts - start.unwrap_or(ts)) as f64 * tb;
                LostSpan {
                    packets: s.packets,
                    from_s: t(s.first),
                    to_s: t(s.last),
                }
            })
            .collect()
    }

    fn error(&self, step: &'static str, e: ffmpeg::Error) -> Error {
        Error::Decode {
            path: self.info.path.clone(),
            step,
            source: AvError(e),
        }
    }

    pub fn issues(&self) -> &DecodeIssues {
        &self.issues
    }

    /// The next decoded frame, or `None` at the end of the stream.
    pub fn next_frame(&mut self) -> Result<Option<DecodedFrame>> {
        if self.finished {
            return Ok(None);
        }
        let mut picture = frame::Video::empty();
        loop {
            let received = self.decoder.receive_frame(&mut picture);
            if received.is_ok() {
                self.lost_until(Some(picture.pts()));
            }
            match received {
                Ok(()) if hw::is_hw_frame(&picture) => match hw::download(&picture) {
                    Ok(sw) => return self.deliver(sw).map(Some),
                    Err(e) => {
                        let why = format!("cannot download frames: {}", AvError(e));
                        if self.fall_back_to_software(why)? {
                            continue;
                        }
                        return Err(self.error("downloading a hardware frame", e));
                    }
                },
                Ok(()) => return self.deliver(picture).map(Some),
                Err(ffmpeg::Error::Eof) => {
                    if self.fall_back_to_software("no frame decoded".into())? {
                        continue;
                    }
                    self.lost_until(None);
                    self.finished = true;
                    return Ok(None);
                }
                Err(ffmpeg::Error::Other { errno }) if errno == ffmpeg::util::error::EAGAIN => {}
                Err(ffmpeg::Error::InvalidData) if self.hw.is_none() => {
                    self.issues.corrupt_packets += 1;
                    continue;
                }
                Err(e) => {
                    if self.fall_back_to_software(AvError(e).to_string())? {
                        continue;
                    }
                    if matches!(e, ffmpeg::Error::InvalidData) {
                        self.issues.corrupt_packets += 1;
                        continue;
                    }
                    return Err(self.error("decoding", e));
                }
            }
            if self.draining {
                // EAGAIN after EOF was sent should not happen; stop rather than spin.
                self.lost_until(None);
                self.finished = true;
                return Ok(None);
            }
            self.feed()?;
        }
    }

    /// Counts the packets that gave no frame: those waiting before a frame at `pts` (`Some`:
    /// a frame came out, `pts` its timestamp if it has one), or all of them (`None`: drained).
    fn lost_until(&mut self, pts: Option<Option<i64>>) {
        match pts {
            Some(p) => self.lost.frame(p),
            None => self.lost.end(),
        }
        self.issues.undecodable_packets = self.lost.total;
        self.issues.undecodable_leading = self.lost.leading;
    }

    /// Reads packets until one of our stream is accepted by the decoder, or sends EOF.
    fn feed(&mut self) -> Result<()> {
        loop {
            let mut packet = ffmpeg::Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {
                    if packet.stream() != self.stream_index {
                        continue;
                    }
                    // An edit list's trimmed frames are decoded as references, never shown.
                    // SAFETY: reading a plain field of a packet we own.
                    let flags = unsafe { (*ffmpeg::packet::Ref::as_ptr(&packet)).flags };
                    let shown = flags & ffmpeg::ffi::AV_PKT_FLAG_DISCARD == 0;
                    match self.decoder.send_packet(&packet) {
                        Ok(()) => {
                            self.lost.sent(packet.pts().filter(|_| shown));
                            return Ok(());
                        }
                        Err(ffmpeg::Error::Other { errno })
                            if errno == ffmpeg::util::error::EAGAIN =>
                        {
                            return Ok(())
                        }
                        Err(e) if self.hw.is_some() && self.next_index == 0 => {
                            self.fall_back_to_software(AvError(e).to_string())?;
                            return Ok(());
                        }
                        Err(ffmpeg::Error::InvalidData) => self.issues.corrupt_packets += 1,
                        Err(_) => self.issues.rejected_packets += 1,
                    }
                }
                Err(ffmpeg::Error::Eof) => return self.send_eof(),
                Err(ffmpeg::Error::InvalidData) => self.issues.corrupt_packets += 1,
                // Stopped on purpose (the interrupt flag): not a read error.
                Err(ffmpeg::Error::Exit) => return self.send_eof(),
                Err(e) => {
                    // A truncated or unreadable file: keep what was decoded, report why it stopped.
                    self.issues.read_error = Some(AvError(e).to_string());
                    return self.send_eof();
                }
            }
        }
    }

    fn send_eof(&mut self) -> Result<()> {
        self.draining = true;
        // With frame threading, an error from an earlier packet can surface here; count it and
        // try again so the frames still inside the decoder come out.
        for _ in 0..4 {
            match self.decoder.send_eof() {
                // Eof: the failed call already started draining.
                Ok(()) | Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(ffmpeg::Error::InvalidData) => self.issues.corrupt_packets += 1,
                Err(e) => {
                    self.issues.read_error =
                        Some(format!("decoder could not be drained: {}", AvError(e)));
                    self.finished = true;
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Turns the picture upright if the stream asks for it, then numbers and times it.
    fn deliver(&mut self, picture: frame::Video) -> Result<DecodedFrame> {
        // SAFETY: reading two plain fields of a live frame.
        let (err_flags, flags) = unsafe {
            (
                (*picture.as_ptr()).decode_error_flags,
                (*picture.as_ptr()).flags,
            )
        };
        if err_flags != 0 || flags & ffmpeg::ffi::AV_FRAME_FLAG_CORRUPT != 0 {
            self.issues.damaged_frames += 1;
        }
        let picture = self
            .rotator
            .apply(picture, self.info.rotation)
            .map_err(|e| self.error("turning the picture upright", e))?;
        Ok(self.stamp(picture))
    }

    /// Gives the frame its index and time. A frame without a timestamp (the first ones of an
    /// RTSP stream often lack one) is one frame period after the last; the first timestamp
    /// after such frames is anchored so that time still goes forward.
    fn stamp(&mut self, picture: frame::Video) -> DecodedFrame {
        let index = self.next_index;
        self.next_index += 1;
        let step = 1.0 / self.info.fps();
        let tb = f64::from(self.time_base);
        let last = self.last_rel;
        let stream_start = self.stream_start;
        let rel = match picture.timestamp().or(picture.pts()) {
            Some(ts) => {
                let start = *self.start_pts.get_or_insert_with(|| match last {
                    Some(l) => ts - ((l + step) / tb).round() as i64,
                    // From the stream's start, whatever before this frame gave no frame.
                    None => stream_start.filter(|&s| s <= ts).unwrap_or(ts),
                });
                (ts - start) as f64 * tb
            }
            None => last.map_or(0.0, |l| l + step),
        };
        self.last_rel = Some(rel);
        let pts_seconds = self.pts_offset + rel;
        DecodedFrame {
            index,
            pts_seconds,
            picture,
        }
    }
}
