//! vidinfer: run SSD-style detection models over video, fast.
//!
//! Data flows one way: [`decode`] → [`preprocess`] → batch + [`infer`] → [`postprocess`] →
//! [`sink`], each stage on its own thread joined by bounded [`channel`]s ([`pipeline`]).
//! See ARCHITECTURE.md.

pub mod bench;
pub mod channel;
pub mod decode;
pub mod error;
pub mod infer;
pub mod labels;
pub mod pipeline;
pub mod postprocess;
pub mod preprocess;
pub mod sink;

pub use error::{Error, Result};

/// Peak resident set size of this process in KiB (Linux `VmHWM`), if known.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
