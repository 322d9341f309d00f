//! Drawing on planar YUV 4:2:0 pictures: 2-px boxes and "label score" captions,
//! as `cv2.rectangle` + `cv2.putText` would on the RGB frame, without converting it; lines
//! (count lines). Colours are BT.601 limited-range YUV triples. A caption is never cut by the
//! picture's edge: one that would cross it is shifted in, as supervision's label annotators do.

use font8x8::UnicodeFonts;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Yuv(pub u8, pub u8, pub u8);

/// RGB (0, 255, 0).
pub const GREEN: Yuv = Yuv(145, 54, 34);
/// RGB (0, 0, 0).
pub const BLACK: Yuv = Yuv(16, 128, 128);
/// RGB (255, 255, 0): count lines.
pub const YELLOW: Yuv = Yuv(210, 16, 146);
/// RGB (255, 0, 255): zones.
pub const MAGENTA: Yuv = Yuv(106, 202, 222);
/// RGB (255, 255, 255).
pub const WHITE: Yuv = Yuv(235, 128, 128);
/// RGB (160, 160, 160): detections not on a confirmed track.
pub const GREY: Yuv = Yuv(153, 128, 128);

impl Yuv {
    /// BT.601 limited range, as x264 and the MP4 are tagged.
    pub fn from_rgb(r: u8, g: u8, b: u8) -> Yuv {
        let (r, g, b) = (r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0);
        let y = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b;
        let u = 128.0 - 37.797 * r - 74.203 * g + 112.0 * b;
        let v = 128.0 + 112.0 * r - 93.786 * g - 18.214 * b;
        let q = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        Yuv(q(y), q(u), q(v))
    }
}

/// Bright colours (black captions stay readable on them), told apart by hue.
const TRACK_PALETTE: [(u8, u8, u8); 13] = [
    (255, 56, 56),
    (0, 194, 255),
    (255, 178, 29),
    (132, 56, 255),
    (72, 249, 10),
    (255, 55, 199),
    (0, 212, 187),
    (255, 112, 31),
    (100, 115, 255),
    (207, 210, 49),
    (203, 56, 255),
    (61, 219, 134),
    (255, 157, 151),
];

/// The colour of track `id`: neighbouring ids get different hues.
pub fn track_colour(id: u64) -> Yuv {
    let (r, g, b) = TRACK_PALETTE[(id % TRACK_PALETTE.len() as u64) as usize];
    Yuv::from_rgb(r, g, b)
}

/// Mutable views of the three planes of a YUV420P picture.
pub struct Planes<'a> {
    pub y: &'a mut [u8],
    pub y_stride: usize,
    pub u: &'a mut [u8],
    pub v: &'a mut [u8],
    pub uv_stride: usize,
    pub width: u32,
    pub height: u32,
}

impl<'a> Planes<'a> {
    /// The planes of a YUV420P frame, to draw on.
    pub fn of(frame: &'a mut ffmpeg_next::frame::Video) -> Planes<'a> {
        let (width, height) = (frame.width(), frame.height());
        let (y_stride, uv_stride) = (frame.stride(0), frame.stride(1));
        // The three planes are separate buffers: take each as its own mutable slice.
        let mut plane = |i: usize| {
            let s = frame.data_mut(i);
            (s.as_mut_ptr(), s.len())
        };
        let ((py, ly), (pu, lu), (pv, lv)) = (plane(0), plane(1), plane(2));
        // SAFETY: each pointer/length pair comes from `data_mut` of a distinct plane of
        // `frame`, which stays mutably borrowed for as long as the returned views live.
        let (y, u, v) = unsafe {
            (
                std::slice::from_raw_parts_mut(py, ly),
                std::slice::from_raw_parts_mut(pu, lu),
                std::slice::from_raw_parts_mut(pv, lv),
            )
        };
        Planes {
            y,
            y_stride,
            u,
            v,
            uv_stride,
            width,
            height,
        }
    }

    /// A box with a caption above it (inside it when there is no room above), shifted left
    /// (or up) when the box is too near the right (or bottom) edge for all of it to show.
    pub fn labelled_box(&mut self, b: [f32; 4], text: &str, scale: i64, c: Yuv) {
        let [x1, y1, x2, y2] = b;
        self.rect(x1, y1, x2, y2, 2, c);
        let (_, cap_h) = caption_size(text, scale);
        let cy = if y1 as i64 >= cap_h {
            y1 as i64 - cap_h
        } else {
            y1 as i64
        };
        self.caption(text, x1 as i64, cy, scale, c, BLACK);
    }
    /// Fills the pixel rectangle `[x0, x1) × [y0, y1)` (clipped to the picture).
    pub fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, c: Yuv) {
        let (w, h) = (self.width as i64, self.height as i64);
        let (x0, y0, x1, y1) = (
            x0.clamp(0, w),
            y0.clamp(0, h),
            x1.clamp(0, w),
            y1.clamp(0, h),
        );
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        for y in y0..y1 {
            let row = y as usize * self.y_stride;
            self.y[row + x0 as usize..row + x1 as usize].fill(c.0);
        }
        // Chroma: every 2x2 block the rectangle touches.
        let (cx0, cy0, cx1, cy1) = (x0 / 2, y0 / 2, (x1 + 1) / 2, (y1 + 1) / 2);
        for cy in cy0..cy1 {
            let row = cy as usize * self.uv_stride;
            self.u[row + cx0 as usize..row + cx1 as usize].fill(c.1);
            self.v[row + cx0 as usize..row + cx1 as usize].fill(c.2);
        }
    }

