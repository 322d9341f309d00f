//! AVX-512 sampling for the fused kernel: sixteen destination columns at a time, with word
//! permutes in place of gathers.
//!
//! The AVX2 sampler fetches each column's two taps with a 32-bit gather, which costs about a
//! load per column. The taps of sixteen neighbouring columns lie close together in the
//! blended row (within 64 samples while the picture shrinks by up to ~4x across, within 64 per
//! eight columns up to ~8x), so two 64-byte loads and one `vpermt2w` fetch them all, already
//! paired as the gather would have paired them. From there the arithmetic is the AVX2
//! sampler's, lane for lane (the same `madd`, conversions and fused multiply-adds), so the
//! two paths write bit-identical values.
//!
//! The per-block windows and indices are worked out once per plan ([`PermTables`]); a size
//! whose taps spread wider than that has no tables and keeps the AVX2 path.

use super::{Folded, FusedResizer};

/// Samples a window holds: two 512-bit registers of 16-bit samples.
pub(super) const WINDOW: usize = 64;
/// Destination columns per block.
const BLOCK: usize = 16;

/// Where one block of sixteen destination columns reads its taps.
#[derive(Debug, Clone)]
#[repr(C, align(64))]
struct Block {
    /// Per column, the left and right luma tap, relative to the window of its half
    /// (columns 0..8 from `ybase[0]`, 8..16 from `ybase[1]`; the same window when not split).
    yidx: [u16; 2 * BLOCK],
    /// Per column, the left and right chroma tap relative to `cbase`.
    cidx: [u16; 2 * BLOCK],
    ybase: [u32; 2],
    cbase: u32,
}

/// Every full block of a plan's destination row, or none (see [`PermTables::new`]).
#[derive(Debug, Clone)]
pub(super) struct PermTables {
    blocks: Vec<Block>,
    /// Luma taps are fetched as two halves of eight columns, each from its own window.
    split: bool,
}

/// The block's taps relative to a window at the first tap of `cols`, or `None` when the
/// last right tap falls outside it.
fn relative(taps: &[i32], cols: std::ops::Range<usize>) -> Option<(u32, Vec<u16>)> {
    let base = taps[cols.start];
    let mut idx = Vec::with_capacity(2 * cols.len());
    for &t in &taps[cols] {
        let left = usize::try_from(t - base).ok()?;
        if left + 1 >= WINDOW {
            return None;
        }
        idx.extend([left as u16, left as u16 + 1]);
    }
    Some((base as u32, idx))
}

impl PermTables {
    /// Tables for the columns whose left taps are `lx` (luma) and `cx` (chroma): one window
    /// per block if every block's luma fits one, else one per half-block; `None` when even
    /// that does not fit (or chroma does not fit one window per block).
    pub(super) fn new(lx: &[i32], cx: &[i32]) -> Option<Self> {
        let n = lx.len() / BLOCK;
        let block = |b: usize, split: bool| -> Option<Block> {
            let cols = b * BLOCK..(b + 1) * BLOCK;
            let (cbase, c) = relative(cx, cols.clone())?;
            let (ybase, y) = if split {
                let (b0, mut y0) = relative(lx, cols.start..cols.start + BLOCK / 2)?;
                let (b1, y1) = relative(lx, cols.start + BLOCK / 2..cols.end)?;
                y0.extend(y1);
                ([b0, b1], y0)
            } else {
                let (b0, y) = relative(lx, cols)?;
                ([b0, b0], y)
            };
            Some(Block {
                yidx: y.try_into().ok()?,
                cidx: c.try_into().ok()?,
                ybase,
                cbase,
            })
        };
        [false, true].into_iter().find_map(|split| {
            let blocks = (0..n)
                .map(|b| block(b, split))
                .collect::<Option<Vec<_>>>()?;
            Some(PermTables { blocks, split })
        })
    }

    #[cfg(test)]
    pub(super) fn split_for_tests(&self) -> bool {
        self.split
    }

    /// The (left, right) sample pairs `table` gives block `b`'s columns in `row`, as the
    /// sampler fetches them; for tests on any CPU.
    #[cfg(test)]
    pub(super) fn pairs(&self, b: usize, row: &[u16], luma: bool) -> Vec<[u16; 2]> {
        let blk = &self.blocks[b];
        (0..BLOCK)
            .map(|j| {
                let (base, idx) = if luma {
                    (
                        blk.ybase[usize::from(self.split && j >= BLOCK / 2)],
                        &blk.yidx,
                    )
                } else {
                    (blk.cbase, &blk.cidx)
                };
                let at = |k: usize| row[base as usize + idx[k] as usize];
                [at(2 * j), at(2 * j + 1)]
            })
            .collect()
    }
}

