//! The fused kernel: planar/semi-planar YUV 4:2:0 straight to the normalised model input (any
//! layout; letterboxed into its placement, the padding around it, when the spec says so).
//!
//! For every destination pixel it bilinearly samples luma and chroma at the source
//! positions OpenCV's INTER_LINEAR would use (chroma taken from the 2×2 block each luma tap
//! falls in, as FFmpeg's unscaled converter does), converts that one sample to RGB with the
//! matrix and range the decoder reported, and writes R, G, B scaled into the slot. Only the
//! sampled source pixels are touched: no full-frame RGB buffer, no allocation per frame.
//! Interpolating before the (affine) colour conversion instead of after differs from the
//! exact path only where a colour clips, by a fraction of a level elsewhere.

use super::{GeometryError, Layout, LinearTaps, Placement, PreprocessSpec, SlotMut};

mod avx512;

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
    Planar {
        u: &'a [u8],
        v: &'a [u8],
        stride: usize,
    },
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

impl YuvImage<'_> {
    /// Checks that every plane holds the rows its size and stride promise.
    fn check_planes(&self) -> Result<(), GeometryError> {
        let (w, h) = (self.width as usize, self.height as usize);
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let fits = |len: usize, stride: usize, row: usize, rows: usize| {
            rows > 0 && stride >= row && len >= stride * (rows - 1) + row
        };
        if !fits(self.y.len(), self.y_stride, w, h) {
            return Err(GeometryError::PlaneTooShort("luma plane"));
        }
        let chroma_ok = match self.chroma {
            Chroma::Planar { u, v, stride } => {
                fits(u.len(), stride, cw, ch) && fits(v.len(), stride, cw, ch)
            }
            Chroma::Interleaved { uv, stride } => fits(uv.len(), stride, 2 * cw, ch),
        };
        if !chroma_ok {
            return Err(GeometryError::PlaneTooShort("chroma plane"));
        }
        Ok(())
    }
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

/// Vertical weights have 7 fractional bits, so a blended 8-bit sample (≤ 255 × 128) fits an
/// i16 lane; horizontal weights have 8.
const VBITS: u32 = 7;
const VONE: u32 = 1 << VBITS;
const HBITS: u32 = 8;
const HONE: u32 = 1 << HBITS;

/// A fused-kernel plan for one source size; reuse it for every frame of that size.
///
/// Per destination row the kernel first blends the two source rows vertically across the
/// full width (contiguous, vectorised, fixed point), then samples the blended rows at the
/// destination columns (AVX2 gathers where available) and converts and scales eight pixels
/// at a time in f32. Scratch rows live in the plan: nothing is allocated per frame.
#[derive(Debug, Clone)]
pub struct FusedResizer {
    spec: PreprocessSpec,
    /// Where the picture lands in the input: all of it, or letterboxed inside it.
    place: Placement,
    src_w: u32,
    src_h: u32,
    ys: LinearTaps,
    /// Per destination column: luma index of the left tap and the (left, right) weights, summing to 256.
    lx: Vec<i32>,
    lw: Vec<[i16; 2]>,
    /// Per destination column: chroma index of the left tap and its weights (the right tap is
    /// index + 1; when both luma taps fall in one chroma sample the right weight is 0).
    cx: Vec<i32>,
    cw: Vec<[i16; 2]>,
    /// Vertical weight (0..=128) of the second row, per destination row.
    vw: Vec<u16>,
    /// Where the AVX-512 sampler reads each block's taps (`None`: they spread too wide).
    perm: Option<avx512::PermTables>,
    /// Scratch: vertically blended rows, padded so that a pair load at the last sample and
    /// the AVX-512 sampler's 64-sample windows stay in bounds.
    y_row: Vec<u16>,
    u_row: Vec<u16>,
    v_row: Vec<u16>,
    /// The widest sampler to use where the CPU has it (tests lower it to compare the paths).
    simd: Simd,
    /// Scratch: one destination row as 0..255 R, G, B (layouts other than planar RGB f32).
    rgb_rows: Vec<f32>,
}

/// The sampler paths, narrowest first; each writes what it covers bit-identically to the
/// next narrower SIMD path, and within 1e-5 of the scalar one (which does not fuse).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Simd {
    Scalar,
    Avx2,
    Avx512,
}

