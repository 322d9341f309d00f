//! Writing files so that a reader never sees half of one: content goes to a temporary name
//! beside the target and is renamed into place in one step once complete.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file being written under a temporary name (`<name>.<pid>.partial`: unique per process, so
/// two writers can never interleave), renamed into place on [`PartialFile::commit`] and
/// removed if dropped uncommitted.
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
        name.push(format!(".{}.partial", std::process::id()));
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
        std::fs::rename(&self.partial, &self.target).map_err(|e| Error::write(&self.target, e))?;
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

/// A buffered output written through a [`PartialFile`]: what the line-oriented sinks (JSONL,
/// CSV) and whole-file writes share.
pub struct PartialWriter {
    file: PartialFile,
    out: std::io::BufWriter<std::fs::File>,
}

impl PartialWriter {
    pub fn create(target: &Path) -> Result<Self> {
        let file = PartialFile::new(target);
        let f = std::fs::File::create(file.partial_path())
            .map_err(|e| Error::write(file.partial_path(), e))?;
        Ok(PartialWriter {
            file,
            out: std::io::BufWriter::new(f),
        })
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        use std::io::Write;
        self.out
            .write_all(bytes)
            .map_err(|e| Error::write(self.file.partial_path(), e))
    }

    /// Hands what is buffered to the file (readers of the temporary file see it).
    pub fn flush(&mut self) -> Result<()> {
        use std::io::Write;
        self.out
            .flush()
            .map_err(|e| Error::write(self.file.partial_path(), e))
    }

    /// Flushes, syncs and renames into place.
    pub fn finish(self) -> Result<PathBuf> {
        let PartialWriter { file, out } = self;
        let f = out
            .into_inner()
            .map_err(|e| Error::write(file.partial_path(), e.into_error()))?;
        f.sync_all()
            .map_err(|e| Error::write(file.partial_path(), e))?;
        file.commit()
    }
}

/// Writes `contents` to `path` through a temporary file (creating the parent directory), so a
/// failure never leaves a partial file under the final name.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<PathBuf> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    }
    let mut w = PartialWriter::create(path)?;
    w.write_all(contents)?;
    w.finish()
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
        std::fs::write(p.partial_path(), b"x").unwrap();
        assert_eq!(p.commit().unwrap(), target);
        assert!(target.exists());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "only the target is left"
        );

        let target2 = dir.join("b.jsonl");
        let p2 = PartialFile::new(&target2);
        std::fs::write(p2.partial_path(), b"x").unwrap();
        drop(p2);
        assert!(!target2.exists());
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "the partial file is gone"
        );

        write_atomic(&dir.join("sub/c.json"), b"{}").unwrap();
        assert_eq!(std::fs::read(dir.join("sub/c.json")).unwrap(), b"{}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
