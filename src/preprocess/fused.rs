//! The fused kernel: planar/semi-planar YUV 4:2:0 straight to the normalised NCHW slot.
//!
//! For every destination pixel it bilinearly samples luma and chroma at the source
//! positions OpenCV's INTER_LINEAR would use (chroma taken from the 2×2 block each luma tap
//! falls in, as FFmpeg's unscaled converter does), converts that one sample to RGB with the
//! matrix and range the decoder reported, and writes R, G, B scaled into the slot. Only the
//! sampled source pixels are touched: no full-frame RGB buffer, no allocation per frame.
//! Interpolating before the (affine) colour conversion instead of after differs from the
//! exact path only where a colour clips, by a fraction of a level elsewhere.

use super::PreprocessSpec;

/// The YUV → RGB matrix family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Matrix {
    Bt601,
    Bt709,
}

/// How the decoder's samples map to 0..255.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// Y in 16..235, chroma in 16..240 ("TV", MPEG).
    Limited,
    /// 0..255 ("PC", JPEG).
    Full,
}

/// Chroma layout of a 4:2:0 picture.
#[derive(Debug, Clone, Copy)]
pub enum Chroma<'a> {
    /// Separate U and V planes (YUV420P), each with its own stride.
    Planar { u: &'a [u8], v: &'a [u8], stride: usize },
    /// One interleaved UV plane (NV12).
    Interleaved { uv: &'a [u8], stride: usize },
}

/// A borrowed 8-bit YUV 4:2:0 picture.
#[derive(Debug, Clone, Copy)]
pub struct YuvImage<'a> {
    pub y: &'a [u8],
    pub y_stride: usize,
    pub chroma: Chroma<'a>,
    pub width: u32,
    pub height: u32,
    pub matrix: Matrix,
    pub range: Range,
}

/// Coefficients turning (Y, U, V) samples into 0..255 RGB: R = ky*(Y-oy) + rv*(V-128), etc.
#[derive(Debug, Clone, Copy)]
struct Coefficients {
    oy: f32,
    ky: f32,
    rv: f32,
    gu: f32,
    gv: f32,
    bu: f32,
}

impl Coefficients {
    fn new(m: Matrix, r: Range) -> Self {
        let (kr, kb) = match m {
            Matrix::Bt601 => (0.299f32, 0.114f32),
            Matrix::Bt709 => (0.2126, 0.0722),
        };
        let kg = 1.0 - kr - kb;
        let (oy, ky, kc) = match r {
            Range::Limited => (16.0, 255.0 / 219.0, 255.0 / 224.0),
            Range::Full => (0.0, 1.0, 1.0),
        };
        Coefficients {
            oy,
            ky,
            rv: 2.0 * (1.0 - kr) * kc,
            gu: -2.0 * (1.0 - kb) * kb / kg * kc,
            gv: -2.0 * (1.0 - kr) * kr / kg * kc,
            bu: 2.0 * (1.0 - kb) * kc,
        }
    }
}

/// Sampling positions for one axis, OpenCV INTER_LINEAR style (same as the exact kernel).
#[derive(Debug, Clone)]
struct Taps {
    i0: Vec<u32>,
    i1: Vec<u32>,
    w1: Vec<f32>,
}

impl Taps {
    fn new(src: u32, dst: u32) -> Self {
        let scale = src as f64 / dst as f64;
        let last = src as i64 - 1;
        let mut t = Taps { i0: Vec::with_capacity(dst as usize), i1: Vec::with_capacity(dst as usize), w1: Vec::with_capacity(dst as usize) };
        for d in 0..dst {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let s = f.floor() as i64;
            let (mut s0, mut frac) = (s, f - s as f32);
            if s0 < 0 {
                s0 = 0;
                frac = 0.0;
            }
            if s0 >= last {
                s0 = last;
                frac = 0.0;
            }
            t.i0.push(s0 as u32);
            t.i1.push((s0 + 1).min(last) as u32);
            t.w1.push(frac);
        }
        t
    }
}

/// Weight scale of the fixed-point passes: 8 fractional bits.
const WBITS: u32 = 8;
const WONE: u32 = 1 << WBITS;

/// A fused-kernel plan for one source size; reuse it for every frame of that size.
///
/// Per destination row the kernel first blends the two source rows vertically across the
/// full width (contiguous, vectorised, 8-bit weights, results kept as 16-bit fixed point),
/// then samples the blended rows horizontally at the destination columns, then converts and
/// scales a whole row of pixels at once in f32 (vectorised).
#[derive(Debug, Clone)]
pub struct FusedResizer {
    spec: PreprocessSpec,
    src_w: u32,
    src_h: u32,
    ys: Taps,
    /// Per destination column: luma index of the left tap, and the right tap's weight (0..=256).
    lx: Vec<u32>,
    lx1: Vec<u32>,
    lw: Vec<u32>,
    /// Chroma index of each luma tap (x / 2).
    cx0: Vec<u32>,
    cx1: Vec<u32>,
    /// Vertical weights (0..=256) per destination row.
    vw: Vec<u32>,
}

