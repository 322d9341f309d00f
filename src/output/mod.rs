//! Output bookkeeping: what each input's outputs are called and who may write them
//! ([`dir`]), how they are written (through a temporary name, then renamed: [`atomic`]) and
//! the `<stem>.done` marker that says an input's outputs are complete ([`done`], keyed by the
//! input's [`identity`]).

pub mod atomic;
pub mod dir;
pub mod done;
pub mod guard;
pub mod identity;

pub use atomic::{write_atomic, PartialFile, PartialWriter};
pub use dir::{
    base_stem, is_ambiguous_stem, remove_stale_snapshots, Lock, OutputDir, StemLock,
    OUTPUT_SUFFIXES, SNAPSHOTS_SUFFIX,
};
pub use done::{DoneMarker, OutputFile, Verdict};
pub use guard::{InputFiles, Protected};
pub use identity::InputIdentity;
