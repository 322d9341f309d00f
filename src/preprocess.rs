//! Preprocessing: a decoded frame → one normalised NCHW f32 slot of the batch tensor.
//!
//! Two kernels: [`Resizer`] (exact, below) and [`fused::FusedResizer`] (YUV straight to the
//! tensor). The exact kernel reproduces `cv2.dnn.blobFromImage(frame, 1/255, (W, H), swapRB=True, crop=False)`:
//! a stretch resize with OpenCV's `INTER_LINEAR` on 8-bit data (11-bit fixed-point weights,
//! the vector code's rounding in the vertical pass), then `value * scale` as f32, planar RGB.
//! The frame arrives already in RGB order (the decoder converts to RGB24), which is what
//! `swapRB=True` does to OpenCV's BGR frames: resizing is per channel, so order is free.

pub mod frame;
pub mod fused;

pub use crate::error::GeometryError;
use crate::error::ParseError;

impl GeometryError {
    pub(crate) fn check_sizes(spec: &PreprocessSpec, w: u32, h: u32) -> Result<(), Self> {
        if w == 0 || h == 0 || spec.width == 0 || spec.height == 0 {
            return Err(GeometryError::ZeroSize {
                src_w: w,
                src_h: h,
                dst_w: spec.width,
                dst_h: spec.height,
            });
        }
        Ok(())
    }

    pub(crate) fn check_same(planned: (u32, u32), got: (u32, u32)) -> Result<(), Self> {
        if planned != got {
            return Err(GeometryError::SizeChanged { planned, got });
        }
        Ok(())
    }

    pub(crate) fn check_slot(need: usize, got: usize) -> Result<(), Self> {
        if got < need {
            return Err(GeometryError::SlotTooSmall { need, got });
        }
        Ok(())
    }
}

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
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s {
            "exact" => Ok(Kernel::Exact),
            "fused" => Ok(Kernel::Fused),
            other => Err(ParseError::Unknown {
                what: "preprocess kernel",
                value: other.into(),
                expected: "exact or fused",
            }),
        }
    }
}

/// How the frame is fitted into the model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResizeMode {
    /// Stretch to the input size, aspect ratio ignored (blobFromImage with `crop=False`).
    #[default]
    Stretch,
    /// Keep the aspect ratio, centre the picture and pad the rest with `pad`.
    Letterbox,
}

impl std::str::FromStr for ResizeMode {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, ParseError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "stretch" => Ok(ResizeMode::Stretch),
            "letterbox" => Ok(ResizeMode::Letterbox),
            other => Err(ParseError::Unknown {
                what: "resize mode",
                value: other.into(),
                expected: "stretch or letterbox",
            }),
        }
    }
}

/// Parses `r,g,b` (or one value for all three), in 0..255 units.
pub fn parse_mean(s: &str) -> Result<[f32; 3], ParseError> {
    let not_a_mean = || ParseError::Malformed {
        what: "a mean (R,G,B)",
        value: s.into(),
    };
    let v: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().ok().filter(|v| v.is_finite()))
        .collect::<Option<_>>()
        .ok_or_else(not_a_mean)?;
    match v.as_slice() {
        [a] => Ok([*a; 3]),
        [a, b, c] => Ok([*a, *b, *c]),
        _ => Err(not_a_mean()),
    }
}

/// Parses a channel order: `rgb` (true: swap OpenCV's BGR) or `bgr` (false).
pub fn parse_channel_order(s: &str) -> Result<bool, ParseError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "rgb" => Ok(true),
        "bgr" => Ok(false),
        other => Err(ParseError::Unknown {
            what: "channel order",
            value: other.into(),
            expected: "rgb or bgr",
        }),
    }
}

/// Memory layout of one image in the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Planes: all R, then all G, then all B.
    #[default]
    Nchw,
    /// Interleaved pixels.
    Nhwc,
}

/// Element type of the input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DType {
    /// `(value - mean) * scale` as f32.
    #[default]
    F32,
    /// The resized 8-bit values as they are (mean and scale are not applied).
    U8,
}

impl DType {
    /// ONNX's name of the element type.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::U8 => "uint8",
        }
    }
}

/// What the model wants. The default is `blobFromImage(frame, 1/255, (300,300), swapRB=True)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PreprocessSpec {
    pub width: u32,
    pub height: u32,
    /// Multiplies each value after the mean is subtracted (blobFromImage's `scalefactor`).
    pub scale: f32,
    /// Subtracted from each 0..255 value, per output channel (blobFromImage's `mean`).
    pub mean: [f32; 3],
    /// Output channel order RGB (true: what `swapRB=True` makes of OpenCV's BGR frames) or BGR.
    pub swap_rb: bool,
    pub mode: ResizeMode,
    /// 0..255 value of letterbox padding (before mean and scale).
    pub pad: u8,
    pub layout: Layout,
    pub dtype: DType,
}

