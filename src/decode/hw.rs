//! Hardware decoding: the only unsafe FFmpeg calls of the project, behind safe wrappers.
//!
//! [`HwDevice::open`] creates a device context (`av_hwdevice_ctx_create`); [`attach`] gives
//! it to a decoder before it is opened, so FFmpeg's default `get_format` picks the hardware
//! surface format; [`download`] copies a hardware frame to system memory (usually NV12).

use std::{fmt, ptr, str::FromStr};

use ffmpeg::{ffi, frame};
use ffmpeg_next as ffmpeg;

use crate::error::{AvError, ParseError};

/// `--hwaccel` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HwAccel {
    /// Try CUDA, then VAAPI, then QSV, then VDPAU; software if none works.
    Auto,
    /// Software decoding.
    #[default]
    None,
    Cuda,
    Vaapi,
    Qsv,
    Vdpau,
}

impl HwAccel {
    /// The device types to try, in order.
    pub fn candidates(self) -> Vec<HwAccel> {
        match self {
            HwAccel::Auto => vec![HwAccel::Cuda, HwAccel::Vaapi, HwAccel::Qsv, HwAccel::Vdpau],
            HwAccel::None => vec![],
            other => vec![other],
        }
    }

    fn device_type(self) -> Option<ffi::AVHWDeviceType> {
        use ffi::AVHWDeviceType::*;
        match self {
            HwAccel::Cuda => Some(AV_HWDEVICE_TYPE_CUDA),
            HwAccel::Vaapi => Some(AV_HWDEVICE_TYPE_VAAPI),
            HwAccel::Qsv => Some(AV_HWDEVICE_TYPE_QSV),
            HwAccel::Vdpau => Some(AV_HWDEVICE_TYPE_VDPAU),
            HwAccel::Auto | HwAccel::None => None,
        }
    }
}

impl fmt::Display for HwAccel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HwAccel::Auto => "auto",
            HwAccel::None => "none",
            HwAccel::Cuda => "cuda",
            HwAccel::Vaapi => "vaapi",
            HwAccel::Qsv => "qsv",
            HwAccel::Vdpau => "vdpau",
        })
    }
}

impl FromStr for HwAccel {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(HwAccel::Auto),
            "none" | "" => Ok(HwAccel::None),
            "cuda" | "nvdec" => Ok(HwAccel::Cuda),
            "vaapi" => Ok(HwAccel::Vaapi),
            "qsv" => Ok(HwAccel::Qsv),
            "vdpau" => Ok(HwAccel::Vdpau),
            other => Err(ParseError::Unknown {
                what: "hardware decoder",
                value: other.into(),
                expected: "auto, none, cuda, vaapi, qsv or vdpau",
            }),
        }
    }
}

/// Why a hardware device could not be opened or attached.
#[derive(Debug, thiserror::Error)]
pub enum HwError {
    /// `auto` and `none` name no device.
    #[error("{0} is not a device type")]
    NotADevice(HwAccel),
    #[error(transparent)]
    Ffmpeg(#[from] AvError),
}

/// An FFmpeg hardware device context (a reference-counted `AVBufferRef`).
pub struct HwDevice {
    buf: *mut ffi::AVBufferRef,
    kind: HwAccel,
}

// SAFETY: an AVBufferRef to a device context may be used and released from any thread;
// FFmpeg reference-counts it atomically.
unsafe impl Send for HwDevice {}

impl HwDevice {
    /// Opens the default device of `kind`; the error is FFmpeg's reason.
    pub fn open(kind: HwAccel) -> Result<Self, HwError> {
        let ty = kind.device_type().ok_or(HwError::NotADevice(kind))?;
        let mut buf: *mut ffi::AVBufferRef = ptr::null_mut();
        // SAFETY: `buf` is a valid out-pointer; null device name and options ask for the default device.
        let ret =
            unsafe { ffi::av_hwdevice_ctx_create(&mut buf, ty, ptr::null(), ptr::null_mut(), 0) };
        if ret < 0 || buf.is_null() {
            return Err(AvError(ffmpeg::Error::from(ret)).into());
        }
        Ok(HwDevice { buf, kind })
    }

    pub fn kind(&self) -> HwAccel {
        self.kind
    }
}

impl Drop for HwDevice {
    fn drop(&mut self) {
        // SAFETY: `buf` is the reference we own; av_buffer_unref nulls it.
        unsafe { ffi::av_buffer_unref(&mut self.buf) };
    }
}

/// Gives the decoder context (not yet opened) its own reference to the device.
pub fn attach(
    ctx: &mut ffmpeg::codec::context::Context,
    dev: &HwDevice,
) -> Result<(), ffmpeg::Error> {
    // SAFETY: `ctx` is a live codec context; av_buffer_ref returns a new reference (or null),
    // which the context owns and releases when it is freed.
    unsafe {
        let r = ffi::av_buffer_ref(dev.buf);
        if r.is_null() {
            return Err(ffmpeg::Error::Other {
                errno: libc::ENOMEM,
            });
        }
        (*ctx.as_mut_ptr()).hw_device_ctx = r;
    }
    Ok(())
}

/// True when `f` lives in device memory (its format is a hardware surface format).
pub fn is_hw_frame(f: &frame::Video) -> bool {
    // SAFETY: reading the `hw_frames_ctx` field of a live frame.
    unsafe { !(*f.as_ptr()).hw_frames_ctx.is_null() }
}

/// Copies a hardware frame to system memory, keeping its timestamps.
pub fn download(hw: &frame::Video) -> Result<frame::Video, ffmpeg::Error> {
    let mut sw = frame::Video::empty();
    // SAFETY: both frames are live; av_hwframe_transfer_data allocates `sw`'s buffers.
    let ret = unsafe { ffi::av_hwframe_transfer_data(sw.as_mut_ptr(), hw.as_ptr(), 0) };
    if ret < 0 {
        return Err(ffmpeg::Error::from(ret));
    }
    // SAFETY: copies the timestamp and colour metadata fields between two live frames.
    unsafe { ffi::av_frame_copy_props(sw.as_mut_ptr(), hw.as_ptr()) };
    Ok(sw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names() {
        assert_eq!("NVDEC".parse::<HwAccel>().unwrap(), HwAccel::Cuda);
        assert_eq!("auto".parse::<HwAccel>().unwrap().candidates().len(), 4);
        assert!("none".parse::<HwAccel>().unwrap().candidates().is_empty());
        assert!("metal".parse::<HwAccel>().is_err());
    }
}