#[cfg(target_arch = "x86_64")]
impl FusedResizer {
    /// Whether this CPU runs [`FusedResizer::sample_row_avx512`].
    pub(super) fn has_avx512() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
    }

    /// Samples, converts and stores the row's full blocks of sixteen columns; returns how
    /// many columns it wrote (0 without tables).
    ///
    /// # Safety
    /// The CPU has AVX-512 F and BW ([`FusedResizer::has_avx512`]); `rr`, `gr` and `br` are
    /// at least the plan's destination width long.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn sample_row_avx512(
        &self,
        f: &Folded,
        rr: &mut [f32],
        gr: &mut [f32],
        br: &mut [f32],
    ) -> usize {
        use std::arch::x86_64::*;
        let Some(t) = &self.perm else { return 0 };
        let (ky, oy, rv, gu, gv, bu) = (
            _mm512_set1_ps(f.ky),
            _mm512_set1_ps(f.oy),
            _mm512_set1_ps(f.rv),
            _mm512_set1_ps(f.gu),
            _mm512_set1_ps(f.gv),
            _mm512_set1_ps(f.bu),
        );
        let (bias, scale, zero, top) = (
            _mm512_set1_ps(f.bias),
            _mm512_set1_ps(f.scale),
            _mm512_setzero_ps(),
            _mm512_set1_ps(255.0),
        );
        // A window starts at a tap index (< the row's width) and the scratch rows carry
        // WINDOW samples of padding, so its 64 samples are in bounds.
        // SAFETY: (both loads) in bounds, as above; unaligned loads.
        let pairs = |row: &[u16], base: u32, idx: __m512i| unsafe {
            let p = row.as_ptr().add(base as usize);
            let lo = _mm512_loadu_si512(p as *const __m512i);
            let hi = _mm512_loadu_si512(p.add(WINDOW / 2) as *const __m512i);
            _mm512_permutex2var_epi16(lo, idx, hi)
        };
        for (b, blk) in t.blocks.iter().enumerate() {
            let x = b * BLOCK;
            // SAFETY: the tables hold 32 indices per block, the weight tables one pair per
            // column (x + 16 <= their length).
            let (yi, ci, lw, cw) = unsafe {
                (
                    _mm512_loadu_si512(blk.yidx.as_ptr() as *const __m512i),
                    _mm512_loadu_si512(blk.cidx.as_ptr() as *const __m512i),
                    _mm512_loadu_si512(self.lw.as_ptr().add(x) as *const __m512i),
                    _mm512_loadu_si512(self.cw.as_ptr().add(x) as *const __m512i),
                )
            };
            let mut yp = pairs(&self.y_row, blk.ybase[0], yi);
            if t.split {
                yp = _mm512_mask_mov_epi16(yp, 0xFFFF_0000, pairs(&self.y_row, blk.ybase[1], yi));
            }
            let y = _mm512_cvtepi32_ps(_mm512_madd_epi16(yp, lw));
            let u = _mm512_cvtepi32_ps(_mm512_madd_epi16(pairs(&self.u_row, blk.cbase, ci), cw));
            let v = _mm512_cvtepi32_ps(_mm512_madd_epi16(pairs(&self.v_row, blk.cbase, ci), cw));
            let (u, v) = (_mm512_sub_ps(u, bias), _mm512_sub_ps(v, bias));
            let l = _mm512_fmsub_ps(ky, y, oy);
            let r = _mm512_fmadd_ps(rv, v, l);
            let g = _mm512_fmadd_ps(gv, v, _mm512_fmadd_ps(gu, u, l));
            let bl = _mm512_fmadd_ps(bu, u, l);
            let clamp = |p| _mm512_mul_ps(_mm512_min_ps(_mm512_max_ps(p, zero), top), scale);
            // SAFETY: x + 16 <= the destination width <= the length of each row (contract).
            unsafe {
                _mm512_storeu_ps(rr.as_mut_ptr().add(x), clamp(r));
                _mm512_storeu_ps(gr.as_mut_ptr().add(x), clamp(g));
                _mm512_storeu_ps(br.as_mut_ptr().add(x), clamp(bl));
            }
        }
        t.blocks.len() * BLOCK
    }
}
