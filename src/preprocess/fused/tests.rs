use super::*;

fn planar<'a>(
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
    w: u32,
    h: u32,
    m: Matrix,
    r: Range,
) -> YuvImage<'a> {
    YuvImage {
        y,
        y_stride: w as usize,
        chroma: Chroma::Planar {
            u,
            v,
            stride: w.div_ceil(2) as usize,
        },
        width: w,
        height: h,
        matrix: m,
        range: r,
    }
}

/// Y, U and V planes of a `w`x`h` 4:2:0 picture, each a different non-repeating pattern.
fn patterned_planes(w: u32, h: u32) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let y = (0..w * h).map(|i| (i * 7 % 251) as u8).collect();
    let n = w.div_ceil(2) * h.div_ceil(2);
    let u = (0..n).map(|i| (i * 11 % 241) as u8).collect();
    let v = (0..n).map(|i| (i * 13 % 239) as u8).collect();
    (y, u, v)
}

#[test]
fn known_colours_convert_correctly() {
    // BT.601 limited: (81, 90, 240) is red; (145, 54, 34) is green; (16,128,128) black; (235,128,128) white.
    let red = yuv_to_rgb(81.0, 90.0, 240.0, Matrix::Bt601, Range::Limited);
    assert!(
        (red[0] - 255.0).abs() < 2.0 && red[1].abs() < 2.0 && red[2].abs() < 2.0,
        "{red:?}"
    );
    let green = yuv_to_rgb(145.0, 54.0, 34.0, Matrix::Bt601, Range::Limited);
    assert!(
        green[0].abs() < 2.0 && (green[1] - 255.0).abs() < 2.0 && green[2].abs() < 2.0,
        "{green:?}"
    );
    assert_eq!(
        yuv_to_rgb(235.0, 128.0, 128.0, Matrix::Bt709, Range::Limited).map(f32::round),
        [255.0; 3]
    );
    assert_eq!(
        yuv_to_rgb(16.0, 128.0, 128.0, Matrix::Bt601, Range::Limited).map(f32::round),
        [0.0; 3]
    );
    assert_eq!(
        yuv_to_rgb(255.0, 128.0, 128.0, Matrix::Bt601, Range::Full).map(f32::round),
        [255.0; 3]
    );
    // BT.709 full-range pure blue: Y = 0.0722*255, U = 255 (Cb max), V = 128 - 0.0722/(2*(1-0.2126))*255.
    let y = 0.0722 * 255.0;
    let blue = yuv_to_rgb(
        y,
        255.5,
        128.0 - 0.0722 / (2.0 * 0.7874) * 255.0,
        Matrix::Bt709,
        Range::Full,
    );
    assert!(
        blue[0].abs() < 1.0 && blue[1].abs() < 1.0 && (blue[2] - 255.0).abs() < 1.0,
        "{blue:?}"
    );
}

#[test]
fn flat_grey_is_flat_in_both_layouts() {
    let (w, h) = (7u32, 5u32);
    let y = vec![126u8; (w * h) as usize];
    let c = vec![128u8; (w.div_ceil(2) * h.div_ceil(2)) as usize];
    let uv = vec![128u8; (2 * w.div_ceil(2) * h.div_ceil(2)) as usize];
    let spec = PreprocessSpec {
        width: 4,
        height: 3,
        ..PreprocessSpec::default()
    };
    let mut r = FusedResizer::new(spec, w, h).unwrap();
    let mut a = vec![0f32; spec.slot_len()];
    let mut b = vec![0f32; spec.slot_len()];
    r.run(
        &planar(&y, &c, &c, w, h, Matrix::Bt601, Range::Full),
        &mut a,
    )
    .unwrap();
    r.run(
        &YuvImage {
            y: &y,
            y_stride: w as usize,
            chroma: Chroma::Interleaved {
                uv: &uv,
                stride: 2 * w.div_ceil(2) as usize,
            },
            width: w,
            height: h,
            matrix: Matrix::Bt601,
            range: Range::Full,
        },
        &mut b,
    )
    .unwrap();
    assert!(a.iter().all(|&v| (v - 126.0 / 255.0).abs() < 1e-6), "{a:?}");
    assert_eq!(a, b);
}

#[test]
fn limited_and_full_range_differ_as_expected() {
    let (w, h) = (2u32, 2u32);
    let y = [235u8; 4];
    let c = [128u8; 1];
    let spec = PreprocessSpec {
        width: 1,
        height: 1,
        scale: 1.0,
        ..PreprocessSpec::default()
    };
    let mut r = FusedResizer::new(spec, w, h).unwrap();
    let mut s = vec![0f32; 3];
    let close = |s: &[f32], v: f32| s.iter().all(|x| (x - v).abs() < 1e-3);
    r.run(
        &planar(&y, &c, &c, w, h, Matrix::Bt601, Range::Limited),
        &mut s,
    )
    .unwrap();
    assert!(close(&s, 255.0), "{s:?}");
    r.run(
        &planar(&y, &c, &c, w, h, Matrix::Bt601, Range::Full),
        &mut s,
    )
    .unwrap();
    assert!(close(&s, 235.0), "{s:?}");
}

