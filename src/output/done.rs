//! The `<stem>.done` marker: written once every output of an input is in place. It records
//! which input (its [`InputIdentity`]), with which settings, and each output with its size. A
//! later run skips the input only if all of these still hold; otherwise it redoes it and says
//! why.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{atomic::write_atomic, identity::InputIdentity};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoneMarker {
    pub input: InputIdentity,
    /// What produced the outputs (model, thresholds, preprocessing, outputs, ...).
    pub settings: String,
    pub frames: u64,
    pub detections: u64,
    pub corrupt_packets: u64,
    pub outputs: Vec<OutputFile>,
}

/// One output as committed: its file name in the output directory and its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    pub name: String,
    pub size: u64,
}

/// What a marker says about an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Done with these settings; the outputs are in place.
    Done,
    /// A marker exists but no longer holds; the reason, for a person.
    Redo(String),
    /// No marker.
    New,
}

impl OutputFile {
    /// Records a committed output.
    pub fn of(path: &Path) -> Result<Self> {
        let size = std::fs::metadata(path)
            .map_err(|e| crate::error::Error::read(path, e))?
            .len();
        Ok(OutputFile {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            size,
        })
    }
}

impl DoneMarker {
    /// Where the marker of `stem` lives.
    pub fn path(out_dir: &Path, stem: &str) -> PathBuf {
        out_dir.join(format!("{stem}.done"))
    }

    /// Parses a marker's text.
    pub fn parse(text: &[u8]) -> serde_json::Result<Self> {
        serde_json::from_slice(text)
    }

    pub fn write(&self, out_dir: &Path, stem: &str) -> Result<PathBuf> {
        let body = serde_json::to_string(self).expect("a plain struct serialises");
        write_atomic(&Self::path(out_dir, stem), format!("{body}\n").as_bytes())
    }

    /// Whether `stem` in `out_dir` is done for `input` with `settings`.
    pub fn check(out_dir: &Path, stem: &str, input: &InputIdentity, settings: &str) -> Verdict {
        let path = Self::path(out_dir, stem);
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Verdict::New,
            Err(e) => return Verdict::Redo(format!("{} cannot be read ({e})", path.display())),
        };
        let m = match Self::parse(&text) {
            Ok(m) => m,
            Err(e) => {
                return Verdict::Redo(format!("{} is not a valid marker ({e})", path.display()))
            }
        };
        if let Some(why) = input.difference(&m.input) {
            return Verdict::Redo(why);
        }
        if m.settings != settings {
            return Verdict::Redo("the settings changed".into());
        }
        for o in &m.outputs {
            match std::fs::metadata(out_dir.join(&o.name)) {
                Ok(md) if md.len() == o.size => {}
                Ok(md) => {
                    return Verdict::Redo(format!(
                        "{} has {} bytes, the marker says {}",
                        o.name,
                        md.len(),
                        o.size
                    ))
                }
                Err(_) => return Verdict::Redo(format!("{} is missing", o.name)),
            }
        }
        Verdict::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_holds_only_while_input_settings_and_outputs_do() {
        let dir = std::env::temp_dir().join(format!("vidinfer-done-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let input = dir.join("in.mp4");
        std::fs::write(&input, b"video").unwrap();
        let out = dir.join("x.jsonl");
        std::fs::write(&out, b"{}\n").unwrap();
        let id = InputIdentity::of(&input).unwrap();
        assert_eq!(DoneMarker::check(&dir, "x", &id, "s"), Verdict::New);
        let m = DoneMarker {
            input: id.clone(),
            settings: "s".into(),
            frames: 1,
            detections: 0,
            corrupt_packets: 0,
            outputs: vec![OutputFile::of(&out).unwrap()],
        };
        m.write(&dir, "x").unwrap();
        assert_eq!(DoneMarker::check(&dir, "x", &id, "s"), Verdict::Done);
        assert!(
            matches!(DoneMarker::check(&dir, "x", &id, "t"), Verdict::Redo(r) if r.contains("settings"))
        );
        std::fs::write(&out, b"{}\n{}\n").unwrap();
        assert!(
            matches!(DoneMarker::check(&dir, "x", &id, "s"), Verdict::Redo(r) if r.contains("bytes"))
        );
        std::fs::remove_file(&out).unwrap();
        assert!(
            matches!(DoneMarker::check(&dir, "x", &id, "s"), Verdict::Redo(r) if r.contains("missing"))
        );
        std::fs::write(&input, b"another video").unwrap();
        let id2 = InputIdentity::of(&input).unwrap();
        assert!(
            matches!(DoneMarker::check(&dir, "x", &id2, "s"), Verdict::Redo(r) if r.contains("changed"))
        );
        std::fs::write(DoneMarker::path(&dir, "x"), b"\xef\xbb\xbfnot json").unwrap();
        assert!(
            matches!(DoneMarker::check(&dir, "x", &id2, "s"), Verdict::Redo(r) if r.contains("not a valid marker"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