#[inline(always)]
fn blend_rows(a: &[u8], b: &[u8], w: u16, out: &mut [u16]) {
    // out = a * (128 - w) + b * w, at most 255 * 128: fits i16.
    let wa = VONE as u16 - w;
    for ((o, &p), &q) in out.iter_mut().zip(a).zip(b) {
        *o = p as u16 * wa + q as u16 * w;
    }
}

#[inline(always)]
fn blend_rows_interleaved(a: &[u8], b: &[u8], w: u16, u: &mut [u16], v: &mut [u16]) {
    let wa = VONE as u16 - w;
    for (i, (uo, vo)) in u.iter_mut().zip(v.iter_mut()).enumerate() {
        *uo = a[2 * i] as u16 * wa + b[2 * i] as u16 * w;
        *vo = a[2 * i + 1] as u16 * wa + b[2 * i + 1] as u16 * w;
    }
}

/// Colour coefficients folded with the fixed-point scales and the output scale.
#[derive(Debug, Clone, Copy)]
struct Folded {
    ky: f32,
    oy: f32,
    rv: f32,
    gu: f32,
    gv: f32,
    bu: f32,
    bias: f32,
    scale: f32,
}

impl Folded {
    fn new(m: Matrix, r: Range, scale: f32) -> Self {
        let c = Coefficients::new(m, r);
        let fp = 1.0 / (VONE * HONE) as f32;
        Folded {
            ky: c.ky * fp,
            oy: c.ky * c.oy,
            rv: c.rv * fp,
            gu: c.gu * fp,
            gv: c.gv * fp,
            bu: c.bu * fp,
            bias: 128.0 * (VONE * HONE) as f32,
            scale,
        }
    }

    #[inline(always)]
    fn rgb(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let (u, v) = (u - self.bias, v - self.bias);
        let l = self.ky * y - self.oy;
        [
            (l + self.rv * v).clamp(0.0, 255.0) * self.scale,
            (l + self.gu * u + self.gv * v).clamp(0.0, 255.0) * self.scale,
            (l + self.bu * u).clamp(0.0, 255.0) * self.scale,
        ]
    }
}

impl FusedResizer {
    pub fn new(spec: PreprocessSpec, src_w: u32, src_h: u32) -> Result<Self, GeometryError> {
        GeometryError::check_sizes(&spec, src_w, src_h)?;
        let place = spec.placement(src_w, src_h);
        let xs = LinearTaps::opencv(src_w, place.width, true);
        let ys = LinearTaps::opencv(src_h, place.height, true);
        let hq = |w: f32| ((w * HONE as f32).round() as i16).min(HONE as i16);
        let mut lw = Vec::new();
        let mut cx = Vec::new();
        let mut cw = Vec::new();
        for i in 0..xs.i0.len() {
            let b = hq(xs.frac[i]);
            let a = HONE as i16 - b;
            lw.push([a, b]);
            let (c0, c1) = (xs.i0[i] / 2, xs.i1[i] / 2);
            cx.push(c0 as i32);
            cw.push(if c1 == c0 { [HONE as i16, 0] } else { [a, b] });
        }
        let (cwid, w) = (src_w.div_ceil(2) as usize, src_w as usize);
        let lx: Vec<i32> = xs.i0.iter().map(|&x| x as i32).collect();
        let pad = avx512::WINDOW;
        Ok(FusedResizer {
            perm: avx512::PermTables::new(&lx, &cx),
            spec,
            place,
            src_w,
            src_h,
            lx,
            lw,
            cx,
            cw,
            vw: ys
                .frac
                .iter()
                .map(|&w| ((w * VONE as f32).round() as u16).min(VONE as u16))
                .collect(),
            ys,
            y_row: vec![0; w + pad],
            u_row: vec![0; cwid + pad],
            v_row: vec![0; cwid + pad],
            simd: Simd::Avx512,
            rgb_rows: Vec::new(),
        })
    }

    pub fn source_size(&self) -> (u32, u32) {
        (self.src_w, self.src_h)
    }

    /// Writes planar RGB f32 (`spec.slot_len()` values) for `img` into `slot`. A picture of
    /// another size than the plan's, or planes shorter than its geometry, are an error.
    pub fn run(&mut self, img: &YuvImage<'_>, slot: &mut [f32]) -> Result<(), GeometryError> {
        self.run_into(img, SlotMut::F32(slot))
    }