/// Scratch rows for one run.
struct Rows {
    y: Vec<u16>,
    u: Vec<u16>,
    v: Vec<u16>,
    fy: Vec<f32>,
    fu: Vec<f32>,
    fv: Vec<f32>,
}

#[inline(always)]
fn blend_rows(a: &[u8], b: &[u8], w: u32, out: &mut [u16]) {
    // out = a * (256 - w) + b * w, exact in u16 (max 255 * 256).
    let (wa, wb) = ((WONE - w) as u16, w as u16);
    for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
        *o = p as u16 * wa + q as u16 * wb;
    }
}

#[inline(always)]
fn blend_rows_interleaved(a: &[u8], b: &[u8], w: u32, u: &mut [u16], v: &mut [u16]) {
    let (wa, wb) = ((WONE - w) as u16, w as u16);
    for (i, (uo, vo)) in u.iter_mut().zip(v.iter_mut()).enumerate() {
        *uo = a[2 * i] as u16 * wa + b[2 * i] as u16 * wb;
        *vo = a[2 * i + 1] as u16 * wa + b[2 * i + 1] as u16 * wb;
    }
}

impl FusedResizer {
    pub fn new(spec: PreprocessSpec, src_w: u32, src_h: u32) -> Self {
        assert!(src_w > 0 && src_h > 0 && spec.width > 0 && spec.height > 0, "image sizes must be non-zero");
        let xs = Taps::new(src_w, spec.width);
        let ys = Taps::new(src_h, spec.height);
        let q = |w: f32| ((w * WONE as f32).round() as u32).min(WONE);
        FusedResizer {
            spec,
            src_w,
            src_h,
            lx: xs.i0.clone(),
            lx1: xs.i1.clone(),
            lw: xs.w1.iter().map(|&w| q(w)).collect(),
            cx0: xs.i0.iter().map(|x| x / 2).collect(),
            cx1: xs.i1.iter().map(|x| x / 2).collect(),
            vw: ys.w1.iter().map(|&w| q(w)).collect(),
            ys,
        }
    }

    pub fn source_size(&self) -> (u32, u32) {
        (self.src_w, self.src_h)
    }

