//! Which file an input is, as a done marker records it: canonical path, size, modification
//! time and a cheap content fingerprint (SHA-256 of the first and last MiB), so a renamed,
//! replaced or rewritten input is never mistaken for the one a marker describes.

use std::{
    io::{Read, Seek, SeekFrom},
    os::unix::{ffi::OsStrExt, fs::OpenOptionsExt},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Bytes hashed at each end of the file.
const SAMPLE: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputIdentity {
    /// The canonical path (shown lossily when not UTF-8; the fingerprint tells files apart).
    pub path: String,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: u128,
    /// SHA-256 (hex) of the first and last MiB.
    pub sample_sha256: String,
}

impl InputIdentity {
    /// The identity of the file at `path` (following links). Only a regular file has one: a
    /// FIFO or a device is a stream, read once, never hashed (opening a FIFO here would take
    /// the writer's data from the reader that follows).
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let not_regular = || std::io::Error::other("not a regular file");
        let canonical = std::fs::canonicalize(path)?;
        if !std::fs::metadata(&canonical)?.is_file() {
            return Err(not_regular());
        }
        // Non-blocking: should it have become a FIFO meanwhile, opening does not wait.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&canonical)?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            return Err(not_regular());
        }
        let modified_ns = meta
            .modified()?
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let size = meta.len();
        let mut h = Sha256::new();
        h.update(size.to_le_bytes());
        let mut buf = vec![0u8; SAMPLE.min(size) as usize];
        f.read_exact(&mut buf)?;
        h.update(&buf);
        if size > SAMPLE {
            let tail = SAMPLE.min(size - SAMPLE);
            f.seek(SeekFrom::Start(size - tail))?;
            buf.resize(tail as usize, 0);
            f.read_exact(&mut buf)?;
            h.update(&buf);
        }
        Ok(InputIdentity {
            path: canonical.to_string_lossy().into_owned(),
            size,
            modified_ns,
            sample_sha256: hex(&h.finalize()),
        })
    }

    /// How this identity differs from `other`, for a person; `None` if it does not.
    pub fn difference(&self, other: &InputIdentity) -> Option<String> {
        if self.path != other.path {
            Some(format!("it was written for {}", other.path))
        } else if self.size != other.size {
            Some(format!(
                "the input changed (size {} → {})",
                other.size, self.size
            ))
        } else if self.modified_ns != other.modified_ns || self.sample_sha256 != other.sample_sha256
        {
            Some("the input changed (modified since)".into())
        } else {
            None
        }
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A short hash of a path's bytes, to tell apart inputs whose names collide.
pub(crate) fn path_hash(path: &Path) -> String {
    let canonical: PathBuf = std::fs::canonicalize(path).unwrap_or_else(|_| path.into());
    hex(&Sha256::digest(canonical.as_os_str().as_bytes())[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_changes_with_content_size_and_place() {
        let dir = std::env::temp_dir().join(format!("vidinfer-identity-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = dir.join("a.bin");
        let big: Vec<u8> = (0..3 * SAMPLE as usize).map(|i| (i % 251) as u8).collect();
        std::fs::write(&a, &big).unwrap();
        let id = InputIdentity::of(&a).unwrap();
        assert_eq!(id.size, 3 * SAMPLE);
        assert_eq!(InputIdentity::of(&a).unwrap().difference(&id), None);

        // Same size, last byte changed: the tail sample catches it.
        let mut changed = big.clone();
        *changed.last_mut().unwrap() ^= 1;
        std::fs::write(&a, &changed).unwrap();
        let id2 = InputIdentity::of(&a).unwrap();
        assert_ne!(id2.sample_sha256, id.sample_sha256);
        assert!(id2.difference(&id).is_some());

        let b = dir.join("b.bin");
        std::fs::write(&b, &changed).unwrap();
        let other = InputIdentity::of(&b).unwrap();
        assert!(other.difference(&id2).unwrap().contains("a.bin"));

        std::fs::write(&a, b"tiny").unwrap();
        let small = InputIdentity::of(&a).unwrap();
        assert!(small.difference(&id2).unwrap().contains("size"));

        // A FIFO has no identity, and asking does not wait for a writer.
        let fifo = dir.join("live.ts");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(InputIdentity::of(&fifo).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
