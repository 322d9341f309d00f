//! vidinfer: run SSD-style detection models over video, fast.
//!
//! Data flows one way: [`decode`] → [`preprocess`] → batch + [`infer`] → [`postprocess`] →
//! [`sink`], each stage on its own thread joined by bounded [`channel`]s ([`pipeline`]).
//! [`output`] names and commits each input's files. See ARCHITECTURE.md.

// The library has no presentation: what is shown is the binary's business.
#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod av;
pub mod bench;
pub mod channel;
pub mod decode;
pub mod error;
pub mod infer;
pub mod labels;
pub mod manifest;
pub mod output;
pub mod pipeline;
pub mod postprocess;
pub mod preprocess;
pub mod sink;
pub mod sys;
pub mod telemetry;
pub mod track;

pub use error::{Error, Result};

pub use sys::peak_rss_kib;
