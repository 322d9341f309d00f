//! The output directory's bookkeeping, kept in its `.vidinfer/` folder:
//!
//! - **Names are claimed.** An input's outputs are named after its file stem, unless another
//!   input already owns that name in this directory; then the stem gets a short hash of the
//!   input's canonical path (`clip-1a2b3c4d`). A claim is a file holding the owner's canonical
//!   path, created atomically, so every run and every process — whatever else is in its input
//!   list, whichever shard — gives one input the same name, and two inputs never share one.
//! - **One writer per name.** A process holds an advisory lock on a stem while it writes that
//!   stem's outputs; another process on the same input skips it with a message instead of
//!   interleaving. The lock goes with the process (crash included).

use std::{
    fs::{File, OpenOptions},
    io::{Read, Write},
    os::{fd::AsRawFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
};

use super::{
    guard::{InputFiles, Protected},
    identity::path_hash,
};
use crate::decode::source::{stream_stem, SourceKind};
use crate::error::{Error, NameTaken, OverInput, Result};

/// Suffixes of the files a stem's outputs may have (`<stem>.<suffix>`).
pub const OUTPUT_SUFFIXES: &[&str] = &["jsonl", "csv", "annotated.mp4", "tracks.jsonl"];

/// The suffix of a stem's snapshot folder (`<stem>.snapshots/`, `--snapshots`).
pub const SNAPSHOTS_SUFFIX: &str = "snapshots";

/// True for a snapshot's file name (`<track_id>.crop.jpg`, `<track_id>.frame.jpg`): the only
/// files a stale-output sweep of a snapshot folder removes.
pub fn is_snapshot_name(name: &str) -> bool {
    let Some(id) = name
        .strip_suffix(".crop.jpg")
        .or_else(|| name.strip_suffix(".frame.jpg"))
    else {
        return false;
    };
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// Removes the snapshots in `dir` that are not in `keep`, and `dir` itself if that empties it.
pub fn remove_stale_snapshots(dir: &Path, keep: &[PathBuf]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if is_snapshot_name(&e.file_name().to_string_lossy()) && !keep.contains(&p) {
            tracing::info!("removing {}: not an output of this run", p.display());
            let _ = std::fs::remove_file(&p);
        }
    }
    // Only if empty: anything else in it is not ours.
    let _ = std::fs::remove_dir(dir);
}

/// Longest stem in bytes: the longest suffix and a temporary-file tail still fit the usual
/// 255-byte name limit.
const MAX_STEM: usize = 180;

#[derive(Debug, Clone)]
pub struct OutputDir {
    root: PathBuf,
    meta: PathBuf,
}

/// The lock on one stem's outputs; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct StemLock {
    _file: File,
}

/// Whether a stem could be locked.
#[derive(Debug)]
pub enum Lock {
    Held(StemLock),
    /// Another process writes this stem's outputs now.
    Busy {
        pid: Option<u32>,
    },
}

/// The input's file stem as a file name: lossy UTF-8, cut to [`MAX_STEM`] bytes (with a hash
/// of the whole path then, so cut names stay distinct).
pub fn base_stem(input: &Path) -> String {
    let stem = input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty() && s != "." && s != "..")
        .unwrap_or_else(|| "input".into());
    cut(stem, input)
}

/// `stem`, cut to [`MAX_STEM`] bytes with a hash of `input` when too long.
fn cut(stem: String, input: &Path) -> String {
    if stem.len() <= MAX_STEM {
        return stem;
    }
    let mut cut = MAX_STEM - 9;
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{}", &stem[..cut], path_hash(input))
}

