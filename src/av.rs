//! Thin FFmpeg helpers shared by decoding and encoding: opening files by their raw path bytes
//! (ffmpeg-next's own `format::input`/`output_as` panic on a name that is not UTF-8), one
//! cached software scaler, and the RGB conversion OpenCV's `VideoCapture` does.

use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path, ptr};

use ffmpeg::{format::Pixel, frame, software::scaling, Dictionary};
use ffmpeg_next as ffmpeg;

use crate::error::{AvError, CameraError};

/// FFmpeg's name for a path: its bytes as they are (a NUL byte cannot be in a Unix path).
fn c_path(path: &Path) -> Result<CString, ffmpeg::Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| ffmpeg::Error::InvalidData)
}

/// How to open an input: FFmpeg options, a demuxer to force, and a flag that interrupts
/// blocking reads (Ctrl-C while a network source is silent).
#[derive(Default)]
pub struct OpenInput<'a> {
    pub options: Vec<(String, String)>,
    /// A demuxer by name (e.g. `video4linux2`); `None`: probe.
    pub format: Option<&'a str>,
    /// While set, FFmpeg's blocking I/O gives up (the flag must outlive the input).
    pub interrupt: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// FFmpeg's interrupt callback: non-zero stops a blocking read. `opaque` is the flag.
unsafe extern "C" fn interrupted(opaque: *mut std::ffi::c_void) -> std::ffi::c_int {
    // SAFETY: `opaque` is the AtomicBool of an Arc the caller keeps alive as long as the
    // input (see `open_input`).
    let flag = unsafe { &*(opaque as *const std::sync::atomic::AtomicBool) };
    flag.load(std::sync::atomic::Ordering::Relaxed) as std::ffi::c_int
}

/// Opens an input (a file path or any URL FFmpeg knows) and reads its stream information.
/// The caller keeps `how.interrupt` alive as long as the returned input.
pub fn open_input(
    path: &Path,
    how: &OpenInput<'_>,
) -> Result<ffmpeg::format::context::Input, ffmpeg::Error> {
    let name = c_path(path)?;
    let mut dict = Dictionary::new();
    for (k, v) in &how.options {
        dict.set(k, v);
    }
    let format = match how.format {
        Some(f) => {
            let f = CString::new(f).map_err(|_| ffmpeg::Error::InvalidData)?;
            // SAFETY: a valid C string; the returned demuxer is static (or null).
            let fmt = unsafe { ffmpeg::ffi::av_find_input_format(f.as_ptr()) };
            if fmt.is_null() {
                return Err(ffmpeg::Error::DemuxerNotFound);
            }
            fmt
        }
        None => ptr::null(),
    };
    // SAFETY: `name` is a valid C string; `opts` is a dictionary we own (disowned from
    // `dict`) and free below; the context is allocated first so the interrupt callback is in
    // place while opening; on success it is handed to `Input::wrap` (which closes it on
    // drop); on failure avformat_open_input frees it.
    unsafe {
        let mut ps = ffmpeg::ffi::avformat_alloc_context();
        if ps.is_null() {
            return Err(ffmpeg::Error::Bug);
        }
        if let Some(flag) = &how.interrupt {
            (*ps).interrupt_callback.callback = Some(interrupted);
            (*ps).interrupt_callback.opaque = std::sync::Arc::as_ptr(flag) as *mut _;
        }
        let mut opts = dict.disown();
        let rc = ffmpeg::ffi::avformat_open_input(&mut ps, name.as_ptr(), format as _, &mut opts);
        // Unused options come back in `opts`; we do not treat them as errors here.
        ffmpeg::ffi::av_dict_free(&mut opts);
        if rc < 0 {
            return Err(ffmpeg::Error::from(rc));
        }
        let rc = ffmpeg::ffi::avformat_find_stream_info(ps, ptr::null_mut());
        if rc < 0 {
            ffmpeg::ffi::avformat_close_input(&mut ps);
            return Err(ffmpeg::Error::from(rc));
        }
        Ok(ffmpeg::format::context::Input::wrap(ps))
    }
}

/// Makes FFmpeg's capture devices (V4L2 and others, in libavdevice) known to libavformat.
/// libavdevice is loaded at run time, so vidinfer (and its release bundle) does not link it
/// for the many runs that never open a camera.
pub fn register_devices() -> Result<(), CameraError> {
    static DONE: std::sync::OnceLock<Result<(), CameraError>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        let names = ["libavdevice.so.59", "libavdevice.so"];
        // SAFETY: loading a system library and calling its documented init function once; the
        // library stays loaded for the process's life (the handle is leaked on purpose).
        unsafe {
            let lib = names
                .iter()
                .find_map(|n| libloading::Library::new(n).ok())
                .ok_or(CameraError::NoLibavdevice)?;
            let register: libloading::Symbol<'_, unsafe extern "C" fn()> = lib
                .get(b"avdevice_register_all\0")
                .map_err(|e| CameraError::NoRegister(std::sync::Arc::new(e)))?;
            register();
            std::mem::forget(lib);
        }
        Ok(())
    })
    .clone()
}

