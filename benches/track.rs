//! Tracking cost per frame on a synthetic stand-in for the 795-frame 768×576 demo video:
//! 10 people walking across the frame at 25 fps, with missed detections, low-score
//! detections and low-score false positives, tracked with default settings and counted on two
//! lines. One iteration runs the whole 795 frames; divide by 795 for the per-frame cost.

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use vidinfer::postprocess::{BoxInFrame, Detection};
use vidinfer::track::{CountLine, LineCounter, LineCounterConfig, Tracker, TrackerConfig};

const FRAMES: u64 = 795;
const FPS: f64 = 25.0;

/// Per frame, the detections a detector might return with `conf = low` (0.1).
fn scene() -> Vec<Vec<Detection>> {
    let mut state = 0x2545_f491u32;
    let mut rnd = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 10_000) as f32 / 10_000.0
    };
    // (x, y, vx, vy) in px and px/s; boxes 50×120.
    let mut people: Vec<(f32, f32, f32, f32)> = (0..10)
        .map(|_| {
            let (x, y) = (60.0 + 650.0 * rnd(), 80.0 + 420.0 * rnd());
            (x, y, 80.0 * (rnd() - 0.5), 60.0 * (rnd() - 0.5))
        })
        .collect();
    (0..FRAMES)
        .map(|_| {
            let mut dets = Vec::with_capacity(14);
            for p in &mut people {
                p.0 += p.2 / FPS as f32;
                p.1 += p.3 / FPS as f32;
                if !(25.0..743.0).contains(&p.0) {
                    p.2 = -p.2;
                }
                if !(60.0..516.0).contains(&p.1) {
                    p.3 = -p.3;
                }
                let r = rnd();
                if r < 0.05 {
                    continue; // missed
                }
                let score = if r < 0.15 {
                    0.2 + 0.3 * rnd()
                } else {
                    0.55 + 0.4 * rnd()
                };
                let (jx, jy) = (4.0 * (rnd() - 0.5), 4.0 * (rnd() - 0.5));
                dets.push(person(p.0 + jx, p.1 + jy, 0, score));
            }
            for _ in 0..(rnd() * 4.0) as usize {
                dets.push(person(768.0 * rnd(), 576.0 * rnd(), 0, 0.1 + 0.3 * rnd()));
            }
            dets
        })
        .collect()
}

fn person(cx: f32, cy: f32, class_id: u32, score: f32) -> Detection {
    Detection {
        class_id,
        score,
        box_in_frame: BoxInFrame {
            x1: cx - 25.0,
            y1: cy - 60.0,
            x2: cx + 25.0,
            y2: cy + 60.0,
        },
    }
}

fn lines() -> Vec<CountLine> {
    vec![
        CountLine {
            name: "middle".into(),
            a: (0.0, 288.0),
            b: (768.0, 288.0),
        },
        CountLine {
            name: "door".into(),
            a: (384.0, 100.0),
            b: (384.0, 500.0),
        },
    ]
}

fn bench(c: &mut Criterion) {
    let frames = scene();
    let mut tracker = Tracker::new(TrackerConfig::default());
    let mut counter = LineCounter::new(lines(), LineCounterConfig::default());
    let mut ids = Vec::new();
    c.bench_function("track_795_frames_10_people", |b| {
        b.iter(|| {
            let mut crossings = 0;
            for (i, dets) in frames.iter().enumerate() {
                let pts = i as f64 / FPS;
                tracker.update_into(i as u64, pts, dets, &mut ids);
                crossings += counter.update(i as u64, pts, tracker.tracks()).len();
            }
            counter.reset();
            black_box((tracker.finish(), crossings))
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
