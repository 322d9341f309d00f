//! Post-processing: raw SSD outputs → detections in frame pixels.
//!
//! The model emits, per image, `boxes [1917, 4]` as (ymin, xmin, ymax, xmax) in
//! normalised model space and `scores [1917, C]` where column 0 is background and
//! column `k` is label id `k - 1`. This stage keeps scores above the confidence
//! threshold, runs greedy per-class NMS in model space, keeps the best `max_detections`,
//! then maps the survivors to frame pixels (clamped to the frame).

mod yolo;

use serde::Serialize;

pub use crate::infer::{BoxInModel, ModelDetection, RawDetections};

/// An axis-aligned box in frame pixels, clamped to the frame.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BoxInFrame {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

/// How two lists of detections of one frame agree: the number of one-to-one pairs of the same
/// class with IoU of at least `min_iou`, best pairs first (the matching rule of the accuracy
/// reports and `vidinfer tune`).
pub fn matched_pairs(a: &[Detection], b: &[Detection], min_iou: f32) -> usize {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            if x.class_id == y.class_id {
                let v = x.box_in_frame.iou(&y.box_in_frame);
                if v >= min_iou {
                    pairs.push((v, i, j));
                }
            }
        }
    }
    pairs.sort_by(|p, q| q.0.total_cmp(&p.0));
    let (mut ua, mut ub) = (vec![false; a.len()], vec![false; b.len()]);
    let mut n = 0;
    for (_, i, j) in pairs {
        if !ua[i] && !ub[j] {
            (ua[i], ub[j]) = (true, true);
            n += 1;
        }
    }
    n
}

impl BoxInFrame {
    /// Intersection over union (0 if either box is empty).
    pub fn iou(&self, o: &BoxInFrame) -> f32 {
        let iw = (self.x2.min(o.x2) - self.x1.max(o.x1)).max(0.0);
        let ih = (self.y2.min(o.y2) - self.y1.max(o.y1)).max(0.0);
        let inter = iw * ih;
        let area = |b: &BoxInFrame| (b.x2 - b.x1).max(0.0) * (b.y2 - b.y1).max(0.0);
        let union = area(self) + area(o) - inter;
        if union <= 0.0 {
            0.0
        } else {
            inter / union
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// Label id as in the labels file (model score column minus one).
    pub class_id: u32,
    pub score: f32,
    pub box_in_frame: BoxInFrame,
}

#[derive(Debug, Clone, Copy)]
pub struct PostprocessConfig {
    /// Keep detections whose score is strictly greater than this.
    pub conf: f32,
    /// Suppress a box whose IoU with a better box of the same class is greater than this.
    pub iou: f32,
    /// At most this many detections per frame, best first.
    pub max_detections: usize,
    /// NMS across classes (a box suppresses overlapping boxes of any class), for the layouts
    /// vidinfer runs NMS for.
    pub agnostic: bool,
}

impl Default for PostprocessConfig {
    fn default() -> Self {
        PostprocessConfig {
            conf: 0.5,
            iou: 0.6,
            max_detections: 100,
            agnostic: false,
        }
    }
}

/// Model space → frame pixels (the box itself is the model's output, [`crate::infer`]).
impl BoxInModel {
    /// Maps to frame pixels and clamps to `[0, width] × [0, height]`, for a frame that filled
    /// the whole model input (stretch).
    pub fn to_frame(&self, width: u32, height: u32) -> BoxInFrame {
        self.to_frame_from(width, height, &FrameInModel::FULL)
    }

    /// Maps to frame pixels when the frame occupied only `region` of the model input
    /// (letterbox), then clamps to the frame.
    pub fn to_frame_from(&self, width: u32, height: u32, region: &FrameInModel) -> BoxInFrame {
        let (w, h) = (width as f32, height as f32);
        let finite = |v: f32| if v.is_finite() { v } else { 0.0 };
        let x = |v: f32| ((finite(v) - region.x) / region.width * w).clamp(0.0, w);
        let y = |v: f32| ((finite(v) - region.y) / region.height * h).clamp(0.0, h);
        BoxInFrame {
            x1: x(self.xmin),
            y1: y(self.ymin),
            x2: x(self.xmax),
            y2: y(self.ymax),
        }
    }
}

/// Where the frame sits inside the model input, as fractions of the input (0..1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameInModel {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
}

impl FrameInModel {
    pub const FULL: FrameInModel = FrameInModel {
        x: 0.0,
        y: 0.0,
        width: 1.0,
        height: 1.0,
    };
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    class: u32,
    score: f32,
    bbox: BoxInModel,
}

/// Reusable post-processor (keeps its scratch buffers between frames).
#[derive(Debug, Default)]
pub struct Postprocessor {
    cfg: PostprocessConfig,
    candidates: Vec<Candidate>,
    kept: Vec<Candidate>,
    yolo: Vec<yolo::YoloCandidate>,
}

/// Whether any score is above `conf` (false for NaN), with no branch per score, so the
/// compiler can vectorise it.
fn any_above(scores: &[f32], conf: f32) -> bool {
    scores
        .chunks(16)
        .any(|chunk| chunk.iter().fold(false, |any, &s| any | (s > conf)))
}

impl Postprocessor {
    pub fn new(cfg: PostprocessConfig) -> Self {
        Postprocessor {
            cfg,
            candidates: Vec::new(),
            kept: Vec::new(),
            yolo: Vec::new(),
        }
    }

