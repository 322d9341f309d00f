use super::*;

fn spec(w: u32, h: u32) -> PreprocessSpec {
    PreprocessSpec {
        width: w,
        height: h,
        ..PreprocessSpec::default()
    }
}

#[test]
fn letterbox_centres_the_picture_and_pads_the_rest() {
    // A 4x2 white image into 4x4: placed at rows 1..3, rows 0 and 3 padded with 0.
    let data = vec![255u8; 4 * 2 * 3];
    let img = RgbImage {
        data: &data,
        width: 4,
        height: 2,
        stride: 12,
    };
    let sp = PreprocessSpec {
        mode: ResizeMode::Letterbox,
        ..spec(4, 4)
    };
    assert_eq!(
        sp.placement(4, 2),
        Placement {
            x: 0,
            y: 1,
            width: 4,
            height: 2
        }
    );
    let mut slot = vec![0.5f32; sp.slot_len()];
    Resizer::new(sp, 4, 2)
        .unwrap()
        .run(&img, &mut slot)
        .unwrap();
    let red: Vec<u8> = slot[0..16]
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
    assert_eq!(
        red,
        [0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255, 0, 0, 0, 0]
    );
    // A tall frame: pillarboxed.
    assert_eq!(
        sp.placement(100, 400),
        Placement {
            x: 1,
            y: 0,
            width: 1,
            height: 4
        }
    );
}

#[test]
fn mean_scale_bgr_and_nhwc() {
    // One 1x1 pixel RGB (10, 20, 30) into 1x1: BGR order, NHWC, mean (1, 2, 3), scale 0.5.
    let data = [10u8, 20, 30];
    let img = RgbImage {
        data: &data,
        width: 1,
        height: 1,
        stride: 3,
    };
    let sp = PreprocessSpec {
        mean: [1.0, 2.0, 3.0],
        scale: 0.5,
        swap_rb: false,
        layout: Layout::Nhwc,
        ..spec(1, 1)
    };
    let mut slot = vec![0f32; 3];
    Resizer::new(sp, 1, 1)
        .unwrap()
        .run(&img, &mut slot)
        .unwrap();
    // Output channel 0 is B (30 - mean[0]) * 0.5, then G, then R.
    assert_eq!(
        slot,
        vec![(30.0 - 1.0) * 0.5, (20.0 - 2.0) * 0.5, (10.0 - 3.0) * 0.5]
    );
}

#[test]
fn nhwc_interleaves_and_u8_keeps_raw_values() {
    let data = [9u8, 99, 199, 9, 99, 199];
    let img = RgbImage {
        data: &data,
        width: 2,
        height: 1,
        stride: 6,
    };
    let sp = PreprocessSpec {
        layout: Layout::Nhwc,
        dtype: DType::U8,
        ..spec(2, 1)
    };
    let mut slot = vec![0u8; 6];
    Resizer::new(sp, 2, 1)
        .unwrap()
        .run_into(&img, SlotMut::U8(&mut slot))
        .unwrap();
    assert_eq!(slot, vec![9, 99, 199, 9, 99, 199]);
}

#[test]
fn two_by_one_to_four_by_one_matches_hand_computation() {
    // Source row RGB: [0,0,0] [200,100,40]. Upscaling 2 → 4 horizontally:
    // fx = (d + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25 → taps (0,0 w 1), (0,1 w .75/.25),
    // (0,1 w .25/.75), (1 clamped, w 1). Red: 0, 50, 150, 200.
    let data = [0u8, 0, 0, 200, 100, 40];
    let img = RgbImage {
        data: &data,
        width: 2,
        height: 1,
        stride: 6,
    };
    let mut r = Resizer::new(spec(4, 1), 2, 1).unwrap();
    let mut slot = vec![0f32; 12];
    r.run(&img, &mut slot).unwrap();
    let red: Vec<u8> = slot[0..4]
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
    let green: Vec<u8> = slot[4..8]
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
    let blue: Vec<u8> = slot[8..12]
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
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
    let img = RgbImage {
        data: &data,
        width: 4,
        height: 2,
        stride: 12,
    };
    let mut r = Resizer::new(spec(2, 1), 4, 2).unwrap();
    let mut slot = vec![0f32; 6];
    r.run(&img, &mut slot).unwrap();
    let red: Vec<u8> = slot[0..2]
        .iter()
        .map(|v| (v * 255.0).round() as u8)
        .collect();
    assert_eq!(red, vec![35, 55]);
}

#[test]
fn constant_image_stays_constant_and_is_scaled() {
    let data = vec![77u8; 13 * 3 * 7];
    let img = RgbImage {
        data: &data,
        width: 13,
        height: 7,
        stride: 39,
    };
    let mut r = Resizer::new(PreprocessSpec::default(), 13, 7).unwrap();
    let mut slot = vec![0f32; PreprocessSpec::default().slot_len()];
    r.run(&img, &mut slot).unwrap();
    assert!(slot.iter().all(|&v| v == 77.0f32 * (1.0 / 255.0)));
}

#[test]
fn planar_rgb_layout_and_padded_stride() {
    // 1x1 source with a padded stride: every output pixel equals it, channels planar.
    let data = [9u8, 99, 199, 0, 0, 0, 0, 0];
    let img = RgbImage {
        data: &data,
        width: 1,
        height: 1,
        stride: 8,
    };
    let mut r = Resizer::new(spec(2, 2), 1, 1).unwrap();
    let mut slot = vec![0f32; 12];
    r.run(&img, &mut slot).unwrap();
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

#[test]
fn bad_geometry_is_an_error_not_a_panic() {
    assert!(matches!(
        Resizer::new(spec(300, 300), 0, 10),
        Err(GeometryError::ZeroSize { .. })
    ));
    let data = vec![0u8; 4 * 2 * 3];
    let mut r = Resizer::new(spec(2, 2), 4, 2).unwrap();
    let img = |w, h, stride| RgbImage {
        data: &data,
        width: w,
        height: h,
        stride,
    };
    let mut slot = vec![0f32; 12];
    assert!(matches!(
        r.run(&img(2, 2, 6), &mut slot),
        Err(GeometryError::SizeChanged { .. })
    ));
    assert_eq!(
        r.run(&img(4, 2, 100), &mut slot),
        Err(GeometryError::PlaneTooShort("RGB picture"))
    );
    assert_eq!(
        r.run(&img(4, 2, 12), &mut slot[..5]),
        Err(GeometryError::SlotTooSmall { need: 12, got: 5 })
    );
    assert_eq!(r.run(&img(4, 2, 12), &mut slot), Ok(()));
}
