//! Preprocessing: a decoded frame → one normalised NCHW f32 slot of the batch tensor.
//!
//! Two kernels: [`Resizer`] (exact, below) and [`fused::FusedResizer`] (YUV straight to the
//! tensor). The exact kernel reproduces `cv2.dnn.blobFromImage(frame, 1/255, (W, H), swapRB=True, crop=False)`:
//! a stretch resize with OpenCV's `INTER_LINEAR` on 8-bit data (11-bit fixed-point weights,
//! the SIMD path's rounding in the vertical pass), then `value * scale` as f32, planar RGB.
//! The frame arrives already in RGB order (the decoder converts to RGB24), which is what
//! `swapRB=True` does to OpenCV's BGR frames: resizing is per channel, so order is free.

pub mod fused;

/// Which kernel the preprocess stage runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernel {
    /// Bit-compatible with OpenCV: FFmpeg converts to RGB24, then OpenCV's INTER_LINEAR.
    Exact,
    /// YUV 4:2:0 (planar or NV12) sampled, converted and normalised in one pass;
    /// other pixel formats fall back to the exact path.
    #[default]
    Fused,
}

impl std::str::FromStr for Kernel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "exact" => Ok(Kernel::Exact),
            "fused" => Ok(Kernel::Fused),
            other => Err(format!("unknown preprocess kernel '{other}' (expected exact or fused)")),
        }
    }
}

/// What the model wants: the destination size and the scale applied to 0..255 values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreprocessSpec {
    pub width: u32,
    pub height: u32,
    /// Multiplies each resized 8-bit value (blobFromImage's `scalefactor`).
    pub scale: f32,
}

impl Default for PreprocessSpec {
    fn default() -> Self {
        PreprocessSpec { width: 300, height: 300, scale: 1.0 / 255.0 }
    }
}

impl PreprocessSpec {
    /// Number of f32 values in one image slot (3 × H × W).
    pub fn slot_len(&self) -> usize {
        3 * self.width as usize * self.height as usize
    }
}

/// A borrowed packed RGB24 image (rows may be padded: `stride >= 3 * width`).
#[derive(Debug, Clone, Copy)]
pub struct RgbImage<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
}

const COEF_BITS: i32 = 11;
const COEF_SCALE: f32 = (1 << COEF_BITS) as f32;

/// Sampling positions along one axis, as OpenCV's INTER_LINEAR places them: destination
/// index d samples source position (d + 0.5) * src/dst - 0.5 (computed as OpenCV does, in
/// double, then rounded to f32), split into two source indices and the second one's weight.
/// Shared by both kernels.
#[derive(Debug, Clone)]
pub(crate) struct LinearTaps {
    pub(crate) i0: Vec<u32>,
    pub(crate) i1: Vec<u32>,
    pub(crate) frac: Vec<f32>,
}

impl LinearTaps {
    /// `clamp_weights`: OpenCV zeroes the fraction where a tap leaves the image (its
    /// horizontal pass); without it only the indices are clamped (its vertical pass).
    pub(crate) fn opencv(src: u32, dst: u32, clamp_weights: bool) -> Self {
        let scale = 1.0 / (dst as f64 / src as f64);
        let n = dst as usize;
        let mut t = LinearTaps { i0: Vec::with_capacity(n), i1: Vec::with_capacity(n), frac: Vec::with_capacity(n) };
        let last = src as i64 - 1;
        for d in 0..dst {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut frac = f - s as f32;
            if clamp_weights {
                if s < 0 {
                    s = 0;
                    frac = 0.0;
                }
                if s >= last {
                    s = last;
                    frac = 0.0;
                }
            }
            t.i0.push(s.clamp(0, last) as u32);
            t.i1.push((s + 1).clamp(0, last) as u32);
            t.frac.push(frac);
        }
        t
    }
}

/// One axis of the exact kernel: source indices and 11-bit fixed-point weights.
#[derive(Debug, Clone)]
struct AxisTaps {
    src0: Vec<u32>,
    src1: Vec<u32>,
    w0: Vec<i32>,
    w1: Vec<i32>,
}

impl AxisTaps {
    /// OpenCV `resize` INTER_LINEAR coefficient table for one axis (`saturate_cast<short>`
    /// of the float weights, i.e. round half to even).
    fn opencv_linear(src: u32, dst: u32, clamp_weights: bool) -> Self {
        let t = LinearTaps::opencv(src, dst, clamp_weights);
        AxisTaps {
            w0: t.frac.iter().map(|f| ((1.0 - f) * COEF_SCALE).round_ties_even() as i32).collect(),
            w1: t.frac.iter().map(|f| (f * COEF_SCALE).round_ties_even() as i32).collect(),
            src0: t.i0,
            src1: t.i1,
        }
    }
}

