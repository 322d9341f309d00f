//! Decode: FFmpeg demux + decode of one input, frame by frame, with frame threading and
//! optional hardware decoding ([`hw`]).
//!
//! A corrupt packet is counted and skipped rather than ending the input; the counts are
//! reported in the per-input summary so nothing is lost silently. Hardware decoding falls back
//! to software both when the device cannot be opened and when the hardware decoder fails on
//! the first packets (the input is then rewound and decoded again in software).

pub mod hw;
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
use source::{SourceKind, SourceOptions};

use std::{
    path::{Path, PathBuf},
    sync::{atomic::AtomicBool, Arc},
};

use ffmpeg::{codec, frame, media, software::scaling, Rational};
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
    /// Frames the decoder flagged as damaged (errors concealed, references missing).
    pub damaged_frames: u64,
    pub rejected_packets: u64,
    pub read_error: Option<String>,
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
    kind: SourceKind,
    decoder: ffmpeg::decoder::Video,
    stream_index: usize,
    rotator: Rotator,
    time_base: Rational,
    start_pts: Option<i64>,
    /// The last frame's time from `start_pts`, in seconds (before `pts_offset`).
    last_rel: Option<f64>,
    /// Seconds added to every timestamp: where a reconnected stream goes on from.
    pts_offset: f64,
    next_index: u64,
    draining: bool,
    finished: bool,
    issues: DecodeIssues,
}

fn check_path(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(_) => Err(Error::InputNotFound(path.into())),
        Ok(m) if m.is_dir() => Err(Error::InputIsDirectory(path.into())),
        Ok(m) if m.len() == 0 => Err(Error::BadInput {
            path: path.into(),
            problem: "the file is empty",
        }),
        Ok(_) => Ok(()),
    }
}

/// The stream facts `Decoder::open` reads before choosing a decoder.
struct StreamFacts {
    index: usize,
    time_base: Rational,
    rate: Rational,
    frames_hint: Option<u64>,
    rotation: Rotation,
    params: codec::Parameters,
}

fn best_video_stream(path: &Path, input: &ffmpeg::format::context::Input) -> Result<StreamFacts> {
    let stream = input
        .streams()
        .best(media::Type::Video)
        .ok_or_else(|| Error::NoVideoStream(path.into()))?;
    let mut rate = stream.avg_frame_rate();
    if rate.numerator() <= 0 || rate.denominator() <= 0 {
        rate = stream.rate();
    }
    if rate.numerator() <= 0 || rate.denominator() <= 0 {
        rate = Rational::new(25, 1);
    }
    Ok(StreamFacts {
        index: stream.index(),
        time_base: stream.time_base(),
        rate,
        frames_hint: u64::try_from(stream.frames()).ok().filter(|&n| n > 0),
        rotation: rotate::stream_rotation(&stream),
        params: stream.parameters(),
    })
}

/// Opens a decoder for the stream: the first hardware device of `opts.hwaccel` that works,
/// else software. Returns the device in use and why hardware decoding was not used.
fn choose_decoder(
    path: &Path,
    params: &codec::Parameters,
    opts: &DecodeOptions,
) -> Result<(ffmpeg::decoder::Video, Option<HwDevice>, Option<String>)> {
    let mut why_not = Vec::new();
    for kind in opts.hwaccel.candidates() {
        let attempt = HwDevice::open(kind).and_then(|dev| {
            let d = open_decoder(params.clone(), opts.threads, Some(&dev)).map_err(AvError)?;
            Ok((dev, d))
        });
        match attempt {
            Ok((dev, d)) => return Ok((d, Some(dev), None)),
            Err(reason) => why_not.push(format!("{kind}: {reason}")),
        }
    }
    let fallback = (!why_not.is_empty()).then(|| why_not.join("; "));
    if let Some(why) = &fallback {
        log_hw_fallback(format_args!(
            "hardware decoding unavailable for {} ({why}); decoding in software",
            path.display()
        ));
    }
    let d = open_decoder(params.clone(), opts.threads, None).map_err(|e| Error::OpenInput {
        path: path.into(),
        source: AvError(e),
    })?;
    Ok((d, None, fallback))
}

/// Opens the container of any kind of source.
fn open_container(path: &Path, opts: &DecodeOptions) -> Result<ffmpeg::format::context::Input> {
    let kind = SourceKind::of(path);
    let open_err = |source| Error::OpenInput {
        path: path.into(),
        source,
    };
    let format = match kind {
        SourceKind::File => {
            check_path(path)?;
            None
        }
        SourceKind::Camera => {
            crate::av::register_devices().map_err(|source| Error::Camera {
                path: path.into(),
                source,
            })?;
            Some("video4linux2")
        }
        SourceKind::Url(_) | SourceKind::Stdin => None,
    };
    let how = crate::av::OpenInput {
        options: opts.source.ffmpeg_options(&kind),
        format,
        interrupt: opts.interrupt.clone(),
    };
    crate::av::open_input(&source::ffmpeg_name(path), &how).map_err(|e| open_err(AvError(e)))
}

impl Decoder {
    pub fn open(path: &Path, opts: &DecodeOptions) -> Result<Self> {
        let input = open_container(path, opts)?;
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
        Ok(Decoder {
            info,
            threads: opts.threads,
            hw,
            hw_fallback,
            input,
            _interrupt: opts.interrupt.clone(),
            kind: SourceKind::of(path),
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
    pub fn seek(&mut self, seconds: f64) -> Result<()> {
        let stream = self.input.stream(self.stream_index);
        let start = stream.as_ref().map_or(0, |s| s.start_time().max(0));
        self.start_pts = Some(start);
        let ts = (seconds * 1_000_000.0) as i64;
        self.input
            .seek(ts, ..ts)
            .map_err(|e| self.error("seeking to the start time", e))?;
        Ok(())
    }

    /// True for a stream with no end of its own: a live URL, standard input, a camera, or an
    /// HTTP(S) stream with no duration (HLS live, an endless MPEG-TS).
    pub fn is_live(&self) -> bool {
        self.kind.is_live()
            || (matches!(&self.kind, SourceKind::Url(s) if s.starts_with("http"))
                && self.input.duration() <= 0)
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
            match self.decoder.receive_frame(&mut picture) {
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
                self.finished = true;
                return Ok(None);
            }
            self.feed()?;
        }
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
                    match self.decoder.send_packet(&packet) {
                        Ok(()) => return Ok(()),
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
        let rel = match picture.timestamp().or(picture.pts()) {
            Some(ts) => {
                let start = *self.start_pts.get_or_insert_with(|| match last {
                    Some(l) => ts - ((l + step) / tb).round() as i64,
                    None => ts,
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

fn open_decoder(
    params: codec::Parameters,
    threads: usize,
    hw: Option<&HwDevice>,
) -> std::result::Result<ffmpeg::decoder::Video, ffmpeg::Error> {
    let mut ctx = codec::context::Context::from_parameters(params)?;
    ctx.set_threading(codec::threading::Config {
        kind: codec::threading::Type::Frame,
        count: threads,
        ..Default::default()
    });
    if let Some(dev) = hw {
        hw::attach(&mut ctx, dev)?;
    }
    ctx.decoder().video()
}
