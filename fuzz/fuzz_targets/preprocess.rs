//! Both preprocessing kernels over arbitrary frame sizes, strides, destination sizes and
//! pixels (planar and NV12 chroma). Must not panic; every output value must lie in [0, 1].
#![no_main]
use libfuzzer_sys::fuzz_target;
use vidinfer::preprocess::{
    fused::{Chroma, FusedResizer, Matrix, Range, YuvImage},
    Layout, PreprocessSpec, ResizeMode, Resizer, RgbImage,
};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let w = 1 + (data[0] % 64) as u32;
    let h = 1 + (data[1] % 64) as u32;
    let pad = (data[2] % 9) as usize;
    let spec = PreprocessSpec {
        width: 1 + (data[3] % 40) as u32,
        height: 1 + (data[4] % 40) as u32,
        ..PreprocessSpec::default()
    };
    // The exact kernel also takes letterboxing, BGR order and NHWC.
    let exact_spec = PreprocessSpec {
        mode: if data[6] & 1 == 0 {
            ResizeMode::Stretch
        } else {
            ResizeMode::Letterbox
        },
        swap_rb: data[6] & 2 == 0,
        layout: if data[6] & 4 == 0 {
            Layout::Nchw
        } else {
            Layout::Nhwc
        },
        pad: data[7],
        ..spec
    };
    let matrix = if data[5] & 1 == 0 {
        Matrix::Bt601
    } else {
        Matrix::Bt709
    };
    let range = if data[5] & 2 == 0 {
        Range::Limited
    } else {
        Range::Full
    };
    let nv12 = data[5] & 4 != 0;
    let pixels = &data[8..];
    let byte = |i: usize| {
        if pixels.is_empty() {
            128
        } else {
            pixels[i % pixels.len()]
        }
    };
    let mut slot = vec![-1f32; spec.slot_len()];

    // Exact kernel on packed RGB with a padded stride.
    let stride = 3 * w as usize + pad;
    let rgb: Vec<u8> = (0..stride * h as usize).map(byte).collect();
    Resizer::new(exact_spec, w, h)
        .expect("fuzzed sizes are non-zero")
        .run(
        &RgbImage {
            data: &rgb,
            width: w,
            height: h,
            stride,
        },
        &mut slot,
    ).unwrap();
    assert!(slot.iter().all(|v| (0.0..=1.0).contains(v)));

    // Fused kernel on 4:2:0 with padded strides.
    let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
    let y_stride = w as usize + pad;
    let y: Vec<u8> = (0..y_stride * h as usize).map(|i| byte(i + 7)).collect();
    let c_stride = if nv12 { 2 * cw + pad } else { cw + pad };
    let u: Vec<u8> = (0..c_stride * ch).map(|i| byte(i + 13)).collect();
    let v: Vec<u8> = (0..c_stride * ch).map(|i| byte(i + 29)).collect();
    let chroma = if nv12 {
        Chroma::Interleaved {
            uv: &u,
            stride: c_stride,
        }
    } else {
        Chroma::Planar {
            u: &u,
            v: &v,
            stride: c_stride,
        }
    };
    slot.fill(-1.0);
    FusedResizer::new(spec, w, h)
        .expect("fuzzed sizes are non-zero")
        .run(
        &YuvImage {
            y: &y,
            y_stride,
            chroma,
            width: w,
            height: h,
            matrix,
            range,
        },
        &mut slot,
    ).unwrap();
    assert!(
        slot.iter().all(|v| (0.0..=1.0).contains(v)),
        "fused output out of range"
    );
});