    /// Writes planar RGB f32 (`spec.slot_len()` values) for `img` into `slot`.
    ///
    /// # Panics
    /// If `img` is not the size this plan was built for, or a plane or `slot` is too short.
    pub fn run(&self, img: &YuvImage<'_>, slot: &mut [f32]) {
        assert_eq!((img.width, img.height), (self.src_w, self.src_h), "plan built for another size");
        let plane = self.spec.width as usize * self.spec.height as usize;
        assert!(slot.len() >= 3 * plane, "slot too small");
        let (ch_w, ch_h) = (img.width.div_ceil(2) as usize, img.height.div_ceil(2) as usize);
        assert!(img.y_stride >= img.width as usize && img.y.len() >= img.y_stride * (img.height as usize - 1) + img.width as usize, "luma plane too short");
        match img.chroma {
            Chroma::Planar { u, v, stride } => {
                assert!(stride >= ch_w && u.len() >= stride * (ch_h - 1) + ch_w && v.len() >= stride * (ch_h - 1) + ch_w, "chroma planes too short")
            }
            Chroma::Interleaved { uv, stride } => assert!(stride >= 2 * ch_w && uv.len() >= stride * (ch_h - 1) + 2 * ch_w, "chroma plane too short"),
        }
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                // SAFETY: the CPU supports AVX2 and FMA (checked just above).
                return unsafe { self.run_avx2(img, slot) };
            }
        }
        self.run_generic(img, slot)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, img: &YuvImage<'_>, slot: &mut [f32]) {
        self.run_generic(img, slot)
    }

    #[inline(always)]
    fn run_generic(&self, img: &YuvImage<'_>, slot: &mut [f32]) {
        let (dw, dh) = (self.spec.width as usize, self.spec.height as usize);
        let plane = dw * dh;
        let (w, cw) = (img.width as usize, img.width.div_ceil(2) as usize);
        let c = Coefficients::new(img.matrix, img.range);
        // Fold the fixed-point scales (8 bits vertical x 8 bits horizontal) and the output
        // scale into the colour coefficients.
        let fp = 1.0 / (WONE * WONE) as f32;
        let (ky, oy) = (c.ky * fp, c.ky * c.oy);
        let (rv, gu, gv, bu) = (c.rv * fp, c.gu * fp, c.gv * fp, c.bu * fp);
        let chroma_bias = 128.0 * (WONE * WONE) as f32;
        let scale = self.spec.scale;
        let mut rows = Rows { y: vec![0; w], u: vec![0; cw], v: vec![0; cw], fy: vec![0.0; dw], fu: vec![0.0; dw], fv: vec![0.0; dw] };
        let (r_plane, rest) = slot[..3 * plane].split_at_mut(plane);
        let (g_plane, b_plane) = rest.split_at_mut(plane);
        for dy in 0..dh {
            let (y0, y1, wy) = (self.ys.i0[dy] as usize, self.ys.i1[dy] as usize, self.vw[dy]);
            blend_rows(&img.y[y0 * img.y_stride..y0 * img.y_stride + w], &img.y[y1 * img.y_stride..y1 * img.y_stride + w], wy, &mut rows.y);
            let (c0, c1) = (y0 / 2, y1 / 2);
            match img.chroma {
                Chroma::Planar { u, v, stride } => {
                    blend_rows(&u[c0 * stride..c0 * stride + cw], &u[c1 * stride..c1 * stride + cw], wy, &mut rows.u);
                    blend_rows(&v[c0 * stride..c0 * stride + cw], &v[c1 * stride..c1 * stride + cw], wy, &mut rows.v);
                }
                Chroma::Interleaved { uv, stride } => {
                    blend_rows_interleaved(&uv[c0 * stride..c0 * stride + 2 * cw], &uv[c1 * stride..c1 * stride + 2 * cw], wy, &mut rows.u, &mut rows.v);
                }
            }
            // Horizontal sampling at the destination columns (Q16 results as f32).
            for x in 0..dw {
                let (a, b, wx) = (self.lx[x] as usize, self.lx1[x] as usize, self.lw[x]);
                let wa = WONE - wx;
                rows.fy[x] = (rows.y[a] as u32 * wa + rows.y[b] as u32 * wx) as f32;
                let (ca, cb) = (self.cx0[x] as usize, self.cx1[x] as usize);
                rows.fu[x] = (rows.u[ca] as u32 * wa + rows.u[cb] as u32 * wx) as f32 - chroma_bias;
                rows.fv[x] = (rows.v[ca] as u32 * wa + rows.v[cb] as u32 * wx) as f32 - chroma_bias;
            }
            let o = dy * dw;
            let (rr, gr, br) = (&mut r_plane[o..o + dw], &mut g_plane[o..o + dw], &mut b_plane[o..o + dw]);
            for x in 0..dw {
                let l = ky * rows.fy[x] - oy;
                let (u, v) = (rows.fu[x], rows.fv[x]);
                rr[x] = (l + rv * v).clamp(0.0, 255.0) * scale;
                gr[x] = (l + gu * u + gv * v).clamp(0.0, 255.0) * scale;
                br[x] = (l + bu * u).clamp(0.0, 255.0) * scale;
            }
        }
    }
}

