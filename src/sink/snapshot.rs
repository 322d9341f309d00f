//! Snapshots (`--snapshots`, with tracking): the best frame of each track, saved when the
//! track ends as two JPEGs in `DIR/<name>.snapshots/`: `<track_id>.crop.jpg` (the box, cut
//! from the decoded picture) and `<track_id>.frame.jpg` (the whole picture with the box drawn
//! as the annotated MP4 draws it, [`super::draw`]).
//!
//! The best frame is the one where the track's detection has the highest score among those
//! whose box does not touch the picture's edge (an object cut by the edge is partly out of
//! view); a track seen only touching the edge gets its best such frame, flagged
//! `touches_edge`. While a track lives, the picture of its best frame so far is kept (one
//! decoded picture per live track). Each JPEG goes to a temporary name and is renamed into
//! place when the input's outputs are committed, like every other output.

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::Arc,
};

use ffmpeg_next::{format::Pixel, frame, software::scaling};
use serde::Serialize;

use super::{
    draw::{caption_scale, track_colour, Planes},
    FrameResult,
};
use crate::{
    av::Scaler,
    error::{AvError, Error, Result},
    labels::Labels,
    output::{remove_stale_snapshots, PartialFile, SNAPSHOTS_SUFFIX},
    postprocess::{BoxInFrame, Detection},
    track::TrackSummary,
};

/// JPEG quality of both files (libjpeg's scale, 1-100).
const QUALITY: u8 = 90;

/// Where a track's snapshot is and what it shows; in the tracks file and the `track_end`
/// event. Paths are relative to the output folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub crop: String,
    pub frame_image: String,
    /// The frame shown, and its detection of the track.
    pub frame: u64,
    pub pts: f64,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: BoxInFrame,
    /// No frame showed the track clear of the picture's edge.
    pub touches_edge: bool,
}

/// True when the box reaches the outermost pixel row or column of a `w`×`h` picture
/// (detections are clamped to the picture, so a cut object's box ends on its edge).
pub fn touches_edge(b: &BoxInFrame, w: u32, h: u32) -> bool {
    b.x1 < 1.0 || b.y1 < 1.0 || b.x2 > w as f32 - 1.0 || b.y2 > h as f32 - 1.0
}

/// A track's best observation so far.
struct Best {
    frame: u64,
    pts: f64,
    det: Detection,
    touches_edge: bool,
    picture: frame::Video,
}

impl Best {
    /// Clear of the edge beats touching it; then the higher score.
    fn beaten_by(&self, touches_edge: bool, score: f32) -> bool {
        (!touches_edge, score) > (!self.touches_edge, self.det.score)
    }
}

/// The snapshots of one input: fed every frame, saves a track's when it ends.
pub struct Snapshots {
    root: PathBuf,
    /// `<name>.snapshots`, the folder under `root`.
    folder: String,
    labels: Arc<Labels>,
    best: HashMap<u64, Best>,
    files: Vec<PartialFile>,
    /// Every file renamed into place so far.
    committed: std::collections::HashSet<PathBuf>,
    to_yuv: Scaler,
    to_rgb: Scaler,
}

impl Snapshots {
    pub fn new(root: &Path, stem: &str, labels: Arc<Labels>) -> Self {
        Snapshots {
            root: root.into(),
            folder: format!("{stem}.{SNAPSHOTS_SUFFIX}"),
            labels,
            best: HashMap::new(),
            files: Vec::new(),
            committed: Default::default(),
            to_yuv: Scaler::new(Pixel::YUV420P, None, scaling::Flags::BILINEAR),
            to_rgb: Scaler::new(Pixel::RGB24, None, scaling::Flags::BILINEAR),
        }
    }

