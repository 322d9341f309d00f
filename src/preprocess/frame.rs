//! A decoded FFmpeg picture → one slot of the model input, with the kernel the user chose:
//! the fused kernel straight from YUV 4:2:0 (any spec, letterboxed too), otherwise (or for a
//! picture in another pixel format) FFmpeg's RGB conversion followed by the exact kernel. Plans are rebuilt only when the frame size changes.

use ffmpeg_next::{color, format::Pixel, frame};

use super::{
    fused::{Chroma, FusedResizer, Matrix, Range, YuvImage},
    Kernel, PreprocessSpec, Resizer, RgbImage, SlotMut,
};
use crate::av::RgbConverter;

pub use crate::error::FrameError;

pub struct FramePreprocessor {
    kernel: Kernel,
    spec: PreprocessSpec,
    rgb: RgbConverter,
    exact: Option<Resizer>,
    fused: Option<FusedResizer>,
}

impl FramePreprocessor {
    pub fn new(kernel: Kernel, spec: PreprocessSpec) -> Self {
        FramePreprocessor {
            kernel,
            spec,
            rgb: RgbConverter::default(),
            exact: None,
            fused: None,
        }
    }

    /// Writes the model input for `picture` into `slot` (`spec.slot_len()` values).
    pub fn write(&mut self, picture: &frame::Video, slot: SlotMut<'_>) -> Result<(), FrameError> {
        let (w, h) = (picture.width(), picture.height());
        if self.kernel == Kernel::Fused {
            if let Some(yuv) = yuv_image(picture) {
                let plan = match &mut self.fused {
                    Some(f) if f.source_size() == (w, h) => f,
                    slot => slot.insert(FusedResizer::new(self.spec, w, h)?),
                };
                return Ok(plan.run_into(&yuv, slot)?);
            }
        }
        let (data, stride) = self.rgb.convert(picture).map_err(FrameError::Convert)?;
        let plan = match &mut self.exact {
            Some(r) if r.source_size() == (w, h) => r,
            slot => slot.insert(Resizer::new(self.spec, w, h)?),
        };
        let img = RgbImage {
            data,
            width: w,
            height: h,
            stride,
        };
        Ok(plan.run_into(&img, slot)?)
    }
}

/// A view of a decoded picture the fused kernel can read, if its format is 8-bit 4:2:0.
pub fn yuv_image(picture: &frame::Video) -> Option<YuvImage<'_>> {
    let (chroma, full) = match picture.format() {
        Pixel::YUV420P | Pixel::YUVJ420P => (
            Chroma::Planar {
                u: picture.data(1),
                v: picture.data(2),
                stride: picture.stride(1),
            },
            picture.format() == Pixel::YUVJ420P,
        ),
        Pixel::NV12 => (
            Chroma::Interleaved {
                uv: picture.data(1),
                stride: picture.stride(1),
            },
            false,
        ),
        _ => return None,
    };
    let range = if full || picture.color_range() == color::Range::JPEG {
        Range::Full
    } else {
        Range::Limited
    };
    let matrix = if picture.color_space() == color::Space::BT709 {
        Matrix::Bt709
    } else {
        Matrix::Bt601
    };
    Some(YuvImage {
        y: picture.data(0),
        y_stride: picture.stride(0),
        chroma,
        width: picture.width(),
        height: picture.height(),
        matrix,
        range,
    })
}