#[test]
fn horizontal_gradient_is_interpolated_like_opencv() {
    // Luma 0, 64, 128, 192 across a 4x2 full-range grey image, downscaled to 2x1:
    // OpenCV taps at x = 0.5 and 2.5 → 32 and 160.
    let y = [0u8, 64, 128, 192, 0, 64, 128, 192];
    let c = [128u8; 2];
    let spec = PreprocessSpec {
        width: 2,
        height: 1,
        scale: 1.0,
        ..PreprocessSpec::default()
    };
    let mut s = vec![0f32; 6];
    FusedResizer::new(spec, 4, 2)
        .unwrap()
        .run(
            &planar(&y, &c, &c, 4, 2, Matrix::Bt601, Range::Full),
            &mut s,
        )
        .unwrap();
    assert!(
        (s[0] - 32.0).abs() < 1e-3 && (s[1] - 160.0).abs() < 1e-3,
        "{s:?}"
    );
}

#[test]
fn simd_and_scalar_paths_agree_on_noise() {
    let (w, h) = (853u32, 481u32);
    let mut state = 7u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as u8
    };
    let y: Vec<u8> = (0..w * h).map(|_| next()).collect();
    let cw = w.div_ceil(2);
    let u: Vec<u8> = (0..cw * h.div_ceil(2)).map(|_| next()).collect();
    let v: Vec<u8> = (0..cw * h.div_ceil(2)).map(|_| next()).collect();
    let spec = PreprocessSpec::default();
    let img = planar(&y, &u, &v, w, h, Matrix::Bt709, Range::Limited);
    let mut fast = FusedResizer::new(spec, w, h).unwrap();
    let mut slow = FusedResizer::new(spec, w, h).unwrap();
    slow.simd = Simd::Scalar;
    let (mut a, mut b) = (vec![0f32; spec.slot_len()], vec![0f32; spec.slot_len()]);
    fast.run(&img, &mut a).unwrap();
    slow.run(&img, &mut b).unwrap();
    let max = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(max < 1e-5, "max diff {max}");
    assert!(
        a.iter().any(|&p| p > 0.5) && a.iter().any(|&p| p < 0.5),
        "non-trivial output"
    );
}

#[test]
fn packed_layouts_carry_the_planar_values() {
    let (w, h) = (97u32, 61u32);
    let (y, u, v) = patterned_planes(w, h);
    let img = planar(&y, &u, &v, w, h, Matrix::Bt601, Range::Limited);
    let base = PreprocessSpec {
        width: 16,
        height: 12,
        ..PreprocessSpec::default()
    };
    let mut planar_out = vec![0f32; base.slot_len()];
    FusedResizer::new(base, w, h)
        .unwrap()
        .run(&img, &mut planar_out)
        .unwrap();
    // NHWC, BGR, a mean: each value is the planar one, moved and shifted.
    let nhwc = PreprocessSpec {
        layout: Layout::Nhwc,
        swap_rb: false,
        mean: [10.0, 20.0, 30.0],
        ..base
    };
    let mut packed = vec![0f32; base.slot_len()];
    let mut r = FusedResizer::new(nhwc, w, h).unwrap();
    r.run_into(&img, SlotMut::F32(&mut packed)).unwrap();
    let mut bytes = vec![0u8; base.slot_len()];
    let u8_spec = PreprocessSpec {
        dtype: super::super::DType::U8,
        layout: Layout::Nhwc,
        ..base
    };
    let mut q = FusedResizer::new(u8_spec, w, h).unwrap();
    q.run_into(&img, SlotMut::U8(&mut bytes)).unwrap();
    let plane = 16 * 12;
    for i in 0..plane {
        for c in 0..3 {
            let v255 = planar_out[c * plane + i] * 255.0;
            // Output channel 2 - c holds RGB channel c in BGR order, minus that slot's mean.
            let got = packed[i * 3 + (2 - c)] / nhwc.scale + nhwc.mean[2 - c];
            assert!(
                (got - v255).abs() < 1e-2,
                "pixel {i} channel {c}: {got} vs {v255}"
            );
            assert!((bytes[i * 3 + c] as f32 - v255).abs() <= 0.5 + 1e-3);
        }
    }
}

#[test]
fn odd_sizes_stay_in_bounds() {
    for (w, h) in [(1u32, 1u32), (3, 1), (1, 3), (641, 359), (5, 7)] {
        let y = vec![200u8; (w * h) as usize];
        let c = vec![128u8; (w.div_ceil(2) * h.div_ceil(2)) as usize];
        let spec = PreprocessSpec::default();
        let mut s = vec![0f32; spec.slot_len()];
        FusedResizer::new(spec, w, h)
            .unwrap()
            .run(
                &planar(&y, &c, &c, w, h, Matrix::Bt601, Range::Full),
                &mut s,
            )
            .unwrap();
        assert!(
            s.iter().all(|&v| (v - 200.0 / 255.0).abs() < 1e-6),
            "{w}x{h}"
        );
    }
}