impl OutputDir {
    /// Creates the directory (and its bookkeeping folder) and checks that it can be written,
    /// before any input is decoded.
    pub fn prepare(root: &Path) -> Result<Self> {
        let meta = root.join(".vidinfer");
        std::fs::create_dir_all(&meta).map_err(|e| Error::write(root, e))?;
        let probe = meta.join(format!("probe.{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(|e| Error::write(root, e))?;
        let _ = std::fs::remove_file(&probe);
        Ok(OutputDir {
            root: root.into(),
            meta,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// What the outputs of a run over `inputs` must not be written over: the inputs found in
    /// this directory (see [`Protected`]).
    pub fn protect(&self, inputs: &[PathBuf]) -> Protected {
        Protected::scan(&self.root, &self.meta, &InputFiles::of(inputs))
    }

    /// Refuses a stem whose files would be an input (a name the user gave).
    pub fn check_stem(&self, input: &Path, stem: &str, protected: &Protected) -> Result<()> {
        match protected.hit(stem) {
            Some(name) => Err(Error::OutputOverInput(Box::new(OverInput {
                input: input.into(),
                stem: stem.into(),
                file: self.root.join(name),
            }))),
            None => Ok(()),
        }
    }

    /// The stem of `input`'s outputs in this directory, claiming it on first use. A file is
    /// owned by its canonical path, a stream (URL, stdin, camera) by its name as given; a
    /// file that does not exist gets its plain stem unclaimed (it will produce nothing).
    ///
    /// A stem ending in `.tracks` always gets the hash: `clip.tracks` + `.jsonl` would be the
    /// tracks file of `clip`. So does a stem whose files would be one of the run's inputs
    /// (`protected`): a video called `clip.jsonl` in the output directory keeps its data.
    pub fn stem_for(&self, input: &Path, protected: &Protected) -> Result<String> {
        let (base, owner) = match SourceKind::of(input) {
            SourceKind::File => match std::fs::canonicalize(input) {
                Ok(c) => (base_stem(input), c),
                Err(_) => return Ok(base_stem(input)),
            },
            _ => (cut(stream_stem(input), input), input.to_path_buf()),
        };
        let me = owner.as_os_str().as_bytes();
        let hashed = format!("{base}-{}", path_hash(input));
        let plain = (!is_ambiguous_stem(&base)).then_some(&base);
        let candidates: Vec<&String> = plain.into_iter().chain([&hashed]).collect();
        let safe = candidates.iter().filter(|s| protected.hit(s).is_none());
        for stem in safe {
            if self.claim(stem, me)? {
                return Ok((*stem).clone());
            }
        }
        if let Some(name) = candidates.iter().find_map(|s| protected.hit(s)) {
            return Err(Error::OutputOverInput(Box::new(OverInput {
                input: input.into(),
                stem: hashed,
                file: self.root.join(name),
            })));
        }
        Err(Error::OutputNameTaken(Box::new(NameTaken {
            input: input.into(),
            base,
            hashed,
            dir: self.root.clone(),
        })))
    }

    /// True if `stem` is ours (claimed now or before), false if another input owns it.
    fn claim(&self, stem: &str, me: &[u8]) -> Result<bool> {
        let claim = self.meta.join(format!("{stem}.claim"));
        let tmp = self
            .meta
            .join(format!("{stem}.claim.{}.tmp", std::process::id()));
        std::fs::write(&tmp, me).map_err(|e| Error::write(&tmp, e))?;
        // A hard link is created whole or not at all: a reader never sees half a claim.
        let linked = std::fs::hard_link(&tmp, &claim);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read(&claim).map_err(|e| Error::read(&claim, e))?;
                Ok(owner == me)
            }
            Err(e) => Err(Error::write(&claim, e)),
        }
    }

    /// Locks `stem` for writing its outputs, without waiting.
    pub fn lock(&self, stem: &str) -> Result<Lock> {
        let path = self.meta.join(format!("{stem}.lock"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::write(&path, e))?;
        // SAFETY: flock on a file descriptor we own; it does not touch memory.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Ok(Lock::Busy {
                pid: text.trim().parse().ok(),
            });
        }
        let _ = file.set_len(0);
        let _ = write!(file, "{}", std::process::id());
        Ok(Lock::Held(StemLock { _file: file }))
    }

    /// Removes temporary files of `stem`'s outputs left by a process that died. Call it while
    /// holding the stem's lock: no live process writes them then.
    pub fn remove_stale_partials(&self, stem: &str) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if is_partial_of(&name, stem) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Removes `stem`'s output files other than `keep` (left by a run with other `--outputs`).
    pub fn remove_other_outputs(&self, stem: &str, keep: &[PathBuf]) {
        for suffix in OUTPUT_SUFFIXES {
            let p = self.root.join(format!("{stem}.{suffix}"));
            if !keep.contains(&p) && p.exists() {
                tracing::info!(
                    "removing {}: not an output of this run's settings",
                    p.display()
                );
                let _ = std::fs::remove_file(&p);
            }
        }
        let snaps = self.root.join(format!("{stem}.{SNAPSHOTS_SUFFIX}"));
        remove_stale_snapshots(&snaps, keep);
    }
}

/// True for a stem whose outputs could be another stem's: `clip.tracks.jsonl` is the JSONL of
/// `clip.tracks` and the tracks file of `clip`.
pub fn is_ambiguous_stem(stem: &str) -> bool {
    stem.ends_with(".tracks")
}

/// True for `<stem>.<suffix>.<pid>.partial` (and the done marker's), nothing else.
fn is_partial_of(name: &str, stem: &str) -> bool {
    let Some(rest) = name
        .strip_prefix(stem)
        .and_then(|r| r.strip_prefix('.'))
        .and_then(|r| r.strip_suffix(".partial"))
    else {
        return false;
    };
    OUTPUT_SUFFIXES.iter().chain(&["done"]).any(|s| {
        rest.strip_prefix(s)
            .and_then(|r| r.strip_prefix('.'))
            .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vidinfer-dir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn same_names_get_distinct_stable_stems() {
        let d = temp("stems");
        for sub in ["a", "b", "c"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let (a, b, c) = (
            d.join("a/clip.mp4"),
            d.join("b/clip.mp4"),
            d.join("c/clip-2.mp4"),
        );
        for p in [&a, &b, &c] {
            std::fs::write(p, b"x").unwrap();
        }
        let out = OutputDir::prepare(&d.join("out")).unwrap();
        let none = Protected::none();
        let sa = out.stem_for(&a, &none).unwrap();
        let sb = out.stem_for(&b, &none).unwrap();
        let sc = out.stem_for(&c, &none).unwrap();
        assert_eq!(sa, "clip");
        assert!(
            sb.starts_with("clip-") && sb.len() == "clip-".len() + 8,
            "{sb}"
        );
        assert_eq!(sc, "clip-2");
        // `x.tracks.jsonl` is the tracks file of `x`: `x.tracks.avi` gets a hashed stem.
        let t = d.join("a/clip.tracks.avi");
        std::fs::write(&t, b"x").unwrap();
        let st = out.stem_for(&t, &none).unwrap();
        assert!(st.starts_with("clip.tracks-") && st.len() == "clip.tracks-".len() + 8);
        // Another run, another order, another process: the same names.
        let again = OutputDir::prepare(&d.join("out")).unwrap();
        assert_eq!(
            [
                again.stem_for(&b, &none).unwrap(),
                again.stem_for(&a, &none).unwrap()
            ],
            [sb, sa]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_name_whose_files_would_be_an_input_is_not_given() {
        let d = temp("over-input");
        let out = OutputDir::prepare(&d).unwrap();
        // A video called `clip.jsonl` in the output directory, and `x.mp4`, whose CSV would
        // be the video `x.csv`, another input of the run.
        let (clip, x, xcsv) = (d.join("clip.jsonl"), d.join("x.mp4"), d.join("x.csv"));
        for p in [&clip, &x, &xcsv] {
            std::fs::write(p, b"video").unwrap();
        }
        let inputs = [clip.clone(), x.clone(), xcsv.clone()];
        let protected = out.protect(&inputs);
        let sc = out.stem_for(&clip, &protected).unwrap();
        assert!(
            sc.starts_with("clip-") && sc.len() == "clip-".len() + 8,
            "{sc}"
        );
        let sx = out.stem_for(&x, &protected).unwrap();
        assert!(sx.starts_with("x-"), "{sx}");
        // `x.csv` itself is `x`'s plain name, taken; it gets its hash too.
        let sxc = out.stem_for(&xcsv, &protected).unwrap();
        assert!(sxc.starts_with("x-") && sxc != sx, "{sxc}");
        assert!(out.check_stem(&x, "x", &protected).is_err());
        assert!(out.check_stem(&x, "y", &protected).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn long_and_odd_names_stay_within_limits() {
        let long = PathBuf::from(format!("{}.mp4", "é".repeat(200)));
        let s = base_stem(&long);
        assert!(s.len() <= MAX_STEM, "{}", s.len());
        assert_eq!(base_stem(Path::new("/x/.mp4")), ".mp4");
        assert_eq!(base_stem(Path::new("/")), "input");
        let raw = std::ffi::OsStr::from_bytes(b"caf\xe9.mp4");
        assert_eq!(base_stem(Path::new(raw)), "caf\u{fffd}");
    }

    #[test]
    fn a_second_lock_on_a_stem_is_refused_until_the_first_goes() {
        let d = temp("lock");
        let out = OutputDir::prepare(&d).unwrap();
        let Lock::Held(first) = out.lock("clip").unwrap() else {
            panic!("first lock")
        };
        match out.lock("clip").unwrap() {
            Lock::Busy { pid } => assert_eq!(pid, Some(std::process::id())),
            Lock::Held(_) => panic!("two holders"),
        }
        assert!(matches!(out.lock("other").unwrap(), Lock::Held(_)));
        drop(first);
        assert!(matches!(out.lock("clip").unwrap(), Lock::Held(_)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn only_this_stems_partials_are_stale() {
        assert!(is_partial_of("clip.jsonl.123.partial", "clip"));
        assert!(is_partial_of("clip.annotated.mp4.9.partial", "clip"));
        assert!(is_partial_of("clip.done.77.partial", "clip"));
        assert!(is_partial_of("clip.tracks.jsonl.5.partial", "clip"));
        assert!(!is_partial_of("clip.v2.jsonl.123.partial", "clip"));
        assert!(!is_partial_of("clip.jsonl", "clip"));
        assert!(!is_partial_of("clip.jsonl.partial", "clip"));
        assert!(!is_partial_of("clip-2.jsonl.1.partial", "clip"));
    }
}