impl Default for PreprocessSpec {
    fn default() -> Self {
        PreprocessSpec {
            width: 300,
            height: 300,
            scale: 1.0 / 255.0,
            mean: [0.0; 3],
            swap_rb: true,
            mode: ResizeMode::Stretch,
            pad: 0,
            layout: Layout::Nchw,
            dtype: DType::F32,
        }
    }
}

/// Where a frame lands inside the model input, in input pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl PreprocessSpec {
    /// Number of values in one image slot (3 × H × W).
    pub fn slot_len(&self) -> usize {
        3 * self.width as usize * self.height as usize
    }

    /// The region of the input a `src_w × src_h` frame is resized into.
    pub fn placement(&self, src_w: u32, src_h: u32) -> Placement {
        match self.mode {
            ResizeMode::Stretch => Placement {
                x: 0,
                y: 0,
                width: self.width,
                height: self.height,
            },
            ResizeMode::Letterbox => {
                let s = (self.width as f64 / src_w.max(1) as f64)
                    .min(self.height as f64 / src_h.max(1) as f64);
                // Ultralytics' LetterBox: Python's round (half to even) of each scaled side,
                // the picture centred with the odd pixel of padding after it.
                let w = ((src_w as f64 * s).round_ties_even() as u32).clamp(1, self.width);
                let h = ((src_h as f64 * s).round_ties_even() as u32).clamp(1, self.height);
                Placement {
                    x: (self.width - w) / 2,
                    y: (self.height - h) / 2,
                    width: w,
                    height: h,
                }
            }
        }
    }

    /// Sets the whole slot to the padding value, normalised as a pixel of that level would be
    /// (`(pad - mean) * scale`, or `pad` itself in u8): a letterboxing kernel then writes the
    /// picture over it where it lands.
    pub(crate) fn fill_padding(&self, slot: &mut SlotMut<'_>) {
        let n = self.slot_len();
        match slot {
            SlotMut::U8(s) => s[..n].fill(self.pad),
            SlotMut::F32(s) => {
                let pad = f32::from(self.pad);
                for c in 0..3 {
                    let v = (pad - self.mean[c]) * self.scale;
                    for y in 0..self.height as usize {
                        for x in 0..self.width as usize {
                            s[self.index(c, x, y)] = v;
                        }
                    }
                }
            }
        }
    }

    /// Index in the slot of channel `c` (in output order) of input pixel (x, y).
    #[inline(always)]
    pub(crate) fn index(&self, c: usize, x: usize, y: usize) -> usize {
        match self.layout {
            Layout::Nchw => {
                c * self.width as usize * self.height as usize + y * self.width as usize + x
            }
            Layout::Nhwc => (y * self.width as usize + x) * 3 + c,
        }
    }
}

/// A batch of model inputs, in the model's element type.
#[derive(Debug, Clone, PartialEq)]
pub enum Tensor {
    F32(Vec<f32>),
    U8(Vec<u8>),
}

impl Tensor {
    pub fn new(dtype: DType) -> Self {
        match dtype {
            DType::F32 => Tensor::F32(Vec::new()),
            DType::U8 => Tensor::U8(Vec::new()),
        }
    }