/// Converts one YUV sample to RGB (0..255, unclamped); for tests and references.
pub fn yuv_to_rgb(y: f32, u: f32, v: f32, m: Matrix, r: Range) -> [f32; 3] {
    let c = Coefficients::new(m, r);
    let l = c.ky * (y - c.oy);
    let (u, v) = (u - 128.0, v - 128.0);
    [l + c.rv * v, l + c.gu * u + c.gv * v, l + c.bu * u]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planar<'a>(y: &'a [u8], u: &'a [u8], v: &'a [u8], w: u32, h: u32, m: Matrix, r: Range) -> YuvImage<'a> {
        YuvImage { y, y_stride: w as usize, chroma: Chroma::Planar { u, v, stride: w.div_ceil(2) as usize }, width: w, height: h, matrix: m, range: r }
    }

    #[test]
    fn known_colours_convert_correctly() {
        // BT.601 limited: (81, 90, 240) is red; (145, 54, 34) is green; (16,128,128) black; (235,128,128) white.
        let red = yuv_to_rgb(81.0, 90.0, 240.0, Matrix::Bt601, Range::Limited);
        assert!((red[0] - 255.0).abs() < 2.0 && red[1].abs() < 2.0 && red[2].abs() < 2.0, "{red:?}");
        let green = yuv_to_rgb(145.0, 54.0, 34.0, Matrix::Bt601, Range::Limited);
        assert!(green[0].abs() < 2.0 && (green[1] - 255.0).abs() < 2.0 && green[2].abs() < 2.0, "{green:?}");
        assert_eq!(yuv_to_rgb(235.0, 128.0, 128.0, Matrix::Bt709, Range::Limited).map(f32::round), [255.0; 3]);
        assert_eq!(yuv_to_rgb(16.0, 128.0, 128.0, Matrix::Bt601, Range::Limited).map(f32::round), [0.0; 3]);
        assert_eq!(yuv_to_rgb(255.0, 128.0, 128.0, Matrix::Bt601, Range::Full).map(f32::round), [255.0; 3]);
        // BT.709 full-range pure blue: Y = 0.0722*255, U = 255 (Cb max), V = 128 - 0.0722/(2*(1-0.2126))*255.
        let y = 0.0722 * 255.0;
        let blue = yuv_to_rgb(y, 255.5, 128.0 - 0.0722 / (2.0 * 0.7874) * 255.0, Matrix::Bt709, Range::Full);
        assert!(blue[0].abs() < 1.0 && blue[1].abs() < 1.0 && (blue[2] - 255.0).abs() < 1.0, "{blue:?}");
    }

    #[test]
    fn flat_grey_is_flat_in_both_layouts() {
        let (w, h) = (7u32, 5u32);
        let y = vec![126u8; (w * h) as usize];
        let c = vec![128u8; (w.div_ceil(2) * h.div_ceil(2)) as usize];
        let uv = vec![128u8; (2 * w.div_ceil(2) * h.div_ceil(2)) as usize];
        let spec = PreprocessSpec { width: 4, height: 3, scale: 1.0 / 255.0 };
        let r = FusedResizer::new(spec, w, h);
        let mut a = vec![0f32; spec.slot_len()];
        let mut b = vec![0f32; spec.slot_len()];
        r.run(&planar(&y, &c, &c, w, h, Matrix::Bt601, Range::Full), &mut a);
        r.run(&YuvImage { y: &y, y_stride: w as usize, chroma: Chroma::Interleaved { uv: &uv, stride: 2 * w.div_ceil(2) as usize }, width: w, height: h, matrix: Matrix::Bt601, range: Range::Full }, &mut b);
        assert!(a.iter().all(|&v| (v - 126.0 / 255.0).abs() < 1e-6), "{a:?}");
        assert_eq!(a, b);
    }

    #[test]
    fn limited_and_full_range_differ_as_expected() {
        let (w, h) = (2u32, 2u32);
        let y = [235u8; 4];
        let c = [128u8; 1];
        let spec = PreprocessSpec { width: 1, height: 1, scale: 1.0 };
        let r = FusedResizer::new(spec, w, h);
        let mut s = vec![0f32; 3];
        let close = |s: &[f32], v: f32| s.iter().all(|x| (x - v).abs() < 1e-3);
        r.run(&planar(&y, &c, &c, w, h, Matrix::Bt601, Range::Limited), &mut s);
        assert!(close(&s, 255.0), "{s:?}");
        r.run(&planar(&y, &c, &c, w, h, Matrix::Bt601, Range::Full), &mut s);
        assert!(close(&s, 235.0), "{s:?}");
    }

    #[test]
    fn horizontal_gradient_is_interpolated_like_opencv() {
        // Luma 0, 64, 128, 192 across a 4x2 full-range grey image, downscaled to 2x1:
        // OpenCV taps at x = 0.5 and 2.5 → 32 and 160.
        let y = [0u8, 64, 128, 192, 0, 64, 128, 192];
        let c = [128u8; 2];
        let spec = PreprocessSpec { width: 2, height: 1, scale: 1.0 };
        let mut s = vec![0f32; 6];
        FusedResizer::new(spec, 4, 2).run(&planar(&y, &c, &c, 4, 2, Matrix::Bt601, Range::Full), &mut s);
        assert!((s[0] - 32.0).abs() < 1e-3 && (s[1] - 160.0).abs() < 1e-3, "{s:?}");
    }

    #[test]
    fn odd_sizes_stay_in_bounds() {
        for (w, h) in [(1u32, 1u32), (3, 1), (1, 3), (641, 359), (5, 7)] {
            let y = vec![200u8; (w * h) as usize];
            let c = vec![128u8; (w.div_ceil(2) * h.div_ceil(2)) as usize];
            let spec = PreprocessSpec::default();
            let mut s = vec![0f32; spec.slot_len()];
            FusedResizer::new(spec, w, h).run(&planar(&y, &c, &c, w, h, Matrix::Bt601, Range::Full), &mut s);
            assert!(s.iter().all(|&v| (v - 200.0 / 255.0).abs() < 1e-6), "{w}x{h}");
        }
    }
}
