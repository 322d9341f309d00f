//! `--snapshots`: the best frame of each track as JPEGs (issue 27).

use clap::Args;

/// Snapshot flags of `detect`.
#[derive(Args, Debug, Default)]
pub struct SnapshotArgs {
    /// With --track: the best frame of each track (highest score with the box clear of the
    /// frame's edge) as DIR/<name>.snapshots/<track_id>.crop.jpg (the box) and
    /// <track_id>.frame.jpg (the whole frame, box drawn), named in the tracks file and in a
    /// track_end JSONL event.
    #[arg(long, requires = "track")]
    pub snapshots: bool,
}