    pub fn dtype(&self) -> DType {
        match self {
            Tensor::F32(_) => DType::F32,
            Tensor::U8(_) => DType::U8,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Tensor::F32(v) => v.len(),
            Tensor::U8(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Grows to at least `n` values (new ones zero); never shrinks.
    pub fn grow_to(&mut self, n: usize) {
        if self.len() < n {
            match self {
                Tensor::F32(v) => v.resize(n, 0.0),
                Tensor::U8(v) => v.resize(n, 0),
            }
        }
    }

    /// Exactly `n` values, with `from..n` set to zero (blank padding images).
    pub fn pad_to(&mut self, from: usize, n: usize) {
        match self {
            Tensor::F32(v) => {
                v.resize(n, 0.0);
                v[from.min(n)..].fill(0.0);
            }
            Tensor::U8(v) => {
                v.resize(n, 0);
                v[from.min(n)..].fill(0);
            }
        }
    }

    /// The values `range` as a slot to write one image into.
    pub fn slot(&mut self, range: std::ops::Range<usize>) -> SlotMut<'_> {
        match self {
            Tensor::F32(v) => SlotMut::F32(&mut v[range]),
            Tensor::U8(v) => SlotMut::U8(&mut v[range]),
        }
    }
}

/// A destination slot of either element type.
pub enum SlotMut<'a> {
    F32(&'a mut [f32]),
    U8(&'a mut [u8]),
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
        let mut t = LinearTaps {
            i0: Vec::with_capacity(n),
            i1: Vec::with_capacity(n),
            frac: Vec::with_capacity(n),
        };
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
            w0: t
                .frac
                .iter()
                .map(|f| ((1.0 - f) * COEF_SCALE).round_ties_even() as i32)
                .collect(),
            w1: t
                .frac
                .iter()
                .map(|f| (f * COEF_SCALE).round_ties_even() as i32)
                .collect(),
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
    /// Value of each 0..255 level, per output channel: (v - mean) * scale.
    luts: [[f32; 256]; 3],
    placement: Placement,
    row_a: Vec<i32>,
    row_b: Vec<i32>,
    rows_held: (Option<u32>, Option<u32>),
}

impl Resizer {
    pub fn new(spec: PreprocessSpec, src_w: u32, src_h: u32) -> Result<Self, GeometryError> {
        GeometryError::check_sizes(&spec, src_w, src_h)?;
        let mut luts = [[0f32; 256]; 3];
        for (c, lut) in luts.iter_mut().enumerate() {
            for (v, o) in lut.iter_mut().enumerate() {
                *o = if spec.mean[c] == 0.0 {
                    v as f32 * spec.scale
                } else {
                    (v as f32 - spec.mean[c]) * spec.scale
                };
            }
        }
        let placement = spec.placement(src_w, src_h);
        let row_len = 3 * placement.width as usize;
        Ok(Resizer {
            spec,
            src_w,
            src_h,
            xs: AxisTaps::opencv_linear(src_w, placement.width, true),
            ys: AxisTaps::opencv_linear(src_h, placement.height, false),
            luts,
            placement,
            row_a: vec![0; row_len],
            row_b: vec![0; row_len],
            rows_held: (None, None),
        })
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
        let row = |r: u32| {
            &img.data[r as usize * img.stride..r as usize * img.stride + 3 * img.width as usize]
        };
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

    /// Resizes `img` and writes the model input for it into `slot` (`spec.slot_len()` f32
    /// values, laid out and normalised as the spec says). An image of another size than the
    /// plan's, or buffers shorter than the geometry says, are an error, not a panic.
    pub fn run(&mut self, img: &RgbImage<'_>, slot: &mut [f32]) -> Result<(), GeometryError> {
        self.run_into(img, SlotMut::F32(slot))
    }

    /// Like [`Resizer::run`], for either element type (`U8` gets the resized 8-bit values).
    pub fn run_into(
        &mut self,
        img: &RgbImage<'_>,
        mut slot: SlotMut<'_>,
    ) -> Result<(), GeometryError> {
        GeometryError::check_same((self.src_w, self.src_h), (img.width, img.height))?;
        let row = 3 * img.width as usize;
        if img.stride < row || img.data.len() < img.stride * (img.height as usize - 1) + row {
            return Err(GeometryError::PlaneTooShort("RGB picture"));
        }
        let spec = self.spec;
        let len = match &slot {
            SlotMut::F32(s) => s.len(),
            SlotMut::U8(s) => s.len(),
        };
        GeometryError::check_slot(spec.slot_len(), len)?;
        let p = self.placement;
        if (p.width, p.height) != (spec.width, spec.height) {
            spec.fill_padding(&mut slot);
        }
        self.rows_held = (None, None);
        let width = 3 * p.width as usize;
        // Source channel (RGB order) → output channel.
        let out_c = if spec.swap_rb { [0, 1, 2] } else { [2, 1, 0] };
        for dy in 0..p.height as usize {
            self.load_rows(img, self.ys.src0[dy], self.ys.src1[dy]);
            let (b0, b1) = (self.ys.w0[dy], self.ys.w1[dy]);
            let (ra, rb) = (&self.row_a, &self.row_b);
            let y = p.y as usize + dy;
            for x in 0..width {
                // OpenCV's vertical pass as its vector code rounds it, for every value (the
                // row's tail too: blobFromImage in OpenCV 5 gives these values bit for bit):
                // v_mul_hi on (S >> 4) as i16, saturating add, then a rounding shift by 2.
                let s0 = ((ra[x] >> 4).clamp(i16::MIN as i32, i16::MAX as i32) * b0) >> 16;
                let s1 = ((rb[x] >> 4).clamp(i16::MIN as i32, i16::MAX as i32) * b1) >> 16;
                let s = (s0 + s1).clamp(i16::MIN as i32, i16::MAX as i32);
                let v = ((s + 2) >> 2).clamp(0, 255);
                let c = out_c[x % 3];
                let i = spec.index(c, p.x as usize + x / 3, y);
                match &mut slot {
                    SlotMut::F32(s) => s[i] = self.luts[c][v as usize],
                    SlotMut::U8(s) => s[i] = v as u8,
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
