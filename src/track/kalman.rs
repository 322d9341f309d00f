//! Constant-velocity Kalman filter on a box's centre and size, driven by real time.
//!
//! State: `(cx, cy, w, h)` and their velocities in pixels per **second**. As in ByteTrack /
//! DeepSORT, the motion matrix only couples each coordinate with its own velocity and the
//! process and measurement noises are diagonal, so the 8×8 covariance stays block-diagonal:
//! four independent 2×2 filters (position, velocity). That is what is implemented here —
//! exactly the same estimates as the 8×8 form, with no matrix library and no allocation.
//!
//! Noise follows ByteTrack's choice (std proportional to the box size: 1/20 of the size
//! for position, 1/160 of the size per frame for velocity), with ByteTrack's per-frame
//! figures taken at a reference 30 fps and converted to rates: the process noise added by a
//! prediction over `dt` seconds is the 30 fps per-frame noise times `dt / (1/30)`. Two
//! predictions of `dt/2` therefore add the same noise as one of `dt`, which is what makes
//! the filter behave the same at 15 fps, 30 fps or with a decode stride.

use crate::postprocess::BoxInFrame;

/// ByteTrack's `std_weight_position`.
const W_POS: f32 = 1.0 / 20.0;
/// ByteTrack's `std_weight_velocity` (per frame at the reference rate).
const W_VEL: f32 = 1.0 / 160.0;
/// The frame interval ByteTrack's per-frame noise figures were tuned at (MOT17: 30 fps).
const REF_DT: f32 = 1.0 / 30.0;
/// Smallest size used for noise scaling and for boxes built from the state (pixels).
const MIN_SIZE: f32 = 1.0;

/// One coordinate: position, velocity (per second) and its 2×2 covariance.
#[derive(Debug, Clone, Copy)]
struct Axis {
    p: f32,
    v: f32,
    /// Covariance entries: var(p), cov(p, v), var(v).
    pp: f32,
    pv: f32,
    vv: f32,
}

impl Axis {
    fn new(z: f32, scale: f32) -> Self {
        let sp = 2.0 * W_POS * scale;
        let sv = 10.0 * W_VEL * scale / REF_DT;
        Axis {
            p: z,
            v: 0.0,
            pp: sp * sp,
            pv: 0.0,
            vv: sv * sv,
        }
    }

    /// x ← F x, P ← F P Fᵀ + Q(dt) with F = [[1, dt], [0, 1]].
    fn predict(&mut self, dt: f32, scale: f32) {
        self.p += self.v * dt;
        self.pp += dt * (2.0 * self.pv + dt * self.vv);
        self.pv += dt * self.vv;
        let k = dt / REF_DT;
        let sp = W_POS * scale;
        let sv = W_VEL * scale / REF_DT;
        self.pp += sp * sp * k;
        self.vv += sv * sv * k;
    }

    /// Measurement update with H = [1, 0] and variance `r`.
    fn update(&mut self, z: f32, r: f32) {
        let s = self.pp + r;
        if s <= 0.0 || !s.is_finite() {
            return;
        }
        let (k0, k1) = (self.pp / s, self.pv / s);
        let y = z - self.p;
        self.p += k0 * y;
        self.v += k1 * y;
        // P ← (I − K H) P, using the prior entries on the right-hand side.
        let (pp, pv, vv) = (self.pp, self.pv, self.vv);
        self.pp = (1.0 - k0) * pp;
        self.pv = (1.0 - k0) * pv;
        self.vv = vv - k1 * pv;
    }
}

/// Kalman filter on `(cx, cy, w, h)`; see the module doc.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BoxKalman {
    axes: [Axis; 4],
}

/// `(cx, cy, w, h)` of a box.
fn measure(b: &BoxInFrame) -> [f32; 4] {
    [
        0.5 * (b.x1 + b.x2),
        0.5 * (b.y1 + b.y2),
        (b.x2 - b.x1).max(MIN_SIZE),
        (b.y2 - b.y1).max(MIN_SIZE),
    ]
}

impl BoxKalman {
    /// Starts a filter at a box, with zero velocity and a wide velocity prior.
    pub(crate) fn new(b: &BoxInFrame) -> Self {
        let z = measure(b);
        let (w, h) = (z[2], z[3]);
        BoxKalman {
            axes: [
                Axis::new(z[0], w),
                Axis::new(z[1], h),
                Axis::new(z[2], w),
                Axis::new(z[3], h),
            ],
        }
    }

