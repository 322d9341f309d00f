//! Preprocessing kernels on one core, 720p and 1080p YUV420P frames → 300×300:
//! - `fused`: vidinfer's YUV → NCHW f32 kernel;
//! - `exact`: swscale YUV → RGB24 at full size (bicubic flags, as OpenCV's VideoCapture)
//!   + vidinfer's OpenCV-identical INTER_LINEAR resize to NCHW f32 (the parity path);
//! - `swscale_fast_bilinear`: swscale YUV → 300×300 RGB24 in one call (SWS_FAST_BILINEAR), u8 output only;
//! - `fast_image_resize`: its bilinear RGB24 → 300×300 (from an RGB frame converted beforehand).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ffmpeg_next::{format::Pixel, frame, software::scaling};
use vidinfer::{
    decode::{init_ffmpeg, RgbConverter},
    preprocess::{frame::yuv_image, fused::FusedResizer, PreprocessSpec, Resizer, RgbImage},
};

/// A YUV420P frame with a smooth pattern plus noise, so no kernel sees flat data.
fn frame(w: u32, h: u32) -> frame::Video {
    let mut f = frame::Video::new(Pixel::YUV420P, w, h);
    let mut state = 12345u32;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state & 31) as i32
    };
    for p in 0..3 {
        let stride = f.stride(p);
        let (pw, ph) = if p == 0 {
            (w as usize, h as usize)
        } else {
            (w.div_ceil(2) as usize, h.div_ceil(2) as usize)
        };
        let data = f.data_mut(p);
        for y in 0..ph {
            for x in 0..pw {
                data[y * stride + x] =
                    ((x * 255 / pw + y * 64 / ph) as i32 + noise()).clamp(16, 235) as u8;
            }
        }
    }
    f
}

fn bench(c: &mut Criterion) {
    init_ffmpeg(false);
    let spec = PreprocessSpec::default();
    let mut g = c.benchmark_group("preprocess");
    for (name, w, h) in [("720p", 1280u32, 720u32), ("1080p", 1920, 1080)] {
        let f = frame(w, h);
        let mut slot = vec![0f32; spec.slot_len()];

        let mut fused = FusedResizer::new(spec, w, h).expect("plan");
        let yuv = yuv_image(&f).expect("yuv420p");
        g.bench_with_input(BenchmarkId::new("fused", name), &(), |b, _| {
            b.iter(|| fused.run(&yuv, &mut slot).expect("fused"))
        });

        let mut rgb = RgbConverter::default();
        let mut exact = Resizer::new(spec, w, h).expect("plan");
        g.bench_with_input(BenchmarkId::new("exact", name), &(), |b, _| {
            b.iter(|| {
                let (data, stride) = rgb.convert(&f).expect("convert");
                exact
                    .run(
                        &RgbImage {
                            data,
                            width: w,
                            height: h,
                            stride,
                        },
                        &mut slot,
                    )
                    .expect("exact");
            })
        });

        let mut sws = scaling::Context::get(
            Pixel::YUV420P,
            w,
            h,
            Pixel::RGB24,
            spec.width,
            spec.height,
            scaling::Flags::FAST_BILINEAR,
        )
        .expect("sws");
        let mut small = frame::Video::empty();
        g.bench_with_input(
            BenchmarkId::new("swscale_fast_bilinear", name),
            &(),
            |b, _| b.iter(|| sws.run(&f, &mut small).expect("sws run")),
        );

        let (data, stride) = rgb.convert(&f).expect("convert");
        let packed: Vec<u8> = (0..h as usize)
            .flat_map(|y| data[y * stride..y * stride + 3 * w as usize].to_vec())
            .collect();
        let src = fast_image_resize::images::Image::from_vec_u8(
            w,
            h,
            packed,
            fast_image_resize::PixelType::U8x3,
        )
        .expect("image");
        let mut dst = fast_image_resize::images::Image::new(
            spec.width,
            spec.height,
            fast_image_resize::PixelType::U8x3,
        );
        let mut resizer = fast_image_resize::Resizer::new();
        let opts = fast_image_resize::ResizeOptions::new().resize_alg(
            fast_image_resize::ResizeAlg::Convolution(fast_image_resize::FilterType::Bilinear),
        );
        g.bench_with_input(
            BenchmarkId::new("fast_image_resize_rgb", name),
            &(),
            |b, _| b.iter(|| resizer.resize(&src, &mut dst, &opts).expect("resize")),
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(40).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
