//! Post-processing of arbitrary output tensors: any floats (NaN, infinities, huge values),
//! any anchor and class counts, any frame size. Must not panic; every detection must be
//! inside the frame, above the threshold, at most `max_detections`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vidinfer::postprocess::{PostprocessConfig, Postprocessor, RawDetections};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let classes = 1 + (data[0] % 12) as usize;
    let width = 1 + u16::from_le_bytes([data[1], data[2]]) as u32;
    let height = 1 + u16::from_le_bytes([data[3], data[4]]) as u32;
    let conf = (data[5] as f32) / 255.0;
    let max_detections = data[6] as usize % 20;
    let floats: Vec<f32> = data[8..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let per_anchor = 4 + classes;
    let anchors = floats.len() / per_anchor;
    let (mut boxes, mut scores) = (Vec::new(), Vec::new());
    for a in 0..anchors {
        let row = &floats[a * per_anchor..(a + 1) * per_anchor];
        boxes.extend_from_slice(&row[..4]);
        scores.extend_from_slice(&row[4..]);
    }
    // Also feed deliberately mismatched lengths.
    if data[7] & 1 == 1 {
        scores.pop();
    }
    let mut pp = Postprocessor::new(PostprocessConfig {
        conf,
        iou: 0.6,
        max_detections,
        agnostic: false,
    });
    let dets = pp.run(
        RawDetections {
            boxes: &boxes,
            scores: &scores,
            classes,
        },
        width,
        height,
    );
    assert!(dets.len() <= max_detections);
    for d in &dets {
        let b = d.box_in_frame;
        assert!(d.score > conf);
        assert!((d.class_id as usize) < classes);
        for (v, lim) in [(b.x1, width), (b.x2, width), (b.y1, height), (b.y2, height)] {
            assert!(
                v.is_finite() && v >= 0.0 && v <= lim as f32,
                "{b:?} outside {width}x{height}"
            );
        }
    }
});