    /// Keeps the picture of every track this frame shows better than before.
    pub fn observe(&mut self, f: &FrameResult<'_>) -> Result<()> {
        let (Some(tracks), true) = (f.tracks, f.inferred) else {
            return Ok(());
        };
        for (d, id) in f.detections.iter().zip(&tracks.ids) {
            let Some(id) = *id else { continue };
            let edge = touches_edge(&d.box_in_frame, f.width, f.height);
            if self
                .best
                .get(&id)
                .is_some_and(|b| !b.beaten_by(edge, d.score))
            {
                continue;
            }
            let picture = f.picture.ok_or_else(|| self.no_picture())?;
            let best = Best {
                frame: f.index,
                pts: f.pts_seconds,
                det: d.clone(),
                touches_edge: edge,
                picture: picture.clone(),
            };
            self.best.insert(id, best);
        }
        Ok(())
    }

    fn no_picture(&self) -> Error {
        Error::Encode {
            path: self.root.join(&self.folder),
            step: "no picture was kept for this frame",
            source: AvError(ffmpeg_next::Error::Bug),
        }
    }

    /// Writes the snapshots of tracks that ended (to temporary names); one entry per track,
    /// `None` for a track never seen on a frame with its id (none so far).
    pub fn save(&mut self, tracks: &[TrackSummary]) -> Result<Vec<Option<Snapshot>>> {
        tracks
            .iter()
            .map(|t| match self.best.remove(&t.track_id) {
                Some(best) => self.write(t.track_id, &best).map(Some),
                None => Ok(None),
            })
            .collect()
    }

    fn write(&mut self, id: u64, best: &Best) -> Result<Snapshot> {
        let dir = self.root.join(&self.folder);
        std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
        let (crop_name, frame_name) = (format!("{id}.crop.jpg"), format!("{id}.frame.jpg"));
        let mut picture = frame::Video::empty();
        self.to_yuv
            .run(&best.picture, &mut picture)
            .map_err(|e| self.encode_err(&dir, "converting the picture", e))?;
        let rgb = self.rgb(&picture, &dir)?;
        let crop = crop(&rgb, &best.det.box_in_frame);
        self.jpeg(&dir.join(&crop_name), &crop)?;
        let label = self.labels.name(best.det.class_id);
        let b = best.det.box_in_frame;
        let text = format!("#{id} {label} {:.2}", best.det.score);
        let scale = caption_scale(picture.height());
        Planes::of(&mut picture).labelled_box(
            [b.x1, b.y1, b.x2, b.y2],
            &text,
            scale,
            track_colour(id),
        );
        let drawn = self.rgb(&picture, &dir)?;
        self.jpeg(&dir.join(&frame_name), &drawn)?;
        Ok(Snapshot {
            crop: format!("{}/{crop_name}", self.folder),
            frame_image: format!("{}/{frame_name}", self.folder),
            frame: best.frame,
            pts: (best.pts * 1e6).round() / 1e6,
            score: best.det.score,
            bbox: b,
            touches_edge: best.touches_edge,
        })
    }

    fn encode_err(&self, dir: &Path, step: &'static str, e: ffmpeg_next::Error) -> Error {
        Error::Encode {
            path: dir.into(),
            step,
            source: AvError(e),
        }
    }

    /// The picture as packed RGB.
    fn rgb(&mut self, picture: &frame::Video, dir: &Path) -> Result<image::RgbImage> {
        let mut out = frame::Video::empty();
        self.to_rgb
            .run(picture, &mut out)
            .map_err(|e| self.encode_err(dir, "converting the picture to RGB", e))?;
        let (w, h) = (out.width() as usize, out.height() as usize);
        let (stride, data) = (out.stride(0), out.data(0));
        let mut packed = Vec::with_capacity(w * h * 3);
        for row in 0..h {
            packed.extend_from_slice(&data[row * stride..row * stride + w * 3]);
        }
        image::RgbImage::from_raw(w as u32, h as u32, packed)
            .ok_or_else(|| self.encode_err(dir, "packing the picture", ffmpeg_next::Error::Bug))
    }