/// A resize plan for one (source size → destination size) pair, plus scratch rows.
/// Build it once per input resolution and reuse it for every frame.
#[derive(Debug, Clone)]
pub struct Resizer {
    spec: PreprocessSpec,
    src_w: u32,
    src_h: u32,
    xs: AxisTaps,
    ys: AxisTaps,
    lut: [f32; 256],
    row_a: Vec<i32>,
    row_b: Vec<i32>,
    rows_held: (Option<u32>, Option<u32>),
}

impl Resizer {
    pub fn new(spec: PreprocessSpec, src_w: u32, src_h: u32) -> Self {
        assert!(src_w > 0 && src_h > 0 && spec.width > 0 && spec.height > 0, "image sizes must be non-zero");
        let mut lut = [0f32; 256];
        for (v, o) in lut.iter_mut().enumerate() {
            *o = v as f32 * spec.scale;
        }
        let row_len = 3 * spec.width as usize;
        Resizer {
            spec,
            src_w,
            src_h,
            xs: AxisTaps::opencv_linear(src_w, spec.width, true),
            ys: AxisTaps::opencv_linear(src_h, spec.height, false),
            lut,
            row_a: vec![0; row_len],
            row_b: vec![0; row_len],
            rows_held: (None, None),
        }
    }

    pub fn source_size(&self) -> (u32, u32) {
        (self.src_w, self.src_h)
    }

    pub fn spec(&self) -> &PreprocessSpec {
        &self.spec
    }

    fn hresize(xs: &AxisTaps, row: &[u8], out: &mut [i32]) {
        for (dx, o) in out.chunks_exact_mut(3).enumerate() {
            let a = 3 * xs.src0[dx] as usize;
            let b = 3 * xs.src1[dx] as usize;
            let (w0, w1) = (xs.w0[dx], xs.w1[dx]);
            o[0] = row[a] as i32 * w0 + row[b] as i32 * w1;
            o[1] = row[a + 1] as i32 * w0 + row[b + 1] as i32 * w1;
            o[2] = row[a + 2] as i32 * w0 + row[b + 2] as i32 * w1;
        }
    }

    /// Makes `row_a` hold source row `r0` and `row_b` hold `r1`, reusing rows already computed.
    fn load_rows(&mut self, img: &RgbImage<'_>, r0: u32, r1: u32) {
        let row = |r: u32| &img.data[r as usize * img.stride..r as usize * img.stride + 3 * img.width as usize];
        if self.rows_held.0 != Some(r0) {
            if self.rows_held.1 == Some(r0) {
                std::mem::swap(&mut self.row_a, &mut self.row_b);
                self.rows_held.1 = None;
            } else {
                Self::hresize(&self.xs, row(r0), &mut self.row_a);
            }
            self.rows_held.0 = Some(r0);
        }
        if self.rows_held.1 != Some(r1) {
            if r1 == r0 {
                self.row_b.copy_from_slice(&self.row_a);
            } else {
                Self::hresize(&self.xs, row(r1), &mut self.row_b);
            }
            self.rows_held.1 = Some(r1);
        }
    }

