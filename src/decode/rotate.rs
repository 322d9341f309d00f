//! Display rotation: containers (phones especially) store pictures sideways plus a display
//! matrix. Detection must run on, and boxes must land on, the picture as displayed, so frames
//! are turned upright here, right after decoding.

use ffmpeg::{format::Pixel, frame, software::scaling};

use crate::av::Scaler;
use ffmpeg_next as ffmpeg;

/// Clockwise quarter turns needed to show the picture upright.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rotation {
    #[default]
    None,
    Cw90,
    Cw180,
    Cw270,
}

impl Rotation {
    /// From the display matrix's counter-clockwise angle (as `av_display_rotation_get` gives).
    pub fn from_ccw_degrees(angle: f64) -> Self {
        if !angle.is_finite() {
            return Rotation::None;
        }
        // FFmpeg's own autorotate uses theta = -angle, rounded to the nearest quarter turn.
        let theta = (-angle).rem_euclid(360.0);
        match ((theta / 90.0).round() as i64).rem_euclid(4) {
            1 => Rotation::Cw90,
            2 => Rotation::Cw180,
            3 => Rotation::Cw270,
            _ => Rotation::None,
        }
    }

    /// The displayed size of a `w × h` stored picture.
    pub fn display_size(self, w: u32, h: u32) -> (u32, u32) {
        match self {
            Rotation::Cw90 | Rotation::Cw270 => (h, w),
            _ => (w, h),
        }
    }

    /// Maps plane coordinates of the stored picture to the displayed one:
    /// returns the source (x, y) for destination (x, y) in a plane of stored size `sw × sh`.
    fn source_of(self, dx: usize, dy: usize, sw: usize, sh: usize) -> (usize, usize) {
        match self {
            Rotation::None => (dx, dy),
            Rotation::Cw90 => (dy, sh - 1 - dx),
            Rotation::Cw180 => (sw - 1 - dx, sh - 1 - dy),
            Rotation::Cw270 => (sw - 1 - dy, dx),
        }
    }
}

/// Reads a stream's display matrix, if any.
pub fn stream_rotation(stream: &ffmpeg::format::stream::Stream<'_>) -> Rotation {
    for sd in stream.side_data() {
        if sd.kind() == ffmpeg::codec::packet::side_data::Type::DisplayMatrix
            && sd.data().len() >= 36
        {
            let m: Vec<i32> = sd.data()[..36]
                .chunks_exact(4)
                .map(|c| i32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            // SAFETY: `m` holds the 9 i32 values av_display_rotation_get reads.
            let angle = unsafe { ffmpeg::ffi::av_display_rotation_get(m.as_ptr()) };
            return Rotation::from_ccw_degrees(angle);
        }
    }
    Rotation::None
}

/// Turns pictures upright. Formats other than 8-bit 4:2:0 are converted to YUV420P first.
pub struct Rotator {
    to_yuv: Scaler,
}

impl Default for Rotator {
    fn default() -> Self {
        Rotator {
            to_yuv: Scaler::new(Pixel::YUV420P, None, scaling::Flags::BICUBIC),
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn rotate_plane(
    src: &[u8],
    s_stride: usize,
    sw: usize,
    sh: usize,
    dst: &mut [u8],
    d_stride: usize,
    r: Rotation,
    px: usize,
) {
    let (dw, dh) = match r {
        Rotation::Cw90 | Rotation::Cw270 => (sh, sw),
        _ => (sw, sh),
    };
    for dy in 0..dh {
        for dx in 0..dw {
            let (sx, sy) = r.source_of(dx, dy, sw, sh);
            let (s, d) = (sy * s_stride + sx * px, dy * d_stride + dx * px);
            dst[d..d + px].copy_from_slice(&src[s..s + px]);
        }
    }
}

impl Rotator {
    pub fn apply(
        &mut self,
        picture: frame::Video,
        r: Rotation,
    ) -> Result<frame::Video, ffmpeg::Error> {
        if r == Rotation::None {
            return Ok(picture);
        }
        let (w, h) = (picture.width(), picture.height());
        let src = match picture.format() {
            Pixel::YUV420P | Pixel::YUVJ420P | Pixel::NV12 => picture,
            _ => {
                let mut yuv = frame::Video::empty();
                self.to_yuv.run(&picture, &mut yuv)?;
                yuv.set_pts(picture.pts());
                yuv.set_color_range(picture.color_range());
                yuv.set_color_space(picture.color_space());
                yuv
            }
        };
        let (dw, dh) = r.display_size(w, h);
        let mut out = frame::Video::new(src.format(), dw, dh);
        let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
        let planes: &[(usize, usize, usize, usize)] = if src.format() == Pixel::NV12 {
            &[(0, w as usize, h as usize, 1), (1, cw, ch, 2)]
        } else {
            &[
                (0, w as usize, h as usize, 1),
                (1, cw, ch, 1),
                (2, cw, ch, 1),
            ]
        };
        for &(p, pw, ph, px) in planes {
            let d_stride = out.stride(p);
            rotate_plane(
                src.data(p),
                src.stride(p),
                pw,
                ph,
                out.data_mut(p),
                d_stride,
                r,
                px,
            );
        }
        out.set_pts(src.pts());
        // SAFETY: copies timestamps and colour metadata between two live frames.
        unsafe { ffmpeg::ffi::av_frame_copy_props(out.as_mut_ptr(), src.as_ptr()) };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angles_map_to_quarter_turns() {
        assert_eq!(Rotation::from_ccw_degrees(0.0), Rotation::None);
        assert_eq!(Rotation::from_ccw_degrees(-90.0), Rotation::Cw90);
        assert_eq!(Rotation::from_ccw_degrees(90.0), Rotation::Cw270);
        assert_eq!(Rotation::from_ccw_degrees(180.0), Rotation::Cw180);
        assert_eq!(Rotation::from_ccw_degrees(-180.0), Rotation::Cw180);
        assert_eq!(Rotation::from_ccw_degrees(f64::NAN), Rotation::None);
        assert_eq!(Rotation::Cw90.display_size(640, 360), (360, 640));
    }

    #[test]
    fn rotating_a_plane_moves_the_corner_pixel() {
        // 3x2 plane, values = index; rotated 90° clockwise it is 2x3 with the bottom-left
        // source pixel (3) at the top-left.
        let src = [0u8, 1, 2, 3, 4, 5];
        let mut dst = [9u8; 6];
        rotate_plane(&src, 3, 3, 2, &mut dst, 2, Rotation::Cw90, 1);
        assert_eq!(dst, [3, 0, 4, 1, 5, 2]);
        rotate_plane(&src, 3, 3, 2, &mut dst, 3, Rotation::Cw180, 1);
        assert_eq!(dst, [5, 4, 3, 2, 1, 0]);
        rotate_plane(&src, 3, 3, 2, &mut dst, 2, Rotation::Cw270, 1);
        assert_eq!(dst, [2, 5, 1, 4, 0, 3]);
    }
}