/// The I/O context of an open input (null for demuxers that do their own I/O, e.g. RTSP).
fn io_of(input: &ffmpeg::format::context::Input) -> *mut ffmpeg::ffi::AVIOContext {
    // SAFETY: reading a field of an open input's context.
    unsafe { (*input.as_ptr()).pb }
}

/// True when FFmpeg can seek in the input's bytes.
pub fn seekable(input: &ffmpeg::format::context::Input) -> bool {
    let pb = io_of(input);
    // SAFETY: `pb` is null or the input's live I/O context.
    !pb.is_null() && unsafe { (*pb).seekable } != 0
}

/// The input's length in bytes, when its source says (a file; an HTTP response with a
/// Content-Length or Content-Range).
pub fn size(input: &ffmpeg::format::context::Input) -> Option<u64> {
    let pb = io_of(input);
    if pb.is_null() {
        return None;
    }
    // SAFETY: the input's live I/O context; avio_size asks the protocol, moving nothing.
    let n = unsafe { ffmpeg::ffi::avio_size(pb) };
    u64::try_from(n).ok().filter(|&n| n > 0)
}

/// How far into its bytes the input has been read.
pub fn position(input: &ffmpeg::format::context::Input) -> u64 {
    let pb = io_of(input);
    if pb.is_null() {
        return 0;
    }
    // SAFETY: the input's live I/O context.
    u64::try_from(unsafe { (*pb).pos }).unwrap_or(0)
}

/// Creates `path` for writing as container `format` (e.g. "mp4").
pub fn open_output(
    path: &Path,
    format: &str,
) -> Result<ffmpeg::format::context::Output, ffmpeg::Error> {
    let name = c_path(path)?;
    let format = CString::new(format).map_err(|_| ffmpeg::Error::InvalidData)?;
    let mut ps = ptr::null_mut();
    // SAFETY: valid C strings; on success `ps` is an allocated output context whose `pb` we
    // open; `Output::wrap` takes ownership (closing `pb` and freeing the context on drop).
    unsafe {
        let rc = ffmpeg::ffi::avformat_alloc_output_context2(
            &mut ps,
            ptr::null_mut(),
            format.as_ptr(),
            name.as_ptr(),
        );
        if rc < 0 || ps.is_null() {
            return Err(ffmpeg::Error::from(rc.min(-1)));
        }
        let rc = ffmpeg::ffi::avio_open(&mut (*ps).pb, name.as_ptr(), ffmpeg::ffi::AVIO_FLAG_WRITE);
        if rc < 0 {
            ffmpeg::ffi::avformat_free_context(ps);
            return Err(ffmpeg::Error::from(rc));
        }
        Ok(ffmpeg::format::context::Output::wrap(ps))
    }
}

/// A software scaler that converts pictures to one pixel format (and optionally one size),
/// rebuilt only when the source format or size changes.
pub struct Scaler {
    to: Pixel,
    /// Output size; `None`: the source size.
    size: Option<(u32, u32)>,
    flags: scaling::Flags,
    ctx: Option<(scaling::Context, Pixel, u32, u32)>,
}

impl Scaler {
    pub fn new(to: Pixel, size: Option<(u32, u32)>, flags: scaling::Flags) -> Self {
        Scaler {
            to,
            size,
            flags,
            ctx: None,
        }
    }

    /// Converts `picture` into `out`; `out` is (re)allocated when it does not have the
    /// output's format and size.
    pub fn run(
        &mut self,
        picture: &frame::Video,
        out: &mut frame::Video,
    ) -> Result<(), ffmpeg::Error> {
        let key = (picture.format(), picture.width(), picture.height());
        let (ow, oh) = self.size.unwrap_or((key.1, key.2));
        let ctx = match &mut self.ctx {
            Some((ctx, f, w, h)) if (*f, *w, *h) == key => ctx,
            slot => {
                let ctx = scaling::Context::get(key.0, key.1, key.2, self.to, ow, oh, self.flags)?;
                &mut slot.insert((ctx, key.0, key.1, key.2)).0
            }
        };
        // SAFETY: `is_empty` only reads the frame's first data pointer.
        let allocated = unsafe { !out.is_empty() };
        if allocated && (out.format(), out.width(), out.height()) != (self.to, ow, oh) {
            *out = frame::Video::empty();
        }
        ctx.run(picture, out)
    }
}

/// Converts decoded pictures of any pixel format to packed RGB24 at the same size, the way
/// OpenCV's `VideoCapture` does (swscale, bicubic flags, default BT.601 matrix).
pub struct RgbConverter {
    scaler: Scaler,
    out: frame::Video,
}

impl Default for RgbConverter {
    fn default() -> Self {
        RgbConverter {
            scaler: Scaler::new(Pixel::RGB24, None, scaling::Flags::BICUBIC),
            out: frame::Video::empty(),
        }
    }
}

impl RgbConverter {
    /// Returns (data, stride) of the RGB24 picture; valid until the next call.
    pub fn convert(&mut self, picture: &frame::Video) -> Result<(&[u8], usize), AvError> {
        self.scaler.run(picture, &mut self.out)?;
        Ok((self.out.data(0), self.out.stride(0)))
    }
}
