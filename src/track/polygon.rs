//! Zone polygons in frame pixels: closed (a point on an edge is inside), concave allowed,
//! never crossing themselves; where a point is, and how much of one lies inside a frame.

use serde::Serialize;

use crate::error::ZoneError;

/// A point this close to a zone's edge (in pixels) is on it, hence inside.
pub const ON_EDGE_PX: f64 = 1e-4;

type Pt = (f64, f64);

/// A zone: a simple polygon (concave allowed) in frame pixels, and the classes it counts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Zone {
    name: String,
    points: Vec<(f32, f32)>,
    /// Class ids counted; empty: every class.
    classes: Vec<u32>,
}

impl Zone {
    /// A zone named `name` over `points` in order around it (a last point equal to the first
    /// closes it, as does nothing). Consecutive repeated points are dropped. Refuses fewer
    /// than 3 distinct points, a non-finite coordinate, points all on one line and edges that
    /// meet anywhere but at the vertex they share.
    pub fn new(name: &str, points: &[(f32, f32)], classes: Vec<u32>) -> Result<Zone, ZoneError> {
        if let Some((index, &(x, y))) =
            (points.iter().enumerate()).find(|(_, p)| !p.0.is_finite() || !p.1.is_finite())
        {
            return Err(ZoneError::NotFinite {
                name: name.into(),
                index: index + 1,
                x,
                y,
            });
        }
        let mut pts: Vec<(f32, f32)> = Vec::with_capacity(points.len());
        for &p in points {
            if pts.last() != Some(&p) {
                pts.push(p);
            }
        }
        while pts.len() > 1 && pts.first() == pts.last() {
            pts.pop();
        }
        if pts.len() < 3 {
            return Err(ZoneError::TooFewPoints {
                name: name.into(),
                points: pts.len(),
            });
        }
        let v: Vec<Pt> = pts.iter().map(|&(x, y)| (x as f64, y as f64)).collect();
        if v.iter().all(|&p| cross(v[0], v[1], p) == 0.0) {
            return Err(ZoneError::NoArea { name: name.into() });
        }
        if let Some((a, b)) = crossing_edges(&v) {
            return Err(ZoneError::SelfIntersecting {
                name: name.into(),
                a: a + 1,
                b: b + 1,
            });
        }
        Ok(Zone {
            name: name.into(),
            points: pts,
            classes,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The polygon's vertices in order (the last joins the first).
    pub fn points(&self) -> &[(f32, f32)] {
        &self.points
    }

    /// Class ids counted; empty: every class.
    pub fn classes(&self) -> &[u32] {
        &self.classes
    }

    /// Whether this zone counts class `class_id`.
    pub fn counts(&self, class_id: u32) -> bool {
        self.classes.is_empty() || self.classes.contains(&class_id)
    }

    fn vertices(&self) -> impl Iterator<Item = (Pt, Pt)> + '_ {
        let n = self.points.len();
        let f = |(x, y): (f32, f32)| (x as f64, y as f64);
        (0..n).map(move |i| (f(self.points[i]), f(self.points[(i + 1) % n])))
    }

    /// Whether the point is inside the polygon or on its boundary.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        let p = (x as f64, y as f64);
        let mut inside = false;
        for (a, b) in self.vertices() {
            if on_segment(a, b, p) {
                return true;
            }
            // Even-odd ray casting to +x; on a simple polygon the same as non-zero winding.
            if (a.1 > p.1) != (b.1 > p.1) {
                let x = a.0 + (p.1 - a.1) * (b.0 - a.0) / (b.1 - a.1);
                if p.0 < x {
                    inside = !inside;
                }
            }
        }
        inside
    }

    /// The area of the polygon inside the rectangle `[0, width] × [0, height]`, in square
    /// pixels (Sutherland–Hodgman clipping: right for concave polygons too).
    pub fn area_inside(&self, width: f64, height: f64) -> f64 {
        let mut poly: Vec<Pt> = self.vertices().map(|(a, _)| a).collect();
        // Keep the side where `inside` is true of each of the frame's four edges.
        type Side = fn(Pt, f64) -> f64;
        let sides: [(Side, f64); 4] = [
            (|p, _| p.0, 0.0),
            (|p, w| w - p.0, width),
            (|p, _| p.1, 0.0),
            (|p, h| h - p.1, height),
        ];
        for (dist, limit) in sides {
            let d = |p: Pt| dist(p, limit);
            let mut out = Vec::with_capacity(poly.len() + 4);
            for i in 0..poly.len() {
                let (a, b) = (poly[i], poly[(i + 1) % poly.len()]);
                let (da, db) = (d(a), d(b));
                if da >= 0.0 {
                    out.push(a);
                }
                if (da >= 0.0) != (db >= 0.0) {
                    let s = da / (da - db);
                    out.push((a.0 + s * (b.0 - a.0), a.1 + s * (b.1 - a.1)));
                }
            }
            poly = out;
        }
        let n = poly.len();
        let twice: f64 = (0..n)
            .map(|i| {
                let (a, b) = (poly[i], poly[(i + 1) % n]);
                a.0 * b.1 - b.0 * a.1
            })
            .sum();
        twice.abs() / 2.0
    }

    /// The points as `x,y;x,y;...`.
    pub fn describe_points(&self) -> String {
        let p: Vec<String> = self
            .points
            .iter()
            .map(|p| format!("{},{}", p.0, p.1))
            .collect();
        p.join(";")
    }
}

/// `(a − o) × (b − o)`: zero when `o`, `a` and `b` are on one line; its sign says on which
/// side of `o → a` the point `b` is.
fn cross(o: Pt, a: Pt, b: Pt) -> f64 {
    (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
}

/// Whether `p` is within [`ON_EDGE_PX`] of the segment `a–b`.
fn on_segment(a: Pt, b: Pt, p: Pt) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (ex, ey) = (p.0 - (a.0 + t * dx), p.1 - (a.1 + t * dy));
    ex * ex + ey * ey <= ON_EDGE_PX * ON_EDGE_PX
}

/// Whether `p`, on the line through `a` and `b`, lies within the segment.
fn within(a: Pt, b: Pt, p: Pt) -> bool {
    a.0.min(b.0) <= p.0 && p.0 <= a.0.max(b.0) && a.1.min(b.1) <= p.1 && p.1 <= a.1.max(b.1)
}

/// Whether the closed segments `p1–p2` and `q1–q2` have a point in common.
fn segments_meet(p1: Pt, p2: Pt, q1: Pt, q2: Pt) -> bool {
    let (d1, d2) = (cross(q1, q2, p1), cross(q1, q2, p2));
    let (d3, d4) = (cross(p1, p2, q1), cross(p1, p2, q2));
    if d1 * d2 < 0.0 && d3 * d4 < 0.0 {
        return true;
    }
    (d1 == 0.0 && within(q1, q2, p1))
        || (d2 == 0.0 && within(q1, q2, p2))
        || (d3 == 0.0 && within(p1, p2, q1))
        || (d4 == 0.0 && within(p1, p2, q2))
}

/// The first pair of edges (edge `i` runs from vertex `i` to `i + 1`) that meet other than at
/// the one vertex two neighbouring edges share.
fn crossing_edges(v: &[Pt]) -> Option<(usize, usize)> {
    let n = v.len();
    let edge = |i: usize| (v[i], v[(i + 1) % n]);
    for i in 0..n {
        for j in i + 1..n {
            let ((a, b), (c, d)) = (edge(i), edge(j));
            let neighbours = j == i + 1 || (i == 0 && j == n - 1);
            let meet = if !neighbours {
                segments_meet(a, b, c, d)
            } else {
                // They share a vertex; they overlap if the second turns straight back.
                let (p, s, q) = if j == i + 1 { (a, b, d) } else { (c, a, b) };
                cross(p, s, q) == 0.0 && (s.0 - p.0) * (q.0 - s.0) + (s.1 - p.1) * (q.1 - s.1) < 0.0
            };
            if meet {
                return Some((i, j));
            }
        }
    }
    None
}
