//! Opening an input: its container (a FIFO waited on first), its best video stream and
//! what the container says about it, and a decoder for it (hardware first when asked).

use std::path::Path;

use ffmpeg::{codec, media, Rational};
use ffmpeg_next as ffmpeg;

use super::{
    hw::{self, HwDevice},
    log_hw_fallback,
    pipe::Fifo,
    rotate::{self, Rotation},
    source::{self, SourceKind},
    DecodeOptions,
};
use crate::error::{AvError, Error, Result};

fn check_path(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(_) => Err(Error::InputNotFound(path.into())),
        Ok(m) if m.is_dir() => Err(Error::InputIsDirectory(path.into())),
        // A FIFO or a device has no size: it is a stream.
        Ok(m) if m.is_file() && m.len() == 0 => Err(Error::BadInput {
            path: path.into(),
            problem: "the file is empty",
        }),
        Ok(_) => Ok(()),
    }
}

/// The stream facts `Decoder::open` reads before choosing a decoder.
pub(super) struct StreamFacts {
    pub index: usize,
    pub time_base: Rational,
    pub rate: Rational,
    pub frames_hint: Option<u64>,
    /// The stream's `start_time`, when known.
    pub start: Option<i64>,
    pub rotation: Rotation,
    pub params: codec::Parameters,
}

/// Frames the container presents: its sample count less the samples an edit list trims
/// (decoded as references, never shown: marked in the index).
fn presented_frames(stream: &ffmpeg::format::stream::Stream<'_>) -> Option<u64> {
    let listed = u64::try_from(stream.frames()).ok().filter(|&n| n > 0)?;
    // SAFETY: reading the index of a stream of an open input; entries stay valid while no
    // packet is read (none is, here).
    let trimmed = unsafe {
        let st = stream.as_ptr() as *mut ffmpeg::ffi::AVStream;
        let n = ffmpeg::ffi::avformat_index_get_entries_count(st);
        (0..n)
            .filter_map(|i| ffmpeg::ffi::avformat_index_get_entry(st, i).as_ref())
            .filter(|e| e.flags() & ffmpeg::ffi::AVINDEX_DISCARD_FRAME != 0)
            .count() as u64
    };
    Some(listed.saturating_sub(trimmed)).filter(|&n| n > 0)
}

pub(super) fn best_video_stream(
    path: &Path,
    input: &ffmpeg::format::context::Input,
) -> Result<StreamFacts> {
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
        frames_hint: presented_frames(&stream),
        start: Some(stream.start_time()).filter(|&t| t != ffmpeg::ffi::AV_NOPTS_VALUE),
        rotation: rotate::stream_rotation(&stream),
        params: stream.parameters(),
    })
}

/// Opens a decoder for the stream: the first hardware device of `opts.hwaccel` that works,
/// else software. Returns the device in use and why hardware decoding was not used.
pub(super) fn choose_decoder(
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

pub(super) type Container = (ffmpeg::format::context::Input, Option<Fifo>);

/// Opens the container of any kind of source (and the FIFO it reads, when it is one).
pub(super) fn open_container(path: &Path, opts: &DecodeOptions) -> Result<Container> {
    let kind = SourceKind::of(path);
    let open_err = |source| Error::OpenInput {
        path: path.into(),
        source,
    };
    let mut fifo = None;
    let format = match kind {
        SourceKind::File => {
            check_path(path)?;
            fifo = Fifo::open(path, opts.interrupt.as_deref()).map_err(|e| Error::Read {
                path: path.into(),
                source: e,
            })?;
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
    let name = fifo
        .as_ref()
        .map_or_else(|| source::ffmpeg_name(path), Fifo::ffmpeg_name);
    let input = crate::av::open_input(&name, &how).map_err(|e| open_err(AvError(e)))?;
    Ok((input, fifo))
}

pub(super) fn open_decoder(
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