    fn set_luma(&mut self, x: i64, y: i64, value: u8) {
        if x >= 0 && y >= 0 && x < self.width as i64 && y < self.height as i64 {
            self.y[y as usize * self.y_stride + x as usize] = value;
        }
    }

    /// Draws a straight line `thickness` pixels wide from `a` to `b` (clipped to the picture).
    pub fn line(&mut self, a: (f32, f32), b: (f32, f32), thickness: i64, c: Yuv) {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let len = (dx * dx + dy * dy).sqrt();
        if !len.is_finite() {
            return;
        }
        let t = thickness.max(1);
        let half = t as f32 / 2.0;
        // Squares every half pixel along the line: no gaps at any angle.
        let steps = (len * 2.0).ceil().max(1.0) as i64;
        for i in 0..=steps {
            let s = i as f32 / steps as f32;
            let (x, y) = (a.0 + s * dx - half, a.1 + s * dy - half);
            let (x, y) = (x.round() as i64, y.round() as i64);
            self.fill(x, y, x + t, y + t, c);
        }
    }

    /// Draws a rectangle outline `thickness` pixels wide, inside `[x1, x2] × [y1, y2]`.
    pub fn rect(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, thickness: i64, c: Yuv) {
        let (x1, y1, x2, y2) = (
            x1.round() as i64,
            y1.round() as i64,
            x2.round() as i64,
            y2.round() as i64,
        );
        let t = thickness.max(1);
        self.fill(x1, y1, x2 + 1, y1 + t, c);
        self.fill(x1, y2 + 1 - t, x2 + 1, y2 + 1, c);
        self.fill(x1, y1, x1 + t, y2 + 1, c);
        self.fill(x2 + 1 - t, y1, x2 + 1, y2 + 1, c);
    }

