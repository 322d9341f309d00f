//! The `<stem>.done` marker: written once every output of an input is in place, read back
//! to skip inputs a previous run already finished with the same settings.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::atomic::write_atomic;
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoneMarker {
    /// The input, as given.
    pub input: String,
    /// What produced the outputs (model, thresholds, preprocessing, ...).
    pub fingerprint: String,
    pub frames: u64,
    pub detections: u64,
    pub outputs: Vec<String>,
    pub corrupt_packets: u64,
}

impl DoneMarker {
    /// Where the marker of `stem` lives.
    pub fn path(out_dir: &Path, stem: &str) -> PathBuf {
        out_dir.join(format!("{stem}.done"))
    }

    /// The marker of `stem`, if there is a readable one.
    pub fn read(out_dir: &Path, stem: &str) -> Option<DoneMarker> {
        let text = std::fs::read_to_string(Self::path(out_dir, stem)).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn write(&self, out_dir: &Path, stem: &str) -> Result<PathBuf> {
        let body = serde_json::to_string(self).expect("a plain struct serialises");
        write_atomic(&Self::path(out_dir, stem), format!("{body}\n").as_bytes())
    }

    /// True when `stem` was completed in `out_dir` by a run with the same `fingerprint`.
    pub fn is_done(out_dir: &Path, stem: &str, fingerprint: &str) -> bool {
        Self::read(out_dir, stem).is_some_and(|m| m.fingerprint == fingerprint)
    }
}