#[test]
fn letterbox_is_the_stretch_into_the_placement_padded_around() {
    let (w, h) = (97u32, 61u32);
    let (y, u, v) = patterned_planes(w, h);
    let img = planar(&y, &u, &v, w, h, Matrix::Bt601, Range::Limited);
    for (layout, swap_rb) in [(Layout::Nchw, true), (Layout::Nhwc, false)] {
        let boxed = PreprocessSpec {
            width: 32,
            height: 32,
            mode: super::super::ResizeMode::Letterbox,
            pad: 114,
            layout,
            swap_rb,
            ..PreprocessSpec::default()
        };
        let p = boxed.placement(w, h);
        assert!(p.height < 32 && p.y > 0, "{p:?}: pads above and below");
        let inner = PreprocessSpec {
            width: p.width,
            height: p.height,
            mode: super::super::ResizeMode::Stretch,
            ..boxed
        };
        let mut got = vec![-1f32; boxed.slot_len()];
        let mut want = vec![0f32; inner.slot_len()];
        FusedResizer::new(boxed, w, h)
            .unwrap()
            .run(&img, &mut got)
            .unwrap();
        FusedResizer::new(inner, w, h)
            .unwrap()
            .run(&img, &mut want)
            .unwrap();
        for c in 0..3 {
            for yy in 0..32 {
                for xx in 0..32 {
                    let g = got[boxed.index(c, xx, yy)];
                    let (ix, iy) = (xx.wrapping_sub(p.x as usize), yy.wrapping_sub(p.y as usize));
                    if ix < p.width as usize && iy < p.height as usize {
                        assert_eq!(
                            g,
                            want[inner.index(c, ix, iy)],
                            "{layout:?} ({xx},{yy}) c{c}"
                        );
                    } else {
                        assert_eq!(g, 114.0 * boxed.scale, "{layout:?} pad ({xx},{yy}) c{c}");
                    }
                }
            }
        }
    }
}

/// Sources that shrink to 300 columns by about 1x, 2.8x, 4.3x and 6.4x (one window per block,
/// then one per half-block), one too wide for any window, and one that is enlarged.
const SAMPLER_WIDTHS: [(u32, Option<bool>); 6] = [
    (300, Some(false)),
    (853, Some(false)),
    (1280, Some(true)),
    (1920, Some(true)),
    (3840, None),
    (97, Some(false)),
];

#[test]
fn permute_windows_fetch_the_taps_a_gather_would() {
    for (w, split) in SAMPLER_WIDTHS {
        let r = FusedResizer::new(PreprocessSpec::default(), w, 9).unwrap();
        assert_eq!(r.perm.as_ref().map(|t| t.split_for_tests()), split, "{w}");
        let Some(t) = &r.perm else { continue };
        // A row whose samples are their own indices shows which samples a block fetched.
        let row: Vec<u16> = (0..r.y_row.len() as u16).collect();
        for b in 0..r.lx.len() / 16 {
            let x = b * 16;
            let want = |taps: &[i32]| -> Vec<[u16; 2]> {
                taps[x..x + 16]
                    .iter()
                    .map(|&i| [i as u16, i as u16 + 1])
                    .collect()
            };
            assert_eq!(t.pairs(b, &row, true), want(&r.lx), "{w} luma block {b}");
            assert_eq!(t.pairs(b, &row, false), want(&r.cx), "{w} chroma block {b}");
        }
    }
}

/// On a CPU without AVX-512 both runs take the AVX2 path (and still must agree).
#[test]
fn avx512_and_avx2_samplers_write_identical_values() {
    let h = 97u32;
    for (w, _) in SAMPLER_WIDTHS {
        let (y, u, v) = patterned_planes(w, h);
        let img = planar(&y, &u, &v, w, h, Matrix::Bt601, Range::Limited);
        let boxed = PreprocessSpec {
            width: 640,
            height: 640,
            mode: super::super::ResizeMode::Letterbox,
            pad: 114,
            ..PreprocessSpec::default()
        };
        let packed = PreprocessSpec {
            layout: Layout::Nhwc,
            swap_rb: false,
            ..PreprocessSpec::default()
        };
        for spec in [PreprocessSpec::default(), boxed, packed] {
            let run = |simd: Simd| {
                let mut r = FusedResizer::new(spec, w, h).unwrap();
                r.simd = simd;
                let mut s = vec![0f32; spec.slot_len()];
                r.run(&img, &mut s).unwrap();
                s
            };
            let (wide, narrow) = (run(Simd::Avx512), run(Simd::Avx2));
            let same = wide
                .iter()
                .zip(&narrow)
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{w}x{h} {spec:?}");
        }
    }
}