    /// Writes the model input for `img` into `slot`, in the spec's layout, element type, channel
    /// order, mean and scale. Planar RGB f32 without a mean is written straight into the
    /// planes; anything else goes through one RGB row at a time.
    pub fn run_into(&mut self, img: &YuvImage<'_>, slot: SlotMut<'_>) -> Result<(), GeometryError> {
        GeometryError::check_same((self.src_w, self.src_h), (img.width, img.height))?;
        let len = match &slot {
            SlotMut::F32(s) => s.len(),
            SlotMut::U8(s) => s.len(),
        };
        GeometryError::check_slot(self.spec.slot_len(), len)?;
        img.check_planes()?;
        let sp = &self.spec;
        let direct = sp.layout == Layout::Nchw && sp.swap_rb && sp.mean == [0.0; 3];
        match slot {
            SlotMut::F32(s) if direct => self.run_planar(img, s),
            mut other => self.run_rows(img, &mut other),
        }
        Ok(())
    }

    /// The widest sampler this CPU runs, up to `self.simd`.
    fn simd(&self) -> Simd {
        #[cfg(target_arch = "x86_64")]
        {
            let avx2 = std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma");
            if !avx2 {
                return Simd::Scalar;
            }
            let top = if Self::has_avx512() {
                Simd::Avx512
            } else {
                Simd::Avx2
            };
            top.min(self.simd)
        }
        #[cfg(not(target_arch = "x86_64"))]
        Simd::Scalar
    }

