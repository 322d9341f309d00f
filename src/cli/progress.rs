//! The progress bar: an [`Observer`] of the pipeline, drawn with indicatif on a terminal.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use vidinfer::pipeline::Observer;

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar on stderr, or `None` when stderr is not a terminal.
    pub fn new() -> Option<Progress> {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {pos}/{len} frames ({fps} fps, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key(
                "fps",
                |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.1}", s.per_sec());
                },
            )
            .progress_chars("=> "),
        );
        Some(Progress { bar })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Observer for Progress {
    fn input_started(&self, path: &Path, frames_hint: Option<u64>) {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.bar.set_message(name);
        self.bar.inc_length(frames_hint.unwrap_or(0));
    }

    fn frame_done(&self) {
        self.bar.inc(1);
    }
}
