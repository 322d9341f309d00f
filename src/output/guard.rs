//! Outputs are never written over an input. A video may be called `clip.jsonl`, or sit in
//! the output directory under a name an output of another input would take, or be linked
//! there: renaming an output into place, removing a stale temporary file or an output another
//! `--outputs` left would then destroy it. So before a name is given, the output directory is
//! searched for the run's inputs (the same file: device and inode, which also finds hard links
//! and symbolic links to it), and a name whose files would be one of them is not used.

use std::{
    collections::HashSet,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use super::dir::{OUTPUT_SUFFIXES, SNAPSHOTS_SUFFIX};
use crate::decode::source::SourceKind;

/// The files a run reads: each file input by device and inode (where it exists) and by
/// canonical path.
#[derive(Debug, Default)]
pub struct InputFiles {
    ids: HashSet<(u64, u64)>,
    paths: HashSet<PathBuf>,
}

impl InputFiles {
    pub fn of(inputs: &[PathBuf]) -> Self {
        let mut files = InputFiles::default();
        for p in inputs
            .iter()
            .filter(|p| SourceKind::of(p) == SourceKind::File)
        {
            if let Ok(m) = std::fs::metadata(p) {
                files.ids.insert((m.dev(), m.ino()));
            }
            files.paths.insert(canonical(p));
        }
        files
    }

    /// True when `path` is one of the inputs: the same file if it exists (links followed),
    /// else the same canonical path.
    pub fn contains(&self, path: &Path) -> bool {
        match std::fs::metadata(path) {
            Ok(m) => self.ids.contains(&(m.dev(), m.ino())),
            Err(_) => self.paths.contains(&canonical(path)),
        }
    }
}

/// `path` with its directory resolved (the file itself need not exist).
fn canonical(path: &Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(path) {
        return c;
    }
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let dir = dir.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    match (std::fs::canonicalize(&dir), path.file_name()) {
        (Ok(d), Some(name)) => d.join(name),
        _ => path.to_path_buf(),
    }
}

/// The names of the run's inputs found in an output directory and its `.vidinfer/` folder:
/// what no stem's files may be.
#[derive(Debug, Default, Clone)]
pub struct Protected {
    names: Vec<String>,
    meta_names: Vec<String>,
}

impl Protected {
    /// Nothing to protect.
    pub fn none() -> Self {
        Protected::default()
    }

    /// Looks through `root` and `meta` (one `stat` per entry) for the files of `inputs`.
    pub fn scan(root: &Path, meta: &Path, inputs: &InputFiles) -> Self {
        let found = |dir: &Path| -> Vec<String> {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return Vec::new();
            };
            entries
                .flatten()
                .filter(|e| inputs.contains(&e.path()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        };
        // And in the snapshot folders (`<stem>.snapshots/`), as `<folder>/<name>`.
        let mut names = found(root);
        for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let folder = e.file_name().to_string_lossy().into_owned();
            if folder.ends_with(&format!(".{SNAPSHOTS_SUFFIX}")) && e.path().is_dir() {
                names.extend(
                    found(&e.path())
                        .into_iter()
                        .map(|n| format!("{folder}/{n}")),
                );
            }
        }
        Protected {
            names,
            meta_names: found(meta),
        }
    }

    /// The name of an input that a file of `stem`'s (an output, its done marker, a segment,
    /// a temporary file, its claim or lock) would be, if any.
    pub fn hit(&self, stem: &str) -> Option<&str> {
        let out = self.names.iter().find(|n| belongs_to(n, stem));
        let meta = || self.meta_names.iter().find(|n| meta_belongs_to(n, stem));
        out.or_else(meta).map(String::as_str)
    }
}

/// `s` without a `.<pid><tail>` ending (a temporary file's), if it has one.
fn strip_pid_suffix<'a>(s: &'a str, tail: &str) -> Option<&'a str> {
    let (head, pid) = s.strip_suffix(tail)?.rsplit_once('.')?;
    (!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit())).then_some(head)
}

/// True for a file of `stem`'s in the output directory: `<stem>.<suffix>` (an output or
/// `done`), a segment `<stem>-<n>.<suffix>`, or the temporary file of either.
fn belongs_to(name: &str, stem: &str) -> bool {
    let Some(mut rest) = name.strip_prefix(stem) else {
        return false;
    };
    // Anything in its snapshot folder: a snapshot, its temporary file, or what a sweep of
    // stale snapshots could remove.
    if rest
        .strip_prefix('.')
        .and_then(|r| r.strip_prefix(SNAPSHOTS_SUFFIX))
        .is_some_and(|r| r.starts_with('/'))
    {
        return true;
    }
    if let Some(segment) = rest.strip_prefix('-') {
        let digits = segment.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &segment[digits..];
    }
    let Some(rest) = rest.strip_prefix('.') else {
        return false;
    };
    let rest = strip_pid_suffix(rest, ".partial").unwrap_or(rest);
    OUTPUT_SUFFIXES.iter().chain(&["done"]).any(|s| rest == *s)
}

/// True for a bookkeeping file of `stem`'s: `<stem>.claim`, `<stem>.lock`, a claim's
/// temporary file.
fn meta_belongs_to(name: &str, stem: &str) -> bool {
    let Some(rest) = name.strip_prefix(stem).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    let rest = strip_pid_suffix(rest, ".tmp").unwrap_or(rest);
    rest == "claim" || rest == "lock"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stems_files_are_its_outputs_segments_and_temporaries() {
        for n in [
            "clip.jsonl",
            "clip.csv",
            "clip.annotated.mp4",
            "clip.tracks.jsonl",
            "clip.done",
            "clip.jsonl.123.partial",
            "clip.done.9.partial",
            "clip-000001.jsonl",
            "clip-000002.annotated.mp4.77.partial",
            "clip.snapshots/3.crop.jpg",
            "clip.snapshots/input.mp4",
        ] {
            assert!(belongs_to(n, "clip"), "{n}");
        }
        for n in [
            "clip.mp4",
            "clip.jsonl.partial",
            "clip.v2.jsonl",
            "clip-1a2b3c4d.jsonl",
            "clip-.jsonl",
            "clips.jsonl",
            "clip",
            "clip.snapshotsx/3.crop.jpg",
            "clips.snapshots/3.crop.jpg",
        ] {
            assert!(!belongs_to(n, "clip"), "{n}");
        }
        assert!(meta_belongs_to("clip.lock", "clip"));
        assert!(meta_belongs_to("clip.claim.42.tmp", "clip"));
        assert!(!meta_belongs_to("clip.mp4", "clip"));
    }

    #[test]
    fn inputs_are_found_by_file_not_by_name() {
        let d = tempfile::tempdir().unwrap();
        let video = d.path().join("v.mp4");
        std::fs::write(&video, b"x").unwrap();
        let out = d.path().join("out");
        std::fs::create_dir_all(out.join(".vidinfer")).unwrap();
        std::fs::hard_link(&video, out.join("a.jsonl")).unwrap();
        std::os::unix::fs::symlink(&video, out.join("b.csv")).unwrap();
        std::fs::write(out.join("c.jsonl"), b"x").unwrap();
        let p = Protected::scan(
            &out,
            &out.join(".vidinfer"),
            &InputFiles::of(std::slice::from_ref(&video)),
        );
        assert_eq!(p.hit("a"), Some("a.jsonl"));
        assert_eq!(p.hit("b"), Some("b.csv"));
        assert_eq!(p.hit("c"), None, "same content, another file");
        assert!(InputFiles::of(&[d.path().join("missing.mp4")])
            .contains(&d.path().join("./missing.mp4")));
    }
}
