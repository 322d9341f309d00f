//! Named pipes (FIFOs) and other files that are not regular files: streams, read once from
//! start to end. They are never hashed (a done marker's identity is for regular files only)
//! or seeked, and a FIFO is opened so that a run can be stopped while it waits: opening one
//! the usual way blocks until a writer comes, and reading blocks while the writer is silent,
//! where no signal could reach FFmpeg.
//!
//! So a FIFO is opened non-blocking, waited on (100 ms at a time, looking at the interrupt
//! flag) until a writer has come, and handed to FFmpeg as `pipe:<fd>`: FFmpeg's reads then
//! return "try again" instead of blocking, and it retries them, asking its interrupt callback
//! each time. The end of the writer's data is the end of the input.

use std::{
    fs::{File, OpenOptions},
    os::{
        fd::{AsRawFd, OwnedFd},
        unix::fs::{FileTypeExt, OpenOptionsExt},
    },
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

/// True when `path` exists and is not a regular file (a FIFO, a character device, ...).
pub fn is_stream_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

fn is_fifo(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

/// An open FIFO, read by FFmpeg through `pipe:<fd>`. Keep it as long as the FFmpeg input.
#[derive(Debug)]
pub(crate) struct Fifo {
    fd: OwnedFd,
}

impl Fifo {
    /// Opens `path` if it is a FIFO and waits until a writer has opened it (or has come and
    /// gone). `Ok(None)`: not a FIFO. An `Interrupted` error: `interrupt` was set meanwhile.
    pub fn open(path: &Path, interrupt: Option<&AtomicBool>) -> std::io::Result<Option<Fifo>> {
        if !is_fifo(path) {
            return Ok(None);
        }
        let file: File = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)?;
        let fifo = Fifo { fd: file.into() };
        fifo.wait_for_writer(interrupt)?;
        Ok(Some(fifo))
    }

    fn wait_for_writer(&self, interrupt: Option<&AtomicBool>) -> std::io::Result<()> {
        loop {
            if interrupt.is_some_and(|f| f.load(Ordering::SeqCst)) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let mut p = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the length of the call. A FIFO that never had a
            // writer reports nothing (Linux); data or a writer that came and went wakes it.
            let rc = unsafe { libc::poll(&mut p, 1, 100) };
            if rc > 0 {
                return Ok(());
            }
            if rc < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }

    /// What FFmpeg opens: its `pipe` protocol on this descriptor.
    pub fn ffmpeg_name(&self) -> PathBuf {
        PathBuf::from(format!("pipe:{}", self.fd.as_raw_fd()))
    }
}