    pub fn config(&self) -> &PostprocessConfig {
        &self.cfg
    }

    /// Runs filter + NMS + scaling for one image of `width × height` pixels that filled the
    /// model input. Malformed input (lengths that disagree) yields no detections, not a panic.
    pub fn run(&mut self, raw: RawDetections<'_>, width: u32, height: u32) -> Vec<Detection> {
        self.run_in(raw, width, height, &FrameInModel::FULL)
    }

    /// Detections the model already selected: the article's rule `score > conf`, the best
    /// `max_detections`, mapped to frame pixels through `region`. No NMS (the model did it).
    pub fn select_in(
        &mut self,
        selected: &[ModelDetection],
        width: u32,
        height: u32,
        region: &FrameInModel,
    ) -> Vec<Detection> {
        let conf = self.cfg.conf;
        let mut kept: Vec<&ModelDetection> = selected.iter().filter(|d| d.score > conf).collect();
        kept.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.class_id.cmp(&b.class_id))
        });
        kept.truncate(self.cfg.max_detections);
        kept.iter()
            .map(|d| Detection {
                class_id: d.class_id,
                score: d.score,
                box_in_frame: d.bbox.to_frame_from(width, height, region),
            })
            .collect()
    }

    /// Like [`Postprocessor::run`] for a frame placed in `region` of the model input.
    pub fn run_in(
        &mut self,
        raw: RawDetections<'_>,
        width: u32,
        height: u32,
        region: &FrameInModel,
    ) -> Vec<Detection> {
        let classes = raw.classes;
        if classes < 2 || !raw.boxes.len().is_multiple_of(4) {
            return Vec::new();
        }
        let anchors = raw.boxes.len() / 4;
        if raw.scores.len() != anchors * classes {
            return Vec::new();
        }
        let conf = self.cfg.conf;
        self.candidates.clear();
        for a in 0..anchors {
            // Class 0 is the background.
            let row = &raw.scores[a * classes + 1..(a + 1) * classes];
            // Most anchors have no score above the threshold: find those without a branch per
            // score first (this loop is most of post-processing's time).
            if !any_above(row, conf) {
                continue;
            }
            for (c, &s) in row.iter().enumerate() {
                // `s > conf` is false for NaN, so NaN scores are dropped here.
                if s > conf {
                    self.candidates.push(Candidate {
                        class: c as u32,
                        score: s,
                        bbox: BoxInModel::from_yxyx(&raw.boxes[a * 4..a * 4 + 4]),
                    });
                }
            }
        }
        // Per-class greedy NMS: sort by (class, score desc), suppress within each class run
        // (class-agnostic: one run of all classes).
        let agnostic = self.cfg.agnostic;
        let key = |c: &Candidate| if agnostic { 0 } else { c.class };
        self.candidates
            .sort_by(|a, b| key(a).cmp(&key(b)).then(b.score.total_cmp(&a.score)));
        self.kept.clear();
        let mut start = 0;
        while start < self.candidates.len() {
            let class = key(&self.candidates[start]);
            let end = start
                + self.candidates[start..]
                    .iter()
                    .take_while(|c| key(c) == class)
                    .count();
            let first_kept = self.kept.len();
            for i in start..end {
                let cand = self.candidates[i];
                if self.kept[first_kept..]
                    .iter()
                    .all(|k| k.bbox.iou(&cand.bbox) <= self.cfg.iou)
                {
                    self.kept.push(cand);
                }
            }
            start = end;
        }
        self.kept
            .sort_by(|a, b| b.score.total_cmp(&a.score).then(a.class.cmp(&b.class)));
        self.kept.truncate(self.cfg.max_detections);
        self.kept
            .iter()
            .map(|k| Detection {
                class_id: k.class,
                score: k.score,
                box_in_frame: k.bbox.to_frame_from(width, height, region),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_from(anchors: &[([f32; 4], Vec<f32>)]) -> (Vec<f32>, Vec<f32>, usize) {
        let classes = anchors[0].1.len();
        let mut b = Vec::new();
        let mut s = Vec::new();
        for (bx, sc) in anchors {
            b.extend_from_slice(bx);
            s.extend_from_slice(sc);
        }
        (b, s, classes)
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = BoxInModel {
            xmin: 0.0,
            ymin: 0.0,
            xmax: 0.5,
            ymax: 0.5,
        };
        let b = BoxInModel {
            xmin: 0.25,
            ymin: 0.0,
            xmax: 0.75,
            ymax: 0.5,
        };
        assert!((a.iou(&b) - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
        let far = BoxInModel {
            xmin: 0.8,
            ymin: 0.8,
            xmax: 0.9,
            ymax: 0.9,
        };
        assert_eq!(a.iou(&far), 0.0);
        let empty = BoxInModel {
            xmin: 0.1,
            ymin: 0.1,
            xmax: 0.1,
            ymax: 0.1,
        };
        assert_eq!(empty.iou(&empty), 0.0);
    }

    #[test]
    fn nms_suppresses_within_class_only() {
        // Three anchors: two overlapping persons (IoU 0.81), one overlapping car.
        let (b, s, c) = raw_from(&[
            ([0.0, 0.0, 0.5, 0.5], vec![0.0, 0.9, 0.0]),
            ([0.0, 0.0, 0.5, 0.45], vec![0.0, 0.8, 0.0]),
            ([0.0, 0.0, 0.5, 0.5], vec![0.0, 0.1, 0.7]),
        ]);
        let mut pp = Postprocessor::new(PostprocessConfig::default());
        let d = pp.run(
            RawDetections {
                boxes: &b,
                scores: &s,
                classes: c,
            },
            100,
            200,
        );
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!((d[0].class_id, d[0].score), (0, 0.9));
        assert_eq!((d[1].class_id, d[1].score), (1, 0.7));
    }

    #[test]
    fn nms_keeps_boxes_below_iou_threshold() {
        // IoU = 1/3 < 0.6: both kept.
        let (b, s, c) = raw_from(&[
            ([0.0, 0.0, 0.5, 0.5], vec![0.0, 0.9]),
            ([0.0, 0.25, 0.5, 0.75], vec![0.0, 0.6]),
        ]);
        let mut pp = Postprocessor::new(PostprocessConfig::default());
        assert_eq!(
            pp.run(
                RawDetections {
                    boxes: &b,
                    scores: &s,
                    classes: c
                },
                10,
                10
            )
            .len(),
            2
        );
    }

    #[test]
    fn confidence_is_strictly_greater_and_nan_is_dropped() {
        let (b, s, c) = raw_from(&[
            ([0.0, 0.0, 0.5, 0.5], vec![0.0, 0.5]),
            ([0.5, 0.5, 1.0, 1.0], vec![0.0, f32::NAN]),
        ]);
        let mut pp = Postprocessor::new(PostprocessConfig::default());
        assert!(pp
            .run(
                RawDetections {
                    boxes: &b,
                    scores: &s,
                    classes: c
                },
                10,
                10
            )
            .is_empty());
    }

    #[test]
    fn scales_to_pixels_and_clamps() {
        // (ymin, xmin, ymax, xmax) = (-0.1, 0.25, 0.5, 1.2) on a 640x480 frame.
        let (b, s, c) = raw_from(&[([-0.1, 0.25, 0.5, 1.2], vec![0.0, 0.99])]);
        let mut pp = Postprocessor::new(PostprocessConfig::default());
        let d = pp.run(
            RawDetections {
                boxes: &b,
                scores: &s,
                classes: c,
            },
            640,
            480,
        );
        assert_eq!(
            d[0].box_in_frame,
            BoxInFrame {
                x1: 160.0,
                y1: 0.0,
                x2: 640.0,
                y2: 240.0
            }
        );
    }

    #[test]
    fn letterboxed_boxes_map_back_to_the_frame() {
        // A 600x300 frame letterboxed into 300x300 occupies rows 75..225 (y 0.25..0.75).
        let region = FrameInModel {
            x: 0.0,
            y: 0.25,
            width: 1.0,
            height: 0.5,
        };
        let b = BoxInModel {
            xmin: 0.5,
            ymin: 0.25,
            xmax: 1.0,
            ymax: 0.5,
        };
        assert_eq!(
            b.to_frame_from(600, 300, &region),
            BoxInFrame {
                x1: 300.0,
                y1: 0.0,
                x2: 600.0,
                y2: 150.0
            }
        );
        // Boxes reaching into the padding are clamped to the frame.
        let pad = BoxInModel {
            xmin: 0.0,
            ymin: 0.0,
            xmax: 0.1,
            ymax: 0.1,
        };
        assert_eq!(
            pad.to_frame_from(600, 300, &region),
            BoxInFrame {
                x1: 0.0,
                y1: 0.0,
                x2: 60.0,
                y2: 0.0
            }
        );
    }

    #[test]
    fn swapped_corners_are_ordered() {
        let bx = BoxInModel::from_yxyx(&[0.5, 0.6, 0.1, 0.2]);
        assert_eq!(
            bx,
            BoxInModel {
                xmin: 0.2,
                ymin: 0.1,
                xmax: 0.6,
                ymax: 0.5
            }
        );
    }

    #[test]
    fn caps_detection_count_best_first() {
        let anchors: Vec<([f32; 4], Vec<f32>)> = (0..10)
            .map(|i| {
                (
                    [i as f32 * 0.1, 0.0, i as f32 * 0.1 + 0.05, 0.05],
                    vec![0.0, 0.6 + i as f32 * 0.01],
                )
            })
            .collect();
        let (b, s, c) = raw_from(&anchors);
        let mut pp = Postprocessor::new(PostprocessConfig {
            max_detections: 3,
            ..Default::default()
        });
        let d = pp.run(
            RawDetections {
                boxes: &b,
                scores: &s,
                classes: c,
            },
            10,
            10,
        );
        assert_eq!(
            d.iter().map(|d| d.score).collect::<Vec<_>>(),
            vec![0.69, 0.68, 0.67]
        );
    }

    #[test]
    fn mismatched_lengths_give_nothing() {
        let mut pp = Postprocessor::new(PostprocessConfig::default());
        assert!(pp
            .run(
                RawDetections {
                    boxes: &[0.0; 7],
                    scores: &[0.9; 4],
                    classes: 2
                },
                10,
                10
            )
            .is_empty());
        assert!(pp
            .run(
                RawDetections {
                    boxes: &[0.0; 8],
                    scores: &[0.9; 3],
                    classes: 2
                },
                10,
                10
            )
            .is_empty());
    }
}