    /// Samples destination row `dy` (already blended) into `rr`, `gr`, `br`: the AVX-512
    /// sampler's blocks of 16 columns, then the AVX2 sampler's groups of 8, then one by one.
    fn sample_row(&self, f: &Folded, simd: Simd, rr: &mut [f32], gr: &mut [f32], br: &mut [f32]) {
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        {
            if simd >= Simd::Avx512 {
                // SAFETY: AVX-512 F and BW are available (`simd()`); the rows are the
                // destination width long.
                done = unsafe { self.sample_row_avx512(f, rr, gr, br) };
            }
            if simd >= Simd::Avx2 {
                // SAFETY: AVX2 and FMA are available (`simd()`); `sample_row_avx2` reads only
                // indices the plan built for this size, within the padded rows.
                done = unsafe { self.sample_row_avx2(f, done, rr, gr, br) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = simd;
        self.sample_row_scalar(f, done, rr, gr, br);
    }

    /// Planar RGB f32, each row sampled straight into its three planes (at the placement's
    /// offset when letterboxed).
    fn run_planar(&mut self, img: &YuvImage<'_>, slot: &mut [f32]) {
        let f = Folded::new(img.matrix, img.range, self.spec.scale);
        let (w, p) = (self.spec.width as usize, self.place);
        let pw = p.width as usize;
        let plane = w * self.spec.height as usize;
        self.fill_padding(&mut SlotMut::F32(slot));
        let (r_plane, rest) = slot[..3 * plane].split_at_mut(plane);
        let (g_plane, b_plane) = rest.split_at_mut(plane);
        let simd = self.simd();
        for dy in 0..p.height as usize {
            self.blend(img, dy);
            let o = (p.y as usize + dy) * w + p.x as usize;
            self.sample_row(
                &f,
                simd,
                &mut r_plane[o..o + pw],
                &mut g_plane[o..o + pw],
                &mut b_plane[o..o + pw],
            );
        }
    }

    /// Letterboxing: the whole slot set to the padding value, which the picture then covers
    /// where it lands (Ultralytics' grey 114 for its layouts). Nothing to do for a stretch.
    fn fill_padding(&self, slot: &mut SlotMut<'_>) {
        let (sp, p) = (&self.spec, self.place);
        if (p.width, p.height) != (sp.width, sp.height) {
            sp.fill_padding(slot);
        }
    }

    /// Any other layout: each row is sampled as 0..255 RGB into scratch rows, then packed.
    fn run_rows(&mut self, img: &YuvImage<'_>, slot: &mut SlotMut<'_>) {
        let f = Folded::new(img.matrix, img.range, 1.0);
        let dw = self.place.width as usize;
        self.fill_padding(slot);
        let mut rows = std::mem::take(&mut self.rgb_rows);
        rows.resize(3 * dw, 0.0);
        let simd = self.simd();
        for dy in 0..self.place.height as usize {
            self.blend(img, dy);
            let (r, rest) = rows.split_at_mut(dw);
            let (g, b) = rest.split_at_mut(dw);
            self.sample_row(&f, simd, r, g, b);
            self.pack_row(dy, &rows, slot);
        }
        self.rgb_rows = rows;
    }

    /// Writes one row of 0..255 RGB (`rows`: all R, all G, all B) into the slot as the spec
    /// says: channel order, layout, then `(v - mean) * scale` as f32 or the rounded value as u8.
    fn pack_row(&self, dy: usize, rows: &[f32], slot: &mut SlotMut<'_>) {
        let sp = &self.spec;
        let (dw, x0, y) = (
            self.place.width as usize,
            self.place.x as usize,
            self.place.y as usize + dy,
        );
        // Source channel (RGB) → output channel.
        let out_c = if sp.swap_rb { [0, 1, 2] } else { [2, 1, 0] };
        for (c, row) in rows.chunks_exact(dw).enumerate() {
            let oc = out_c[c];
            let (mean, scale) = (sp.mean[oc], sp.scale);
            for (x, &v) in row.iter().enumerate() {
                let i = sp.index(oc, x0 + x, y);
                match slot {
                    SlotMut::F32(s) => s[i] = (v - mean) * scale,
                    SlotMut::U8(s) => s[i] = v.round() as u8,
                }
            }
        }
    }

    /// Vertically blends the two source rows of destination row `dy` into the scratch rows.
    fn blend(&mut self, img: &YuvImage<'_>, dy: usize) {
        self.prefetch(img, dy + 1);
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is available; the body is plain safe Rust compiled for AVX2.
                return unsafe { self.blend_avx2(img, dy) };
            }
        }
        self.blend_generic(img, dy)
    }

    /// Asks the CPU to start loading the luma rows of destination row `dy` (if there is one)
    /// while the current row is computed. A decoded frame is rarely still in this core's
    /// cache, and each row starts a new stream the hardware prefetcher has yet to detect.
    /// Chroma is left to the hardware (a third of the bytes, rows often shared by consecutive
    /// destination rows). Measured at 1080p: luma only, pipeline preprocessing -10% and the
    /// cached-frame kernel (criterion) unchanged; every plane, -17% but criterion +14%.
    fn prefetch(&self, img: &YuvImage<'_>, dy: usize) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
            let Some((&y0, &y1)) = self.ys.i0.get(dy).zip(self.ys.i1.get(dy)) else {
                return;
            };
            let lines = |plane: &[u8], start: usize, len: usize| {
                let row = plane
                    .get(start..(start + len).min(plane.len()))
                    .unwrap_or(&[]);
                for chunk in row.chunks(64) {
                    // SAFETY: a prefetch is only a hint; the address is inside `plane`.
                    unsafe { _mm_prefetch::<_MM_HINT_T1>(chunk.as_ptr() as *const i8) };
                }
            };
            let w = img.width as usize;
            let (y0, y1) = (y0 as usize, y1 as usize);
            let n = if y1 == y0 { 1 } else { 2 };
            for &r in &[y0, y1][..n] {
                lines(img.y, r * img.y_stride, w);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn blend_avx2(&mut self, img: &YuvImage<'_>, dy: usize) {
        self.blend_generic(img, dy)
    }

    #[inline(always)]
    fn blend_generic(&mut self, img: &YuvImage<'_>, dy: usize) {
        let (w, cw) = (img.width as usize, img.width.div_ceil(2) as usize);
        let (y0, y1, wy) = (
            self.ys.i0[dy] as usize,
            self.ys.i1[dy] as usize,
            self.vw[dy],
        );
        blend_rows(
            &img.y[y0 * img.y_stride..y0 * img.y_stride + w],
            &img.y[y1 * img.y_stride..y1 * img.y_stride + w],
            wy,
            &mut self.y_row[..w],
        );
        let (c0, c1) = (y0 / 2, y1 / 2);
        match img.chroma {
            Chroma::Planar { u, v, stride } => {
                blend_rows(
                    &u[c0 * stride..c0 * stride + cw],
                    &u[c1 * stride..c1 * stride + cw],
                    wy,
                    &mut self.u_row[..cw],
                );
                blend_rows(
                    &v[c0 * stride..c0 * stride + cw],
                    &v[c1 * stride..c1 * stride + cw],
                    wy,
                    &mut self.v_row[..cw],
                );
            }
            Chroma::Interleaved { uv, stride } => {
                blend_rows_interleaved(
                    &uv[c0 * stride..c0 * stride + 2 * cw],
                    &uv[c1 * stride..c1 * stride + 2 * cw],
                    wy,
                    &mut self.u_row[..cw],
                    &mut self.v_row[..cw],
                );
            }
        }
    }

    /// Samples, converts and stores destination columns `from..` one at a time.
    fn sample_row_scalar(
        &self,
        f: &Folded,
        from: usize,
        rr: &mut [f32],
        gr: &mut [f32],
        br: &mut [f32],
    ) {
        let pair = |row: &[u16], i: i32, w: [i16; 2]| {
            (row[i as usize] as i32 * w[0] as i32 + row[i as usize + 1] as i32 * w[1] as i32) as f32
        };
        for x in from..rr.len() {
            let y = pair(&self.y_row, self.lx[x], self.lw[x]);
            let u = pair(&self.u_row, self.cx[x], self.cw[x]);
            let v = pair(&self.v_row, self.cx[x], self.cw[x]);
            let [r, g, b] = f.rgb(y, u, v);
            (rr[x], gr[x], br[x]) = (r, g, b);
        }
    }

    /// Eight destination columns at a time from column `from`: one 32-bit gather per plane
    /// fetches both taps (two adjacent u16), `madd` applies the weights, FMA does the colour
    /// conversion. Returns how many columns are written (`from` and those it wrote).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sample_row_avx2(
        &self,
        f: &Folded,
        from: usize,
        rr: &mut [f32],
        gr: &mut [f32],
        br: &mut [f32],
    ) -> usize {
        use std::arch::x86_64::*;
        let n = rr.len() / 8 * 8;
        let (ky, oy, rv, gu, gv, bu) = (
            _mm256_set1_ps(f.ky),
            _mm256_set1_ps(f.oy),
            _mm256_set1_ps(f.rv),
            _mm256_set1_ps(f.gu),
            _mm256_set1_ps(f.gv),
            _mm256_set1_ps(f.bu),
        );
        let (bias, scale, zero, top) = (
            _mm256_set1_ps(f.bias),
            _mm256_set1_ps(f.scale),
            _mm256_setzero_ps(),
            _mm256_set1_ps(255.0),
        );
        let (yp, up, vp) = (
            self.y_row.as_ptr() as *const i32,
            self.u_row.as_ptr() as *const i32,
            self.v_row.as_ptr() as *const i32,
        );
        let mut x = from;
        while x + 8 <= n {
            // SAFETY: x + 8 <= n <= len of the per-column tables; gather
            // indices are < row length and rows carry one element of padding, so each 32-bit
            // load at 2-byte index i reads elements i and i + 1, both in bounds.
            let (y, u, v) = unsafe {
                let li = _mm256_loadu_si256(self.lx.as_ptr().add(x) as *const __m256i);
                let lw = _mm256_loadu_si256(self.lw.as_ptr().add(x) as *const __m256i);
                let ci = _mm256_loadu_si256(self.cx.as_ptr().add(x) as *const __m256i);
                let cw = _mm256_loadu_si256(self.cw.as_ptr().add(x) as *const __m256i);
                let y = _mm256_madd_epi16(_mm256_i32gather_epi32::<2>(yp, li), lw);
                let u = _mm256_madd_epi16(_mm256_i32gather_epi32::<2>(up, ci), cw);
                let v = _mm256_madd_epi16(_mm256_i32gather_epi32::<2>(vp, ci), cw);
                (y, u, v)
            };
            let y = _mm256_cvtepi32_ps(y);
            let u = _mm256_sub_ps(_mm256_cvtepi32_ps(u), bias);
            let v = _mm256_sub_ps(_mm256_cvtepi32_ps(v), bias);
            let l = _mm256_fmsub_ps(ky, y, oy);
            let r = _mm256_fmadd_ps(rv, v, l);
            let g = _mm256_fmadd_ps(gv, v, _mm256_fmadd_ps(gu, u, l));
            let b = _mm256_fmadd_ps(bu, u, l);
            let clamp = |p| _mm256_mul_ps(_mm256_min_ps(_mm256_max_ps(p, zero), top), scale);
            // SAFETY: x + 8 <= n <= the length of each row.
            unsafe {
                _mm256_storeu_ps(rr.as_mut_ptr().add(x), clamp(r));
                _mm256_storeu_ps(gr.as_mut_ptr().add(x), clamp(g));
                _mm256_storeu_ps(br.as_mut_ptr().add(x), clamp(b));
            }
            x += 8;
        }
        n
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
mod tests;