    /// Resizes `img` and writes planar RGB f32 into `slot` (`spec.slot_len()` values).
    ///
    /// # Panics
    /// If the image is not the size this plan was built for, or `slot`/`img.data` are too short.
    /// Callers build the plan from the same frame geometry, so this is a programming error.
    pub fn run(&mut self, img: &RgbImage<'_>, slot: &mut [f32]) {
        assert_eq!((img.width, img.height), (self.src_w, self.src_h), "resizer built for another size");
        assert!(img.stride >= 3 * img.width as usize && img.data.len() >= img.stride * (img.height as usize - 1) + 3 * img.width as usize);
        let (dw, dh) = (self.spec.width as usize, self.spec.height as usize);
        assert!(slot.len() >= 3 * dw * dh, "slot too small");
        self.rows_held = (None, None);
        let plane = dw * dh;
        let width = 3 * dw;
        // OpenCV's vectorised vertical pass covers whole 8-lane groups; the tail is scalar.
        let simd_end = width - width % 8;
        for dy in 0..dh {
            self.load_rows(img, self.ys.src0[dy], self.ys.src1[dy]);
            let (b0, b1) = (self.ys.w0[dy], self.ys.w1[dy]);
            let (ra, rb) = (&self.row_a, &self.row_b);
            let base = dy * dw;
            for x in 0..width {
                let v = if x < simd_end {
                    // v_mul_hi on (S >> 4) as i16, saturating add, then rounding shift by 2.
                    let s0 = ((ra[x] >> 4).clamp(i16::MIN as i32, i16::MAX as i32) * b0) >> 16;
                    let s1 = ((rb[x] >> 4).clamp(i16::MIN as i32, i16::MAX as i32) * b1) >> 16;
                    let s = (s0 + s1).clamp(i16::MIN as i32, i16::MAX as i32);
                    ((s + 2) >> 2).clamp(0, 255)
                } else {
                    ((ra[x] * b0 + rb[x] * b1 + (1 << (2 * COEF_BITS - 1))) >> (2 * COEF_BITS)).clamp(0, 255)
                };
                let (px, c) = (x / 3, x % 3);
                slot[c * plane + base + px] = self.lut[v as usize];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(w: u32, h: u32) -> PreprocessSpec {
        PreprocessSpec { width: w, height: h, scale: 1.0 / 255.0 }
    }

    #[test]
    fn two_by_one_to_four_by_one_matches_hand_computation() {
        // Source row RGB: [0,0,0] [200,100,40]. Upscaling 2 → 4 horizontally:
        // fx = (d + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25 → taps (0,0 w 1), (0,1 w .75/.25),
        // (0,1 w .25/.75), (1 clamped, w 1). Red: 0, 50, 150, 200.
        let data = [0u8, 0, 0, 200, 100, 40];
        let img = RgbImage { data: &data, width: 2, height: 1, stride: 6 };
        let mut r = Resizer::new(spec(4, 1), 2, 1);
        let mut slot = vec![0f32; 12];
        r.run(&img, &mut slot);
        let red: Vec<u8> = slot[0..4].iter().map(|v| (v * 255.0).round() as u8).collect();
        let green: Vec<u8> = slot[4..8].iter().map(|v| (v * 255.0).round() as u8).collect();
        let blue: Vec<u8> = slot[8..12].iter().map(|v| (v * 255.0).round() as u8).collect();
        assert_eq!(red, vec![0, 50, 150, 200]);
        assert_eq!(green, vec![0, 25, 75, 100]);
        assert_eq!(blue, vec![0, 10, 30, 40]);
    }

    #[test]
    fn downscale_by_two_averages_neighbours() {
        // 4x2 → 2x1: fx = 0.5, 2.5; fy = 0.5: each output is the mean of a 2x2 block.
        let mut data = Vec::new();
        for v in [10u8, 20, 30, 40, 50, 60, 70, 80] {
            data.extend_from_slice(&[v, v, v]);
        }
        let img = RgbImage { data: &data, width: 4, height: 2, stride: 12 };
        let mut r = Resizer::new(spec(2, 1), 4, 2);
        let mut slot = vec![0f32; 6];
        r.run(&img, &mut slot);
        let red: Vec<u8> = slot[0..2].iter().map(|v| (v * 255.0).round() as u8).collect();
        assert_eq!(red, vec![35, 55]);
    }

    #[test]
    fn constant_image_stays_constant_and_is_scaled() {
        let data = vec![77u8; 13 * 3 * 7];
        let img = RgbImage { data: &data, width: 13, height: 7, stride: 39 };
        let mut r = Resizer::new(PreprocessSpec::default(), 13, 7);
        let mut slot = vec![0f32; PreprocessSpec::default().slot_len()];
        r.run(&img, &mut slot);
        assert!(slot.iter().all(|&v| v == 77.0f32 * (1.0 / 255.0)));
    }

    #[test]
    fn planar_rgb_layout_and_padded_stride() {
        // 1x1 source with a padded stride: every output pixel equals it, channels planar.
        let data = [9u8, 99, 199, 0, 0, 0, 0, 0];
        let img = RgbImage { data: &data, width: 1, height: 1, stride: 8 };
        let mut r = Resizer::new(spec(2, 2), 1, 1);
        let mut slot = vec![0f32; 12];
        r.run(&img, &mut slot);
        let u: Vec<u8> = slot.iter().map(|v| (v * 255.0).round() as u8).collect();
        assert_eq!(u, vec![9, 9, 9, 9, 99, 99, 99, 99, 199, 199, 199, 199]);
    }

    #[test]
    fn opencv_coefficients_for_768_to_300() {
        let t = AxisTaps::opencv_linear(768, 300, true);
        // fx(0) = 0.5 * 2.56 - 0.5 = 0.78 → src 0/1, weights round(0.22*2048)=451, round(0.78*2048)=1597.
        assert_eq!((t.src0[0], t.src1[0], t.w0[0], t.w1[0]), (0, 1, 451, 1597));
        assert!(t.w0.iter().zip(&t.w1).all(|(a, b)| a + b == 2048));
        assert!(t.src1.iter().all(|&s| s < 768));
    }
}
