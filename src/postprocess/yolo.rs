//! Ultralytics' post-processing of its anchor layouts (`non_max_suppression` in
//! `ultralytics/utils/nms.py`, single label): each anchor's best class, kept if its score is
//! above the threshold (YOLOv5: objectness above it first, scores times objectness), boxes
//! (cx, cy, w, h) made corners, NMS as torchvision's `nms` runs it on boxes offset by
//! `class × 7680` (so classes never overlap; no offset when class-agnostic), the best
//! `max_detections` kept. The same arithmetic in f32, so the survivors are Ultralytics'.

use super::{BoxInModel, Detection, FrameInModel, Postprocessor};
use crate::infer::{yolo::best_class, YoloAnchors};

/// Ultralytics' class offset for per-class NMS (`max_wh`).
const MAX_WH: f32 = 7680.0;

#[derive(Debug, Clone, Copy)]
pub(super) struct YoloCandidate {
    class: u32,
    score: f32,
    /// Corners in input pixels.
    xyxy: [f32; 4],
}

/// torchvision's IoU of two boxes (areas without the +1 of older conventions).
fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    inter / (area(a) + area(b) - inter)
}

impl Postprocessor {
    /// Ultralytics' NMS over one image's anchors, for a frame of `width × height` pixels that
    /// sat in `region` of the `in_w × in_h` model input.
    pub fn run_yolo(
        &mut self,
        a: YoloAnchors<'_>,
        (in_w, in_h): (u32, u32),
        (width, height): (u32, u32),
        region: &FrameInModel,
    ) -> Vec<Detection> {
        let row = a.classes + 4 + usize::from(a.v5);
        if a.classes == 0 || a.data.len() != a.anchors * row {
            return Vec::new();
        }
        self.yolo.clear();
        collect(a, self.cfg.conf, &mut self.yolo);
        // Best first (a stable sort: equal scores keep the anchors' order).
        self.yolo.sort_by(|p, q| q.score.total_cmp(&p.score));
        let offset = |c: &YoloCandidate| {
            let o = if self.cfg.agnostic {
                0.0
            } else {
                c.class as f32 * MAX_WH
            };
            c.xyxy.map(|v| v + o)
        };
        let boxes: Vec<[f32; 4]> = self.yolo.iter().map(offset).collect();
        let mut suppressed = vec![false; boxes.len()];
        let mut kept = Vec::new();
        for i in 0..boxes.len() {
            if suppressed[i] {
                continue;
            }
            kept.push(i);
            if kept.len() == self.cfg.max_detections {
                break;
            }
            for j in i + 1..boxes.len() {
                if !suppressed[j] && iou(&boxes[i], &boxes[j]) > self.cfg.iou {
                    suppressed[j] = true;
                }
            }
        }
        let (sw, sh) = (in_w as f32, in_h as f32);
        kept.iter()
            .map(|&i| {
                let c = self.yolo[i];
                let [x1, y1, x2, y2] = c.xyxy;
                let b = BoxInModel::from_xyxy(&[x1 / sw, y1 / sh, x2 / sw, y2 / sh]);
                Detection {
                    class_id: c.class,
                    score: c.score,
                    box_in_frame: b.to_frame_from(width, height, region),
                }
            })
            .collect()
    }
}

/// The anchors whose best class scores above `conf`, as candidates.
fn collect(a: YoloAnchors<'_>, conf: f32, out: &mut Vec<YoloCandidate>) {
    let n = a.anchors;
    let mut scores = vec![0.0f32; a.classes];
    for k in 0..n {
        let at = |r: usize| {
            if a.v5 {
                a.data[k * (a.classes + 5) + r]
            } else {
                a.data[r * n + k]
            }
        };
        let first = if a.v5 { 5 } else { 4 };
        let objectness = if a.v5 { at(4) } else { 1.0 };
        // YOLOv5 keeps anchors whose objectness is above the threshold, then scores each
        // class as objectness × class score.
        // (`> conf` is false for NaN: such anchors are dropped.)
        let above = |v: f32| v > conf;
        if a.v5 && !above(objectness) {
            continue;
        }
        for (c, s) in scores.iter_mut().enumerate() {
            *s = if a.v5 {
                at(first + c) * objectness
            } else {
                at(first + c)
            };
        }
        let (class, score) = best_class(&scores);
        if !above(score) {
            continue;
        }
        let (cx, cy, w, h) = (at(0), at(1), at(2), at(3));
        let (dw, dh) = (w / 2.0, h / 2.0);
        out.push(YoloCandidate {
            class: class as u32,
            score,
            xyxy: [cx - dw, cy - dh, cx + dw, cy + dh],
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postprocess::PostprocessConfig;

    /// `[4+C][A]` rows from per-anchor (cx, cy, w, h, scores...).
    fn rows(anchors: &[[f32; 6]]) -> Vec<f32> {
        (0..6)
            .flat_map(|r| anchors.iter().map(move |a| a[r]))
            .collect()
    }

    fn run(pp: &mut Postprocessor, data: &[f32], n: usize, v5: bool) -> Vec<Detection> {
        let a = YoloAnchors {
            data,
            anchors: n,
            classes: if v5 { 1 } else { 2 },
            v5,
        };
        pp.run_yolo(a, (100, 100), (100, 100), &FrameInModel::FULL)
    }

    #[test]
    fn best_class_per_anchor_and_nms_per_class() {
        // Two overlapping persons (IoU 0.81), a car on the same place, a weak anchor.
        let d = rows(&[
            [50.0, 50.0, 20.0, 20.0, 0.9, 0.1],
            [50.0, 49.0, 20.0, 18.0, 0.8, 0.0],
            [50.0, 50.0, 20.0, 20.0, 0.2, 0.7],
            [10.0, 10.0, 4.0, 4.0, 0.2, 0.1],
        ]);
        let mut pp = Postprocessor::new(PostprocessConfig {
            conf: 0.25,
            iou: 0.7,
            ..Default::default()
        });
        let out = run(&mut pp, &d, 4, false);
        let got: Vec<(u32, f32)> = out.iter().map(|d| (d.class_id, d.score)).collect();
        assert_eq!(got, vec![(0, 0.9), (1, 0.7)]);
        assert_eq!(out[0].box_in_frame.x1, 40.0);
        // Class-agnostic: the car goes too.
        let mut agnostic = Postprocessor::new(PostprocessConfig {
            conf: 0.25,
            iou: 0.7,
            agnostic: true,
            ..Default::default()
        });
        assert_eq!(run(&mut agnostic, &d, 4, false).len(), 1);
    }

    #[test]
    fn yolov5_multiplies_by_objectness() {
        // (cx, cy, w, h, objectness, score): 0.9 × 0.5 = 0.45 kept; 0.2 objectness dropped.
        let d = [
            50.0, 50.0, 10.0, 10.0, 0.9, 0.5, 20.0, 20.0, 4.0, 4.0, 0.2, 1.0,
        ];
        let mut pp = Postprocessor::new(PostprocessConfig {
            conf: 0.25,
            ..Default::default()
        });
        let out = run(&mut pp, &d, 2, true);
        assert_eq!(out.len(), 1);
        assert!((out[0].score - 0.45).abs() < 1e-6);
    }

    #[test]
    fn malformed_lengths_give_nothing() {
        let mut pp = Postprocessor::new(PostprocessConfig::default());
        assert!(run(&mut pp, &[0.0; 7], 2, false).is_empty());
    }
}