    /// Draws `text` on a filled background whose top-left is (x, y); 8x8 glyphs scaled by `scale`.
    /// A caption that would cross an edge of the picture is shifted in so that all of it
    /// shows (one larger than the picture starts at its top-left corner and is clipped).
    pub fn caption(&mut self, text: &str, x: i64, y: i64, scale: i64, bg: Yuv, fg: Yuv) {
        let s = scale.max(1);
        let (w, h) = caption_size(text, s);
        let x = x.min(self.width as i64 - w).max(0);
        let y = y.min(self.height as i64 - h).max(0);
        let pad = s;
        self.fill(x, y, x + w, y + h, bg);
        for (i, ch) in text.chars().enumerate() {
            let glyph = font8x8::BASIC_FONTS
                .get(ch)
                .or_else(|| font8x8::BASIC_FONTS.get('?'))
                .unwrap_or([0; 8]);
            let gx = x + pad + i as i64 * 8 * s;
            for (row, bits) in glyph.iter().enumerate() {
                for col in 0..8 {
                    if bits & (1 << col) != 0 {
                        for dy in 0..s {
                            for dx in 0..s {
                                self.set_luma(
                                    gx + col * s + dx,
                                    y + pad + row as i64 * s + dy,
                                    fg.0,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Width and height in pixels of `text`'s caption at `scale`: its 8x8 glyphs scaled, and a
/// margin of `scale` pixels all round.
pub fn caption_size(text: &str, scale: i64) -> (i64, i64) {
    let s = scale.max(1);
    let n = text.chars().count() as i64;
    (n * 8 * s + 2 * s, 8 * s + 2 * s)
}

/// Caption size used for a picture `height` pixels high: 8-px glyphs up to 540 lines, then 2x, ...
pub fn caption_scale(height: u32) -> i64 {
    (height as i64 / 540).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Pic {
        y: Vec<u8>,
        u: Vec<u8>,
        v: Vec<u8>,
        w: u32,
        h: u32,
    }

    impl Pic {
        fn new(w: u32, h: u32) -> Self {
            let (cw, ch) = (w.div_ceil(2) as usize, h.div_ceil(2) as usize);
            Pic {
                y: vec![0; (w * h) as usize],
                u: vec![0; cw * ch],
                v: vec![0; cw * ch],
                w,
                h,
            }
        }
        fn planes(&mut self) -> Planes<'_> {
            Planes {
                y: &mut self.y,
                y_stride: self.w as usize,
                u: &mut self.u,
                v: &mut self.v,
                uv_stride: self.w.div_ceil(2) as usize,
                width: self.w,
                height: self.h,
            }
        }
    }

    #[test]
    fn rect_is_two_pixels_wide_and_hollow() {
        let mut p = Pic::new(20, 20);
        p.planes().rect(2.0, 2.0, 11.0, 11.0, 2, GREEN);
        let at = |p: &Pic, x: usize, y: usize| p.y[y * 20 + x];
        assert_eq!(at(&p, 2, 2), 145);
        assert_eq!(at(&p, 3, 6), 145);
        assert_eq!(at(&p, 4, 6), 0, "inside is untouched");
        assert_eq!(at(&p, 11, 11), 145);
        assert_eq!(at(&p, 10, 6), 145);
        assert_eq!(at(&p, 9, 6), 0);
        assert_eq!(at(&p, 12, 12), 0, "outside is untouched");
        assert_eq!(p.u[10 + 1], 54, "chroma of the 2x2 block at (2, 2)");
        assert_eq!(p.v[10 + 1], 34);
    }

    #[test]
    fn line_has_no_gaps_and_stays_in_the_picture() {
        let mut p = Pic::new(40, 30);
        p.planes().line((2.0, 3.0), (37.0, 25.0), 2, YELLOW);
        // Every column the line spans has a drawn pixel near where the line passes.
        for x in 3..37usize {
            let y = 3.0 + (x as f32 - 2.0) * 22.0 / 35.0;
            let near = (y as usize).saturating_sub(2)..(y as usize + 3).min(30);
            assert!(
                near.into_iter().any(|y| p.y[y * 40 + x] == 210),
                "gap at x = {x}"
            );
        }
        p.planes().line((-50.0, -50.0), (100.0, 100.0), 3, YELLOW);
        assert_eq!(p.y[0], 210, "clipped, not skipped");
    }

    #[test]
    fn colours_match_their_rgb() {
        assert_eq!(Yuv::from_rgb(0, 255, 0), GREEN);
        assert_eq!(Yuv::from_rgb(0, 0, 0), BLACK);
        assert_eq!(Yuv::from_rgb(255, 255, 0), YELLOW);
        assert_eq!(Yuv::from_rgb(255, 0, 255), MAGENTA);
        assert_eq!(Yuv::from_rgb(255, 255, 255), WHITE);
        assert_eq!(Yuv::from_rgb(160, 160, 160), GREY);
        assert_ne!(track_colour(1), track_colour(2));
        // Bright enough for black captions.
        assert!((0..13).all(|id| track_colour(id).0 >= 100));
    }

    #[test]
    fn drawing_is_clipped_to_the_picture() {
        let mut p = Pic::new(9, 7);
        p.planes().rect(-5.0, -5.0, 100.0, 100.0, 2, GREEN);
        // The outline lies outside the 9x7 picture: nothing drawn, nothing out of bounds.
        assert!(p.y.iter().all(|&v| v == 0));
        // A caption larger than the picture starts at its top-left corner and is clipped.
        p.planes().caption("person 0.99", 5, 5, 3, GREEN, BLACK);
        assert_eq!(p.y[0], 145, "caption background starts at (0, 0)");
        assert!(p.y.iter().all(|&v| v == 145 || v == 16));
    }

    /// The glyph pixels (BLACK) of a picture's luma, as (x, y).
    fn glyph_pixels(p: &Pic) -> Vec<(usize, usize)> {
        let w = p.w as usize;
        (0..p.y.len())
            .filter(|&i| p.y[i] == BLACK.0)
            .map(|i| (i % w, i / w))
            .collect()
    }

    #[test]
    fn captions_near_an_edge_are_shifted_in_whole() {
        let text = "person 0.99";
        for scale in [1, 2] {
            let (w, h) = caption_size(text, scale);
            let (w, h) = (w as usize, h as usize);
            // The whole caption, drawn where it fits: the glyph pixels it has.
            let mut free = Pic::new(400, 100);
            free.planes().caption(text, 0, 0, scale, GREEN, BLACK);
            let glyphs = glyph_pixels(&free).len();
            assert!(glyphs > 50 * scale as usize, "{glyphs}");
            let (pw, ph) = (200usize, 80usize);
            let (r, b) = (pw as f32 - 1.0, ph as f32 - 1.0);
            // (picture height, box, where the caption must be: [x0, y0, x1, y1))
            let cases = [
                // touching the right edge: above the box, shifted left to end at the edge
                (ph, [180.0, 40.0, r, 70.0], [pw - w, 40 - h, pw, 40]),
                // the bottom-right corner: the same
                (ph, [190.0, 75.0, r, b], [pw - w, 75 - h, pw, 75]),
                // at the top: inside the box (no room above), shifted left
                (ph, [190.0, 0.0, r, 30.0], [pw - w, 0, pw, h]),
                // no room above, and inside the box it would cross the bottom edge of this
                // short picture: shifted up
                (
                    h + 4,
                    [10.0, 5.0, 40.0, h as f32 + 3.0],
                    [10, 4, 10 + w, h + 4],
                ),
                // away from the edges: not moved
                (ph, [20.0, 40.0, 60.0, 70.0], [20, 40 - h, 20 + w, 40]),
            ];
            for (ph, bx, want) in cases {
                let mut p = Pic::new(pw as u32, ph as u32);
                p.planes().labelled_box(bx, text, scale, GREEN);
                let drawn = glyph_pixels(&p);
                let what = format!("scale {scale}, box {bx:?}");
                assert_eq!(drawn.len(), glyphs, "{what}: the text is cut");
                let inside = |&(x, y): &(usize, usize)| {
                    (want[0]..want[2]).contains(&x) && (want[1]..want[3]).contains(&y)
                };
                assert!(drawn.iter().all(inside), "{what}: glyphs outside {want:?}");
                for y in want[1]..want[3] {
                    for x in want[0]..want[2] {
                        let v = p.y[y * pw + x];
                        assert!(v == GREEN.0 || v == BLACK.0, "{what}: ({x}, {y}) is {v}");
                    }
                }
            }
        }
        // The other captions (count lines and their names) are shifted in the same way.
        let mut p = Pic::new(100, 40);
        p.planes().caption("walkway", 90, 35, 1, YELLOW, BLACK);
        let (w, h) = caption_size("walkway", 1);
        assert_eq!((w, h), (58, 10));
        assert_eq!(p.y[30 * 100 + 42], YELLOW.0, "top-left at (42, 30)");
        assert_eq!(p.y[39 * 100 + 99], YELLOW.0, "bottom-right at (99, 39)");
        assert_eq!(p.y[29 * 100 + 41], 0);
    }

    #[test]
    fn caption_draws_glyph_pixels() {
        let mut p = Pic::new(40, 12);
        p.planes().caption("I", 0, 0, 1, GREEN, BLACK);
        let fg = p.y.iter().filter(|&&v| v == 16).count();
        let bg = p.y.iter().filter(|&&v| v == 145).count();
        assert!(fg > 5 && bg > 20, "fg {fg} bg {bg}");
        assert!(
            p.y[11 * 40..].iter().all(|&v| v == 0),
            "nothing below the caption box"
        );
    }
}