    /// Noise scale per axis: the box width for x and w, its height for y and h.
    fn scales(&self) -> [f32; 4] {
        let w = self.axes[2].p.max(MIN_SIZE);
        let h = self.axes[3].p.max(MIN_SIZE);
        [w, h, w, h]
    }

    /// Advances the state by `dt` seconds (`dt <= 0` or non-finite: no change).
    pub(crate) fn predict(&mut self, dt: f32) {
        if !(dt > 0.0 && dt.is_finite()) {
            return;
        }
        let s = self.scales();
        for (a, s) in self.axes.iter_mut().zip(s) {
            a.predict(dt, s);
        }
    }

    /// Folds in an observed box.
    pub(crate) fn update(&mut self, b: &BoxInFrame) {
        let s = self.scales();
        let z = measure(b);
        for ((a, s), z) in self.axes.iter_mut().zip(s).zip(z) {
            let r = W_POS * s;
            a.update(z, r * r);
        }
    }

    /// Stops size changes from being extrapolated (ByteTrack does this for lost tracks, so
    /// an unseen box does not shrink to nothing or balloon).
    pub(crate) fn freeze_size(&mut self) {
        self.axes[2].v = 0.0;
        self.axes[3].v = 0.0;
    }

    /// The current estimate as a box.
    pub(crate) fn bbox(&self) -> BoxInFrame {
        let cx = self.axes[0].p;
        let cy = self.axes[1].p;
        let w = self.axes[2].p.max(MIN_SIZE);
        let h = self.axes[3].p.max(MIN_SIZE);
        BoxInFrame {
            x1: cx - 0.5 * w,
            y1: cy - 0.5 * h,
            x2: cx + 0.5 * w,
            y2: cy + 0.5 * h,
        }
    }

    /// Estimated centre velocity in pixels per second.
    #[cfg(test)]
    pub(crate) fn velocity(&self) -> (f32, f32) {
        (self.axes[0].v, self.axes[1].v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(cx: f32, cy: f32, w: f32, h: f32) -> BoxInFrame {
        BoxInFrame {
            x1: cx - w / 2.0,
            y1: cy - h / 2.0,
            x2: cx + w / 2.0,
            y2: cy + h / 2.0,
        }
    }

    /// Feeds a box moving at (vx, vy) px/s, sampled every `dt` s for `secs` s.
    fn run(vx: f32, vy: f32, dt: f32, secs: f32) -> BoxKalman {
        let mut kf = BoxKalman::new(&bx(100.0, 200.0, 40.0, 100.0));
        let n = (secs / dt).round() as usize;
        for i in 1..=n {
            let t = i as f32 * dt;
            kf.predict(dt);
            kf.update(&bx(100.0 + vx * t, 200.0 + vy * t, 40.0, 100.0));
        }
        kf
    }

    #[test]
    fn learns_velocity_in_pixels_per_second_at_any_rate() {
        for dt in [1.0 / 30.0, 1.0 / 15.0, 1.0 / 60.0] {
            let (vx, vy) = run(90.0, -30.0, dt, 3.0).velocity();
            assert!((vx - 90.0).abs() < 3.0, "dt {dt}: vx {vx}");
            assert!((vy + 30.0).abs() < 3.0, "dt {dt}: vy {vy}");
        }
    }

    #[test]
    fn prediction_extrapolates_by_real_time() {
        let mut kf = run(60.0, 0.0, 1.0 / 30.0, 2.0);
        let before = kf.bbox();
        kf.predict(0.5);
        let after = kf.bbox();
        let moved = 0.5 * (after.x1 + after.x2) - 0.5 * (before.x1 + before.x2);
        assert!((moved - 30.0).abs() < 2.0, "moved {moved}");
        // Size does not drift when frozen.
        kf.freeze_size();
        kf.predict(1.0);
        let b = kf.bbox();
        assert!(((b.x2 - b.x1) - 40.0).abs() < 1.0);
        assert!(((b.y2 - b.y1) - 100.0).abs() < 1.0);
    }

    #[test]
    fn zero_or_negative_dt_is_a_no_op() {
        let mut kf = run(60.0, 0.0, 1.0 / 30.0, 1.0);
        let b = kf.bbox();
        kf.predict(0.0);
        kf.predict(-1.0);
        kf.predict(f32::NAN);
        assert_eq!(kf.bbox(), b);
    }
}