    fn jpeg(&mut self, path: &Path, img: &image::RgbImage) -> Result<()> {
        let file = PartialFile::new(path);
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, QUALITY)
            .encode_image(img)
            .map_err(|e| Error::Snapshot {
                path: path.into(),
                source: Box::new(e),
            })?;
        std::fs::write(file.partial_path(), &bytes)
            .map_err(|e| Error::write(file.partial_path(), e))?;
        self.files.push(file);
        Ok(())
    }

    /// Renames the snapshots written so far into place (at the end of a segment); returns
    /// their paths.
    pub fn commit(&mut self) -> Result<Vec<PathBuf>> {
        let paths = std::mem::take(&mut self.files)
            .into_iter()
            .map(PartialFile::commit)
            .collect::<Result<Vec<_>>>()?;
        self.committed.extend(paths.iter().cloned());
        Ok(paths)
    }

    /// Renames the rest into place; removes snapshots an earlier run left in the folder that
    /// this one did not write (tracks are numbered afresh on every run).
    pub fn finish(mut self) -> Result<Vec<PathBuf>> {
        let paths = self.commit()?;
        let kept: Vec<PathBuf> = self.committed.iter().cloned().collect();
        remove_stale_snapshots(&self.root.join(&self.folder), &kept);
        Ok(paths)
    }
}

/// The pixels of `b` (rounded outwards, at least one pixel, inside the picture).
fn crop(img: &image::RgbImage, b: &BoxInFrame) -> image::RgbImage {
    let (w, h) = img.dimensions();
    let x0 = (b.x1.floor().max(0.0) as u32).min(w - 1);
    let y0 = (b.y1.floor().max(0.0) as u32).min(h - 1);
    let x1 = (b.x2.ceil() as u32).clamp(x0 + 1, w);
    let y1 = (b.y2.ceil() as u32).clamp(y0 + 1, h);
    image::imageops::crop_imm(img, x0, y0, x1 - x0, y1 - y0).to_image()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x1: f32, y1: f32, x2: f32, y2: f32) -> BoxInFrame {
        BoxInFrame { x1, y1, x2, y2 }
    }

    #[test]
    fn edge_boxes_are_those_reaching_the_outer_pixels() {
        assert!(!touches_edge(&bx(1.0, 1.0, 99.0, 49.0), 100, 50));
        assert!(touches_edge(&bx(0.0, 10.0, 20.0, 20.0), 100, 50));
        assert!(touches_edge(&bx(10.0, 0.5, 20.0, 20.0), 100, 50));
        assert!(touches_edge(&bx(10.0, 10.0, 100.0, 20.0), 100, 50));
        assert!(touches_edge(&bx(10.0, 10.0, 20.0, 49.5), 100, 50));
    }

    #[test]
    fn clear_of_the_edge_beats_a_higher_score_touching_it() {
        let best = |touches_edge, score| Best {
            frame: 0,
            pts: 0.0,
            det: Detection {
                class_id: 0,
                score,
                box_in_frame: bx(1.0, 1.0, 2.0, 2.0),
            },
            touches_edge,
            picture: frame::Video::empty(),
        };
        assert!(best(true, 0.9).beaten_by(false, 0.5));
        assert!(!best(false, 0.5).beaten_by(true, 0.9));
        assert!(best(false, 0.5).beaten_by(false, 0.6));
        assert!(!best(false, 0.5).beaten_by(false, 0.5));
        assert!(best(true, 0.5).beaten_by(true, 0.6));
    }

    #[test]
    fn crops_stay_inside_the_picture() {
        let img = image::RgbImage::new(10, 8);
        assert_eq!(crop(&img, &bx(2.2, 3.7, 5.1, 6.0)).dimensions(), (4, 3));
        assert_eq!(crop(&img, &bx(0.0, 0.0, 10.0, 8.0)).dimensions(), (10, 8));
        assert_eq!(crop(&img, &bx(9.6, 7.9, 10.0, 8.0)).dimensions(), (1, 1));
        assert_eq!(crop(&img, &bx(3.0, 3.0, 3.0, 3.0)).dimensions(), (1, 1));
    }
}
