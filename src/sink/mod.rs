//! Sinks: where detections go. Each sink is created per input and receives frames in order.
//! Every file a sink writes goes to `<final>.partial` first and is renamed into place by
//! [`Sink::finish`]; a failed or interrupted input leaves no file that looks complete.

pub mod csv;
pub mod draw;
pub mod jsonl;
pub mod video;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use ffmpeg_next::frame;

use crate::{
    error::{Error, Result},
    labels::Labels,
    postprocess::Detection,
};

/// One processed frame, as the sinks see it.
pub struct FrameResult<'a> {
    pub index: u64,
    pub pts_seconds: f64,
    pub width: u32,
    pub height: u32,
    pub detections: &'a [Detection],
    /// The decoded picture; present when a sink asked for pictures.
    pub picture: Option<&'a frame::Video>,
}

pub trait Sink {
    fn write(&mut self, frame: &FrameResult<'_>) -> Result<()>;
    /// Flushes and renames the output into place; returns the final paths.
    fn finish(self: Box<Self>) -> Result<Vec<PathBuf>>;
}

/// Which outputs to write for every input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SinkKinds {
    pub jsonl: bool,
    pub csv: bool,
    pub video: bool,
}

impl SinkKinds {
    pub fn needs_pictures(&self) -> bool {
        self.video
    }
}

/// Settings shared by all sinks of a run.
#[derive(Debug, Clone)]
pub struct SinkConfig {
    pub out_dir: PathBuf,
    pub kinds: SinkKinds,
    pub labels: Arc<Labels>,
    /// x264 preset for the annotated video.
    pub video_preset: String,
    /// x264 tune for the annotated video (empty: none).
    pub video_tune: String,
    pub video_crf: u32,
    /// x264 threads (0: x264 picks, about 1.5 per core).
    pub video_threads: usize,
}

/// Facts about the input a sink set is opened for.
#[derive(Debug, Clone)]
pub struct SinkInput {
    /// Output file stem, e.g. `vtest` for `vtest.avi`.
    pub stem: String,
    pub width: u32,
    pub height: u32,
    pub frame_rate: (i32, i32),
}

/// Opens the configured sinks for one input.
pub fn open_sinks(cfg: &SinkConfig, input: &SinkInput) -> Result<Vec<Box<dyn Sink>>> {
    std::fs::create_dir_all(&cfg.out_dir).map_err(|e| Error::io(&cfg.out_dir, e))?;
    let mut sinks: Vec<Box<dyn Sink>> = Vec::new();
    let path = |ext: &str| cfg.out_dir.join(format!("{}.{ext}", input.stem));
    if cfg.kinds.jsonl {
        sinks.push(Box::new(jsonl::JsonlSink::create(
            &path("jsonl"),
            cfg.labels.clone(),
        )?));
    }
    if cfg.kinds.csv {
        sinks.push(Box::new(csv::CsvSink::create(
            &path("csv"),
            cfg.labels.clone(),
        )?));
    }
    if cfg.kinds.video {
        sinks.push(Box::new(video::AnnotatedVideoSink::create(
            &path("annotated.mp4"),
            input,
            cfg,
        )?));
    }
    Ok(sinks)
}

/// A file being written under a temporary name, renamed into place on [`PartialFile::commit`]
/// and removed if dropped uncommitted.
#[derive(Debug)]
pub struct PartialFile {
    partial: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl PartialFile {
    pub fn new(target: &Path) -> Self {
        let mut name = target
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        name.push(".partial");
        PartialFile {
            partial: target.with_file_name(name),
            target: target.into(),
            committed: false,
        }
    }

    pub fn partial_path(&self) -> &Path {
        &self.partial
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn commit(mut self) -> Result<PathBuf> {
        std::fs::rename(&self.partial, &self.target).map_err(|e| Error::io(&self.target, e))?;
        self.committed = true;
        Ok(self.target.clone())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

/// A buffered text output written through a [`PartialFile`]: what the line-oriented sinks
/// (JSONL, CSV) share.
pub struct PartialWriter {
    file: PartialFile,
    out: std::io::BufWriter<std::fs::File>,
}

impl PartialWriter {
    pub fn create(target: &Path) -> Result<Self> {
        let file = PartialFile::new(target);
        let f = std::fs::File::create(file.partial_path())
            .map_err(|e| Error::io(file.partial_path(), e))?;
        Ok(PartialWriter {
            file,
            out: std::io::BufWriter::new(f),
        })
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(self.file.partial_path(), e))
    }

    /// Flushes, syncs and renames into place.
    pub fn finish(self) -> Result<PathBuf> {
        let PartialWriter { file, out } = self;
        let f = out
            .into_inner()
            .map_err(|e| Error::io(file.partial_path(), e.into_error()))?;
        f.sync_all()
            .map_err(|e| Error::io(file.partial_path(), e))?;
        file.commit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_file_renames_on_commit_and_cleans_up_otherwise() {
        let dir = std::env::temp_dir().join(format!("vidinfer-partial-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target = dir.join("a.jsonl");
        let p = PartialFile::new(&target);
        assert_eq!(p.partial_path(), dir.join("a.jsonl.partial"));
        std::fs::write(p.partial_path(), b"x").unwrap();
        assert_eq!(p.commit().unwrap(), target);
        assert!(target.exists() && !dir.join("a.jsonl.partial").exists());

        let target2 = dir.join("b.jsonl");
        let p2 = PartialFile::new(&target2);
        std::fs::write(p2.partial_path(), b"x").unwrap();
        drop(p2);
        assert!(!target2.exists() && !dir.join("b.jsonl.partial").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
